package hv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/bus"
	"github.com/keel-hv/keel/hv/cpuid"
	"github.com/keel-hv/keel/hv/hypercall"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/hv/msr"
)

// State is a VM's lifecycle state.
type State int32

// VM states.
const (
	// Created: built, vCPUs not started.
	Created State = iota
	// Running: vCPUs are entering the guest.
	Running
	// Paused: vCPUs are parked outside the guest.
	Paused
	// Stopped: stopped on request (Stop, guest poweroff, the OutsideRAM
	// stop policy); final.
	Stopped
	// Crashed: the guest or the backend failed (triple fault, invalid
	// state, emulation failure); final. Report says why.
	Crashed
)

var stateNames = [...]string{"created", "running", "paused", "stopped", "crashed"}

// String returns the state's name as shown by `vm list`.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state?"
}

// Final reports whether the state is stopped or crashed.
func (s State) Final() bool { return s == Stopped || s == Crashed }

// OutsideRAMPolicy is what happens when a guest touches a guest-physical
// address that is neither RAM nor claimed by a device on the MMIO bus.
type OutsideRAMPolicy uint8

// Outside-RAM policies.
const (
	// OutsideRAMStop stops the VM with a report naming the address, the
	// access and the instruction (the default).
	OutsideRAMStop OutsideRAMPolicy = iota
	// OutsideRAMUnclaimed emulates the access against the MMIO bus, whose
	// unclaimed-access policy then applies (reads all-ones, writes
	// dropped): what PC hardware does.
	OutsideRAMUnclaimed
)

// Config describes a VM.
type Config struct {
	// Name identifies the VM in logs, errors and accounting; required.
	Name string
	// MemorySize is the guest RAM in bytes (a multiple of 4 KiB).
	MemorySize uint64
	// Layout places RAM in guest-physical space; nil means
	// mem.DefaultLayout.
	Layout *mem.Layout
	// VCPUs is the number of vCPUs, 1-255.
	VCPUs int
	// Privileged marks the management partition (privileged hypercalls).
	Privileged bool
	// Nested exposes the host's virtualization extension in CPUID/MSRs.
	Nested bool
	// HostCPUID returns the host's CPUID values; required.
	HostCPUID cpuid.HostFunc
	// X2APIC, TSCDeadline and XSAVE select optional CPUID features (see
	// package cpuid).
	X2APIC, TSCDeadline, XSAVE bool
	// CPUIDExtra are further hypervisor leaves (cpuid.Config.Extra), such
	// as a KVM-compatible paravirtual clock's.
	CPUIDExtra []cpuid.Entry
	// Hypercalls is the hypercall table; nil means
	// hypercall.DefaultTable.
	Hypercalls *hypercall.Table
	// Emulator creates each vCPU's instruction emulator, which emulates
	// MMIO instructions (and translates INS/OUTS buffers under paging);
	// nil crashes the VM at its first MMIO exit.
	Emulator NewEmulatorFunc
	// Console receives hypercall console output; nil discards it.
	Console io.Writer
	// HostLog receives privileged host_log output; nil refuses the call.
	HostLog io.Writer
	// TSC returns the guest's time-stamp counter for RDMSR of
	// IA32_TIME_STAMP_COUNTER; nil uses nanoseconds since the VM was
	// created.
	TSC func() uint64
	// PortPolicy and MMIOPolicy decide unclaimed bus accesses; nil means
	// bus.DefaultPolicy (reads all-ones, writes dropped and counted).
	PortPolicy, MMIOPolicy *bus.Policy
	// OutsideRAM is the policy for accesses outside RAM and devices.
	OutsideRAM OutsideRAMPolicy
}

// Report explains why a VM stopped or crashed.
type Report struct {
	// State is Stopped or Crashed.
	State State
	// Reason says what happened, in words.
	Reason string
	// VCPU is the vCPU that caused it, or -1 (Stop from outside).
	VCPU int
	// Exit is the exit being handled, when HasExit.
	Exit    arch.Exit
	HasExit bool
	// Regs and Sregs are the vCPU's registers, when HasRegs.
	Regs    arch.Regs
	Sregs   arch.Sregs
	HasRegs bool
	// ExitStatus is the guest's poweroff status, when it powered off.
	ExitStatus uint64
}

// String formats the report for the console: reason, exit and a register
// dump.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.State, r.Reason)
	if r.VCPU >= 0 {
		fmt.Fprintf(&b, " (vCPU %d)", r.VCPU)
	}
	if r.HasExit {
		fmt.Fprintf(&b, "\nexit: %s", &r.Exit)
	}
	if r.HasRegs {
		fmt.Fprintf(&b, "\nmode: %s, cpl %d\n%s\n%s", arch.ModeOf(&r.Sregs, r.Regs.RFLAGS), arch.CPL(&r.Sregs, r.Regs.RFLAGS), &r.Regs, &r.Sregs)
	}
	return b.String()
}

// VM is one virtual machine.
type VM struct {
	name       string
	cfg        Config
	backend    Backend
	bvm        BackendVM
	mem        *mem.GuestMemory
	ports      *bus.PortBus
	mmio       *bus.MMIOBus
	cpuid      *cpuid.Policy
	msrs       *msr.Policy
	hcalls     *hypercall.Table
	tsc        func() uint64
	maxPhys    uint8
	vcpus      []*VCPU
	exitCounts [arch.NumExitReasons]atomic.Uint64

	state atomic.Int32
	mu    sync.Mutex // guards the fields below and state transitions
	cond  *sync.Cond // signalled on state changes and parking
	// changed is closed (and replaced) on every state change, waking
	// parked vCPUs.
	changed   chan struct{}
	live      int // vCPU goroutines inside Run
	parked    int // of those, parked by Pause
	report    *Report
	destroyed bool
	wg        sync.WaitGroup
	stopCtx   func() bool
}

// NewVM builds a VM: its policies, guest memory from frames, the backend's
// VM with the memory mapped, and its vCPUs in their reset state (vCPU 0 at
// the reset vector, the others waiting for INIT-SIPI). On failure
// everything allocated so far is released.
func NewVM(b Backend, frames *mem.Frames, cfg Config) (*VM, error) {
	if b == nil || frames == nil {
		return nil, errors.New("hv: NewVM needs a backend and a frame allocator")
	}
	if cfg.Name == "" {
		return nil, errors.New("hv: VM config without a name; name it for logs and accounting")
	}
	if cfg.VCPUs < 1 || cfg.VCPUs > 255 {
		return nil, fmt.Errorf("hv: %s: %d vCPUs; give 1 to 255", cfg.Name, cfg.VCPUs)
	}
	cp, err := cpuid.New(cfg.HostCPUID, cpuid.Config{
		VCPUs: cfg.VCPUs, Nested: cfg.Nested, X2APIC: cfg.X2APIC, TSCDeadline: cfg.TSCDeadline, XSAVE: cfg.XSAVE,
		ABIVersion: hypercall.ABI_VERSION, Features: keelFeatures(cfg.Privileged), Extra: cfg.CPUIDExtra,
	})
	if err != nil {
		return nil, fmt.Errorf("hv: %s: %w", cfg.Name, err)
	}
	mp, err := msr.New(msr.Config{EFERMask: cp.EFERMask(), X2APIC: cfg.X2APIC, Nested: cfg.Nested})
	if err != nil {
		return nil, fmt.Errorf("hv: %s: %w", cfg.Name, err)
	}
	layout := mem.DefaultLayout()
	if cfg.Layout != nil {
		layout = *cfg.Layout
	}
	vm := &VM{name: cfg.Name, cfg: cfg, backend: b, cpuid: cp, msrs: mp, hcalls: cfg.Hypercalls, changed: make(chan struct{})}
	vm.cond = sync.NewCond(&vm.mu)
	if vm.hcalls == nil {
		vm.hcalls = hypercall.DefaultTable()
	}
	vm.tsc = cfg.TSC
	if vm.tsc == nil {
		start := time.Now()
		vm.tsc = func() uint64 { return uint64(time.Since(start)) }
	}
	vm.maxPhys = uint8(cp.Lookup(cpuid.LEAF_ADDR_SIZES, 0, 0, 0).EAX)
	if vm.maxPhys == 0 {
		vm.maxPhys = 36 // the architectural default without leaf 8000_0008h
	}
	pp, mpol := bus.DefaultPolicy(), bus.DefaultPolicy()
	if cfg.PortPolicy != nil {
		pp = *cfg.PortPolicy
	}
	if cfg.MMIOPolicy != nil {
		mpol = *cfg.MMIOPolicy
	}
	vm.ports, vm.mmio = bus.NewPortBus(pp), bus.NewMMIOBus(mpol)

	owner := mem.Owner(cfg.Name)
	if vm.mem, err = mem.Allocate(frames, owner, cfg.MemorySize, layout); err != nil {
		return nil, fmt.Errorf("hv: %w", err)
	}
	if err := vm.build(frames, owner); err != nil {
		if rerr := vm.release(); rerr != nil {
			err = fmt.Errorf("%w (and releasing what was built: %v)", err, rerr)
		}
		return nil, err
	}
	return vm, nil
}

// build creates the backend VM, maps memory and creates the vCPUs.
func (vm *VM) build(frames *mem.Frames, owner mem.Owner) error {
	cfg, b := &vm.cfg, vm.backend
	var err error
	if vm.bvm, err = b.NewVM(BackendVMConfig{Name: cfg.Name, VCPUs: cfg.VCPUs, Frames: frames, Owner: owner, PassthroughMSRs: vm.msrs.Passthrough()}); err != nil {
		vm.bvm = nil
		return fmt.Errorf("hv: %s: %s backend: %w", cfg.Name, b.Name(), err)
	}
	if err = vm.bvm.MapMemory(vm.mem.Regions()); err != nil {
		return fmt.Errorf("hv: %s: mapping guest memory: %w", cfg.Name, err)
	}
	for i := 0; i < cfg.VCPUs; i++ {
		bv, err := vm.bvm.NewVCPU(i)
		if err != nil {
			return fmt.Errorf("hv: %s: creating vCPU %d: %w", cfg.Name, i, err)
		}
		v := newVCPU(vm, i, bv)
		vm.vcpus = append(vm.vcpus, v)
		if err := v.reset(i == 0); err != nil {
			return fmt.Errorf("hv: %s: resetting vCPU %d: %w", cfg.Name, i, err)
		}
	}
	return nil
}

func keelFeatures(privileged bool) uint32 {
	f := uint32(cpuid.KEEL_FEATURE_HYPERCALL)
	if privileged {
		f |= cpuid.KEEL_FEATURE_PRIVILEGED
	}
	return f
}

// release frees what NewVM built, in reverse order, collecting errors.
func (vm *VM) release() error {
	var errs []error
	for _, v := range vm.vcpus {
		if err := v.be.Destroy(); err != nil {
			errs = append(errs, fmt.Errorf("vCPU %d: %w", v.id, err))
		}
	}
	// vm.vcpus stays: a late Stop may still kick them (Kick is safe after
	// Destroy).
	if vm.bvm != nil {
		if err := vm.bvm.Destroy(); err != nil {
			errs = append(errs, err)
		}
		vm.bvm = nil
	}
	if vm.mem != nil {
		if err := vm.mem.Release(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Name returns the VM's name.
func (vm *VM) Name() string { return vm.name }

// State returns the current state.
func (vm *VM) State() State { return State(vm.state.Load()) }

// Memory returns the guest RAM.
func (vm *VM) Memory() *mem.GuestMemory { return vm.mem }

// Ports returns the port I/O bus, for registering devices.
func (vm *VM) Ports() *bus.PortBus { return vm.ports }

// MMIO returns the MMIO bus, for registering devices.
func (vm *VM) MMIO() *bus.MMIOBus { return vm.mmio }

// CPUID returns the VM's CPUID policy.
func (vm *VM) CPUID() *cpuid.Policy { return vm.cpuid }

// MSRs returns the VM's MSR policy.
func (vm *VM) MSRs() *msr.Policy { return vm.msrs }

// VCPUs returns the number of vCPUs.
func (vm *VM) VCPUs() int { return len(vm.vcpus) }

// VCPU returns vCPU i, or nil.
func (vm *VM) VCPU(i int) *VCPU {
	if i < 0 || i >= len(vm.vcpus) {
		return nil
	}
	return vm.vcpus[i]
}

// Report returns why the VM stopped or crashed, or nil while it has not.
func (vm *VM) Report() *Report {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.report == nil {
		return nil
	}
	r := *vm.report
	return &r
}

// ExitCounts returns the number of exits per reason so far.
func (vm *VM) ExitCounts() [arch.NumExitReasons]uint64 {
	var c [arch.NumExitReasons]uint64
	for i := range c {
		c[i] = vm.exitCounts[i].Load()
	}
	return c
}

// Info is a snapshot of a VM for listings (`vm list`).
type Info struct {
	// Name, State, VCPUs and MemorySize describe the VM.
	Name       string
	State      State
	VCPUs      int
	MemorySize uint64
	// Backend is the backend's name.
	Backend string
	// Exits counts exits by reason.
	Exits [arch.NumExitReasons]uint64
	// Ports and MMIO are the buses' counters.
	Ports, MMIO bus.Stats
}

// Info returns a snapshot for listings.
func (vm *VM) Info() Info {
	return Info{Name: vm.name, State: vm.State(), VCPUs: len(vm.vcpus), MemorySize: vm.cfg.MemorySize,
		Backend: vm.backend.Name(), Exits: vm.ExitCounts(), Ports: vm.ports.Stats(), MMIO: vm.mmio.Stats()}
}

// ExitSummary formats the non-zero exit counts as "cpuid=3 io=10".
func (i Info) ExitSummary() string {
	var parts []string
	for r, n := range i.Exits {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", arch.ExitReason(r), n))
		}
	}
	return strings.Join(parts, " ")
}

// transition moves from one of the states in from to to, under vm.mu.
func (vm *VM) transitionLocked(op string, to State, from ...State) error {
	cur := State(vm.state.Load())
	for _, f := range from {
		if cur == f {
			vm.state.Store(int32(to))
			close(vm.changed)
			vm.changed = make(chan struct{})
			vm.cond.Broadcast()
			return nil
		}
	}
	names := make([]string, len(from))
	for i, f := range from {
		names[i] = f.String()
	}
	return fmt.Errorf("hv: %s: cannot %s: the VM is %s (allowed from: %s)", vm.name, op, cur, strings.Join(names, ", "))
}

// changedChan returns the channel closed at the next state change.
func (vm *VM) changedChan() <-chan struct{} {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.changed
}

// kickAll forces every vCPU out of the guest.
func (vm *VM) kickAll() {
	for _, v := range vm.vcpus {
		v.be.Kick()
	}
}

// Start moves the VM from created to running and starts one goroutine per
// vCPU. Cancelling ctx stops the VM.
func (vm *VM) Start(ctx context.Context) error {
	vm.mu.Lock()
	if vm.destroyed {
		vm.mu.Unlock()
		return fmt.Errorf("hv: %s: cannot start a destroyed VM", vm.name)
	}
	if err := vm.transitionLocked("start", Running, Created); err != nil {
		vm.mu.Unlock()
		return err
	}
	vm.stopCtx = context.AfterFunc(ctx, func() {
		_ = vm.finish(&Report{State: Stopped, Reason: "stopped: its context ended", VCPU: -1}, "stop")
	})
	vm.mu.Unlock()
	for _, v := range vm.vcpus {
		vm.wg.Add(1)
		go func(v *VCPU) {
			defer vm.wg.Done()
			_ = v.Run(ctx)
		}(v)
	}
	return nil
}

// Pause moves a running VM to paused and waits until every vCPU goroutine
// is parked outside the guest, or ctx ends (the VM stays paused; the
// vCPUs park as soon as their backends return).
func (vm *VM) Pause(ctx context.Context) error {
	vm.mu.Lock()
	if err := vm.transitionLocked("pause", Paused, Running); err != nil {
		vm.mu.Unlock()
		return err
	}
	vm.mu.Unlock()
	vm.kickAll()
	stop := context.AfterFunc(ctx, func() {
		vm.mu.Lock()
		vm.cond.Broadcast()
		vm.mu.Unlock()
	})
	defer stop()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	for vm.parked < vm.live && State(vm.state.Load()) == Paused {
		if ctx.Err() != nil {
			return fmt.Errorf("hv: %s: pause: %d of %d vCPUs parked: %w", vm.name, vm.parked, vm.live, ctx.Err())
		}
		vm.cond.Wait()
	}
	return nil
}

// Resume moves a paused VM back to running.
func (vm *VM) Resume() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.transitionLocked("resume", Running, Paused)
}

// Stop stops the VM (from created, running or paused). It does not wait
// for the vCPU goroutines; use Wait.
func (vm *VM) Stop() error {
	return vm.finish(&Report{State: Stopped, Reason: "stopped by request", VCPU: -1}, "stop")
}

// StopWith stops the VM with a reason and an exit status, as a device does
// when the guest asks for it (ACPI S5, a debug-exit port, a reset request).
// Any goroutine may call it; the vCPUs leave the guest promptly.
func (vm *VM) StopWith(reason string, status uint64) error {
	return vm.finish(&Report{State: Stopped, Reason: reason, VCPU: -1, ExitStatus: status}, "stop")
}

// finish records r and moves the VM to r.State.
func (vm *VM) finish(r *Report, op string) error {
	vm.mu.Lock()
	from := []State{Created, Running, Paused}
	if r.State == Crashed {
		from = []State{Running, Paused}
	}
	if err := vm.transitionLocked(op, r.State, from...); err != nil {
		vm.mu.Unlock()
		return err
	}
	vm.report = r
	vm.mu.Unlock()
	vm.kickAll()
	return nil
}

// Wait blocks until every vCPU goroutine started by Start has returned.
func (vm *VM) Wait() { vm.wg.Wait() }

// Destroyed reports whether Destroy has released the VM.
func (vm *VM) Destroyed() bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.destroyed
}

// Destroy frees the VM: vCPUs, the backend's VM and all guest memory. The
// VM must be created, stopped or crashed, with no vCPU goroutine left
// (call Wait after Stop).
func (vm *VM) Destroy() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.destroyed {
		return fmt.Errorf("hv: %s: destroyed twice", vm.name)
	}
	st := State(vm.state.Load())
	if st != Created && !st.Final() {
		return fmt.Errorf("hv: %s: cannot destroy a %s VM; stop it first", vm.name, st)
	}
	if vm.live != 0 {
		return fmt.Errorf("hv: %s: cannot destroy: %d vCPU goroutines still running; call Wait after Stop", vm.name, vm.live)
	}
	if st == Created {
		vm.transitionLocked("destroy", Stopped, Created)
		vm.report = &Report{State: Stopped, Reason: "destroyed before start", VCPU: -1}
	}
	vm.destroyed = true
	if vm.stopCtx != nil {
		vm.stopCtx()
	}
	if err := vm.release(); err != nil {
		return fmt.Errorf("hv: %s: destroy: %w", vm.name, err)
	}
	return nil
}

// quiescent reports whether no vCPU goroutine can be using the backend:
// the VM is created, or paused with every vCPU parked, or final with every
// goroutine gone. Called with vm.mu held.
func (vm *VM) quiescentLocked() bool {
	switch st := State(vm.state.Load()); {
	case st == Created:
		return true
	case st == Paused:
		return vm.parked == vm.live
	case st.Final():
		return vm.live == 0
	}
	return false
}

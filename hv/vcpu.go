package hv

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/bus"
	"github.com/keel-hv/keel/hv/hypercall"
	"github.com/keel-hv/keel/hv/irq"
	"github.com/keel-hv/keel/hv/msr"
)

// STRING_IO_BATCH is the most INS/OUTS iterations one exit performs; a
// longer REP leaves RIP on the instruction with RCX, RSI and RDI updated,
// so the guest re-executes it (and can take interrupts in between), as the
// hardware does for REP string instructions (Intel SDM Vol. 2B, "REP").
const STRING_IO_BATCH = 1024

// VCPU is one virtual processor. Its run loop (Run) owns the register
// caches and the backend vCPU while the VM runs.
type VCPU struct {
	vm   *VM
	id   int
	be   BackendVCPU
	irq  *irq.Lines
	msrs *msr.State

	// Owned by the goroutine in Run (or the VM's owner while quiescent).
	regs       arch.Regs
	sregs      arch.Sregs
	sregsValid bool
	sregsErr   error
	exit       arch.Exit
	exitValid  bool
	lastIntr   arch.IntrState
	halted     bool
	waitSIPI   bool
	window     bool
	injected   bool
	buf        [8]byte
	hc         hypercall.Env
	hcArgs     hypercall.Args
	emu        emuCPU
	emulator   InstructionEmulator

	// Per-vCPU devices, set before the VM starts: an MSR handler
	// consulted before the MSR policy (the local APIC's MSRs, kvmclock)
	// and a local MMIO window consulted before the VM's MMIO bus (the
	// xAPIC page, which every vCPU sees at the same address but which
	// is its own).
	msrHandler MSRHandler
	localBase  addr.GPA
	localSize  uint64
	localDev   bus.Device

	running atomic.Bool // a goroutine is inside Run
	inRun   atomic.Bool // between event delivery and the backend's return: kicks go to the backend
}

func newVCPU(vm *VM, id int, be BackendVCPU) *VCPU {
	v := &VCPU{vm: vm, id: id, be: be, irq: irq.New(), msrs: vm.msrs.NewState()}
	v.emu.v = v
	if vm.cfg.Emulator != nil {
		v.emulator = vm.cfg.Emulator(&v.emu)
	}
	v.hc = hypercall.Env{VM: vm.name, VCPU: id, Privileged: vm.cfg.Privileged, Memory: vm.mem,
		Console: vm.cfg.Console, HostLog: vm.cfg.HostLog, Scratch: make([]byte, hypercall.MAX_BUFFER)}
	if v.hc.Console == nil {
		v.hc.Console = discard{}
	}
	v.irq.SetKick(func() {
		if v.inRun.Load() {
			v.be.Kick()
		}
	})
	return v
}

// MSRHandler is a per-vCPU device that owns some MSRs (the local APIC's
// x2APIC registers, IA32_APIC_BASE, IA32_TSC_DEADLINE; kvmclock's). The
// core asks it before the VM's MSR policy; an error from ReadMSR or
// WriteMSR injects #GP(0). Methods run on the vCPU's goroutine.
type MSRHandler interface {
	HandlesMSR(index uint32) bool
	ReadMSR(index uint32) (uint64, error)
	WriteMSR(index uint32, value uint64) error
}

// SetMSRHandler installs the vCPU's MSR handler. Call it before Start.
func (v *VCPU) SetMSRHandler(h MSRHandler) { v.msrHandler = h }

// SetLocalMMIO gives the vCPU its own device at [base, base+size), seen
// only by this vCPU's accesses and before the VM's MMIO bus. Call it
// before Start.
func (v *VCPU) SetLocalMMIO(base addr.GPA, size uint64, dev bus.Device) {
	v.localBase, v.localSize, v.localDev = base, size, dev
}

// mmio routes a device access: the local window, else the VM's bus.
func (v *VCPU) mmio(gpa addr.GPA, data []byte, write bool) error {
	if v.localDev != nil && gpa >= v.localBase && uint64(gpa-v.localBase)+uint64(len(data)) <= v.localSize {
		off := uint64(gpa - v.localBase)
		if write {
			v.localDev.Write(off, data)
		} else {
			v.localDev.Read(off, data)
		}
		return nil
	}
	if write {
		return v.vm.mmio.Write(gpa, data)
	}
	return v.vm.mmio.Read(gpa, data)
}

// discard is an allocation-free io.Writer that drops everything.
type discard struct{}

// Write drops p.
func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ID returns the vCPU's index, which is also its APIC ID.
func (v *VCPU) ID() int { return v.id }

// IRQ returns the vCPU's interrupt lines, for interrupt controllers.
func (v *VCPU) IRQ() *irq.Lines { return v.irq }

// quiescent checks that no goroutine is using the backend vCPU.
func (v *VCPU) quiescent(op string) error {
	v.vm.mu.Lock()
	defer v.vm.mu.Unlock()
	if !v.vm.quiescentLocked() || v.vm.destroyed {
		return fmt.Errorf("hv: %s vCPU %d: cannot %s while the VM is %s; pause it first", v.vm.name, v.id, op, v.vm.State())
	}
	return nil
}

// GetRegs returns the vCPU's general registers. The VM must be created,
// paused, stopped or crashed.
func (v *VCPU) GetRegs() (arch.Regs, error) {
	var r arch.Regs
	if err := v.quiescent("read registers"); err != nil {
		return r, err
	}
	err := v.be.GetRegs(&r)
	return r, err
}

// SetRegs sets the vCPU's general registers (a loader's entry state). The
// VM must be created or paused.
func (v *VCPU) SetRegs(r arch.Regs) error {
	if err := v.quiescent("set registers"); err != nil {
		return err
	}
	v.regs = r
	return v.be.SetRegs(&v.regs)
}

// GetSregs returns the vCPU's system registers, like GetRegs.
func (v *VCPU) GetSregs() (arch.Sregs, error) {
	var s arch.Sregs
	if err := v.quiescent("read system registers"); err != nil {
		return s, err
	}
	err := v.be.GetSregs(&s)
	return s, err
}

// SetSregs sets the vCPU's system registers, like SetRegs.
func (v *VCPU) SetSregs(s arch.Sregs) error {
	if err := v.quiescent("set system registers"); err != nil {
		return err
	}
	v.sregs = s
	v.sregsValid = false
	return v.be.SetSregs(&v.sregs)
}

// SetRunnable takes the vCPU out of wait-for-SIPI, so that it starts at
// its current registers (for loaders that start every vCPU themselves).
// The VM must be created or paused.
func (v *VCPU) SetRunnable() error {
	if err := v.quiescent("start the vCPU"); err != nil {
		return err
	}
	v.waitSIPI, v.halted = false, false
	return nil
}

// stopError ends the run loop: the VM stops (crash false) or crashes.
type stopError struct {
	crash  bool
	reason string
	status uint64
}

// Error returns the reason.
func (e *stopError) Error() string { return e.reason }

func crashf(format string, args ...any) error {
	return &stopError{crash: true, reason: fmt.Sprintf(format, args...)}
}

func stopf(format string, args ...any) error {
	return &stopError{reason: fmt.Sprintf(format, args...)}
}

// Run runs the vCPU on the calling goroutine until the VM stops or crashes
// (returning nil, or the crash as an error). Cancelling ctx stops the VM.
// VM.Start calls it on a new goroutine per vCPU; at most one goroutine may
// run a vCPU.
func (v *VCPU) Run(ctx context.Context) error {
	vm := v.vm
	if !v.running.CompareAndSwap(false, true) {
		return fmt.Errorf("hv: %s vCPU %d is already running", vm.name, v.id)
	}
	defer v.running.Store(false)
	vm.mu.Lock()
	if st := vm.State(); st != Running && st != Paused {
		vm.mu.Unlock()
		return fmt.Errorf("hv: %s vCPU %d: the VM is %s; start it with VM.Start", vm.name, v.id, st)
	}
	vm.live++
	vm.mu.Unlock()
	defer func() {
		vm.mu.Lock()
		vm.live--
		vm.cond.Broadcast()
		vm.mu.Unlock()
	}()
	for {
		switch vm.State() {
		case Running:
		case Paused:
			if !v.pauseWait() {
				return nil
			}
			continue
		default:
			return nil
		}
		if err := v.startupSignals(); err != nil {
			return v.fail(err)
		}
		if v.halted || v.waitSIPI {
			v.park(ctx)
			if ctx.Err() != nil {
				_ = vm.finish(&Report{State: Stopped, Reason: "stopped: its context ended", VCPU: -1}, "stop")
				return nil
			}
			continue
		}
		if err := v.step(); err != nil {
			return v.fail(err)
		}
	}
}

// step enters the guest once and handles the exit.
func (v *VCPU) step() error {
	v.inRun.Store(true)
	if err := v.deliver(); err != nil {
		v.inRun.Store(false)
		return err
	}
	ex, err := v.be.Run()
	v.inRun.Store(false)
	if err != nil {
		return crashf("%s backend failed to run the guest: %v", v.vm.backend.Name(), err)
	}
	v.exit = ex
	v.exitValid = true
	return v.handleExit(&v.exit)
}

// deliver injects the next pending event, or requests an interrupt window,
// before an entry.
func (v *VCPU) deliver() error {
	st := v.lastIntr
	if v.injected {
		st.EventPending = true // an exception from the last exit goes first
		v.injected = false
	}
	d := v.irq.Next(st)
	if d.Inject {
		if err := v.be.Inject(d.Event); err != nil {
			return crashf("injecting %s: %v", d.Event, err)
		}
	}
	if d.Window != v.window {
		v.be.RequestInterruptWindow(d.Window)
		v.window = d.Window
	}
	return nil
}

// pauseWait parks the goroutine while the VM is paused and reports
// whether it runs again.
func (v *VCPU) pauseWait() bool {
	vm := v.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.parked++
	vm.cond.Broadcast()
	for vm.State() == Paused {
		vm.cond.Wait()
	}
	vm.parked--
	return vm.State() == Running
}

// park waits while the vCPU is halted (until an interrupt it can take is
// pending) or waiting for SIPI, the VM changes state, or ctx ends.
func (v *VCPU) park(ctx context.Context) {
	for {
		if v.vm.State() != Running {
			return
		}
		if v.waitSIPI {
			if v.irq.StartupPending() {
				return
			}
		} else if v.irq.Runnable(v.lastIntr.IF) {
			v.halted = false
			return
		}
		ch := v.vm.changedChan()
		if v.vm.State() != Running {
			return
		}
		select {
		case <-v.irq.Wake():
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// startupSignals handles a pending INIT or SIPI.
func (v *VCPU) startupSignals() error {
	if !v.irq.StartupPending() {
		return nil
	}
	if v.irq.TakeInit() {
		if err := v.doInit(); err != nil {
			return err
		}
	}
	if vec, ok := v.irq.TakeSIPI(); ok && v.waitSIPI {
		return v.doSIPI(vec)
	}
	return nil
}

// fail records why the loop ends and moves the VM to stopped or crashed.
func (v *VCPU) fail(err error) error {
	r := &Report{State: Crashed, Reason: err.Error(), VCPU: v.id, Exit: v.exit, HasExit: v.exitValid}
	var se *stopError
	if errors.As(err, &se) && !se.crash {
		r.State = Stopped
		r.ExitStatus = se.status
	}
	if v.be.GetRegs(&r.Regs) == nil && v.be.GetSregs(&r.Sregs) == nil {
		r.HasRegs = true
	}
	_ = v.vm.finish(r, "record the failure") // fails only if another vCPU or Stop got there first
	if r.State == Crashed {
		return fmt.Errorf("hv: %s vCPU %d crashed: %s", v.vm.name, v.id, r.Reason)
	}
	return nil
}

// reset puts the vCPU in the RESET state; application processors then wait
// for INIT-SIPI.
func (v *VCPU) reset(bsp bool) error {
	v.regs, v.sregs = arch.ResetState(bsp)
	v.sregsValid = false
	if err := v.be.SetRegs(&v.regs); err != nil {
		return err
	}
	if err := v.be.SetSregs(&v.sregs); err != nil {
		return err
	}
	v.waitSIPI = !bsp
	return nil
}

// doInit applies INIT: the reset state except IA32_APIC_BASE, then
// wait-for-SIPI.
func (v *VCPU) doInit() error {
	if err := v.loadSregs(); err != nil {
		return err
	}
	apic := v.sregs.APICBase
	v.regs, v.sregs = arch.ResetState(apic&arch.APIC_BASE_BSP != 0)
	v.sregs.APICBase = apic
	if err := v.storeRegs(); err != nil {
		return err
	}
	if err := v.storeSregs(); err != nil {
		return err
	}
	v.waitSIPI, v.halted = true, false
	return nil
}

// doSIPI starts a vCPU waiting for SIPI at vector<<12 in real mode (Intel
// SDM Vol. 3A, §9.4.4.1 "Typical BSP Initialization Sequence").
func (v *VCPU) doSIPI(vec uint8) error {
	if err := v.loadRegs(); err != nil {
		return err
	}
	if err := v.loadSregs(); err != nil {
		return err
	}
	v.sregs.CS.Selector = uint16(vec) << 8
	v.sregs.CS.Base = uint64(vec) << 12
	v.regs.RIP = 0
	if err := v.storeRegs(); err != nil {
		return err
	}
	if err := v.storeSregs(); err != nil {
		return err
	}
	v.waitSIPI = false
	return nil
}

func (v *VCPU) loadRegs() error {
	if err := v.be.GetRegs(&v.regs); err != nil {
		return crashf("reading registers from the %s backend: %v", v.vm.backend.Name(), err)
	}
	return nil
}

func (v *VCPU) storeRegs() error {
	if err := v.be.SetRegs(&v.regs); err != nil {
		return crashf("writing registers to the %s backend: %v", v.vm.backend.Name(), err)
	}
	return nil
}

func (v *VCPU) loadSregs() error {
	if v.sregsValid {
		return nil
	}
	if err := v.be.GetSregs(&v.sregs); err != nil {
		return crashf("reading system registers from the %s backend: %v", v.vm.backend.Name(), err)
	}
	v.sregsValid = true
	return nil
}

func (v *VCPU) storeSregs() error {
	if err := v.be.SetSregs(&v.sregs); err != nil {
		return crashf("writing system registers to the %s backend: %v", v.vm.backend.Name(), err)
	}
	v.sregsValid = true
	return nil
}

// complete finishes an intercepted instruction: RIP moves to the next one
// and the registers go back to the backend.
func (v *VCPU) complete(ex *arch.Exit) error {
	if ex.NextRIP == 0 {
		// The backend does not know the instruction's length (SVM
		// without NRIP-save): decode it, prefixes and all.
		if v.emulator == nil {
			return crashf("the %s backend reported no next RIP for a %s exit at rip=%#x, and the VM has no instruction emulator to decode it", v.vm.backend.Name(), ex.Reason, ex.RIP)
		}
		v.regs.RIP = ex.RIP
		v.sregsErr = nil
		n, err := v.emulator.InsnLength()
		if v.sregsErr != nil {
			return v.sregsErr
		}
		if err != nil {
			return v.guestFault(err, fmt.Sprintf("decoding the intercepted %s instruction", ex.Reason))
		}
		ex.NextRIP = ex.RIP + uint64(n)
	}
	v.regs.RIP = ex.NextRIP
	v.lastIntr.Shadow = false
	return v.storeRegs()
}

// inject queues a fault for the next entry; RIP stays on the instruction.
func (v *VCPU) inject(ev arch.Event) error {
	if err := v.be.Inject(ev); err != nil {
		return crashf("injecting %s: %v", ev, err)
	}
	v.injected = true
	return nil
}

// handleExit is the one exit dispatcher: every exit a backend returns
// comes through here. It returns nil to keep running, or an error that
// stops or crashes the VM.
func (v *VCPU) handleExit(ex *arch.Exit) error {
	v.sregsValid = false
	v.lastIntr = ex.Intr
	if int(ex.Reason) < arch.NumExitReasons {
		v.vm.exitCounts[ex.Reason].Add(1)
	}
	switch ex.Reason {
	case arch.ExitCPUID:
		return v.handleCPUID(ex)
	case arch.ExitMSRRead:
		return v.handleRDMSR(ex)
	case arch.ExitMSRWrite:
		return v.handleWRMSR(ex)
	case arch.ExitIO:
		return v.handleIO(ex)
	case arch.ExitMMIO:
		return v.handleMMIO(ex)
	case arch.ExitPageFault:
		return v.handlePageFault(ex)
	case arch.ExitHLT:
		if err := v.loadRegs(); err != nil {
			return err
		}
		if err := v.complete(ex); err != nil {
			return err
		}
		v.halted = true
		return nil
	case arch.ExitHypercall:
		return v.handleHypercall(ex)
	case arch.ExitShutdown:
		return crashf("triple fault (shutdown) at rip=%#x", ex.RIP)
	case arch.ExitInterrupt, arch.ExitNMI:
		runtime.Gosched() // the host's turn: a slice ended or a kick arrived
		return nil
	case arch.ExitInterruptWindow:
		return nil // deliver injects on the way back in
	case arch.ExitInit:
		return v.doInit()
	case arch.ExitSIPI:
		if v.waitSIPI {
			return v.doSIPI(ex.SIPIVector)
		}
		return nil // a SIPI outside wait-for-SIPI is ignored, as on hardware
	case arch.ExitInvalidGuestState:
		return crashf("the CPU refused the guest state: %s", ex.Message)
	case arch.ExitEntryFailure:
		return crashf("VM entry failed: %s", ex.Message)
	case arch.ExitBackendSpecific:
		return crashf("unhandled %s exit, code %#x: %s", v.vm.backend.Name(), ex.Code, ex.Message)
	}
	return crashf("the %s backend returned an unclassified exit (reason %d, code %#x)", v.vm.backend.Name(), ex.Reason, ex.Code)
}

func (v *VCPU) handleCPUID(ex *arch.Exit) error {
	if err := v.loadRegs(); err != nil {
		return err
	}
	var cr4 uint64
	if v.vm.cpuid.NeedsCR4() {
		if err := v.loadSregs(); err != nil {
			return err
		}
		cr4 = v.sregs.CR4
	}
	r := v.vm.cpuid.Lookup(uint32(v.regs.GPR[arch.RAX]), uint32(v.regs.GPR[arch.RCX]), uint32(v.id), cr4)
	v.regs.GPR[arch.RAX] = uint64(r.EAX)
	v.regs.GPR[arch.RBX] = uint64(r.EBX)
	v.regs.GPR[arch.RCX] = uint64(r.ECX)
	v.regs.GPR[arch.RDX] = uint64(r.EDX)
	return v.complete(ex)
}

func (v *VCPU) handleRDMSR(ex *arch.Exit) error {
	if err := v.loadRegs(); err != nil {
		return err
	}
	idx := uint32(v.regs.GPR[arch.RCX])
	if h := v.msrHandler; h != nil && h.HandlesMSR(idx) {
		val, err := h.ReadMSR(idx)
		if err != nil {
			return v.inject(arch.Exception(arch.VECTOR_GP, 0))
		}
		v.regs.GPR[arch.RAX] = val & 0xffffffff
		v.regs.GPR[arch.RDX] = val >> 32
		return v.complete(ex)
	}
	val, out := v.vm.msrs.Read(v.msrs, idx, v.vm.tsc())
	switch out {
	case msr.Fault:
		return v.inject(arch.Exception(arch.VECTOR_GP, 0))
	case msr.UseEFER, msr.UseAPICBase:
		if err := v.loadSregs(); err != nil {
			return err
		}
		val = v.sregs.EFER
		if out == msr.UseAPICBase {
			val = v.sregs.APICBase
		}
	}
	v.regs.GPR[arch.RAX] = val & 0xffffffff
	v.regs.GPR[arch.RDX] = val >> 32
	return v.complete(ex)
}

func (v *VCPU) handleWRMSR(ex *arch.Exit) error {
	if err := v.loadRegs(); err != nil {
		return err
	}
	idx := uint32(v.regs.GPR[arch.RCX])
	val := v.regs.GPR[arch.RDX]<<32 | v.regs.GPR[arch.RAX]&0xffffffff
	if h := v.msrHandler; h != nil && h.HandlesMSR(idx) {
		if err := h.WriteMSR(idx, val); err != nil {
			return v.inject(arch.Exception(arch.VECTOR_GP, 0))
		}
		return v.complete(ex)
	}
	switch v.vm.msrs.Write(v.msrs, idx, val) {
	case msr.Fault:
		return v.inject(arch.Exception(arch.VECTOR_GP, 0))
	case msr.UseEFER:
		if err := v.loadSregs(); err != nil {
			return err
		}
		nv, ok := v.vm.msrs.CheckEFER(v.sregs.EFER, val, v.sregs.CR0)
		if !ok {
			return v.inject(arch.Exception(arch.VECTOR_GP, 0))
		}
		v.sregs.EFER = nv
		if err := v.storeSregs(); err != nil {
			return err
		}
	case msr.UseAPICBase:
		if err := v.loadSregs(); err != nil {
			return err
		}
		nv, ok := v.vm.msrs.CheckAPICBase(v.sregs.APICBase, val)
		if !ok {
			return v.inject(arch.Exception(arch.VECTOR_GP, 0))
		}
		v.sregs.APICBase = nv
		if err := v.storeSregs(); err != nil {
			return err
		}
	}
	return v.complete(ex)
}

// getLE and putLE convert between registers and little-endian bus data.
func getLE(b []byte) uint64 {
	var x uint64
	for i := len(b) - 1; i >= 0; i-- {
		x = x<<8 | uint64(b[i])
	}
	return x
}

func putLE(b []byte, x uint64) {
	for i := range b {
		b[i] = byte(x)
		x >>= 8
	}
}

// mergeIn puts an IN result of len(b) bytes into RAX: AL and AX keep the
// other bits, EAX zero-extends (as a 32-bit register write does in 64-bit
// mode).
func mergeIn(rax uint64, b []byte) uint64 {
	switch len(b) {
	case 1:
		return rax&^0xff | getLE(b)
	case 2:
		return rax&^0xffff | getLE(b)
	}
	return getLE(b)
}

func (v *VCPU) handleIO(ex *arch.Exit) error {
	io := &ex.IO
	switch io.Size {
	case 1, 2, 4:
	default:
		return crashf("the %s backend reported a %d-byte port access at port %#x", v.vm.backend.Name(), io.Size, io.Port)
	}
	if io.String {
		return v.handleStringIO(ex)
	}
	if err := v.loadRegs(); err != nil {
		return err
	}
	buf := v.buf[:io.Size]
	if io.In {
		if err := v.vm.ports.Read(io.Port, buf); err != nil {
			return stopf("guest port I/O failed: %v", err)
		}
		v.regs.GPR[arch.RAX] = mergeIn(v.regs.GPR[arch.RAX], buf)
	} else {
		putLE(buf, v.regs.GPR[arch.RAX])
		if err := v.vm.ports.Write(io.Port, buf); err != nil {
			return stopf("guest port I/O failed: %v", err)
		}
	}
	return v.complete(ex)
}

// addrMask returns the mask of an address size in bytes.
func addrMask(size uint8) (uint64, bool) {
	switch size {
	case 2:
		return 0xffff, true
	case 4:
		return 0xffffffff, true
	case 8:
		return ^uint64(0), true
	}
	return 0, false
}

// handleStringIO performs INS/OUTS, with REP, between the port bus and
// guest memory at ES:rDI (INS) or seg:rSI (OUTS). Segment limits are not
// checked.
func (v *VCPU) handleStringIO(ex *arch.Exit) error {
	io := &ex.IO
	mask, ok := addrMask(io.AddrSize)
	if !ok {
		return crashf("the %s backend reported string I/O with address size %d", v.vm.backend.Name(), io.AddrSize)
	}
	if err := v.loadRegs(); err != nil {
		return err
	}
	if err := v.loadSregs(); err != nil {
		return err
	}
	count := uint64(1)
	if io.Rep {
		count = v.regs.GPR[arch.RCX] & mask
		if count == 0 {
			return v.complete(ex)
		}
	}
	mode := arch.ModeOf(&v.sregs, v.regs.RFLAGS)
	segReg, idx := arch.SEG_ES, arch.RDI
	if !io.In {
		segReg, idx = io.Seg, arch.RSI
	}
	seg := v.sregs.Seg(segReg)
	if seg == nil {
		seg = &v.sregs.DS
	}
	base := seg.Base
	if mode == arch.ModeLong64 && segReg != arch.SEG_FS && segReg != arch.SEG_GS {
		base = 0
	}
	step := uint64(io.Size)
	if v.regs.RFLAGS&arch.RFLAGS_DF != 0 {
		step = -step
	}
	buf := v.buf[:io.Size]
	n := min(count, STRING_IO_BATCH)
	for i := uint64(0); i < n; i++ {
		off := v.regs.GPR[idx] & mask
		lin := base + off
		if mode != arch.ModeLong64 {
			lin &= 0xffffffff
		}
		var err error
		if io.In {
			if err = v.vm.ports.Read(io.Port, buf); err != nil {
				return stopf("guest port I/O failed: %v", err)
			}
			err = v.linearAccess(lin, buf, true)
		} else {
			if err = v.linearAccess(lin, buf, false); err == nil {
				if err = v.vm.ports.Write(io.Port, buf); err != nil {
					return stopf("guest port I/O failed: %v", err)
				}
			}
		}
		if err != nil {
			return v.guestFault(err, "string I/O")
		}
		v.regs.GPR[idx] = v.regs.GPR[idx]&^mask | (off+step)&mask
		if io.Rep {
			c := v.regs.GPR[arch.RCX]
			v.regs.GPR[arch.RCX] = c&^mask | (c-1)&mask
		}
	}
	if io.Rep && v.regs.GPR[arch.RCX]&mask != 0 {
		return v.storeRegs() // more to do: the guest re-executes the instruction
	}
	return v.complete(ex)
}

// guestFault turns an error from a guest access into an injected exception
// (*GuestException) or a VM stop. Registers are written back first, so an
// exception leaves them as the faulting iteration found them.
func (v *VCPU) guestFault(err error, what string) error {
	var ge *GuestException
	if errors.As(err, &ge) {
		if serr := v.storeRegs(); serr != nil {
			return serr
		}
		return v.inject(ge.Event)
	}
	var se *stopError
	if errors.As(err, &se) {
		return err
	}
	return crashf("%s at rip=%#x failed: %v", what, v.regs.RIP, err)
}

// linearAccess reads or writes guest memory at linear address lin,
// page by page.
func (v *VCPU) linearAccess(lin uint64, p []byte, write bool) error {
	for len(p) > 0 {
		k := min(uint64(len(p)), addr.PAGE_SIZE_4K-lin&(addr.PAGE_SIZE_4K-1))
		gpa, err := v.translate(lin, write)
		if err != nil {
			return err
		}
		if write {
			err = v.writePhys(gpa, p[:k])
		} else {
			err = v.readPhys(gpa, p[:k])
		}
		if err != nil {
			return err
		}
		p = p[k:]
		lin += k
	}
	return nil
}

// translate maps a linear address to a GPA: identity without paging,
// otherwise through the instruction emulator's page walk.
func (v *VCPU) translate(lin uint64, write bool) (addr.GPA, error) {
	if v.sregs.CR0&arch.CR0_PG == 0 {
		return addr.GPA(lin), nil
	}
	if v.emulator == nil {
		return 0, crashf("string I/O at linear %#x under paging needs the instruction emulator, and the VM has none", lin)
	}
	acc := arch.AccessRead
	if write {
		acc = arch.AccessWrite
	}
	return v.emulator.TranslateGVA(addr.GVA(lin), acc)
}

// readPhys reads guest RAM, or the MMIO bus outside RAM.
func (v *VCPU) readPhys(gpa addr.GPA, p []byte) error {
	if v.vm.mem.Contains(gpa, uint64(len(p))) {
		return v.vm.mem.Read(gpa, p)
	}
	if err := v.outsideRAM(gpa, arch.AccessRead); err != nil {
		return err
	}
	return v.vm.mmio.Read(gpa, p)
}

// writePhys writes guest RAM, or the MMIO bus outside RAM.
func (v *VCPU) writePhys(gpa addr.GPA, p []byte) error {
	if v.vm.mem.Contains(gpa, uint64(len(p))) {
		return v.vm.mem.Write(gpa, p)
	}
	if err := v.outsideRAM(gpa, arch.AccessWrite); err != nil {
		return err
	}
	return v.vm.mmio.Write(gpa, p)
}

// outsideRAM applies the VM's policy to an access at gpa, which is not
// RAM: fine if a device claims it or the policy treats it as unclaimed
// MMIO, otherwise a stop.
func (v *VCPU) outsideRAM(gpa addr.GPA, acc arch.Access) error {
	local := v.localDev != nil && gpa >= v.localBase && uint64(gpa-v.localBase) < v.localSize
	if local || v.vm.mmio.Claimed(gpa) || v.vm.cfg.OutsideRAM == OutsideRAMUnclaimed {
		return nil
	}
	return stopf("guest %s access at %s (rip=%#x) is outside its RAM and every device (%d MiB of RAM; outside-RAM policy: stop)",
		accessWord(acc), gpa, v.regs.RIP, v.vm.mem.Size()>>20)
}

func accessWord(a arch.Access) string {
	switch {
	case a&arch.AccessExec != 0:
		return "instruction fetch"
	case a&arch.AccessWrite != 0:
		return "write"
	}
	return "read"
}

func (v *VCPU) handlePageFault(ex *arch.Exit) error {
	f := &ex.Fault
	if v.vm.mem.Contains(f.GPA, 1) {
		return crashf("nested page fault (%s) at %s, inside guest RAM: the %s backend's nested page tables do not map it", f.Access, f.GPA, v.vm.backend.Name())
	}
	if err := v.loadRegs(); err != nil {
		return err
	}
	switch {
	case f.Access&arch.AccessExec != 0:
		return stopf("guest instruction fetch at %s (rip=%#x) is outside its RAM; Keel does not execute from device memory", f.GPA, ex.RIP)
	case f.Walk:
		return stopf("guest page-table walk touched %s (rip=%#x), outside its RAM", f.GPA, ex.RIP)
	}
	if err := v.outsideRAM(f.GPA, f.Access); err != nil {
		return err
	}
	return v.emulate(f.GPA)
}

func (v *VCPU) handleMMIO(ex *arch.Exit) error {
	m := &ex.MMIO
	if err := v.loadRegs(); err != nil {
		return err
	}
	acc := arch.AccessRead
	if m.Write {
		acc = arch.AccessWrite
	}
	if err := v.outsideRAM(m.GPA, acc); err != nil {
		return err
	}
	if m.NeedsDecode {
		return v.emulate(m.GPA)
	}
	switch m.Size {
	case 1, 2, 4, 8:
	default:
		return crashf("the %s backend reported a %d-byte MMIO access at %s", v.vm.backend.Name(), m.Size, m.GPA)
	}
	if m.Reg >= 16 {
		return crashf("the %s backend reported MMIO destination register %d", v.vm.backend.Name(), m.Reg)
	}
	buf := v.buf[:m.Size]
	if m.Write {
		putLE(buf, m.Data)
		if err := v.mmio(m.GPA, buf, true); err != nil {
			return stopf("guest MMIO failed: %v", err)
		}
	} else {
		if err := v.mmio(m.GPA, buf, false); err != nil {
			return stopf("guest MMIO failed: %v", err)
		}
		v.regs.GPR[m.Reg] = getLE(buf)
	}
	return v.complete(ex)
}

// emulate hands the instruction at RIP to the emulator. Registers have
// been loaded.
func (v *VCPU) emulate(gpa addr.GPA) error {
	if v.emulator == nil {
		return crashf("MMIO access at %s needs the instruction emulator, and the VM has none", gpa)
	}
	v.sregsErr = nil
	err := v.emulator.EmulateMMIO(gpa)
	if v.sregsErr != nil {
		return v.sregsErr
	}
	if err != nil {
		return v.guestFault(err, fmt.Sprintf("MMIO emulation at %s", gpa))
	}
	v.lastIntr.Shadow = false
	return v.storeRegs()
}

func (v *VCPU) handleHypercall(ex *arch.Exit) error {
	if err := v.loadRegs(); err != nil {
		return err
	}
	env := &v.hc
	env.CPL = ex.CPL
	env.PowerOff = false
	v.hcArgs = hypercall.Decode(&v.regs)
	v.regs.GPR[arch.RAX] = v.vm.hcalls.Dispatch(env, &v.hcArgs)
	if err := v.complete(ex); err != nil {
		return err
	}
	if env.PowerOff {
		return &stopError{reason: fmt.Sprintf("the guest powered off (status %d)", env.ExitStatus), status: env.ExitStatus}
	}
	return nil
}

// emuCPU is the vCPU as InstructionEmulator sees it.
type emuCPU struct{ v *VCPU }

// Regs implements EmuCPU.
func (c *emuCPU) Regs() *arch.Regs { return &c.v.regs }

// Sregs implements EmuCPU. A backend failure is remembered and ends the
// emulation with a crash.
func (c *emuCPU) Sregs() *arch.Sregs {
	if err := c.v.loadSregs(); err != nil && c.v.sregsErr == nil {
		c.v.sregsErr = err
	}
	return &c.v.sregs
}

// Insn implements EmuCPU.
func (c *emuCPU) Insn() []byte {
	n := min(int(c.v.exit.InsnLen), arch.MAX_INSN_LEN)
	return c.v.exit.Insn[:n]
}

// MaxPhysAddr implements EmuCPU.
func (c *emuCPU) MaxPhysAddr() uint8 { return c.v.vm.maxPhys }

// ReadPhys implements EmuCPU.
func (c *emuCPU) ReadPhys(gpa addr.GPA, p []byte) error { return c.v.readPhys(gpa, p) }

// WritePhys implements EmuCPU.
func (c *emuCPU) WritePhys(gpa addr.GPA, p []byte) error { return c.v.writePhys(gpa, p) }

// MMIO implements EmuCPU.
func (c *emuCPU) MMIO(gpa addr.GPA, data []byte, write bool) error {
	return c.v.mmio(gpa, data, write)
}

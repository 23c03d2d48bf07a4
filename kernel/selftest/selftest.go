// Package selftest runs Keel's guest suite: small guests (package guests)
// in VMs on the real backend, each proving one thing the hypervisor must
// do, and reports `selftest: N passed, M failed`.
//
// The package is pure Go and compiles on the host; the cases need a real
// backend (svm or vmx) and run in the kernel.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-hv/keel/devices/conport"
	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/cpuid"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/kernel/selftest/guests"
)

// Env is what the cases need from the kernel.
type Env struct {
	// Backend runs the guests.
	Backend hv.Backend
	// Frames provides their memory.
	Frames *mem.Frames
	// HostCPUID reads the host's CPUID.
	HostCPUID cpuid.HostFunc
	// Console shows what the guests print, prefixed with the VM name.
	Console io.Writer
	// Created, if set, is told of every VM the suite creates, so that
	// `vm list` can show them while they exist.
	Created func(*hv.VM)
}

// GUEST_MEMORY is each test VM's RAM; CASE_TIMEOUT bounds each case.
const (
	GUEST_MEMORY = 16 << 20
	CASE_TIMEOUT = 30 * time.Second
	// CONSOLE_PORT is where the guests print (conport).
	CONSOLE_PORT = 0x3f8
	// MMIO_DEVICE is the guest-physical address of the mmio guest's
	// register device (outside its RAM).
	MMIO_DEVICE = 0x20000000
)

// scratch is a device of 32 byte-wide registers that counts accesses.
type scratch struct {
	mu       sync.Mutex
	regs     [32]byte
	accesses atomic.Int64
}

func (d *scratch) Read(off uint64, data []byte) {
	d.accesses.Add(1)
	d.mu.Lock()
	copy(data, d.regs[off:])
	d.mu.Unlock()
}

func (d *scratch) Write(off uint64, data []byte) {
	d.accesses.Add(1)
	d.mu.Lock()
	copy(d.regs[off:], data)
	d.mu.Unlock()
}

// Case is one check.
type Case struct {
	Name string
	Run  func(env Env) error
}

// Cases returns the suite.
func Cases() []Case {
	return []Case{
		{"real-mode: port IO, CPUID policy, hypercall, poweroff", func(env Env) error {
			return expectPoweroff(env, "st-real", "real", "hello from real mode")
		}},
		{"long-mode: protected then 64-bit mode with paging", func(env Env) error {
			return expectPoweroff(env, "st-long", "long", "hello from protected mode", "hello from long mode")
		}},
		{"mmio: every instruction form reaches a device through the emulator", func(env Env) error {
			dev := &scratch{}
			r, text, err := run(env, "st-mmio", "mmio", func(vm *hv.VM) error {
				return vm.MMIO().Register(MMIO_DEVICE, uint64(len(dev.regs)), dev, "scratch")
			})
			if err != nil {
				return err
			}
			if r.State != hv.Stopped || r.ExitStatus != 0 || !strings.Contains(text, "mmio ok") {
				return fmt.Errorf("want the guest to check every form and power off with 0, got %s: %s (printed %q)", r.State, r.Reason, text)
			}
			if n := dev.accesses.Load(); n < 20 {
				return fmt.Errorf("the device saw %d accesses, want at least 20", n)
			}
			return nil
		}},
		{"hlt-irq: HLT parks the vCPU until an injected interrupt runs the guest's handler", func(env Env) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			vm, err := start(ctx, env, "st-irq", "irq", nil)
			if err != nil {
				return err
			}
			defer destroy(vm)
			deadline := time.Now().Add(CASE_TIMEOUT)
			for !strings.Contains(consoleText(vm), "waiting for interrupt") {
				if time.Now().After(deadline) || vm.State().Final() {
					vm.Stop()
					return fmt.Errorf("the guest did not reach its HLT (printed %q)", consoleText(vm))
				}
				time.Sleep(time.Millisecond)
			}
			// Let it halt, then check that it stays parked.
			time.Sleep(50 * time.Millisecond)
			if vm.State().Final() {
				return fmt.Errorf("the guest ended before the interrupt: %s", vm.Report().Reason)
			}
			if err := vm.VCPU(0).IRQ().Raise(0x30); err != nil {
				return err
			}
			if !waitDone(vm, CASE_TIMEOUT) {
				vm.Stop()
				return errors.New("the interrupt did not wake the halted guest")
			}
			r := vm.Report()
			if r.State != hv.Stopped || r.ExitStatus != 0 || !strings.Contains(consoleText(vm), "handled after HLT") {
				return fmt.Errorf("want the handler to run and a poweroff with 0, got %s: %s", r.State, r.Reason)
			}
			return nil
		}},
		{"triple-fault: the VM crashes, Keel goes on", func(env Env) error {
			r, _, err := run(env, "st-triple", "triple", nil)
			if err != nil {
				return err
			}
			if r.State != hv.Crashed || !strings.Contains(strings.ToLower(r.Reason), "shutdown") && !strings.Contains(strings.ToLower(r.Reason), "triple") {
				return fmt.Errorf("want a crash on shutdown, got %s: %s", r.State, r.Reason)
			}
			if !r.HasRegs {
				return errors.New("the crash report has no registers")
			}
			fmt.Fprintf(env.Console, "[st-triple] %s\n", strings.ReplaceAll(r.String(), "\n", "\n[st-triple] "))
			return nil
		}},
		{"outside-ram: access beyond RAM stops the VM with a report", func(env Env) error {
			r, _, err := run(env, "st-outside", "outside", nil)
			if err != nil {
				return err
			}
			if !r.State.Final() || !strings.Contains(r.Reason, "0x40000000") {
				return fmt.Errorf("want a stop naming GPA 0x40000000, got %s: %s", r.State, r.Reason)
			}
			return nil
		}},
		{"two-vms: two guests at the same time", func(env Env) error {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = expectPoweroff(env, fmt.Sprintf("st-pair%d", i), "long", "hello from long mode")
				}()
			}
			wg.Wait()
			return errors.Join(errs...)
		}},
		{"leak: 20 VMs created, run and destroyed return all memory", func(env Env) error {
			before := env.Frames.Stats()
			for i := range 20 {
				if err := expectPoweroff(env, fmt.Sprintf("st-leak%d", i), "real", "hello from real mode"); err != nil {
					return err
				}
			}
			after := env.Frames.Stats()
			if after.Free != before.Free {
				return fmt.Errorf("free memory %d bytes before, %d after 20 VMs", before.Free, after.Free)
			}
			return nil
		}},
		{"spin: a guest that never exits does not stop others", func(env Env) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			spin, err := start(ctx, env, "st-spin", "spin", nil)
			if err != nil {
				return err
			}
			defer destroy(spin)
			// Several guests at once, more than CPUs, while the
			// spinner holds one CPU.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = expectPoweroff(env, fmt.Sprintf("st-beside%d", i), "real", "hello from real mode")
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			if s := spin.State(); s != hv.Running {
				return fmt.Errorf("the spinning VM is %s, want running", s)
			}
			if err := spin.Stop(); err != nil {
				return err
			}
			if !waitDone(spin, CASE_TIMEOUT) {
				return errors.New("the spinning VM did not stop within the timeout: it is never interrupted")
			}
			return nil
		}},
	}
}

// Run runs every case and prints one line per case and the summary.
func Run(env Env, out io.Writer) (passed, failed int) {
	for i, c := range Cases() {
		err := c.Run(env)
		if err != nil {
			failed++
			fmt.Fprintf(out, "selftest: %d %s: FAIL: %v\n", i+1, c.Name, err)
			continue
		}
		passed++
		fmt.Fprintf(out, "selftest: %d %s: ok\n", i+1, c.Name)
	}
	fmt.Fprintf(out, "selftest: %d passed, %d failed\n", passed, failed)
	return passed, failed
}

// expectPoweroff runs guest and wants it to print every line in want and
// power off with status 0.
func expectPoweroff(env Env, name, guest string, want ...string) error {
	r, text, err := run(env, name, guest, nil)
	if err != nil {
		return err
	}
	if r.State != hv.Stopped || r.ExitStatus != 0 || !strings.Contains(r.Reason, "powered off") {
		return fmt.Errorf("want poweroff with status 0, got %s: %s", r.State, r.Reason)
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			return fmt.Errorf("the guest did not print %q (printed %q)", w, text)
		}
	}
	return nil
}

// run starts guest in a new VM, waits for it to end (stopping it at the
// timeout) and destroys it; it returns the report and what it printed.
func run(env Env, name, guest string, setup func(*hv.VM) error) (*hv.Report, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	vm, err := start(ctx, env, name, guest, setup)
	if err != nil {
		return nil, "", err
	}
	defer destroy(vm)
	if !waitDone(vm, CASE_TIMEOUT) {
		vm.Stop()
		vm.Wait()
		return nil, consoleText(vm), fmt.Errorf("%s did not finish within %v", name, CASE_TIMEOUT)
	}
	return vm.Report(), consoleText(vm), nil
}

var consoles sync.Map // *hv.VM -> *conport.Port

// destroy frees the VM and forgets its console.
func destroy(vm *hv.VM) {
	vm.Destroy()
	consoles.Delete(vm)
}

func consoleText(vm *hv.VM) string {
	if p, ok := consoles.Load(vm); ok {
		return p.(*conport.Port).Text()
	}
	return ""
}

// start creates a one-vCPU VM with the guest image loaded at
// guests.LOAD_ADDRESS, its vCPU in real mode at 0000:LOAD_ADDRESS, and
// starts it.
func start(ctx context.Context, env Env, name, guest string, setup func(*hv.VM) error) (*hv.VM, error) {
	img, ok := guests.Images[guest]
	if !ok {
		return nil, fmt.Errorf("no guest %q", guest)
	}
	vm, err := hv.NewVM(env.Backend, env.Frames, hv.Config{Name: name, MemorySize: GUEST_MEMORY, VCPUs: 1, HostCPUID: env.HostCPUID, Emulator: hv.X86Emulator})
	if err != nil {
		return nil, err
	}
	if env.Created != nil {
		env.Created(vm)
	}
	port := conport.New(name, env.Console)
	consoles.Store(vm, port)
	if err := vm.Ports().Register(CONSOLE_PORT, conport.SIZE, port, "console"); err != nil {
		destroy(vm)
		return nil, err
	}
	if err := vm.Memory().Write(guests.LOAD_ADDRESS, img); err != nil {
		destroy(vm)
		return nil, err
	}
	c := vm.VCPU(0)
	sregs, err := c.GetSregs()
	if err != nil {
		destroy(vm)
		return nil, err
	}
	sregs.CS = arch.Segment{Selector: 0, Base: 0, Limit: 0xffff, Type: 0xb, S: true, Present: true}
	regs, _ := c.GetRegs()
	regs.RIP = guests.LOAD_ADDRESS
	if err := c.SetSregs(sregs); err != nil {
		destroy(vm)
		return nil, err
	}
	if err := c.SetRegs(regs); err != nil {
		destroy(vm)
		return nil, err
	}
	if setup != nil {
		if err := setup(vm); err != nil {
			destroy(vm)
			return nil, err
		}
	}
	if err := vm.Start(ctx); err != nil {
		destroy(vm)
		return nil, err
	}
	return vm, nil
}

// waitDone waits for the VM to stop or crash.
func waitDone(vm *hv.VM, timeout time.Duration) bool {
	done := make(chan struct{})
	go func() { vm.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

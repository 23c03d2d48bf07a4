package hv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/hypercall"
	"github.com/keel-hv/keel/hv/mem"
)

const waitLimit = 10 * time.Second

// waitFor polls cond until it holds or the limit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// busyGuest exits with CPUID forever.
func busyGuest(v *fakeVCPU) (arch.Exit, error) {
	return arch.Exit{Reason: arch.ExitCPUID, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 2, Intr: arch.IntrState{IF: true}}, nil
}

// poweroff returns the exit of a poweroff hypercall with status.
func poweroff(v *fakeVCPU, status uint64) (arch.Exit, error) {
	v.regs.GPR[arch.RAX], v.regs.GPR[arch.RBX] = hypercall.NrPowerOff, status
	return arch.Exit{Reason: arch.ExitHypercall, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 3}, nil
}

func TestLifecycleTransitions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ops  []string
		errs []string // "" for success, else a substring
	}{
		{"start stop destroy", []string{"start", "stop", "wait", "destroy"}, []string{"", "", "", ""}},
		{"pause resume", []string{"start", "pause", "resume", "stop", "wait", "destroy"}, []string{"", "", "", "", "", ""}},
		{"double start", []string{"start", "start", "stop"}, []string{"", "cannot start: the VM is running", ""}},
		{"pause created", []string{"pause"}, []string{"cannot pause: the VM is created (allowed from: running)"}},
		{"resume running", []string{"start", "resume", "stop"}, []string{"", "cannot resume", ""}},
		{"destroy running", []string{"start", "destroy", "stop"}, []string{"", "stop it first", ""}},
		{"stop twice", []string{"start", "stop", "stop"}, []string{"", "", "cannot stop: the VM is stopped"}},
		{"destroy created", []string{"destroy", "start"}, []string{"", "destroyed"}},
		{"destroy twice", []string{"destroy", "destroy"}, []string{"", "destroyed twice"}},
		{"stop paused", []string{"start", "pause", "stop", "wait", "resume"}, []string{"", "", "", "", "cannot resume"}},
		{"stop created", []string{"stop", "start"}, []string{"", "cannot start"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, _, _ := testVM(t, Config{})
			fakeOf(vm, 0).guest = busyGuest
			defer func() { vm.Stop(); vm.Wait() }()
			for i, op := range tc.ops {
				var err error
				switch op {
				case "start":
					err = vm.Start(ctx)
				case "stop":
					err = vm.Stop()
				case "pause":
					err = vm.Pause(ctx)
				case "resume":
					err = vm.Resume()
				case "wait":
					vm.Wait()
				case "destroy":
					err = vm.Destroy()
				}
				want := tc.errs[i]
				if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
					t.Fatalf("op %d (%s): err %v, want %q", i, op, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), "vm1") {
					t.Errorf("error %q does not name the VM", err)
				}
			}
		})
	}
}

// TestCreateDestroyLeaksNothing runs 20 VMs through their whole life and
// checks that the frame accounting, including the backend's hardware
// structures, returns to its start.
func TestCreateDestroyLeaksNothing(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 2<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 2 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend()
	start := frames.Stats()
	for i := 0; i < 20; i++ {
		vm, err := NewVM(b, frames, Config{Name: fmt.Sprintf("vm%d", i), MemorySize: uint64(i%4+1) << 24, VCPUs: i%3 + 1, HostCPUID: fakeHost})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := frames.Usage(mem.Owner(vm.Name())), vm.Memory().Size(); got <= want {
			t.Errorf("%s: usage %#x does not include the backend's structures (RAM %#x)", vm.Name(), got, want)
		}
		for j := 0; j < vm.VCPUs(); j++ {
			fakeOf(vm, j).guest = func(v *fakeVCPU) (arch.Exit, error) { return poweroff(v, 0) }
			vm.VCPU(j).SetRunnable()
		}
		if err := vm.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		vm.Wait()
		if vm.State() != Stopped {
			t.Fatalf("%s is %s", vm.Name(), vm.State())
		}
		if err := vm.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	end := frames.Stats()
	if end.Free != start.Free || end.Chunks != start.Chunks || len(end.ByOwner) != 0 {
		t.Errorf("accounting did not return to its start:\nstart %s\nend   %s", start, end)
	}
	for _, fv := range b.vms {
		if !fv.destroyed {
			t.Error("backend VM not destroyed")
		}
		for _, v := range fv.vcpus {
			if !v.destroyed {
				t.Error("backend vCPU not destroyed")
			}
		}
	}
}

func TestNewVMFailuresLeakNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		fail  func(*fakeBackend)
		want  string
		nilBE bool
	}{
		{"no name", Config{VCPUs: 1, MemorySize: 1 << 20, HostCPUID: fakeHost}, nil, "without a name", false},
		{"no vcpus", Config{Name: "x", MemorySize: 1 << 20, HostCPUID: fakeHost}, nil, "0 vCPUs", false},
		{"no cpuid", Config{Name: "x", VCPUs: 1, MemorySize: 1 << 20}, nil, "no host CPUID", false},
		{"bad memory", Config{Name: "x", VCPUs: 1, MemorySize: 1000, HostCPUID: fakeHost}, nil, "multiple of 4 KiB", false},
		{"too much memory", Config{Name: "x", VCPUs: 1, MemorySize: 4 << 30, HostCPUID: fakeHost}, nil, "out of host memory", false},
		{"backend NewVM", Config{Name: "x", VCPUs: 1, MemorySize: 1 << 20, HostCPUID: fakeHost}, func(b *fakeBackend) { b.failNewVM = errors.New("no ASIDs left") }, "fake backend: no ASIDs left", false},
		{"backend MapMemory", Config{Name: "x", VCPUs: 1, MemorySize: 1 << 20, HostCPUID: fakeHost}, func(b *fakeBackend) { b.failMap = errors.New("NPT") }, "mapping guest memory: NPT", false},
		{"backend NewVCPU", Config{Name: "x", VCPUs: 3, MemorySize: 1 << 20, HostCPUID: fakeHost}, func(b *fakeBackend) { b.failVCPU = 2 }, "creating vCPU 2", false},
		{"no backend", Config{Name: "x", VCPUs: 1, MemorySize: 1 << 20, HostCPUID: fakeHost}, nil, "needs a backend", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := mem.NewSparseHost(0, 1<<30)
			frames, _ := mem.NewFrames([]addr.Range{{Base: 0, Size: 1 << 30}}, nil, host)
			b := newFakeBackend()
			if tc.fail != nil {
				tc.fail(b)
			}
			var be Backend = b
			if tc.nilBE {
				be = nil
			}
			_, err := NewVM(be, frames, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if s := frames.Stats(); s.Free != s.Total {
				t.Errorf("failed NewVM leaked: %s", s)
			}
		})
	}
}

func TestHaltWakesOnInterrupt(t *testing.T) {
	vm, _, _ := testVM(t, Config{})
	f := fakeOf(vm, 0)
	var step atomic.Int32
	f.guest = func(v *fakeVCPU) (arch.Exit, error) {
		switch step.Add(1) {
		case 1:
			return arch.Exit{Reason: arch.ExitHLT, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 1, Intr: arch.IntrState{IF: true}}, nil
		case 2:
			return poweroff(v, 42)
		}
		return arch.Exit{}, errors.New("guest ran too far")
	}
	if err := vm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the vCPU to halt", func() bool { return step.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	if step.Load() != 1 || vm.State() != Running {
		t.Fatalf("halted vCPU ran on: step %d state %s", step.Load(), vm.State())
	}
	if err := vm.VCPU(0).IRQ().Raise(0x30); err != nil {
		t.Fatal(err)
	}
	vm.Wait()
	r := vm.Report()
	if r == nil || r.State != Stopped || r.ExitStatus != 42 {
		t.Fatalf("report %+v", r)
	}
	if len(f.delivered) != 1 || f.delivered[0] != arch.ExternalInterrupt(0x30) {
		t.Errorf("delivered %v", f.delivered)
	}
	if c := vm.ExitCounts(); c[arch.ExitHLT] != 1 || c[arch.ExitHypercall] != 1 {
		t.Errorf("exit counts %v", vm.Info().ExitSummary())
	}
	if err := vm.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestHaltWithInterruptsOffSleepsThroughIRQ(t *testing.T) {
	vm, _, _ := testVM(t, Config{})
	f := fakeOf(vm, 0)
	var step atomic.Int32
	f.guest = func(v *fakeVCPU) (arch.Exit, error) {
		if step.Add(1) == 1 {
			return arch.Exit{Reason: arch.ExitHLT, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 1}, nil // IF=0
		}
		return poweroff(v, 1)
	}
	vm.Start(context.Background())
	waitFor(t, "halt", func() bool { return step.Load() == 1 })
	vm.VCPU(0).IRQ().Raise(0x30)
	time.Sleep(20 * time.Millisecond)
	if step.Load() != 1 {
		t.Fatal("an interrupt woke HLT with IF=0")
	}
	vm.VCPU(0).IRQ().RaiseNMI()
	vm.Wait()
	if len(f.delivered) != 1 || f.delivered[0] != arch.NMI() {
		t.Errorf("delivered %v", f.delivered)
	}
	vm.Destroy()
}

func TestInterruptWindow(t *testing.T) {
	vm, _, _ := testVM(t, Config{})
	f := fakeOf(vm, 0)
	var step atomic.Int32
	var windowAtStep2 bool
	f.guest = func(v *fakeVCPU) (arch.Exit, error) {
		switch step.Add(1) {
		case 1:
			// The guest runs with interrupts off; meanwhile an
			// interrupt arrives.
			vm.VCPU(0).IRQ().Raise(0x41)
			return busyGuestNoIF(v)
		case 2:
			windowAtStep2 = v.window
			if len(v.delivered) != 0 {
				return arch.Exit{}, errors.New("injected with IF=0")
			}
			// The guest executes STI; the window opens.
			return arch.Exit{Reason: arch.ExitInterruptWindow, RIP: v.regs.RIP, Intr: arch.IntrState{IF: true}}, nil
		}
		return poweroff(v, 0)
	}
	vm.Start(context.Background())
	vm.Wait()
	if r := vm.Report(); r.State != Stopped {
		t.Fatalf("report %s", r)
	}
	if !windowAtStep2 {
		t.Error("no interrupt window requested while IF=0")
	}
	if len(f.delivered) != 1 || f.delivered[0].Vector != 0x41 || f.window {
		t.Errorf("delivered %v, window still %v", f.delivered, f.window)
	}
	vm.Destroy()
}

func busyGuestNoIF(v *fakeVCPU) (arch.Exit, error) {
	return arch.Exit{Reason: arch.ExitCPUID, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 2}, nil
}

func TestPauseResume(t *testing.T) {
	vm, _, _ := testVM(t, Config{VCPUs: 3})
	for i := 0; i < 3; i++ {
		fakeOf(vm, i).guest = busyGuest
		vm.VCPU(i).SetRunnable()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := vm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "exits", func() bool { return vm.ExitCounts()[arch.ExitCPUID] > 100 })
	if _, err := vm.VCPU(0).GetRegs(); err == nil {
		t.Error("GetRegs succeeded while running")
	}
	if err := vm.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	n := vm.ExitCounts()[arch.ExitCPUID]
	time.Sleep(10 * time.Millisecond)
	if m := vm.ExitCounts()[arch.ExitCPUID]; m != n {
		t.Errorf("exits went on while paused: %d -> %d", n, m)
	}
	r, err := vm.VCPU(1).GetRegs()
	if err != nil || r.RIP == 0 {
		t.Errorf("GetRegs while paused: %v %+v", err, r)
	}
	r.RIP = 0x5000
	if err := vm.VCPU(1).SetRegs(r); err != nil {
		t.Fatal(err)
	}
	if err := vm.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "exits after resume", func() bool { return vm.ExitCounts()[arch.ExitCPUID] > n+100 })
	vm.Stop()
	vm.Wait()
	if err := vm.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashDoesNotStopOtherVMs(t *testing.T) {
	host := mem.NewSparseHost(0, 1<<30)
	frames, _ := mem.NewFrames([]addr.Range{{Base: 0, Size: 1 << 30}}, nil, host)
	b := newFakeBackend()
	mk := func(name string) *VM {
		vm, err := NewVM(b, frames, Config{Name: name, VCPUs: 1, MemorySize: 4 << 20, HostCPUID: fakeHost})
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	bad, good := mk("bad"), mk("good")
	fakeOf(bad, 0).guest = func(v *fakeVCPU) (arch.Exit, error) {
		v.regs.GPR[arch.RSP] = 0xdead
		return arch.Exit{Reason: arch.ExitShutdown, RIP: 0xfff0}, nil
	}
	fakeOf(good, 0).guest = busyGuest
	ctx := context.Background()
	bad.Start(ctx)
	good.Start(ctx)
	bad.Wait()
	r := bad.Report()
	if bad.State() != Crashed || r == nil || !strings.Contains(r.Reason, "triple fault") || !r.HasRegs || r.Regs.GPR[arch.RSP] != 0xdead {
		t.Fatalf("bad VM: %s, report %+v", bad.State(), r)
	}
	n := good.ExitCounts()[arch.ExitCPUID]
	waitFor(t, "the good VM to make progress", func() bool { return good.ExitCounts()[arch.ExitCPUID] > n+100 })
	if good.State() != Running {
		t.Errorf("good VM is %s", good.State())
	}
	good.Stop()
	good.Wait()
	bad.Destroy()
	good.Destroy()
	if s := frames.Stats(); s.Free != s.Total {
		t.Errorf("leak: %s", s)
	}
}

func TestStopWhileHaltedAndCancel(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(vm *VM, cancel func())
	}{
		{"stop", func(vm *VM, _ func()) { vm.Stop() }},
		{"cancel context", func(_ *VM, cancel func()) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, _, _ := testVM(t, Config{VCPUs: 2}) // vCPU 1 waits for SIPI
			var halted atomic.Bool
			fakeOf(vm, 0).guest = func(v *fakeVCPU) (arch.Exit, error) {
				halted.Store(true)
				return arch.Exit{Reason: arch.ExitHLT, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 1}, nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			vm.Start(ctx)
			waitFor(t, "halt", halted.Load)
			tc.stop(vm, cancel)
			done := make(chan struct{})
			go func() { vm.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(waitLimit):
				t.Fatal("vCPUs did not stop")
			}
			if vm.State() != Stopped {
				t.Errorf("state %s", vm.State())
			}
			if err := vm.Destroy(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestApplicationProcessorStartup(t *testing.T) {
	vm, _, _ := testVM(t, Config{VCPUs: 2})
	var apStarted atomic.Uint64
	fakeOf(vm, 0).guest = func(v *fakeVCPU) (arch.Exit, error) {
		return arch.Exit{Reason: arch.ExitHLT, RIP: v.regs.RIP, NextRIP: v.regs.RIP + 1}, nil
	}
	fakeOf(vm, 1).guest = func(v *fakeVCPU) (arch.Exit, error) {
		apStarted.Store(v.sregs.CS.Base | 1)
		return poweroff(v, 0)
	}
	vm.Start(context.Background())
	time.Sleep(10 * time.Millisecond)
	if apStarted.Load() != 0 {
		t.Fatal("AP ran before INIT-SIPI")
	}
	ap := vm.VCPU(1).IRQ()
	ap.Raise(0x50) // ignored while waiting for SIPI
	ap.RaiseInit()
	ap.RaiseSIPI(0x08)
	vm.Wait()
	if apStarted.Load() != 0x8001 {
		t.Errorf("AP started with CS base %#x", apStarted.Load()&^1)
	}
	vm.Destroy()
}

func TestVCPURunGuards(t *testing.T) {
	vm, _, _ := testVM(t, Config{})
	if err := vm.VCPU(0).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "start it with VM.Start") {
		t.Errorf("Run on a created VM: %v", err)
	}
	if vm.VCPU(5) != nil || vm.VCPU(-1) != nil {
		t.Error("VCPU out of range returned a vCPU")
	}
	info := vm.Info()
	if info.Name != "vm1" || info.Backend != "fake" || info.VCPUs != 1 || info.State != Created || info.MemorySize != 16<<20 {
		t.Errorf("info %+v", info)
	}
	vm.Destroy()
}

func TestBackendRunError(t *testing.T) {
	vm, _, _ := testVM(t, Config{})
	fakeOf(vm, 0).guest = func(*fakeVCPU) (arch.Exit, error) {
		return arch.Exit{}, errors.New("VMRUN failed: VMCB not 4K aligned")
	}
	vm.Start(context.Background())
	vm.Wait()
	if r := vm.Report(); vm.State() != Crashed || !strings.Contains(r.Reason, "VMCB not 4K aligned") {
		t.Errorf("state %s report %v", vm.State(), r)
	}
	vm.Destroy()
}

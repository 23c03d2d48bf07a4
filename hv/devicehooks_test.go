package hv

import (
	"errors"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
)

// fakeMSRs owns MSR 0x800: reads return val, writes store it, and
// writing 0xbad fails.
type fakeMSRs struct{ val uint64 }

func (m *fakeMSRs) HandlesMSR(i uint32) bool { return i == 0x800 }
func (m *fakeMSRs) ReadMSR(uint32) (uint64, error) {
	return m.val, nil
}
func (m *fakeMSRs) WriteMSR(_ uint32, v uint64) error {
	if v == 0xbad {
		return errors.New("reserved")
	}
	m.val = v
	return nil
}

func TestMSRHandler(t *testing.T) {
	e := newEnv(t, nil)
	h := &fakeMSRs{val: 0x1_0000_0002}
	e.v.SetMSRHandler(h)
	e.f.regs.GPR[arch.RCX] = 0x800
	e.v.exit = arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1}
	if err := e.v.handleExit(&e.v.exit); err != nil {
		t.Fatal(err)
	}
	if e.f.regs.GPR[arch.RAX] != 2 || e.f.regs.GPR[arch.RDX] != 1 || e.f.regs.RIP != rip1 {
		t.Fatalf("RDMSR: EDX:EAX = %#x:%#x rip %#x, want 1:2 at %#x", e.f.regs.GPR[arch.RDX], e.f.regs.GPR[arch.RAX], e.f.regs.RIP, rip1)
	}
	e.f.regs.RIP = rip0
	e.f.regs.GPR[arch.RAX], e.f.regs.GPR[arch.RDX] = 0xbad, 0
	e.v.exit = arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1}
	if err := e.v.handleExit(&e.v.exit); err != nil {
		t.Fatal(err)
	}
	if !e.f.pending || e.f.event != arch.Exception(arch.VECTOR_GP, 0) || e.f.regs.RIP != rip0 {
		t.Fatalf("refused WRMSR: event %v %s rip %#x, want #GP at %#x", e.f.pending, e.f.event, e.f.regs.RIP, rip0)
	}
	// Other MSRs still go to the policy: 0x801 is not the handler's.
	if h.HandlesMSR(0x801) {
		t.Fatal("fake handles too much")
	}
}

func TestLocalMMIO(t *testing.T) {
	e := newEnv(t, nil)
	dev := &fakeDev{}
	dev.regs[4] = 0x5a
	const base = 0xfee00000
	e.v.SetLocalMMIO(base, 0x1000, dev)
	e.v.exit = arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: base + 4, Size: 1, Reg: arch.RBX}}
	if err := e.v.handleExit(&e.v.exit); err != nil {
		t.Fatal(err)
	}
	if e.f.regs.GPR[arch.RBX] != 0x5a || dev.reads != 1 {
		t.Fatalf("local read: RBX=%#x reads=%d, want 0x5a 1", e.f.regs.GPR[arch.RBX], dev.reads)
	}
	// vCPU 1 has no local device there: the access is outside RAM and
	// every device, and the default policy stops the VM.
	v1 := e.vm.vcpus[1]
	v1.exit = arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: base + 4, Size: 1, Reg: arch.RBX}}
	err := v1.handleExit(&v1.exit)
	if kindOf(err) != kStop || !strings.Contains(err.Error(), "outside its RAM") {
		t.Fatalf("vCPU 1 access: %v, want a stop outside RAM", err)
	}
}

func TestStopWith(t *testing.T) {
	e := newEnv(t, nil)
	if err := e.vm.StopWith("the guest wrote 0x31 to the debug-exit port", 0x63); err != nil {
		t.Fatal(err)
	}
	r := e.vm.Report()
	if e.vm.State() != Stopped || r == nil || r.ExitStatus != 0x63 || !strings.Contains(r.Reason, "debug-exit") {
		t.Fatalf("state %s report %+v", e.vm.State(), r)
	}
	if err := e.vm.StopWith("again", 1); err == nil {
		t.Error("a second stop succeeded")
	}
}

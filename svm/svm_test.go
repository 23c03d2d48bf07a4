package svm

import (
	"strings"

	"github.com/keel-hv/keel/hv"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

func TestSegmentRoundTrip(t *testing.T) {
	for _, s := range []arch.Segment{
		{Selector: 0x08, Base: 0, Limit: 0xffffffff, Type: 0xb, S: true, Present: true, L: true, G: true},
		{Selector: 0xf000, Base: 0xffff0000, Limit: 0xffff, Type: 0x3, S: true, Present: true},
		{Selector: 0x10, Base: 0x1234, Limit: 0xfffff, Type: 0x3, DPL: 3, S: true, Present: true, DB: true, AVL: true},
		{Unusable: true},
	} {
		v := vmcb(make([]byte, VMCB_SIZE))
		v.setSegment(VMCB_DS, s)
		if got := v.segment(VMCB_DS); got != s {
			t.Errorf("segment round trip:\n got %v\nwant %v", got, s)
		}
	}
}

func TestDecodeIOIO(t *testing.T) {
	for _, tc := range []struct {
		info uint64
		want arch.IOExit
	}{
		{0xe9<<16 | IOIO_SZ8 | IOIO_A16, arch.IOExit{Port: 0xe9, Size: 1, AddrSize: 2}},
		{0x3f8<<16 | IOIO_TYPE_IN | IOIO_SZ8 | IOIO_A64, arch.IOExit{Port: 0x3f8, Size: 1, In: true, AddrSize: 8}},
		{0x1f0<<16 | IOIO_TYPE_IN | IOIO_STR | IOIO_REP | IOIO_SZ16 | IOIO_A32 | 3<<IOIO_SEG_SHIFT,
			arch.IOExit{Port: 0x1f0, Size: 2, In: true, String: true, Rep: true, AddrSize: 4, Seg: arch.SEG_DS}},
		{0xcfc<<16 | IOIO_SZ32 | IOIO_A64, arch.IOExit{Port: 0xcfc, Size: 4, AddrSize: 8}},
	} {
		if got := decodeIOIO(tc.info); got != tc.want {
			t.Errorf("decodeIOIO(%#x) = %+v, want %+v", tc.info, got, tc.want)
		}
	}
}

func TestMSRPMBit(t *testing.T) {
	for _, tc := range []struct {
		msr uint32
		off int
		bit uint
		ok  bool
	}{
		{0x0, 0, 0, true}, {0x1b, 6, 6, true}, {0xc0000080, 0x800 + 0x20, 0, true},
		{0xc0000100, 0x800 + 0x40, 0, true}, {0xc0010117, 0x1000 + 0x45, 6, true}, {0x40000000, 0, 0, false},
	} {
		off, bit, ok := msrpmBit(tc.msr)
		if off != tc.off || bit != tc.bit || ok != tc.ok {
			t.Errorf("msrpmBit(%#x) = %#x, %d, %v; want %#x, %d, %v", tc.msr, off, bit, ok, tc.off, tc.bit, tc.ok)
		}
	}
}

func TestDetect(t *testing.T) {
	cpuid := func(ecxSVM, np uint32, asids uint32) func(uint32, uint32) (uint32, uint32, uint32, uint32) {
		return func(leaf, _ uint32) (uint32, uint32, uint32, uint32) {
			switch leaf {
			case 0x80000000:
				return 0x8000001f, 0, 0, 0
			case CPUID_EXT_FEATURES:
				return 0, 0, ecxSVM, EDX_PAGE1GB
			case CPUID_SVM:
				return 1, asids, 0, np
			}
			return 0, 0, 0, 0
		}
	}
	msr := func(vmcr uint64) func(uint32) uint64 { return func(uint32) uint64 { return vmcr } }
	for _, tc := range []struct {
		name  string
		cpuid func(uint32, uint32) (uint32, uint32, uint32, uint32)
		vmcr  uint64
		err   string
	}{
		{"qemu tcg", cpuid(ECX_SVM, 1, 16), 0, ""},
		{"no svm", cpuid(0, 1, 16), 0, "does not support AMD-V"},
		{"disabled", cpuid(ECX_SVM, 1, 16), VM_CR_SVMDIS, "disabled by the firmware"},
		{"no npt", cpuid(ECX_SVM, 0, 16), 0, "no nested paging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps, err := Detect(tc.cpuid, msr(tc.vmcr))
			if tc.err == "" {
				if err != nil || !caps.NPT || caps.ASIDs != 16 || !caps.Huge {
					t.Fatalf("Detect = %+v, %v", caps, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Detect error = %v, want it to mention %q", err, tc.err)
			}
		})
	}
}

// TestNPT maps guest regions with mixed alignment and walks the tables.
func TestNPT(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 8<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 8 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	before := frames.Stats()
	n, err := newNPT(frames, "vm", true)
	if err != nil {
		t.Fatal(err)
	}
	regions := []mem.Region{
		{GPA: 0, HPA: 2 << 30, Size: 1 << 30},               // 1 GiB page
		{GPA: 1 << 30, HPA: 3<<30 + 2<<20, Size: 4 << 20},   // two 2 MiB pages
		{GPA: 1<<30 + 4<<20, HPA: 5<<30 + 4096, Size: 8192}, // 4 KiB pages
		{GPA: 4 << 30, HPA: 6 << 30, Size: 2<<30 + 2<<20},   // above 4 GiB
	}
	for _, r := range regions {
		if err := n.Map(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		gpa, hpa, size uint64
		ok             bool
	}{
		{0x1234, 2<<30 + 0x1234, 1 << 30, true},
		{1<<30 + 3<<20, 3<<30 + 5<<20, 2 << 20, true},
		{1<<30 + 4<<20 + 4096, 5<<30 + 8192, 4096, true},
		{1<<30 + 4<<20 + 8192, 0, 0, false},
		{6<<30 + 1<<20, 8<<30 + 1<<20, 2 << 20, true},
		{3 << 30, 0, 0, false},
	} {
		hpa, size, _, ok := n.Lookup(tc.gpa)
		if ok != tc.ok || hpa != tc.hpa || size != tc.size {
			t.Errorf("lookup(%#x) = %#x, %#x, %v; want %#x, %#x, %v", tc.gpa, hpa, size, ok, tc.hpa, tc.size, tc.ok)
		}
	}
	if err := n.Free(); err != nil {
		t.Fatal(err)
	}
	if after := frames.Stats(); after.Free != before.Free {
		t.Errorf("free frames %d after freeing the tables, %d before", after.Free, before.Free)
	}
}

// TestRunDecodes drives Run with a fake enter that writes exits into the
// VMCB, as VMRUN would.
func TestRunDecodes(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 64<<20)
	frames, _ := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 64 << 20}}, nil, host)
	b := New(Capabilities{NPT: true, ASIDs: 16}, frames)
	bvm, err := b.NewVM(BackendConfigForTest("t", frames))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bvm.NewVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	c := bc.(*vcpu)
	exits := []struct{ code, info1, info2 uint64 }{
		{VMEXIT_VMMCALL + 1, 0, 0}, // VMLOAD: refused with #UD, not returned
		{VMEXIT_IOIO, 0xe9<<16 | IOIO_SZ8 | IOIO_A16, 0xfff2},
		{VMEXIT_NPF, NPF_RW | NPF_P, 0xfee00300},
	}
	old := enter
	defer func() { enter = old }()
	i := 0
	enter = func(c *vcpu) int {
		x := exits[i]
		i++
		c.v.setU64(VMCB_EXITCODE, x.code)
		c.v.setU64(VMCB_EXITINFO1, x.info1)
		c.v.setU64(VMCB_EXITINFO2, x.info2)
		return ENTER_EXITED
	}
	e, err := c.Run()
	if err != nil || e.Reason != arch.ExitIO || e.IO.Port != 0xe9 || e.NextRIP != 0xfff2 {
		t.Fatalf("first Run = %v, %v; want the IO exit after the refused VMLOAD", e.String(), err)
	}
	if ev := c.v.u64(VMCB_EVENTINJ); ev != 0 {
		t.Errorf("EVENTINJ = %#x after an exit that delivered the #UD", ev)
	}
	e, err = c.Run()
	if err != nil || e.Reason != arch.ExitPageFault || e.Fault.GPA != 0xfee00300 || e.Fault.Access != arch.AccessWrite {
		t.Fatalf("second Run = %v, %v; want a write fault at 0xfee00300", e.String(), err)
	}
	c.Kick()
	if e, _ = c.Run(); e.Reason != arch.ExitInterrupt {
		t.Errorf("Run after Kick = %v, want an interrupt exit", e.String())
	}
}

// BackendConfigForTest is a VM configuration for tests.
func BackendConfigForTest(name string, frames *mem.Frames) hv.BackendVMConfig {
	return hv.BackendVMConfig{Name: name, VCPUs: 1, Frames: frames, Owner: mem.Owner(name)}
}

// TestNextRIP checks where the next RIP of an intercepted instruction comes
// from: the VMCB's NRIP with NRIP-save, nothing (0: the core decodes)
// without it; IOIO always has it in EXITINFO2.
func TestNextRIP(t *testing.T) {
	for _, nrips := range []bool{true, false} {
		host := mem.NewSparseHost(1<<30, 64<<20)
		frames, _ := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 64 << 20}}, nil, host)
		b := New(Capabilities{NPT: true, ASIDs: 16, NRIPSave: nrips}, frames)
		bvm, err := b.NewVM(BackendConfigForTest("t", frames))
		if err != nil {
			t.Fatal(err)
		}
		bc, err := bvm.NewVCPU(0)
		if err != nil {
			t.Fatal(err)
		}
		c := bc.(*vcpu)
		old := enter
		enter = func(c *vcpu) int {
			c.v.setU64(VMCB_EXITCODE, VMEXIT_CPUID)
			c.v.setU64(VMCB_RIP, 0x1000)
			c.v.setU64(VMCB_NRIP, 0x1003) // 66 0F A2: a prefixed CPUID
			return ENTER_EXITED
		}
		e, err := c.Run()
		enter = old
		want := uint64(0)
		if nrips {
			want = 0x1003
		}
		if err != nil || e.Reason != arch.ExitCPUID || e.NextRIP != want {
			t.Errorf("NRIP-save %v: Run = %v (next rip %#x), %v; want a CPUID exit with next rip %#x", nrips, e.String(), e.NextRIP, err, want)
		}
	}
}

// TestGetSregsCache checks that GetSregs's cache follows every change of
// the VMCB: through SetSregs and as the processor writes it at an exit.
func TestGetSregsCache(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 64<<20)
	frames, _ := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 64 << 20}}, nil, host)
	b := New(Capabilities{NPT: true, ASIDs: 16}, frames)
	bvm, err := b.NewVM(BackendConfigForTest("t", frames))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bvm.NewVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	c := bc.(*vcpu)
	var s arch.Sregs
	c.GetSregs(&s)
	s.CR3, s.CS.Base, s.APICBase = 0x5000, 0xf0000, 0xfee00900
	if err := c.SetSregs(&s); err != nil {
		t.Fatal(err)
	}
	var got arch.Sregs
	got.APICBase = 0x1234
	c.GetSregs(&got)
	if got.CR3 != 0x5000 || got.CS.Base != 0xf0000 || got.APICBase != 0x1234 {
		t.Fatalf("after SetSregs: CR3=%#x CS.base=%#x APICBase=%#x", got.CR3, got.CS.Base, got.APICBase)
	}
	c.v.setU64(VMCB_CR0, c.v.u64(VMCB_CR0)|arch.CR0_PE) // as VMRUN's exit would
	c.v.setU64(VMCB_GDTR+8, 0x7000)
	c.GetSregs(&got)
	if got.CR0&arch.CR0_PE == 0 || got.GDTR.Base != 0x7000 {
		t.Fatalf("after the VMCB changed: CR0=%#x GDTR.base=%#x", got.CR0, got.GDTR.Base)
	}
}

package vmx

import (
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// skylakeMSRs are capability MSRs like those of Bochs' corei7_skylake_x
// model (TRUE controls, EPT with 2 MiB and 1 GiB pages, VPID, unrestricted
// guest, INS/OUTS information).
func skylakeMSRs() map[uint32]uint64 {
	ept := uint64(VMX_EPT_PAGE_WALK_4 | VMX_EPT_MEMTYPE_WB | VMX_EPT_2MB_PAGE | VMX_EPT_1GB_PAGE | VMX_EPT_INVEPT |
		VMX_EPT_AD | VMX_EPT_INVEPT_SINGLE | VMX_EPT_INVEPT_ALL | VMX_VPID_INVVPID | VMX_VPID_INVVPID_SINGLE | VMX_VPID_INVVPID_ALL)
	return map[uint32]uint64{
		IA32_FEATURE_CONTROL:     FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMXON_OUTSIDE_SMX,
		IA32_VMX_BASIC:           0x2b | 0x1000<<VMX_BASIC_SIZE_SHIFT | MEMORY_TYPE_WB<<VMX_BASIC_MEM_TYPE_SHIFT | VMX_BASIC_INOUT | VMX_BASIC_TRUE_CTLS,
		IA32_VMX_PINBASED_CTLS:   0x0000007f_00000016,
		IA32_VMX_PROCBASED_CTLS:  0xfff9fffe_0401e172,
		IA32_VMX_EXIT_CTLS:       0x01ffffff_00036dff,
		IA32_VMX_ENTRY_CTLS:      0x0003ffff_000011ff,
		IA32_VMX_TRUE_PINBASED:   0x0000007f_00000016,
		IA32_VMX_TRUE_PROCBASED:  0xfff9fffe_04006172,
		IA32_VMX_TRUE_EXIT:       0x01ffffff_00036dfb,
		IA32_VMX_TRUE_ENTRY:      0x0003ffff_000011fb,
		IA32_VMX_PROCBASED_CTLS2: 0x02177fff_00000000,
		IA32_VMX_MISC:            0x000401e5,
		IA32_VMX_CR0_FIXED0:      0x80000021,
		IA32_VMX_CR0_FIXED1:      0xffffffff,
		IA32_VMX_CR4_FIXED0:      0x2000,
		IA32_VMX_CR4_FIXED1:      0x3767ff,
		IA32_VMX_EPT_VPID_CAP:    ept,
		IA32_STAR:                0x0023001000000000,
	}
}

func fakeCPUID(vmx bool) func(uint32, uint32) (uint32, uint32, uint32, uint32) {
	return func(leaf, _ uint32) (uint32, uint32, uint32, uint32) {
		if leaf == 1 && vmx {
			return 0, 0, CPUID_1_ECX_VMX, 0
		}
		return 0, 0, 0, 0
	}
}

func fakeMSR(m map[uint32]uint64) func(uint32) uint64 { return func(n uint32) uint64 { return m[n] } }

func testCaps(t testing.TB) Capabilities {
	t.Helper()
	caps, err := Detect(fakeCPUID(true), fakeMSR(skylakeMSRs()))
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vmx    bool
		change func(m map[uint32]uint64)
		err    string
	}{
		{"skylake", true, nil, ""},
		{"no vmx", false, nil, "does not support Intel VT-x"},
		{"disabled by firmware", true, func(m map[uint32]uint64) { m[IA32_FEATURE_CONTROL] = FEATURE_CONTROL_LOCKED }, "enable \"Intel Virtualization Technology\""},
		{"no secondary controls", true, func(m map[uint32]uint64) { m[IA32_VMX_TRUE_PROCBASED] &^= CPU_BASED_ACTIVATE_SECONDARY_CTLS << 32 }, "no secondary VM-execution controls"},
		{"no ept", true, func(m map[uint32]uint64) { m[IA32_VMX_PROCBASED_CTLS2] &^= SECONDARY_EXEC_ENABLE_EPT << 32 }, "no extended page tables"},
		{"no unrestricted guest", true, func(m map[uint32]uint64) { m[IA32_VMX_PROCBASED_CTLS2] &^= SECONDARY_EXEC_UNRESTRICTED_GUEST << 32 }, "no unrestricted guest"},
		{"no write-back ept", true, func(m map[uint32]uint64) { m[IA32_VMX_EPT_VPID_CAP] &^= VMX_EPT_MEMTYPE_WB }, "write-back"},
		{"no efer loading", true, func(m map[uint32]uint64) { m[IA32_VMX_TRUE_EXIT] &^= VM_EXIT_LOAD_IA32_EFER << 32 }, "VM-exit controls"},
		{"old controls force cr3 exits", true, func(m map[uint32]uint64) {
			m[IA32_VMX_BASIC] &^= VMX_BASIC_TRUE_CTLS
			m[IA32_VMX_PROCBASED_CTLS] |= CPU_BASED_CR3_LOAD_EXITING
		}, "forces primary processor-based controls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := skylakeMSRs()
			if tc.change != nil {
				tc.change(m)
			}
			caps, err := Detect(fakeCPUID(tc.vmx), fakeMSR(m))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Detect error = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if caps.Revision != 0x2b || !caps.TrueControls || !caps.VPID || !caps.EPT2M || !caps.EPT1G || !caps.VirtualNMIs || !caps.InsOutsInfo {
				t.Errorf("caps = %+v", caps)
			}
			for _, c := range []struct {
				name      string
				got, want uint32
			}{
				{"pin", caps.PinCtl, pinNeeded | PIN_BASED_VIRTUAL_NMIS},
				{"proc", caps.ProcCtl, procNeeded},
				{"proc2", caps.Proc2Ctl, proc2Needed | SECONDARY_EXEC_ENABLE_VPID},
				{"exit", caps.ExitCtl, exitNeeded},
				{"entry", caps.EntryCtl, entryNeeded},
			} {
				if c.got&c.want != c.want {
					t.Errorf("%s controls %#x lack %#x", c.name, c.got, c.want&^c.got)
				}
			}
			if caps.ProcCtl&(CPU_BASED_CR3_LOAD_EXITING|CPU_BASED_CR3_STORE_EXITING) != 0 {
				t.Errorf("proc controls %#x exit on CR3 accesses with TRUE controls", caps.ProcCtl)
			}
			if got, want := caps.String(), "VMCS revision 0x2b, TRUE controls, EPT (4K 2M 1G), VPID, unrestricted guest, virtual NMIs, preemption timer (rate 5, saved), INS/OUTS information"; got != want {
				t.Errorf("caps.String() = %q, want %q", got, want)
			}
			if caps.hostMSRs[0] != m[IA32_STAR] {
				t.Errorf("host STAR = %#x, want %#x", caps.hostMSRs[0], m[IA32_STAR])
			}
		})
	}
}

// TestFieldSlots checks that every field encoding Keel uses has its own
// shadow slot and that slotEncoding inverts slot.
func TestFieldSlots(t *testing.T) {
	fields := append(append([]uint32{}, exitReadFields[:]...), failReadFields[:]...)
	fields = append(fields, VIRTUAL_PROCESSOR_ID, IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP, VM_EXIT_MSR_STORE_ADDR,
		VM_EXIT_MSR_LOAD_ADDR, VM_ENTRY_MSR_LOAD_ADDR, TSC_OFFSET, EPT_POINTER, VMCS_LINK_POINTER,
		PIN_BASED_VM_EXEC_CONTROL, CPU_BASED_VM_EXEC_CONTROL, EXCEPTION_BITMAP, PAGE_FAULT_ERROR_CODE_MASK,
		PAGE_FAULT_ERROR_CODE_MATCH, CR3_TARGET_COUNT, VM_EXIT_CONTROLS, VM_EXIT_MSR_STORE_COUNT,
		VM_EXIT_MSR_LOAD_COUNT, VM_ENTRY_MSR_LOAD_COUNT, VM_ENTRY_EXCEPTION_ERROR_CODE, VM_ENTRY_INSTRUCTION_LEN,
		TPR_THRESHOLD, SECONDARY_VM_EXEC_CONTROL, VM_INSTRUCTION_ERROR, HOST_IA32_SYSENTER_CS,
		CR0_GUEST_HOST_MASK, CR4_GUEST_HOST_MASK, CR0_READ_SHADOW, CR4_READ_SHADOW,
		HOST_IA32_SYSENTER_ESP, HOST_IA32_SYSENTER_EIP)
	seen := map[int]uint32{}
	for _, f := range fields {
		if f&1 != 0 || f>>1&0x1ff >= 64 {
			t.Errorf("field %#x: high access or index >= 64 does not fit the shadow", f)
		}
		s := slot(f)
		if other, ok := seen[s]; ok && other != f {
			t.Errorf("fields %#x and %#x share slot %d", f, other, s)
		}
		seen[s] = f
		if e := slotEncoding(s); e != f {
			t.Errorf("slotEncoding(slot(%#x)) = %#x", f, e)
		}
	}
}

func TestSegmentRoundTrip(t *testing.T) {
	for _, s := range []arch.Segment{
		{Selector: 0x08, Base: 0, Limit: 0xffffffff, Type: 0xb, S: true, Present: true, L: true, G: true},
		{Selector: 0xf000, Base: 0xffff0000, Limit: 0xffff, Type: 0x3, S: true, Present: true},
		{Selector: 0x10, Base: 0x1234, Limit: 0xfffff, Type: 0x3, DPL: 3, S: true, Present: true, DB: true, AVL: true},
		{Unusable: true},
	} {
		var v vmcs
		v.setSegment(segDS, s)
		if got := v.segment(segDS); got != s {
			t.Errorf("segment round trip:\n got %v\nwant %v", got, s)
		}
	}
}

func TestMSRBitmapBit(t *testing.T) {
	for _, tc := range []struct {
		msr uint32
		off int
		bit uint
		ok  bool
	}{
		{0x0, 0, 0, true}, {0x174, 0x2e, 4, true}, {0x1fff, 0x3ff, 7, true},
		{0xc0000080, 1024 + 0x10, 0, true}, {0xc0000102, 1024 + 0x20, 2, true},
		{0x2000, 0, 0, false}, {0xc0010117, 0, 0, false}, {0x40000000, 0, 0, false},
	} {
		off, bit, ok := msrBitmapBit(tc.msr)
		if off != tc.off || bit != tc.bit || ok != tc.ok {
			t.Errorf("msrBitmapBit(%#x) = %#x, %d, %v; want %#x, %d, %v", tc.msr, off, bit, ok, tc.off, tc.bit, tc.ok)
		}
	}
}

// TestEPT maps guest regions with mixed alignment and walks the tables.
func TestEPT(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 8<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 8 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	for _, huge := range []bool{true, false} {
		before := frames.Stats()
		e, err := newEPT(frames, "vm", true, huge)
		if err != nil {
			t.Fatal(err)
		}
		if p := eptp(e); p&^uint64(0xfff) != uint64(e.Root) || p&0xfff != MEMORY_TYPE_WB|3<<3 {
			t.Errorf("EPTP %#x: want root %s, write-back, 4-level walk", p, e.Root)
		}
		for _, r := range []mem.Region{
			{GPA: 0, HPA: 2 << 30, Size: 1 << 30},               // 1 GiB page
			{GPA: 1 << 30, HPA: 3<<30 + 2<<20, Size: 4 << 20},   // two 2 MiB pages
			{GPA: 1<<30 + 4<<20, HPA: 5<<30 + 4096, Size: 8192}, // 4 KiB pages
			{GPA: 4 << 30, HPA: 6 << 30, Size: 2<<30 + 2<<20},   // above 4 GiB
		} {
			if err := e.Map(r); err != nil {
				t.Fatal(err)
			}
		}
		big := uint64(1 << 30)
		if !huge {
			big = 2 << 20
		}
		for _, tc := range []struct {
			gpa, hpa, size uint64
			ok             bool
		}{
			{0x1234, 2<<30 + 0x1234, big, true},
			{1<<30 + 3<<20, 3<<30 + 5<<20, 2 << 20, true},
			{1<<30 + 4<<20 + 4096, 5<<30 + 8192, 4096, true},
			{1<<30 + 4<<20 + 8192, 0, 0, false},
			{6<<30 + 1<<20, 8<<30 + 1<<20, 2 << 20, true},
			{3 << 30, 0, 0, false},
		} {
			hpa, size, leaf, ok := e.Lookup(tc.gpa)
			if ok != tc.ok || hpa != tc.hpa || size != tc.size {
				t.Errorf("huge=%v: lookup(%#x) = %#x, %#x, %v; want %#x, %#x, %v", huge, tc.gpa, hpa, size, ok, tc.hpa, tc.size, tc.ok)
			}
			if ok && leaf&(EPT_RWX|7<<EPT_MT_SHIFT|EPT_IGNORE_PAT) != EPT_RWX|MEMORY_TYPE_WB<<EPT_MT_SHIFT {
				t.Errorf("leaf %#x for %#x: want read/write/execute, write-back, guest PAT honoured", leaf, tc.gpa)
			}
		}
		if err := e.Free(); err != nil {
			t.Fatal(err)
		}
		if after := frames.Stats(); after.Free != before.Free {
			t.Errorf("free frames %d after freeing the tables, %d before", after.Free, before.Free)
		}
	}
}

// newTestVCPU returns a vCPU of a VM on a fake host, in the reset state.
func newTestVCPU(t *testing.T) (*Backend, *vcpu) {
	t.Helper()
	host := mem.NewSparseHost(1<<30, 64<<20)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 64 << 20}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	b := New(testCaps(t), frames)
	bvm, err := b.NewVM(hv.BackendVMConfig{Name: "t", VCPUs: 1, Frames: frames, Owner: "t",
		PassthroughMSRs: []uint32{IA32_SYSENTER_CS, IA32_STAR, IA32_LSTAR, IA32_KERNEL_GS_BASE, IA32_FS_BASE}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bvm.MapMemory([]mem.Region{{GPA: 0, HPA: 1<<30 + 32<<20, Size: 16 << 20}}); err != nil {
		t.Fatal(err)
	}
	bc, err := bvm.NewVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	return b, bc.(*vcpu)
}

// TestPermissionMaps checks the bitmaps and the MSR areas.
func TestPermissionMaps(t *testing.T) {
	b, c := newTestVCPU(t)
	msrs, _ := b.page(b.maps[2])
	for _, tc := range []struct {
		msr  uint32
		exit bool
	}{{IA32_SYSENTER_CS, false}, {IA32_STAR, false}, {IA32_KERNEL_GS_BASE, false}, {IA32_FS_BASE, false}, {IA32_EFER, true}, {IA32_CSTAR, true}, {0x1b, true}} {
		off, bit, _ := msrBitmapBit(tc.msr)
		r, w := msrs[off]>>bit&1 != 0, msrs[off+MSR_BITMAP_WRITE_LOW]>>bit&1 != 0
		if r != tc.exit || w != tc.exit {
			t.Errorf("MSR %#x: read exit %v, write exit %v; want %v", tc.msr, r, w, tc.exit)
		}
	}
	for _, m := range []addr.HPA{b.maps[0], b.maps[1]} {
		p, _ := b.page(m)
		for i, x := range p {
			if x != 0xff {
				t.Fatalf("I/O bitmap byte %d = %#x: every port must exit", i, x)
			}
		}
	}
	host, _ := b.page(b.hostArea)
	guest, _ := b.page(c.msrArea)
	want := []uint32{IA32_STAR, IA32_LSTAR, IA32_KERNEL_GS_BASE}
	for i, m := range want {
		if g, h := le.Uint32(guest[i*16:]), le.Uint32(host[i*16:]); g != m || h != m {
			t.Errorf("MSR area entry %d: guest %#x, host %#x; want %#x", i, g, h, m)
		}
	}
	if v := le.Uint64(host[8:]); v != 0x0023001000000000 {
		t.Errorf("host STAR in the exit MSR-load area = %#x", v)
	}
	v := &c.hw.v
	if v.read(VM_ENTRY_MSR_LOAD_COUNT) != 3 || v.read(VM_EXIT_MSR_STORE_ADDR) != uint64(c.msrArea) || v.read(VM_EXIT_MSR_LOAD_ADDR) != uint64(b.hostArea) {
		t.Errorf("MSR area fields: entry load %d, exit store %#x, exit load %#x", v.read(VM_ENTRY_MSR_LOAD_COUNT), v.read(VM_EXIT_MSR_STORE_ADDR), v.read(VM_EXIT_MSR_LOAD_ADDR))
	}
}

// TestResetStatePassesChecks: the state NewVCPU leaves (reset, real mode)
// and a 64-bit state pass Keel's copy of the VM-entry checks.
func TestResetStatePassesChecks(t *testing.T) {
	_, c := newTestVCPU(t)
	if m := c.checkGuestRegs() + c.checkGuestSegments(); m != "" {
		t.Errorf("reset state fails: %s", m)
	}
	if m := c.checkControls(); !strings.Contains(m, "do not cover") {
		t.Errorf("controls fail: %s", m)
	}
	if m := c.checkGuestNonRegister(); !strings.Contains(m, "do not cover") {
		t.Errorf("non-register state fails: %s", m)
	}
	var s arch.Sregs
	c.GetSregs(&s)
	if s.CR0 != arch.RESET_CR0 || s.CR4 != 0 || s.EFER != 0 {
		t.Errorf("the guest sees CR0 %#x CR4 %#x EFER %#x after reset; want its own values, not the VMX-fixed bits", s.CR0, s.CR4, s.EFER)
	}
	if g := c.hw.v.read(GUEST_CR0); g&arch.CR0_NE == 0 || c.hw.v.read(GUEST_CR4)&arch.CR4_VMXE == 0 {
		t.Errorf("hardware CR0 %#x / CR4 %#x lack the VMX-fixed NE / VMXE", g, c.hw.v.read(GUEST_CR4))
	}
	// 64-bit mode.
	code := arch.Segment{Selector: 8, Limit: 0xffffffff, Type: 0xb, S: true, Present: true, L: true, G: true}
	data := arch.Segment{Selector: 0x10, Limit: 0xffffffff, Type: 0x3, S: true, Present: true, DB: true, G: true}
	s.CS, s.DS, s.ES, s.SS, s.FS, s.GS = code, data, data, data, data, data
	s.CR0 = arch.CR0_PE | arch.CR0_PG | arch.CR0_ET
	s.CR4 = arch.CR4_PAE
	s.CR3 = 0x10000
	s.EFER = arch.EFER_LME
	c.SetSregs(&s)
	if c.hw.v.read(VM_ENTRY_CONTROLS)&VM_ENTRY_IA32E_MODE == 0 || c.hw.v.read(GUEST_IA32_EFER)&arch.EFER_LMA == 0 {
		t.Errorf("long mode: entry controls %#x EFER %#x, want IA-32e mode and LMA", c.hw.v.read(VM_ENTRY_CONTROLS), c.hw.v.read(GUEST_IA32_EFER))
	}
	if m := c.checkGuestRegs() + c.checkGuestSegments(); m != "" {
		t.Errorf("64-bit state fails: %s", m)
	}
	// And the checks find what is wrong.
	for _, tc := range []struct {
		name  string
		field uint32
		val   uint64
		want  string
	}{
		{"TR type", GUEST_TR_AR_BYTES, 3 | AR_P, "guest TR type must be 11"},
		{"RFLAGS", GUEST_RFLAGS, 0, "RFLAGS: reserved bits are set or bit 1 is clear"},
		{"CS type", GUEST_CS_AR_BYTES, 1 | AR_S | AR_P, "guest CS type"},
		{"EFER", GUEST_IA32_EFER, arch.EFER_LME, "LMA differs"},
		{"CR0", GUEST_CR0, arch.CR0_PG | arch.CR0_ET, "guest CR0"},
		{"link", VMCS_LINK_POINTER, 0, "link pointer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := c.hw.v.read(tc.field)
			defer c.hw.v.write(tc.field, old)
			c.hw.v.write(tc.field, tc.val)
			if m := c.checkGuest(0); !strings.Contains(m, tc.want) {
				t.Errorf("checkGuest = %q, want it to mention %q", m, tc.want)
			}
		})
	}
	c.hw.v.write(HOST_CR0, 0x80000031)
	c.hw.v.write(HOST_CR4, arch.CR4_PAE)
	if m := c.checkHost(); !strings.Contains(m, "host CR4") {
		t.Errorf("checkHost = %q, want the CR4 fixed bits", m)
	}
	c.hw.v.write(EPT_POINTER, c.hw.v.read(EPT_POINTER)&^(7<<3))
	if m := c.launchFailure(VMXERR_ENTRY_INVALID_CONTROL); !strings.Contains(m, "page-walk length") {
		t.Errorf("launchFailure(7) = %q, want the EPT walk length", m)
	}
}

// exitFake is one exit the fake enter produces.
type exitFake struct {
	reason, qual, length, info uint64
	gpa                        uint64
}

// fakeEnter returns an enter that plays exits in order, as the hardware
// would leave them in the shadow, and counts the writes it was given.
func fakeEnter(exits []exitFake, writes *int) func(h *hwState) int {
	i := 0
	return func(h *hwState) int {
		*writes += int(h.nwrites)
		x := exits[i]
		i++
		h.v.set(VM_EXIT_REASON, x.reason)
		h.v.set(EXIT_QUALIFICATION, x.qual)
		h.v.set(VM_EXIT_INSTRUCTION_LEN, x.length)
		h.v.set(VMX_INSTRUCTION_INFO, x.info)
		h.v.set(GUEST_PHYSICAL_ADDRESS, x.gpa)
		h.v.set(IDT_VECTORING_INFO_FIELD, 0)
		h.v.set(VM_ENTRY_INTR_INFO_FIELD, 0) // delivered
		return ENTER_EXITED
	}
}

// TestRunDecodes drives Run with a fake enter.
func TestRunDecodes(t *testing.T) {
	_, c := newTestVCPU(t)
	old := enter
	defer func() { enter = old }()
	writes := 0
	enter = fakeEnter([]exitFake{
		{reason: EXIT_REASON_VMON, length: 4}, // refused with #UD
		{reason: EXIT_REASON_IO_INSTRUCTION, qual: 0xe9<<16 | 0, length: 1},
		{reason: EXIT_REASON_IO_INSTRUCTION, qual: 0x3f8<<16 | IO_IN | IO_STRING | IO_REP | 1, length: 2, info: 1<<INSN_INFO_ADDR_SIZE_SHIFT | 4<<INSN_INFO_SEG_SHIFT},
		{reason: EXIT_REASON_EPT_VIOLATION, qual: EPT_VIOLATION_WRITE | EPT_VIOLATION_GVA_VALID | EPT_VIOLATION_GVA_FINAL, gpa: 0xfee00300},
		// MOV CR0, EAX setting NE: handled by the backend.
		{reason: EXIT_REASON_CR_ACCESS, qual: 0 | CR_ACCESS_MOV_TO_CR<<CR_ACCESS_TYPE_SHIFT | arch.RAX<<CR_ACCESS_GPR_SHIFT, length: 3},
		// MOV CR8, RBX then MOV RCX, CR8.
		{reason: EXIT_REASON_CR_ACCESS, qual: 8 | CR_ACCESS_MOV_TO_CR<<CR_ACCESS_TYPE_SHIFT | arch.RBX<<CR_ACCESS_GPR_SHIFT, length: 4},
		{reason: EXIT_REASON_CR_ACCESS, qual: 8 | CR_ACCESS_MOV_FROM_CR<<CR_ACCESS_TYPE_SHIFT | arch.RCX<<CR_ACCESS_GPR_SHIFT, length: 4},
		{reason: EXIT_REASON_HLT, length: 1},
		{reason: VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE},
	}, &writes)

	e, err := c.Run()
	if err != nil || e.Reason != arch.ExitIO || e.IO.Port != 0xe9 || e.IO.Size != 1 || e.IO.In || e.NextRIP != arch.RESET_RIP+1 {
		t.Fatalf("first Run = %v, %v; want the OUT to 0xe9 after the refused VMXON", e.String(), err)
	}
	if writes < 60 {
		t.Errorf("the first entry wrote %d fields; want the whole initial VMCS", writes)
	}
	if info := c.hw.v.read(VM_ENTRY_INTR_INFO_FIELD); info != 0 {
		t.Errorf("VM-entry interruption information %#x after an exit that delivered the #UD", info)
	}
	e, _ = c.Run()
	if e.Reason != arch.ExitIO || !e.IO.String || !e.IO.Rep || !e.IO.In || e.IO.Size != 2 || e.IO.AddrSize != 4 || e.IO.Port != 0x3f8 {
		t.Errorf("second Run = %+v; want rep insw, 32-bit addresses", e.IO)
	}
	e, _ = c.Run()
	if e.Reason != arch.ExitPageFault || e.Fault.GPA != 0xfee00300 || e.Fault.Access != arch.AccessWrite || e.Fault.Walk || !e.Fault.GVAValid {
		t.Errorf("third Run = %v; want a final write fault at 0xfee00300", e.String())
	}
	c.hw.gprs[arch.RAX] = arch.CR0_NE | arch.CR0_ET
	c.hw.gprs[arch.RBX] = 5
	rip := c.hw.v.read(GUEST_RIP)
	e, _ = c.Run()
	if e.Reason != arch.ExitHLT {
		t.Fatalf("fourth Run = %v; want the HLT after the CR accesses the backend handled", e.String())
	}
	if got := c.guestCR0(); got != arch.CR0_NE|arch.CR0_ET {
		t.Errorf("guest CR0 = %#x after MOV CR0", got)
	}
	if c.cr8 != 5 || c.hw.gprs[arch.RCX] != 5 {
		t.Errorf("CR8 = %d, RCX = %d after MOV CR8, RBX (5) and MOV RCX, CR8", c.cr8, c.hw.gprs[arch.RCX])
	}
	if e.RIP != rip+3+4+4 {
		t.Errorf("RIP %#x after the CR accesses, want %#x", e.RIP, rip+11)
	}
	e, _ = c.Run()
	if e.Reason != arch.ExitInvalidGuestState || !strings.Contains(e.Message, "do not cover") {
		t.Errorf("fifth Run = %v; want invalid guest state, with no check failing", e.String())
	}
	c.Kick()
	if e, _ = c.Run(); e.Reason != arch.ExitInterrupt {
		t.Errorf("Run after Kick = %v, want an interrupt exit", e.String())
	}
}

// TestInjectAndWindow checks event injection and the window controls.
func TestInjectAndWindow(t *testing.T) {
	_, c := newTestVCPU(t)
	v := &c.hw.v
	if err := c.Inject(arch.Exception(arch.VECTOR_GP, 0x10)); err != nil {
		t.Fatal(err)
	}
	if info := v.read(VM_ENTRY_INTR_INFO_FIELD); info != INTR_INFO_VALID|INTR_TYPE_HARD_EXCEPTION|arch.VECTOR_GP {
		t.Errorf("#GP in real mode: info %#x, want no error code", info)
	}
	if err := c.Inject(arch.ExternalInterrupt(0x30)); err != ErrEventQueued {
		t.Errorf("second Inject = %v, want ErrEventQueued", err)
	}
	c.injecting = false
	c.setCR0(arch.CR0_PE|arch.CR0_ET, 0)
	c.Inject(arch.PageFault(0xdead000, arch.PFEC_WR))
	if info := v.read(VM_ENTRY_INTR_INFO_FIELD); info != INTR_INFO_VALID|INTR_TYPE_HARD_EXCEPTION|INTR_INFO_DELIVER_CODE|arch.VECTOR_PF ||
		v.read(VM_ENTRY_EXCEPTION_ERROR_CODE) != arch.PFEC_WR || c.hw.cr2 != 0xdead000 {
		t.Errorf("#PF in protected mode: info %#x code %#x cr2 %#x", info, v.read(VM_ENTRY_EXCEPTION_ERROR_CODE), c.hw.cr2)
	}
	c.injecting = false
	c.Inject(arch.Event{Type: arch.EventSoftInt, Vector: 0x80, InsnLen: 2})
	if info := v.read(VM_ENTRY_INTR_INFO_FIELD); info != INTR_INFO_VALID|INTR_TYPE_SOFT_INTR|0x80 || v.read(VM_ENTRY_INSTRUCTION_LEN) != 2 {
		t.Errorf("INT 80h: info %#x length %d", info, v.read(VM_ENTRY_INSTRUCTION_LEN))
	}
	c.RequestInterruptWindow(true)
	if v.read(CPU_BASED_VM_EXEC_CONTROL)&CPU_BASED_INTR_WINDOW_EXITING == 0 {
		t.Error("interrupt-window exiting is off after RequestInterruptWindow(true)")
	}
	v.set(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STATE_NMI)
	c.RequestInterruptWindow(true)
	if v.read(CPU_BASED_VM_EXEC_CONTROL)&CPU_BASED_NMI_WINDOW_EXITING == 0 {
		t.Error("NMI-window exiting is off while the guest blocks NMIs")
	}
	c.RequestInterruptWindow(false)
	if v.read(CPU_BASED_VM_EXEC_CONTROL)&(CPU_BASED_INTR_WINDOW_EXITING|CPU_BASED_NMI_WINDOW_EXITING) != 0 {
		t.Error("window exiting stays on after RequestInterruptWindow(false)")
	}
	// An exit during event delivery re-delivers the event.
	v.set(IDT_VECTORING_INFO_FIELD, INTR_INFO_VALID|INTR_TYPE_HARD_EXCEPTION|INTR_INFO_DELIVER_CODE|arch.VECTOR_PF)
	v.set(IDT_VECTORING_ERROR_CODE, 2)
	c.injecting = false
	c.afterExit()
	if !c.injecting || v.read(VM_ENTRY_INTR_INFO_FIELD) != INTR_INFO_VALID|INTR_TYPE_HARD_EXCEPTION|INTR_INFO_DELIVER_CODE|arch.VECTOR_PF || v.read(VM_ENTRY_EXCEPTION_ERROR_CODE) != 2 {
		t.Errorf("re-delivery: injecting %v, info %#x", c.injecting, v.read(VM_ENTRY_INTR_INFO_FIELD))
	}
}

// TestMovToCR checks the CR0/CR4 emulation the backend does itself.
func TestMovToCR(t *testing.T) {
	_, c := newTestVCPU(t)
	v := &c.hw.v
	for _, tc := range []struct {
		name string
		cr   int
		val  uint64
		ok   bool
	}{
		{"PG without PE", 0, arch.CR0_PG, false},
		{"NW without CD", 0, arch.CR0_NW | arch.CR0_PE, false},
		{"high bits", 0, 1 << 40, false},
		{"VMXE", 4, arch.CR4_VMXE, false},
		{"PAE", 4, arch.CR4_PAE, true},
		{"NE and PE", 0, arch.CR0_NE | arch.CR0_PE | arch.CR0_ET, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.injecting = false
			v.write(VM_ENTRY_INTR_INFO_FIELD, 0)
			var ok bool
			if tc.cr == 0 {
				ok = c.movToCR0(tc.val)
			} else {
				ok = c.movToCR4(tc.val)
			}
			if ok != tc.ok {
				t.Fatalf("MOV CR%d, %#x completed = %v, want %v", tc.cr, tc.val, ok, tc.ok)
			}
			if !ok && v.read(VM_ENTRY_INTR_INFO_FIELD)&INTR_INFO_VECTOR_MASK != arch.VECTOR_GP {
				t.Errorf("refused MOV did not queue #GP")
			}
		})
	}
	// PAE paging loads the PDPTEs from guest memory.
	pdpt := []byte{1, 0x10, 0, 0, 0, 0, 0, 0}
	host := c.vm.b.frames.Host()
	p, _ := host.Slice(c.vm.regions[0].HPA+0x3000, 8)
	copy(p, pdpt)
	v.write(GUEST_CR3, 0x3000)
	if !c.movToCR0(arch.CR0_PE | arch.CR0_PG | arch.CR0_ET) {
		t.Fatal("MOV CR0 enabling PAE paging refused")
	}
	var s arch.Sregs
	c.GetSregs(&s)
	if !s.PDPTEValid || s.PDPTE[0] != 0x1001 {
		t.Errorf("PDPTEs after enabling PAE paging: valid %v, %#x", s.PDPTEValid, s.PDPTE[0])
	}
}

// TestPreemptionTimer: with a time slice set, vCPUs run with the
// VMX-preemption timer, and its expiry ends the slice as an interrupt exit
// that rearms it.
func TestPreemptionTimer(t *testing.T) {
	host := mem.NewSparseHost(1<<30, 64<<20)
	frames, _ := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 64 << 20}}, nil, host)
	b := New(testCaps(t), frames)
	b.SetTimeSlice(10_000_000 << 5) // MISC rate 5 in skylakeMSRs
	bvm, err := b.NewVM(hv.BackendVMConfig{Name: "t", VCPUs: 1, Frames: frames, Owner: "t"})
	if err != nil {
		t.Fatal(err)
	}
	bc, err := bvm.NewVCPU(0)
	if err != nil {
		t.Fatal(err)
	}
	c := bc.(*vcpu)
	v := &c.hw.v
	if v.read(PIN_BASED_VM_EXEC_CONTROL)&PIN_BASED_PREEMPTION_TIMER == 0 || v.read(VM_EXIT_CONTROLS)&VM_EXIT_SAVE_PREEMPTION_TIMER == 0 {
		t.Fatalf("pin controls %#x, exit controls %#x: want the preemption timer, saved across exits", v.read(PIN_BASED_VM_EXEC_CONTROL), v.read(VM_EXIT_CONTROLS))
	}
	if got := v.read(VMX_PREEMPTION_TIMER_VALUE); got != 10_000_000 {
		t.Errorf("preemption timer value %d, want the slice divided by 2^rate", got)
	}
	old := enter
	defer func() { enter = old }()
	writes := 0
	enter = fakeEnter([]exitFake{{reason: EXIT_REASON_PREEMPTION_TIMER}}, &writes)
	c.hw.clearDirty()
	v.set(VMX_PREEMPTION_TIMER_VALUE, 0) // expired, as saved at the exit
	e, err := c.Run()
	if err != nil || e.Reason != arch.ExitInterrupt {
		t.Fatalf("Run = %v, %v; want the slice's end as an interrupt exit", e.String(), err)
	}
	if !v.isDirty(VMX_PREEMPTION_TIMER_VALUE) || v.read(VMX_PREEMPTION_TIMER_VALUE) != 10_000_000 {
		t.Errorf("the timer is not rearmed for the next slice")
	}
}

// TestMoves: Run counts entries on another CPU than the previous one (the
// entry path records the CPU in lastCPU), and the move test sleeps.
func TestMoves(t *testing.T) {
	b, c := newTestVCPU(t)
	old := enter
	defer func() { enter = old }()
	cpus := []uint32{0, 0, 1, 1, 0, 3}
	i := 0
	enter = func(h *hwState) int {
		h.lastCPU = cpus[i]
		i++
		h.v.set(VM_EXIT_REASON, EXIT_REASON_HLT)
		h.v.set(VM_EXIT_INSTRUCTION_LEN, 1)
		return ENTER_EXITED
	}
	b.SetMoveTest(2)
	for range cpus {
		if e, err := c.Run(); err != nil || e.Reason != arch.ExitHLT {
			t.Fatalf("Run = %v, %v", e.String(), err)
		}
	}
	if got := b.Moves(); got != 3 {
		t.Errorf("Moves() = %d after entries on CPUs %v; want 3", got, cpus)
	}
}

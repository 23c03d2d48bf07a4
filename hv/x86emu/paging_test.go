package x86emu

import (
	"errors"
	"strings"
	"testing"
)

// xlate is one translation to check.
type xlate struct {
	name string
	la   uint64
	acc  Access
	cpl  uint8
	prep func(f *fakeVM) // state changes for this case only
	gpa  uint64          // expected result when fault is nil
	// fault is the expected #PF error code (vector EXC_PF) or, with vec
	// set, another exception.
	fault *uint32
	vec   uint8
	err   string // expected non-fault error substring
}

func pf(code uint32) *uint32 { return &code }

// runXlate checks each case with a fresh copy of the machine setup built.
func runXlate(t *testing.T, setup func(t *testing.T, f *fakeVM), cases []xlate) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeVM()
			setup(t, f)
			f.sys.CPL = c.cpl
			if c.prep != nil {
				c.prep(f)
			}
			got, err := New(f).Translate(c.la, c.acc)
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Translate(%#x) error %v, want %q", c.la, err, c.err)
				}
			case c.fault != nil || c.vec != 0:
				if err == nil {
					t.Fatalf("Translate(%#x) = %#x, want a fault", c.la, got)
				}
				flt := asFault(t, err)
				vec := c.vec
				if vec == 0 {
					vec = EXC_PF
				}
				if flt.Vector != vec {
					t.Fatalf("fault %v, want vector %d", flt, vec)
				}
				if c.fault != nil && flt.ErrorCode != *c.fault {
					t.Errorf("error code %#x (%s), want %#x (%s)", flt.ErrorCode, pfCodeString(flt.ErrorCode), *c.fault, pfCodeString(*c.fault))
				}
				if flt.Addr != c.la {
					t.Errorf("fault address %#x, want %#x", flt.Addr, c.la)
				}
			default:
				if err != nil {
					t.Fatalf("Translate(%#x, %v): %v", c.la, c.acc, err)
				}
				if got != c.gpa {
					t.Errorf("Translate(%#x, %v) = %#x, want %#x", c.la, c.acc, got, c.gpa)
				}
			}
		})
	}
}

// leafEntry returns the guest physical address of the 8-byte PTE that maps
// la (4 KiB page) under PAE or 4-level paging.
func leafEntry(f *fakeVM, la uint64) uint64 {
	var table uint64
	shifts := []uint{39, 30, 21}
	if f.sys.EFER&EFER_LMA == 0 {
		table = f.get64(f.sys.CR3&^0x1f+(la>>30&3)*8) & 0x000ffffffffff000
		shifts = []uint{21}
	} else {
		table = f.sys.CR3 &^ 0xfff
	}
	for _, s := range shifts {
		table = f.get64(table+(la>>s&0x1ff)*8) & 0x000ffffffffff000
	}
	return table + (la>>12&0x1ff)*8
}

func TestPaging32(t *testing.T) {
	setup := func(t *testing.T, f *fakeVM) {
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PSE, MaxPhysAddr: 40}
		f.segs[SegCS] = Segment{Attr: attrCode32}
		f.sys.CR3 = f.allocPT()
		f.map32(t, 0x00401000, 0x123000, PG_RW|PG_US, false) // user, writable
		f.map32(t, 0x00402000, 0x124000, PG_US, false)       // user, read-only
		f.map32(t, 0x00403000, 0x125000, PG_RW, false)       // supervisor
		f.map32(t, 0x00800000, 0x1_00400000, PG_RW, true)    // 4 MiB, PSE-36
	}
	runXlate(t, setup, []xlate{
		{name: "4K read", la: 0x00401abc, gpa: 0x123abc},
		{name: "4K user write", la: 0x00401abc, acc: AccessWrite, cpl: 3, gpa: 0x123abc},
		{name: "4M page with PSE-36 bits", la: 0x00812345, gpa: 0x1_00412345},
		{name: "PDE not present", la: 0x0c000000, fault: pf(0)},
		{name: "PTE not present", la: 0x00404000, acc: AccessWrite, fault: pf(PF_WR)},
		{name: "user read of not-present", la: 0x00404000, cpl: 3, fault: pf(PF_US)},
		{name: "supervisor write to read-only with WP", la: 0x00402000, acc: AccessWrite, fault: pf(PF_P | PF_WR)},
		{name: "supervisor write to read-only without WP", la: 0x00402000, acc: AccessWrite, gpa: 0x124000,
			prep: func(f *fakeVM) { f.sys.CR0 &^= CR0_WP }},
		{name: "user write to read-only", la: 0x00402000, acc: AccessWrite, cpl: 3, fault: pf(PF_P | PF_WR | PF_US)},
		{name: "user read of supervisor page", la: 0x00403000, cpl: 3, fault: pf(PF_P | PF_US)},
		{name: "fetch fault has no I/D without SMEP", la: 0x00404000, acc: AccessFetch, fault: pf(0)},
		{name: "fetch fault has I/D with SMEP", la: 0x00404000, acc: AccessFetch, fault: pf(PF_ID),
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMEP }},
		{name: "SMEP: supervisor fetch from user page", la: 0x00401000, acc: AccessFetch, fault: pf(PF_P | PF_ID),
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMEP }},
		{name: "4M page reserved bit 21", la: 0x00800000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) { f.put32(f.sys.CR3+2*4, f.get32(f.sys.CR3+2*4)|1<<21) }},
		{name: "4M page above MAXPHYADDR", la: 0x00800000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) { f.sys.MaxPhysAddr = 32 }},
		{name: "PS ignored without CR4.PSE", la: 0x00800000, fault: pf(0),
			// The 4 MiB PDE is then a pointer to a page table at
			// 0x402000 (bits 31:12), whose entries are empty.
			prep: func(f *fakeVM) { f.sys.CR4 &^= CR4_PSE }},
		{name: "paging off: linear is physical", la: 0x00401abc, gpa: 0x00401abc,
			prep: func(f *fakeVM) { f.sys.CR0 &^= CR0_PG }},
	})
}

func TestPagingPAE(t *testing.T) {
	setup := func(t *testing.T, f *fakeVM) {
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PAE, EFER: EFER_NXE, MaxPhysAddr: 36}
		f.segs[SegCS] = Segment{Attr: attrCode32}
		f.sys.CR3 = f.allocPT() + 0x20 // PDPT only needs 32-byte alignment
		f.mapPAE(t, 0x40001000, 0x123000, PG_RW|PG_US, false)
		f.mapPAE(t, 0x40002000, 0x124000, PG_RW|PG_US|PG_XD, false)
		f.mapPAE(t, 0x40200000, 0xa00000, PG_RW, true) // 2 MiB
	}
	runXlate(t, setup, []xlate{
		{name: "4K", la: 0x40001abc, gpa: 0x123abc},
		{name: "2M", la: 0x40312345, gpa: 0xb12345},
		{name: "PDPTE not present", la: 0x80000000, fault: pf(0)},
		{name: "PDE not present", la: 0x40600000, acc: AccessWrite, fault: pf(PF_WR)},
		{name: "NX fetch", la: 0x40002000, acc: AccessFetch, fault: pf(PF_P | PF_ID)},
		{name: "NX page readable", la: 0x40002000, gpa: 0x124000},
		{name: "fetch fault has I/D with NXE", la: 0x40600000, acc: AccessFetch, fault: pf(PF_ID)},
		{name: "XD bit reserved without NXE", la: 0x40002000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) { f.sys.EFER = 0 }},
		{name: "PTE address above MAXPHYADDR", la: 0x40001000, fault: pf(PF_P | PF_RSVD | PF_WR), acc: AccessWrite,
			prep: func(f *fakeVM) { a := leafEntry(f, 0x40001000); f.put64(a, f.get64(a)|1<<36) }},
		{name: "PTE bit 62 is reserved under PAE", la: 0x40001000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) { a := leafEntry(f, 0x40001000); f.put64(a, f.get64(a)|1<<62) }},
		{name: "2M page reserved bit 13", la: 0x40200000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) {
				pd := f.get64(f.sys.CR3&^0x1f+8) &^ 0xfff
				f.put64(pd+8, f.get64(pd+8)|1<<13)
			}},
		{name: "PDPTE reserved bits", la: 0x40001000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) {
				a := f.sys.CR3&^0x1f + 8
				f.put64(a, f.get64(a)|PG_RW)
			}},
		{name: "cached PDPTEs win over memory", la: 0x40001abc, gpa: 0x123abc,
			prep: func(f *fakeVM) {
				a := f.sys.CR3&^0x1f + 8
				f.sys.PDPTE[1] = f.get64(a)
				f.sys.PDPTEValid = true
				f.put64(a, 0) // memory says not present
			}},
		{name: "cached PDPTE not present", la: 0x40001abc, fault: pf(0),
			prep: func(f *fakeVM) { f.sys.PDPTEValid = true }},
	})
}

func TestPaging4Level(t *testing.T) {
	setup := func(t *testing.T, f *fakeVM) {
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PAE, EFER: EFER_LME | EFER_LMA | EFER_NXE, MaxPhysAddr: 40}
		f.segs[SegCS] = Segment{Attr: attrCode64}
		f.sys.CR3 = f.allocPT()
		f.map64(t, 0x7f00_0000_1000, 0x123000, PG_RW|PG_US, pageSize)
		f.map64(t, 0x7f00_0000_2000, 0x124000, PG_US, pageSize)               // user read-only
		f.map64(t, 0x7f00_0000_3000, 0x125000, PG_RW|PG_US|PG_XD, pageSize)   // user no-exec
		f.map64(t, 0x7f00_0020_0000, 0x40_0000_0000, PG_RW, 2<<20)            // 2 MiB supervisor
		f.map64(t, 0xffff_8000_4000_0000, 0x80_4000_0000, PG_RW|PG_US, 1<<30) // 1 GiB, high half
		f.map64(t, 0xffff_8000_0000_1000, 0x126000, PG_RW, pageSize)          // supervisor
	}
	runXlate(t, setup, []xlate{
		{name: "4K", la: 0x7f00_0000_1abc, gpa: 0x123abc},
		{name: "2M", la: 0x7f00_0031_2345, gpa: 0x40_0011_2345},
		{name: "1G", la: 0xffff_8000_7654_3210, gpa: 0x80_7654_3210},
		{name: "PML4E not present", la: 0x0000_1000_0000_0000, fault: pf(0)},
		{name: "PDPTE not present", la: 0x7f01_0000_0000, fault: pf(0)},
		{name: "PDE not present", la: 0x7f00_4000_0000 - 0x4000_0000 + 0x60_0000, fault: pf(0)},
		{name: "PTE not present", la: 0x7f00_0000_4000, acc: AccessWrite, cpl: 3, fault: pf(PF_WR | PF_US)},
		{name: "non-canonical is #GP", la: 0x0000_8000_0000_0000, vec: EXC_GP},
		{name: "user write to read-only", la: 0x7f00_0000_2000, acc: AccessWrite, cpl: 3, fault: pf(PF_P | PF_WR | PF_US)},
		{name: "supervisor write to read-only with WP", la: 0x7f00_0000_2000, acc: AccessWrite, fault: pf(PF_P | PF_WR)},
		{name: "user read of supervisor 2M page", la: 0x7f00_0020_0000, cpl: 3, fault: pf(PF_P | PF_US)},
		{name: "NX fetch", la: 0x7f00_0000_3000, acc: AccessFetch, cpl: 3, fault: pf(PF_P | PF_US | PF_ID)},
		{name: "SMEP", la: 0x7f00_0000_1000, acc: AccessFetch, fault: pf(PF_P | PF_ID),
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMEP }},
		{name: "SMAP blocks supervisor read of user page", la: 0x7f00_0000_1000, fault: pf(PF_P),
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMAP }},
		{name: "SMAP with RFLAGS.AC allows it", la: 0x7f00_0000_1000, gpa: 0x123000,
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMAP; f.rflags |= RFLAGS_AC }},
		{name: "SMAP ignores supervisor pages", la: 0xffff_8000_0000_1000, acc: AccessWrite, gpa: 0x126000,
			prep: func(f *fakeVM) { f.sys.CR4 |= CR4_SMAP }},
		{name: "PS in PML4E is reserved", la: 0x7f00_0000_1000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) {
				a := f.sys.CR3 + (0x7f00_0000_1000>>39&0x1ff)*8
				f.put64(a, f.get64(a)|PG_PS)
			}},
		{name: "address bit above MAXPHYADDR", la: 0x7f00_0000_1000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) { a := leafEntry(f, 0x7f00_0000_1000); f.put64(a, f.get64(a)|1<<40) }},
		{name: "bits 62:52 are ignored in 4-level paging", la: 0x7f00_0000_1abc, gpa: 0x123abc,
			prep: func(f *fakeVM) { a := leafEntry(f, 0x7f00_0000_1000); f.put64(a, f.get64(a)|0x7ff<<52) }},
		{name: "1G page reserved bit 13", la: 0xffff_8000_4000_0000, fault: pf(PF_P | PF_RSVD),
			prep: func(f *fakeVM) {
				pml4 := f.get64(f.sys.CR3+(0xffff_8000_4000_0000>>39&0x1ff)*8) &^ 0xfff &^ PG_XD
				a := pml4 + (0xffff_8000_4000_0000>>30&0x1ff)*8
				f.put64(a, f.get64(a)|1<<13)
			}},
		{name: "page table outside RAM", la: 0x7f00_0000_1000, err: "page-table entry at guest physical",
			prep: func(f *fakeVM) { f.sys.CR3 = 0x40_0000_0000 }},
	})
}

func TestPaging5Level(t *testing.T) {
	setup := func(t *testing.T, f *fakeVM) {
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG, CR4: CR4_PAE | CR4_LA57, EFER: EFER_LME | EFER_LMA}
		f.segs[SegCS] = Segment{Attr: attrCode64}
		f.sys.CR3 = f.allocPT()
		f.map64(t, 0x0001_2345_6789_a000, 0x123000, PG_RW, pageSize)
		f.map64(t, 0xff80_0000_0000_0000, 0x124000, PG_RW, pageSize)
	}
	runXlate(t, setup, []xlate{
		{name: "57-bit address", la: 0x0001_2345_6789_abcd, gpa: 0x123bcd},
		{name: "top of the high half", la: 0xff80_0000_0000_0010, gpa: 0x124010},
		{name: "PML5E not present", la: 0x00f0_0000_0000_0000, fault: pf(0)},
		{name: "non-canonical in 57 bits", la: 0x0100_0000_0000_0000, vec: EXC_GP},
		{name: "the same address without LA57 is non-canonical", la: 0x0001_2345_6789_abcd, vec: EXC_GP,
			prep: func(f *fakeVM) { f.sys.CR4 &^= CR4_LA57 }},
	})
}

func TestPagingInvalidState(t *testing.T) {
	f := newFakeVM()
	f.sys = SysRegs{CR0: CR0_PE | CR0_PG, EFER: EFER_LMA}
	_, err := New(f).Translate(0x1000, AccessRead)
	if err == nil || !strings.Contains(err.Error(), "CR4.PAE=0") {
		t.Fatalf("error %v, want the inconsistent-state report", err)
	}
}

func TestAccessedDirty(t *testing.T) {
	const la = 0x7f00_0000_1000
	setup := func(t *testing.T) *atomicVM {
		f := newFakeVM()
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG, CR4: CR4_PAE, EFER: EFER_LME | EFER_LMA}
		f.sys.CR3 = f.allocPT()
		f.map64(t, la, 0x123000, PG_RW, pageSize)
		return &atomicVM{fakeVM: f}
	}
	entries := func(f *fakeVM) []uint64 {
		var out []uint64
		table := f.sys.CR3
		for _, s := range []uint{39, 30, 21, 12} {
			e := f.get64(table + (la>>s&0x1ff)*8)
			out = append(out, e)
			table = e & 0x000ffffffffff000
		}
		return out
	}
	t.Run("read sets A on every level", func(t *testing.T) {
		f := setup(t)
		if _, err := New(f).Translate(la, AccessRead); err != nil {
			t.Fatal(err)
		}
		for i, e := range entries(f.fakeVM) {
			if e&PG_A == 0 || e&PG_D != 0 {
				t.Errorf("level %d entry %#x: want A set, D clear", i, e)
			}
		}
	})
	t.Run("write sets D on the leaf", func(t *testing.T) {
		f := setup(t)
		if _, err := New(f).Translate(la, AccessWrite); err != nil {
			t.Fatal(err)
		}
		es := entries(f.fakeVM)
		if es[3]&(PG_A|PG_D) != PG_A|PG_D {
			t.Errorf("leaf %#x: want A and D", es[3])
		}
		if es[2]&PG_D != 0 {
			t.Errorf("non-leaf %#x got D", es[2])
		}
	})
	t.Run("a lost race is retried", func(t *testing.T) {
		f := setup(t)
		f.failCAS = 2
		if _, err := New(f).Translate(la, AccessWrite); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a table that keeps changing is an error", func(t *testing.T) {
		f := setup(t)
		f.failCAS = 100
		_, err := New(f).Translate(la, AccessWrite)
		if err == nil || !strings.Contains(err.Error(), "changed") {
			t.Fatalf("error %v, want the changing-table report", err)
		}
	})
	t.Run("no CAS once A and D are set", func(t *testing.T) {
		f := setup(t)
		New(f).Translate(la, AccessWrite)
		n := f.cas
		if _, err := New(f).Translate(la, AccessWrite); err != nil {
			t.Fatal(err)
		}
		if f.cas != n {
			t.Errorf("%d CAS calls on a walk with nothing to set", f.cas-n)
		}
	})
	t.Run("without AtomicPhys nothing is written", func(t *testing.T) {
		f := setup(t)
		before := entries(f.fakeVM)
		if _, err := New(f.fakeVM).Translate(la, AccessWrite); err != nil {
			t.Fatal(err)
		}
		for i, e := range entries(f.fakeVM) {
			if e != before[i] {
				t.Errorf("level %d changed from %#x to %#x", i, before[i], e)
			}
		}
	})
}

// TestFetchAcrossPages puts an instruction across two 4 KiB pages that map
// to unrelated frames.
func TestFetchAcrossPages(t *testing.T) {
	const (
		la     = 0xa00ffe // last two bytes of a page
		frameA = 0x300000
		frameB = 0x205000
	)
	setup := func(t *testing.T, second bool) *fakeVM {
		f := newFakeVM()
		f.setMode(t, modeLong64)
		f.map64(t, la&^0xfff, frameA, 0, pageSize)
		if second {
			f.map64(t, la&^0xfff+pageSize, frameB, 0, pageSize)
		}
		f.rip = la
		f.gpr[RDI] = mmioBase
		f.gpr[RAX] = rax0
		return f
	}
	t.Run("split instruction", func(t *testing.T) {
		f := setup(t, true)
		copy(f.ram[frameA+0xffe:], []byte{0x48, 0x89}) // mov [rdi], rax
		f.ram[frameB] = 0x07
		if err := New(f).Emulate(mmioBase); err != nil {
			t.Fatal(err)
		}
		if len(f.log) != 1 || f.log[0] != wr(mmioBase, 8, rax0) || f.rip != la+3 {
			t.Errorf("log %v rip %#x", f.log, f.rip)
		}
	})
	t.Run("second page not present and needed", func(t *testing.T) {
		f := setup(t, false)
		copy(f.ram[frameA+0xffe:], []byte{0x48, 0x89})
		err := New(f).Emulate(mmioBase)
		flt := asFault(t, err)
		if flt.Vector != EXC_PF || flt.Addr != la+2 || flt.ErrorCode != PF_ID || flt.Access != AccessFetch {
			t.Errorf("fault %+v, want a not-present fetch #PF at %#x", flt, la+2)
		}
	})
	t.Run("second page not present and not needed", func(t *testing.T) {
		f := setup(t, false)
		copy(f.ram[frameA+0xffe:], []byte{0x89, 0x07}) // mov [rdi], eax
		if err := New(f).Emulate(mmioBase); err != nil {
			t.Fatal(err)
		}
		if f.rip != la+2 {
			t.Errorf("rip %#x", f.rip)
		}
	})
	t.Run("first page not present", func(t *testing.T) {
		f := setup(t, false)
		f.rip = 0xb00000
		flt := asFault(t, New(f).Emulate(mmioBase))
		if flt.Addr != 0xb00000 || flt.ErrorCode != PF_ID {
			t.Errorf("fault %+v", flt)
		}
	})
	t.Run("code outside RAM", func(t *testing.T) {
		f := setup(t, false)
		f.map64(t, 0xb00000, 0x40_0000_0000, 0, pageSize)
		f.rip = 0xb00000
		err := New(f).Emulate(mmioBase)
		if !errors.Is(err, errNotRAM) || !strings.Contains(err.Error(), "fetching instruction bytes") {
			t.Errorf("error %v", err)
		}
	})
}

// TestRealModeAddressing covers segment*16+offset beyond 1 MiB (the HMA)
// and the A20 wrap.
func TestRealModeAddressing(t *testing.T) {
	for _, tc := range []struct {
		name string
		a20  bool
		gpa  uint64
	}{
		{"HMA with A20 enabled", false, 0x100010},
		{"wraps at 1 MiB with A20 masked", true, 0x000010},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVM()
			f.setMode(t, modeReal)
			f.sys.A20Masked = tc.a20
			f.devBase = tc.gpa &^ 0xfff
			f.segs[SegDS] = Segment{Selector: 0xffff, Base: 0xffff0, Limit: 0xffff}
			f.gpr[RBX] = 0x20
			f.gpr[RAX] = 0xbeef
			f.setCode(modeReal, []byte{0x89, 0x07}) // mov [bx], ax
			if err := New(f).Emulate(tc.gpa); err != nil {
				t.Fatal(err)
			}
			if len(f.log) != 1 || f.log[0] != wr(tc.gpa, 2, 0xbeef) {
				t.Errorf("log %v", f.log)
			}
		})
	}
}

func TestCPUMode(t *testing.T) {
	tests := []struct {
		name   string
		sys    SysRegs
		cs     Segment
		rflags uint64
		want   int
	}{
		{"real", SysRegs{}, Segment{Attr: attrCode32}, 0, 16},
		{"virtual-8086", SysRegs{CR0: CR0_PE}, Segment{Attr: attrCode32}, RFLAGS_VM, 16},
		{"protected 16", SysRegs{CR0: CR0_PE}, Segment{Attr: attrCode16}, 0, 16},
		{"protected 32", SysRegs{CR0: CR0_PE}, Segment{Attr: attrCode32}, 0, 32},
		{"compatibility 32", SysRegs{CR0: CR0_PE | CR0_PG, EFER: EFER_LMA}, Segment{Attr: attrCode32}, 0, 32},
		{"compatibility 16", SysRegs{CR0: CR0_PE | CR0_PG, EFER: EFER_LMA}, Segment{Attr: attrCode16}, 0, 16},
		{"64-bit", SysRegs{CR0: CR0_PE | CR0_PG, EFER: EFER_LMA}, Segment{Attr: attrCode64}, 0, 64},
		{"L without LMA", SysRegs{CR0: CR0_PE}, Segment{Attr: attrCode64}, 0, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CPUMode(tt.sys, tt.cs, tt.rflags); got != tt.want {
				t.Errorf("CPUMode = %d, want %d", got, tt.want)
			}
		})
	}
}

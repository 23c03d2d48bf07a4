package msr

import (
	"os"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
)

func mustNew(t testing.TB, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadWrite(t *testing.T) {
	p := mustNew(t, Config{})
	for _, tc := range []struct {
		name     string
		index    uint32
		write    uint64
		wOutcome Outcome
		want     uint64 // value read after the write
		rOutcome Outcome
	}{
		{"unknown", 0x12345678, 1, Fault, 0, Fault},
		{"spec ctrl hidden", 0x48, 1, Fault, 0, Fault},
		{"vm_hsave_pa", 0xc0010117, 0x1000, Fault, 0, Fault},
		{"x2apic msrs", 0x802, 0, Fault, 0, Fault},
		{"tsc", IA32_TIME_STAMP_COUNTER, 5, Done, 1234, Done},
		{"apic base", IA32_APIC_BASE, 0xfee00900, UseAPICBase, 0, UseAPICBase},
		{"efer", IA32_EFER, 0x500, UseEFER, 0, UseEFER},
		{"feature control locked", IA32_FEATURE_CONTROL, 5, Fault, FEATURE_CONTROL_LOCK, Done},
		{"platform info read-only", MSR_PLATFORM_INFO, 0, Fault, 0, Done},
		{"mtrrcap", IA32_MTRRCAP, 0, Fault, MTRRCAP_VCNT8_FIX_WC, Done},
		{"misc enable ignores writes", IA32_MISC_ENABLE, 0, Done, MISC_ENABLE_DEFAULT, Done},
		{"sysenter eip", IA32_SYSENTER_EIP, 0xffffffff81000000, Done, 0xffffffff81000000, Done},
		{"lstar", IA32_LSTAR, 0xffffffff81a00000, Done, 0xffffffff81a00000, Done},
		{"kernel gs base", IA32_KERNEL_GS_BASE, 0xffff888000000000, Done, 0xffff888000000000, Done},
		{"pat", IA32_PAT, 0x0007010600070106, Done, 0x0007010600070106, Done},
		{"mtrr def type", IA32_MTRR_DEF_TYPE, 0xc06, Done, 0xc06, Done},
		{"mtrr def type reserved", IA32_MTRR_DEF_TYPE, 0x1000, Fault, MTRR_DEF_TYPE_E_WB, Done},
		{"mtrr physmask7", IA32_MTRR_PHYSMASK7, 0xfff000800, Done, 0xfff000800, Done},
		{"mtrr physbase reserved", IA32_MTRR_PHYSBASE0 + 2, 1 << 60, Fault, 0, Done},
		{"fix4k last", IA32_MTRR_FIX4K_F8000, 0x0606060606060606, Done, 0x0606060606060606, Done},
		{"between fix ranges", 0x260, 0, Fault, 0, Fault},
		{"mc bank", IA32_MC0_CTL + 0x13, 0xffff, Done, 0, Done},
		{"tsc aux", IA32_TSC_AUX, 3, Done, 3, Done},
		{"tsc aux reserved", IA32_TSC_AUX, 1 << 32, Fault, 0, Done},
		{"vm_cr", MSR_VM_CR, 0, Done, VM_CR_LOCK_SVMDIS, Done},
		{"de_cfg", MSR_AMD64_DE_CFG, 0, Done, DE_CFG_LFENCE_SERIALIZE, Done},
		{"top of space", 0xffffffff, 0, Fault, 0, Fault},
		{"zero", 0, 0, Fault, 0, Fault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := p.NewState()
			if got := p.Write(st, tc.index, tc.write); got != tc.wOutcome {
				t.Errorf("Write(%#x, %#x) = %s, want %s", tc.index, tc.write, got, tc.wOutcome)
			}
			v, got := p.Read(st, tc.index, 1234)
			if got != tc.rOutcome || (got == Done && v != tc.want) {
				t.Errorf("Read(%#x) = %#x, %s; want %#x, %s", tc.index, v, got, tc.want, tc.rOutcome)
			}
		})
	}
}

func TestStatesAreIndependent(t *testing.T) {
	p := mustNew(t, Config{})
	a, b := p.NewState(), p.NewState()
	p.Write(a, IA32_LSTAR, 1)
	p.Write(b, IA32_LSTAR, 2)
	va, _ := p.Read(a, IA32_LSTAR, 0)
	vb, _ := p.Read(b, IA32_LSTAR, 0)
	if va != 1 || vb != 2 {
		t.Errorf("values %d %d", va, vb)
	}
	if v, _ := p.Read(p.NewState(), IA32_PAT, 0); v != PAT_DEFAULT {
		t.Errorf("PAT reset value %#x", v)
	}
}

func TestNested(t *testing.T) {
	p := mustNew(t, Config{Nested: true})
	if v, o := p.Read(p.NewState(), MSR_VM_CR, 0); o != Done || v != 0 {
		t.Errorf("VM_CR with nesting = %#x %s", v, o)
	}
}

func TestCheckEFER(t *testing.T) {
	amd := mustNew(t, Config{EFERMask: arch.EFER_SCE | arch.EFER_LME | arch.EFER_NXE | arch.EFER_FFXSR})
	for _, tc := range []struct {
		name   string
		old, v uint64
		cr0    uint64
		want   uint64
		ok     bool
	}{
		{"enable sce", 0, arch.EFER_SCE, 0, arch.EFER_SCE, true},
		{"enable lme before paging", 0, arch.EFER_LME, arch.CR0_PE, arch.EFER_LME, true},
		{"lme while paging", 0, arch.EFER_LME, arch.CR0_PE | arch.CR0_PG, 0, false},
		{"clear lme while paging", arch.EFER_LME | arch.EFER_LMA, arch.EFER_LMA, arch.CR0_PG, 0, false},
		{"lma is read-only", arch.EFER_LME | arch.EFER_LMA, arch.EFER_LME | arch.EFER_NXE, arch.CR0_PG, arch.EFER_LME | arch.EFER_LMA | arch.EFER_NXE, true},
		{"lma cannot be set", 0, arch.EFER_LMA, 0, 0, true},
		{"svme refused", 0, arch.EFER_SVME, 0, 0, false},
		{"ffxsr on amd", 0, arch.EFER_FFXSR, 0, arch.EFER_FFXSR, true},
		{"reserved", 0, 1 << 1, 0, 0, false},
		{"high reserved", 0, 1 << 63, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := amd.CheckEFER(tc.old, tc.v, tc.cr0)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("CheckEFER(%#x, %#x, cr0 %#x) = %#x %v; want %#x %v", tc.old, tc.v, tc.cr0, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := mustNew(t, Config{}).CheckEFER(0, arch.EFER_FFXSR, 0); ok {
		t.Error("FFXSR accepted by the default mask")
	}
}

func TestCheckAPICBase(t *testing.T) {
	const xapic = arch.APIC_BASE_DEFAULT | arch.APIC_BASE_EN
	const x2 = xapic | arch.APIC_BASE_EXTD
	for _, tc := range []struct {
		name   string
		x2apic bool
		old, v uint64
		want   uint64
		ok     bool
	}{
		{"move base", false, xapic | arch.APIC_BASE_BSP, 0xfed00000 | arch.APIC_BASE_EN, 0xfed00000 | arch.APIC_BASE_EN | arch.APIC_BASE_BSP, true},
		{"disable", false, xapic, arch.APIC_BASE_DEFAULT, arch.APIC_BASE_DEFAULT, true},
		{"bsp read-only", false, xapic, xapic | arch.APIC_BASE_BSP, xapic, true},
		{"extd without x2apic", false, xapic, x2, 0, false},
		{"extd with x2apic", true, xapic, x2, x2, true},
		{"extd without en", true, xapic, arch.APIC_BASE_DEFAULT | arch.APIC_BASE_EXTD, 0, false},
		{"x2apic to xapic", true, x2, xapic, 0, false},
		{"x2apic to disabled", true, x2, arch.APIC_BASE_DEFAULT, arch.APIC_BASE_DEFAULT, true},
		{"reserved low bit", false, xapic, xapic | 1, 0, false},
		{"beyond 52 bits", false, xapic, xapic | 1<<52, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, Config{X2APIC: tc.x2apic})
			got, ok := p.CheckAPICBase(tc.old, tc.v)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("CheckAPICBase(%#x, %#x) = %#x %v; want %#x %v", tc.old, tc.v, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNewRejectsBadTables(t *testing.T) {
	for _, tc := range []struct {
		name string
		tbl  []Entry
		want string
	}{
		{"overlap", []Entry{{First: 1, Last: 5, Name: "a", Action: ActionFixed}, {First: 5, Name: "b", Action: ActionFixed}}, "overlap"},
		{"backwards", []Entry{{First: 5, Last: 4, Name: "a", Action: ActionFixed}}, "below first"},
		{"bad action", []Entry{{First: 5, Name: "a", Action: 99}}, "unknown action"},
		{"initial outside mask", []Entry{{First: 5, Name: "a", Action: ActionEmulate, Value: 3, WriteMask: 1}}, "outside its write mask"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Table: tc.tbl})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestPassthroughList(t *testing.T) {
	got := mustNew(t, Config{}).Passthrough()
	want := []uint32{IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP, IA32_PAT, IA32_STAR, IA32_LSTAR, IA32_CSTAR, IA32_FMASK, IA32_FS_BASE, IA32_GS_BASE, IA32_KERNEL_GS_BASE}
	if len(got) != len(want) {
		t.Fatalf("got %#x", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %#x, want %#x", i, got[i], want[i])
		}
	}
}

// TestDocTableInStep checks that the table in the package documentation is
// what Render prints for DefaultTable.
func TestDocTableInStep(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var doc strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(line, "//\t") {
			doc.WriteString(strings.TrimPrefix(line, "//\t") + "\n")
		}
	}
	if want := Render(DefaultTable()); doc.String() != want {
		t.Errorf("doc.go's table is out of date; replace it with:\n%s", want)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	p := mustNew(t, Config{})
	st := p.NewState()
	for _, idx := range []uint32{IA32_LSTAR, IA32_EFER, IA32_MTRR_DEF_TYPE, 0x12345, IA32_TIME_STAMP_COUNTER} {
		if n := testing.AllocsPerRun(100, func() {
			p.Read(st, idx, 1)
			p.Write(st, idx, 0)
		}); n != 0 {
			t.Errorf("MSR %#x: %v allocations", idx, n)
		}
	}
}

func FuzzMSR(f *testing.F) {
	f.Add(uint32(IA32_EFER), uint64(0x500), uint64(0), uint64(arch.CR0_PG))
	f.Add(uint32(IA32_MTRR_PHYSBASE0), uint64(0xffffffff), uint64(0), uint64(0))
	f.Add(uint32(IA32_APIC_BASE), uint64(0xfee00c00), uint64(0xfee00900), uint64(0))
	f.Add(uint32(0xffffffff), ^uint64(0), ^uint64(0), ^uint64(0))
	p := mustNew(f, Config{X2APIC: true})
	f.Fuzz(func(t *testing.T, idx uint32, v, old, cr0 uint64) {
		st := p.NewState()
		o := p.Write(st, idx, v)
		_, ro := p.Read(st, idx, 0)
		e := p.Lookup(idx)
		if e == nil && (o != Fault || ro != Fault) {
			t.Fatalf("MSR %#x not in the table but outcome %s/%s", idx, o, ro)
		}
		if e != nil && (idx < e.First || idx > e.Last) {
			t.Fatalf("Lookup(%#x) returned %s [%#x-%#x]", idx, e.Name, e.First, e.Last)
		}
		if nv, ok := p.CheckEFER(old, v, cr0); ok {
			if nv&^(p.efer|arch.EFER_LMA) != 0 || nv&arch.EFER_LMA != old&arch.EFER_LMA {
				t.Fatalf("CheckEFER(%#x, %#x) accepted %#x", old, v, nv)
			}
		}
		if nv, ok := p.CheckAPICBase(old, v); ok {
			if nv&arch.APIC_BASE_BSP != old&arch.APIC_BASE_BSP || nv&^(APIC_BASE_ADDR_MASK|arch.APIC_BASE_EN|arch.APIC_BASE_BSP|arch.APIC_BASE_EXTD) != 0 {
				t.Fatalf("CheckAPICBase(%#x, %#x) accepted %#x", old, v, nv)
			}
		}
	})
}

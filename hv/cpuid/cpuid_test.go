package cpuid

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
)

// fakeHost models a processor: leaf 0 and 8000_0000h give the vendor and
// limits; every other leaf returns fill in all registers, except leaf 4
// which describes three cache levels and leaf 0Dh which describes AVX state.
func fakeHost(vendor string, maxBasic, maxExt, fill uint32) HostFunc {
	v := []byte(vendor)
	return func(leaf, sub uint32) (a, b, c, d uint32) {
		switch {
		case leaf == 0:
			return maxBasic, binary.LittleEndian.Uint32(v[0:]), binary.LittleEndian.Uint32(v[8:]), binary.LittleEndian.Uint32(v[4:])
		case leaf == 0x80000000:
			return maxExt, 0, 0, 0
		case leaf > maxBasic && leaf < 0x80000000, leaf > maxExt:
			return 0, 0, 0, 0
		case leaf == 4:
			if sub >= 3 {
				return 0, 0, 0, 0
			}
			return (sub+1)<<5 | 1, fill, fill, fill
		case leaf == 0xd && sub == 0:
			return 0x2e7, 0xa88, 0xa88, 0
		case leaf == 0xd && sub == 2:
			return 256, 576, 0, 0
		}
		return fill, fill, fill, fill
	}
}

func mustNew(t testing.TB, h HostFunc, cfg Config) *Policy {
	t.Helper()
	p, err := New(h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVirtualizationHidden(t *testing.T) {
	for _, tc := range []struct {
		name       string
		vendor     string
		nested     bool
		vmx, svm   bool
		svmLeafMax bool
	}{
		{"intel", VENDOR_INTEL, false, false, false, false},
		{"intel nested", VENDOR_INTEL, true, true, false, false},
		{"amd", VENDOR_AMD, false, false, false, false},
		{"amd nested", VENDOR_AMD, true, false, true, true},
		{"hygon nested", VENDOR_HYGON, true, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, fakeHost(tc.vendor, 0x20, 0x80000021, ^uint32(0)), Config{VCPUs: 1, Nested: tc.nested})
			l1 := p.Lookup(1, 0, 0, 0)
			ext := p.Lookup(LEAF_EXT_FEATURES1, 0, 0, 0)
			if got := l1.ECX&CPUID_1_ECX_VMX != 0; got != tc.vmx {
				t.Errorf("VMX bit %v, want %v", got, tc.vmx)
			}
			if got := ext.ECX&CPUID_80000001_ECX_SVM != 0; got != tc.svm {
				t.Errorf("SVM bit %v, want %v", got, tc.svm)
			}
			svmLeaf := p.Lookup(LEAF_SVM, 0, 0, 0)
			if tc.svmLeafMax != (svmLeaf != Result{}) {
				t.Errorf("leaf 8000_000Ah = %+v", svmLeaf)
			}
			if got := p.EFERMask()&arch.EFER_SVME != 0; got != tc.svm {
				t.Errorf("EFER.SVME writable %v", got)
			}
			if l1.ECX&CPUID_1_ECX_HYPERVISOR == 0 {
				t.Error("hypervisor bit clear")
			}
		})
	}
}

func TestAllowList(t *testing.T) {
	// A host claiming every feature: the guest sees exactly the allow-list.
	for _, tc := range []struct {
		name          string
		cfg           Config
		leaf, sub     uint32
		reg           string
		want          uint32
		mustNotHave   uint32
		mustHave      uint32
		checkExact    bool
		vendor        string
		skipForVendor bool
	}{
		{name: "1 ecx", leaf: 1, reg: "ecx", want: allow1ECX | CPUID_1_ECX_HYPERVISOR, checkExact: true},
		{name: "1 ecx xsave", cfg: Config{XSAVE: true}, leaf: 1, reg: "ecx", want: allow1ECX | allow1ECXXSAVE | CPUID_1_ECX_HYPERVISOR, checkExact: true},
		{name: "1 ecx x2apic+deadline", cfg: Config{X2APIC: true, TSCDeadline: true}, leaf: 1, reg: "ecx", mustHave: CPUID_1_ECX_X2APIC | CPUID_1_ECX_TSC_DEADLINE},
		{name: "1 ecx no x2apic", leaf: 1, reg: "ecx", mustNotHave: CPUID_1_ECX_X2APIC | CPUID_1_ECX_TSC_DEADLINE | CPUID_1_ECX_MONITOR | CPUID_1_ECX_PDCM | CPUID_1_ECX_XSAVE | CPUID_1_ECX_AVX},
		{name: "1 edx", leaf: 1, reg: "edx", want: allow1EDX, checkExact: true},
		{name: "1 edx no mca", leaf: 1, reg: "edx", mustNotHave: CPUID_1_EDX_MCE | CPUID_1_EDX_MCA | CPUID_1_EDX_ACPI | CPUID_1_EDX_TM | CPUID_1_EDX_PBE | CPUID_1_EDX_HTT},
		{name: "7 ebx", leaf: 7, reg: "ebx", want: allow7EBX, checkExact: true},
		{name: "7 ecx", leaf: 7, reg: "ecx", want: allow7ECX, checkExact: true},
		{name: "7 edx", leaf: 7, reg: "edx", want: allow7EDX, checkExact: true},
		{name: "7 eax", leaf: 7, reg: "eax", want: 0, checkExact: true},
		{name: "7 subleaf 1", leaf: 7, sub: 1, reg: "ebx", want: 0, checkExact: true},
		{name: "ext ecx", leaf: LEAF_EXT_FEATURES1, reg: "ecx", want: allowExtECX, checkExact: true},
		{name: "ext edx amd", vendor: VENDOR_AMD, leaf: LEAF_EXT_FEATURES1, reg: "edx", want: allowExtEDX, checkExact: true},
		{name: "ext edx intel", leaf: LEAF_EXT_FEATURES1, reg: "edx", want: allowExtEDX &^ CPUID_80000001_EDX_LEGACY, checkExact: true},
		{name: "no rdtscp", leaf: LEAF_EXT_FEATURES1, reg: "edx", mustNotHave: CPUID_80000001_EDX_RDTSCP},
		{name: "thermal", leaf: 6, reg: "eax", want: CPUID_6_EAX_ARAT, checkExact: true},
		{name: "pmu", leaf: 0xa, reg: "eax", want: 0, checkExact: true},
		{name: "monitor", leaf: 5, reg: "ebx", want: 0, checkExact: true},
		{name: "xsave hidden", leaf: 0xd, reg: "eax", want: 0, checkExact: true},
		{name: "xsave components", cfg: Config{XSAVE: true}, leaf: 0xd, reg: "eax", want: XCR0_X87 | XCR0_SSE | XCR0_AVX, checkExact: true},
		{name: "xsave size", cfg: Config{XSAVE: true}, leaf: 0xd, reg: "ecx", want: 832, checkExact: true},
		{name: "xsaves hidden", cfg: Config{XSAVE: true}, leaf: 0xd, sub: 1, reg: "eax", mustNotHave: CPUID_D1_EAX_XSAVES},
		{name: "apm", leaf: LEAF_APM, reg: "edx", want: CPUID_80000007_EDX_INVTSC, checkExact: true},
		{name: "addr sizes ebx", leaf: LEAF_ADDR_SIZES, reg: "ebx", want: 0, checkExact: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vendor := tc.vendor
			if vendor == "" {
				vendor = VENDOR_INTEL
			}
			cfg := tc.cfg
			cfg.VCPUs = 1
			p := mustNew(t, fakeHost(vendor, 0x20, 0x80000021, ^uint32(0)), cfg)
			r := p.Lookup(tc.leaf, tc.sub, 0, 0)
			got := map[string]uint32{"eax": r.EAX, "ebx": r.EBX, "ecx": r.ECX, "edx": r.EDX}[tc.reg]
			if tc.checkExact && got != tc.want {
				t.Errorf("leaf %#x.%d %s = %#x, want %#x (extra %#x, missing %#x)", tc.leaf, tc.sub, tc.reg, got, tc.want, got&^tc.want, tc.want&^got)
			}
			if got&tc.mustNotHave != 0 {
				t.Errorf("%s = %#x has forbidden bits %#x", tc.reg, got, got&tc.mustNotHave)
			}
			if got&tc.mustHave != tc.mustHave {
				t.Errorf("%s = %#x lacks %#x", tc.reg, got, tc.mustHave&^got)
			}
		})
	}
}

func TestHostWithoutFeatures(t *testing.T) {
	// Allow-listed bits the host lacks stay clear.
	p := mustNew(t, fakeHost(VENDOR_AMD, 0xd, 0x80000008, 0), Config{VCPUs: 1, Nested: true, XSAVE: true, X2APIC: true})
	r := p.Lookup(1, 0, 0, arch.CR4_OSXSAVE)
	if r.ECX != CPUID_1_ECX_HYPERVISOR || r.EDX != 0 {
		t.Errorf("leaf 1 = %+v", r)
	}
	if p.EFERMask() != arch.EFER_SCE|arch.EFER_LME {
		t.Errorf("EFER mask %#x", p.EFERMask())
	}
}

func TestHypervisorLeaves(t *testing.T) {
	p := mustNew(t, fakeHost(VENDOR_AMD, 0x10, 0x80000008, 0), Config{VCPUs: 4, ABIVersion: 0x10000, Features: KEEL_FEATURE_HYPERCALL})
	r := p.Lookup(LEAF_HV_BASE, 0, 0, 0)
	var sig [12]byte
	binary.LittleEndian.PutUint32(sig[0:], r.EBX)
	binary.LittleEndian.PutUint32(sig[4:], r.ECX)
	binary.LittleEndian.PutUint32(sig[8:], r.EDX)
	if r.EAX != LEAF_HV_FEATURES || string(sig[:]) != KEEL_SIGNATURE {
		t.Errorf("leaf 4000_0000h = %#x %q", r.EAX, sig)
	}
	f := p.Lookup(LEAF_HV_FEATURES, 0, 0, 0)
	if f != (Result{0x10000, KEEL_FEATURE_HYPERCALL, 4, 0}) {
		t.Errorf("leaf 4000_0001h = %+v", f)
	}
}

func TestPerVCPUAndTopology(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vcpus    int
		apic     uint32
		nlp      uint32
		coreBits uint32
		htt      bool
	}{
		{"uniprocessor", 1, 0, 1, 0, false},
		{"two", 2, 1, 2, 1, true},
		{"three", 3, 2, 4, 2, true},
		{"many", 64, 63, 64, 6, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, fakeHost(VENDOR_INTEL, 0x1f, 0x80000008, 0), Config{VCPUs: tc.vcpus})
			l1 := p.Lookup(1, 0, tc.apic, 0)
			if l1.EBX>>24 != tc.apic || (l1.EBX>>16)&0xff != tc.nlp || (l1.EDX&CPUID_1_EDX_HTT != 0) != tc.htt {
				t.Errorf("leaf 1 ebx %#x edx %#x", l1.EBX, l1.EDX)
			}
			for _, sub := range []uint32{0, 1, 2, 7} {
				r := p.Lookup(LEAF_TOPOLOGY, sub, tc.apic, 0)
				if r.EDX != tc.apic || r.ECX&0xff != sub {
					t.Errorf("leaf 0Bh.%d = %+v", sub, r)
				}
				switch sub {
				case 0:
					if r.EBX != 1 || (r.ECX>>8)&0xff != TOPOLOGY_LEVEL_SMT {
						t.Errorf("SMT level = %+v", r)
					}
				case 1:
					if r.EAX != tc.coreBits || r.EBX != uint32(tc.vcpus) || (r.ECX>>8)&0xff != TOPOLOGY_LEVEL_CORE {
						t.Errorf("core level = %+v", r)
					}
				default:
					if r.EAX != 0 || r.EBX != 0 || r.ECX>>8 != 0 {
						t.Errorf("invalid level = %+v", r)
					}
				}
			}
			l4 := p.Lookup(4, 0, tc.apic, 0)
			if l4.EAX>>26 != tc.nlp-1 {
				t.Errorf("leaf 4 cores-1 = %d", l4.EAX>>26)
			}
			if l4 := p.Lookup(4, 3, 0, 0); l4 != (Result{}) {
				t.Errorf("leaf 4 past the last cache = %+v", l4)
			}
		})
	}
	amd := mustNew(t, fakeHost(VENDOR_AMD, 0x10, 0x80000008, 0), Config{VCPUs: 6})
	if r := amd.Lookup(LEAF_ADDR_SIZES, 0, 0, 0); r.ECX != 5|3<<12 {
		t.Errorf("AMD 8000_0008h ecx = %#x", r.ECX)
	}
}

func TestOSXSAVEFollowsCR4(t *testing.T) {
	p := mustNew(t, fakeHost(VENDOR_INTEL, 0xd, 0x80000008, ^uint32(0)), Config{VCPUs: 1, XSAVE: true})
	if !p.NeedsCR4() {
		t.Error("NeedsCR4 false with XSAVE")
	}
	if p.Lookup(1, 0, 0, 0).ECX&CPUID_1_ECX_OSXSAVE != 0 {
		t.Error("OSXSAVE set with CR4.OSXSAVE clear")
	}
	if p.Lookup(1, 0, 0, arch.CR4_OSXSAVE).ECX&CPUID_1_ECX_OSXSAVE == 0 {
		t.Error("OSXSAVE clear with CR4.OSXSAVE set")
	}
	q := mustNew(t, fakeHost(VENDOR_INTEL, 0xd, 0x80000008, ^uint32(0)), Config{VCPUs: 1})
	if q.NeedsCR4() || q.Lookup(1, 0, 0, arch.CR4_OSXSAVE).ECX&CPUID_1_ECX_OSXSAVE != 0 {
		t.Error("OSXSAVE shown without XSAVE")
	}
}

func TestLimitsAndOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vendor   string
		leaf     uint32
		wantLeaf uint32 // whose data comes back; 0xffffffff = zeros
	}{
		{"intel beyond basic", VENDOR_INTEL, 0x14, 0xd},
		{"intel beyond ext", VENDOR_INTEL, 0x80000021, 0xd},
		{"intel beyond hv", VENDOR_INTEL, 0x40000002, 0xd},
		{"amd beyond basic", VENDOR_AMD, 0x14, 0xffffffff},
		{"amd beyond ext", VENDOR_AMD, 0x8000001f, 0xffffffff},
		{"amd hidden leaf in range", VENDOR_AMD, 3, 0xffffffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, fakeHost(tc.vendor, 0x20, 0x80000021, 0x5a5a5a5a), Config{VCPUs: 1, XSAVE: true})
			if r := p.Lookup(0, 0, 0, 0); r.EAX != 0xd {
				t.Errorf("max basic leaf %#x", r.EAX)
			}
			if r := p.Lookup(LEAF_EXT_MAX, 0, 0, 0); r.EAX != LEAF_ADDR_SIZES {
				t.Errorf("max ext leaf %#x", r.EAX)
			}
			got := p.Lookup(tc.leaf, 0, 0, 0)
			want := Result{}
			if tc.wantLeaf != 0xffffffff {
				want = p.Lookup(tc.wantLeaf, 0, 0, 0)
			}
			if got != want {
				t.Errorf("leaf %#x = %+v, want %+v", tc.leaf, got, want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		host HostFunc
		cfg  Config
		want string
	}{
		{"no host", nil, Config{VCPUs: 1}, "no host"},
		{"zero vcpus", fakeHost(VENDOR_AMD, 1, 0, 0), Config{}, "0 vCPUs"},
		{"too many vcpus", fakeHost(VENDOR_AMD, 1, 0, 0), Config{VCPUs: 256}, "256 vCPUs"},
		{"no leaf 1", fakeHost(VENDOR_AMD, 0, 0, 0), Config{VCPUs: 1}, "at least leaf 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.host, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// A bogus extended maximum is treated as "no extended leaves".
	p := mustNew(t, fakeHost("ACME Procs!!", 1, 0x12345678, 0), Config{VCPUs: 1})
	if p.Vendor() != VendorUnknown || p.Lookup(LEAF_EXT_MAX, 0, 0, 0).EAX != LEAF_EXT_MAX {
		t.Errorf("vendor %v, ext max %#x", p.Vendor(), p.Lookup(LEAF_EXT_MAX, 0, 0, 0).EAX)
	}
	if len(p.Entries()) == 0 {
		t.Error("no entries")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	p := mustNew(t, fakeHost(VENDOR_INTEL, 0x20, 0x80000021, ^uint32(0)), Config{VCPUs: 8, XSAVE: true})
	leaves := []uint32{0, 1, 4, 7, 0xb, 0xd, 0x40000000, 0x80000001, 0x80000008, 0x99}
	for _, l := range leaves {
		if n := testing.AllocsPerRun(100, func() { _ = p.Lookup(l, 1, 3, arch.CR4_OSXSAVE) }); n != 0 {
			t.Errorf("Lookup(%#x) allocates %v times", l, n)
		}
	}
}

// FuzzCPUID builds policies from fuzzer-chosen host values and checks the
// invariants every guest can rely on, for any leaf it asks for.
func FuzzCPUID(f *testing.F) {
	f.Add(uint32(0xd), uint32(0x80000008), uint32(0xffffffff), false, true, uint32(1), uint32(0), uint8(4))
	f.Add(uint32(0x20), uint32(0x8000001f), uint32(0x12345678), true, false, uint32(0x8000000a), uint32(0), uint8(1))
	f.Add(uint32(1), uint32(0), uint32(0), false, false, uint32(0xb), uint32(5), uint8(255))
	f.Fuzz(func(t *testing.T, maxBasic, maxExt, fill uint32, amd, nested bool, leaf, sub uint32, vcpus uint8) {
		vendor := VENDOR_INTEL
		if amd {
			vendor = VENDOR_AMD
		}
		p, err := New(fakeHost(vendor, maxBasic, maxExt, fill), Config{VCPUs: int(vcpus), Nested: nested, XSAVE: fill&1 != 0})
		if err != nil {
			return
		}
		r := p.Lookup(leaf, sub, uint32(vcpus)-1, ^uint64(0))
		if !nested {
			if l1 := p.Lookup(1, 0, 0, 0); l1.ECX&CPUID_1_ECX_VMX != 0 {
				t.Fatal("VMX visible without nesting")
			}
			// (Only if leaf 8000_0001h exists: beyond the range an Intel
			// guest gets the highest basic leaf, whose bits mean other
			// things.)
			if p.Lookup(LEAF_EXT_MAX, 0, 0, 0).EAX >= LEAF_EXT_FEATURES1 {
				if e := p.Lookup(LEAF_EXT_FEATURES1, 0, 0, 0); e.ECX&CPUID_80000001_ECX_SVM != 0 {
					t.Fatal("SVM visible without nesting")
				}
			}
			// Intel answers out-of-range leaves with the highest basic
			// leaf; AMD must show nothing.
			if s := p.Lookup(LEAF_SVM, 0, 0, 0); p.Vendor() == VendorAMD && s != (Result{}) {
				t.Fatalf("leaf 8000_000Ah visible without nesting: %+v", s)
			}
		}
		if l1 := p.Lookup(1, 0, 0, 0); l1.ECX&CPUID_1_ECX_HYPERVISOR == 0 {
			t.Fatal("hypervisor bit clear")
		}
		if leaf == 1 && r.EBX>>24 != uint32(vcpus-1) {
			t.Fatalf("APIC ID %d, want %d", r.EBX>>24, vcpus-1)
		}
	})
}

// TestExtraLeaves checks hypervisor leaves beyond Keel's own: visible,
// with the range between them reading zero, and refused outside the
// hypervisor range or twice.
func TestExtraLeaves(t *testing.T) {
	host := fakeHost("AuthenticAMD", 0x20, 0x80000021, ^uint32(0))
	kvm := Entry{Leaf: 0x40000100, Result: Result{EAX: 0x40000101, EBX: 0x4b4d564b}}
	p, err := New(host, Config{VCPUs: 1, Extra: []Entry{kvm, {Leaf: 0x40000101, Result: Result{EAX: 1 << 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Lookup(0x40000100, 0, 0, 0); r != kvm.Result {
		t.Errorf("leaf 0x40000100 = %+v, want %+v", r, kvm.Result)
	}
	if r := p.Lookup(0x40000101, 0, 0, 0); r.EAX != 1<<3 {
		t.Errorf("leaf 0x40000101 = %+v", r)
	}
	if r := p.Lookup(0x40000050, 0, 0, 0); r != (Result{}) {
		t.Errorf("leaf 0x40000050 = %+v, want zeros", r)
	}
	for _, bad := range [][]Entry{{{Leaf: 0x40000001}}, {{Leaf: 0x40010000}}, {kvm, kvm}} {
		if _, err := New(host, Config{VCPUs: 1, Extra: bad}); err == nil {
			t.Errorf("extra leaves %+v accepted", bad)
		}
	}
}

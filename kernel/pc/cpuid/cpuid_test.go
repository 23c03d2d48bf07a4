package cpuid

import (
	"testing"
)

// le packs up to four characters into a register, first character lowest.
func le(s string) uint32 {
	var v uint32
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint32(s[i])
	}
	return v
}

// brandRegs spreads a brand string over the three brand leaves.
func brandRegs(s string) [3]Regs {
	var b [48]byte
	copy(b[:], s)

	var r [3]Regs
	for i := range r {
		r[i] = Regs{
			EAX: le(string(b[16*i : 16*i+4])),
			EBX: le(string(b[16*i+4 : 16*i+8])),
			ECX: le(string(b[16*i+8 : 16*i+12])),
			EDX: le(string(b[16*i+12 : 16*i+16])),
		}
	}
	return r
}

// table is a fake CPUID: leaves missing from the map return zeros, as a
// processor does for reserved leaves below its maximum.
type table map[uint32]Regs

func (t table) cpuid(leaf, _ uint32) Regs {
	return t[leaf]
}

// withBrand adds the brand leaves for s.
func (t table) withBrand(s string) table {
	r := brandRegs(s)
	for i := range r {
		t[CPUID_BRAND_0+uint32(i)] = r[i]
	}
	return t
}

func TestVendor(t *testing.T) {
	tests := []struct {
		ebx, edx, ecx string
		want          string
	}{
		{"Auth", "enti", "cAMD", "AuthenticAMD"},
		{"Genu", "ineI", "ntel", "GenuineIntel"},
		{"", "", "", ""},
		{"ab\x00c", "", "", "ab"},
	}

	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := Vendor(le(tt.ebx), le(tt.edx), le(tt.ecx)); got != tt.want {
				t.Errorf("Vendor() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBrand(t *testing.T) {
	tests := []struct {
		name, raw, want string
	}{
		{"qemu", "QEMU TCG CPU version 2.5+", "QEMU TCG CPU version 2.5+"},
		{"intel right-justified", "       Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz", "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz"},
		{"amd trailing spaces", "AMD EPYC 7763 64-Core Processor                ", "AMD EPYC 7763 64-Core Processor"},
		{"full 48 bytes", "0123456789abcdef0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"non-printable", "bad\x01brand\xff", "bad?brand?"},
		{"empty", "", ""},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Brand(brandRegs(tt.raw)); got != tt.want {
				t.Errorf("Brand() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVirt(t *testing.T) {
	tests := []struct {
		name       string
		std1, ext1 uint32
		want       string
	}{
		{"none", 0, 0, VirtNone},
		{"svm", 0, 1 << EXT_FEATURES_ECX_SVM, VirtSVM},
		{"vmx", 1 << FEATURES_ECX_VMX, 0, VirtVMX},
		{"both prefers svm", 1 << FEATURES_ECX_VMX, 1 << EXT_FEATURES_ECX_SVM, VirtSVM},
		{"other bits", ^uint32(1 << FEATURES_ECX_VMX), ^uint32(1 << EXT_FEATURES_ECX_SVM), VirtNone},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Virt(tt.std1, tt.ext1); got != tt.want {
				t.Errorf("Virt(%#x, %#x) = %q, want %q", tt.std1, tt.ext1, got, tt.want)
			}
		})
	}
}

func TestIdentify(t *testing.T) {
	tests := []struct {
		name string
		cpu  table
		want Info
	}{
		{
			name: "qemu tcg max",
			cpu: table{
				CPUID_VENDOR:       {EAX: 0xd, EBX: le("Auth"), EDX: le("enti"), ECX: le("cAMD")},
				CPUID_FEATURES:     {ECX: 0xf6fa3203},
				CPUID_EXT_MAX:      {EAX: 0x8000000a},
				CPUID_EXT_FEATURES: {ECX: 0x00000007},
			}.withBrand("QEMU TCG CPU version 2.5+"),
			want: Info{Vendor: "AuthenticAMD", Brand: "QEMU TCG CPU version 2.5+", Virt: VirtSVM, MaxLeaf: 0xd, MaxExtLeaf: 0x8000000a},
		},
		{
			name: "intel with leaf 15H",
			cpu: table{
				CPUID_VENDOR:      {EAX: 0x16, EBX: le("Genu"), EDX: le("ineI"), ECX: le("ntel")},
				CPUID_FEATURES:    {ECX: 1 << FEATURES_ECX_VMX},
				CPUID_TSC_CRYSTAL: {EAX: 2, EBX: 168, ECX: 25_000_000},
				CPUID_FREQUENCY:   {EAX: 2100},
				CPUID_EXT_MAX:     {EAX: 0x80000008},
			}.withBrand("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz"),
			want: Info{Vendor: "GenuineIntel", Brand: "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", Virt: VirtVMX, MaxLeaf: 0x16, MaxExtLeaf: 0x80000008, TSCHz: 2_100_000_000},
		},
		{
			name: "leaf 15H ignored above the maximum leaf",
			cpu: table{
				CPUID_VENDOR:      {EAX: 0x14, EBX: le("Genu"), EDX: le("ineI"), ECX: le("ntel")},
				CPUID_TSC_CRYSTAL: {EAX: 2, EBX: 168, ECX: 25_000_000},
			},
			want: Info{Vendor: "GenuineIntel", Virt: VirtNone, MaxLeaf: 0x14},
		},
		{
			name: "no extended leaves",
			cpu: table{
				CPUID_VENDOR:       {EAX: 1, EBX: le("Genu"), EDX: le("ineI"), ECX: le("ntel")},
				CPUID_EXT_MAX:      {EAX: 0x00000001}, // garbage, not an extended leaf
				CPUID_EXT_FEATURES: {ECX: 1 << EXT_FEATURES_ECX_SVM},
			},
			want: Info{Vendor: "GenuineIntel", Virt: VirtNone, MaxLeaf: 1},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Identify(tt.cpu.cpuid); got != tt.want {
				t.Errorf("Identify() =\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}

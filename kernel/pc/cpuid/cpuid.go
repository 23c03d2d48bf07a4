// Package cpuid identifies the processor from CPUID results: vendor and
// brand strings, the hardware virtualization extension (AMD-V or VT-x) and
// the TSC frequency when the processor enumerates it.
//
// The package is pure Go and host-testable: Identify takes the CPUID
// instruction as a function, so tests feed it recorded register values and
// the board (kernel/pc) feeds it the real instruction.
package cpuid

import (
	"strings"

	"github.com/keel-hv/keel/kernel/pc/tsc"
)

// CPUID leaves (Intel SDM Vol. 2A, "CPUID—CPU Identification"; AMD APM
// Vol. 3, Appendix E "Obtaining Processor Information Via the CPUID
// Instruction").
const (
	// CPUID_VENDOR returns the maximum standard leaf in EAX and the
	// vendor string in EBX, EDX, ECX.
	CPUID_VENDOR = 0x00
	// CPUID_FEATURES returns the feature flags in ECX and EDX.
	CPUID_FEATURES = 0x01
	// CPUID_TSC_CRYSTAL returns the TSC/crystal ratio (EBX/EAX) and the
	// crystal frequency in Hz (ECX).
	CPUID_TSC_CRYSTAL = 0x15
	// CPUID_FREQUENCY returns the processor base frequency in MHz (EAX).
	CPUID_FREQUENCY = 0x16
	// CPUID_EXT_MAX returns the maximum extended leaf in EAX.
	CPUID_EXT_MAX = 0x80000000
	// CPUID_EXT_FEATURES returns the extended feature flags in ECX, EDX.
	CPUID_EXT_FEATURES = 0x80000001
	// CPUID_BRAND_0 .. CPUID_BRAND_2 return the 48-byte processor brand
	// string, 16 bytes per leaf in EAX, EBX, ECX, EDX.
	CPUID_BRAND_0 = 0x80000002
	CPUID_BRAND_2 = 0x80000004
)

// Feature bits.
const (
	// FEATURES_ECX_VMX is CPUID.01H:ECX.VMX[bit 5], Virtual Machine
	// Extensions (Intel SDM Vol. 2A, Table 3-10).
	FEATURES_ECX_VMX = 5
	// EXT_FEATURES_ECX_SVM is CPUID Fn8000_0001_ECX[SVM] (bit 2), Secure
	// Virtual Machine (AMD APM Vol. 3, E.4.2).
	EXT_FEATURES_ECX_SVM = 2
)

// Hardware virtualization extensions, as Identify reports them.
const (
	// VirtSVM is AMD-V (Secure Virtual Machine).
	VirtSVM = "svm"
	// VirtVMX is Intel VT-x (Virtual Machine Extensions).
	VirtVMX = "vmx"
	// VirtNone means neither extension is present.
	VirtNone = "none"
)

// Regs holds the registers CPUID returns.
type Regs struct {
	EAX, EBX, ECX, EDX uint32
}

// Func executes CPUID for a leaf and subleaf (EAX and ECX inputs).
type Func func(leaf, subleaf uint32) Regs

// Info describes the processor.
type Info struct {
	// Vendor is the 12-byte vendor string, e.g. "AuthenticAMD".
	Vendor string
	// Brand is the processor brand string with NULs cut and runs of
	// spaces collapsed, or "" when the processor has none.
	Brand string
	// Virt is VirtSVM, VirtVMX or VirtNone.
	Virt string
	// MaxLeaf is the highest standard leaf.
	MaxLeaf uint32
	// MaxExtLeaf is the highest extended leaf (0 when none).
	MaxExtLeaf uint32
	// TSCHz is the TSC frequency from leaves 15H/16H, or 0 when the
	// processor does not enumerate it.
	TSCHz uint64
}

// Identify reads the processor identification through cpuid.
func Identify(cpuid Func) Info {
	var info Info

	r := cpuid(CPUID_VENDOR, 0)
	info.MaxLeaf = r.EAX
	info.Vendor = Vendor(r.EBX, r.EDX, r.ECX)

	var features Regs
	if info.MaxLeaf >= CPUID_FEATURES {
		features = cpuid(CPUID_FEATURES, 0)
	}

	if info.MaxLeaf >= CPUID_TSC_CRYSTAL {
		c := cpuid(CPUID_TSC_CRYSTAL, 0)

		var baseMHz uint32
		if info.MaxLeaf >= CPUID_FREQUENCY {
			baseMHz = cpuid(CPUID_FREQUENCY, 0).EAX
		}

		info.TSCHz = tsc.FromCPUID(c.EAX, c.EBX, c.ECX, baseMHz)
	}

	// The extended range is valid when CPUID_EXT_MAX echoes a leaf in it.
	var ext Regs
	if max := cpuid(CPUID_EXT_MAX, 0).EAX; max&0xffff0000 == CPUID_EXT_MAX {
		info.MaxExtLeaf = max
	}

	if info.MaxExtLeaf >= CPUID_EXT_FEATURES {
		ext = cpuid(CPUID_EXT_FEATURES, 0)
	}

	if info.MaxExtLeaf >= CPUID_BRAND_2 {
		var leaves [3]Regs
		for i := range leaves {
			leaves[i] = cpuid(CPUID_BRAND_0+uint32(i), 0)
		}
		info.Brand = Brand(leaves)
	}

	info.Virt = Virt(features.ECX, ext.ECX)

	return info
}

// Vendor decodes the vendor string from CPUID leaf 0 (EBX, EDX, ECX in
// string order).
func Vendor(ebx, edx, ecx uint32) string {
	var b [12]byte
	put32(b[0:], ebx)
	put32(b[4:], edx)
	put32(b[8:], ecx)

	return clean(b[:])
}

// Brand decodes the brand string from CPUID leaves 80000002H-80000004H.
func Brand(leaves [3]Regs) string {
	var b [48]byte

	for i, r := range leaves {
		put32(b[16*i+0:], r.EAX)
		put32(b[16*i+4:], r.EBX)
		put32(b[16*i+8:], r.ECX)
		put32(b[16*i+12:], r.EDX)
	}

	return clean(b[:])
}

// Virt returns the virtualization extension given CPUID.01H:ECX and
// CPUID.80000001H:ECX. SVM wins if both bits are set, which no real
// processor does.
func Virt(featuresECX, extFeaturesECX uint32) string {
	switch {
	case extFeaturesECX&(1<<EXT_FEATURES_ECX_SVM) != 0:
		return VirtSVM
	case featuresECX&(1<<FEATURES_ECX_VMX) != 0:
		return VirtVMX
	default:
		return VirtNone
	}
}

// put32 stores v little-endian, the order CPUID strings use.
func put32(b []byte, v uint32) {
	b[0] = byte(v)
	b[1] = byte(v >> 8)
	b[2] = byte(v >> 16)
	b[3] = byte(v >> 24)
}

// clean cuts b at the first NUL, replaces non-printable bytes with '?' and
// collapses runs of spaces.
func clean(b []byte) string {
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}

		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}

	return strings.Join(strings.Fields(string(b)), " ")
}

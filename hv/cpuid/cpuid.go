// Package cpuid computes what CPUID returns inside a guest: the host's
// values filtered through an allow-list, plus Keel's own hypervisor leaves.
//
// New builds a Policy once per VM from the host's CPUID (an injected
// HostFunc, so that tests can model any processor) and a Config; Lookup then
// answers a guest's CPUID from a precomputed, sorted table and allocates
// nothing. Per-vCPU values — the initial APIC ID in leaf 1 EBX[31:24], the
// x2APIC ID in leaf 0Bh EDX, OSXSAVE mirroring CR4 — are patched in at
// lookup time.
//
// # Decisions
//
// Feature flags pass through only if they are on an allow-list (so a future
// host feature never leaks to guests by default) and the host has them:
//
//   - Hardware virtualization is hidden unless Config.Nested: leaf 1 ECX
//     bit 5 (VMX), leaf 8000_0001h ECX bit 2 (SVM) and leaf 8000_000Ah (SVM
//     features, zeroed). With Nested, only the host vendor's own extension
//     is shown. No backend runs nested guests yet.
//   - Leaf 1 ECX bit 31 (hypervisor present) is always set, and leaves
//     4000_0000h-4000_0001h describe Keel: 4000_0000h returns EAX =
//     4000_0001h (the highest hypervisor leaf) and the 12-byte signature
//     "KeelKeelKeel" in EBX, ECX, EDX; 4000_0001h returns EAX = the
//     hypercall ABI version, EBX = the KEEL_FEATURE_* flags, ECX = the
//     number of vCPUs, EDX = 0.
//   - x2APIC (leaf 1 ECX bit 21) and the TSC-deadline timer (bit 24) are
//     hidden unless Config.X2APIC / Config.TSCDeadline: they need a local
//     APIC model that implements them, and the MSR policy does not list
//     the x2APIC MSRs (800h-8FFh) or IA32_TSC_DEADLINE.
//   - XSAVE, OSXSAVE, AVX, AVX2, FMA, F16C, VAES, VPCLMULQDQ, XOP and FMA4
//     are hidden unless Config.XSAVE: the backend must then switch XCR0 and
//     handle XSETBV. With XSAVE, leaf 0Dh offers only x87, SSE and AVX
//     state, and XSAVES (which needs IA32_XSS) stays hidden. OSXSAVE
//     follows the guest's CR4.OSXSAVE.
//   - Features whose MSRs or instructions Keel does not virtualize are
//     hidden: MONITOR/MWAIT, PDCM, MCE/MCA, ACPI thermal, TM/TM2, PBE,
//     TSC_ADJUST, INVPCID, PKU, RDPID and RDTSCP (TSC_AUX is emulated in the
//     MSR policy, not switched in hardware), IBRS/IBPB/STIBP/SSBD and
//     ARCH_CAPABILITIES, PMU (leaf 0Ah zeroed), SGX, PT, RDT, TopoExt, IBS,
//     OSVW, SKINIT, WDT, LWP.
//   - Leaf 6 reports only ARAT (the emulated APIC timer never stops);
//     leaf 8000_0007h only the invariant-TSC bit, if the host has it.
//   - Topology: every vCPU is a core of one package, one thread per core.
//     Leaf 1 EBX[23:16] and HTT, leaf 4 EAX[31:26], leaf 0Bh and AMD leaf
//     8000_0008h ECX describe Config.VCPUs cores; the vCPU index is its
//     APIC ID.
//   - The highest basic leaf is limited to 0Dh and the highest extended
//     leaf to 8000_0008h (8000_000Ah with Nested on AMD). Leaves inside
//     those ranges that Keel does not describe read as zero. Beyond them,
//     an Intel-vendor guest gets the highest basic leaf (as Intel hardware
//     does) and an AMD-vendor guest gets zeros.
//   - Vendor, family/model/stepping, brand string and cache descriptions
//     pass through unchanged.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package cpuid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sort"

	"github.com/keel-hv/keel/hv/arch"
)

// Keel's hypervisor leaves.
const (
	// LEAF_HV_BASE is the first hypervisor leaf: max hypervisor leaf and
	// signature (the range 4000_0000h-4FFF_FFFFh is reserved for
	// hypervisors: Intel SDM Vol. 2A, CPUID, "Invalid" note).
	LEAF_HV_BASE = 0x40000000
	// LEAF_HV_FEATURES is Keel's ABI version and features leaf.
	LEAF_HV_FEATURES = 0x40000001
	// KEEL_SIGNATURE is the 12-byte signature in EBX, ECX, EDX of leaf
	// 4000_0000h.
	KEEL_SIGNATURE = "KeelKeelKeel"
)

// Feature flags in EBX of leaf 4000_0001h.
const (
	// KEEL_FEATURE_HYPERCALL: Keel hypercalls are available (VMMCALL on
	// AMD, VMCALL on Intel; see package hypercall).
	KEEL_FEATURE_HYPERCALL = 1 << 0
	// KEEL_FEATURE_PRIVILEGED: this VM may make privileged hypercalls.
	KEEL_FEATURE_PRIVILEGED = 1 << 1
)

// Limits on the leaves Keel describes.
const (
	maxBasicLeaf  = LEAF_XSAVE
	maxExtLeaf    = LEAF_ADDR_SIZES
	maxCacheLeafs = 8 // subleaves of leaf 4 examined
	maxXSAVELeafs = 3 // subleaves of leaf 0Dh described (x87/SSE, XSAVE features, AVX)
)

// HostFunc returns the host's CPUID values for leaf and subleaf. The kernel
// executes CPUID; tests model a processor.
type HostFunc func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// Vendor is the processor vendor, from the leaf 0 signature.
type Vendor uint8

// Vendors. Hygon parts are AMD-compatible and reported as VendorAMD.
const (
	VendorUnknown Vendor = iota
	VendorIntel
	VendorAMD
)

// String names the vendor.
func (v Vendor) String() string {
	switch v {
	case VendorIntel:
		return "intel"
	case VendorAMD:
		return "amd"
	}
	return "unknown"
}

// Config selects the optional parts of the policy.
type Config struct {
	// VCPUs is the number of vCPUs (1-255), for the topology leaves.
	VCPUs int
	// Nested exposes the host vendor's virtualization extension.
	Nested bool
	// X2APIC exposes x2APIC mode.
	X2APIC bool
	// TSCDeadline exposes the TSC-deadline timer mode.
	TSCDeadline bool
	// XSAVE exposes XSAVE with x87, SSE and AVX state and the AVX family.
	XSAVE bool
	// ABIVersion is returned in EAX of leaf 4000_0001h.
	ABIVersion uint32
	// Features is returned in EBX of leaf 4000_0001h (KEEL_FEATURE_*).
	Features uint32
	// Extra are further hypervisor leaves, above Keel's own (for
	// example a KVM-compatible signature at 4000_0100h, which Linux
	// finds by scanning the range in steps of 100h, for kvmclock). Each
	// must lie in 4000_0002h-4000_FFFFh; a later entry for the same leaf
	// is an error.
	Extra []Entry
}

// Result is the four registers CPUID returns.
type Result struct {
	// EAX, EBX, ECX and EDX are the output registers.
	EAX, EBX, ECX, EDX uint32
}

// Entry is one precomputed leaf (or subleaf of an indexed leaf).
type Entry struct {
	// Leaf is the EAX input.
	Leaf uint32
	// Subleaf is the ECX input when Indexed.
	Subleaf uint32
	// Indexed is set for leaves whose output depends on ECX.
	Indexed bool
	// Result is what the guest sees (before per-vCPU patches).
	Result
}

// Policy is a VM's precomputed CPUID table. It is immutable after New and
// safe for concurrent use.
type Policy struct {
	vendor   Vendor
	entries  []Entry
	maxBasic uint32
	maxExt   uint32
	maxHV    uint32
	xsave    bool
	efer     uint64
}

// Feature allow-lists: a host bit reaches the guest only if listed here.
const (
	allow1ECX = CPUID_1_ECX_SSE3 | CPUID_1_ECX_PCLMULQDQ | CPUID_1_ECX_SSSE3 | CPUID_1_ECX_CMPXCHG16B |
		CPUID_1_ECX_PCID | CPUID_1_ECX_SSE4_1 | CPUID_1_ECX_SSE4_2 | CPUID_1_ECX_MOVBE | CPUID_1_ECX_POPCNT |
		CPUID_1_ECX_AES | CPUID_1_ECX_RDRAND
	allow1ECXXSAVE = CPUID_1_ECX_XSAVE | CPUID_1_ECX_AVX | CPUID_1_ECX_FMA | CPUID_1_ECX_F16C
	allow1EDX      = CPUID_1_EDX_FPU | CPUID_1_EDX_VME | CPUID_1_EDX_DE | CPUID_1_EDX_PSE | CPUID_1_EDX_TSC |
		CPUID_1_EDX_MSR | CPUID_1_EDX_PAE | CPUID_1_EDX_CX8 | CPUID_1_EDX_APIC | CPUID_1_EDX_SEP |
		CPUID_1_EDX_MTRR | CPUID_1_EDX_PGE | CPUID_1_EDX_CMOV | CPUID_1_EDX_PAT | CPUID_1_EDX_PSE36 |
		CPUID_1_EDX_CLFSH | CPUID_1_EDX_MMX | CPUID_1_EDX_FXSR | CPUID_1_EDX_SSE | CPUID_1_EDX_SSE2 |
		CPUID_1_EDX_SS
	allow7EBX = CPUID_7_EBX_FSGSBASE | CPUID_7_EBX_BMI1 | CPUID_7_EBX_FDP_EXCPTN | CPUID_7_EBX_SMEP |
		CPUID_7_EBX_BMI2 | CPUID_7_EBX_ERMS | CPUID_7_EBX_FPU_CSDS | CPUID_7_EBX_RDSEED | CPUID_7_EBX_ADX |
		CPUID_7_EBX_SMAP | CPUID_7_EBX_CLFLUSHOPT | CPUID_7_EBX_CLWB | CPUID_7_EBX_SHA
	allow7EBXXSAVE = CPUID_7_EBX_AVX2
	allow7ECX      = CPUID_7_ECX_UMIP | CPUID_7_ECX_GFNI | CPUID_7_ECX_LA57 | CPUID_7_ECX_MOVDIRI | CPUID_7_ECX_MOVDIR64B
	allow7ECXXSAVE = CPUID_7_ECX_VAES | CPUID_7_ECX_VPCLMULQDQ
	allow7EDX      = CPUID_7_EDX_FSRM | CPUID_7_EDX_MD_CLEAR | CPUID_7_EDX_SERIALIZE
	allowExtECX    = CPUID_80000001_ECX_LAHF | CPUID_80000001_ECX_ABM | CPUID_80000001_ECX_SSE4A |
		CPUID_80000001_ECX_MISALIGN | CPUID_80000001_ECX_PREFETCH | CPUID_80000001_ECX_TBM
	allowExtECXXSAVE = CPUID_80000001_ECX_XOP | CPUID_80000001_ECX_FMA4
	allowExtEDX      = CPUID_80000001_EDX_SYSCALL | CPUID_80000001_EDX_NX | CPUID_80000001_EDX_MMXEXT |
		CPUID_80000001_EDX_FFXSR | CPUID_80000001_EDX_PAGE1GB | CPUID_80000001_EDX_LM |
		CPUID_80000001_EDX_3DNOWEXT | CPUID_80000001_EDX_3DNOW | (allow1EDX & CPUID_80000001_EDX_LEGACY)
)

// New builds the policy from the host's CPUID and cfg.
func New(host HostFunc, cfg Config) (*Policy, error) {
	if host == nil {
		return nil, errors.New("cpuid: no host CPUID function given")
	}
	if cfg.VCPUs < 1 || cfg.VCPUs > 255 {
		return nil, fmt.Errorf("cpuid: %d vCPUs; the topology leaves describe 1 to 255 (8-bit APIC IDs)", cfg.VCPUs)
	}
	p := &Policy{xsave: cfg.XSAVE}
	a, b, c, d := host(LEAF_VENDOR, 0)
	var sig [12]byte
	binary.LittleEndian.PutUint32(sig[0:], b)
	binary.LittleEndian.PutUint32(sig[4:], d)
	binary.LittleEndian.PutUint32(sig[8:], c)
	switch string(sig[:]) {
	case VENDOR_INTEL:
		p.vendor = VendorIntel
	case VENDOR_AMD, VENDOR_HYGON:
		p.vendor = VendorAMD
	}
	if a < LEAF_FEATURES {
		return nil, fmt.Errorf("cpuid: the host's highest basic leaf is %#x; Keel needs at least leaf 1", a)
	}
	p.maxBasic = min(a, maxBasicLeaf)
	p.add(LEAF_VENDOR, 0, false, Result{p.maxBasic, b, c, d})

	n := uint32(cfg.VCPUs)
	// coreBits is the APIC-ID width of the core level: log2 of the core
	// count rounded up to a power of two.
	coreBits := uint32(bits.Len32(n - 1))
	for leaf := uint32(1); leaf <= p.maxBasic; leaf++ {
		switch leaf {
		case LEAF_FEATURES:
			a, b, c, d := host(leaf, 0)
			ecx := c & allow1ECX
			if cfg.XSAVE {
				ecx |= c & allow1ECXXSAVE
			}
			if cfg.Nested && p.vendor == VendorIntel {
				ecx |= c & CPUID_1_ECX_VMX
			}
			if cfg.X2APIC {
				ecx |= c & CPUID_1_ECX_X2APIC
			}
			if cfg.TSCDeadline {
				ecx |= c & CPUID_1_ECX_TSC_DEADLINE
			}
			ecx |= CPUID_1_ECX_HYPERVISOR
			edx := d & allow1EDX
			ebx := b &^ (CPUID_1_EBX_APICID | CPUID_1_EBX_NLP)
			if n > 1 {
				edx |= CPUID_1_EDX_HTT
				ebx |= (1 << coreBits) << 16
			} else {
				ebx |= 1 << 16
			}
			p.add(leaf, 0, false, Result{a, ebx, ecx, edx})
		case LEAF_CACHE_DESC:
			a, b, c, d := host(leaf, 0)
			p.add(leaf, 0, false, Result{a, b, c, d})
		case LEAF_CACHE_PARAMS:
			for sub := uint32(0); sub < maxCacheLeafs; sub++ {
				a, b, c, d := host(leaf, sub)
				if a&0x1f == 0 { // cache type 0: no more caches
					break
				}
				a &^= 0x3f<<26 | 0xfff<<14
				a |= ((1 << coreBits) - 1) << 26
				if level := (a >> 5) & 7; level >= 3 {
					a |= ((1 << coreBits) - 1) << 14 // shared by all cores
				}
				p.add(leaf, sub, true, Result{a, b, c, d})
			}
		case LEAF_THERMAL:
			p.add(leaf, 0, false, Result{EAX: CPUID_6_EAX_ARAT})
		case LEAF_EXT_FEATURES:
			_, b, c, d := host(leaf, 0)
			ebx, ecx, edx := b&allow7EBX, c&allow7ECX, d&allow7EDX
			if cfg.XSAVE {
				ebx |= b & allow7EBXXSAVE
				ecx |= c & allow7ECXXSAVE
			}
			p.add(leaf, 0, true, Result{0, ebx, ecx, edx})
		case LEAF_TOPOLOGY:
			p.add(leaf, 0, true, Result{0, 1, 0 | TOPOLOGY_LEVEL_SMT<<8, 0})
			p.add(leaf, 1, true, Result{coreBits, n, 1 | TOPOLOGY_LEVEL_CORE<<8, 0})
		case LEAF_XSAVE:
			if !cfg.XSAVE {
				continue
			}
			a0, _, _, _ := host(leaf, 0)
			a1, _, _, _ := host(leaf, 1)
			a2, b2, _, _ := host(leaf, 2)
			mask := a0 & (XCR0_X87 | XCR0_SSE | XCR0_AVX)
			size := uint32(512 + 64) // legacy area + XSAVE header
			if mask&XCR0_AVX != 0 {
				size = max(size, a2+b2)
			}
			// EBX should follow the guest's XCR0; the size for every
			// offered component is a safe upper bound.
			p.add(leaf, 0, true, Result{mask, size, size, 0})
			p.add(leaf, 1, true, Result{a1 &^ CPUID_D1_EAX_XSAVES, 0, 0, 0})
			if mask&XCR0_AVX != 0 {
				p.add(leaf, 2, true, Result{a2, b2, 0, 0})
			}
		}
	}

	// Extended leaves.
	a, b, c, d = host(LEAF_EXT_MAX, 0)
	limit := uint32(maxExtLeaf)
	if cfg.Nested && p.vendor == VendorAMD {
		limit = LEAF_SVM
	}
	p.maxExt = LEAF_EXT_MAX
	if a > LEAF_EXT_MAX && a < LEAF_EXT_MAX+0x10000 {
		p.maxExt = min(a, limit)
	}
	p.add(LEAF_EXT_MAX, 0, false, Result{p.maxExt, b, c, d})
	for leaf := uint32(LEAF_EXT_FEATURES1); leaf <= p.maxExt; leaf++ {
		a, b, c, d := host(leaf, 0)
		switch leaf {
		case LEAF_EXT_FEATURES1:
			ecx := c & allowExtECX
			if cfg.XSAVE {
				ecx |= c & allowExtECXXSAVE
			}
			if cfg.Nested && p.vendor == VendorAMD {
				ecx |= c & CPUID_80000001_ECX_SVM
			}
			edx := d & allowExtEDX
			if p.vendor != VendorAMD {
				edx &^= CPUID_80000001_EDX_LEGACY // Intel reserves them
			}
			p.add(leaf, 0, false, Result{a, b, ecx, edx})
			p.efer = arch.EFER_SCE | arch.EFER_LME
			if edx&CPUID_80000001_EDX_NX != 0 {
				p.efer |= arch.EFER_NXE
			}
			if edx&CPUID_80000001_EDX_FFXSR != 0 {
				p.efer |= arch.EFER_FFXSR
			}
			if ecx&CPUID_80000001_ECX_SVM != 0 {
				p.efer |= arch.EFER_SVME
			}
		case LEAF_BRAND0, LEAF_BRAND1, LEAF_BRAND2, LEAF_L1_CACHE, LEAF_L2_CACHE:
			p.add(leaf, 0, false, Result{a, b, c, d})
		case LEAF_APM:
			p.add(leaf, 0, false, Result{EDX: d & CPUID_80000007_EDX_INVTSC})
		case LEAF_ADDR_SIZES:
			var ecx uint32
			if p.vendor == VendorAMD {
				ecx = (n - 1) | coreBits<<12 // NC, ApicIdCoreIdSize
			}
			p.add(leaf, 0, false, Result{a, 0, ecx, 0})
		case LEAF_SVM:
			p.add(leaf, 0, false, Result{a, b, c, d})
		}
	}
	if p.efer == 0 {
		p.efer = arch.EFER_SCE | arch.EFER_LME
	}

	// Keel's leaves.
	var r Result
	r.EAX = LEAF_HV_FEATURES
	r.EBX = binary.LittleEndian.Uint32([]byte(KEEL_SIGNATURE[0:4]))
	r.ECX = binary.LittleEndian.Uint32([]byte(KEEL_SIGNATURE[4:8]))
	r.EDX = binary.LittleEndian.Uint32([]byte(KEEL_SIGNATURE[8:12]))
	p.add(LEAF_HV_BASE, 0, false, r)
	p.add(LEAF_HV_FEATURES, 0, false, Result{cfg.ABIVersion, cfg.Features, n, 0})
	p.maxHV = LEAF_HV_FEATURES
	seen := map[uint32]bool{}
	for _, x := range cfg.Extra {
		if x.Leaf <= LEAF_HV_FEATURES || x.Leaf > LEAF_HV_BASE+0xffff {
			return nil, fmt.Errorf("cpuid: extra leaf %#x is outside 0x40000002-0x4000ffff", x.Leaf)
		}
		if seen[x.Leaf] && !x.Indexed {
			return nil, fmt.Errorf("cpuid: extra leaf %#x given twice", x.Leaf)
		}
		seen[x.Leaf] = true
		p.add(x.Leaf, x.Subleaf, x.Indexed, x.Result)
		p.maxHV = max(p.maxHV, x.Leaf)
	}

	sort.Slice(p.entries, func(i, j int) bool {
		if p.entries[i].Leaf != p.entries[j].Leaf {
			return p.entries[i].Leaf < p.entries[j].Leaf
		}
		return p.entries[i].Subleaf < p.entries[j].Subleaf
	})
	return p, nil
}

func (p *Policy) add(leaf, sub uint32, indexed bool, r Result) {
	p.entries = append(p.entries, Entry{Leaf: leaf, Subleaf: sub, Indexed: indexed, Result: r})
}

// Vendor returns the host (and guest) vendor.
func (p *Policy) Vendor() Vendor { return p.vendor }

// EFERMask returns the EFER bits a guest may set, given the features this
// policy exposes (SCE and LME always; NXE, FFXSR and SVME when their CPUID
// bits are shown). The MSR policy uses it to guard EFER writes.
func (p *Policy) EFERMask() uint64 { return p.efer }

// NeedsCR4 reports whether Lookup results depend on the guest's CR4 (only
// when XSAVE is exposed: OSXSAVE mirrors CR4.OSXSAVE), so that the caller
// can skip fetching CR4 otherwise.
func (p *Policy) NeedsCR4() bool { return p.xsave }

// Entries returns a copy of the precomputed table, sorted by leaf and
// subleaf, for listings.
func (p *Policy) Entries() []Entry { return append([]Entry(nil), p.entries...) }

// find returns the entry for leaf/subleaf, or nil.
func (p *Policy) find(leaf, sub uint32) *Entry {
	es := p.entries
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].Leaf < leaf {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < len(es) && es[i].Leaf == leaf; i++ {
		if !es[i].Indexed || es[i].Subleaf == sub {
			return &es[i]
		}
	}
	return nil
}

// inRange reports whether leaf lies in one of the ranges the guest was told
// about.
func (p *Policy) inRange(leaf uint32) bool {
	return leaf <= p.maxBasic || (leaf >= LEAF_HV_BASE && leaf <= p.maxHV) ||
		(leaf >= LEAF_EXT_MAX && leaf <= p.maxExt)
}

// Lookup returns CPUID(leaf, subleaf) as the vCPU with APIC ID apicID sees
// it; cr4 is the guest's CR4 (only read when NeedsCR4). It never allocates.
func (p *Policy) Lookup(leaf, subleaf, apicID uint32, cr4 uint64) Result {
	if !p.inRange(leaf) {
		if p.vendor != VendorIntel {
			return Result{}
		}
		leaf = p.maxBasic
	}
	var r Result
	if e := p.find(leaf, subleaf); e != nil {
		r = e.Result
	}
	switch leaf {
	case LEAF_FEATURES:
		r.EBX = r.EBX&^CPUID_1_EBX_APICID | (apicID&0xff)<<24
		if p.xsave && cr4&arch.CR4_OSXSAVE != 0 && r.ECX&CPUID_1_ECX_XSAVE != 0 {
			r.ECX |= CPUID_1_ECX_OSXSAVE
		}
	case LEAF_TOPOLOGY:
		r.ECX = r.ECX&^0xff | subleaf&0xff
		r.EDX = apicID
	}
	return r
}

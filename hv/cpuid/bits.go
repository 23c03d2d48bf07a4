package cpuid

// Leaf numbers (Intel SDM Vol. 2A, "CPUID—CPU Identification", Table 3-8
// "Information Returned by CPUID Instruction"; AMD64 APM Vol. 3, Appendix E
// "Obtaining Processor Information Via the CPUID Instruction").
const (
	LEAF_VENDOR        = 0x0        // max basic leaf, vendor string
	LEAF_FEATURES      = 0x1        // signature, APIC ID, feature flags
	LEAF_CACHE_DESC    = 0x2        // Intel cache/TLB descriptors
	LEAF_CACHE_PARAMS  = 0x4        // Intel deterministic cache parameters (subleaves)
	LEAF_MONITOR       = 0x5        // MONITOR/MWAIT
	LEAF_THERMAL       = 0x6        // thermal and power management
	LEAF_EXT_FEATURES  = 0x7        // structured extended features (subleaves)
	LEAF_PMU           = 0xa        // architectural performance monitoring
	LEAF_TOPOLOGY      = 0xb        // extended topology enumeration (subleaves)
	LEAF_XSAVE         = 0xd        // processor extended state enumeration (subleaves)
	LEAF_EXT_MAX       = 0x80000000 // max extended leaf, vendor string (AMD)
	LEAF_EXT_FEATURES1 = 0x80000001 // extended signature and feature flags
	LEAF_BRAND0        = 0x80000002 // processor brand string, part 1
	LEAF_BRAND1        = 0x80000003 // processor brand string, part 2
	LEAF_BRAND2        = 0x80000004 // processor brand string, part 3
	LEAF_L1_CACHE      = 0x80000005 // AMD L1 cache and TLB
	LEAF_L2_CACHE      = 0x80000006 // L2/L3 cache and TLB
	LEAF_APM           = 0x80000007 // advanced power management (invariant TSC)
	LEAF_ADDR_SIZES    = 0x80000008 // address sizes, AMD core count
	LEAF_SVM           = 0x8000000a // AMD SVM revision and features
)

// Leaf 1 ECX feature flags (Intel SDM Vol. 2A, Table 3-10 "Feature
// Information Returned in the ECX Register"; AMD64 APM Vol. 3, §E.3.2
// "Function 1h").
const (
	CPUID_1_ECX_SSE3         = 1 << 0
	CPUID_1_ECX_PCLMULQDQ    = 1 << 1
	CPUID_1_ECX_MONITOR      = 1 << 3
	CPUID_1_ECX_VMX          = 1 << 5
	CPUID_1_ECX_SSSE3        = 1 << 9
	CPUID_1_ECX_FMA          = 1 << 12
	CPUID_1_ECX_CMPXCHG16B   = 1 << 13
	CPUID_1_ECX_PDCM         = 1 << 15
	CPUID_1_ECX_PCID         = 1 << 17
	CPUID_1_ECX_SSE4_1       = 1 << 19
	CPUID_1_ECX_SSE4_2       = 1 << 20
	CPUID_1_ECX_X2APIC       = 1 << 21
	CPUID_1_ECX_MOVBE        = 1 << 22
	CPUID_1_ECX_POPCNT       = 1 << 23
	CPUID_1_ECX_TSC_DEADLINE = 1 << 24
	CPUID_1_ECX_AES          = 1 << 25
	CPUID_1_ECX_XSAVE        = 1 << 26
	CPUID_1_ECX_OSXSAVE      = 1 << 27
	CPUID_1_ECX_AVX          = 1 << 28
	CPUID_1_ECX_F16C         = 1 << 29
	CPUID_1_ECX_RDRAND       = 1 << 30
	// CPUID_1_ECX_HYPERVISOR is reserved for hypervisors: always 0 on
	// hardware, set by every hypervisor for its guests.
	CPUID_1_ECX_HYPERVISOR = 1 << 31
)

// Leaf 1 EDX feature flags (Intel SDM Vol. 2A, Table 3-11 "More on Feature
// Information Returned in the EDX Register"; AMD64 APM Vol. 3, §E.3.2).
const (
	CPUID_1_EDX_FPU    = 1 << 0
	CPUID_1_EDX_VME    = 1 << 1
	CPUID_1_EDX_DE     = 1 << 2
	CPUID_1_EDX_PSE    = 1 << 3
	CPUID_1_EDX_TSC    = 1 << 4
	CPUID_1_EDX_MSR    = 1 << 5
	CPUID_1_EDX_PAE    = 1 << 6
	CPUID_1_EDX_MCE    = 1 << 7
	CPUID_1_EDX_CX8    = 1 << 8
	CPUID_1_EDX_APIC   = 1 << 9
	CPUID_1_EDX_SEP    = 1 << 11
	CPUID_1_EDX_MTRR   = 1 << 12
	CPUID_1_EDX_PGE    = 1 << 13
	CPUID_1_EDX_MCA    = 1 << 14
	CPUID_1_EDX_CMOV   = 1 << 15
	CPUID_1_EDX_PAT    = 1 << 16
	CPUID_1_EDX_PSE36  = 1 << 17
	CPUID_1_EDX_CLFSH  = 1 << 19
	CPUID_1_EDX_ACPI   = 1 << 22
	CPUID_1_EDX_MMX    = 1 << 23
	CPUID_1_EDX_FXSR   = 1 << 24
	CPUID_1_EDX_SSE    = 1 << 25
	CPUID_1_EDX_SSE2   = 1 << 26
	CPUID_1_EDX_SS     = 1 << 27
	CPUID_1_EDX_HTT    = 1 << 28
	CPUID_1_EDX_TM     = 1 << 29
	CPUID_1_EDX_PBE    = 1 << 31
	CPUID_1_EBX_APICID = 0xff << 24 // initial APIC ID
	CPUID_1_EBX_NLP    = 0xff << 16 // max addressable logical processor IDs
)

// Leaf 7 subleaf 0 feature flags (Intel SDM Vol. 2A, Table 3-8, leaf 07H;
// AMD64 APM Vol. 3, §E.3.6 "Function 7h").
const (
	CPUID_7_EBX_FSGSBASE   = 1 << 0
	CPUID_7_EBX_TSC_ADJUST = 1 << 1
	CPUID_7_EBX_BMI1       = 1 << 3
	CPUID_7_EBX_AVX2       = 1 << 5
	CPUID_7_EBX_FDP_EXCPTN = 1 << 6
	CPUID_7_EBX_SMEP       = 1 << 7
	CPUID_7_EBX_BMI2       = 1 << 8
	CPUID_7_EBX_ERMS       = 1 << 9
	CPUID_7_EBX_INVPCID    = 1 << 10
	CPUID_7_EBX_FPU_CSDS   = 1 << 13
	CPUID_7_EBX_RDSEED     = 1 << 18
	CPUID_7_EBX_ADX        = 1 << 19
	CPUID_7_EBX_SMAP       = 1 << 20
	CPUID_7_EBX_CLFLUSHOPT = 1 << 23
	CPUID_7_EBX_CLWB       = 1 << 24
	CPUID_7_EBX_SHA        = 1 << 29
	CPUID_7_ECX_UMIP       = 1 << 2
	CPUID_7_ECX_PKU        = 1 << 3
	CPUID_7_ECX_GFNI       = 1 << 8
	CPUID_7_ECX_VAES       = 1 << 9
	CPUID_7_ECX_VPCLMULQDQ = 1 << 10
	CPUID_7_ECX_LA57       = 1 << 16
	CPUID_7_ECX_RDPID      = 1 << 22
	CPUID_7_ECX_MOVDIRI    = 1 << 27
	CPUID_7_ECX_MOVDIR64B  = 1 << 28
	CPUID_7_EDX_FSRM       = 1 << 4
	CPUID_7_EDX_MD_CLEAR   = 1 << 10
	CPUID_7_EDX_SERIALIZE  = 1 << 14
	CPUID_7_EDX_SPEC_CTRL  = 1 << 26
)

// Leaf 8000_0001h feature flags (AMD64 APM Vol. 3, §E.4.2 "Function
// 8000_0001h"; Intel SDM Vol. 2A, Table 3-8, leaf 80000001H).
const (
	CPUID_80000001_ECX_LAHF     = 1 << 0
	CPUID_80000001_ECX_SVM      = 1 << 2
	CPUID_80000001_ECX_ABM      = 1 << 5 // LZCNT
	CPUID_80000001_ECX_SSE4A    = 1 << 6
	CPUID_80000001_ECX_MISALIGN = 1 << 7
	CPUID_80000001_ECX_PREFETCH = 1 << 8 // 3DNowPrefetch / PREFETCHW
	CPUID_80000001_ECX_XOP      = 1 << 11
	CPUID_80000001_ECX_FMA4     = 1 << 16
	CPUID_80000001_ECX_TBM      = 1 << 21
	CPUID_80000001_EDX_SYSCALL  = 1 << 11
	CPUID_80000001_EDX_NX       = 1 << 20
	CPUID_80000001_EDX_MMXEXT   = 1 << 22
	CPUID_80000001_EDX_FFXSR    = 1 << 25
	CPUID_80000001_EDX_PAGE1GB  = 1 << 26
	CPUID_80000001_EDX_RDTSCP   = 1 << 27
	CPUID_80000001_EDX_LM       = 1 << 29
	CPUID_80000001_EDX_3DNOWEXT = 1 << 30
	CPUID_80000001_EDX_3DNOW    = 1 << 31
	// CPUID_80000001_EDX_LEGACY are the AMD bits that mirror leaf 1 EDX
	// (0-9, 12-17, 23, 24).
	CPUID_80000001_EDX_LEGACY = 0x0183f3ff
)

// Other fields.
const (
	// CPUID_6_EAX_ARAT: the APIC timer keeps running in deep C-states
	// (Intel SDM Vol. 2A, Table 3-8, leaf 06H).
	CPUID_6_EAX_ARAT = 1 << 2
	// CPUID_80000007_EDX_INVTSC: the TSC is invariant (AMD64 APM Vol. 3,
	// §E.4.6; Intel SDM Vol. 2A, leaf 80000007H).
	CPUID_80000007_EDX_INVTSC = 1 << 8
	// CPUID_D1_EAX_XSAVES: XSAVES/XRSTORS and IA32_XSS (leaf 0DH subleaf
	// 1).
	CPUID_D1_EAX_XSAVES = 1 << 3
	// XCR0_X87, XCR0_SSE and XCR0_AVX are the state components Keel lets
	// a guest enable when XSAVE is exposed (Intel SDM Vol. 1, §13.3).
	XCR0_X87 = 1 << 0
	XCR0_SSE = 1 << 1
	XCR0_AVX = 1 << 2
	// TOPOLOGY_LEVEL_SMT and TOPOLOGY_LEVEL_CORE are leaf 0BH level types
	// in ECX[15:8].
	TOPOLOGY_LEVEL_SMT  = 1
	TOPOLOGY_LEVEL_CORE = 2
)

// Vendor signatures in leaf 0 EBX, EDX, ECX order.
const (
	VENDOR_INTEL = "GenuineIntel"
	VENDOR_AMD   = "AuthenticAMD"
	VENDOR_HYGON = "HygonGenuine"
)

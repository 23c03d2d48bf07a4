package arch

// General-purpose register numbers, in the x86 encoding order used by the
// ModRM reg and r/m fields and the REX.B/R/X extensions (Intel SDM Vol. 2A,
// §3.1.1.1 Table 3-1 "Register Codes Associated With +rb, +rw, +rd, +ro";
// AMD64 APM Vol. 3, §1.4.2 "ModRM Byte Format"). Regs.GPR is indexed by
// them.
const (
	RAX = 0
	RCX = 1
	RDX = 2
	RBX = 3
	RSP = 4
	RBP = 5
	RSI = 6
	RDI = 7
	R8  = 8
	R9  = 9
	R10 = 10
	R11 = 11
	R12 = 12
	R13 = 13
	R14 = 14
	R15 = 15
)

// RFLAGS bits (Intel SDM Vol. 1, §3.4.3 "EFLAGS Register"; AMD64 APM Vol. 2,
// §3.1.6 "RFLAGS Register").
const (
	RFLAGS_CF    = 1 << 0  // carry
	RFLAGS_FIXED = 1 << 1  // reserved, always 1
	RFLAGS_PF    = 1 << 2  // parity
	RFLAGS_AF    = 1 << 4  // auxiliary carry
	RFLAGS_ZF    = 1 << 6  // zero
	RFLAGS_SF    = 1 << 7  // sign
	RFLAGS_TF    = 1 << 8  // trap
	RFLAGS_IF    = 1 << 9  // interrupt enable
	RFLAGS_DF    = 1 << 10 // direction
	RFLAGS_OF    = 1 << 11 // overflow
	RFLAGS_IOPL  = 3 << 12 // I/O privilege level
	RFLAGS_NT    = 1 << 14 // nested task
	RFLAGS_RF    = 1 << 16 // resume
	RFLAGS_VM    = 1 << 17 // virtual-8086 mode
	RFLAGS_AC    = 1 << 18 // alignment check
	RFLAGS_VIF   = 1 << 19 // virtual interrupt flag
	RFLAGS_VIP   = 1 << 20 // virtual interrupt pending
	RFLAGS_ID    = 1 << 21 // CPUID available
)

// CR0 bits (Intel SDM Vol. 3A, §2.5 "Control Registers"; AMD64 APM Vol. 2,
// §3.1.1 "CR0 Register").
const (
	CR0_PE = 1 << 0  // protection enable
	CR0_MP = 1 << 1  // monitor coprocessor
	CR0_EM = 1 << 2  // emulation
	CR0_TS = 1 << 3  // task switched
	CR0_ET = 1 << 4  // extension type
	CR0_NE = 1 << 5  // numeric error
	CR0_WP = 1 << 16 // write protect
	CR0_AM = 1 << 18 // alignment mask
	CR0_NW = 1 << 29 // not write-through
	CR0_CD = 1 << 30 // cache disable
	CR0_PG = 1 << 31 // paging
)

// CR4 bits (Intel SDM Vol. 3A, §2.5 "Control Registers"; AMD64 APM Vol. 2,
// §3.1.3 "CR4 Register").
const (
	CR4_VME        = 1 << 0
	CR4_PVI        = 1 << 1
	CR4_TSD        = 1 << 2
	CR4_DE         = 1 << 3
	CR4_PSE        = 1 << 4
	CR4_PAE        = 1 << 5
	CR4_MCE        = 1 << 6
	CR4_PGE        = 1 << 7
	CR4_PCE        = 1 << 8
	CR4_OSFXSR     = 1 << 9
	CR4_OSXMMEXCPT = 1 << 10
	CR4_UMIP       = 1 << 11
	CR4_LA57       = 1 << 12
	CR4_VMXE       = 1 << 13
	CR4_SMXE       = 1 << 14
	CR4_FSGSBASE   = 1 << 16
	CR4_PCIDE      = 1 << 17
	CR4_OSXSAVE    = 1 << 18
	CR4_SMEP       = 1 << 20
	CR4_SMAP       = 1 << 21
	CR4_PKE        = 1 << 22
)

// EFER bits, MSR C000_0080h (AMD64 APM Vol. 2, §3.1.7 "Extended Feature
// Enable Register (EFER)"; Intel SDM Vol. 4, Table 2-2 "IA32_EFER").
const (
	EFER_SCE   = 1 << 0  // system call extensions
	EFER_LME   = 1 << 8  // long mode enable
	EFER_LMA   = 1 << 10 // long mode active (read-only)
	EFER_NXE   = 1 << 11 // no-execute enable
	EFER_SVME  = 1 << 12 // secure virtual machine enable (AMD)
	EFER_LMSLE = 1 << 13 // long mode segment limit enable (AMD)
	EFER_FFXSR = 1 << 14 // fast FXSAVE/FXRSTOR (AMD)
	EFER_TCE   = 1 << 15 // translation cache extension (AMD)
)

// Exception vectors (Intel SDM Vol. 3A, §6.3.1 Table 6-1 "Protected-Mode
// Exceptions and Interrupts"; AMD64 APM Vol. 2, §8.2 "Vectors").
const (
	VECTOR_DE  = 0  // divide error
	VECTOR_DB  = 1  // debug
	VECTOR_NMI = 2  // non-maskable interrupt
	VECTOR_BP  = 3  // breakpoint
	VECTOR_OF  = 4  // overflow
	VECTOR_BR  = 5  // bound range
	VECTOR_UD  = 6  // invalid opcode
	VECTOR_NM  = 7  // device not available
	VECTOR_DF  = 8  // double fault
	VECTOR_TS  = 10 // invalid TSS
	VECTOR_NP  = 11 // segment not present
	VECTOR_SS  = 12 // stack fault
	VECTOR_GP  = 13 // general protection
	VECTOR_PF  = 14 // page fault
	VECTOR_MF  = 16 // x87 floating point
	VECTOR_AC  = 17 // alignment check
	VECTOR_MC  = 18 // machine check
	VECTOR_XM  = 19 // SIMD floating point
)

// Page-fault error code bits, pushed with #PF (Intel SDM Vol. 3A, §4.7
// "Page-Fault Exceptions"; AMD64 APM Vol. 2, §8.4.2 "Page-Fault Error
// Code").
const (
	PFEC_P    = 1 << 0 // the fault was a protection violation (page present)
	PFEC_WR   = 1 << 1 // the access was a write
	PFEC_US   = 1 << 2 // the access was from CPL 3
	PFEC_RSVD = 1 << 3 // a reserved bit was set in a paging entry
	PFEC_ID   = 1 << 4 // the access was an instruction fetch
)

// LAPIC base MSR fields, IA32_APIC_BASE (Intel SDM Vol. 3A, §11.4.4 "Local
// APIC Status and Location"; AMD64 APM Vol. 2, §16.3.1 "Local APIC
// Enable").
const (
	APIC_BASE_BSP     = 1 << 8  // this processor is the bootstrap processor
	APIC_BASE_EXTD    = 1 << 10 // x2APIC mode
	APIC_BASE_EN      = 1 << 11 // APIC global enable
	APIC_BASE_DEFAULT = 0xfee00000
)

package x86emu

// Control register and EFER bits the emulator reads (Intel SDM Vol. 3A, 2.5
// "Control Registers" and 2.2.1 "Extended Feature Enable Register"; AMD APM
// Vol. 2, 3.1.1 "CR0 Register", 3.1.3 "CR4 Register", 3.1.7 "Extended
// Feature Enable Register (EFER)").
const (
	CR0_PE = 1 << 0  // CR0.PE: protected mode enable
	CR0_WP = 1 << 16 // CR0.WP: supervisor writes honour read-only pages
	CR0_PG = 1 << 31 // CR0.PG: paging enable

	CR4_PSE  = 1 << 4  // CR4.PSE: 4 MiB pages under 32-bit paging
	CR4_PAE  = 1 << 5  // CR4.PAE: physical address extension (PAE and 4/5-level paging)
	CR4_LA57 = 1 << 12 // CR4.LA57: 5-level paging (57-bit linear addresses)
	CR4_SMEP = 1 << 20 // CR4.SMEP: supervisor-mode execution prevention
	CR4_SMAP = 1 << 21 // CR4.SMAP: supervisor-mode access prevention

	EFER_LME = 1 << 8  // EFER.LME: long mode enable
	EFER_LMA = 1 << 10 // EFER.LMA: long mode active
	EFER_NXE = 1 << 11 // EFER.NXE: execute-disable bit (bit 63 of PAE/4-level entries) enabled
)

// RFLAGS bits (Intel SDM Vol. 1, 3.4.3 "EFLAGS Register"; AMD APM Vol. 2,
// 3.1.6 "RFLAGS Register").
const (
	RFLAGS_CF = 1 << 0  // carry flag
	RFLAGS_PF = 1 << 2  // parity flag: low result byte has an even number of 1 bits
	RFLAGS_AF = 1 << 4  // auxiliary carry flag: carry or borrow out of bit 3
	RFLAGS_ZF = 1 << 6  // zero flag
	RFLAGS_SF = 1 << 7  // sign flag
	RFLAGS_TF = 1 << 8  // trap flag (single-step)
	RFLAGS_DF = 1 << 10 // direction flag: string instructions decrement rSI/rDI
	RFLAGS_OF = 1 << 11 // overflow flag
	RFLAGS_VM = 1 << 17 // virtual-8086 mode
	RFLAGS_AC = 1 << 18 // alignment check / SMAP override

	// RFLAGS_ARITH is the set of status flags arithmetic instructions write.
	RFLAGS_ARITH = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF
)

// Paging-structure entry bits shared by 32-bit, PAE, 4-level and 5-level
// paging (Intel SDM Vol. 3A, 4.3 Tables 4-4 to 4-6, 4.4.2 Tables 4-8 to 4-11,
// 4.5.4 Tables 4-15 to 4-20; AMD APM Vol. 2, 5.4.1 "Field Definitions").
const (
	PG_P  = 1 << 0  // present
	PG_RW = 1 << 1  // read/write: 0 makes the region read-only
	PG_US = 1 << 2  // user/supervisor: 1 lets CPL 3 access the region
	PG_A  = 1 << 5  // accessed
	PG_D  = 1 << 6  // dirty (in the entry that maps a page)
	PG_PS = 1 << 7  // page size: this PDE/PDPTE maps a large page
	PG_XD = 1 << 63 // execute-disable (PAE and 4/5-level paging with EFER.NXE=1)
)

// Page-fault error code bits (Intel SDM Vol. 3A, 4.7 "Page-Fault Exceptions",
// Figure 4-12; AMD APM Vol. 2, 8.4.2 "#PF—Page-Fault Exception").
const (
	PF_P    = 1 << 0 // 0: not-present page; 1: protection violation (or reserved bit)
	PF_WR   = 1 << 1 // the access was a write
	PF_US   = 1 << 2 // the access was a user-mode (CPL 3) access
	PF_RSVD = 1 << 3 // a reserved bit was set in a paging-structure entry
	PF_ID   = 1 << 4 // the access was an instruction fetch (only with SMEP or PAE+NXE)
)

// Exception vectors the emulator can report in a Fault (Intel SDM Vol. 3A,
// 6.3.1 Table 6-1 "Protected-Mode Exceptions and Interrupts").
const (
	EXC_SS = 12 // #SS stack-segment fault (non-canonical SS-relative address)
	EXC_GP = 13 // #GP general protection (non-canonical address)
	EXC_PF = 14 // #PF page fault
)

// Segment attribute bits in the AMD VMCB layout: the descriptor's bits 40-47
// and 52-55 packed into 12 bits (AMD APM Vol. 2, 15.5.1 "Basic Operation",
// segment state in the VMCB, and Appendix B "Layout of VMCB", segment
// "attrib" fields). An Intel adapter converts VMCS access rights (Intel SDM
// Vol. 3C, "Guest Register State", table "Format of Access Rights": type, S,
// DPL, P in bits 0-7; AVL, L, D/B, G in bits 12-15; unusable in bit 16) by
// moving bits 12-15 down to 8-11.
const (
	SEG_ATTR_TYPE      = 0xf     // segment type
	SEG_ATTR_S         = 1 << 4  // descriptor type: 1 code/data, 0 system
	SEG_ATTR_DPL_SHIFT = 5       // descriptor privilege level, bits 5-6
	SEG_ATTR_DPL       = 3 << 5  // descriptor privilege level mask
	SEG_ATTR_P         = 1 << 7  // present
	SEG_ATTR_AVL       = 1 << 8  // available to software
	SEG_ATTR_L         = 1 << 9  // CS.L: 64-bit code segment
	SEG_ATTR_DB        = 1 << 10 // CS.D default operand size 32 / SS.B 32-bit stack
	SEG_ATTR_G         = 1 << 11 // granularity
)

// MaxRepIterations bounds the string-instruction iterations one Emulate call
// performs. A REP MOVS/STOS/LODS with a larger count is left with RCX, RSI
// and RDI updated and RIP unchanged, so the guest re-executes the instruction
// and exits again for the rest: interruptible exactly as the hardware makes
// REP string instructions (Intel SDM Vol. 2B, "REP/REPE/REPZ/REPNE/REPNZ").
const MaxRepIterations = 4096

// pageSize is the smallest page; MMIO is routed at this granularity because
// nested paging (NPT, EPT) cannot map anything smaller.
const pageSize = 4096

package arch

import (
	"fmt"
	"strings"
)

// Regs is a vCPU's general register state: the 16 general-purpose
// registers, RIP and RFLAGS. GPR is indexed by the register numbers RAX ..
// R15 (x86 encoding order).
type Regs struct {
	// GPR holds RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15 in that
	// order.
	GPR [16]uint64
	// RIP is the instruction pointer.
	RIP uint64
	// RFLAGS is the flags register; bit 1 (RFLAGS_FIXED) is always set.
	RFLAGS uint64
}

// gprNames are the register names in Regs.GPR order.
var gprNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// GPRName returns the name of general-purpose register i ("rax", "r8"), or
// "r?" for a number outside 0-15.
func GPRName(i int) string {
	if i < 0 || i >= len(gprNames) {
		return "r?"
	}
	return gprNames[i]
}

// String formats the registers as a multi-line dump, four per line.
func (r *Regs) String() string {
	var b strings.Builder
	for i, v := range r.GPR {
		fmt.Fprintf(&b, "%-3s=%016x", gprNames[i], v)
		if i%4 == 3 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	fmt.Fprintf(&b, "rip=%016x rflags=%08x", r.RIP, r.RFLAGS)
	return b.String()
}

// Segment is one segment register's visible and hidden parts, with the
// descriptor attributes unpacked so that neither the SVM (VMCB attrib) nor
// the VMX (access-rights) encoding leaks into the core. Field meanings follow
// the segment descriptor (Intel SDM Vol. 3A, §3.4.5 "Segment Descriptors";
// AMD64 APM Vol. 2, §4.7 "Legacy Segment Descriptors").
type Segment struct {
	// Base is the segment base address.
	Base uint64
	// Limit is the segment limit in bytes (already scaled by G).
	Limit uint32
	// Selector is the visible selector.
	Selector uint16
	// Type is the 4-bit descriptor type field.
	Type uint8
	// DPL is the descriptor privilege level (0-3).
	DPL uint8
	// S is set for code and data segments, clear for system segments.
	S bool
	// Present is the P bit.
	Present bool
	// AVL is the software-available bit.
	AVL bool
	// L is set for a 64-bit code segment.
	L bool
	// DB is the default operation size bit (1 = 32-bit).
	DB bool
	// G is the granularity bit (1 = 4 KiB units).
	G bool
	// Unusable marks a segment register loaded with a null selector
	// (VMX "segment unusable"; SVM: an attribute word of zero).
	Unusable bool
}

// String formats the segment as "sel=0008 base=... limit=... type=b dpl=0
// s p l".
func (s Segment) String() string {
	flags := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{s.S, " s"}, {s.Present, " p"}, {s.AVL, " avl"}, {s.L, " l"}, {s.DB, " db"}, {s.G, " g"}, {s.Unusable, " unusable"}} {
		if f.on {
			flags += f.name
		}
	}
	return fmt.Sprintf("sel=%04x base=%016x limit=%08x type=%x dpl=%d%s", s.Selector, s.Base, s.Limit, s.Type, s.DPL, flags)
}

// DescriptorTable is GDTR or IDTR.
type DescriptorTable struct {
	// Base is the linear base address of the table.
	Base uint64
	// Limit is the table limit in bytes minus one.
	Limit uint16
}

// SegReg names a segment register, in the "sreg" encoding of the
// instruction set (Intel SDM Vol. 2, Appendix B.1.4.8; AMD64 APM Vol. 3,
// §1.4.2), which SVM's IOIO exit information and VMX's instruction
// information field use too.
type SegReg uint8

// Segment registers in sreg encoding.
const (
	SEG_ES SegReg = 0
	SEG_CS SegReg = 1
	SEG_SS SegReg = 2
	SEG_DS SegReg = 3
	SEG_FS SegReg = 4
	SEG_GS SegReg = 5
)

// String returns "es", "cs", ... or "seg?".
func (r SegReg) String() string {
	if int(r) < len(segNames) {
		return segNames[r]
	}
	return "seg?"
}

var segNames = [...]string{"es", "cs", "ss", "ds", "fs", "gs"}

// Sregs is a vCPU's system register state: segment registers, descriptor
// tables, control registers, EFER and the local APIC base.
type Sregs struct {
	// CS, DS, ES, FS, GS and SS are the segment registers.
	CS, DS, ES, FS, GS, SS Segment
	// TR is the task register; LDTR the local descriptor table register.
	TR, LDTR Segment
	// GDTR and IDTR are the global and interrupt descriptor tables.
	GDTR, IDTR DescriptorTable
	// CR0, CR2, CR3 and CR4 are the control registers as the guest sees
	// them.
	CR0, CR2, CR3, CR4 uint64
	// CR8 is the task-priority register (TPR[7:4] in bits 3:0).
	CR8 uint64
	// EFER is the guest-visible EFER (without bits the backend sets for
	// itself, such as SVME on AMD when nesting is off).
	EFER uint64
	// APICBase is the guest's IA32_APIC_BASE.
	APICBase uint64
	// PDPTE are the four PAE page-directory-pointer-table entries the
	// processor loaded from CR3, valid when PDPTEValid (VMX keeps them in
	// the VMCS under EPT; AMD nested paging re-reads them from memory, so
	// SVM leaves PDPTEValid false). Only the instruction emulator's page
	// walk reads them; SetSregs ignores them.
	PDPTE [4]uint64
	// PDPTEValid says whether PDPTE holds the processor's cached entries.
	PDPTEValid bool
}

// CPL returns the current privilege level: 0 in real mode, 3 in
// virtual-8086 mode, otherwise SS.DPL, which backends keep equal to the CPL
// (Intel SDM Vol. 3C, §28.3.1.5 "Checks on Guest Segment Registers"; the
// SVM backend copies the VMCB CPL field into SS.DPL).
func CPL(s *Sregs, rflags uint64) uint8 {
	switch {
	case s.CR0&CR0_PE == 0:
		return 0
	case rflags&RFLAGS_VM != 0:
		return 3
	}
	return s.SS.DPL & 3
}

// Seg returns a pointer to segment register r, or nil for an invalid r.
func (s *Sregs) Seg(r SegReg) *Segment {
	switch r {
	case SEG_ES:
		return &s.ES
	case SEG_CS:
		return &s.CS
	case SEG_SS:
		return &s.SS
	case SEG_DS:
		return &s.DS
	case SEG_FS:
		return &s.FS
	case SEG_GS:
		return &s.GS
	}
	return nil
}

// Mode is the guest's execution mode, derived from CR0, EFER and CS.
type Mode uint8

// Execution modes.
const (
	// ModeReal is real-address mode (CR0.PE=0).
	ModeReal Mode = iota
	// ModeVirtual8086 is virtual-8086 mode (RFLAGS.VM=1).
	ModeVirtual8086
	// ModeProtected16 is protected mode with a 16-bit code segment.
	ModeProtected16
	// ModeProtected32 is protected mode with a 32-bit code segment.
	ModeProtected32
	// ModeCompat16 is long mode, compatibility submode, 16-bit code.
	ModeCompat16
	// ModeCompat32 is long mode, compatibility submode, 32-bit code.
	ModeCompat32
	// ModeLong64 is 64-bit mode (EFER.LMA=1 and CS.L=1).
	ModeLong64
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case ModeReal:
		return "real"
	case ModeVirtual8086:
		return "vm86"
	case ModeProtected16:
		return "protected16"
	case ModeProtected32:
		return "protected32"
	case ModeCompat16:
		return "compat16"
	case ModeCompat32:
		return "compat32"
	case ModeLong64:
		return "long64"
	}
	return "mode?"
}

// ModeOf derives the execution mode from the system registers and RFLAGS
// (Intel SDM Vol. 3A, §2.2 "Modes of Operation"; AMD64 APM Vol. 2, §1.2
// "Modes of Operation").
func ModeOf(s *Sregs, rflags uint64) Mode {
	switch {
	case s.CR0&CR0_PE == 0:
		return ModeReal
	case s.EFER&EFER_LMA != 0 && s.CS.L:
		return ModeLong64
	case s.EFER&EFER_LMA != 0 && s.CS.DB:
		return ModeCompat32
	case s.EFER&EFER_LMA != 0:
		return ModeCompat16
	case rflags&RFLAGS_VM != 0:
		return ModeVirtual8086
	case s.CS.DB:
		return ModeProtected32
	}
	return ModeProtected16
}

// String formats the system registers as a multi-line dump.
func (s *Sregs) String() string {
	var b strings.Builder
	for _, seg := range []struct {
		name string
		s    *Segment
	}{{"cs", &s.CS}, {"ds", &s.DS}, {"es", &s.ES}, {"fs", &s.FS}, {"gs", &s.GS}, {"ss", &s.SS}, {"tr", &s.TR}, {"ldt", &s.LDTR}} {
		fmt.Fprintf(&b, "%-3s %s\n", seg.name, seg.s)
	}
	fmt.Fprintf(&b, "gdt base=%016x limit=%04x  idt base=%016x limit=%04x\n", s.GDTR.Base, s.GDTR.Limit, s.IDTR.Base, s.IDTR.Limit)
	fmt.Fprintf(&b, "cr0=%016x cr2=%016x cr3=%016x cr4=%016x\n", s.CR0, s.CR2, s.CR3, s.CR4)
	fmt.Fprintf(&b, "cr8=%016x efer=%016x apic_base=%016x", s.CR8, s.EFER, s.APICBase)
	return b.String()
}

// Register values after RESET or INIT (Intel SDM Vol. 3A, §10.1.1
// "Processor State After Reset", Table "IA-32 and Intel 64 Processor States
// Following Power-up, Reset, or INIT"; AMD64 APM Vol. 2, §14.1.3 "Processor
// Initialization State").
const (
	// RESET_CR0 is CR0 after reset: CD, NW and ET set.
	RESET_CR0 = CR0_CD | CR0_NW | CR0_ET
	// RESET_RIP is the instruction pointer after reset (CS base
	// FFFF_0000h + FFF0h = the reset vector just below 4 GiB).
	RESET_RIP = 0xfff0
	// RESET_CS_SELECTOR and RESET_CS_BASE describe CS after reset.
	RESET_CS_SELECTOR = 0xf000
	RESET_CS_BASE     = 0xffff0000
	// RESET_SEG_LIMIT is the limit of every segment and descriptor
	// table after reset.
	RESET_SEG_LIMIT = 0xffff
	// RESET_RDX is RDX after reset: family 6 in the processor signature
	// format of CPUID leaf 1 EAX. Callers that know the guest's CPUID
	// signature should put that there instead.
	RESET_RDX = 0x600
)

// ResetState returns the architectural register state of a processor after
// RESET (and, for the registers it covers, after INIT): real mode, executing
// at the reset vector FFFF_FFF0h, interrupts disabled. bsp selects whether
// IA32_APIC_BASE has the BSP flag.
func ResetState(bsp bool) (Regs, Sregs) {
	var r Regs
	r.RIP = RESET_RIP
	r.RFLAGS = RFLAGS_FIXED
	r.GPR[RDX] = RESET_RDX
	data := Segment{Limit: RESET_SEG_LIMIT, Type: 0x3, S: true, Present: true} // read/write, accessed
	s := Sregs{
		CS:   Segment{Selector: RESET_CS_SELECTOR, Base: RESET_CS_BASE, Limit: RESET_SEG_LIMIT, Type: 0xb, S: true, Present: true}, // execute/read, accessed
		DS:   data,
		ES:   data,
		FS:   data,
		GS:   data,
		SS:   data,
		TR:   Segment{Limit: RESET_SEG_LIMIT, Type: 0xb, Present: true}, // busy 32-bit TSS
		LDTR: Segment{Limit: RESET_SEG_LIMIT, Type: 0x2, Present: true}, // LDT
		GDTR: DescriptorTable{Limit: RESET_SEG_LIMIT},
		IDTR: DescriptorTable{Limit: RESET_SEG_LIMIT},
		CR0:  RESET_CR0,
	}
	s.APICBase = APIC_BASE_DEFAULT | APIC_BASE_EN
	if bsp {
		s.APICBase |= APIC_BASE_BSP
	}
	return r, s
}

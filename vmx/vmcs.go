// Package vmx is Keel's Intel VT-x backend: it implements hv.Backend with
// one VMCS per vCPU, extended page tables (EPT), VPIDs and the VMLAUNCH
// loop.
//
// The VMCS is never touched by Go code directly. Each vCPU keeps a shadow
// of the fields Keel uses (vmcs below): Go reads and writes the shadow, and
// the entry path (run_amd64.s), with interrupts disabled, loads the VMCS on
// the current processor (VMPTRLD), writes the fields changed since the last
// entry, enters the guest, reads the guest state and exit information back
// into the shadow and clears the VMCS (VMCLEAR) before Go runs again. A
// VMCS is therefore never left active on a processor, and the vCPU's
// goroutine may move to any processor between two entries (docs/vmx.md).
//
// The field encodings, capability checks, exit decoding, VM-entry checks
// and extended page tables are pure Go and host-testable; entering the guest
// (run_amd64.s) and the per-processor VMXON are GOOS=tamago only.
//
// Reference: Intel 64 and IA-32 Architectures Software Developer's Manual
// (SDM) Vol. 3C, chapters 24-31 and Appendices A-C.
package vmx

import (
	"github.com/keel-hv/keel/hv/arch"
)

// VMCS field encodings (SDM Vol. 3C, Appendix B "Field Encoding in VMCS").
// An encoding packs the access type (bit 0: full/high), the index (9:1), the
// type (11:10: control, read-only data, guest state, host state) and the
// width (14:13: 16-bit, 64-bit, 32-bit, natural). Keel uses the full
// access of 64-bit fields only.

// 16-bit fields (SDM Appendix B.1).
const (
	VIRTUAL_PROCESSOR_ID = 0x0000
	GUEST_ES_SELECTOR    = 0x0800
	GUEST_CS_SELECTOR    = 0x0802
	GUEST_SS_SELECTOR    = 0x0804
	GUEST_DS_SELECTOR    = 0x0806
	GUEST_FS_SELECTOR    = 0x0808
	GUEST_GS_SELECTOR    = 0x080a
	GUEST_LDTR_SELECTOR  = 0x080c
	GUEST_TR_SELECTOR    = 0x080e
	HOST_ES_SELECTOR     = 0x0c00
	HOST_CS_SELECTOR     = 0x0c02
	HOST_SS_SELECTOR     = 0x0c04
	HOST_DS_SELECTOR     = 0x0c06
	HOST_FS_SELECTOR     = 0x0c08
	HOST_GS_SELECTOR     = 0x0c0a
	HOST_TR_SELECTOR     = 0x0c0c
)

// 64-bit fields (SDM Appendix B.2).
const (
	IO_BITMAP_A            = 0x2000
	IO_BITMAP_B            = 0x2002
	MSR_BITMAP             = 0x2004
	VM_EXIT_MSR_STORE_ADDR = 0x2006
	VM_EXIT_MSR_LOAD_ADDR  = 0x2008
	VM_ENTRY_MSR_LOAD_ADDR = 0x200a
	TSC_OFFSET             = 0x2010
	EPT_POINTER            = 0x201a
	GUEST_PHYSICAL_ADDRESS = 0x2400
	VMCS_LINK_POINTER      = 0x2800
	GUEST_IA32_DEBUGCTL    = 0x2802
	GUEST_IA32_PAT         = 0x2804
	GUEST_IA32_EFER        = 0x2806
	GUEST_PDPTE0           = 0x280a
	GUEST_PDPTE1           = 0x280c
	GUEST_PDPTE2           = 0x280e
	GUEST_PDPTE3           = 0x2810
	HOST_IA32_PAT          = 0x2c00
	HOST_IA32_EFER         = 0x2c02
)

// 32-bit fields (SDM Appendix B.3).
const (
	PIN_BASED_VM_EXEC_CONTROL     = 0x4000
	CPU_BASED_VM_EXEC_CONTROL     = 0x4002
	EXCEPTION_BITMAP              = 0x4004
	PAGE_FAULT_ERROR_CODE_MASK    = 0x4006
	PAGE_FAULT_ERROR_CODE_MATCH   = 0x4008
	CR3_TARGET_COUNT              = 0x400a
	VM_EXIT_CONTROLS              = 0x400c
	VM_EXIT_MSR_STORE_COUNT       = 0x400e
	VM_EXIT_MSR_LOAD_COUNT        = 0x4010
	VM_ENTRY_CONTROLS             = 0x4012
	VM_ENTRY_MSR_LOAD_COUNT       = 0x4014
	VM_ENTRY_INTR_INFO_FIELD      = 0x4016
	VM_ENTRY_EXCEPTION_ERROR_CODE = 0x4018
	VM_ENTRY_INSTRUCTION_LEN      = 0x401a
	TPR_THRESHOLD                 = 0x401c
	SECONDARY_VM_EXEC_CONTROL     = 0x401e
	VM_INSTRUCTION_ERROR          = 0x4400
	VM_EXIT_REASON                = 0x4402
	VM_EXIT_INTR_INFO             = 0x4404
	VM_EXIT_INTR_ERROR_CODE       = 0x4406
	IDT_VECTORING_INFO_FIELD      = 0x4408
	IDT_VECTORING_ERROR_CODE      = 0x440a
	VM_EXIT_INSTRUCTION_LEN       = 0x440c
	VMX_INSTRUCTION_INFO          = 0x440e
	GUEST_ES_LIMIT                = 0x4800
	GUEST_CS_LIMIT                = 0x4802
	GUEST_SS_LIMIT                = 0x4804
	GUEST_DS_LIMIT                = 0x4806
	GUEST_FS_LIMIT                = 0x4808
	GUEST_GS_LIMIT                = 0x480a
	GUEST_LDTR_LIMIT              = 0x480c
	GUEST_TR_LIMIT                = 0x480e
	GUEST_GDTR_LIMIT              = 0x4810
	GUEST_IDTR_LIMIT              = 0x4812
	GUEST_ES_AR_BYTES             = 0x4814
	GUEST_CS_AR_BYTES             = 0x4816
	GUEST_SS_AR_BYTES             = 0x4818
	GUEST_DS_AR_BYTES             = 0x481a
	GUEST_FS_AR_BYTES             = 0x481c
	GUEST_GS_AR_BYTES             = 0x481e
	GUEST_LDTR_AR_BYTES           = 0x4820
	GUEST_TR_AR_BYTES             = 0x4822
	GUEST_INTERRUPTIBILITY_INFO   = 0x4824
	GUEST_ACTIVITY_STATE          = 0x4826
	GUEST_SYSENTER_CS             = 0x482a
	VMX_PREEMPTION_TIMER_VALUE    = 0x482e
	HOST_IA32_SYSENTER_CS         = 0x4c00
)

// Natural-width fields (SDM Appendix B.4).
const (
	CR0_GUEST_HOST_MASK          = 0x6000
	CR4_GUEST_HOST_MASK          = 0x6002
	CR0_READ_SHADOW              = 0x6004
	CR4_READ_SHADOW              = 0x6006
	EXIT_QUALIFICATION           = 0x6400
	GUEST_LINEAR_ADDRESS         = 0x640a
	GUEST_CR0                    = 0x6800
	GUEST_CR3                    = 0x6802
	GUEST_CR4                    = 0x6804
	GUEST_ES_BASE                = 0x6806
	GUEST_CS_BASE                = 0x6808
	GUEST_SS_BASE                = 0x680a
	GUEST_DS_BASE                = 0x680c
	GUEST_FS_BASE                = 0x680e
	GUEST_GS_BASE                = 0x6810
	GUEST_LDTR_BASE              = 0x6812
	GUEST_TR_BASE                = 0x6814
	GUEST_GDTR_BASE              = 0x6816
	GUEST_IDTR_BASE              = 0x6818
	GUEST_DR7                    = 0x681a
	GUEST_RSP                    = 0x681c
	GUEST_RIP                    = 0x681e
	GUEST_RFLAGS                 = 0x6820
	GUEST_PENDING_DBG_EXCEPTIONS = 0x6822
	GUEST_SYSENTER_ESP           = 0x6824
	GUEST_SYSENTER_EIP           = 0x6826
	HOST_CR0                     = 0x6c00
	HOST_CR3                     = 0x6c02
	HOST_CR4                     = 0x6c04
	HOST_FS_BASE                 = 0x6c06
	HOST_GS_BASE                 = 0x6c08
	HOST_TR_BASE                 = 0x6c0a
	HOST_GDTR_BASE               = 0x6c0c
	HOST_IDTR_BASE               = 0x6c0e
	HOST_IA32_SYSENTER_ESP       = 0x6c10
	HOST_IA32_SYSENTER_EIP       = 0x6c12
	HOST_RSP                     = 0x6c14
	HOST_RIP                     = 0x6c16
)

// Pin-based VM-execution controls (SDM Vol. 3C, 25.6.1, Table 25-5).
const (
	PIN_BASED_EXT_INTR_MASK    = 1 << 0 // external-interrupt exiting
	PIN_BASED_NMI_EXITING      = 1 << 3
	PIN_BASED_VIRTUAL_NMIS     = 1 << 5
	PIN_BASED_PREEMPTION_TIMER = 1 << 6
)

// Primary processor-based VM-execution controls (SDM Vol. 3C, 25.6.2,
// Table 25-6).
const (
	CPU_BASED_INTR_WINDOW_EXITING     = 1 << 2
	CPU_BASED_USE_TSC_OFFSETTING      = 1 << 3
	CPU_BASED_HLT_EXITING             = 1 << 7
	CPU_BASED_INVLPG_EXITING          = 1 << 9
	CPU_BASED_MWAIT_EXITING           = 1 << 10
	CPU_BASED_RDPMC_EXITING           = 1 << 11
	CPU_BASED_RDTSC_EXITING           = 1 << 12
	CPU_BASED_CR3_LOAD_EXITING        = 1 << 15
	CPU_BASED_CR3_STORE_EXITING       = 1 << 16
	CPU_BASED_CR8_LOAD_EXITING        = 1 << 19
	CPU_BASED_CR8_STORE_EXITING       = 1 << 20
	CPU_BASED_TPR_SHADOW              = 1 << 21
	CPU_BASED_NMI_WINDOW_EXITING      = 1 << 22
	CPU_BASED_MOV_DR_EXITING          = 1 << 23
	CPU_BASED_UNCOND_IO_EXITING       = 1 << 24
	CPU_BASED_USE_IO_BITMAPS          = 1 << 25
	CPU_BASED_MONITOR_TRAP_FLAG       = 1 << 27
	CPU_BASED_USE_MSR_BITMAPS         = 1 << 28
	CPU_BASED_MONITOR_EXITING         = 1 << 29
	CPU_BASED_PAUSE_EXITING           = 1 << 30
	CPU_BASED_ACTIVATE_SECONDARY_CTLS = 1 << 31
)

// Secondary processor-based VM-execution controls (SDM Vol. 3C, 25.6.2,
// Table 25-7).
const (
	SECONDARY_EXEC_VIRTUALIZE_APIC_ACCESSES = 1 << 0
	SECONDARY_EXEC_ENABLE_EPT               = 1 << 1
	SECONDARY_EXEC_DESC_TABLE_EXITING       = 1 << 2
	SECONDARY_EXEC_ENABLE_RDTSCP            = 1 << 3
	SECONDARY_EXEC_ENABLE_VPID              = 1 << 5
	SECONDARY_EXEC_WBINVD_EXITING           = 1 << 6
	SECONDARY_EXEC_UNRESTRICTED_GUEST       = 1 << 7
	SECONDARY_EXEC_ENABLE_INVPCID           = 1 << 12
	SECONDARY_EXEC_XSAVES                   = 1 << 20
)

// VM-exit controls (SDM Vol. 3C, 25.7.1, Table 25-13).
const (
	VM_EXIT_SAVE_DEBUG_CONTROLS   = 1 << 2
	VM_EXIT_HOST_ADDR_SPACE_SIZE  = 1 << 9
	VM_EXIT_ACK_INTR_ON_EXIT      = 1 << 15
	VM_EXIT_SAVE_IA32_PAT         = 1 << 18
	VM_EXIT_LOAD_IA32_PAT         = 1 << 19
	VM_EXIT_SAVE_IA32_EFER        = 1 << 20
	VM_EXIT_LOAD_IA32_EFER        = 1 << 21
	VM_EXIT_SAVE_PREEMPTION_TIMER = 1 << 22
)

// VM-entry controls (SDM Vol. 3C, 25.8.1, Table 25-15).
const (
	VM_ENTRY_LOAD_DEBUG_CONTROLS = 1 << 2
	VM_ENTRY_IA32E_MODE          = 1 << 9
	VM_ENTRY_SMM                 = 1 << 10
	VM_ENTRY_LOAD_IA32_PAT       = 1 << 14
	VM_ENTRY_LOAD_IA32_EFER      = 1 << 15
)

// Interruption-information fields: VM-entry (SDM Vol. 3C, 25.8.3, Table
// 25-17), VM-exit (25.9.2, Table 25-19) and IDT-vectoring (25.9.3, Table
// 25-20) share this layout.
const (
	INTR_INFO_VECTOR_MASK       = 0xff
	INTR_INFO_TYPE_SHIFT        = 8
	INTR_INFO_TYPE_MASK         = 7 << INTR_INFO_TYPE_SHIFT
	INTR_INFO_DELIVER_CODE      = 1 << 11
	INTR_INFO_NMI_UNBLOCK       = 1 << 12 // exit and IDT-vectoring only
	INTR_INFO_VALID             = 1 << 31
	INTR_TYPE_EXT_INTR          = 0 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_NMI               = 2 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_HARD_EXCEPTION    = 3 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_SOFT_INTR         = 4 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_PRIV_SW_EXCEPTION = 5 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_SOFT_EXCEPTION    = 6 << INTR_INFO_TYPE_SHIFT
	INTR_TYPE_OTHER_EVENT       = 7 << INTR_INFO_TYPE_SHIFT
)

// Guest interruptibility state (SDM Vol. 3C, 25.4.2, Table 25-3) and
// activity states (25.4.2).
const (
	GUEST_INTR_STATE_STI    = 1 << 0
	GUEST_INTR_STATE_MOV_SS = 1 << 1
	GUEST_INTR_STATE_SMI    = 1 << 2
	GUEST_INTR_STATE_NMI    = 1 << 3
	GUEST_ACTIVITY_ACTIVE   = 0
	GUEST_ACTIVITY_HLT      = 1
)

// Segment access rights (SDM Vol. 3C, 25.4.1, Table 25-2): the
// descriptor's attribute bits, plus "segment unusable".
const (
	AR_TYPE_MASK = 0xf
	AR_S         = 1 << 4
	AR_DPL_SHIFT = 5
	AR_P         = 1 << 7
	AR_AVL       = 1 << 12
	AR_L         = 1 << 13
	AR_DB        = 1 << 14
	AR_G         = 1 << 15
	AR_UNUSABLE  = 1 << 16
	// AR_RESERVED are the bits that must be zero: 11:8 and 31:17.
	AR_RESERVED = 0xf00 | 0xfffe0000
)

// VMCS_LINK_POINTER_NONE is the only link pointer value allowed without
// VMCS shadowing (SDM Vol. 3C, 27.3.1.5).
const VMCS_LINK_POINTER_NONE = ^uint64(0)

// VMCS_SLOTS is the size of the shadow: 4 widths x 4 types x 64 indexes.
// Every field Keel uses has an index below 64 (TestFieldSlots).
const VMCS_SLOTS = 4 * 4 * 64

// slot returns where field enc lives in the shadow.
func slot(enc uint32) int {
	return int(enc>>13&3)<<8 | int(enc>>10&3)<<6 | int(enc>>1&63)
}

// slotEncoding is the inverse of slot (full access).
func slotEncoding(s int) uint32 {
	return uint32(s>>8&3)<<13 | uint32(s>>6&3)<<10 | uint32(s&63)<<1
}

// vmcs is a vCPU's shadow of its VMCS: the last value read from or
// written to each field, and which fields Go has written since the last
// entry. run_amd64.s writes the dirty fields into the hardware VMCS before
// entering and reads the exit fields (exitReads) back after.
type vmcs struct {
	// val is indexed by slot. It must stay the first field: the
	// assembly addresses it as hwState_v.
	val   [VMCS_SLOTS]uint64
	dirty [VMCS_SLOTS / 64]uint64
}

// read returns the shadow value of field enc.
func (v *vmcs) read(enc uint32) uint64 { return v.val[slot(enc)] }

// write sets field enc and marks it for the next entry.
func (v *vmcs) write(enc uint32, x uint64) {
	s := slot(enc)
	v.val[s] = x
	v.dirty[s/64] |= 1 << (s % 64)
}

// set records a value the hardware already holds (read back at exit or
// changed by the processor itself), without writing it again.
func (v *vmcs) set(enc uint32, x uint64) { v.val[slot(enc)] = x }

// or sets bits in field enc.
func (v *vmcs) or(enc uint32, bits uint64) { v.write(enc, v.read(enc)|bits) }

// andNot clears bits in field enc.
func (v *vmcs) andNot(enc uint32, bits uint64) { v.write(enc, v.read(enc)&^bits) }

// isDirty reports whether field enc waits to be written.
func (v *vmcs) isDirty(enc uint32) bool {
	s := slot(enc)
	return v.dirty[s/64]&(1<<(s%64)) != 0
}

// segFields are the VMCS fields of one segment register.
type segFields struct{ sel, base, limit, ar uint32 }

var (
	segES   = segFields{GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES}
	segCS   = segFields{GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES}
	segSS   = segFields{GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES}
	segDS   = segFields{GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES}
	segFS   = segFields{GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES}
	segGS   = segFields{GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES}
	segLDTR = segFields{GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES}
	segTR   = segFields{GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES}
)

// arFromSegment packs a segment's attributes as VMCS access rights.
func arFromSegment(s arch.Segment) uint32 {
	if s.Unusable {
		return AR_UNUSABLE
	}
	ar := uint32(s.Type&AR_TYPE_MASK) | uint32(s.DPL&3)<<AR_DPL_SHIFT
	for _, f := range [...]struct {
		on  bool
		bit uint32
	}{{s.S, AR_S}, {s.Present, AR_P}, {s.AVL, AR_AVL}, {s.L, AR_L}, {s.DB, AR_DB}, {s.G, AR_G}} {
		if f.on {
			ar |= f.bit
		}
	}
	return ar
}

// segmentFromAR unpacks access rights into s's attribute fields.
func segmentFromAR(s *arch.Segment, ar uint32) {
	s.Type = uint8(ar & AR_TYPE_MASK)
	s.DPL = uint8(ar>>AR_DPL_SHIFT) & 3
	s.S = ar&AR_S != 0
	s.Present = ar&AR_P != 0
	s.AVL = ar&AR_AVL != 0
	s.L = ar&AR_L != 0
	s.DB = ar&AR_DB != 0
	s.G = ar&AR_G != 0
	s.Unusable = ar&AR_UNUSABLE != 0
}

// segment reads a guest segment register from the shadow.
func (v *vmcs) segment(f segFields) arch.Segment {
	s := arch.Segment{
		Selector: uint16(v.read(f.sel)),
		Base:     v.read(f.base),
		Limit:    uint32(v.read(f.limit)),
	}
	segmentFromAR(&s, uint32(v.read(f.ar)))
	return s
}

// setSegment writes a guest segment register.
func (v *vmcs) setSegment(f segFields, s arch.Segment) {
	v.write(f.sel, uint64(s.Selector))
	v.write(f.base, s.Base)
	v.write(f.limit, uint64(s.Limit))
	v.write(f.ar, uint64(arFromSegment(s)))
}

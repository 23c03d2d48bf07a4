package vmx

import (
	"github.com/keel-hv/keel/hv/arch"
)

// VM-entry failures come in two kinds. VMLAUNCH itself fails (VMfailValid)
// when the controls or the host state are wrong, with a VM-instruction
// error number; a VM exit with bit 31 of the exit reason set reports guest
// state the processor refused (basic reason 33) or an MSR it could not
// load (34). Neither names the field, so Keel repeats the checks of SDM
// Vol. 3C, chapter 27 on the VMCS shadow and names the first one that
// fails. The messages are constants: building them does not allocate.

// VM-instruction error numbers (SDM Vol. 3C, 31.4 "VM Instruction Error
// Numbers", Table 31-1).
const (
	VMXERR_VMCALL_IN_ROOT           = 1
	VMXERR_VMCLEAR_INVALID_ADDR     = 2
	VMXERR_VMCLEAR_VMXON_PTR        = 3
	VMXERR_VMLAUNCH_NONCLEAR_VMCS   = 4
	VMXERR_VMRESUME_NONLAUNCHED     = 5
	VMXERR_VMRESUME_AFTER_VMXOFF    = 6
	VMXERR_ENTRY_INVALID_CONTROL    = 7
	VMXERR_ENTRY_INVALID_HOST_STATE = 8
	VMXERR_VMPTRLD_INVALID_ADDR     = 9
	VMXERR_VMPTRLD_VMXON_PTR        = 10
	VMXERR_VMPTRLD_BAD_REVISION     = 11
	VMXERR_UNSUPPORTED_FIELD        = 12
	VMXERR_VMWRITE_READ_ONLY        = 13
	VMXERR_VMXON_IN_ROOT            = 15
	VMXERR_ENTRY_BLOCKED_BY_MOV_SS  = 26
	VMXERR_INVALID_INVEPT_INVVPID   = 28
)

var insnErrors = map[uint32]string{
	VMXERR_VMCALL_IN_ROOT:           "VMCALL executed in VMX root operation",
	VMXERR_VMCLEAR_INVALID_ADDR:     "VMCLEAR with invalid physical address",
	VMXERR_VMCLEAR_VMXON_PTR:        "VMCLEAR with VMXON pointer",
	VMXERR_VMLAUNCH_NONCLEAR_VMCS:   "VMLAUNCH with non-clear VMCS",
	VMXERR_VMRESUME_NONLAUNCHED:     "VMRESUME with non-launched VMCS",
	VMXERR_VMRESUME_AFTER_VMXOFF:    "VMRESUME after VMXOFF",
	VMXERR_ENTRY_INVALID_CONTROL:    "VM entry with invalid control field(s)",
	VMXERR_ENTRY_INVALID_HOST_STATE: "VM entry with invalid host-state field(s)",
	VMXERR_VMPTRLD_INVALID_ADDR:     "VMPTRLD with invalid physical address",
	VMXERR_VMPTRLD_VMXON_PTR:        "VMPTRLD with VMXON pointer",
	VMXERR_VMPTRLD_BAD_REVISION:     "VMPTRLD with incorrect VMCS revision identifier",
	VMXERR_UNSUPPORTED_FIELD:        "VMREAD/VMWRITE from/to unsupported VMCS component",
	VMXERR_VMWRITE_READ_ONLY:        "VMWRITE to read-only VMCS component",
	VMXERR_VMXON_IN_ROOT:            "VMXON executed in VMX root operation",
	VMXERR_ENTRY_BLOCKED_BY_MOV_SS:  "VM entry with events blocked by MOV SS",
	VMXERR_INVALID_INVEPT_INVVPID:   "invalid operand to INVEPT/INVVPID",
}

// insnErrorText names a VM-instruction error number.
func insnErrorText(n uint32) string {
	if s, ok := insnErrors[n]; ok {
		return s
	}
	return "VM-instruction error not known to Keel (SDM Vol. 3C, 31.4)"
}

// launchFailure explains a failed VMLAUNCH.
func (c *vcpu) launchFailure(insnErr uint32) string {
	switch insnErr {
	case VMXERR_ENTRY_INVALID_CONTROL:
		return c.checkControls()
	case VMXERR_ENTRY_INVALID_HOST_STATE:
		return c.checkHost()
	}
	return insnErrorText(insnErr)
}

// check is one VM-entry check: bad when it fails, msg names it.
type check struct {
	bad bool
	msg string
}

// first returns the message of the first failing check, or def.
func first(def string, checks ...check) string {
	for _, k := range checks {
		if k.bad {
			return k.msg
		}
	}
	return def
}

// canonical reports whether x is a canonical 48-bit linear address.
func canonical(x uint64) bool {
	top := x >> 47
	return top == 0 || top == 0x1ffff
}

// limitGranularityBad reports an access-rights G bit that does not match
// the limit (SDM Vol. 3C, 27.3.1.2): a limit with any of bits 11:0 clear
// needs G=0, one with any of bits 31:20 set needs G=1.
func limitGranularityBad(limit uint32, ar uint32) bool {
	g := ar&AR_G != 0
	return limit&0xfff != 0xfff && g || limit>>20 != 0 && !g
}

// patBad reports a PAT value with a reserved memory type (SDM Vol. 3A,
// 12.12.2: types 2, 3 and 8-255 are reserved).
func patBad(pat uint64) bool {
	for i := 0; i < 8; i++ {
		switch pat >> (8 * i) & 0xff {
		case 0, 1, 4, 5, 6, 7:
		default:
			return true
		}
	}
	return false
}

// EFER_RESERVED are the IA32_EFER bits that must be zero on Intel
// processors (SDM Vol. 4, Table 2-2: SCE 0, LME 8, LMA 10, NXE 11).
const EFER_RESERVED = ^uint64(arch.EFER_SCE | arch.EFER_LME | arch.EFER_LMA | arch.EFER_NXE)

// checkControls names the first VM-execution, VM-exit or VM-entry control
// check that fails (SDM Vol. 3C, 27.2.1).
func (c *vcpu) checkControls() string {
	v := &c.hw.v
	caps := &c.vm.b.caps
	pin, proc := uint32(v.read(PIN_BASED_VM_EXEC_CONTROL)), uint32(v.read(CPU_BASED_VM_EXEC_CONTROL))
	proc2 := uint32(v.read(SECONDARY_VM_EXEC_CONTROL))
	exit, entry := uint32(v.read(VM_EXIT_CONTROLS)), uint32(v.read(VM_ENTRY_CONTROLS))
	allowedBad := func(x uint32, a Allowed) bool { return x&a.Must1 != a.Must1 || x&^a.May1 != 0 }
	eptp := v.read(EPT_POINTER)
	info := v.read(VM_ENTRY_INTR_INFO_FIELD)
	typ, vec := info&INTR_INFO_TYPE_MASK, info&INTR_INFO_VECTOR_MASK
	valid := info&INTR_INFO_VALID != 0
	pe := v.read(GUEST_CR0)&arch.CR0_PE != 0
	soft := typ == INTR_TYPE_SOFT_INTR || typ == INTR_TYPE_PRIV_SW_EXCEPTION || typ == INTR_TYPE_SOFT_EXCEPTION
	ilen := v.read(VM_ENTRY_INSTRUCTION_LEN)
	return first("VM entry refused the control fields (VM-instruction error 7) for a reason Keel's checks do not cover (SDM Vol. 3C, 27.2.1)",
		check{allowedBad(pin, caps.Pin), "pin-based VM-execution controls: a bit differs from what IA32_VMX_(TRUE_)PINBASED_CTLS allows (27.2.1.1)"},
		check{allowedBad(proc, caps.Proc), "primary processor-based VM-execution controls: a bit differs from what IA32_VMX_(TRUE_)PROCBASED_CTLS allows (27.2.1.1)"},
		check{proc&CPU_BASED_ACTIVATE_SECONDARY_CTLS != 0 && allowedBad(proc2, caps.Proc2), "secondary processor-based VM-execution controls: a bit IA32_VMX_PROCBASED_CTLS2 does not allow is set (27.2.1.1)"},
		check{v.read(CR3_TARGET_COUNT) > 4, "CR3-target count is above 4 (27.2.1.1)"},
		check{proc&CPU_BASED_USE_IO_BITMAPS != 0 && (v.read(IO_BITMAP_A)&0xfff != 0 || v.read(IO_BITMAP_B)&0xfff != 0), "I/O bitmap A or B address is not 4 KiB aligned (27.2.1.1)"},
		check{proc&CPU_BASED_USE_MSR_BITMAPS != 0 && v.read(MSR_BITMAP)&0xfff != 0, "MSR bitmap address is not 4 KiB aligned (27.2.1.1)"},
		check{pin&PIN_BASED_NMI_EXITING == 0 && pin&PIN_BASED_VIRTUAL_NMIS != 0, "\"virtual NMIs\" is set without \"NMI exiting\" (27.2.1.1)"},
		check{pin&PIN_BASED_VIRTUAL_NMIS == 0 && proc&CPU_BASED_NMI_WINDOW_EXITING != 0, "\"NMI-window exiting\" is set without \"virtual NMIs\" (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_ENABLE_VPID != 0 && v.read(VIRTUAL_PROCESSOR_ID) == 0, "\"enable VPID\" is set and the VPID is 0 (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_ENABLE_EPT != 0 && eptp&7 != MEMORY_TYPE_WB && eptp&7 != 0, "EPT pointer: memory type is neither UC nor WB (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_ENABLE_EPT != 0 && eptp>>3&7 != 3, "EPT pointer: page-walk length is not 4 (bits 5:3 must be 3) (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_ENABLE_EPT != 0 && eptp>>6&1 != 0 && caps.EPTVPID&VMX_EPT_AD == 0, "EPT pointer: accessed/dirty flags enabled but not supported (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_ENABLE_EPT != 0 && eptp>>7&0x1f != 0, "EPT pointer: reserved bits 11:7 are set (27.2.1.1)"},
		check{proc2&SECONDARY_EXEC_UNRESTRICTED_GUEST != 0 && proc2&SECONDARY_EXEC_ENABLE_EPT == 0, "\"unrestricted guest\" is set without \"enable EPT\" (27.2.1.1)"},
		check{allowedBad(exit, caps.Exit), "VM-exit controls: a bit differs from what IA32_VMX_(TRUE_)EXIT_CTLS allows (27.2.1.2)"},
		check{v.read(VM_EXIT_MSR_STORE_COUNT) != 0 && v.read(VM_EXIT_MSR_STORE_ADDR)&0xf != 0, "VM-exit MSR-store address is not 16-byte aligned (27.2.1.2)"},
		check{v.read(VM_EXIT_MSR_LOAD_COUNT) != 0 && v.read(VM_EXIT_MSR_LOAD_ADDR)&0xf != 0, "VM-exit MSR-load address is not 16-byte aligned (27.2.1.2)"},
		check{allowedBad(entry, caps.Entry), "VM-entry controls: a bit differs from what IA32_VMX_(TRUE_)ENTRY_CTLS allows (27.2.1.3)"},
		check{entry&VM_ENTRY_SMM != 0, "VM-entry control \"entry to SMM\" is set outside SMM (27.2.1.3)"},
		check{valid && typ == 1<<INTR_INFO_TYPE_SHIFT, "VM-entry interruption information: type 1 is reserved (27.2.1.3)"},
		check{valid && typ == INTR_TYPE_OTHER_EVENT && proc&CPU_BASED_MONITOR_TRAP_FLAG == 0, "VM-entry interruption information: type 7 (other event) without the monitor trap flag (27.2.1.3)"},
		check{valid && typ == INTR_TYPE_NMI && vec != arch.VECTOR_NMI, "VM-entry interruption information: an NMI must have vector 2 (27.2.1.3)"},
		check{valid && typ == INTR_TYPE_HARD_EXCEPTION && vec > 31, "VM-entry interruption information: a hardware exception vector is above 31 (27.2.1.3)"},
		check{valid && info&INTR_INFO_DELIVER_CODE != 0 && !pe && proc2&SECONDARY_EXEC_UNRESTRICTED_GUEST != 0, "VM-entry interruption information: an error code is delivered while the guest's CR0.PE is 0 (27.2.1.3)"},
		check{valid && info&INTR_INFO_DELIVER_CODE != 0 && (typ != INTR_TYPE_HARD_EXCEPTION || !arch.ExceptionHasErrorCode(uint8(vec))), "VM-entry interruption information: an error code is delivered for an event that has none (27.2.1.3)"},
		check{valid && info&0x7ffff000 != 0, "VM-entry interruption information: reserved bits 30:12 are set (27.2.1.3)"},
		check{valid && info&INTR_INFO_DELIVER_CODE != 0 && v.read(VM_ENTRY_EXCEPTION_ERROR_CODE)>>15 != 0, "VM-entry exception error code: bits 31:15 are set (27.2.1.3)"},
		check{valid && soft && (ilen == 0 || ilen > 15), "VM-entry instruction length is not 1-15 for a software interrupt or exception (27.2.1.3)"},
		check{v.read(VM_ENTRY_MSR_LOAD_COUNT) != 0 && v.read(VM_ENTRY_MSR_LOAD_ADDR)&0xf != 0, "VM-entry MSR-load address is not 16-byte aligned (27.2.1.3)"},
	)
}

// checkHost names the first host-state check that fails (SDM Vol. 3C,
// 27.2.2 to 27.2.4). The host fields were read back after the failure.
func (c *vcpu) checkHost() string {
	v := &c.hw.v
	caps := &c.vm.b.caps
	cr0, cr4 := v.read(HOST_CR0), v.read(HOST_CR4)
	exit := v.read(VM_EXIT_CONTROLS)
	efer := v.read(HOST_IA32_EFER)
	sel := func(f uint32) uint64 { return v.read(f) & 7 }
	return first("VM entry refused the host state (VM-instruction error 8) for a reason Keel's checks do not cover (SDM Vol. 3C, 27.2.2-27.2.4)",
		check{cr0&caps.CR0Fixed0 != caps.CR0Fixed0 || cr0&^caps.CR0Fixed1 != 0, "host CR0 does not satisfy IA32_VMX_CR0_FIXED0/1 (27.2.2)"},
		check{cr4&caps.CR4Fixed0 != caps.CR4Fixed0 || cr4&^caps.CR4Fixed1 != 0, "host CR4 does not satisfy IA32_VMX_CR4_FIXED0/1 (27.2.2)"},
		check{v.read(HOST_CR3)>>52 != 0, "host CR3 has bits beyond the physical-address width set (27.2.2)"},
		check{!canonical(v.read(HOST_IA32_SYSENTER_ESP)) || !canonical(v.read(HOST_IA32_SYSENTER_EIP)), "host IA32_SYSENTER_ESP or _EIP is not canonical (27.2.2)"},
		check{exit&VM_EXIT_LOAD_IA32_PAT != 0 && patBad(v.read(HOST_IA32_PAT)), "host IA32_PAT has a reserved memory type (27.2.2)"},
		check{exit&VM_EXIT_LOAD_IA32_EFER != 0 && efer&EFER_RESERVED != 0, "host IA32_EFER has reserved bits set (27.2.2)"},
		check{exit&VM_EXIT_LOAD_IA32_EFER != 0 && (efer&arch.EFER_LMA != 0) != (exit&VM_EXIT_HOST_ADDR_SPACE_SIZE != 0), "host IA32_EFER.LMA differs from \"host address-space size\" (27.2.2)"},
		check{exit&VM_EXIT_LOAD_IA32_EFER != 0 && (efer&arch.EFER_LME != 0) != (exit&VM_EXIT_HOST_ADDR_SPACE_SIZE != 0), "host IA32_EFER.LME differs from \"host address-space size\" (27.2.2)"},
		check{sel(HOST_ES_SELECTOR)|sel(HOST_CS_SELECTOR)|sel(HOST_SS_SELECTOR)|sel(HOST_DS_SELECTOR)|sel(HOST_FS_SELECTOR)|sel(HOST_GS_SELECTOR)|sel(HOST_TR_SELECTOR) != 0, "a host selector has RPL or TI set (27.2.3)"},
		check{v.read(HOST_CS_SELECTOR) == 0, "host CS selector is 0 (27.2.3)"},
		check{v.read(HOST_TR_SELECTOR) == 0, "host TR selector is 0 (27.2.3)"},
		check{exit&VM_EXIT_HOST_ADDR_SPACE_SIZE == 0 && v.read(HOST_SS_SELECTOR) == 0, "host SS selector is 0 for a 32-bit host (27.2.3)"},
		check{!canonical(v.read(HOST_FS_BASE)) || !canonical(v.read(HOST_GS_BASE)) || !canonical(v.read(HOST_TR_BASE)), "host FS, GS or TR base is not canonical (27.2.3)"},
		check{!canonical(v.read(HOST_GDTR_BASE)) || !canonical(v.read(HOST_IDTR_BASE)), "host GDTR or IDTR base is not canonical (27.2.3)"},
		check{exit&VM_EXIT_HOST_ADDR_SPACE_SIZE == 0, "\"host address-space size\" is clear: Keel's host is 64-bit (27.2.4)"},
		check{cr4&arch.CR4_PAE == 0, "host CR4.PAE is clear for a 64-bit host (27.2.4)"},
		check{!canonical(v.read(HOST_RIP)), "host RIP is not canonical (27.2.4)"},
	)
}

// Exit qualifications of VM-entry failures due to invalid guest state
// (SDM Vol. 3C, 27.8, and 28.2.1 Table 28-1).
const (
	ENTRY_FAIL_DEFAULT   = 0
	ENTRY_FAIL_PDPTE     = 2
	ENTRY_FAIL_NMI       = 3
	ENTRY_FAIL_VMCS_LINK = 4
)

// Guest RFLAGS bits that must be zero (SDM Vol. 3C, 27.3.1.4): 63:22, 15,
// 5 and 3.
const RFLAGS_RESERVED = ^uint64(0x3fffff) | 1<<15 | 1<<5 | 1<<3

// checkGuest names the first guest-state check that fails (SDM Vol. 3C,
// 27.3.1) for an exit with reason 33.
func (c *vcpu) checkGuest(qual uint64) string {
	switch qual {
	case ENTRY_FAIL_PDPTE:
		return "the guest's PAE PDPTEs are invalid (a present entry has reserved bits set) (27.3.1.6)"
	case ENTRY_FAIL_NMI:
		return "an NMI was injected while the guest blocks NMIs (27.3.1.5)"
	case ENTRY_FAIL_VMCS_LINK:
		return "the VMCS link pointer is invalid (27.3.1.5)"
	}
	if m := c.checkGuestRegs(); m != "" {
		return m
	}
	if m := c.checkGuestSegments(); m != "" {
		return m
	}
	return c.checkGuestNonRegister()
}

// checkGuestRegs checks control registers, debug registers and MSRs
// (27.3.1.1), descriptor tables (27.3.1.3), RIP and RFLAGS (27.3.1.4).
func (c *vcpu) checkGuestRegs() string {
	v := &c.hw.v
	caps := &c.vm.b.caps
	cr0, cr4 := v.read(GUEST_CR0), v.read(GUEST_CR4)
	entry := v.read(VM_ENTRY_CONTROLS)
	ia32e := entry&VM_ENTRY_IA32E_MODE != 0
	efer := v.read(GUEST_IA32_EFER)
	must1, must0 := caps.cr0Bits()
	proc2 := v.read(SECONDARY_VM_EXEC_CONTROL)
	if proc2&SECONDARY_EXEC_UNRESTRICTED_GUEST == 0 {
		must1 = caps.CR0Fixed0
	}
	rip, rflags := v.read(GUEST_RIP), v.read(GUEST_RFLAGS)
	csL := uint32(v.read(GUEST_CS_AR_BYTES))&AR_L != 0
	info := v.read(VM_ENTRY_INTR_INFO_FIELD)
	return first("",
		check{cr0&must1 != must1, "guest CR0: a bit IA32_VMX_CR0_FIXED0 requires is clear (27.3.1.1)"},
		check{cr0&must0 != 0, "guest CR0: a bit IA32_VMX_CR0_FIXED1 forbids is set (27.3.1.1)"},
		check{cr0&arch.CR0_PG != 0 && cr0&arch.CR0_PE == 0, "guest CR0.PG is set and CR0.PE is clear (27.3.1.1)"},
		check{cr4&caps.CR4Fixed0 != caps.CR4Fixed0 || cr4&^caps.CR4Fixed1 != 0, "guest CR4 does not satisfy IA32_VMX_CR4_FIXED0/1 (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_DEBUG_CONTROLS != 0 && v.read(GUEST_IA32_DEBUGCTL)&0xffffffffffff003c != 0, "guest IA32_DEBUGCTL has reserved bits set (27.3.1.1)"},
		check{ia32e && (cr0&arch.CR0_PG == 0 || cr4&arch.CR4_PAE == 0), "\"IA-32e mode guest\" is set but guest CR0.PG or CR4.PAE is clear (27.3.1.1)"},
		check{!ia32e && cr4&arch.CR4_PCIDE != 0, "guest CR4.PCIDE is set outside IA-32e mode (27.3.1.1)"},
		check{v.read(GUEST_CR3)>>52 != 0, "guest CR3 has bits beyond the physical-address width set (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_DEBUG_CONTROLS != 0 && v.read(GUEST_DR7)>>32 != 0, "guest DR7 bits 63:32 are set (27.3.1.1)"},
		check{!canonical(v.read(GUEST_SYSENTER_ESP)) || !canonical(v.read(GUEST_SYSENTER_EIP)), "guest IA32_SYSENTER_ESP or _EIP is not canonical (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_IA32_PAT != 0 && patBad(v.read(GUEST_IA32_PAT)), "guest IA32_PAT has a reserved memory type (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_IA32_EFER != 0 && efer&EFER_RESERVED != 0, "guest IA32_EFER has reserved bits set (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_IA32_EFER != 0 && (efer&arch.EFER_LMA != 0) != ia32e, "guest IA32_EFER.LMA differs from \"IA-32e mode guest\" (27.3.1.1)"},
		check{entry&VM_ENTRY_LOAD_IA32_EFER != 0 && cr0&arch.CR0_PG != 0 && (efer&arch.EFER_LMA != 0) != (efer&arch.EFER_LME != 0), "guest IA32_EFER.LMA differs from LME while CR0.PG is set (27.3.1.1)"},
		check{!canonical(v.read(GUEST_GDTR_BASE)) || !canonical(v.read(GUEST_IDTR_BASE)), "guest GDTR or IDTR base is not canonical (27.3.1.3)"},
		check{v.read(GUEST_GDTR_LIMIT)>>16 != 0 || v.read(GUEST_IDTR_LIMIT)>>16 != 0, "guest GDTR or IDTR limit has bits 31:16 set (27.3.1.3)"},
		check{(!ia32e || !csL) && rip>>32 != 0, "guest RIP bits 63:32 are set outside 64-bit mode (27.3.1.4)"},
		check{ia32e && csL && !canonical(rip), "guest RIP is not canonical in 64-bit mode (27.3.1.4)"},
		check{rflags&RFLAGS_RESERVED != 0 || rflags&arch.RFLAGS_FIXED == 0, "guest RFLAGS: reserved bits are set or bit 1 is clear (27.3.1.4)"},
		check{rflags&arch.RFLAGS_VM != 0 && (ia32e || cr0&arch.CR0_PE == 0), "guest RFLAGS.VM is set in IA-32e mode or with CR0.PE clear (27.3.1.4)"},
		check{info&INTR_INFO_VALID != 0 && info&INTR_INFO_TYPE_MASK == INTR_TYPE_EXT_INTR && rflags&arch.RFLAGS_IF == 0, "an external interrupt is injected while guest RFLAGS.IF is clear (27.3.1.4)"},
	)
}

// checkGuestSegments checks the segment registers (27.3.1.2), for guests
// outside virtual-8086 mode.
func (c *vcpu) checkGuestSegments() string {
	v := &c.hw.v
	ia32e := v.read(VM_ENTRY_CONTROLS)&VM_ENTRY_IA32E_MODE != 0
	ug := v.read(SECONDARY_VM_EXEC_CONTROL)&SECONDARY_EXEC_UNRESTRICTED_GUEST != 0
	pe := v.read(GUEST_CR0)&arch.CR0_PE != 0
	if v.read(GUEST_RFLAGS)&arch.RFLAGS_VM != 0 {
		return "" // virtual-8086 mode: Keel's guests do not use it
	}
	ar := func(f segFields) uint32 { return uint32(v.read(f.ar)) }
	usable := func(f segFields) bool { return ar(f)&AR_UNUSABLE == 0 }
	typ := func(f segFields) uint32 { return ar(f) & AR_TYPE_MASK }
	dpl := func(f segFields) uint32 { return ar(f) >> AR_DPL_SHIFT & 3 }
	rpl := func(f segFields) uint64 { return v.read(f.sel) & 3 }
	lg := func(f segFields) bool { return limitGranularityBad(uint32(v.read(f.limit)), ar(f)) }
	cs, ss, tr, ldtr := segCS, segSS, segTR, segLDTR
	csType := typ(cs)
	checks := []check{
		{v.read(tr.sel)&4 != 0, "guest TR selector has TI set (27.3.1.2)"},
		{usable(ldtr) && v.read(ldtr.sel)&4 != 0, "guest LDTR selector has TI set (27.3.1.2)"},
		{!ug && rpl(ss) != rpl(cs), "guest SS.RPL differs from CS.RPL (27.3.1.2)"},
		{!canonical(v.read(tr.base)) || !canonical(v.read(segFS.base)) || !canonical(v.read(segGS.base)), "guest TR, FS or GS base is not canonical (27.3.1.2)"},
		{usable(ldtr) && !canonical(v.read(ldtr.base)), "guest LDTR base is not canonical (27.3.1.2)"},
		{v.read(cs.base)>>32 != 0, "guest CS base bits 63:32 are set (27.3.1.2)"},
		{usable(ss) && v.read(ss.base)>>32 != 0 || usable(segDS) && v.read(segDS.base)>>32 != 0 || usable(segES) && v.read(segES.base)>>32 != 0, "guest SS, DS or ES base bits 63:32 are set (27.3.1.2)"},
		{!(csType == 9 || csType == 11 || csType == 13 || csType == 15 || ug && csType == 3), "guest CS type must be 9, 11, 13 or 15 (or 3 with unrestricted guest) (27.3.1.2)"},
		{ar(cs)&AR_S == 0 || ar(cs)&AR_P == 0, "guest CS must have S and P set (27.3.1.2)"},
		{csType == 3 && dpl(cs) != 0, "guest CS of type 3 (real mode) must have DPL 0 (27.3.1.2)"},
		{(csType == 9 || csType == 11) && dpl(cs) != dpl(ss), "guest CS DPL differs from SS DPL for a non-conforming code segment (27.3.1.2)"},
		{(csType == 13 || csType == 15) && dpl(cs) > dpl(ss), "guest CS DPL is above SS DPL for a conforming code segment (27.3.1.2)"},
		{ia32e && ar(cs)&AR_L != 0 && ar(cs)&AR_DB != 0, "guest CS has both L and D/B set in IA-32e mode (27.3.1.2)"},
		{ar(cs)&AR_RESERVED != 0 || lg(cs), "guest CS access rights: reserved bits set, or G does not match the limit (27.3.1.2)"},
		{usable(ss) && typ(ss) != 3 && typ(ss) != 7, "guest SS type must be 3 or 7 (27.3.1.2)"},
		{!ug && dpl(ss) != uint32(rpl(ss)), "guest SS DPL differs from its RPL (27.3.1.2)"},
		{(!pe || csType == 3) && dpl(ss) != 0, "guest SS DPL must be 0 in real mode (27.3.1.2)"},
		{usable(ss) && (ar(ss)&AR_S == 0 || ar(ss)&AR_P == 0 || ar(ss)&AR_RESERVED != 0 || lg(ss)), "guest SS access rights: S or P clear, reserved bits set, or G does not match the limit (27.3.1.2)"},
	}
	for _, f := range [...]struct {
		seg  segFields
		name string
	}{{segDS, "DS"}, {segES, "ES"}, {segFS, "FS"}, {segGS, "GS"}} {
		if !usable(f.seg) {
			continue
		}
		t := typ(f.seg)
		checks = append(checks,
			check{t&1 == 0, "guest DS, ES, FS or GS: the accessed bit of a usable segment's type is clear (27.3.1.2)"},
			check{t&8 != 0 && t&2 == 0, "guest DS, ES, FS or GS: a code segment must be readable (27.3.1.2)"},
			check{ar(f.seg)&AR_S == 0 || ar(f.seg)&AR_P == 0, "guest DS, ES, FS or GS: S or P is clear (27.3.1.2)"},
			check{!ug && t <= 11 && dpl(f.seg) < uint32(rpl(f.seg)), "guest DS, ES, FS or GS: DPL is below RPL (27.3.1.2)"},
			check{ar(f.seg)&AR_RESERVED != 0 || lg(f.seg), "guest DS, ES, FS or GS access rights: reserved bits set, or G does not match the limit (27.3.1.2)"},
		)
	}
	trType := typ(tr)
	checks = append(checks,
		check{!usable(tr), "guest TR is marked unusable (27.3.1.2)"},
		check{ia32e && trType != 11, "guest TR type must be 11 (busy 64-bit TSS) in IA-32e mode (27.3.1.2)"},
		check{!ia32e && trType != 3 && trType != 11, "guest TR type must be 3 or 11 (busy TSS) (27.3.1.2)"},
		check{ar(tr)&AR_S != 0 || ar(tr)&AR_P == 0 || ar(tr)&AR_RESERVED != 0 || lg(tr), "guest TR access rights: S set, P clear, reserved bits set, or G does not match the limit (27.3.1.2)"},
		check{usable(ldtr) && (typ(ldtr) != 2 || ar(ldtr)&AR_S != 0 || ar(ldtr)&AR_P == 0 || ar(ldtr)&AR_RESERVED != 0 || lg(ldtr)), "guest LDTR access rights: type not 2, S set, P clear, reserved bits set, or G does not match the limit (27.3.1.2)"},
	)
	return first("", checks...)
}

// checkGuestNonRegister checks the activity and interruptibility state,
// pending debug exceptions, the link pointer and the PDPTEs (27.3.1.5,
// 27.3.1.6).
func (c *vcpu) checkGuestNonRegister() string {
	v := &c.hw.v
	act := v.read(GUEST_ACTIVITY_STATE)
	intr := v.read(GUEST_INTERRUPTIBILITY_INFO)
	info := v.read(VM_ENTRY_INTR_INFO_FIELD)
	valid := info&INTR_INFO_VALID != 0
	typ := info & INTR_INFO_TYPE_MASK
	ssDPL := v.read(GUEST_SS_AR_BYTES) >> AR_DPL_SHIFT & 3
	pdpteBad := false
	if c.paePaging() {
		for _, f := range [4]uint32{GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2, GUEST_PDPTE3} {
			if e := v.read(f); e&1 != 0 && e&0x1e6 != 0 {
				pdpteBad = true
			}
		}
	}
	return first("the processor refused the guest state (exit reason 33) for a reason Keel's checks do not cover (SDM Vol. 3C, 27.3.1)",
		check{act > 3, "guest activity state is not 0-3 (27.3.1.5)"},
		check{act == GUEST_ACTIVITY_HLT && ssDPL != 0, "guest activity state is HLT while SS.DPL is not 0 (27.3.1.5)"},
		check{intr>>5 != 0, "guest interruptibility state has reserved bits set (27.3.1.5)"},
		check{intr&GUEST_INTR_STATE_STI != 0 && intr&GUEST_INTR_STATE_MOV_SS != 0, "guest interruptibility state: blocking by STI and by MOV SS are both set (27.3.1.5)"},
		check{intr&GUEST_INTR_STATE_STI != 0 && v.read(GUEST_RFLAGS)&arch.RFLAGS_IF == 0, "guest interruptibility state: blocking by STI with RFLAGS.IF clear (27.3.1.5)"},
		check{valid && typ == INTR_TYPE_EXT_INTR && intr&(GUEST_INTR_STATE_STI|GUEST_INTR_STATE_MOV_SS) != 0, "an external interrupt is injected during blocking by STI or MOV SS (27.3.1.5)"},
		check{valid && typ == INTR_TYPE_NMI && intr&GUEST_INTR_STATE_MOV_SS != 0, "an NMI is injected during blocking by MOV SS (27.3.1.5)"},
		check{intr&GUEST_INTR_STATE_SMI != 0, "guest interruptibility state: blocking by SMI outside SMM (27.3.1.5)"},
		check{valid && typ == INTR_TYPE_NMI && v.read(PIN_BASED_VM_EXEC_CONTROL)&PIN_BASED_VIRTUAL_NMIS != 0 && intr&GUEST_INTR_STATE_NMI != 0, "an NMI is injected while virtual NMIs are blocked (27.3.1.5)"},
		check{v.read(GUEST_PENDING_DBG_EXCEPTIONS)&^uint64(0xf|1<<12|1<<14|1<<16) != 0, "guest pending debug exceptions has reserved bits set (27.3.1.5)"},
		check{v.read(VMCS_LINK_POINTER) != VMCS_LINK_POINTER_NONE, "the VMCS link pointer is not FFFFFFFF_FFFFFFFFh (27.3.1.5)"},
		check{pdpteBad, "a present guest PDPTE has reserved bits set (27.3.1.6)"},
	)
}

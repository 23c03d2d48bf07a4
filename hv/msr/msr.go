package msr

import (
	"fmt"
	"sort"
	"strings"

	"github.com/keel-hv/keel/hv/arch"
)

// MSR numbers (Intel SDM Vol. 4, Chapter 2 "Model-Specific Registers
// (MSRs)", Table 2-2 "IA-32 Architectural MSRs"; AMD64 APM Vol. 2, Appendix
// A "MSR Cross-Reference").
const (
	IA32_TIME_STAMP_COUNTER = 0x10
	IA32_APIC_BASE          = 0x1b
	IA32_FEATURE_CONTROL    = 0x3a
	IA32_BIOS_SIGN_ID       = 0x8b // AMD: PATCH_LEVEL
	MSR_PLATFORM_INFO       = 0xce
	IA32_MTRRCAP            = 0xfe
	IA32_SYSENTER_CS        = 0x174
	IA32_SYSENTER_ESP       = 0x175
	IA32_SYSENTER_EIP       = 0x176
	IA32_MCG_CAP            = 0x179
	IA32_MCG_STATUS         = 0x17a
	IA32_MISC_ENABLE        = 0x1a0
	IA32_DEBUGCTL           = 0x1d9
	IA32_MTRR_PHYSBASE0     = 0x200
	IA32_MTRR_PHYSMASK7     = 0x20f
	IA32_MTRR_FIX64K_00000  = 0x250
	IA32_MTRR_FIX16K_80000  = 0x258
	IA32_MTRR_FIX16K_A0000  = 0x259
	IA32_MTRR_FIX4K_C0000   = 0x268
	IA32_MTRR_FIX4K_F8000   = 0x26f
	IA32_PAT                = 0x277
	IA32_MTRR_DEF_TYPE      = 0x2ff
	IA32_MC0_CTL            = 0x400
	IA32_MC31_MISC          = 0x47f
	IA32_EFER               = 0xc0000080
	IA32_STAR               = 0xc0000081
	IA32_LSTAR              = 0xc0000082
	IA32_CSTAR              = 0xc0000083
	IA32_FMASK              = 0xc0000084
	IA32_FS_BASE            = 0xc0000100
	IA32_GS_BASE            = 0xc0000101
	IA32_KERNEL_GS_BASE     = 0xc0000102
	IA32_TSC_AUX            = 0xc0000103
	MSR_AMD64_SYSCFG        = 0xc0010010
	MSR_K7_HWCR             = 0xc0010015
	MSR_AMD64_NB_CFG        = 0xc001001f
	MSR_VM_CR               = 0xc0010114
	MSR_AMD64_DE_CFG        = 0xc0011029
)

// Field values used in the table.
const (
	// FEATURE_CONTROL_LOCK is IA32_FEATURE_CONTROL bit 0: locked, with
	// VMX enable bits 1-2 clear (VMX off), as firmware leaves a machine
	// whose virtualization is disabled (Intel SDM Vol. 3C, §24.7
	// "Enabling and Entering VMX Operation").
	FEATURE_CONTROL_LOCK = 1 << 0
	// MTRRCAP_VCNT8_FIX_WC advertises 8 variable ranges, fixed ranges and
	// write combining (Intel SDM Vol. 3A, §12.11.2.1 "IA32_MTRR_DEF_TYPE
	// MSR"/"MTRRcap Register").
	MTRRCAP_VCNT8_FIX_WC = 8 | 1<<8 | 1<<10
	// MTRR_DEF_TYPE_E_WB is MTRRs enabled with write-back default type,
	// as firmware leaves them.
	MTRR_DEF_TYPE_E_WB = 1<<11 | 6
	// MISC_ENABLE_DEFAULT is fast strings enabled, BTS and PEBS
	// unavailable (Intel SDM Vol. 4, Table 2-2, IA32_MISC_ENABLE bits 0,
	// 11, 12).
	MISC_ENABLE_DEFAULT = 1<<0 | 1<<11 | 1<<12
	// VM_CR_LOCK_SVMDIS is VM_CR with SVM disabled by firmware and locked
	// (AMD64 APM Vol. 2, §15.30.1 "VM_CR MSR"): what a guest without nested
	// virtualization sees.
	VM_CR_LOCK_SVMDIS = 1<<3 | 1<<4
	// DE_CFG_LFENCE_SERIALIZE is DE_CFG bit 1: LFENCE is dispatch
	// serializing.
	DE_CFG_LFENCE_SERIALIZE = 1 << 1
	// PAT_DEFAULT is IA32_PAT after reset (Intel SDM Vol. 3A, §12.12.4
	// "Programming the PAT").
	PAT_DEFAULT = 0x0007040600070406
)

// Action says how Keel answers RDMSR and WRMSR of an MSR.
type Action uint8

// Actions.
const (
	// ActionGP raises #GP on reads and writes: every MSR not in the
	// table.
	ActionGP Action = iota
	// ActionPassthrough: the MSR is part of the guest state the backend
	// switches in hardware (VMCB save area, VMCS guest fields or MSR
	// load/store lists) and does not intercept. Should an exit arrive
	// anyway, the core keeps a per-vCPU value as for ActionEmulate.
	ActionPassthrough
	// ActionEmulate keeps a per-vCPU value, initially Value; writes that
	// set bits outside WriteMask raise #GP.
	ActionEmulate
	// ActionFixed reads as Value; writes are ignored.
	ActionFixed
	// ActionReadOnly reads as Value; writes raise #GP.
	ActionReadOnly
	// ActionTSC reads the guest's time-stamp counter; writes are ignored
	// (the TSC offset is the backend's).
	ActionTSC
	// ActionEFER reads and writes the guest-visible EFER in the vCPU's
	// system registers, after CheckEFER.
	ActionEFER
	// ActionAPICBase reads and writes IA32_APIC_BASE in the vCPU's
	// system registers, after CheckAPICBase.
	ActionAPICBase
)

var actionNames = [...]string{"#GP", "passthrough", "emulate", "fixed", "read-only", "tsc", "efer", "apic-base"}

// String names the action as in the package table.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// Entry is one row of the MSR table: a range of MSR numbers sharing an
// action.
type Entry struct {
	// First and Last bound the MSR numbers (inclusive).
	First, Last uint32
	// Name is the manual's name (of the first MSR for ranges).
	Name string
	// Action is what Keel does.
	Action Action
	// Value is the read value (Fixed, ReadOnly) or initial value
	// (Emulate, Passthrough fallback).
	Value uint64
	// WriteMask is the set of bits an Emulate write may set.
	WriteMask uint64
	// Why explains the choice, for the rendered table.
	Why string

	slot int // index of the first per-vCPU value
}

// DefaultTable returns Keel's MSR table, sorted by number. Nested
// virtualization changes VM_CR (see New).
func DefaultTable() []Entry {
	return []Entry{
		{First: IA32_TIME_STAMP_COUNTER, Name: "IA32_TIME_STAMP_COUNTER", Action: ActionTSC, Why: "guest TSC; writes ignored"},
		{First: IA32_APIC_BASE, Name: "IA32_APIC_BASE", Action: ActionAPICBase, Why: "in Sregs; BSP read-only, x2APIC only if exposed"},
		{First: IA32_FEATURE_CONTROL, Name: "IA32_FEATURE_CONTROL", Action: ActionReadOnly, Value: FEATURE_CONTROL_LOCK, Why: "locked, VMX off"},
		{First: IA32_BIOS_SIGN_ID, Name: "IA32_BIOS_SIGN_ID", Action: ActionFixed, Why: "microcode revision 0"},
		{First: MSR_PLATFORM_INFO, Name: "MSR_PLATFORM_INFO", Action: ActionReadOnly, Why: "no ratios reported"},
		{First: IA32_MTRRCAP, Name: "IA32_MTRRCAP", Action: ActionReadOnly, Value: MTRRCAP_VCNT8_FIX_WC, Why: "8 variable, fixed, WC"},
		{First: IA32_SYSENTER_CS, Last: IA32_SYSENTER_EIP, Name: "IA32_SYSENTER_CS..EIP", Action: ActionPassthrough, Why: "guest state"},
		{First: IA32_MCG_CAP, Name: "IA32_MCG_CAP", Action: ActionReadOnly, Why: "no machine-check banks"},
		{First: IA32_MCG_STATUS, Name: "IA32_MCG_STATUS", Action: ActionFixed},
		{First: IA32_MISC_ENABLE, Name: "IA32_MISC_ENABLE", Action: ActionFixed, Value: MISC_ENABLE_DEFAULT, Why: "fast strings; no BTS/PEBS"},
		{First: IA32_DEBUGCTL, Name: "IA32_DEBUGCTL", Action: ActionFixed, Why: "no LBR/BTF"},
		{First: IA32_MTRR_PHYSBASE0, Last: IA32_MTRR_PHYSMASK7, Name: "IA32_MTRR_PHYSBASE0..PHYSMASK7", Action: ActionEmulate, WriteMask: 0x000ffffffffff8ff, Why: "stored; NPT/EPT ignore them"},
		{First: IA32_MTRR_FIX64K_00000, Name: "IA32_MTRR_FIX64K_00000", Action: ActionEmulate, WriteMask: ^uint64(0), Why: "stored"},
		{First: IA32_MTRR_FIX16K_80000, Last: IA32_MTRR_FIX16K_A0000, Name: "IA32_MTRR_FIX16K_80000..A0000", Action: ActionEmulate, WriteMask: ^uint64(0), Why: "stored"},
		{First: IA32_MTRR_FIX4K_C0000, Last: IA32_MTRR_FIX4K_F8000, Name: "IA32_MTRR_FIX4K_C0000..F8000", Action: ActionEmulate, WriteMask: ^uint64(0), Why: "stored"},
		{First: IA32_PAT, Name: "IA32_PAT", Action: ActionPassthrough, Value: PAT_DEFAULT, Why: "guest state (VMCB g_pat, VMCS guest PAT)"},
		{First: IA32_MTRR_DEF_TYPE, Name: "IA32_MTRR_DEF_TYPE", Action: ActionEmulate, Value: MTRR_DEF_TYPE_E_WB, WriteMask: 0xcff, Why: "stored; starts enabled, write-back"},
		{First: IA32_MC0_CTL, Last: IA32_MC31_MISC, Name: "IA32_MC0_CTL..MC31_MISC", Action: ActionFixed, Why: "no MCA banks"},
		{First: IA32_EFER, Name: "IA32_EFER", Action: ActionEFER, Why: "in Sregs; bits per CPUID, LME fixed while paging"},
		{First: IA32_STAR, Last: IA32_FMASK, Name: "IA32_STAR, LSTAR, CSTAR, FMASK", Action: ActionPassthrough, Why: "guest state"},
		{First: IA32_FS_BASE, Last: IA32_KERNEL_GS_BASE, Name: "IA32_FS_BASE, GS_BASE, KERNEL_GS_BASE", Action: ActionPassthrough, Why: "guest state"},
		{First: IA32_TSC_AUX, Name: "IA32_TSC_AUX", Action: ActionEmulate, WriteMask: 0xffffffff, Why: "stored; RDTSCP/RDPID hidden"},
		{First: MSR_AMD64_SYSCFG, Name: "MSR_AMD64_SYSCFG", Action: ActionFixed, Why: "no SME, no MTRR extensions"},
		{First: MSR_K7_HWCR, Name: "MSR_K7_HWCR", Action: ActionFixed},
		{First: MSR_AMD64_NB_CFG, Name: "MSR_AMD64_NB_CFG", Action: ActionFixed},
		{First: MSR_VM_CR, Name: "MSR_VM_CR", Action: ActionFixed, Value: VM_CR_LOCK_SVMDIS, Why: "SVM disabled and locked unless nested"},
		{First: MSR_AMD64_DE_CFG, Name: "MSR_AMD64_DE_CFG", Action: ActionFixed, Value: DE_CFG_LFENCE_SERIALIZE, Why: "LFENCE serializing"},
	}
}

// Config selects the per-VM parts of the policy.
type Config struct {
	// EFERMask is the set of EFER bits the guest may set (from the CPUID
	// policy's EFERMask). Zero means SCE|LME|NXE.
	EFERMask uint64
	// X2APIC allows IA32_APIC_BASE.EXTD.
	X2APIC bool
	// Nested shows VM_CR unlocked with SVM enabled.
	Nested bool
	// Table replaces DefaultTable when non-nil.
	Table []Entry
}

// Policy is a VM's MSR table. It is immutable after New and safe for
// concurrent use; per-vCPU values live in State.
type Policy struct {
	entries  []Entry
	slots    int
	efer     uint64
	x2apic   bool
	initVals []uint64
}

// New validates the table and builds the policy.
func New(cfg Config) (*Policy, error) {
	tbl := cfg.Table
	if tbl == nil {
		tbl = DefaultTable()
	}
	es := append([]Entry(nil), tbl...)
	for i := range es {
		if es[i].Last == 0 {
			es[i].Last = es[i].First
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].First < es[j].First })
	p := &Policy{entries: es, efer: cfg.EFERMask, x2apic: cfg.X2APIC}
	if p.efer == 0 {
		p.efer = arch.EFER_SCE | arch.EFER_LME | arch.EFER_NXE
	}
	for i := range es {
		e := &es[i]
		if e.Last < e.First {
			return nil, fmt.Errorf("msr: entry %s has last %#x below first %#x", e.Name, e.Last, e.First)
		}
		if i > 0 && es[i-1].Last >= e.First {
			return nil, fmt.Errorf("msr: entries %s and %s overlap", es[i-1].Name, e.Name)
		}
		if e.Action > ActionAPICBase {
			return nil, fmt.Errorf("msr: entry %s has unknown action %d", e.Name, e.Action)
		}
		if e.First == MSR_VM_CR && e.Action == ActionFixed && cfg.Nested {
			e.Value = 0
		}
		if e.Action == ActionEmulate || e.Action == ActionPassthrough {
			if e.Action == ActionEmulate && e.Value&^e.WriteMask != 0 {
				return nil, fmt.Errorf("msr: entry %s starts at %#x, outside its write mask %#x", e.Name, e.Value, e.WriteMask)
			}
			e.slot = p.slots
			n := int(e.Last-e.First) + 1
			p.slots += n
			for k := 0; k < n; k++ {
				p.initVals = append(p.initVals, e.Value)
			}
		}
	}
	return p, nil
}

// State holds one vCPU's emulated MSR values. It is owned by the vCPU's
// goroutine.
type State struct {
	vals []uint64
}

// NewState returns a vCPU's MSR values in their reset state.
func (p *Policy) NewState() *State {
	return &State{vals: append([]uint64(nil), p.initVals...)}
}

// Lookup returns the table entry covering index, or nil (#GP).
func (p *Policy) Lookup(index uint32) *Entry {
	es := p.entries
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].First <= index {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if i := lo - 1; i >= 0 && index <= es[i].Last {
		return &es[i]
	}
	return nil
}

// Outcome tells the core how an access ended.
type Outcome uint8

// Outcomes.
const (
	// Done: the access is complete (for reads, the value is valid).
	Done Outcome = iota
	// Fault: inject #GP(0).
	Fault
	// UseEFER: the MSR is EFER; the core reads Sregs.EFER or applies
	// CheckEFER and writes Sregs.EFER.
	UseEFER
	// UseAPICBase: the MSR is IA32_APIC_BASE; the core reads or applies
	// CheckAPICBase to Sregs.APICBase.
	UseAPICBase
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Fault:
		return "#GP"
	case UseEFER:
		return "efer"
	case UseAPICBase:
		return "apic-base"
	}
	return "outcome?"
}

// Read answers RDMSR of index for the vCPU with state st; tsc is the
// guest's TSC, used only for ActionTSC. It never allocates.
func (p *Policy) Read(st *State, index uint32, tsc uint64) (uint64, Outcome) {
	e := p.Lookup(index)
	if e == nil {
		return 0, Fault
	}
	switch e.Action {
	case ActionPassthrough, ActionEmulate:
		if k := e.slot + int(index-e.First); k < len(st.vals) {
			return st.vals[k], Done
		}
		return 0, Fault
	case ActionFixed, ActionReadOnly:
		return e.Value, Done
	case ActionTSC:
		return tsc, Done
	case ActionEFER:
		return 0, UseEFER
	case ActionAPICBase:
		return 0, UseAPICBase
	}
	return 0, Fault
}

// Write answers WRMSR of v to index for the vCPU with state st. It never
// allocates.
func (p *Policy) Write(st *State, index uint32, v uint64) Outcome {
	e := p.Lookup(index)
	if e == nil {
		return Fault
	}
	switch e.Action {
	case ActionEmulate:
		if v&^e.WriteMask != 0 {
			return Fault
		}
		fallthrough
	case ActionPassthrough:
		if k := e.slot + int(index-e.First); k < len(st.vals) {
			st.vals[k] = v
			return Done
		}
		return Fault
	case ActionFixed, ActionTSC:
		return Done
	case ActionEFER:
		return UseEFER
	case ActionAPICBase:
		return UseAPICBase
	}
	return Fault
}

// CheckEFER validates a guest write of v to EFER whose current value is
// old, with the guest's CR0 (AMD64 APM Vol. 2, §3.1.7; Intel SDM Vol. 3A,
// §10.8.5 "Initializing IA-32e Mode"). It returns the value to store, or
// false for #GP: reserved or unexposed bits set, or LME changed while
// paging is on. LMA is read-only and keeps its old value.
func (p *Policy) CheckEFER(old, v, cr0 uint64) (uint64, bool) {
	if v&^(p.efer|arch.EFER_LMA) != 0 {
		return 0, false
	}
	if cr0&arch.CR0_PG != 0 && (old^v)&arch.EFER_LME != 0 {
		return 0, false
	}
	return v&^arch.EFER_LMA | old&arch.EFER_LMA, true
}

// APIC_BASE_ADDR_MASK covers the APIC base address field, bits 12 to 51
// (the architectural maximum physical address width).
const APIC_BASE_ADDR_MASK = 0x000ffffffffff000

// CheckAPICBase validates a guest write of v to IA32_APIC_BASE whose
// current value is old (Intel SDM Vol. 3A, §11.4.4 and §11.12.5 "x2APIC
// State Transitions"). It returns the value to store, or false for #GP:
// reserved bits, EXTD without x2APIC, or an invalid mode transition
// (enabling EXTD with EN clear, leaving x2APIC mode for xAPIC mode
// directly). BSP is read-only.
func (p *Policy) CheckAPICBase(old, v uint64) (uint64, bool) {
	allowed := uint64(APIC_BASE_ADDR_MASK | arch.APIC_BASE_EN | arch.APIC_BASE_BSP)
	if p.x2apic {
		allowed |= arch.APIC_BASE_EXTD
	}
	if v&^allowed != 0 {
		return 0, false
	}
	en, extd := v&arch.APIC_BASE_EN != 0, v&arch.APIC_BASE_EXTD != 0
	if extd && !en {
		return 0, false
	}
	if old&arch.APIC_BASE_EXTD != 0 && en && !extd {
		return 0, false
	}
	return v&^arch.APIC_BASE_BSP | old&arch.APIC_BASE_BSP, true
}

// Passthrough returns the MSR numbers whose action is ActionPassthrough, for
// the backend's MSR permission map / bitmap.
func (p *Policy) Passthrough() []uint32 {
	var out []uint32
	for _, e := range p.entries {
		if e.Action == ActionPassthrough {
			for i := e.First; ; i++ {
				out = append(out, i)
				if i == e.Last {
					break
				}
			}
		}
	}
	return out
}

// Entries returns a copy of the table, sorted by number.
func (p *Policy) Entries() []Entry { return append([]Entry(nil), p.entries...) }

// Render formats a table as the text block shown in the package
// documentation: one row per entry with its numbers, name, action, value or
// write mask, and reason.
func Render(tbl []Entry) string {
	es := append([]Entry(nil), tbl...)
	sort.Slice(es, func(i, j int) bool { return es[i].First < es[j].First })
	var b strings.Builder
	row := func(num, name, action, val, why string) {
		line := fmt.Sprintf("%-21s  %-37s  %-11s  %-20s  %s", num, name, action, val, why)
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	row("MSR", "Name", "Action", "Value / mask", "Why")
	for _, e := range es {
		num := fmt.Sprintf("%#x", e.First)
		if e.Last > e.First {
			num += fmt.Sprintf("-%#x", e.Last)
		}
		val := ""
		switch e.Action {
		case ActionFixed, ActionReadOnly, ActionPassthrough:
			val = fmt.Sprintf("%#x", e.Value)
		case ActionEmulate:
			val = fmt.Sprintf("%#x/%#x", e.Value, e.WriteMask)
			if e.WriteMask == ^uint64(0) {
				val = fmt.Sprintf("%#x/all", e.Value)
			}
		}
		row(num, e.Name, e.Action.String(), val, e.Why)
	}
	row("everything else", "", ActionGP.String(), "", "")
	return b.String()
}

package vmx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

var le = binary.LittleEndian

// Basic exit reasons (SDM Vol. 3C, Appendix C "VMX Basic Exit Reasons").
// VM_EXIT_REASON holds one in bits 15:0, with bit 31 set when VM entry
// failed.
const (
	EXIT_REASON_EXCEPTION_NMI       = 0
	EXIT_REASON_EXTERNAL_INTERRUPT  = 1
	EXIT_REASON_TRIPLE_FAULT        = 2
	EXIT_REASON_INIT_SIGNAL         = 3
	EXIT_REASON_SIPI_SIGNAL         = 4
	EXIT_REASON_INTERRUPT_WINDOW    = 7
	EXIT_REASON_NMI_WINDOW          = 8
	EXIT_REASON_TASK_SWITCH         = 9
	EXIT_REASON_CPUID               = 10
	EXIT_REASON_GETSEC              = 11
	EXIT_REASON_HLT                 = 12
	EXIT_REASON_INVD                = 13
	EXIT_REASON_INVLPG              = 14
	EXIT_REASON_RDPMC               = 15
	EXIT_REASON_RDTSC               = 16
	EXIT_REASON_VMCALL              = 18
	EXIT_REASON_VMCLEAR             = 19
	EXIT_REASON_VMLAUNCH            = 20
	EXIT_REASON_VMPTRLD             = 21
	EXIT_REASON_VMPTRST             = 22
	EXIT_REASON_VMREAD              = 23
	EXIT_REASON_VMRESUME            = 24
	EXIT_REASON_VMWRITE             = 25
	EXIT_REASON_VMOFF               = 26
	EXIT_REASON_VMON                = 27
	EXIT_REASON_CR_ACCESS           = 28
	EXIT_REASON_DR_ACCESS           = 29
	EXIT_REASON_IO_INSTRUCTION      = 30
	EXIT_REASON_MSR_READ            = 31
	EXIT_REASON_MSR_WRITE           = 32
	EXIT_REASON_INVALID_STATE       = 33
	EXIT_REASON_MSR_LOAD_FAIL       = 34
	EXIT_REASON_MWAIT_INSTRUCTION   = 36
	EXIT_REASON_MONITOR_TRAP_FLAG   = 37
	EXIT_REASON_MONITOR_INSTRUCTION = 39
	EXIT_REASON_PAUSE_INSTRUCTION   = 40
	EXIT_REASON_MCE_DURING_VMENTRY  = 41
	EXIT_REASON_EPT_VIOLATION       = 48
	EXIT_REASON_EPT_MISCONFIG       = 49
	EXIT_REASON_INVEPT              = 50
	EXIT_REASON_PREEMPTION_TIMER    = 52
	EXIT_REASON_INVVPID             = 53
	EXIT_REASON_XSETBV              = 55
	EXIT_REASON_VMFUNC              = 59

	// VMX_EXIT_REASONS_FAILED_VMENTRY is bit 31 of VM_EXIT_REASON.
	VMX_EXIT_REASONS_FAILED_VMENTRY = 1 << 31
	EXIT_REASON_BASIC_MASK          = 0xffff
)

// Exit qualification for I/O instructions (SDM Vol. 3C, 28.2.1, Table
// 28-5).
const (
	IO_SIZE_MASK  = 7 // size - 1: 0, 1 or 3
	IO_IN         = 1 << 3
	IO_STRING     = 1 << 4
	IO_REP        = 1 << 5
	IO_IMMEDIATE  = 1 << 6
	IO_PORT_SHIFT = 16
	IO_PORT_MASK  = 0xffff
)

// VM-exit instruction information for INS and OUTS (SDM Vol. 3C, 28.2.5,
// Table 28-8): address size in bits 9:7 (0: 16, 1: 32, 2: 64 bits),
// segment register in 17:15 (OUTS only).
const (
	INSN_INFO_ADDR_SIZE_SHIFT = 7
	INSN_INFO_SEG_SHIFT       = 15
)

// Exit qualification for control-register accesses (SDM Vol. 3C, 28.2.1,
// Table 28-3).
const (
	CR_ACCESS_CR_MASK     = 0xf
	CR_ACCESS_TYPE_SHIFT  = 4
	CR_ACCESS_TYPE_MASK   = 3
	CR_ACCESS_MOV_TO_CR   = 0
	CR_ACCESS_MOV_FROM_CR = 1
	CR_ACCESS_CLTS        = 2
	CR_ACCESS_LMSW        = 3
	CR_ACCESS_LMSW_MEM    = 1 << 6
	CR_ACCESS_GPR_SHIFT   = 8
	CR_ACCESS_GPR_MASK    = 0xf
	CR_ACCESS_LMSW_SHIFT  = 16
)

// Exit qualification for EPT violations (SDM Vol. 3C, 28.2.1, Table
// 28-7).
const (
	EPT_VIOLATION_READ        = 1 << 0
	EPT_VIOLATION_WRITE       = 1 << 1
	EPT_VIOLATION_FETCH       = 1 << 2
	EPT_VIOLATION_GVA_VALID   = 1 << 7
	EPT_VIOLATION_GVA_FINAL   = 1 << 8 // with GVA_VALID: the access to the translated address
	EPT_VIOLATION_NMI_UNBLOCK = 1 << 12
)

// ErrEventQueued is returned by Inject while an event waits for delivery.
var ErrEventQueued = errors.New("vmx: an event is already queued for injection")

// vcpu is one virtual processor: its VMCS (through the shadow in hw), the
// guest registers VMX does not switch, and injection state.
type vcpu struct {
	vm      *vm
	id      int
	vmcsPA  addr.HPA
	msrArea addr.HPA
	// hw is shared with run_amd64.s.
	hw hwState
	// injecting says VM_ENTRY_INTR_INFO holds an event not yet
	// delivered.
	injecting bool
	// flushAlways is set when the vCPU shares its VPID with others.
	flushAlways bool
	// cr0Must1/0 and cr4Must1/0 are the bits VMX fixes in the guest's
	// CR0 and CR4; the read shadows show the guest its own values.
	cr0Must1, cr0Must0, cr4Must1, cr4Must0 uint64
	// cr8 is the guest's task priority (CR8 accesses exit).
	cr8 uint64
	// apicBase is the guest's IA32_APIC_BASE.
	apicBase uint64
	// window says the core asked for an interrupt window.
	window bool
	// preemption is the VMX-preemption timer value of one slice (0: the
	// timer is off).
	preemption uint64
	// exits counts exits for the CPU-move test.
	exits uint64
}

// GetRegs implements hv.BackendVCPU.
func (c *vcpu) GetRegs(r *arch.Regs) error {
	v := &c.hw.v
	r.GPR = c.hw.gprs
	r.GPR[arch.RSP] = v.read(GUEST_RSP)
	r.RIP = v.read(GUEST_RIP)
	r.RFLAGS = v.read(GUEST_RFLAGS)
	return nil
}

// SetRegs implements hv.BackendVCPU.
func (c *vcpu) SetRegs(r *arch.Regs) error {
	v := &c.hw.v
	c.hw.gprs = r.GPR
	c.hw.gprs[arch.RSP] = 0
	v.write(GUEST_RSP, r.GPR[arch.RSP])
	if r.RIP != v.read(GUEST_RIP) {
		c.completed()
	}
	v.write(GUEST_RIP, r.RIP)
	v.write(GUEST_RFLAGS, r.RFLAGS|arch.RFLAGS_FIXED)
	return nil
}

// completed drops the interrupt shadow (blocking by STI or MOV SS) once
// the instruction it covered has completed.
func (c *vcpu) completed() {
	v := &c.hw.v
	if st := v.read(GUEST_INTERRUPTIBILITY_INFO); st&(GUEST_INTR_STATE_STI|GUEST_INTR_STATE_MOV_SS) != 0 {
		v.write(GUEST_INTERRUPTIBILITY_INFO, st&^(GUEST_INTR_STATE_STI|GUEST_INTR_STATE_MOV_SS))
	}
}

// segs maps arch.Sregs fields to their VMCS fields.
func segs(s *arch.Sregs) [8]struct {
	seg *arch.Segment
	f   segFields
} {
	return [8]struct {
		seg *arch.Segment
		f   segFields
	}{{&s.ES, segES}, {&s.CS, segCS}, {&s.SS, segSS}, {&s.DS, segDS}, {&s.FS, segFS}, {&s.GS, segGS}, {&s.LDTR, segLDTR}, {&s.TR, segTR}}
}

// guestCR0 and guestCR4 combine the guest's real control registers with
// the read shadows for the bits VMX owns: what the guest sees.
func (c *vcpu) guestCR0() uint64 {
	v := &c.hw.v
	mask := v.read(CR0_GUEST_HOST_MASK)
	return v.read(GUEST_CR0)&^mask | v.read(CR0_READ_SHADOW)&mask
}

func (c *vcpu) guestCR4() uint64 {
	v := &c.hw.v
	mask := v.read(CR4_GUEST_HOST_MASK)
	return v.read(GUEST_CR4)&^mask | v.read(CR4_READ_SHADOW)&mask
}

// GetSregs implements hv.BackendVCPU.
func (c *vcpu) GetSregs(s *arch.Sregs) error {
	v := &c.hw.v
	for _, f := range segs(s) {
		*f.seg = v.segment(f.f)
	}
	s.GDTR = arch.DescriptorTable{Base: v.read(GUEST_GDTR_BASE), Limit: uint16(v.read(GUEST_GDTR_LIMIT))}
	s.IDTR = arch.DescriptorTable{Base: v.read(GUEST_IDTR_BASE), Limit: uint16(v.read(GUEST_IDTR_LIMIT))}
	s.CR0, s.CR2, s.CR3, s.CR4 = c.guestCR0(), c.hw.cr2, v.read(GUEST_CR3), c.guestCR4()
	s.CR8 = c.cr8
	s.EFER = v.read(GUEST_IA32_EFER)
	s.APICBase = c.apicBase
	s.PDPTEValid = c.paePaging()
	if s.PDPTEValid {
		s.PDPTE = [4]uint64{v.read(GUEST_PDPTE0), v.read(GUEST_PDPTE1), v.read(GUEST_PDPTE2), v.read(GUEST_PDPTE3)}
	} else {
		s.PDPTE = [4]uint64{}
	}
	return nil
}

// paePaging reports whether the guest uses PAE paging outside long mode,
// where the processor holds the four PDPTEs in the VMCS.
func (c *vcpu) paePaging() bool {
	v := &c.hw.v
	return v.read(GUEST_CR0)&arch.CR0_PG != 0 && v.read(GUEST_CR4)&arch.CR4_PAE != 0 && v.read(GUEST_IA32_EFER)&arch.EFER_LMA == 0
}

// SetSregs implements hv.BackendVCPU.
func (c *vcpu) SetSregs(s *arch.Sregs) error {
	v := &c.hw.v
	for _, f := range segs(s) {
		seg := *f.seg
		if f.seg == &s.TR {
			seg.Unusable = false // TR must be usable (SDM Vol. 3C, 27.3.1.2)
		}
		v.setSegment(f.f, seg)
	}
	if s.CR0&arch.CR0_PE == 0 {
		// Real mode: CPL 0 (unrestricted guest requires SS.DPL 0).
		v.andNot(GUEST_SS_AR_BYTES, 3<<AR_DPL_SHIFT)
	}
	v.write(GUEST_GDTR_BASE, s.GDTR.Base)
	v.write(GUEST_GDTR_LIMIT, uint64(s.GDTR.Limit))
	v.write(GUEST_IDTR_BASE, s.IDTR.Base)
	v.write(GUEST_IDTR_LIMIT, uint64(s.IDTR.Limit))
	c.hw.cr2 = s.CR2
	v.write(GUEST_CR3, s.CR3)
	c.cr8 = s.CR8 & 0xf
	c.apicBase = s.APICBase
	c.setCR0(s.CR0, s.EFER)
	c.setCR4(s.CR4)
	return c.loadPDPTEs()
}

// setCR0 loads the guest's CR0 and EFER: the hardware CR0 gets the
// VMX-fixed bits, the read shadow the guest's value; EFER.LMA and the
// "IA-32e mode guest" entry control follow CR0.PG and EFER.LME.
func (c *vcpu) setCR0(cr0, efer uint64) {
	v := &c.hw.v
	v.write(CR0_READ_SHADOW, cr0)
	v.write(GUEST_CR0, (cr0|c.cr0Must1)&^c.cr0Must0)
	if efer&arch.EFER_LME != 0 && cr0&arch.CR0_PG != 0 {
		efer |= arch.EFER_LMA
	} else {
		efer &^= arch.EFER_LMA
	}
	v.write(GUEST_IA32_EFER, efer)
	c.syncIA32eMode()
}

// syncIA32eMode makes the "IA-32e mode guest" entry control match
// EFER.LMA (SDM Vol. 3C, 27.3.1.1).
func (c *vcpu) syncIA32eMode() {
	v := &c.hw.v
	ctl := v.read(VM_ENTRY_CONTROLS)
	want := ctl &^ VM_ENTRY_IA32E_MODE
	if v.read(GUEST_IA32_EFER)&arch.EFER_LMA != 0 {
		want |= VM_ENTRY_IA32E_MODE
	}
	if want != ctl {
		v.write(VM_ENTRY_CONTROLS, want)
	}
}

// setCR4 loads the guest's CR4 like setCR0.
func (c *vcpu) setCR4(cr4 uint64) {
	v := &c.hw.v
	v.write(CR4_READ_SHADOW, cr4)
	v.write(GUEST_CR4, (cr4|c.cr4Must1)&^c.cr4Must0)
}

// PAE page-directory-pointer table entries (SDM Vol. 3A, 4.4.1): CR3
// bits 31:5 locate four 8-byte entries.
const PAE_PDPT_MASK = 0xffffffe0

// loadPDPTEs loads the four PDPTEs into the VMCS when the guest uses PAE
// paging, as MOV to CR0/CR3/CR4 does on hardware (with EPT, VM entry takes
// them from the VMCS: SDM Vol. 3C, 27.3.2.4).
func (c *vcpu) loadPDPTEs() error {
	if !c.paePaging() {
		return nil
	}
	var buf [32]byte
	gpa := c.hw.v.read(GUEST_CR3) & PAE_PDPT_MASK
	if err := c.vm.readGuest(addr.GPA(gpa), buf[:]); err != nil {
		return fmt.Errorf("vmx: %s: loading the PAE PDPTEs at %#x: %w", c, gpa, err)
	}
	for i, f := range [4]uint32{GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2, GUEST_PDPTE3} {
		c.hw.v.write(f, le.Uint64(buf[i*8:]))
	}
	return nil
}

// readGuest reads guest RAM through the regions MapMemory mapped.
func (m *vm) readGuest(gpa addr.GPA, p []byte) error {
	for _, r := range m.regions {
		if gpa >= r.GPA && uint64(gpa-r.GPA)+uint64(len(p)) <= r.Size {
			b, err := m.b.frames.Host().Slice(r.HPA+addr.HPA(gpa-r.GPA), uint64(len(p)))
			if err != nil {
				return err
			}
			copy(p, b)
			return nil
		}
	}
	return fmt.Errorf("%s is not guest RAM", gpa)
}

// Inject implements hv.BackendVCPU.
func (c *vcpu) Inject(ev arch.Event) error {
	if c.injecting {
		return ErrEventQueued
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	v := &c.hw.v
	info := uint64(ev.Vector) | INTR_INFO_VALID
	switch ev.Type {
	case arch.EventExternal:
		info |= INTR_TYPE_EXT_INTR
	case arch.EventNMI:
		info |= INTR_TYPE_NMI
	case arch.EventException:
		info |= INTR_TYPE_HARD_EXCEPTION
	case arch.EventSoftInt:
		info |= INTR_TYPE_SOFT_INTR
	case arch.EventSoftException:
		info |= INTR_TYPE_SOFT_EXCEPTION
	}
	// Real mode pushes no error codes; VM entry refuses one there (SDM
	// Vol. 3C, 27.2.1.3).
	if ev.HasErrorCode && c.guestCR0()&arch.CR0_PE != 0 {
		info |= INTR_INFO_DELIVER_CODE
		v.write(VM_ENTRY_EXCEPTION_ERROR_CODE, uint64(ev.ErrorCode))
	}
	if ev.Type == arch.EventSoftInt || ev.Type == arch.EventSoftException {
		v.write(VM_ENTRY_INSTRUCTION_LEN, uint64(ev.InsnLen))
	}
	if ev.Type == arch.EventException && ev.Vector == arch.VECTOR_PF {
		c.hw.cr2 = ev.FaultAddr
	}
	v.write(VM_ENTRY_INTR_INFO_FIELD, info)
	c.injecting = true
	return nil
}

// RequestInterruptWindow implements hv.BackendVCPU: interrupt-window
// exiting makes the processor exit as soon as the guest can take an
// external interrupt, NMI-window exiting (with virtual NMIs) when its NMI
// blocking ends (SDM Vol. 3C, 26.7.5 and 26.7.6).
func (c *vcpu) RequestInterruptWindow(on bool) {
	c.window = on
	c.updateWindow()
}

// updateWindow sets the window-exiting controls from the request and the
// guest's NMI blocking.
func (c *vcpu) updateWindow() {
	v := &c.hw.v
	ctl := v.read(CPU_BASED_VM_EXEC_CONTROL)
	want := ctl &^ (CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING)
	if c.window {
		want |= CPU_BASED_INTR_WINDOW_EXITING
		if c.vm.b.caps.VirtualNMIs && v.read(GUEST_INTERRUPTIBILITY_INFO)&GUEST_INTR_STATE_NMI != 0 {
			want |= CPU_BASED_NMI_WINDOW_EXITING
		}
	}
	if want != ctl {
		v.write(CPU_BASED_VM_EXEC_CONTROL, want)
	}
}

// Kick implements hv.BackendVCPU.
func (c *vcpu) Kick() {
	atomic.StoreUint32(&c.hw.kicked, 1)
	if cpu := atomic.LoadUint32(&c.hw.running); cpu != 0 && kickCPU != nil {
		kickCPU(cpu - 1)
	}
}

// kickCPU sends the processor with the given APIC ID an interrupt, which
// makes a guest running there exit (external-interrupt exiting). Set by
// the kernel.
var kickCPU func(apicID uint32)

// decode fills e from the shadow after a VM exit. It reports false for
// exits the backend handled itself (the caller enters the guest again).
func (c *vcpu) decode(e *arch.Exit) bool {
	v := &c.hw.v
	reason := v.read(VM_EXIT_REASON)
	qual := v.read(EXIT_QUALIFICATION)
	rip := v.read(GUEST_RIP)
	ss := uint32(v.read(GUEST_SS_AR_BYTES))
	*e = arch.Exit{Code: reason, Info: qual, RIP: rip, CPL: uint8(ss>>AR_DPL_SHIFT) & 3}
	intr := v.read(GUEST_INTERRUPTIBILITY_INFO)
	e.Intr = arch.IntrState{
		IF:           v.read(GUEST_RFLAGS)&arch.RFLAGS_IF != 0,
		Shadow:       intr&(GUEST_INTR_STATE_STI|GUEST_INTR_STATE_MOV_SS) != 0,
		NMIBlocked:   intr&GUEST_INTR_STATE_NMI != 0,
		EventPending: c.injecting,
	}
	next := rip + v.read(VM_EXIT_INSTRUCTION_LEN)
	// A VM exit saves IA32_EFER.LMA in "IA-32e mode guest"; keep the
	// entry control in step in case the processor did not.
	c.syncIA32eMode()
	if reason&VMX_EXIT_REASONS_FAILED_VMENTRY != 0 {
		switch reason & EXIT_REASON_BASIC_MASK {
		case EXIT_REASON_INVALID_STATE:
			e.Reason = arch.ExitInvalidGuestState
			e.Message = c.checkGuest(qual)
		case EXIT_REASON_MSR_LOAD_FAIL:
			e.Reason = arch.ExitEntryFailure
			e.Message = "VM entry failed loading an MSR from the VM-entry MSR-load area (the exit qualification, Info, is its 1-based index)"
		case EXIT_REASON_MCE_DURING_VMENTRY:
			e.Reason = arch.ExitEntryFailure
			e.Message = "a machine-check event occurred during VM entry"
		default:
			e.Reason = arch.ExitEntryFailure
			e.Message = "VM entry failed with an unknown basic exit reason"
		}
		return true
	}

	switch reason & EXIT_REASON_BASIC_MASK {
	case EXIT_REASON_CPUID:
		e.Reason, e.NextRIP = arch.ExitCPUID, next
		e.CPUID = arch.CPUIDExit{Leaf: uint32(c.hw.gprs[arch.RAX]), Subleaf: uint32(c.hw.gprs[arch.RCX])}
	case EXIT_REASON_HLT:
		e.Reason, e.NextRIP = arch.ExitHLT, next
	case EXIT_REASON_VMCALL:
		e.Reason, e.NextRIP = arch.ExitHypercall, next
	case EXIT_REASON_IO_INSTRUCTION:
		e.Reason, e.NextRIP = arch.ExitIO, next
		e.IO = c.decodeIO(qual, v.read(VMX_INSTRUCTION_INFO))
	case EXIT_REASON_MSR_READ:
		e.Reason, e.NextRIP = arch.ExitMSRRead, next
		e.MSR.Index = uint32(c.hw.gprs[arch.RCX])
	case EXIT_REASON_MSR_WRITE:
		e.Reason, e.NextRIP = arch.ExitMSRWrite, next
		e.MSR.Index = uint32(c.hw.gprs[arch.RCX])
		e.MSR.Value = c.hw.gprs[arch.RAX]&0xffffffff | c.hw.gprs[arch.RDX]<<32
	case EXIT_REASON_EPT_VIOLATION:
		e.Reason = arch.ExitPageFault
		e.Fault = arch.PageFaultExit{GPA: addr.GPA(v.read(GUEST_PHYSICAL_ADDRESS)), Access: eptAccess(qual)}
		if qual&EPT_VIOLATION_NMI_UNBLOCK != 0 && c.vm.b.caps.VirtualNMIs && v.read(IDT_VECTORING_INFO_FIELD)&INTR_INFO_VALID == 0 {
			// The fault hit an IRET that had unblocked NMIs; it runs
			// again, so NMIs are blocked until it completes (SDM Vol.
			// 3C, 28.2.3).
			v.write(GUEST_INTERRUPTIBILITY_INFO, v.read(GUEST_INTERRUPTIBILITY_INFO)|GUEST_INTR_STATE_NMI)
			e.Intr.NMIBlocked = true
		}
		if qual&EPT_VIOLATION_GVA_VALID != 0 {
			e.Fault.GVAValid = true
			e.Fault.GVA = addr.GVA(v.read(GUEST_LINEAR_ADDRESS))
			e.Fault.Walk = qual&EPT_VIOLATION_GVA_FINAL == 0
		}
	case EXIT_REASON_EPT_MISCONFIG:
		e.Reason = arch.ExitBackendSpecific
		e.Message = "EPT misconfiguration: Keel's extended page table entry for the guest-physical address is invalid"
		e.Info = v.read(GUEST_PHYSICAL_ADDRESS)
	case EXIT_REASON_TRIPLE_FAULT:
		e.Reason = arch.ExitShutdown
	case EXIT_REASON_EXTERNAL_INTERRUPT:
		e.Reason = arch.ExitInterrupt
	case EXIT_REASON_PREEMPTION_TIMER:
		// The slice is over: the next one starts full.
		v.write(VMX_PREEMPTION_TIMER_VALUE, c.preemption)
		e.Reason = arch.ExitInterrupt
	case EXIT_REASON_EXCEPTION_NMI:
		if v.read(VM_EXIT_INTR_INFO)&INTR_INFO_TYPE_MASK == INTR_TYPE_NMI {
			e.Reason = arch.ExitNMI
			break
		}
		e.Reason = arch.ExitBackendSpecific
		e.Message = "unexpected guest exception exit (the exception bitmap is empty)"
		e.Info = v.read(VM_EXIT_INTR_INFO)
	case EXIT_REASON_INTERRUPT_WINDOW, EXIT_REASON_NMI_WINDOW:
		c.RequestInterruptWindow(false)
		e.Reason = arch.ExitInterruptWindow
	case EXIT_REASON_INIT_SIGNAL:
		e.Reason = arch.ExitInit
	case EXIT_REASON_SIPI_SIGNAL:
		e.Reason = arch.ExitSIPI
		e.SIPIVector = uint8(qual)
	case EXIT_REASON_CR_ACCESS:
		return c.crAccess(e, qual, next)
	case EXIT_REASON_INVD:
		// Nothing to write back: the guest's caches are the host's.
		c.skip(next)
		return false
	case EXIT_REASON_VMCLEAR, EXIT_REASON_VMLAUNCH, EXIT_REASON_VMPTRLD, EXIT_REASON_VMPTRST,
		EXIT_REASON_VMREAD, EXIT_REASON_VMRESUME, EXIT_REASON_VMWRITE, EXIT_REASON_VMOFF, EXIT_REASON_VMON,
		EXIT_REASON_INVEPT, EXIT_REASON_INVVPID, EXIT_REASON_VMFUNC, EXIT_REASON_GETSEC,
		EXIT_REASON_XSETBV, EXIT_REASON_MWAIT_INSTRUCTION, EXIT_REASON_MONITOR_INSTRUCTION:
		// The virtualization instructions (and those CPUID hides) are
		// refused: #UD.
		c.Inject(arch.Event{Type: arch.EventException, Vector: arch.VECTOR_UD})
		return false
	default:
		e.Reason = arch.ExitBackendSpecific
		e.Message = "unexpected VMX exit reason"
	}
	return true
}

// skip completes an instruction the backend handled itself.
func (c *vcpu) skip(next uint64) {
	c.completed()
	c.hw.v.write(GUEST_RIP, next)
}

// decodeIO unpacks the I/O exit qualification and, for INS/OUTS, the
// instruction information.
func (c *vcpu) decodeIO(qual, info uint64) arch.IOExit {
	io := arch.IOExit{
		Port:   uint16(qual >> IO_PORT_SHIFT & IO_PORT_MASK),
		Size:   uint8(qual&IO_SIZE_MASK) + 1,
		In:     qual&IO_IN != 0,
		String: qual&IO_STRING != 0,
		Rep:    qual&IO_REP != 0,
		Seg:    arch.SEG_DS,
	}
	if !io.String {
		return io
	}
	if c.vm.b.caps.InsOutsInfo {
		io.AddrSize = 2 << (info >> INSN_INFO_ADDR_SIZE_SHIFT & 7)
		if !io.In {
			io.Seg = arch.SegReg(info >> INSN_INFO_SEG_SHIFT & 7)
		}
		return io
	}
	// Without the instruction information: the default address size of
	// the code segment (an address-size prefix is not seen).
	cs := uint32(c.hw.v.read(GUEST_CS_AR_BYTES))
	switch {
	case c.hw.v.read(GUEST_IA32_EFER)&arch.EFER_LMA != 0 && cs&AR_L != 0:
		io.AddrSize = 8
	case cs&AR_DB != 0:
		io.AddrSize = 4
	default:
		io.AddrSize = 2
	}
	return io
}

// eptAccess turns the EPT-violation qualification into an access kind.
func eptAccess(qual uint64) arch.Access {
	switch {
	case qual&EPT_VIOLATION_FETCH != 0:
		return arch.AccessExec
	case qual&EPT_VIOLATION_WRITE != 0:
		return arch.AccessWrite
	}
	return arch.AccessRead
}

// gpr returns guest register n (RSP from the VMCS).
func (c *vcpu) gpr(n uint64) uint64 {
	if n == arch.RSP {
		return c.hw.v.read(GUEST_RSP)
	}
	return c.hw.gprs[n]
}

// setGPR sets guest register n.
func (c *vcpu) setGPR(n uint64, x uint64) {
	if n == arch.RSP {
		c.hw.v.write(GUEST_RSP, x)
		return
	}
	c.hw.gprs[n] = x
}

// crAccess handles a control-register exit: MOV to CR0 or CR4 that
// changes a bit VMX owns, and MOV to or from CR8. It reports true when it
// filled e with an exit for the core instead.
func (c *vcpu) crAccess(e *arch.Exit, qual, next uint64) bool {
	cr := qual & CR_ACCESS_CR_MASK
	typ := qual >> CR_ACCESS_TYPE_SHIFT & CR_ACCESS_TYPE_MASK
	reg := qual >> CR_ACCESS_GPR_SHIFT & CR_ACCESS_GPR_MASK
	switch {
	case typ == CR_ACCESS_MOV_TO_CR && cr == 0:
		if !c.movToCR0(c.gpr(reg)) {
			return false
		}
	case typ == CR_ACCESS_MOV_TO_CR && cr == 4:
		if !c.movToCR4(c.gpr(reg)) {
			return false
		}
	case typ == CR_ACCESS_MOV_TO_CR && cr == 8:
		x := c.gpr(reg)
		if x>>4 != 0 {
			c.gp()
			return false
		}
		c.cr8 = x
	case typ == CR_ACCESS_MOV_FROM_CR && cr == 8:
		c.setGPR(reg, c.cr8)
	case typ == CR_ACCESS_LMSW:
		// LMSW changes CR0 bits 3:0 only and cannot clear PE.
		src := qual >> CR_ACCESS_LMSW_SHIFT & 0xf
		cr0 := c.guestCR0()
		if !c.movToCR0(cr0&^0xe | src&0xf | cr0&arch.CR0_PE) {
			return false
		}
	case typ == CR_ACCESS_CLTS:
		if !c.movToCR0(c.guestCR0() &^ arch.CR0_TS) {
			return false
		}
	default:
		e.Reason = arch.ExitBackendSpecific
		e.Message = "unexpected control-register access exit"
		return true
	}
	c.skip(next)
	return false
}

// gp queues #GP(0) for the instruction at RIP.
func (c *vcpu) gp() {
	c.Inject(arch.Exception(arch.VECTOR_GP, 0))
}

// movToCR0 performs a guest MOV to CR0 that exited (it changes a bit VMX
// owns): the checks of the MOV (SDM Vol. 2B, "MOV—Move to/from Control
// Registers"; Vol. 3A, 2.5) raise #GP, otherwise CR0, EFER.LMA and the
// PDPTEs are updated. It reports whether the instruction completed.
func (c *vcpu) movToCR0(x uint64) bool {
	v := &c.hw.v
	efer := v.read(GUEST_IA32_EFER)
	old := c.guestCR0()
	cr4 := c.guestCR4()
	switch {
	case x>>32 != 0,
		x&arch.CR0_PG != 0 && x&arch.CR0_PE == 0,
		x&arch.CR0_NW != 0 && x&arch.CR0_CD == 0,
		x&arch.CR0_PG != 0 && old&arch.CR0_PG == 0 && efer&arch.EFER_LME != 0 && cr4&arch.CR4_PAE == 0,
		x&arch.CR0_PG == 0 && efer&arch.EFER_LMA != 0 && uint32(v.read(GUEST_CS_AR_BYTES))&AR_L != 0:
		c.gp()
		return false
	}
	c.setCR0(x, efer)
	if err := c.loadPDPTEs(); err != nil {
		c.gp()
		return false
	}
	return true
}

// movToCR4 performs a guest MOV to CR4 that exited: setting a bit the
// processor does not support in VMX operation, or VMXE (Keel offers no
// nested VMX), raises #GP.
func (c *vcpu) movToCR4(x uint64) bool {
	if x&c.cr4Must0 != 0 || x&arch.CR4_VMXE != 0 {
		c.gp()
		return false
	}
	if c.hw.v.read(GUEST_IA32_EFER)&arch.EFER_LMA != 0 && x&arch.CR4_PAE == 0 {
		c.gp()
		return false
	}
	c.setCR4(x)
	if err := c.loadPDPTEs(); err != nil {
		c.gp()
		return false
	}
	return true
}

// String describes the vCPU for errors.
func (c *vcpu) String() string { return fmt.Sprintf("%s vcpu %d", c.vm.name, c.id) }

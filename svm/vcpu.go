package svm

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

// SVM exit codes (APM Vol. 2, Appendix C "SVM Intercept Exit Codes").
const (
	VMEXIT_EXCP_BASE = 0x40
	VMEXIT_INTR      = 0x60
	VMEXIT_NMI       = 0x61
	VMEXIT_SMI       = 0x62
	VMEXIT_INIT      = 0x63
	VMEXIT_VINTR     = 0x64
	VMEXIT_CPUID     = 0x72
	VMEXIT_INVD      = 0x76
	VMEXIT_HLT       = 0x78
	VMEXIT_INVLPGA   = 0x7a
	VMEXIT_IOIO      = 0x7b
	VMEXIT_MSR       = 0x7c
	VMEXIT_SHUTDOWN  = 0x7f
	VMEXIT_VMRUN     = 0x80
	VMEXIT_VMMCALL   = 0x81
	VMEXIT_VMLOAD    = 0x82
	VMEXIT_VMSAVE    = 0x83
	VMEXIT_STGI      = 0x84
	VMEXIT_CLGI      = 0x85
	VMEXIT_SKINIT    = 0x86
	VMEXIT_XSETBV    = 0x8d
	VMEXIT_NPF       = 0x400
	VMEXIT_INVALID   = ^uint64(0)
)

// IOIO EXITINFO1 fields (APM Vol. 2, 15.10.2, Figure 15-2).
const (
	IOIO_TYPE_IN    = 1 << 0
	IOIO_STR        = 1 << 2
	IOIO_REP        = 1 << 3
	IOIO_SZ8        = 1 << 4
	IOIO_SZ16       = 1 << 5
	IOIO_SZ32       = 1 << 6
	IOIO_A16        = 1 << 7
	IOIO_A32        = 1 << 8
	IOIO_A64        = 1 << 9
	IOIO_SEG_SHIFT  = 10
	IOIO_PORT_SHIFT = 16
)

// NPF EXITINFO1 bits (APM Vol. 2, 15.25.6): the page fault error code, plus
// whether the fault was on the final GPA or on a guest page table.
const (
	NPF_P     = 1 << 0
	NPF_RW    = 1 << 1
	NPF_ID    = 1 << 4
	NPF_FINAL = 1 << 32
	NPF_WALK  = 1 << 33
)

// ErrEventQueued is returned by Inject while an event waits for delivery.
var ErrEventQueued = errors.New("svm: an event is already queued for injection")

// vcpu is one virtual processor: its VMCB, the guest registers VMRUN does
// not switch, and injection state.
type vcpu struct {
	vm     *vm
	id     int
	vmcbPA addr.HPA
	v      vmcb
	// gprs holds the guest's RCX..R15 (RAX and RSP live in the VMCB);
	// run_amd64.s loads and stores it around VMRUN. Index as arch.Regs.
	gprs [16]uint64
	// lastCPU is the APIC ID of the processor that last ran the vCPU
	// (run_amd64.s compares it to flush the TLB after a move).
	lastCPU uint32
	// flush asks for a TLB flush at the next entry (nested page tables
	// changed).
	flush bool
	// injecting says EVENTINJ holds an event not yet delivered.
	injecting bool
	// kicked (1) makes Run return ExitInterrupt (Kick); run_amd64.s
	// reads it after publishing running.
	kicked uint32
	// running is the APIC ID+1 of the CPU in VMRUN, 0 when outside
	// (written by run_amd64.s).
	running uint32
	// lastExitRIP is the RIP at the last exit, to detect that the core
	// completed the instruction (SetRegs moves RIP).
	lastExitRIP uint64
	nrips       bool
	// flushAlways is set when the vCPU shares its ASID with others.
	flushAlways bool
	// fxBuf holds the guest's FXSAVE image (512 bytes, 16-byte aligned
	// inside the buffer): SVM does not switch FPU/SSE state.
	fxBuf [512 + 16]byte
}

// GetRegs implements hv.BackendVCPU.
func (c *vcpu) GetRegs(r *arch.Regs) error {
	r.GPR = c.gprs
	r.GPR[0] = c.v.u64(VMCB_RAX)
	r.GPR[4] = c.v.u64(VMCB_RSP)
	r.RIP = c.v.u64(VMCB_RIP)
	r.RFLAGS = c.v.u64(VMCB_RFLAGS)
	return nil
}

// SetRegs implements hv.BackendVCPU.
func (c *vcpu) SetRegs(r *arch.Regs) error {
	c.gprs = r.GPR
	c.v.setU64(VMCB_RAX, r.GPR[0])
	c.v.setU64(VMCB_RSP, r.GPR[4])
	if r.RIP != c.v.u64(VMCB_RIP) {
		// The core completed the intercepted instruction: the
		// interrupt shadow that covered it is over.
		c.v.setU64(VMCB_INTERRUPT_SHADOW, c.v.u64(VMCB_INTERRUPT_SHADOW)&^1)
	}
	c.v.setU64(VMCB_RIP, r.RIP)
	c.v.setU64(VMCB_RFLAGS, r.RFLAGS|arch.RFLAGS_FIXED)
	return nil
}

// segOffsets maps arch.Sregs fields to VMCB offsets.
func segOffsets(s *arch.Sregs) []struct {
	seg *arch.Segment
	off int
} {
	return []struct {
		seg *arch.Segment
		off int
	}{{&s.ES, VMCB_ES}, {&s.CS, VMCB_CS}, {&s.SS, VMCB_SS}, {&s.DS, VMCB_DS}, {&s.FS, VMCB_FS}, {&s.GS, VMCB_GS}, {&s.LDTR, VMCB_LDTR}, {&s.TR, VMCB_TR}}
}

// GetSregs implements hv.BackendVCPU.
func (c *vcpu) GetSregs(s *arch.Sregs) error {
	for _, f := range segOffsets(s) {
		*f.seg = c.v.segment(f.off)
	}
	// The VMCB's CPL field is authoritative; arch keeps it in SS.DPL.
	s.SS.DPL = c.v.u8(VMCB_CPL) & 3
	s.GDTR, s.IDTR = c.v.table(VMCB_GDTR), c.v.table(VMCB_IDTR)
	s.CR0, s.CR2, s.CR3, s.CR4 = c.v.u64(VMCB_CR0), c.v.u64(VMCB_CR2), c.v.u64(VMCB_CR3), c.v.u64(VMCB_CR4)
	s.CR8 = c.v.u64(VMCB_VINTR) & 0xf
	s.EFER = c.v.u64(VMCB_EFER) &^ EFER_SVME
	s.PDPTEValid = false
	return nil
}

// SetSregs implements hv.BackendVCPU.
func (c *vcpu) SetSregs(s *arch.Sregs) error {
	for _, f := range segOffsets(s) {
		c.v.setSegment(f.off, *f.seg)
	}
	c.v.setU8(VMCB_CPL, s.SS.DPL&3)
	if s.CR0&arch.CR0_PE == 0 {
		c.v.setU8(VMCB_CPL, 0)
	}
	c.v.setTable(VMCB_GDTR, s.GDTR)
	c.v.setTable(VMCB_IDTR, s.IDTR)
	c.v.setU64(VMCB_CR0, s.CR0)
	c.v.setU64(VMCB_CR2, s.CR2)
	c.v.setU64(VMCB_CR3, s.CR3)
	c.v.setU64(VMCB_CR4, s.CR4)
	c.v.setU64(VMCB_VINTR, c.v.u64(VMCB_VINTR)&^0xf|s.CR8&0xf)
	efer := s.EFER | EFER_SVME
	if efer&EFER_LME != 0 && s.CR0&arch.CR0_PG != 0 {
		efer |= EFER_LMA
	} else {
		efer &^= EFER_LMA
	}
	c.v.setU64(VMCB_EFER, efer)
	return nil
}

// Inject implements hv.BackendVCPU.
func (c *vcpu) Inject(ev arch.Event) error {
	if c.injecting {
		return ErrEventQueued
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	c.v.setU64(VMCB_EVENTINJ, eventInj(ev))
	c.injecting = true
	return nil
}

// eventInj encodes ev as EVENTINJ (APM Vol. 2, 15.20).
func eventInj(ev arch.Event) uint64 {
	x := uint64(ev.Vector) | EVENT_VALID
	switch ev.Type {
	case arch.EventNMI:
		x |= EVENT_TYPE_NMI
	case arch.EventException:
		x |= EVENT_TYPE_EXCEPTION
	case arch.EventSoftInt, arch.EventSoftException:
		x |= EVENT_TYPE_SOFT_INT
	}
	if ev.HasErrorCode {
		x |= EVENT_EV | uint64(ev.ErrorCode)<<32
	}
	return x
}

// RequestInterruptWindow implements hv.BackendVCPU: a virtual interrupt
// (V_IRQ, ignoring the TPR) with the VINTR intercept makes the processor
// exit as soon as the guest could take it.
func (c *vcpu) RequestInterruptWindow(on bool) {
	x := c.v.u64(VMCB_VINTR) &^ (V_IRQ | V_IGN_TPR | 0xf<<V_INTR_PRIO_SHIFT)
	m := c.v.u32(VMCB_INTERCEPT_MISC1) &^ INTERCEPT_VINTR
	if on {
		x |= V_IRQ | V_IGN_TPR | 0xf<<V_INTR_PRIO_SHIFT
		m |= INTERCEPT_VINTR
	}
	c.v.setU64(VMCB_VINTR, x)
	c.v.setU32(VMCB_INTERCEPT_MISC1, m)
}

// Kick implements hv.BackendVCPU.
func (c *vcpu) Kick() {
	atomic.StoreUint32(&c.kicked, 1)
	if cpu := atomic.LoadUint32(&c.running); cpu != 0 && kickCPU != nil {
		kickCPU(cpu - 1)
	}
}

// kickCPU sends the processor with the given APIC ID an interrupt, which
// makes a guest running there exit (INTR intercept). Set by the kernel.
var kickCPU func(apicID uint32)

// decode fills e from the VMCB after #VMEXIT. It reports false for exits
// the backend handled itself (the caller enters the guest again).
func (c *vcpu) decode(e *arch.Exit) bool {
	code := c.v.u64(VMCB_EXITCODE)
	info1, info2 := c.v.u64(VMCB_EXITINFO1), c.v.u64(VMCB_EXITINFO2)
	rip := c.v.u64(VMCB_RIP)
	*e = arch.Exit{Code: code, Info: info1, RIP: rip, CPL: c.v.u8(VMCB_CPL) & 3}
	c.lastExitRIP = rip
	rflags := c.v.u64(VMCB_RFLAGS)
	e.Intr = arch.IntrState{
		IF:           rflags&arch.RFLAGS_IF != 0,
		Shadow:       c.v.u64(VMCB_INTERRUPT_SHADOW)&1 != 0,
		EventPending: c.v.u64(VMCB_EVENTINJ)&EVENT_VALID != 0,
	}
	// The next RIP of an intercepted instruction: from NRIP-save (APM
	// Vol. 2, 15.7.1), or 0 without it (QEMU's TCG), and the core
	// decodes the instruction, prefixes and all.
	var nextRIP uint64
	if c.nrips {
		nextRIP = c.v.u64(VMCB_NRIP)
	}

	switch {
	case code == VMEXIT_CPUID:
		e.Reason, e.NextRIP = arch.ExitCPUID, nextRIP
		e.CPUID = arch.CPUIDExit{Leaf: uint32(c.v.u64(VMCB_RAX)), Subleaf: uint32(c.gprs[1])}
	case code == VMEXIT_HLT:
		e.Reason, e.NextRIP = arch.ExitHLT, nextRIP
	case code == VMEXIT_VMMCALL:
		e.Reason, e.NextRIP = arch.ExitHypercall, nextRIP
	case code == VMEXIT_IOIO:
		e.Reason, e.NextRIP = arch.ExitIO, info2
		e.IO = decodeIOIO(info1)
	case code == VMEXIT_MSR:
		e.NextRIP = nextRIP
		e.MSR.Index = uint32(c.gprs[1])
		if info1 == 1 {
			e.Reason = arch.ExitMSRWrite
			e.MSR.Value = c.v.u64(VMCB_RAX)&0xffffffff | c.gprs[2]<<32
		} else {
			e.Reason = arch.ExitMSRRead
		}
	case code == VMEXIT_NPF:
		e.Reason = arch.ExitPageFault
		e.Fault = arch.PageFaultExit{GPA: addr.GPA(info2), Access: npfAccess(info1), Walk: info1&NPF_WALK != 0}
		if n := c.v.u8(VMCB_GUEST_INSN_BYTES) & 0xf; n > 0 {
			e.InsnLen = n
			copy(e.Insn[:], c.v[VMCB_INSN_BYTES_OFFSET:VMCB_INSN_BYTES_OFFSET+int(n)])
		}
	case code == VMEXIT_SHUTDOWN:
		e.Reason = arch.ExitShutdown
	case code == VMEXIT_INTR:
		e.Reason = arch.ExitInterrupt
	case code == VMEXIT_NMI:
		e.Reason = arch.ExitNMI
	case code == VMEXIT_VINTR:
		c.RequestInterruptWindow(false)
		e.Reason = arch.ExitInterruptWindow
	case code == VMEXIT_INIT:
		e.Reason = arch.ExitInit
	case code >= VMEXIT_VMRUN && code <= VMEXIT_SKINIT || code == VMEXIT_INVLPGA || code == VMEXIT_XSETBV:
		// The virtualization instructions are refused: #UD.
		c.Inject(arch.Event{Type: arch.EventException, Vector: 6})
		return false
	case code == VMEXIT_INVALID:
		e.Reason = arch.ExitEntryFailure
		e.Message = c.checkState()
	default:
		e.Reason = arch.ExitBackendSpecific
		e.Message = "unexpected SVM exit code"
	}
	return true
}

// decodeIOIO unpacks IOIO EXITINFO1.
func decodeIOIO(info uint64) arch.IOExit {
	io := arch.IOExit{
		Port:   uint16(info >> IOIO_PORT_SHIFT),
		In:     info&IOIO_TYPE_IN != 0,
		String: info&IOIO_STR != 0,
		Rep:    info&IOIO_REP != 0,
		Seg:    arch.SegReg(info >> IOIO_SEG_SHIFT & 7),
	}
	switch {
	case info&IOIO_SZ8 != 0:
		io.Size = 1
	case info&IOIO_SZ16 != 0:
		io.Size = 2
	case info&IOIO_SZ32 != 0:
		io.Size = 4
	}
	switch {
	case info&IOIO_A16 != 0:
		io.AddrSize = 2
	case info&IOIO_A32 != 0:
		io.AddrSize = 4
	case info&IOIO_A64 != 0:
		io.AddrSize = 8
	}
	return io
}

// npfAccess turns the NPF error code into an access kind.
func npfAccess(info uint64) arch.Access {
	switch {
	case info&NPF_ID != 0:
		return arch.AccessExec
	case info&NPF_RW != 0:
		return arch.AccessWrite
	}
	return arch.AccessRead
}

// checkState names the first guest state consistency check (APM Vol. 2,
// 15.5.1 "VMRUN ... Canonicalization and Consistency Checks") the VMCB
// fails, for VMEXIT_INVALID. The strings are constants: no allocation.
func (c *vcpu) checkState() string {
	efer, cr0, cr4 := c.v.u64(VMCB_EFER), c.v.u64(VMCB_CR0), c.v.u64(VMCB_CR4)
	cs := c.v.segment(VMCB_CS)
	switch {
	case efer&EFER_SVME == 0:
		return "EFER.SVME is clear"
	case cr0&(1<<29) != 0 && cr0&(1<<30) == 0:
		return "CR0.CD is clear while CR0.NW is set"
	case cr0>>32 != 0:
		return "CR0[63:32] are not zero"
	case efer&EFER_LME != 0 && cr0&arch.CR0_PG != 0 && cr4&arch.CR4_PAE == 0:
		return "EFER.LME and CR0.PG are set but CR4.PAE is clear"
	case efer&EFER_LME != 0 && cr0&arch.CR0_PG != 0 && cr0&arch.CR0_PE == 0:
		return "EFER.LME and CR0.PG are set but CR0.PE is clear"
	case efer&EFER_LME != 0 && cr0&arch.CR0_PG != 0 && cr4&arch.CR4_PAE != 0 && cs.L && cs.DB:
		return "CS.L and CS.D are both set in long mode"
	case c.v.u32(VMCB_INTERCEPT_MISC2)&INTERCEPT2_VMRUN == 0:
		return "the VMRUN intercept is clear"
	case c.v.u32(VMCB_GUEST_ASID) == 0:
		return "the guest ASID is 0"
	case c.v.u64(VMCB_DR6)>>32 != 0 || c.v.u64(VMCB_DR7)>>32 != 0:
		return "DR6 or DR7 bits 63:32 are not zero"
	}
	return "VMRUN failed a consistency check not covered by Keel's list (APM Vol. 2, 15.5.1)"
}

// String describes the vCPU for errors.
func (c *vcpu) String() string { return fmt.Sprintf("%s vcpu %d", c.vm.name, c.id) }

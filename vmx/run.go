package vmx

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/keel-hv/keel/hv/arch"
)

// Results of enter.
const (
	ENTER_EXITED         = 0 // the guest ran and exited: the shadow holds the exit
	ENTER_KICKED         = 1 // a kick was pending: the guest did not run
	ENTER_NO_VMXON       = 2 // this processor has no VMXON region (SetupCPUs)
	ENTER_VMXON_FAILED   = 3 // VMXON failed on this processor
	ENTER_VMPTRLD_FAILED = 4 // VMPTRLD (or the first VMCLEAR) failed
	ENTER_VMWRITE_FAILED = 5 // a VMWRITE failed: hwState.failField names the field
	ENTER_LAUNCH_FAILED  = 6 // VMLAUNCH failed: hwState.insnErr holds the error number
	ENTER_INVEPT_FAILED  = 7 // INVEPT or INVVPID failed
)

// MAX_WRITES bounds the fields written in one entry: more than Keel uses.
const MAX_WRITES = 192

// fieldWrite is one VMWRITE for run_amd64.s: encoding and value.
type fieldWrite struct{ enc, val uint64 }

// fieldRead is one VMREAD for run_amd64.s: encoding and shadow slot.
type fieldRead struct{ enc, slot uint64 }

// hwState is everything run_amd64.s reads and writes, in one struct whose
// field offsets it takes from go_asm.h. The vCPU's goroutine owns it
// outside enter; kicked and running are also accessed atomically by Kick.
type hwState struct {
	// v is the VMCS shadow. It must stay the first field.
	v vmcs
	// gprs holds the guest's general registers in arch.Regs order; the
	// RSP slot is unused (GUEST_RSP).
	gprs [16]uint64
	// cr2 is the guest's CR2, which VMX does not switch.
	cr2 uint64
	// vmcsPA is the VMCS's physical address (VMPTRLD, VMCLEAR operand).
	vmcsPA uint64
	// eptDesc and vpidDesc are the INVEPT and INVVPID descriptors.
	eptDesc  [2]uint64
	vpidDesc [2]uint64
	// writes are the fields to write before this entry (from the dirty
	// shadow fields).
	writes  [MAX_WRITES]fieldWrite
	nwrites uint64
	// invept and invvpid are the invalidation types to use when the
	// vCPU arrived from another processor or flush is set (0: none).
	invept  uint32
	invvpid uint32
	// lastCPU is the APIC ID of the processor that ran the vCPU last.
	lastCPU uint32
	// flush asks for INVEPT/INVVPID at the next entry.
	flush uint32
	// running is the APIC ID + 1 of the processor in the guest, 0 when
	// outside; kicked (1) makes the entry return ENTER_KICKED.
	running uint32
	kicked  uint32
	// fresh (1) makes the next entry VMCLEAR the new VMCS first.
	fresh uint32
	// failed is set by vmxEnter when VMLAUNCH fell through.
	failed uint32
	// insnErr is the VM-instruction error after a failed VMX
	// instruction; failField the encoding of a failed VMWRITE.
	insnErr   uint32
	failField uint32
	// fx holds the guest's FXSAVE image (512 bytes, 16-byte aligned
	// inside the buffer).
	fx [512 + 16]byte
}

// fxArea returns the 16-byte aligned FXSAVE area in fx; run_amd64.s
// rounds the same address up.
func (h *hwState) fxArea() []byte {
	off := (16 - fxAlign(&h.fx)) % 16
	return h.fx[off : off+512]
}

// collectWrites turns the dirty shadow fields into the write list.
func (h *hwState) collectWrites() error {
	n := 0
	for w, d := range h.v.dirty {
		for d != 0 {
			b := bits.TrailingZeros64(d)
			d &^= 1 << b
			s := w*64 + b
			if n == MAX_WRITES {
				return errTooManyWrites
			}
			h.writes[n] = fieldWrite{enc: uint64(slotEncoding(s)), val: h.v.val[s]}
			n++
		}
	}
	h.nwrites = uint64(n)
	return nil
}

// clearDirty forgets the dirty marks once the fields are written.
func (h *hwState) clearDirty() {
	clear(h.v.dirty[:])
	h.nwrites = 0
}

// exitReadFields are read into the shadow after every exit: the guest
// state and the exit information (SDM Vol. 3C, 28.3 "Saving Guest State"
// and 25.9 "VM-Exit Information Fields"), and the VM-entry fields a VM
// exit changes (28.2: it clears the valid bit of the VM-entry
// interruption information and records IA32_EFER.LMA in "IA-32e mode
// guest").
var exitReadFields = [...]uint32{
	VM_EXIT_REASON, EXIT_QUALIFICATION, VM_EXIT_INTR_INFO, VM_EXIT_INTR_ERROR_CODE,
	IDT_VECTORING_INFO_FIELD, IDT_VECTORING_ERROR_CODE, VM_EXIT_INSTRUCTION_LEN, VMX_INSTRUCTION_INFO,
	GUEST_PHYSICAL_ADDRESS, GUEST_LINEAR_ADDRESS, VM_ENTRY_INTR_INFO_FIELD, VM_ENTRY_CONTROLS,
	GUEST_RIP, GUEST_RSP, GUEST_RFLAGS, GUEST_INTERRUPTIBILITY_INFO, GUEST_ACTIVITY_STATE,
	GUEST_PENDING_DBG_EXCEPTIONS,
	GUEST_CR0, GUEST_CR3, GUEST_CR4, GUEST_DR7, GUEST_IA32_EFER, GUEST_IA32_PAT, GUEST_IA32_DEBUGCTL,
	GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2, GUEST_PDPTE3,
	GUEST_SYSENTER_CS, GUEST_SYSENTER_ESP, GUEST_SYSENTER_EIP,
	GUEST_GDTR_BASE, GUEST_GDTR_LIMIT, GUEST_IDTR_BASE, GUEST_IDTR_LIMIT,
	GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES,
	GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES,
	GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES,
	GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES,
	GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES,
	GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES,
	GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES,
	GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES,
}

// failReadFields are read after a failed VMLAUNCH, so that the entry
// checks (check.go) see the host state run_amd64.s wrote.
var failReadFields = [...]uint32{
	HOST_CR0, HOST_CR3, HOST_CR4, HOST_FS_BASE, HOST_GS_BASE, HOST_TR_BASE, HOST_GDTR_BASE,
	HOST_IDTR_BASE, HOST_RSP, HOST_RIP, HOST_IA32_EFER, HOST_IA32_PAT,
	HOST_ES_SELECTOR, HOST_CS_SELECTOR, HOST_SS_SELECTOR, HOST_DS_SELECTOR, HOST_FS_SELECTOR,
	HOST_GS_SELECTOR, HOST_TR_SELECTOR,
}

// Read tables for run_amd64.s, built from the field lists.
const (
	NUM_EXIT_READS = len(exitReadFields)
	NUM_FAIL_READS = len(failReadFields)
)

var (
	exitReads [NUM_EXIT_READS]fieldRead
	failReads [NUM_FAIL_READS]fieldRead
)

func init() {
	for i, f := range exitReadFields {
		exitReads[i] = fieldRead{enc: uint64(f), slot: uint64(slot(f))}
	}
	for i, f := range failReadFields {
		failReads[i] = fieldRead{enc: uint64(f), slot: uint64(slot(f))}
	}
}

// enter runs the guest once on the current processor. run_tamago.go sets
// it to the VMLAUNCH path; host tests set a fake that writes exits into
// the shadow.
var enter func(h *hwState) int

var (
	errNoHardware    = errors.New("vmx: guests cannot run here: no VMLAUNCH (host build)")
	errNoVMXON       = errors.New("vmx: this processor has no VMXON region: SetupCPUs did not cover it")
	errTooManyWrites = errors.New("vmx: more VMCS fields changed than one entry writes (MAX_WRITES)")
)

// Run implements hv.BackendVCPU.
func (c *vcpu) Run() (arch.Exit, error) {
	var e arch.Exit
	h := &c.hw
	for {
		if atomic.SwapUint32(&h.kicked, 0) != 0 {
			e = arch.Exit{Reason: arch.ExitInterrupt, RIP: h.v.read(GUEST_RIP)}
			return e, nil
		}
		if enter == nil {
			return e, errNoHardware
		}
		if c.flushAlways {
			h.flush = 1
		}
		if err := h.collectWrites(); err != nil {
			return e, err
		}
		prev := h.lastCPU
		switch st := enter(h); st {
		case ENTER_KICKED:
			continue
		case ENTER_EXITED:
		case ENTER_NO_VMXON:
			return e, errNoVMXON
		case ENTER_VMXON_FAILED:
			return e, errors.New("vmx: VMXON failed on this processor (is another hypervisor in VMX operation, or the VMXON region wrong?)")
		case ENTER_VMPTRLD_FAILED:
			return e, fmt.Errorf("vmx: %s: VMCLEAR/VMPTRLD of the VMCS at %#x failed (VM-instruction error %d: %s)", c, h.vmcsPA, h.insnErr, insnErrorText(h.insnErr))
		case ENTER_VMWRITE_FAILED:
			return e, fmt.Errorf("vmx: %s: VMWRITE of field %#x failed (VM-instruction error %d: %s)", c, h.failField, h.insnErr, insnErrorText(h.insnErr))
		case ENTER_INVEPT_FAILED:
			return e, fmt.Errorf("vmx: %s: INVEPT (type %d) or INVVPID (type %d) failed (VM-instruction error %d: %s)", c, h.invept, h.invvpid, h.insnErr, insnErrorText(h.insnErr))
		case ENTER_LAUNCH_FAILED:
			h.clearDirty()
			h.flush = 0
			e = arch.Exit{Reason: arch.ExitEntryFailure, RIP: h.v.read(GUEST_RIP), Code: uint64(h.insnErr), Message: c.launchFailure(h.insnErr)}
			return e, nil
		default:
			return e, fmt.Errorf("vmx: the entry path returned %d", st)
		}
		h.clearDirty()
		h.flush = 0
		if prev != h.lastCPU && prev != ^uint32(0) {
			c.vm.b.moves.Add(1)
		}
		if n := c.vm.b.moveEvery.Load(); n != 0 {
			if c.exits++; c.exits%n == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		c.afterExit()
		if c.decode(&e) {
			return e, nil
		}
	}
}

// afterExit re-delivers an event whose delivery the exit interrupted
// (SDM Vol. 3C, 28.2.4 "Information for VM Exits During Event Delivery";
// 27.6 "Event Injection").
func (c *vcpu) afterExit() {
	v := &c.hw.v
	idt := v.read(IDT_VECTORING_INFO_FIELD)
	if idt&INTR_INFO_VALID == 0 {
		c.injecting = false
		return
	}
	v.write(VM_ENTRY_INTR_INFO_FIELD, idt&(INTR_INFO_VALID|INTR_INFO_DELIVER_CODE|INTR_INFO_TYPE_MASK|INTR_INFO_VECTOR_MASK))
	if idt&INTR_INFO_DELIVER_CODE != 0 {
		v.write(VM_ENTRY_EXCEPTION_ERROR_CODE, v.read(IDT_VECTORING_ERROR_CODE))
	}
	switch idt & INTR_INFO_TYPE_MASK {
	case INTR_TYPE_SOFT_INTR, INTR_TYPE_PRIV_SW_EXCEPTION, INTR_TYPE_SOFT_EXCEPTION:
		v.write(VM_ENTRY_INSTRUCTION_LEN, v.read(VM_EXIT_INSTRUCTION_LEN))
	}
	c.injecting = true
}

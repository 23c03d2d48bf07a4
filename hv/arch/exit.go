package arch

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
)

// ExitReason says why the guest stopped running. Backends map their
// hardware exit codes onto these; an exit the core has no use for and the
// backend cannot handle itself is reported as ExitBackendSpecific.
type ExitReason uint8

// Exit reasons. The zero value, ExitUnknown, is what a backend that forgot
// to classify an exit returns; the core treats it as a backend error.
const (
	// ExitUnknown: the backend did not classify the exit (Exit.Code has
	// its raw code).
	ExitUnknown ExitReason = iota
	// ExitIO: IN, OUT, INS or OUTS to a port the backend intercepts
	// (Exit.IO).
	ExitIO
	// ExitMMIO: an access to device memory the backend has already
	// decoded (Exit.MMIO). Backends usually report ExitPageFault instead
	// and let the core decode.
	ExitMMIO
	// ExitPageFault: a nested page fault (SVM #NPF) or EPT violation on a
	// guest-physical address, usually outside guest RAM (Exit.Fault). The
	// core routes it to the MMIO bus through the instruction emulator or
	// applies the VM's outside-RAM policy.
	ExitPageFault
	// ExitCPUID: CPUID (Exit.CPUID).
	ExitCPUID
	// ExitMSRRead: RDMSR (Exit.MSR.Index).
	ExitMSRRead
	// ExitMSRWrite: WRMSR (Exit.MSR.Index, Exit.MSR.Value = EDX:EAX).
	ExitMSRWrite
	// ExitHLT: HLT.
	ExitHLT
	// ExitHypercall: VMMCALL (AMD) or VMCALL (Intel).
	ExitHypercall
	// ExitShutdown: the guest triple-faulted (SVM SHUTDOWN, VMX triple
	// fault).
	ExitShutdown
	// ExitInterrupt: a host interrupt arrived while the guest ran (timer
	// slice end, Kick, device). Nothing for the VM to do.
	ExitInterrupt
	// ExitNMI: a host NMI arrived while the guest ran; the backend has
	// handed it to the host. Nothing for the VM to do.
	ExitNMI
	// ExitInterruptWindow: the guest can now take the interrupt or NMI
	// the core asked a window for (RequestInterruptWindow).
	ExitInterruptWindow
	// ExitInit: the vCPU received INIT.
	ExitInit
	// ExitSIPI: the vCPU, waiting for SIPI, received one
	// (Exit.SIPIVector).
	ExitSIPI
	// ExitInvalidGuestState: the hardware refused to enter the guest
	// because its state is invalid (SVM VMEXIT_INVALID, VMX entry failure
	// due to guest state); Exit.Message names the failing check.
	ExitInvalidGuestState
	// ExitEntryFailure: entry failed for another reason (VMX
	// VMLAUNCH/VMRESUME VM-instruction error, entry failure on MSR
	// loading); Exit.Message says why.
	ExitEntryFailure
	// ExitBackendSpecific: a vendor-only exit the backend could not
	// handle (Exit.Code, Exit.Message).
	ExitBackendSpecific

	// NumExitReasons is the number of exit reasons, for per-reason
	// tables.
	NumExitReasons = int(iota)
)

var exitReasonNames = [NumExitReasons]string{
	ExitUnknown:           "unknown",
	ExitIO:                "io",
	ExitMMIO:              "mmio",
	ExitPageFault:         "pagefault",
	ExitCPUID:             "cpuid",
	ExitMSRRead:           "rdmsr",
	ExitMSRWrite:          "wrmsr",
	ExitHLT:               "hlt",
	ExitHypercall:         "hypercall",
	ExitShutdown:          "shutdown",
	ExitInterrupt:         "interrupt",
	ExitNMI:               "nmi",
	ExitInterruptWindow:   "intwindow",
	ExitInit:              "init",
	ExitSIPI:              "sipi",
	ExitInvalidGuestState: "invalid-state",
	ExitEntryFailure:      "entry-failure",
	ExitBackendSpecific:   "backend",
}

// String returns the short name of the reason ("cpuid", "io", ...), as
// used in exit counters and `vm list`.
func (r ExitReason) String() string {
	if int(r) < NumExitReasons {
		return exitReasonNames[r]
	}
	return "reason?"
}

// Access is the kind of a memory access, as a bit set.
type Access uint8

// Access kinds.
const (
	// AccessRead is a data read.
	AccessRead Access = 1 << iota
	// AccessWrite is a data write.
	AccessWrite
	// AccessExec is an instruction fetch.
	AccessExec
)

// String returns "r", "w", "x" or a combination such as "rw".
func (a Access) String() string {
	s := ""
	if a&AccessRead != 0 {
		s += "r"
	}
	if a&AccessWrite != 0 {
		s += "w"
	}
	if a&AccessExec != 0 {
		s += "x"
	}
	if s == "" {
		return "-"
	}
	return s
}

// IntrState is the guest's interruptibility when it exited, which the core
// needs to decide whether an interrupt can be injected on the next entry or
// an interrupt window must be requested. Backends fill it on every exit.
type IntrState struct {
	// IF is RFLAGS.IF.
	IF bool
	// Shadow is set when the guest is in an interrupt shadow (the
	// instruction after STI or MOV SS/POP SS): neither interrupts nor NMIs
	// can be injected before it completes.
	Shadow bool
	// NMIBlocked is set while the guest is handling an NMI (blocking by
	// NMI, until IRET).
	NMIBlocked bool
	// EventPending is set when the backend still has an event to
	// (re)deliver on the next entry — one whose delivery the exit
	// interrupted (SVM EXITINTINFO, VMX IDT-vectoring information). The
	// core injects nothing else while it is set.
	EventPending bool
}

// Injectable reports whether an external interrupt can be injected now.
func (s IntrState) Injectable() bool { return s.IF && !s.Shadow && !s.EventPending }

// NMIInjectable reports whether an NMI can be injected now.
func (s IntrState) NMIInjectable() bool { return !s.NMIBlocked && !s.Shadow && !s.EventPending }

// IOExit describes an intercepted port I/O instruction. The data of IN and
// OUT is in RAX (AL, AX or EAX by Size); INS and OUTS move data between the
// port and guest memory at ES:rDI (INS) or seg:rSI (OUTS).
type IOExit struct {
	// Port is the port number (DX or the immediate).
	Port uint16
	// Size is the access size in bytes: 1, 2 or 4.
	Size uint8
	// In is set for IN/INS, clear for OUT/OUTS.
	In bool
	// String is set for INS/OUTS.
	String bool
	// Rep is set when a REP prefix repeats the string instruction RCX
	// times (masked by AddrSize).
	Rep bool
	// AddrSize is the address size of a string instruction in bytes (2,
	// 4 or 8): it selects SI/ESI/RSI, DI/EDI/RDI and CX/ECX/RCX.
	AddrSize uint8
	// Seg is the source segment of OUTS (DS unless overridden). Backends
	// that cannot tell report SEG_DS.
	Seg SegReg
}

// MMIOExit describes an access to device memory that the backend decoded
// itself. Reads return their value to GPR Reg (zero-extended from Size).
type MMIOExit struct {
	// GPA is the guest-physical address accessed.
	GPA addr.GPA
	// Size is the access size in bytes: 1, 2, 4 or 8.
	Size uint8
	// Write is set for a store.
	Write bool
	// Reg is the destination register number of a read.
	Reg uint8
	// Data is the value stored by a write (low Size bytes).
	Data uint64
	// NeedsDecode is set when the backend knows only the address: the
	// core hands the exit to the instruction emulator, which decodes at
	// the guest's RIP.
	NeedsDecode bool
}

// PageFaultExit describes a nested page fault / EPT violation.
type PageFaultExit struct {
	// GPA is the faulting guest-physical address.
	GPA addr.GPA
	// Access is the kind of access that faulted.
	Access Access
	// GVA is the guest linear address of the access when GVAValid.
	GVA addr.GVA
	// GVAValid is set when the hardware reported the linear address.
	GVAValid bool
	// Walk is set when the fault hit a guest page-table access during
	// the guest's own page walk rather than the final access.
	Walk bool
}

// CPUIDExit describes an intercepted CPUID (for tracing: the core reads
// EAX and ECX).
type CPUIDExit struct {
	// Leaf is EAX at the CPUID instruction.
	Leaf uint32
	// Subleaf is ECX at the CPUID instruction.
	Subleaf uint32
}

// MSRExit describes an intercepted RDMSR or WRMSR (for tracing: the core
// reads ECX and EDX:EAX).
type MSRExit struct {
	// Index is ECX, the MSR number.
	Index uint32
	// Value is EDX:EAX for WRMSR; unused for RDMSR.
	Value uint64
}

// MAX_INSN_LEN is the architectural maximum length of an x86 instruction
// (Intel SDM Vol. 2A, §2.3.11 "AVX Instruction Length"; AMD64 APM Vol. 3,
// §1.1 "Instruction Encoding Overview").
const MAX_INSN_LEN = 15

// Exit is the one description of a guest exit that every backend produces
// and the core dispatches. Only the field group that matches Reason is
// meaningful; the rest is zero.
//
// Operands: the core reads CPUID's leaf and subleaf from EAX/ECX, RDMSR's
// and WRMSR's index and value from ECX and EDX:EAX, and OUT's data from
// RAX, through GetRegs; the CPUID and MSR groups are filled for tracing and
// diagnostics. IO, MMIO and Fault carry information the registers do not.
//
// Instruction completion: for CPUID, MSR, IO, HLT and hypercall exits the
// backend does not advance RIP. It reports RIP (the intercepted instruction)
// and NextRIP (the instruction after it, from SVM NRIP-save, by decoding, or
// from the VMX instruction length); the core sets RIP to NextRIP when it
// completes the instruction, or leaves it and injects a fault.
type Exit struct {
	// Reason selects the field group below.
	Reason ExitReason
	// RIP is the guest's RIP at the exit: the intercepted instruction,
	// or where the guest was interrupted.
	RIP uint64
	// NextRIP is the RIP of the following instruction, for reasons that
	// complete an instruction; 0 when the backend does not know it (the
	// core then treats such exits as backend errors).
	NextRIP uint64
	// Intr is the guest's interruptibility at the exit.
	Intr IntrState
	// CPL is the guest's current privilege level at the exit (the
	// hypercall ABI refuses calls from CPL > 0).
	CPL uint8

	// IO is set for ExitIO.
	IO IOExit
	// MMIO is set for ExitMMIO.
	MMIO MMIOExit
	// Fault is set for ExitPageFault.
	Fault PageFaultExit
	// CPUID is set for ExitCPUID.
	CPUID CPUIDExit
	// MSR is set for ExitMSRRead and ExitMSRWrite.
	MSR MSRExit
	// SIPIVector is the start-up vector of ExitSIPI (start at
	// vector<<12).
	SIPIVector uint8

	// InsnLen is the number of valid bytes in Insn: the guest's
	// instruction bytes at RIP when the hardware supplied them (SVM decode
	// assists on #NPF). The emulator fetches them itself when 0.
	InsnLen uint8
	// Insn holds the instruction bytes.
	Insn [MAX_INSN_LEN]byte

	// Code is the backend's raw exit code (SVM EXITCODE, VMX basic exit
	// reason), kept for diagnostics only.
	Code uint64
	// Info is the backend's raw exit information (SVM EXITINFO1, VMX
	// exit qualification), for diagnostics only.
	Info uint64
	// Message explains ExitInvalidGuestState, ExitEntryFailure and
	// ExitBackendSpecific in words: the failing check or field. Backends
	// use constant strings so that building it does not allocate.
	Message string
}

// String formats the exit for logs and crash reports.
func (e *Exit) String() string {
	s := fmt.Sprintf("%s at rip=%#x", e.Reason, e.RIP)
	switch e.Reason {
	case ExitIO:
		dir := "out"
		if e.IO.In {
			dir = "in"
		}
		if e.IO.String {
			dir += "s"
		}
		if e.IO.Rep {
			dir = "rep " + dir
		}
		s += fmt.Sprintf(": %s port %#x size %d", dir, e.IO.Port, e.IO.Size)
	case ExitMMIO:
		s += fmt.Sprintf(": %s size %d write=%v", e.MMIO.GPA, e.MMIO.Size, e.MMIO.Write)
	case ExitPageFault:
		s += fmt.Sprintf(": %s access %s", e.Fault.GPA, e.Fault.Access)
		if e.Fault.GVAValid {
			s += fmt.Sprintf(" (%s)", e.Fault.GVA)
		}
	case ExitCPUID:
		s += fmt.Sprintf(": leaf %#x subleaf %#x", e.CPUID.Leaf, e.CPUID.Subleaf)
	case ExitMSRRead:
		s += fmt.Sprintf(": msr %#x", e.MSR.Index)
	case ExitMSRWrite:
		s += fmt.Sprintf(": msr %#x value %#x", e.MSR.Index, e.MSR.Value)
	case ExitSIPI:
		s += fmt.Sprintf(": vector %#x", e.SIPIVector)
	}
	if e.Code != 0 || e.Info != 0 {
		s += fmt.Sprintf(" (backend code %#x info %#x)", e.Code, e.Info)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

package arch

import "fmt"

// EventType is the kind of an event injected into the guest. The values
// are Keel's own; each backend maps them to its encoding (SVM EVENTINJ.TYPE,
// VMX VM-entry interruption-information type).
type EventType uint8

// Event types.
const (
	// EventExternal is an external (maskable) interrupt.
	EventExternal EventType = iota
	// EventNMI is a non-maskable interrupt (vector 2).
	EventNMI
	// EventException is a hardware exception (fault or trap), with an
	// error code for the vectors that push one.
	EventException
	// EventSoftInt is a software interrupt, INT n; InsnLen is the length
	// of the INT instruction.
	EventSoftInt
	// EventSoftException is a software exception, INT3 or INTO; InsnLen
	// is the instruction length.
	EventSoftException
)

// String names the type.
func (t EventType) String() string {
	switch t {
	case EventExternal:
		return "external"
	case EventNMI:
		return "nmi"
	case EventException:
		return "exception"
	case EventSoftInt:
		return "softint"
	case EventSoftException:
		return "softexception"
	}
	return "event?"
}

// Event is an interrupt, NMI or exception to deliver to the guest on the
// next entry.
type Event struct {
	// Type is the kind of event.
	Type EventType
	// Vector is the IDT vector.
	Vector uint8
	// HasErrorCode is set when ErrorCode is pushed (exceptions 8, 10-14,
	// 17, 21).
	HasErrorCode bool
	// ErrorCode is the error code to push.
	ErrorCode uint32
	// FaultAddr is, for #PF, the linear address the backend loads into
	// the guest's CR2 before delivering the fault.
	FaultAddr uint64
	// InsnLen is, for software interrupts and exceptions, the length of
	// the instruction that raised it (so that the return address follows
	// it).
	InsnLen uint8
}

// ExceptionHasErrorCode reports whether exception vector v pushes an error
// code (Intel SDM Vol. 3A, §6.3.1 Table 6-1; AMD64 APM Vol. 2, §8.2).
func ExceptionHasErrorCode(v uint8) bool {
	switch v {
	case VECTOR_DF, VECTOR_TS, VECTOR_NP, VECTOR_SS, VECTOR_GP, VECTOR_PF, VECTOR_AC, 21:
		return true
	}
	return false
}

// Exception returns the event for hardware exception vector v, with error
// code ec attached when v pushes one.
func Exception(v uint8, ec uint32) Event {
	return Event{Type: EventException, Vector: v, HasErrorCode: ExceptionHasErrorCode(v), ErrorCode: ec}
}

// PageFault returns the #PF event for a fault at linear address gva with
// error code ec (PFEC_* bits).
func PageFault(gva uint64, ec uint32) Event {
	e := Exception(VECTOR_PF, ec)
	e.FaultAddr = gva
	return e
}

// NMI returns the NMI event.
func NMI() Event { return Event{Type: EventNMI, Vector: VECTOR_NMI} }

// ExternalInterrupt returns the event for external interrupt vector v.
func ExternalInterrupt(v uint8) Event { return Event{Type: EventExternal, Vector: v} }

// Validate checks that the event is deliverable as described: exceptions
// have vectors below 32 and error codes only where the architecture pushes
// them, NMIs use vector 2, external interrupts use vectors 16-255 (0-15 are
// illegal for the local APIC: Intel SDM Vol. 3A, §11.5.2 "Valid Interrupt
// Vectors").
func (e Event) Validate() error {
	switch e.Type {
	case EventExternal:
		if e.Vector < 16 {
			return fmt.Errorf("external interrupt vector %d is illegal (valid: 16-255)", e.Vector)
		}
	case EventNMI:
		if e.Vector != VECTOR_NMI {
			return fmt.Errorf("NMI with vector %d (must be 2)", e.Vector)
		}
	case EventException:
		if e.Vector >= 32 {
			return fmt.Errorf("exception vector %d is not an exception (valid: 0-31)", e.Vector)
		}
		if e.HasErrorCode != ExceptionHasErrorCode(e.Vector) {
			return fmt.Errorf("exception vector %d with HasErrorCode=%v (the architecture says %v)", e.Vector, e.HasErrorCode, ExceptionHasErrorCode(e.Vector))
		}
	case EventSoftInt, EventSoftException:
		if e.InsnLen == 0 || e.InsnLen > MAX_INSN_LEN {
			return fmt.Errorf("software %s vector %d with instruction length %d (valid: 1-%d)", e.Type, e.Vector, e.InsnLen, MAX_INSN_LEN)
		}
	default:
		return fmt.Errorf("unknown event type %d", e.Type)
	}
	return nil
}

// String formats the event as "exception 13 (error 0x0)".
func (e Event) String() string {
	s := fmt.Sprintf("%s %d", e.Type, e.Vector)
	if e.HasErrorCode {
		s += fmt.Sprintf(" (error %#x)", e.ErrorCode)
	}
	if e.Type == EventException && e.Vector == VECTOR_PF {
		s += fmt.Sprintf(" cr2=%#x", e.FaultAddr)
	}
	return s
}

// Package irq is the per-vCPU interrupt delivery model: which external
// interrupt vectors are pending, whether an NMI, INIT or SIPI is pending,
// and the decision, before each guest entry, to inject an event now or ask
// the backend for an interrupt window.
//
// Devices and interrupt controllers raise vectors from any goroutine; the
// vCPU goroutine takes them. Pending vectors are a 256-bit bitmap of atomic
// words; among several, the highest vector is delivered first (the local
// APIC's priority order: Intel SDM Vol. 3A, §11.8.3 "Interrupt, Task, and
// Processor Priority"). Raising wakes a halted vCPU through a one-slot
// channel and kicks a running one out of the guest; none of it allocates.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package irq

import (
	"errors"
	"math/bits"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/arch"
)

// FIRST_VALID_VECTOR is the lowest vector an external interrupt may use:
// 0-15 are illegal for the local APIC (Intel SDM Vol. 3A, §11.5.2 "Valid
// Interrupt Vectors").
const FIRST_VALID_VECTOR = 16

// ErrBadVector is returned by Raise for vectors 0-15.
var ErrBadVector = errors.New("irq: vectors 0-15 cannot be raised as external interrupts")

// Lines is one vCPU's pending interrupts. The zero value is not usable;
// call New.
type Lines struct {
	source  atomic.Pointer[sourceBox]
	pending [4]atomic.Uint64
	nmi     atomic.Bool
	init    atomic.Bool
	sipi    atomic.Int32 // pending SIPI vector, or -1
	wake    chan struct{}
	kick    atomic.Pointer[func()]
}

// New returns a Lines with nothing pending.
func New() *Lines {
	l := &Lines{wake: make(chan struct{}, 1)}
	l.sipi.Store(-1)
	return l
}

// SetKick installs the function that forces the vCPU out of the guest
// (normally the backend's Kick, guarded by "is in the guest"). It is called
// after every Raise.
func (l *Lines) SetKick(kick func()) {
	if kick == nil {
		l.kick.Store(nil)
		return
	}
	l.kick.Store(&kick)
}

// notify wakes a halted vCPU and kicks a running one.
func (l *Lines) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
	if k := l.kick.Load(); k != nil {
		(*k)()
	}
}

// Source is an interrupt controller in front of the vCPU: the local APIC
// model (with the i8259 behind it in virtual-wire mode). Lines asks it,
// after its own pending vectors, for the next external interrupt. Its
// methods are called on the vCPU's goroutine; it calls Notify when an
// interrupt may have become ready.
type Source interface {
	// Ready reports whether an interrupt is ready for delivery (for
	// waking HLT and requesting interrupt windows).
	Ready() bool
	// Take returns the interrupt to inject now and marks it in service
	// (the INTA cycle); ok is false when none is ready any more.
	Take() (vector uint8, ok bool)
}

type sourceBox struct{ s Source }

// SetSource installs the vCPU's interrupt controller; nil removes it.
func (l *Lines) SetSource(s Source) {
	if s == nil {
		l.source.Store(nil)
		return
	}
	l.source.Store(&sourceBox{s})
}

// sourceReady reports whether the Source has an interrupt ready.
func (l *Lines) sourceReady() bool {
	b := l.source.Load()
	return b != nil && b.s.Ready()
}

// Notify wakes a halted vCPU and kicks a running one without raising
// anything here: the Source has something new.
func (l *Lines) Notify() { l.notify() }

// Wake returns the channel that receives a value when something is raised.
// A vCPU parks on it (together with its stop channel) while halted.
func (l *Lines) Wake() <-chan struct{} { return l.wake }

// Raise makes external interrupt vector v pending. Raising an already
// pending vector is a no-op (edge semantics, like the local APIC's IRR).
func (l *Lines) Raise(v uint8) error {
	if v < FIRST_VALID_VECTOR {
		return ErrBadVector
	}
	l.pending[v/64].Or(1 << (v % 64))
	l.notify()
	return nil
}

// RaiseNMI makes an NMI pending. NMIs do not queue: a second one before
// the first is delivered is lost, as on hardware.
func (l *Lines) RaiseNMI() {
	l.nmi.Store(true)
	l.notify()
}

// RaiseInit makes an INIT pending.
func (l *Lines) RaiseInit() {
	l.init.Store(true)
	l.notify()
}

// RaiseSIPI makes a start-up IPI with vector v pending (a later one
// replaces an earlier one not yet taken).
func (l *Lines) RaiseSIPI(v uint8) {
	l.sipi.Store(int32(v))
	l.notify()
}

// Clear withdraws pending vector v (a level-triggered source deasserted).
func (l *Lines) Clear(v uint8) { l.pending[v/64].And(^(uint64(1) << (v % 64))) }

// IsPending reports whether vector v is pending.
func (l *Lines) IsPending(v uint8) bool { return l.pending[v/64].Load()&(1<<(v%64)) != 0 }

// Pending reports whether any external interrupt is pending.
func (l *Lines) Pending() bool {
	return l.pending[0].Load()|l.pending[1].Load()|l.pending[2].Load()|l.pending[3].Load() != 0
}

// Highest returns the highest pending vector without taking it.
func (l *Lines) Highest() (uint8, bool) {
	for w := 3; w >= 0; w-- {
		if v := l.pending[w].Load(); v != 0 {
			return uint8(w*64 + 63 - bits.LeadingZeros64(v)), true
		}
	}
	return 0, false
}

// take removes and returns the highest pending vector.
func (l *Lines) take() (uint8, bool) {
	for w := 3; w >= 0; w-- {
		for {
			v := l.pending[w].Load()
			if v == 0 {
				break
			}
			b := 63 - bits.LeadingZeros64(v)
			if l.pending[w].CompareAndSwap(v, v&^(1<<b)) {
				return uint8(w*64 + b), true
			}
		}
	}
	return 0, false
}

// NMIPending reports whether an NMI is pending.
func (l *Lines) NMIPending() bool { return l.nmi.Load() }

// TakeInit reports and clears a pending INIT.
func (l *Lines) TakeInit() bool { return l.init.Swap(false) }

// TakeSIPI returns and clears a pending SIPI vector.
func (l *Lines) TakeSIPI() (uint8, bool) {
	v := l.sipi.Swap(-1)
	return uint8(v), v >= 0
}

// StartupPending reports whether an INIT or SIPI is pending.
func (l *Lines) StartupPending() bool { return l.init.Load() || l.sipi.Load() >= 0 }

// Runnable reports whether a halted vCPU whose RFLAGS.IF is ifFlag should
// wake: an NMI, INIT or SIPI is pending, or an interrupt is pending and
// interrupts are enabled (with IF clear, HLT sleeps through interrupts:
// Intel SDM Vol. 2A, "HLT").
func (l *Lines) Runnable(ifFlag bool) bool {
	return l.nmi.Load() || l.StartupPending() || (ifFlag && (l.Pending() || l.sourceReady()))
}

// Decision is what to do about pending events before the next guest
// entry.
type Decision struct {
	// Inject is set when Event must be injected now.
	Inject bool
	// Event is the event to inject.
	Event arch.Event
	// Window is set when something (else) stays pending and the backend
	// must exit as soon as the guest can take it (interrupt window, or
	// NMI window after the guest's IRET).
	Window bool
}

// Next decides, from the guest's interruptibility at its last exit, which
// event to inject on the next entry, taking it off the pending set, and
// whether to request a window for what remains. An NMI goes before any
// interrupt; interrupts go highest vector first. It never allocates.
func (l *Lines) Next(st arch.IntrState) Decision {
	var d Decision
	if l.nmi.Load() {
		if st.NMIInjectable() && l.nmi.CompareAndSwap(true, false) {
			d.Inject = true
			d.Event = arch.NMI()
		} else {
			d.Window = true
		}
	}
	if l.Pending() {
		if !d.Inject && st.Injectable() {
			if v, ok := l.take(); ok {
				d.Inject = true
				d.Event = arch.ExternalInterrupt(v)
			}
		}
		if l.Pending() {
			d.Window = true
		}
	}
	if b := l.source.Load(); b != nil && b.s.Ready() {
		if !d.Inject && st.Injectable() {
			if v, ok := b.s.Take(); ok {
				d.Inject = true
				d.Event = arch.ExternalInterrupt(v)
			}
		}
		if b.s.Ready() {
			d.Window = true
		}
	}
	return d
}

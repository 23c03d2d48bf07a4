// Package irqline is the wire between a device and an interrupt
// controller: a device holds a Line and drives it high or low; the
// controller (i8259 PIC, IOAPIC) implements Line for each of its inputs.
//
// ISA devices raise edge-triggered interrupts by driving the line high and
// then low (Pulse); level-triggered sources (PCI INTx, a 16550 with a
// pending condition) hold it high until the condition clears.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package irqline

import "sync"

// Line is one interrupt request input of an interrupt controller.
// SetLevel may be called from any goroutine and must not block for long
// or allocate.
type Line interface {
	SetLevel(high bool)
}

// Pulse raises and lowers l: an edge for an edge-triggered input.
func Pulse(l Line) {
	l.SetLevel(true)
	l.SetLevel(false)
}

// None is a line connected to nothing.
type None struct{}

// SetLevel implements Line.
func (None) SetLevel(bool) {}

// Func adapts a function to Line.
type Func func(high bool)

// SetLevel implements Line.
func (f Func) SetLevel(high bool) { f(high) }

// Fanout drives several lines together (a PC ISA interrupt reaches both the
// i8259 and the IOAPIC).
type Fanout []Line

// SetLevel implements Line.
func (f Fanout) SetLevel(high bool) {
	for _, l := range f {
		l.SetLevel(high)
	}
}

// Recorder is a Line for tests: it remembers the level and counts rising
// edges.
type Recorder struct {
	mu    sync.Mutex
	level bool
	edges int
}

// SetLevel implements Line.
func (r *Recorder) SetLevel(high bool) {
	r.mu.Lock()
	if high && !r.level {
		r.edges++
	}
	r.level = high
	r.mu.Unlock()
}

// Level reports the current level.
func (r *Recorder) Level() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.level
}

// Edges reports the number of rising edges seen so far.
func (r *Recorder) Edges() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.edges
}

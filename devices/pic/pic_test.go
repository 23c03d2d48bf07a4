package pic

import (
	"sync/atomic"
	"testing"

	"github.com/keel-hv/keel/hv/bus"
)

// Vector bases Linux programs (ISA_IRQ_VECTOR(0) = 0x30).
const (
	MASTER_VECTOR = 0x30
	SLAVE_VECTOR  = 0x38
)

// rig is a PIC pair on a port bus with a counting notify callback.
type rig struct {
	t       *testing.T
	p       *PIC
	b       *bus.PortBus
	notices atomic.Int32
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t}
	r.p = New(func() { r.notices.Add(1) })
	r.b = bus.NewPortBus(bus.Policy{Strict: true})
	for _, d := range []struct {
		base uint16
		size uint32
		dev  bus.Device
		name string
	}{
		{MASTER_BASE, SIZE, r.p.Master(), "pic-master"},
		{SLAVE_BASE, SIZE, r.p.Slave(), "pic-slave"},
		{ELCR_BASE, ELCR_SIZE, r.p.ELCR(), "elcr"},
	} {
		if err := r.b.Register(d.base, d.size, d.dev, d.name); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *rig) out(port uint16, v uint8) {
	r.t.Helper()
	if err := r.b.Write(port, []byte{v}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) in(port uint16) uint8 {
	r.t.Helper()
	d := []byte{0}
	if err := r.b.Read(port, d); err != nil {
		r.t.Fatal(err)
	}
	return d[0]
}

// initLinux programs the pair the way Linux's init_8259A does.
func (r *rig) initLinux(icw4 uint8) {
	r.out(MASTER_BASE+1, 0xff)
	r.out(SLAVE_BASE+1, 0xff)
	r.out(MASTER_BASE, ICW1_INIT|ICW1_IC4)
	r.out(MASTER_BASE+1, MASTER_VECTOR)
	r.out(MASTER_BASE+1, 1<<CASCADE_IRQ)
	r.out(MASTER_BASE+1, icw4)
	r.out(SLAVE_BASE, ICW1_INIT|ICW1_IC4)
	r.out(SLAVE_BASE+1, SLAVE_VECTOR)
	r.out(SLAVE_BASE+1, CASCADE_IRQ)
	r.out(SLAVE_BASE+1, ICW4_UPM)
	r.out(MASTER_BASE+1, 0)
	r.out(SLAVE_BASE+1, 0)
}

func (r *rig) ack(want uint8) {
	r.t.Helper()
	if !r.p.Pending() {
		r.t.Fatalf("want vector %#x, but nothing is pending", want)
	}
	v, ok := r.p.Acknowledge()
	if !ok || v != want {
		r.t.Fatalf("Acknowledge = %#x, %v; want %#x, true", v, ok, want)
	}
}

func (r *rig) nothing(what string) {
	r.t.Helper()
	if r.p.Pending() {
		r.t.Fatalf("%s: interrupt pending, want none", what)
	}
}

func (r *rig) isr(base uint16) uint8 {
	r.out(base, OCW3_SELECT|OCW3_RR|OCW3_RIS)
	v := r.in(base)
	r.out(base, OCW3_SELECT|OCW3_RR)
	return v
}

func (r *rig) eoi(base uint16) { r.out(base, OCW2_NON_SPECIFIC_EOI) }

func TestUninitialised(t *testing.T) {
	r := newRig(t)
	r.p.Line(4).SetLevel(true)
	r.nothing("before ICWs")
	if v, ok := r.p.Acknowledge(); ok {
		t.Errorf("Acknowledge before ICWs = %#x, true", v)
	}
	// Linux's probe_8259A: IMR reads back before initialisation.
	r.out(MASTER_BASE+1, 0xff)
	if got := r.in(MASTER_BASE + 1); got != 0xff {
		t.Errorf("IMR = %#x, want 0xff", got)
	}
	// Between ICW1 and the last ICW nothing is delivered either.
	r.out(MASTER_BASE, ICW1_INIT|ICW1_IC4)
	r.out(MASTER_BASE+1, MASTER_VECTOR)
	r.p.Line(5).SetLevel(true)
	r.nothing("halfway through the ICWs")
	if _, ok := r.p.Acknowledge(); ok {
		t.Errorf("Acknowledge halfway through the ICWs succeeded")
	}
}

func TestLinuxSequence(t *testing.T) {
	tests := []struct {
		name       string
		irq        int
		vector     uint8
		masterISR  uint8
		slaveISR   uint8
		eoiSlave   bool
		masterMask uint8
	}{
		{"timer", 0, 0x30, 0x01, 0, false, 0},
		{"com1", 4, 0x34, 0x10, 0, false, 0},
		{"lpt1", 7, 0x37, 0x80, 0, false, 0},
		{"rtc", 8, 0x38, 0x04, 0x01, true, 0},
		{"mouse", 12, 0x3c, 0x04, 0x10, true, 0},
		{"ide1", 15, 0x3f, 0x04, 0x80, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.initLinux(ICW4_UPM)
			r.nothing("after init")
			r.p.Line(tc.irq).SetLevel(true)
			if r.notices.Load() != 1 {
				t.Errorf("notify called %d times, want 1", r.notices.Load())
			}
			irr := r.in(MASTER_BASE)
			if want := uint8(1) << (tc.irq & 7); tc.irq < 8 && irr != want {
				t.Errorf("master IRR = %#x, want %#x", irr, want)
			}
			r.ack(tc.vector)
			r.nothing("in service")
			if got := r.isr(MASTER_BASE); got != tc.masterISR {
				t.Errorf("master ISR = %#x, want %#x", got, tc.masterISR)
			}
			if got := r.isr(SLAVE_BASE); got != tc.slaveISR {
				t.Errorf("slave ISR = %#x, want %#x", got, tc.slaveISR)
			}
			r.p.Line(tc.irq).SetLevel(false)
			if tc.eoiSlave {
				r.eoi(SLAVE_BASE)
			}
			r.eoi(MASTER_BASE)
			if r.isr(MASTER_BASE) != 0 || r.isr(SLAVE_BASE) != 0 {
				t.Errorf("ISRs not clear after EOI")
			}
			r.nothing("after EOI (edge consumed)")
			// Another edge, another interrupt.
			r.p.Line(tc.irq).SetLevel(true)
			r.ack(tc.vector)
		})
	}
}

func TestPriorityAndNesting(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(3).SetLevel(true)
	r.p.Line(1).SetLevel(true)
	r.ack(0x31)
	r.p.Line(5).SetLevel(true)
	r.nothing("IRQ 3 and 5 behind IRQ 1 in service")
	r.p.Line(0).SetLevel(true)
	r.ack(0x30) // higher priority nests
	if got := r.isr(MASTER_BASE); got != 0x03 {
		t.Errorf("ISR = %#x, want 0x03", got)
	}
	r.eoi(MASTER_BASE) // clears IRQ 0, the highest in service
	r.nothing("IRQ 1 still in service")
	r.eoi(MASTER_BASE)
	r.ack(0x33)
	r.out(MASTER_BASE, OCW2_SPECIFIC_EOI|3)
	// Masked requests wait.
	r.out(MASTER_BASE+1, 1<<5)
	r.nothing("IRQ 5 masked")
	r.out(MASTER_BASE+1, 0)
	r.ack(0x35)
	// Slave IRQs rank at the cascade's place: below IRQ 1, above IRQ 3.
	r.eoi(MASTER_BASE)
	r.p.Line(3).SetLevel(false)
	r.p.Line(3).SetLevel(true)
	r.p.Line(9).SetLevel(true)
	r.ack(0x39)
	r.nothing("IRQ 3 behind the cascade in service")
	r.eoi(SLAVE_BASE)
	r.eoi(MASTER_BASE)
	r.ack(0x33)
}

func TestEdgeAndLevel(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	// ELCR: make IRQ 5 and 10 level-triggered; reserved bits stay 0.
	r.out(ELCR_BASE, 0xff)
	r.out(ELCR_BASE+1, 0xff)
	if a, b := r.in(ELCR_BASE), r.in(ELCR_BASE+1); a != ELCR1_MASK || b != ELCR2_MASK {
		t.Errorf("ELCR = %#x %#x, want %#x %#x", a, b, ELCR1_MASK, ELCR2_MASK)
	}
	r.out(ELCR_BASE, 1<<5)
	r.out(ELCR_BASE+1, 1<<(10-8))

	// Level: still high after EOI means another interrupt.
	r.p.Line(10).SetLevel(true)
	r.ack(0x3a)
	r.eoi(SLAVE_BASE)
	r.eoi(MASTER_BASE)
	r.ack(0x3a)
	r.p.Line(10).SetLevel(false)
	r.eoi(SLAVE_BASE)
	r.eoi(MASTER_BASE)
	r.nothing("level line low")

	// Level line dropping before the acknowledge: spurious IRQ 7.
	r.p.Line(5).SetLevel(true)
	if !r.p.Pending() {
		t.Fatal("IRQ 5 not pending")
	}
	r.p.Line(5).SetLevel(false)
	if v, ok := r.p.Acknowledge(); !ok || v != MASTER_VECTOR|SPURIOUS_IRQ {
		t.Errorf("Acknowledge after the line dropped = %#x, %v; want %#x (spurious)", v, ok, MASTER_VECTOR|SPURIOUS_IRQ)
	}
	if got := r.isr(MASTER_BASE); got != 0 {
		t.Errorf("spurious IRQ 7 put ISR %#x in service", got)
	}

	// Edge: a pulse is latched; holding the line high is one request.
	r.p.Line(6).SetLevel(true)
	r.p.Line(6).SetLevel(false)
	r.ack(0x36)
	r.eoi(MASTER_BASE)
	r.nothing("pulse consumed")
	r.p.Line(6).SetLevel(true)
	r.ack(0x36)
	r.eoi(MASTER_BASE)
	r.nothing("line held high: no new edge")

	// ICW1 resets the edge sense: the held line must go low first.
	r.initLinux(ICW4_UPM)
	r.nothing("held line after ICW1")
	r.p.Line(6).SetLevel(false)
	r.p.Line(6).SetLevel(true)
	r.ack(0x36)

	// LTIM makes every input level-triggered.
	r2 := newRig(t)
	r2.out(MASTER_BASE, ICW1_INIT|ICW1_SNGL|ICW1_LTIM)
	r2.out(MASTER_BASE+1, 0x50)
	r2.p.Line(1).SetLevel(true)
	r2.ack(0x51)
	r2.eoi(MASTER_BASE)
	r2.ack(0x51)
}

func TestAutoEOIAndRotation(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM | ICW4_AEOI)
	r.p.Line(4).SetLevel(true)
	r.ack(0x34)
	if got := r.isr(MASTER_BASE); got != 0 {
		t.Errorf("ISR with AEOI = %#x, want 0", got)
	}
	// Rotate in AEOI mode: the acknowledged level becomes lowest.
	r.out(MASTER_BASE, OCW2_ROTATE_AEOI_SET)
	r.p.Line(3).SetLevel(true)
	r.ack(0x33)
	r.p.Line(3).SetLevel(false)
	r.p.Line(3).SetLevel(true)
	r.p.Line(5).SetLevel(true)
	r.ack(0x35) // 3 is now the lowest priority
	r.ack(0x33)
	r.out(MASTER_BASE, OCW2_ROTATE_AEOI_CLEAR)

	// Rotate on non-specific EOI and set priority, without AEOI.
	r = newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(0).SetLevel(true)
	r.ack(0x30)
	r.out(MASTER_BASE, OCW2_ROTATE_NON_SPECIFIC) // IRQ 0 lowest
	r.p.Line(0).SetLevel(false)
	r.p.Line(0).SetLevel(true)
	r.p.Line(7).SetLevel(true)
	r.ack(0x37)
	r.out(MASTER_BASE, OCW2_ROTATE_SPECIFIC|7) // IRQ 7 lowest again
	r.out(MASTER_BASE, OCW2_SET_PRIORITY|6)    // IRQ 7 highest
	r.p.Line(7).SetLevel(false)
	r.p.Line(7).SetLevel(true)
	r.ack(0x37)
	r.eoi(MASTER_BASE)
	r.ack(0x30)
}

func TestPoll(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.out(MASTER_BASE, OCW3_SELECT|OCW3_P)
	if got := r.in(MASTER_BASE); got != 0 {
		t.Errorf("poll with no request = %#x, want 0", got)
	}
	r.p.Line(6).SetLevel(true)
	r.out(MASTER_BASE, OCW3_SELECT|OCW3_P)
	if got := r.in(MASTER_BASE); got != POLL_INT|6 {
		t.Errorf("poll = %#x, want %#x", got, POLL_INT|6)
	}
	if got := r.isr(MASTER_BASE); got != 1<<6 {
		t.Errorf("ISR after poll = %#x, want 0x40", got)
	}
	// The poll is one-shot: the next read is IRR again.
	if got := r.in(MASTER_BASE); got != 0 {
		t.Errorf("IRR after poll = %#x, want 0", got)
	}
}

func TestSpecialMaskMode(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(3).SetLevel(true)
	r.ack(0x33)
	r.p.Line(5).SetLevel(true)
	r.nothing("IRQ 5 behind IRQ 3")
	// The handler masks its own level and enters special mask mode.
	r.out(MASTER_BASE+1, 1<<3)
	r.out(MASTER_BASE, OCW3_SELECT|OCW3_ESMM|OCW3_SMM)
	r.ack(0x35)
	r.out(MASTER_BASE, OCW3_SELECT|OCW3_ESMM)
	r.out(MASTER_BASE, OCW2_SPECIFIC_EOI|5)
	r.out(MASTER_BASE, OCW2_SPECIFIC_EOI|3)
	if got := r.isr(MASTER_BASE); got != 0 {
		t.Errorf("ISR = %#x, want 0", got)
	}
}

func TestSpecialFullyNested(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM | ICW4_SFNM)
	r.p.Line(12).SetLevel(true)
	r.ack(0x3c)
	// A higher-priority slave request gets through the cascade in
	// service; a lower one does not.
	r.p.Line(14).SetLevel(true)
	r.nothing("IRQ 14 below IRQ 12 on the slave")
	r.p.Line(9).SetLevel(true)
	r.ack(0x39)

	// Without SFNM the cascade in service blocks the slave.
	r = newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(12).SetLevel(true)
	r.ack(0x3c)
	r.p.Line(9).SetLevel(true)
	r.nothing("IRQ 9 behind the cascade in service")
}

func TestSingleModeHasNoCascade(t *testing.T) {
	r := newRig(t)
	r.out(MASTER_BASE, ICW1_INIT|ICW1_SNGL|ICW1_IC4)
	r.out(MASTER_BASE+1, 0x40)
	r.out(MASTER_BASE+1, ICW4_UPM)
	r.out(SLAVE_BASE, ICW1_INIT|ICW1_SNGL)
	r.out(SLAVE_BASE+1, 0x48)
	r.p.Line(11).SetLevel(true)
	r.ack(0x42) // the master answers for IR2 itself
}

func TestNotify(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(3).SetLevel(true)
	r.p.Line(4).SetLevel(true) // INTR already high: no new notice
	if n := r.notices.Load(); n != 1 {
		t.Errorf("notices = %d, want 1", n)
	}
	r.ack(0x33)
	r.eoi(MASTER_BASE) // IRQ 4 now gets through
	if n := r.notices.Load(); n != 2 {
		t.Errorf("notices after EOI = %d, want 2", n)
	}
	r.ack(0x34)
	r.out(MASTER_BASE+1, 0xff)
	r.eoi(MASTER_BASE)
	r.p.Line(5).SetLevel(true)
	r.out(MASTER_BASE+1, 0) // unmasking raises INTR
	if n := r.notices.Load(); n != 3 {
		t.Errorf("notices after unmask = %d, want 3", n)
	}
}

func TestLineWiring(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.p.Line(CASCADE_IRQ).SetLevel(true)
	r.nothing("Line(2) is not connected")
	for _, irq := range []int{-1, 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Line(%d) did not panic", irq)
				}
			}()
			r.p.Line(irq)
		}()
	}
}

func TestReset(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	r.out(ELCR_BASE, 0x20)
	r.p.Line(4).SetLevel(true)
	r.p.Reset()
	r.nothing("after Reset")
	if got := r.in(ELCR_BASE); got != 0 {
		t.Errorf("ELCR after Reset = %#x", got)
	}
}

func TestNoAllocations(t *testing.T) {
	r := newRig(t)
	r.initLinux(ICW4_UPM)
	l, m := r.p.Line(4), r.p.Master()
	eoi, b := []byte{OCW2_NON_SPECIFIC_EOI}, []byte{0}
	allocs := testing.AllocsPerRun(100, func() {
		l.SetLevel(true)
		l.SetLevel(false)
		r.p.Acknowledge()
		m.Write(0, eoi)
		m.Read(1, b)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
}

// FuzzPIC drives random port accesses, input levels and acknowledges: no
// panics, level-triggered IRR follows the pins, INTR matches Pending, and
// INTR never rises without a notice.
func FuzzPIC(f *testing.F) {
	f.Add([]byte{0x00, 0x11, 0x01, 0x30, 0x01, 0x04, 0x01, 0x01, 0x40, 0x14, 0xc0, 0x00, 0x20, 0xe0})
	f.Add([]byte{0x00, 0x1b, 0x01, 0x20, 0x01, 0x03, 0x04, 0x19, 0x05, 0x28, 0x06, 0xff, 0x4c, 0xc0, 0x00, 0x0c, 0x80})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var notices int
		p := New(func() { notices++ })
		devs := []struct {
			d    bus.Device
			size uint64
		}{{p.Master(), SIZE}, {p.Slave(), SIZE}, {p.ELCR(), ELCR_SIZE}}
		buf := make([]byte, 2)
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			before, seen := p.Pending(), notices
			switch op >> 6 {
			case 0: // write: bits 0-1 device, bit 2 offset, bit 3 16-bit
				dv := devs[op&3%3]
				off, size := uint64(op>>2&1), 1+int(op>>3&1)
				if off+uint64(size) > dv.size {
					size = 1
				}
				if i+size >= len(ops) {
					return
				}
				dv.d.Write(off, ops[i+1:i+1+size])
				i += size
			case 1: // input level: bits 0-3 IRQ, bit 4 level
				p.Line(int(op & 15)).SetLevel(op&0x10 != 0)
			case 2: // read
				dv := devs[op&3%3]
				dv.d.Read(uint64(op>>2&1), buf[:1])
			case 3: // acknowledge
				if v, ok := p.Acknowledge(); ok && !before && v&7 != SPURIOUS_IRQ {
					t.Fatalf("Acknowledge gave %#x with nothing pending", v)
				}
			}
			after := p.Pending()
			if after && !before && notices == seen {
				t.Fatalf("INTR rose on op %#x without a notice", op)
			}
			p.mu.Lock()
			if p.out != after {
				t.Fatalf("INTR %v but Pending %v", p.out, after)
			}
			for i := range p.chips {
				c := &p.chips[i]
				if lm := c.levelMask(); c.irr&lm != c.level&lm {
					t.Fatalf("chip %d: level-triggered IRR %#x, pins %#x (mask %#x)", i, c.irr, c.level, lm)
				}
				if c.elcr&^[]uint8{ELCR1_MASK, ELCR2_MASK}[i] != 0 {
					t.Fatalf("chip %d: reserved ELCR bits %#x", i, c.elcr)
				}
			}
			p.mu.Unlock()
		}
	})
}

// Package pit models the Intel 8254 programmable interval timer of a PC at
// ports 40h-43h, and the NMI status and control port 61h through which
// software gates counter 2 and reads its output.
//
// # Model
//
// Counters are not ticked. Each counter remembers the vclock time at which
// its counting element was loaded (its epoch) and computes its count and its
// OUT level from Clock.Now() whenever the guest looks, at the 8254's input
// clock of PIT_HZ. That makes the polled uses exact — Linux calibrates the
// TSC by gating counter 2 through port 61h in mode 0 and polling bit 5 (OUT)
// or reading the count — and costs nothing while nobody looks.
//
// Counter 0's OUT drives IRQ0 through an irqline.Line, using one vclock
// timer. The line sees edges, not the OUT waveform: the model pulses it
// (irqline.Pulse) at each rising edge of OUT — once at terminal count in
// modes 0 and 1, once per strobe in modes 4 and 5, once per period in modes
// 2 and 3. ISA IRQ0 is edge-triggered, so the interrupt controller sees the
// same thing as on hardware.
//
// Periodic interrupts do not drift: deadlines are epoch + k·N input clocks,
// computed from the ideal period boundary, never from when a callback ran.
// They do not flood: when the host falls behind and several period
// boundaries have passed by the time the timer runs, the model delivers one
// interrupt for all of them and counts the others in Stats.Coalesced.
// Periods shorter than MIN_IRQ_PERIOD are likewise delivered once every
// MIN_IRQ_PERIOD (the counters themselves still run at full rate).
//
// # Simplifications
//
//   - A count is loaded into the counting element at the instant it is
//     written, not on the next input clock edge (838 ns later).
//   - In mode 3 with an odd count the value read back may differ by one
//     from the hardware's; OUT timing is right.
//   - A count of 1 in modes 2 and 3 (illegal per the datasheet) counts as 2.
//   - A new count written while counting in mode 3 takes effect at the end
//     of the period (the hardware switches at the end of the half-period).
//   - BCD counting is supported; a BCD digit above 9 counts as 9.
//   - Counters 0 and 1 have their GATE tied high, as on a PC, so modes 1 and
//     5 never trigger on them. Counter 1 counts but drives nothing.
//   - Reads of port 43h (the write-only control word register) return FFh.
//   - An access wider than one byte is split into byte accesses at
//     consecutive ports, as the chipset does for an 8-bit ISA device.
//
// # Locking
//
// One mutex guards all three counters and port 61h. Clock methods (Now,
// AfterFunc, Timer.Stop) are called with it held, so a Clock must not call
// back into the PIT from inside them (vclock.Real and vclock.Fake do not).
// The IRQ0 line is pulsed only after the mutex is released, so an interrupt
// controller may call back into the PIT from SetLevel.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package pit

import (
	"sync"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
)

// Ports and clock (Intel 8254 Programmable Interval Timer datasheet,
// order no. 231164, "Functional Description"; IBM PC/AT Technical
// Reference, "System Timers").
const (
	// PIT_HZ is the frequency of the counters' CLK input: 14.31818 MHz / 12.
	PIT_HZ = 1193182
	// PORT_BASE is the port of counter 0; counters 1 and 2 and the
	// control word register follow at 41h, 42h and 43h.
	PORT_BASE = 0x40
	// SIZE is the number of ports the counters claim from PORT_BASE.
	SIZE = 4
	// PORT_NMI_SC is the NMI status and control port ("port B").
	PORT_NMI_SC = 0x61
	// NMI_SC_SIZE is the number of ports the NMI status and control
	// device claims.
	NMI_SC_SIZE = 1
)

// Offsets from PORT_BASE (8254 datasheet, "Read/Write Operations
// Summary").
const (
	PORT_COUNTER0 = 0
	PORT_COUNTER1 = 1
	PORT_COUNTER2 = 2
	PORT_CONTROL  = 3
)

// Control word format (8254 datasheet, figure "Control Word Format"):
// SC1 SC0 RW1 RW0 M2 M1 M0 BCD.
const (
	// CW_SC_SHIFT is the position of the two select-counter bits.
	CW_SC_SHIFT = 6
	// CW_SC_READ_BACK is the SC value of the read-back command.
	CW_SC_READ_BACK = 3
	// CW_RW_SHIFT is the position of the two read/write bits.
	CW_RW_SHIFT = 4
	// CW_MODE_SHIFT is the position of the three mode bits.
	CW_MODE_SHIFT = 1
	// CW_BCD selects BCD counting (four decades) instead of 16-bit binary.
	CW_BCD = 1 << 0
)

// Read/write (access) modes, the RW1-RW0 field.
const (
	// RW_LATCH in a control word is the counter latch command.
	RW_LATCH = 0
	// RW_LSB reads and writes the least significant byte only.
	RW_LSB = 1
	// RW_MSB reads and writes the most significant byte only.
	RW_MSB = 2
	// RW_LSB_MSB reads and writes the LSB first, then the MSB.
	RW_LSB_MSB = 3
)

// Counter modes, the M2-M0 field (8254 datasheet, "Modes"). Field values 6
// and 7 select modes 2 and 3.
const (
	MODE_INTERRUPT_ON_TERMINAL_COUNT = 0
	MODE_HW_RETRIGGERABLE_ONE_SHOT   = 1
	MODE_RATE_GENERATOR              = 2
	MODE_SQUARE_WAVE                 = 3
	MODE_SW_TRIGGERED_STROBE         = 4
	MODE_HW_TRIGGERED_STROBE         = 5
)

// Read-back command (8254 datasheet, figure "Read-Back Command Format"):
// 1 1 COUNT STATUS CNT2 CNT1 CNT0 0. COUNT and STATUS are active low.
const (
	RB_NOT_COUNT  = 1 << 5
	RB_NOT_STATUS = 1 << 4
	RB_CNT2       = 1 << 3
	RB_CNT1       = 1 << 2
	RB_CNT0       = 1 << 1
)

// Status byte (8254 datasheet, figure "Status Byte"): OUTPUT, NULL
// COUNT, then bits 5-0 as programmed by the control word.
const (
	STATUS_OUTPUT     = 1 << 7
	STATUS_NULL_COUNT = 1 << 6
)

// NMI status and control register bits, port 61h (Intel I/O Controller Hub
// 9 (ICH9) Family datasheet, §13.7.1 "NMI_SC—NMI Status and Control
// Register"). Bits 3-0 are read/write, bits 7-4 read-only.
const (
	// NMI_SC_TIM_CNT2_EN is the GATE input of counter 2.
	NMI_SC_TIM_CNT2_EN = 1 << 0
	// NMI_SC_SPKR_DAT_EN gates counter 2's OUT to the speaker.
	NMI_SC_SPKR_DAT_EN = 1 << 1
	// NMI_SC_PCI_SERR_EN, when set, disables SERR# NMIs.
	NMI_SC_PCI_SERR_EN = 1 << 2
	// NMI_SC_IOCHK_NMI_EN, when set, disables IOCHK# NMIs.
	NMI_SC_IOCHK_NMI_EN = 1 << 3
	// NMI_SC_REF_TOGGLE toggles at the DRAM refresh rate.
	NMI_SC_REF_TOGGLE = 1 << 4
	// NMI_SC_TMR2_OUT_STS reflects counter 2's OUT.
	NMI_SC_TMR2_OUT_STS = 1 << 5
	// NMI_SC_IOCHK_NMI_STS and NMI_SC_SERR_NMI_STS report NMI sources;
	// the model has none, so they read 0.
	NMI_SC_IOCHK_NMI_STS = 1 << 6
	NMI_SC_SERR_NMI_STS  = 1 << 7
	// NMI_SC_RW_MASK is the writable part of the register.
	NMI_SC_RW_MASK = 0x0f
	// REFRESH_PERIOD is how often NMI_SC_REF_TOGGLE changes: the
	// 15.085 µs ISA refresh interval.
	REFRESH_PERIOD = 15085 * time.Nanosecond
)

// MIN_IRQ_PERIOD bounds how often IRQ0 is pulsed in modes 2 and 3: a guest
// programming a tiny period gets one interrupt per MIN_IRQ_PERIOD, the rest
// coalesced. It is a model choice, not a hardware fact.
const MIN_IRQ_PERIOD = 100 * time.Microsecond

// Stats counts IRQ0 activity.
type Stats struct {
	// IRQs is the number of pulses delivered on IRQ0.
	IRQs uint64
	// Coalesced is the number of counter 0 periods whose interrupt was
	// merged into a later one because the host fell behind or the
	// period was shorter than MIN_IRQ_PERIOD.
	Coalesced uint64
}

// PIT is the 8254 and port 61h. It implements bus.Device for ports
// 40h-43h; NMIControl returns the device for port 61h. Use New.
type PIT struct {
	mu    sync.Mutex
	clock vclock.Clock
	irq   irqline.Line
	ch    [3]channel
	nmiSC byte // bits 3-0 of port 61h

	// IRQ0 timer: gen identifies the current timer so that a callback
	// that lost a race with Stop does nothing; deadline is the clock time
	// at which the next pulse is due.
	timer    vclock.Timer
	gen      uint64
	armed    bool
	deadline time.Duration
	skipped  uint64 // periods merged into the pending pulse by MIN_IRQ_PERIOD
	stopped  bool
	stats    Stats

	nmi NMIControl
}

// New returns a PIT whose counters run on clock and whose counter 0 pulses
// irq0. A nil irq0 is connected to nothing. Until the guest programs them
// the counters are idle, as after power-on.
func New(clock vclock.Clock, irq0 irqline.Line) *PIT {
	if irq0 == nil {
		irq0 = irqline.None{}
	}
	p := &PIT{clock: clock, irq: irq0}
	for i := range p.ch {
		p.ch[i] = channel{gate: true, ctrl: RW_LSB_MSB << CW_RW_SHIFT, nullCount: true}
	}
	// Counter 2's GATE is NMI_SC_TIM_CNT2_EN, clear at reset.
	p.ch[2].gate = false
	p.nmi.p = p
	return p
}

// NMIControl returns the NMI status and control device (port 61h) of this
// PIT, to be registered at PORT_NMI_SC with size NMI_SC_SIZE.
func (p *PIT) NMIControl() *NMIControl { return &p.nmi }

// Stats returns the IRQ0 counters.
func (p *PIT) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Stop cancels the IRQ0 timer for good; the counters stay readable. Call it
// when the VM is torn down.
func (p *PIT) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.disarm()
}

// Read implements bus.Device for ports 40h-43h.
func (p *PIT) Read(offset uint64, data []byte) {
	p.mu.Lock()
	now := p.clock.Now()
	for i := range data {
		data[i] = p.readPort(offset+uint64(i), now)
	}
	p.mu.Unlock()
}

// Write implements bus.Device for ports 40h-43h.
func (p *PIT) Write(offset uint64, data []byte) {
	p.mu.Lock()
	now := p.clock.Now()
	for i := range data {
		p.writePort(offset+uint64(i), data[i], now)
	}
	p.mu.Unlock()
}

func (p *PIT) readPort(off uint64, now time.Duration) byte {
	if off >= PORT_CONTROL {
		return 0xff
	}
	c := &p.ch[off]
	c.sync(now)
	return c.readByte(now)
}

func (p *PIT) writePort(off uint64, v byte, now time.Duration) {
	switch {
	case off < PORT_CONTROL:
		c := &p.ch[off]
		c.sync(now)
		c.writeByte(v, now)
	case off == PORT_CONTROL:
		if !p.writeControl(v, now) {
			return
		}
	default:
		return
	}
	if off == PORT_COUNTER0 || off == PORT_CONTROL {
		p.arm(now)
	}
}

// writeControl handles a write to port 43h and reports whether it
// reprogrammed counter 0.
func (p *PIT) writeControl(v byte, now time.Duration) bool {
	sc := v >> CW_SC_SHIFT
	if sc == CW_SC_READ_BACK {
		for i := range p.ch {
			if v&(RB_CNT0<<i) == 0 {
				continue
			}
			c := &p.ch[i]
			c.sync(now)
			// Status and count are latched at the same instant;
			// a latch still unread is kept.
			if v&RB_NOT_STATUS == 0 && !c.statusLatched {
				c.statusLatched = true
				c.status = c.statusByte(now)
			}
			if v&RB_NOT_COUNT == 0 {
				c.latchCount(now)
			}
		}
		return false
	}
	c := &p.ch[sc]
	c.sync(now)
	if (v>>CW_RW_SHIFT)&3 == RW_LATCH {
		c.latchCount(now)
		return false
	}
	c.program(v&0x3f, now)
	return sc == 0
}

// NMIControl is port 61h, the NMI status and control register: counter 2's
// GATE and speaker enable, counter 2's OUT and the refresh toggle. It
// implements bus.Device at offset 0 and shares its PIT's lock.
type NMIControl struct{ p *PIT }

// Read implements bus.Device. Bytes beyond offset 0 read as FFh.
func (n *NMIControl) Read(offset uint64, data []byte) {
	p := n.p
	p.mu.Lock()
	now := p.clock.Now()
	for i := range data {
		data[i] = 0xff
		if offset+uint64(i) != 0 {
			continue
		}
		v := p.nmiSC & NMI_SC_RW_MASK
		c := &p.ch[2]
		c.sync(now)
		if c.out(now) {
			v |= NMI_SC_TMR2_OUT_STS
		}
		if (now/REFRESH_PERIOD)&1 != 0 {
			v |= NMI_SC_REF_TOGGLE
		}
		data[i] = v
	}
	p.mu.Unlock()
}

// Write implements bus.Device. Only bits 3-0 are writable; bit 0 is
// counter 2's GATE.
func (n *NMIControl) Write(offset uint64, data []byte) {
	p := n.p
	p.mu.Lock()
	now := p.clock.Now()
	for i := range data {
		if offset+uint64(i) != 0 {
			continue
		}
		p.nmiSC = data[i] & NMI_SC_RW_MASK
		c := &p.ch[2]
		c.sync(now)
		c.setGate(data[i]&NMI_SC_TIM_CNT2_EN != 0, now)
	}
	p.mu.Unlock()
}

// arm (re)schedules the IRQ0 timer for counter 0's next rising edge of
// OUT, or cancels it if there is none. Called with p.mu held.
func (p *PIT) arm(now time.Duration) {
	p.disarm()
	if p.stopped {
		return
	}
	c := &p.ch[0]
	t, skipped, ok := c.nextEdge(now, minIRQTicks)
	if !ok {
		return
	}
	deadline := c.epoch + ticksToDur(c.base+t)
	if deadline < c.epoch {
		return // centuries away: never
	}
	p.armed, p.deadline, p.skipped = true, deadline, skipped
	gen := p.gen
	p.timer = p.clock.AfterFunc(deadline-now, func() { p.fire(gen) })
}

// disarm stops the IRQ0 timer. Called with p.mu held.
func (p *PIT) disarm() {
	p.gen++
	p.armed = false
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// fire runs when the IRQ0 timer expires: it pulses IRQ0 once, however many
// edges are due, and schedules the next one.
func (p *PIT) fire(gen uint64) {
	p.mu.Lock()
	if gen != p.gen || !p.armed {
		p.mu.Unlock()
		return
	}
	p.timer = nil
	now := p.clock.Now()
	c := &p.ch[0]
	c.sync(now)
	pulse := false
	if now >= p.deadline {
		pulse = true
		p.stats.IRQs++
		p.stats.Coalesced += p.skipped
		if c.state == stCounting && c.periodic() {
			p.stats.Coalesced += durToTicks(now-p.deadline) / c.period()
		}
	}
	p.arm(now)
	p.mu.Unlock()
	if pulse {
		irqline.Pulse(p.irq)
	}
}

// minIRQTicks is MIN_IRQ_PERIOD in input clocks.
var minIRQTicks = durToTicks(MIN_IRQ_PERIOD)

// durToTicks converts a non-negative duration to whole input clocks.
func durToTicks(d time.Duration) uint64 {
	return vclock.Ticks(d, PIT_HZ)
}

// ticksToDur returns the first duration at which durToTicks reaches t,
// saturating at the largest duration.
func ticksToDur(t uint64) time.Duration {
	return vclock.TicksDuration(t, PIT_HZ)
}

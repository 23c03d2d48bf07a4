package pit

import "time"

// chState is where a counter is in its cycle.
type chState uint8

const (
	// stIdle: a control word was written and no count loaded since.
	stIdle chState = iota
	// stWaitTrigger: modes 1 and 5 have a count and wait for a rising
	// edge of GATE.
	stWaitTrigger
	// stCounting: the counting element runs; elapsed clocks are
	// computed from epoch.
	stCounting
	// stPaused: GATE is low in modes 0, 2, 3 or 4; elapsed clocks are
	// frozen in held.
	stPaused
)

// channel is one counter of the 8254. All methods are called with the
// PIT's mutex held.
type channel struct {
	ctrl  byte // bits 5-0 of the last control word: RW, M, BCD
	mode  uint8
	state chState
	gate  bool

	cr        uint16 // count register as written (BCD-coded in BCD mode)
	n         uint64 // count loaded into the counting element, 1..65536
	nullCount bool   // cr holds a count not yet loaded into the element
	switchAt  uint64 // modes 2, 3: elapsed clocks at which cr is loaded

	epoch     time.Duration // clock time at which the element was loaded
	base      uint64        // clocks since epoch that belong to earlier cycles
	held      uint64        // elapsed clocks while stPaused
	idleCount uint64        // count shown while stIdle or stWaitTrigger

	wrMSB         bool   // RW_LSB_MSB: the LSB was written, the MSB is next
	rdMSB         bool   // RW_LSB_MSB: the next unlatched read is the MSB
	latchN        uint8  // bytes of the latched count still to be read
	latched       uint16 // the latched count, coded as read
	statusLatched bool
	status        byte
}

func (c *channel) rw() byte  { return (c.ctrl >> CW_RW_SHIFT) & 3 }
func (c *channel) bcd() bool { return c.ctrl&CW_BCD != 0 }
func (c *channel) periodic() bool {
	return c.mode == MODE_RATE_GENERATOR || c.mode == MODE_SQUARE_WAVE
}

// modulus is the number of distinct counter values.
func (c *channel) modulus() uint64 {
	if c.bcd() {
		return 10000
	}
	return 65536
}

// period is the length of a mode 2 or 3 cycle in input clocks.
func (c *channel) period() uint64 {
	if c.n < 2 {
		return 2
	}
	return c.n
}

// decode turns a written count into input clocks: 0 is the maximum count.
func (c *channel) decode(v uint16) uint64 {
	if !c.bcd() {
		if v == 0 {
			return 65536
		}
		return uint64(v)
	}
	n := uint64(0)
	for shift := 12; shift >= 0; shift -= 4 {
		d := uint64(v>>shift) & 0xf
		n = n*10 + min(d, 9)
	}
	if n == 0 {
		return 10000
	}
	return n
}

// encode turns a counter value into what a read returns.
func (c *channel) encode(v uint64) uint16 {
	if !c.bcd() {
		return uint16(v)
	}
	v %= 10000
	return uint16(v/1000<<12 | v/100%10<<8 | v/10%10<<4 | v%10)
}

// elapsed returns the input clocks counted since the element was loaded.
func (c *channel) elapsed(now time.Duration) uint64 {
	switch c.state {
	case stCounting:
		if now <= c.epoch {
			return 0
		}
		t := durToTicks(now - c.epoch)
		if t < c.base {
			return 0
		}
		return t - c.base
	case stPaused:
		return c.held
	}
	return 0
}

// program applies a control word (bits 5-0): all control logic resets
// and the counter waits for a count.
func (c *channel) program(cw byte, now time.Duration) {
	c.idleCount = c.count(now)
	c.ctrl = cw
	m := (cw >> CW_MODE_SHIFT) & 7
	if m >= 6 {
		m -= 4
	}
	c.mode = m
	c.state = stIdle
	c.nullCount = true
	c.wrMSB, c.rdMSB = false, false
	c.latchN = 0
	c.statusLatched = false
}

// sync loads a count written during a mode 2 or 3 cycle once that cycle
// has ended.
func (c *channel) sync(now time.Duration) {
	if c.state != stCounting || !c.nullCount || !c.periodic() {
		return
	}
	if c.elapsed(now) < c.switchAt {
		return
	}
	c.base += c.switchAt // exact, unlike moving epoch by a rounded duration
	c.n = c.decode(c.cr)
	c.nullCount = false
}

// start loads the count register into the counting element.
func (c *channel) start(now time.Duration) {
	c.n = c.decode(c.cr)
	c.nullCount = false
	c.epoch, c.base = now, 0
	c.held = 0
	if c.gate || c.mode == MODE_HW_RETRIGGERABLE_ONE_SHOT || c.mode == MODE_HW_TRIGGERED_STROBE {
		c.state = stCounting
	} else {
		c.state = stPaused
	}
}

// load acts on a completely written count.
func (c *channel) load(now time.Duration) {
	c.nullCount = true
	switch c.mode {
	case MODE_INTERRUPT_ON_TERMINAL_COUNT, MODE_SW_TRIGGERED_STROBE:
		c.start(now)
	case MODE_HW_RETRIGGERABLE_ONE_SHOT, MODE_HW_TRIGGERED_STROBE:
		// Loaded by the next trigger.
		if c.state == stIdle {
			c.state = stWaitTrigger
		}
	default: // modes 2 and 3
		switch c.state {
		case stIdle:
			c.start(now)
		case stCounting:
			p := c.period()
			c.switchAt = (c.elapsed(now)/p + 1) * p
		}
		// stPaused: loaded by the rising edge of GATE.
	}
}

// writeByte is an OUT to the counter's port.
func (c *channel) writeByte(v byte, now time.Duration) {
	switch c.rw() {
	case RW_LSB:
		c.cr = uint16(v)
	case RW_MSB:
		c.cr = uint16(v) << 8
	default:
		if !c.wrMSB {
			c.cr = c.cr&0xff00 | uint16(v)
			c.wrMSB = true
			// Mode 0: writing the first byte stops counting
			// and drives OUT low.
			if c.mode == MODE_INTERRUPT_ON_TERMINAL_COUNT && c.state != stIdle {
				c.idleCount = c.count(now)
				c.state = stIdle
			}
			return
		}
		c.cr = c.cr&0x00ff | uint16(v)<<8
		c.wrMSB = false
	}
	c.load(now)
}

// readByte is an IN from the counter's port: latched status, then latched
// count, then the live count.
func (c *channel) readByte(now time.Duration) byte {
	if c.statusLatched {
		c.statusLatched = false
		return c.status
	}
	if c.latchN > 0 {
		v := c.latched
		switch c.rw() {
		case RW_LSB:
			c.latchN = 0
			return byte(v)
		case RW_MSB:
			c.latchN = 0
			return byte(v >> 8)
		}
		if c.latchN == 2 {
			c.latchN = 1
			return byte(v)
		}
		c.latchN = 0
		return byte(v >> 8)
	}
	v := c.encode(c.count(now))
	switch c.rw() {
	case RW_LSB:
		return byte(v)
	case RW_MSB:
		return byte(v >> 8)
	}
	c.rdMSB = !c.rdMSB
	if c.rdMSB {
		return byte(v)
	}
	return byte(v >> 8)
}

// latchCount is the counter latch command; a second latch before the
// first is read is ignored.
func (c *channel) latchCount(now time.Duration) {
	if c.latchN != 0 {
		return
	}
	c.latched = c.encode(c.count(now))
	if c.rw() == RW_LSB_MSB {
		c.latchN = 2
	} else {
		c.latchN = 1
	}
}

// statusByte is what the read-back command latches.
func (c *channel) statusByte(now time.Duration) byte {
	s := c.ctrl & 0x3f
	if c.out(now) {
		s |= STATUS_OUTPUT
	}
	if c.nullCount {
		s |= STATUS_NULL_COUNT
	}
	return s
}

// count returns the counting element's value, 0..modulus-1.
func (c *channel) count(now time.Duration) uint64 {
	m := c.modulus()
	if c.state == stIdle || c.state == stWaitTrigger {
		return c.idleCount % m
	}
	e := c.elapsed(now)
	switch c.mode {
	case MODE_RATE_GENERATOR:
		p := c.period()
		return (p - e%p) % m
	case MODE_SQUARE_WAVE:
		// Decrements by two, reloading at each half-cycle.
		p := c.period()
		ph, h := e%p, (p+1)/2
		if ph >= h {
			ph -= h
		}
		return (p - 2*ph) % m
	}
	return (c.n%m + m - e%m) % m
}

// out returns the level of the counter's OUT pin.
func (c *channel) out(now time.Duration) bool {
	switch c.state {
	case stIdle:
		return c.mode != MODE_INTERRUPT_ON_TERMINAL_COUNT
	case stWaitTrigger:
		return true
	}
	e := c.elapsed(now)
	switch c.mode {
	case MODE_INTERRUPT_ON_TERMINAL_COUNT, MODE_HW_RETRIGGERABLE_ONE_SHOT:
		return e >= c.n
	case MODE_RATE_GENERATOR:
		p := c.period()
		return c.state == stPaused || e%p != p-1
	case MODE_SQUARE_WAVE:
		p := c.period()
		return c.state == stPaused || e%p < (p+1)/2
	}
	return e != c.n // strobe modes: low for one clock at terminal count
}

// setGate drives the counter's GATE input.
func (c *channel) setGate(g bool, now time.Duration) {
	if g == c.gate {
		return
	}
	c.gate = g
	switch c.mode {
	case MODE_INTERRUPT_ON_TERMINAL_COUNT, MODE_SW_TRIGGERED_STROBE:
		// GATE low suspends counting, high resumes it.
		if !g && c.state == stCounting {
			c.held, c.state = c.elapsed(now), stPaused
		} else if g && c.state == stPaused {
			c.epoch, c.base, c.state = now-ticksToDur(c.held), 0, stCounting
		}
	case MODE_RATE_GENERATOR, MODE_SQUARE_WAVE:
		// GATE low stops counting and forces OUT high; the rising
		// edge reloads the count.
		if !g && c.state == stCounting {
			c.held, c.state = c.elapsed(now), stPaused
		} else if g && c.state == stPaused {
			c.start(now)
		}
	default:
		// Modes 1 and 5: the rising edge (re)triggers.
		if g && c.state != stIdle {
			c.start(now)
		}
	}
}

// nextEdge returns the elapsed-clock value of OUT's next rising edge (the
// next IRQ0), and for periodic modes how many period boundaries before it
// are skipped to respect minTicks between interrupts.
func (c *channel) nextEdge(now time.Duration, minTicks uint64) (t, skipped uint64, ok bool) {
	if c.state != stCounting {
		return 0, 0, false
	}
	e := c.elapsed(now)
	if !c.periodic() {
		if e < c.n {
			return c.n, 0, true
		}
		return 0, 0, false
	}
	if c.nullCount && e < c.switchAt {
		return c.switchAt, 0, true // the end of the cycle loads the new count
	}
	p := c.period()
	t = (e/p + 1) * p
	if p < minTicks {
		skipped = (minTicks+p-1)/p - 1
		t += skipped * p
	}
	return t, skipped, true
}

// Package pic models the PC's pair of Intel 8259A programmable interrupt
// controllers: a master at ports 20h-21h and a slave at A0h-A1h whose INT
// output drives the master's IR2, plus the edge/level control registers
// (ELCR) at 4D0h-4D1h of PIIX-style chipsets.
//
// It implements the initialization sequence (ICW1-ICW4) and the operation
// commands (OCW1 mask, OCW2 end-of-interrupt and rotation, OCW3 register
// read select, poll and special mask mode), automatic EOI, special fully
// nested mode on the master, edge- and level-triggered inputs, and the
// spurious IRQ 7 vector of an interrupt acknowledge that finds no request.
//
// Devices drive the inputs through Line; the vCPU asks Pending and, when it
// takes the interrupt, runs the INTA cycle with Acknowledge. The callback
// given to New hears when the INTR output may have become asserted, so the
// hypervisor can kick a halted vCPU.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package pic

import (
	"fmt"
	"sync"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/hv/bus"
)

// Port bases of the PC/AT (IBM PC/AT Technical Reference, "System I/O
// Address Map") and of the ELCR (Intel 82371AB PIIX4 datasheet, "ELCR1 and
// ELCR2 — Edge/Level Control Registers").
const (
	MASTER_BASE = 0x20
	SLAVE_BASE  = 0xa0
	ELCR_BASE   = 0x4d0
	// SIZE is the number of ports each 8259A decodes (A0 = 0 and 1).
	SIZE = 2
	// ELCR_SIZE is the number of ports of the ELCR pair.
	ELCR_SIZE = 2
	// NUM_IRQS is the number of inputs of the pair.
	NUM_IRQS = 16
	// CASCADE_IRQ is the master input the slave's INT drives.
	CASCADE_IRQ = 2
	// SPURIOUS_IRQ is the level whose vector an 8259A gives when an
	// acknowledge finds no request (8259A datasheet, "Interrupt
	// Sequence"; its in-service bit is not set).
	SPURIOUS_IRQ = 7
)

// Initialization Command Word 1, written at A0 = 0 with D4 = 1 (8259A
// datasheet, "Initialization Command Words").
const (
	ICW1_IC4  = 1 << 0 // ICW4 needed
	ICW1_SNGL = 1 << 1 // single 8259A, no ICW3
	ICW1_ADI  = 1 << 2 // call address interval (8080 mode only)
	ICW1_LTIM = 1 << 3 // level-triggered mode for all inputs
	ICW1_INIT = 1 << 4 // marks ICW1
)

// Initialization Command Word 4 (8259A datasheet, "ICW4").
const (
	ICW4_UPM  = 1 << 0 // 8086/8088 mode
	ICW4_AEOI = 1 << 1 // automatic end of interrupt
	ICW4_MS   = 1 << 2 // buffered mode master/slave
	ICW4_BUF  = 1 << 3 // buffered mode
	ICW4_SFNM = 1 << 4 // special fully nested mode
)

// Operation Command Word 2, written at A0 = 0 with D4 = D3 = 0 (8259A
// datasheet, "Operation Command Words"). Bits 7-5 (R, SL, EOI) select the
// command, bits 2-0 the level for the specific ones.
const (
	OCW2_LEVEL_MASK          = 0x07
	OCW2_CMD_MASK            = 0xe0
	OCW2_ROTATE_AEOI_CLEAR   = 0x00 // R SL EOI = 000
	OCW2_NON_SPECIFIC_EOI    = 0x20 // 001
	OCW2_NOP                 = 0x40 // 010
	OCW2_SPECIFIC_EOI        = 0x60 // 011
	OCW2_ROTATE_AEOI_SET     = 0x80 // 100
	OCW2_ROTATE_NON_SPECIFIC = 0xa0 // 101
	OCW2_SET_PRIORITY        = 0xc0 // 110
	OCW2_ROTATE_SPECIFIC     = 0xe0 // 111
)

// Operation Command Word 3, written at A0 = 0 with D4 = 0, D3 = 1.
const (
	OCW3_RIS    = 1 << 0 // read ISR (with RR) instead of IRR
	OCW3_RR     = 1 << 1 // read register command
	OCW3_P      = 1 << 2 // poll command
	OCW3_SELECT = 1 << 3 // marks OCW3
	OCW3_SMM    = 1 << 5 // special mask mode (with ESMM)
	OCW3_ESMM   = 1 << 6 // enable special mask mode change
)

// POLL_INT is set in the poll word when a request was found; bits 2-0 are
// then its level (8259A datasheet, "The Poll Command").
const POLL_INT = 1 << 7

// ELCR bits that must stay 0 (PIIX4 datasheet, ELCR1/ELCR2): IRQ 0, 1
// and 2 (timer, keyboard, cascade) and IRQ 8 and 13 (RTC, FPU) are
// edge-triggered only.
const (
	ELCR1_MASK = 0xf8
	ELCR2_MASK = 0xde
)

// PIC is the master/slave pair. Its zero value is not usable; use New. All
// methods are safe for concurrent use.
type PIC struct {
	mu     sync.Mutex
	chips  [2]chip // master, slave
	out    bool    // INTR as last computed
	notify func()

	lines  [NUM_IRQS]line
	ports  [2]chipPort
	elcrIO elcrPort
}

// New returns a pair in its power-on state (not initialised: INTR stays low
// until the guest programs the master). notify, if not nil, is called
// whenever INTR may have become asserted; it is called without the PIC's
// lock held, possibly from a device's goroutine while that device holds
// its own lock, so it should only kick the vCPU.
func New(notify func()) *PIC {
	p := &PIC{notify: notify}
	p.chips[0].master = true
	for i := range p.lines {
		p.lines[i] = line{p: p, irq: i}
	}
	p.ports[0] = chipPort{p: p, c: &p.chips[0]}
	p.ports[1] = chipPort{p: p, c: &p.chips[1]}
	p.elcrIO = elcrPort{p: p}
	for i := range p.chips {
		p.chips[i].powerOn()
	}
	return p
}

// Reset returns both chips and the ELCR to their power-on state. The input
// levels devices drive are kept.
func (p *PIC) Reset() {
	p.mu.Lock()
	for i := range p.chips {
		p.chips[i].powerOn()
	}
	p.update()
	p.mu.Unlock()
}

// Line returns input irq (0-15) of the pair; IRQs 8-15 are the slave's.
// IRQ 2 is the cascade, driven by the slave: its Line is connected to
// nothing (on the PC, the ISA bus's IRQ2 pin reaches IRQ 9). Line panics
// for numbers outside 0-15, a wiring error of the host.
func (p *PIC) Line(irq int) irqline.Line {
	if irq < 0 || irq >= NUM_IRQS {
		panic(fmt.Sprintf("pic: no IRQ %d; the pair has inputs 0-15", irq))
	}
	if irq == CASCADE_IRQ {
		return irqline.None{}
	}
	return &p.lines[irq]
}

// Master returns the master's ports, to register at MASTER_BASE with size
// SIZE.
func (p *PIC) Master() bus.Device { return &p.ports[0] }

// Slave returns the slave's ports, to register at SLAVE_BASE with size
// SIZE.
func (p *PIC) Slave() bus.Device { return &p.ports[1] }

// ELCR returns the edge/level control registers, to register at ELCR_BASE
// with size ELCR_SIZE.
func (p *PIC) ELCR() bus.Device { return &p.elcrIO }

// Pending reports whether INTR is asserted: the master is initialised and
// has a request that its masks and in-service levels let through.
func (p *PIC) Pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.chips[0].request()
	return ok
}

// Acknowledge runs the interrupt acknowledge cycle of a vCPU taking the
// interrupt and returns the vector to deliver. The highest-priority request
// goes in service (or not, with automatic EOI); a request on the cascade
// input is passed to the slave, which supplies the vector. Call it when
// Pending has reported true: if the request has gone since (a
// level-triggered line dropped, a mask changed), the answer is the master's
// spurious IRQ 7 vector, with nothing put in service, as on hardware. The
// master's cascade input follows the slave's INT as a level, so a slave
// request withdrawn before the acknowledge withdraws the cascade request
// too and also yields IRQ 7; the slave's spurious IRQ 15 vector, which
// edge-latched hardware gives in that case, is kept only as a defence.
//
// ok is false, and nothing changes, only while the master is not
// initialised (or is between ICW1 and its last ICW) and so has no vectors.
func (p *PIC) Acknowledge() (vector uint8, ok bool) {
	p.mu.Lock()
	m, s := &p.chips[0], &p.chips[1]
	if !m.operational() {
		p.mu.Unlock()
		return 0, false
	}
	l, ok := m.request()
	switch {
	case !ok:
		vector = m.base | SPURIOUS_IRQ
	case m.isCascade(l):
		m.ack(l)
		if sl, ok := s.request(); ok {
			s.ack(sl)
			vector = s.base | sl
		} else {
			vector = s.base | SPURIOUS_IRQ
		}
	default:
		m.ack(l)
		vector = m.base | l
	}
	// INT drops during the acknowledge sequence: a request still
	// pending afterwards asserts it anew.
	p.out = false
	rising := p.update()
	p.mu.Unlock()
	p.kick(rising)
	return vector, true
}

func (p *PIC) kick(rising bool) {
	if rising && p.notify != nil {
		p.notify()
	}
}

// update propagates the slave's INT to the master's IR2 and recomputes
// INTR; it reports whether INTR rose.
func (p *PIC) update() bool {
	m, s := &p.chips[0], &p.chips[1]
	if _, sint := s.request(); sint {
		m.level |= 1 << CASCADE_IRQ
	} else {
		m.level &^= 1 << CASCADE_IRQ
	}
	m.syncLevels()
	_, out := m.request()
	rising := out && !p.out
	p.out = out
	return rising
}

func (p *PIC) setLevel(irq int, high bool) {
	p.mu.Lock()
	p.chips[irq>>3].setInput(uint8(irq&7), high)
	rising := p.update()
	p.mu.Unlock()
	p.kick(rising)
}

// line is one input of the pair.
type line struct {
	p   *PIC
	irq int
}

// SetLevel implements irqline.Line.
func (l *line) SetLevel(high bool) { l.p.setLevel(l.irq, high) }

// chipPort is an 8259A's pair of ports on the bus.
type chipPort struct {
	p *PIC
	c *chip
}

// Read implements bus.Device: offset 0 reads IRR, ISR or the poll word as
// OCW3 selected, offset 1 reads IMR. Each byte of a wider access reads the
// next port.
func (cp *chipPort) Read(offset uint64, data []byte) {
	cp.p.mu.Lock()
	for i := range data {
		data[i] = cp.c.read(offset + uint64(i))
	}
	rising := cp.p.update()
	cp.p.mu.Unlock()
	cp.p.kick(rising)
}

// Write implements bus.Device: offset 0 takes ICW1, OCW2 and OCW3, offset
// 1 takes ICW2-ICW4 during initialisation and OCW1 (IMR) otherwise.
func (cp *chipPort) Write(offset uint64, data []byte) {
	cp.p.mu.Lock()
	for i, v := range data {
		cp.c.write(offset+uint64(i), v)
	}
	rising := cp.p.update()
	cp.p.mu.Unlock()
	cp.p.kick(rising)
}

// elcrPort is the ELCR pair on the bus.
type elcrPort struct{ p *PIC }

// Read implements bus.Device: offset 0 is ELCR1 (IRQ 0-7), offset 1 ELCR2
// (IRQ 8-15); a set bit makes the input level-triggered.
func (e *elcrPort) Read(offset uint64, data []byte) {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	for i := range data {
		data[i] = 0xff
		if o := offset + uint64(i); o < ELCR_SIZE {
			data[i] = e.p.chips[o].elcr
		}
	}
}

// Write implements bus.Device. Reserved bits stay 0.
func (e *elcrPort) Write(offset uint64, data []byte) {
	e.p.mu.Lock()
	for i, v := range data {
		switch offset + uint64(i) {
		case 0:
			e.p.chips[0].elcr = v & ELCR1_MASK
		case 1:
			e.p.chips[1].elcr = v & ELCR2_MASK
		}
	}
	for i := range e.p.chips {
		e.p.chips[i].syncLevels()
	}
	rising := e.p.update()
	e.p.mu.Unlock()
	e.p.kick(rising)
}

// chip is one 8259A.
type chip struct {
	master bool

	irr, isr, imr uint8
	level         uint8 // input pins as last driven
	elcr          uint8

	icw1, icw3, icw4 uint8
	base             uint8 // vector of IR0 (ICW2 T7-T3)
	initStep         int   // next ICW expected at A0 = 1 (2-4), 0 when none
	ready            bool  // initialisation completed at least once

	lowest     uint8 // level with the lowest priority (7 after ICW1)
	readISR    bool  // OCW3 RR/RIS: offset 0 reads ISR
	poll       bool  // OCW3 P: the next offset 0 read is a poll
	smm        bool  // special mask mode
	rotateAEOI bool  // rotate in automatic EOI mode
}

func (c *chip) powerOn() {
	master, level := c.master, c.level
	*c = chip{master: master, level: level, lowest: 7}
}

// levelMask returns the inputs that are level-sensitive: all of them with
// ICW1 LTIM, those selected in the ELCR otherwise, and on the master the
// cascade input, which follows the slave's INT output.
func (c *chip) levelMask() uint8 {
	m := c.elcr
	if c.icw1&ICW1_LTIM != 0 {
		m = 0xff
	}
	if c.master {
		m |= 1 << CASCADE_IRQ
	}
	return m
}

// syncLevels makes IRR follow the level-sensitive inputs.
func (c *chip) syncLevels() {
	lm := c.levelMask()
	c.irr = c.irr&^lm | c.level&lm
}

// setInput drives input l. Edge-sensitive inputs latch a request in IRR
// on a rising edge; it stays until acknowledged or ICW1.
func (c *chip) setInput(l uint8, high bool) {
	bit := uint8(1) << l
	rose := high && c.level&bit == 0
	if high {
		c.level |= bit
	} else {
		c.level &^= bit
	}
	if c.levelMask()&bit != 0 {
		c.syncLevels()
	} else if rose {
		c.irr |= bit
	}
}

// operational reports whether the chip has vectors: it has been through
// its ICWs and is not in the middle of them again.
func (c *chip) operational() bool { return c.ready && c.initStep == 0 }

// priority ranks level l: 0 is the highest.
func (c *chip) priority(l uint8) uint8 { return (l - c.lowest - 1) & 7 }

// highest returns the highest-priority level set in bits.
func (c *chip) highest(bits uint8) (uint8, bool) {
	for i := uint8(1); i <= 8; i++ {
		if l := (c.lowest + i) & 7; bits&(1<<l) != 0 {
			return l, true
		}
	}
	return 0, false
}

// isCascade reports whether the master treats level l as a slave's
// request: ICW3 says a slave is there and it is the input one is wired
// to. (Other ICW3 bits name slaves this PC does not have.)
func (c *chip) isCascade(l uint8) bool {
	return c.master && c.icw1&ICW1_SNGL == 0 && l == CASCADE_IRQ && c.icw3&(1<<CASCADE_IRQ) != 0
}

// request returns the level the chip would have the CPU acknowledge: the
// highest-priority unmasked request, if no level of higher priority is in
// service. In special mask mode, masked in-service levels do not block;
// in special fully nested mode, the master lets a cascade request through
// while the same cascade level is in service.
func (c *chip) request() (uint8, bool) {
	if !c.operational() {
		return 0, false
	}
	l, ok := c.highest(c.irr &^ c.imr)
	if !ok {
		return 0, false
	}
	blocking := c.isr
	if c.smm {
		blocking &^= c.imr
	}
	if s, ok := c.highest(blocking); ok {
		switch {
		case c.priority(l) < c.priority(s):
		case l == s && c.icw4&ICW4_SFNM != 0 && c.isCascade(l):
		default:
			return 0, false
		}
	}
	return l, true
}

// ack acknowledges level l: an edge-triggered request is consumed, and
// the level goes in service unless automatic EOI is on.
func (c *chip) ack(l uint8) {
	bit := uint8(1) << l
	if c.levelMask()&bit == 0 {
		c.irr &^= bit
	}
	if c.icw4&ICW4_AEOI != 0 {
		if c.rotateAEOI {
			c.lowest = l
		}
		return
	}
	c.isr |= bit
}

func (c *chip) read(off uint64) uint8 {
	switch off {
	case 0:
		if c.poll {
			c.poll = false
			l, ok := c.request()
			if !ok {
				return 0
			}
			c.ack(l)
			return POLL_INT | l
		}
		if c.readISR {
			return c.isr
		}
		return c.irr
	case 1:
		return c.imr
	}
	return 0xff
}

func (c *chip) write(off uint64, v uint8) {
	switch off {
	case 0:
		switch {
		case v&ICW1_INIT != 0:
			c.writeICW1(v)
		case v&OCW3_SELECT != 0:
			c.writeOCW3(v)
		default:
			c.writeOCW2(v)
		}
	case 1:
		switch c.initStep {
		case 2:
			c.base = v &^ 7
			c.nextICW(2)
		case 3:
			c.icw3 = v
			c.nextICW(3)
		case 4:
			c.icw4 = v
			c.nextICW(4)
		default:
			c.imr = v
		}
	}
}

// writeICW1 starts initialisation (8259A datasheet, "Initialization
// Command Words"): the edge sense circuit is reset (an edge-triggered
// input must go low and high again to request), IMR and ISR are cleared,
// IR7 gets the lowest priority, special mask mode is cleared and reads
// return IRR; without IC4 the ICW4 functions are all off.
func (c *chip) writeICW1(v uint8) {
	c.icw1 = v
	c.icw3, c.icw4 = 0, 0
	c.imr, c.isr = 0, 0
	c.irr = c.level & c.levelMask()
	c.lowest = 7
	c.readISR, c.poll, c.smm, c.rotateAEOI = false, false, false, false
	c.initStep = 2
}

// nextICW moves past ICW n to the next one the ICW1 flags ask for.
func (c *chip) nextICW(n int) {
	if n < 3 && c.icw1&ICW1_SNGL == 0 {
		c.initStep = 3
		return
	}
	if n < 4 && c.icw1&ICW1_IC4 != 0 {
		c.initStep = 4
		return
	}
	c.initStep = 0
	c.ready = true
}

func (c *chip) writeOCW2(v uint8) {
	l := v & OCW2_LEVEL_MASK
	switch v & OCW2_CMD_MASK {
	case OCW2_NON_SPECIFIC_EOI, OCW2_ROTATE_NON_SPECIFIC:
		if s, ok := c.highest(c.isr); ok {
			c.isr &^= 1 << s
			if v&OCW2_CMD_MASK == OCW2_ROTATE_NON_SPECIFIC {
				c.lowest = s
			}
		}
	case OCW2_SPECIFIC_EOI:
		c.isr &^= 1 << l
	case OCW2_ROTATE_SPECIFIC:
		c.isr &^= 1 << l
		c.lowest = l
	case OCW2_SET_PRIORITY:
		c.lowest = l
	case OCW2_ROTATE_AEOI_SET:
		c.rotateAEOI = true
	case OCW2_ROTATE_AEOI_CLEAR:
		c.rotateAEOI = false
	}
}

func (c *chip) writeOCW3(v uint8) {
	if v&OCW3_ESMM != 0 {
		c.smm = v&OCW3_SMM != 0
	}
	if v&OCW3_RR != 0 {
		c.readISR = v&OCW3_RIS != 0
	}
	c.poll = v&OCW3_P != 0
}

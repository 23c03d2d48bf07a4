// Package uart models a National Semiconductor PC16550D UART (the "16550A"
// of PC serial ports) as a bus.Device of SIZE ports: receiver and
// transmitter FIFOs of FIFO_SIZE bytes, FIFO control with receiver trigger
// levels, the four prioritised interrupt sources, the divisor latch, modem
// control and status with the loopback diagnostic mode, and the scratch
// register. It is enough for Linux's 8250 driver to detect a 16550A and
// run interrupt-driven I/O.
//
// Transmission takes no time: a byte written to the transmitter holding
// register goes straight to the io.Writer given to New, so the transmitter
// FIFO is always empty and LSR always reports THRE and TEMT. The line
// settings in LCR and the divisor latch are kept but have no effect: bytes
// pass whole, at no particular rate, whatever word length the guest chose
// (after reset LCR selects 5-bit words, and guests that never program it
// should still print).
//
// Host input arrives through Input, which fills the receiver FIFO and
// keeps what does not fit in a backlog of BACKLOG_SIZE bytes that refills
// the FIFO as the guest reads it, so pasted text is not lost. With no
// clock, the character timeout of FIFO mode is taken as already elapsed
// whenever the receiver FIFO holds fewer bytes than the trigger level.
//
// The interrupt output drives an irqline.Line with level semantics: the
// line is high while an enabled interrupt is pending, gated by MCR OUT2 as
// on the PC, where OUT2 enables the IRQ driver; in loopback mode OUT2 is
// disconnected from its pin, so the line stays low (interrupts are still
// reported in IIR).
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package uart

import (
	"io"
	"sync"

	"github.com/keel-hv/keel/devices/irqline"
)

// Register offsets from the UART's base port (PC16550D datasheet, Table II
// "Summary of Registers"). Offsets 0 and 1 address the divisor latch when
// LCR_DLAB is set.
const (
	RBR = 0 // Receiver Buffer Register (read, DLAB=0)
	THR = 0 // Transmitter Holding Register (write, DLAB=0)
	DLL = 0 // Divisor Latch, least significant byte (DLAB=1)
	IER = 1 // Interrupt Enable Register (DLAB=0)
	DLM = 1 // Divisor Latch, most significant byte (DLAB=1)
	IIR = 2 // Interrupt Identification Register (read)
	FCR = 2 // FIFO Control Register (write)
	LCR = 3 // Line Control Register
	MCR = 4 // MODEM Control Register
	LSR = 5 // Line Status Register
	MSR = 6 // MODEM Status Register
	SCR = 7 // Scratch Register

	// SIZE is the number of ports the UART decodes.
	SIZE = 8
)

// Interrupt Enable Register bits (PC16550D, "Interrupt Enable Register").
const (
	IER_ERBFI = 1 << 0 // Enable Received Data Available Interrupt (and timeout)
	IER_ETBEI = 1 << 1 // Enable Transmitter Holding Register Empty Interrupt
	IER_ELSI  = 1 << 2 // Enable Receiver Line Status Interrupt
	IER_EDSSI = 1 << 3 // Enable MODEM Status Interrupt
	IER_MASK  = 0x0f   // bits 4-7 are always 0
)

// Interrupt Identification Register values (PC16550D, Table IV "Interrupt
// Control Functions"), listed from highest to lowest priority.
const (
	IIR_NO_INT       = 0x01 // bit 0 is 0 while an interrupt is pending
	IIR_ID_MASK      = 0x0e // interrupt ID bits 1-3
	IIR_RLS          = 0x06 // receiver line status (OE, PE, FE, BI)
	IIR_RDA          = 0x04 // received data available / trigger level reached
	IIR_CTI          = 0x0c // character timeout indication (FIFO mode)
	IIR_THRE         = 0x02 // transmitter holding register empty
	IIR_MSI          = 0x00 // MODEM status
	IIR_FIFO_ENABLED = 0xc0 // bits 6-7: set when FCR_FIFO_ENABLE is set
)

// FIFO Control Register bits (PC16550D, "FIFO Control Register").
const (
	FCR_FIFO_ENABLE   = 1 << 0 // enable both FIFOs; changing it clears them
	FCR_RCVR_RESET    = 1 << 1 // clear the receiver FIFO (self-clearing)
	FCR_XMIT_RESET    = 1 << 2 // clear the transmitter FIFO (self-clearing)
	FCR_DMA_MODE      = 1 << 3 // RXRDY/TXRDY pin mode; no effect here
	FCR_TRIGGER_MASK  = 0xc0   // receiver trigger level, bits 6-7
	FCR_TRIGGER_1     = 0x00
	FCR_TRIGGER_4     = 0x40
	FCR_TRIGGER_8     = 0x80
	FCR_TRIGGER_14    = 0xc0
	fcrTriggerShift   = 6
	fcrStoredBitsMask = FCR_FIFO_ENABLE | FCR_DMA_MODE | FCR_TRIGGER_MASK
)

// Line Control Register bits (PC16550D, "Line Control Register").
const (
	LCR_WLS_MASK     = 0x03   // word length select: 5 + WLS bits
	LCR_STB          = 1 << 2 // number of stop bits
	LCR_PEN          = 1 << 3 // parity enable
	LCR_EPS          = 1 << 4 // even parity select
	LCR_STICK_PARITY = 1 << 5
	LCR_SET_BREAK    = 1 << 6
	LCR_DLAB         = 1 << 7 // divisor latch access bit
)

// MODEM Control Register bits (PC16550D, "MODEM Control Register").
const (
	MCR_DTR  = 1 << 0
	MCR_RTS  = 1 << 1
	MCR_OUT1 = 1 << 2
	MCR_OUT2 = 1 << 3 // on the PC, enables the IRQ driver
	MCR_LOOP = 1 << 4 // local loopback diagnostic mode
	MCR_MASK = 0x1f   // bits 5-7 are always 0
)

// Line Status Register bits (PC16550D, "Line Status Register").
const (
	LSR_DR              = 1 << 0 // data ready
	LSR_OE              = 1 << 1 // overrun error
	LSR_PE              = 1 << 2 // parity error
	LSR_FE              = 1 << 3 // framing error
	LSR_BI              = 1 << 4 // break interrupt
	LSR_THRE            = 1 << 5 // transmitter holding register (FIFO) empty
	LSR_TEMT            = 1 << 6 // transmitter empty
	LSR_RCVR_FIFO_ERROR = 1 << 7 // PE, FE or BI somewhere in the FIFO
	lsrErrorBits        = LSR_OE | LSR_PE | LSR_FE | LSR_BI
)

// MODEM Status Register bits (PC16550D, "MODEM Status Register").
const (
	MSR_DCTS       = 1 << 0 // delta clear to send
	MSR_DDSR       = 1 << 1 // delta data set ready
	MSR_TERI       = 1 << 2 // trailing edge ring indicator
	MSR_DDCD       = 1 << 3 // delta data carrier detect
	MSR_CTS        = 1 << 4
	MSR_DSR        = 1 << 5
	MSR_RI         = 1 << 6
	MSR_DCD        = 1 << 7
	MSR_DELTA_MASK = 0x0f
)

const (
	// FIFO_SIZE is the depth of the receiver and transmitter FIFOs
	// (PC16550D, "FIFO Control Register").
	FIFO_SIZE = 16
	// BACKLOG_SIZE bounds the host input Input keeps beyond the receiver
	// FIFO.
	BACKLOG_SIZE = 4096
	// MODEM_INPUTS is what MSR reports outside loopback mode: the port
	// behaves as if a terminal asserting CTS, DSR and DCD were attached.
	MODEM_INPUTS = MSR_CTS | MSR_DSR | MSR_DCD
)

// UART is one 16550A. Its zero value is not usable; use New. All methods
// are safe for concurrent use.
type UART struct {
	mu  sync.Mutex
	out io.Writer
	irq irqline.Line

	ier, lcr, mcr, scr, dll, dlm uint8
	fcr                          uint8 // fcrStoredBitsMask bits of the last FCR write
	lsrErr                       uint8 // latched OE, PE, FE, BI; cleared by reading LSR
	msrDelta                     uint8 // MSR bits 0-3; cleared by reading MSR
	modemIn                      uint8 // MSR bits 4-7
	threPending                  bool  // THRE interrupt latch
	rbr                          uint8 // last byte read from the receiver

	rx     [FIFO_SIZE]byte
	rxHead int
	rxLen  int

	backlog [BACKLOG_SIZE]byte
	blHead  int
	blLen   int

	level bool    // level last driven on irq
	txBuf [1]byte // so that transmitting does not allocate
}

// New returns a UART in its reset state that writes transmitted bytes to
// out and drives irq. A nil out discards output; a nil irq is connected to
// nothing. out and irq are called with the UART's lock held and must not
// call back into it.
func New(out io.Writer, irq irqline.Line) *UART {
	if out == nil {
		out = io.Discard
	}
	if irq == nil {
		irq = irqline.None{}
	}
	u := &UART{out: out, irq: irq}
	u.resetLocked()
	return u
}

// Reset puts the UART in the state of a master reset (PC16550D, Table I
// "UART Reset Configuration") and drops any buffered host input. The
// divisor latch and the scratch register keep their values, as on the
// chip.
func (u *UART) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.resetLocked()
	u.updateLocked()
}

func (u *UART) resetLocked() {
	u.ier, u.lcr, u.mcr, u.fcr = 0, 0, 0, 0
	u.lsrErr, u.msrDelta = 0, 0
	u.modemIn = u.modemInputs()
	u.threPending = false
	u.rxHead, u.rxLen = 0, 0
	u.blHead, u.blLen = 0, 0
}

// Read implements bus.Device. Each byte of a wider access reads the
// register at the next offset, as an 8-bit ISA device would see it.
func (u *UART) Read(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range data {
		data[i] = u.readReg(offset + uint64(i))
	}
	u.updateLocked()
}

// Write implements bus.Device. Each byte of a wider access writes the
// register at the next offset.
func (u *UART) Write(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, v := range data {
		u.writeReg(offset+uint64(i), v)
	}
	u.updateLocked()
}

// Input queues host bytes for the guest to receive: first into the
// receiver FIFO, then into the backlog. It returns how many bytes were
// accepted; the rest did not fit and should be offered again later.
func (u *UART) Input(p []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.refill()
	n := 0
	for _, b := range p {
		switch {
		case u.blLen == 0 && u.canReceive():
			u.pushRX(b)
		case u.blLen < BACKLOG_SIZE:
			u.backlog[(u.blHead+u.blLen)%BACKLOG_SIZE] = b
			u.blLen++
		default:
			u.updateLocked()
			return n
		}
		n++
	}
	u.updateLocked()
	return n
}

// Buffered returns the number of host input bytes not yet read by the
// guest (receiver FIFO plus backlog).
func (u *UART) Buffered() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.rxLen + u.blLen
}

func (u *UART) dlab() bool     { return u.lcr&LCR_DLAB != 0 }
func (u *UART) loopback() bool { return u.mcr&MCR_LOOP != 0 }
func (u *UART) fifoOn() bool   { return u.fcr&FCR_FIFO_ENABLE != 0 }

// rxCap is the receiver's capacity: the FIFO, or the single receiver
// buffer register in 16450 mode.
func (u *UART) rxCap() int {
	if u.fifoOn() {
		return FIFO_SIZE
	}
	return 1
}

// trigger is the receiver FIFO trigger level in bytes.
func (u *UART) trigger() int {
	return [4]int{1, 4, 8, 14}[u.fcr>>fcrTriggerShift&3]
}

// canReceive reports whether a byte from the host can enter the receiver
// now: the receiver input is disconnected in loopback mode.
func (u *UART) canReceive() bool { return !u.loopback() && u.rxLen < u.rxCap() }

func (u *UART) pushRX(b uint8) {
	u.rx[(u.rxHead+u.rxLen)%FIFO_SIZE] = b
	u.rxLen++
}

// refill moves backlog bytes into the receiver while there is room.
func (u *UART) refill() {
	for u.blLen > 0 && u.canReceive() {
		u.pushRX(u.backlog[u.blHead])
		u.blHead = (u.blHead + 1) % BACKLOG_SIZE
		u.blLen--
	}
}

// loopReceive delivers a transmitted byte to the receiver in loopback
// mode. A full receiver overruns: in FIFO mode the new byte is lost, in
// 16450 mode it overwrites the receiver buffer register.
func (u *UART) loopReceive(b uint8) {
	if u.rxLen < u.rxCap() {
		u.pushRX(b)
		return
	}
	u.lsrErr |= LSR_OE
	if !u.fifoOn() {
		u.rx[u.rxHead] = b
	}
}

// modemInputs returns MSR bits 4-7 as the pins (or, in loopback mode, the
// MCR outputs wired back to them) present them.
func (u *UART) modemInputs() uint8 {
	if !u.loopback() {
		return MODEM_INPUTS
	}
	var v uint8
	if u.mcr&MCR_RTS != 0 {
		v |= MSR_CTS
	}
	if u.mcr&MCR_DTR != 0 {
		v |= MSR_DSR
	}
	if u.mcr&MCR_OUT1 != 0 {
		v |= MSR_RI
	}
	if u.mcr&MCR_OUT2 != 0 {
		v |= MSR_DCD
	}
	return v
}

func (u *UART) lsr() uint8 {
	v := uint8(LSR_THRE|LSR_TEMT) | u.lsrErr
	if u.rxLen > 0 {
		v |= LSR_DR
	}
	return v
}

// interruptID returns the IIR interrupt ID of the highest-priority pending
// enabled interrupt, or IIR_NO_INT.
func (u *UART) interruptID() uint8 {
	switch {
	case u.ier&IER_ELSI != 0 && u.lsrErr != 0:
		return IIR_RLS
	case u.ier&IER_ERBFI != 0 && u.rxLen > 0:
		if u.fifoOn() && u.rxLen < u.trigger() {
			return IIR_CTI
		}
		return IIR_RDA
	case u.ier&IER_ETBEI != 0 && u.threPending:
		return IIR_THRE
	case u.ier&IER_EDSSI != 0 && u.msrDelta != 0:
		return IIR_MSI
	}
	return IIR_NO_INT
}

// intr reports the level of the IRQ the UART presents to the PC: INTRPT
// gated by OUT2, whose pin loopback mode disconnects.
func (u *UART) intr() bool {
	return u.mcr&(MCR_OUT2|MCR_LOOP) == MCR_OUT2 && u.interruptID() != IIR_NO_INT
}

func (u *UART) updateLocked() {
	if l := u.intr(); l != u.level {
		u.level = l
		u.irq.SetLevel(l)
	}
}

func (u *UART) readReg(off uint64) uint8 {
	switch off {
	case RBR:
		if u.dlab() {
			return u.dll
		}
		if u.rxLen > 0 {
			u.rbr = u.rx[u.rxHead]
			u.rxHead = (u.rxHead + 1) % FIFO_SIZE
			u.rxLen--
			u.refill()
		}
		return u.rbr
	case IER:
		if u.dlab() {
			return u.dlm
		}
		return u.ier
	case IIR:
		id := u.interruptID()
		if id == IIR_THRE {
			u.threPending = false
		}
		if u.fifoOn() {
			id |= IIR_FIFO_ENABLED
		}
		return id
	case LCR:
		return u.lcr
	case MCR:
		return u.mcr
	case LSR:
		v := u.lsr()
		u.lsrErr = 0
		return v
	case MSR:
		v := u.modemIn | u.msrDelta
		u.msrDelta = 0
		return v
	case SCR:
		return u.scr
	}
	return 0xff
}

func (u *UART) writeReg(off uint64, v uint8) {
	switch off {
	case THR:
		if u.dlab() {
			u.dll = v
			return
		}
		u.transmit(v)
	case IER:
		if u.dlab() {
			u.dlm = v
			return
		}
		old := u.ier
		u.ier = v & IER_MASK
		// Enabling the THRE interrupt while the transmitter holding
		// register is empty (it always is) raises it, as Linux's 8250
		// driver checks at startup.
		if old&IER_ETBEI == 0 && u.ier&IER_ETBEI != 0 {
			u.threPending = true
		}
	case FCR:
		u.writeFCR(v)
	case LCR:
		u.lcr = v
	case MCR:
		u.writeMCR(v & MCR_MASK)
	case SCR:
		u.scr = v
	}
	// LSR and MSR writes (factory test on the chip) and offsets past
	// SCR are ignored.
}

// transmit sends one byte. Writing THR clears the THRE interrupt, but the
// byte leaves at once, so THR is empty again and the interrupt is set
// again: a THRE interrupt follows every write.
func (u *UART) transmit(v uint8) {
	if u.loopback() {
		u.loopReceive(v)
	} else {
		u.txBuf[0] = v
		u.out.Write(u.txBuf[:]) // A UART has no way to report write errors.
	}
	u.threPending = true
}

func (u *UART) writeFCR(v uint8) {
	if (v^u.fcr)&FCR_FIFO_ENABLE != 0 {
		// Changing the FIFO mode clears both FIFOs.
		u.rxHead, u.rxLen = 0, 0
	}
	if v&FCR_FIFO_ENABLE == 0 {
		// The other bits are programmed only together with FIFO
		// enable.
		u.fcr = 0
		u.refill()
		return
	}
	if v&FCR_RCVR_RESET != 0 {
		u.rxHead, u.rxLen = 0, 0
	}
	// FCR_XMIT_RESET: the transmitter FIFO is always empty.
	u.fcr = v & fcrStoredBitsMask
	u.refill()
}

func (u *UART) writeMCR(v uint8) {
	wasLoop := u.loopback()
	oldIn := u.modemIn
	u.mcr = v
	u.modemIn = u.modemInputs()
	changed := oldIn ^ u.modemIn
	if changed&MSR_CTS != 0 {
		u.msrDelta |= MSR_DCTS
	}
	if changed&MSR_DSR != 0 {
		u.msrDelta |= MSR_DDSR
	}
	if changed&MSR_DCD != 0 {
		u.msrDelta |= MSR_DDCD
	}
	if oldIn&MSR_RI != 0 && u.modemIn&MSR_RI == 0 {
		u.msrDelta |= MSR_TERI
	}
	if wasLoop && !u.loopback() {
		u.refill()
	}
}

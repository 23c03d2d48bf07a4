// Package i8042 models the PC's keyboard controller (an Intel 8042 running
// the PS/2 keyboard/auxiliary-device firmware) with nothing plugged into
// either port, and, in cf9.go, the chipset's reset control register at
// port CF9h. Both exist mostly so that a guest can reset the machine and
// so that Linux's i8042 probe gets quick, sensible answers.
//
// The controller answers its own commands (command byte read and write,
// self-test, interface tests, port enable and disable, output port, the
// loopback writes into its output buffer, pulse output lines); bytes sent
// to the keyboard or the auxiliary device come back as a time-out with
// 0xFE (resend), which Linux's PS/2 code takes as "no device" at once.
// Pulsing or writing the output port's reset line low calls the reset
// callback. The A20 line of the output port is remembered but gates
// nothing.
//
// The keyboard and auxiliary interrupts (IRQ 1 and 12 on the PC) are
// irqline.Lines held high while the output buffer holds a byte from that
// side and the command byte enables its interrupt.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package i8042

import (
	"sync"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/hv/bus"
)

// Ports of the controller (IBM PC/AT Technical Reference, "System I/O
// Address Map"). Each is its own one-port device: 61h-63h in between
// belong to other devices.
const (
	DATA_PORT    = 0x60 // read: output buffer; write: input buffer (data)
	COMMAND_PORT = 0x64 // read: status register; write: input buffer (command)
	// SIZE is the number of ports each of Data and Command decodes.
	SIZE = 1
)

// Status register bits (IBM PS/2 Hardware Interface Technical Reference,
// "Keyboard/Auxiliary Device Controller", Status Register).
const (
	STR_OBF     = 1 << 0 // output buffer full
	STR_IBF     = 1 << 1 // input buffer full
	STR_SYS     = 1 << 2 // system flag (command byte bit 2)
	STR_CMD     = 1 << 3 // last input byte was a command (port 64h)
	STR_KEYLOCK = 1 << 4 // inhibit switch: 1 = keyboard not inhibited
	STR_AUXDATA = 1 << 5 // output buffer holds auxiliary-device data
	STR_TIMEOUT = 1 << 6 // general time-out
	STR_PARITY  = 1 << 7 // parity error
)

// Controller command byte bits, RAM byte 0 (same reference, "Controller
// Command Byte").
const (
	CTR_KBDINT     = 1 << 0 // keyboard output-buffer-full interrupt
	CTR_AUXINT     = 1 << 1 // auxiliary output-buffer-full interrupt
	CTR_SYS        = 1 << 2 // system flag
	CTR_IGNKEYLOCK = 1 << 3 // ignore the inhibit switch
	CTR_KBDDIS     = 1 << 4 // disable keyboard interface
	CTR_AUXDIS     = 1 << 5 // disable auxiliary interface
	CTR_XLATE      = 1 << 6 // translate keyboard scan codes to set 1
	// CTR_RESET is the command byte after reset, as a BIOS leaves it
	// after POST: translation, system flag, keyboard interrupt, and the
	// auxiliary port disabled.
	CTR_RESET = CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT
)

// Controller commands, written to COMMAND_PORT (same reference,
// "Commands (I/O Address Hex 0064)").
const (
	CMD_READ_RAM       = 0x20 // 20h-3Fh: read RAM byte n-20h (20h: command byte)
	CMD_WRITE_RAM      = 0x60 // 60h-7Fh: write RAM byte n-60h (60h: command byte)
	CMD_AUX_DISABLE    = 0xa7
	CMD_AUX_ENABLE     = 0xa8
	CMD_AUX_TEST       = 0xa9 // answers INTERFACE_OK
	CMD_SELF_TEST      = 0xaa // answers SELF_TEST_OK
	CMD_KBD_TEST       = 0xab // answers INTERFACE_OK
	CMD_KBD_DISABLE    = 0xad
	CMD_KBD_ENABLE     = 0xae
	CMD_READ_INPUT     = 0xc0
	CMD_READ_OUTPUT    = 0xd0
	CMD_WRITE_OUTPUT   = 0xd1
	CMD_WRITE_KBD_OBUF = 0xd2 // next data byte appears as keyboard data
	CMD_WRITE_AUX_OBUF = 0xd3 // next data byte appears as auxiliary data
	CMD_WRITE_AUX      = 0xd4 // next data byte goes to the auxiliary device
	CMD_READ_TEST      = 0xe0
	CMD_PULSE          = 0xf0 // F0h-FFh: pulse output port bits 0-3 that are 0 in the command
)

// Controller answers and the byte a device that does not answer leaves.
const (
	SELF_TEST_OK = 0x55
	INTERFACE_OK = 0x00
	// DEVICE_TIMEOUT is what the output buffer gets, with STR_TIMEOUT,
	// for a byte sent to an absent keyboard or auxiliary device: the PS/2
	// "resend" answer, which Linux's i8042 driver also substitutes for
	// time-outs on multiplexed ports.
	DEVICE_TIMEOUT = 0xfe
	// INPUT_PORT is what CMD_READ_INPUT answers: keyboard not inhibited
	// (bit 7), no manufacturing jumper (bit 5).
	INPUT_PORT = 0xa0
)

// Output port bits (same reference, "Output Port").
const (
	OUT_RESET     = 1 << 0 // system reset, active low
	OUT_A20       = 1 << 1 // gate address line 20
	OUT_IRQ1      = 1 << 4 // keyboard output buffer full (IRQ 1)
	OUT_IRQ12     = 1 << 5 // auxiliary output buffer full (IRQ 12)
	OUT_KBD_CLOCK = 1 << 6
	OUT_KBD_DATA  = 1 << 7
	// OUT_RESET_VALUE is the output port after reset: running, A20 on.
	OUT_RESET_VALUE = OUT_KBD_DATA | OUT_KBD_CLOCK | OUT_A20 | OUT_RESET
)

const (
	// RAM_SIZE is the number of internal RAM bytes commands 20h-3Fh and
	// 60h-7Fh reach.
	RAM_SIZE = 32
	// QUEUE_SIZE bounds the bytes waiting for the guest. The 8042 has a
	// one-byte output buffer and holds back further answers until it is
	// read; the queue plays that part. Linux's flush drains up to 16.
	QUEUE_SIZE = 16
)

type outByte struct {
	v     uint8
	flags uint8 // STR_AUXDATA, STR_TIMEOUT
}

// Controller is the keyboard controller. Its zero value is not usable; use
// New. All methods are safe for concurrent use.
type Controller struct {
	mu    sync.Mutex
	reset func()
	kbd   irqline.Line
	aux   irqline.Line

	ram       [RAM_SIZE]uint8 // ram[0] is the command byte
	outPort   uint8
	cmd       uint8 // command waiting for its data byte
	cmdWaits  bool
	lastCmd   bool // STR_CMD
	last      uint8
	q         [QUEUE_SIZE]outByte
	qHead     int
	qLen      int
	kbdLevel  bool
	auxLevel  bool
	dataIO    dataPort
	commandIO commandPort
}

// New returns a controller in its reset state. reset is called, without
// the controller's lock held, when the guest asks for a CPU reset; kbd and
// aux are the keyboard (IRQ 1) and auxiliary (IRQ 12) interrupt lines. Nil
// arguments are allowed and connect to nothing. Without an aux line,
// Linux decides after a 250 ms wait that the auxiliary port has no IRQ.
func New(reset func(), kbd, aux irqline.Line) *Controller {
	if kbd == nil {
		kbd = irqline.None{}
	}
	if aux == nil {
		aux = irqline.None{}
	}
	c := &Controller{reset: reset, kbd: kbd, aux: aux}
	c.dataIO.c = c
	c.commandIO.c = c
	c.resetLocked()
	return c
}

// Reset returns the controller to its reset state.
func (c *Controller) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
	c.updateLocked()
}

func (c *Controller) resetLocked() {
	c.ram = [RAM_SIZE]uint8{CTR_RESET}
	c.outPort = OUT_RESET_VALUE
	c.cmd, c.cmdWaits, c.lastCmd = 0, false, false
	c.qHead, c.qLen = 0, 0
}

// Data returns the data port, to register at DATA_PORT with size SIZE.
func (c *Controller) Data() bus.Device { return &c.dataIO }

// Command returns the status/command port, to register at COMMAND_PORT
// with size SIZE.
func (c *Controller) Command() bus.Device { return &c.commandIO }

// dataPort is port 60h.
type dataPort struct{ c *Controller }

// Read implements bus.Device: the next byte of the output buffer, or the
// last one again when it is empty.
func (d *dataPort) Read(offset uint64, data []byte) {
	c := d.c
	c.mu.Lock()
	defer c.mu.Unlock()
	fill(data)
	if offset != 0 || len(data) == 0 {
		return
	}
	if c.qLen > 0 {
		c.last = c.q[c.qHead].v
		c.qHead = (c.qHead + 1) % QUEUE_SIZE
		c.qLen--
	}
	data[0] = c.last
	c.updateLocked()
}

// Write implements bus.Device: the data byte of a pending command, or a
// byte for the keyboard.
func (d *dataPort) Write(offset uint64, data []byte) {
	c := d.c
	if offset != 0 || len(data) == 0 {
		return
	}
	c.mu.Lock()
	reset := c.writeData(data[0])
	c.updateLocked()
	c.mu.Unlock()
	c.doReset(reset)
}

// commandPort is port 64h.
type commandPort struct{ c *Controller }

// Read implements bus.Device: the status register.
func (p *commandPort) Read(offset uint64, data []byte) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	fill(data)
	if offset == 0 && len(data) > 0 {
		data[0] = c.status()
	}
}

// Write implements bus.Device: a controller command.
func (p *commandPort) Write(offset uint64, data []byte) {
	c := p.c
	if offset != 0 || len(data) == 0 {
		return
	}
	c.mu.Lock()
	reset := c.command(data[0])
	c.updateLocked()
	c.mu.Unlock()
	c.doReset(reset)
}

// fill makes bytes past the one register float high.
func fill(data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}

func (c *Controller) doReset(reset bool) {
	if reset && c.reset != nil {
		c.reset()
	}
}

func (c *Controller) status() uint8 {
	s := uint8(STR_KEYLOCK)
	if c.ram[0]&CTR_SYS != 0 {
		s |= STR_SYS
	}
	if c.lastCmd {
		s |= STR_CMD
	}
	if c.qLen > 0 {
		s |= STR_OBF | c.q[c.qHead].flags
	}
	return s
}

// push puts a byte in the output buffer queue; when the queue is full the
// byte is lost, as the guest has ignored 16 answers.
func (c *Controller) push(v, flags uint8) {
	if c.qLen == QUEUE_SIZE {
		return
	}
	c.q[(c.qHead+c.qLen)%QUEUE_SIZE] = outByte{v: v, flags: flags}
	c.qLen++
}

func (c *Controller) updateLocked() {
	var kbd, aux bool
	if c.qLen > 0 {
		if c.q[c.qHead].flags&STR_AUXDATA != 0 {
			aux = c.ram[0]&CTR_AUXINT != 0
		} else {
			kbd = c.ram[0]&CTR_KBDINT != 0
		}
	}
	if kbd != c.kbdLevel {
		c.kbdLevel = kbd
		c.kbd.SetLevel(kbd)
	}
	if aux != c.auxLevel {
		c.auxLevel = aux
		c.aux.SetLevel(aux)
	}
}

// command runs a controller command; it reports whether the CPU must be
// reset.
func (c *Controller) command(v uint8) bool {
	c.lastCmd = true
	c.cmdWaits = false
	switch {
	case v >= CMD_READ_RAM && v < CMD_READ_RAM+RAM_SIZE:
		c.push(c.ram[v-CMD_READ_RAM], 0)
	case v >= CMD_WRITE_RAM && v < CMD_WRITE_RAM+RAM_SIZE,
		v == CMD_WRITE_OUTPUT, v == CMD_WRITE_KBD_OBUF,
		v == CMD_WRITE_AUX_OBUF, v == CMD_WRITE_AUX:
		c.cmd, c.cmdWaits = v, true
	case v == CMD_AUX_DISABLE:
		c.ram[0] |= CTR_AUXDIS
	case v == CMD_AUX_ENABLE:
		c.ram[0] &^= CTR_AUXDIS
	case v == CMD_AUX_TEST, v == CMD_KBD_TEST:
		c.push(INTERFACE_OK, 0)
	case v == CMD_SELF_TEST:
		c.ram[0] |= CTR_SYS
		c.push(SELF_TEST_OK, 0)
	case v == CMD_KBD_DISABLE:
		c.ram[0] |= CTR_KBDDIS
	case v == CMD_KBD_ENABLE:
		c.ram[0] &^= CTR_KBDDIS
	case v == CMD_READ_INPUT:
		c.push(INPUT_PORT, 0)
	case v == CMD_READ_OUTPUT:
		c.push(c.outputPort(), 0)
	case v == CMD_READ_TEST:
		c.push(0, 0)
	case v >= CMD_PULSE:
		// Bits 0-3 that are 0 select the lines to pulse; bit 0 is
		// the reset line, so FEh (and every even command) resets.
		return v&OUT_RESET == 0
	}
	// Anything else is not a command of this controller and is ignored.
	return false
}

// outputPort returns the output port with its interrupt bits as they are.
func (c *Controller) outputPort() uint8 {
	v := c.outPort &^ (OUT_IRQ1 | OUT_IRQ12)
	if c.kbdLevel {
		v |= OUT_IRQ1
	}
	if c.auxLevel {
		v |= OUT_IRQ12
	}
	return v
}

// writeData takes a byte written to the data port; it reports whether the
// CPU must be reset.
func (c *Controller) writeData(v uint8) bool {
	c.lastCmd = false
	if !c.cmdWaits {
		// For the keyboard, which is not there.
		c.push(DEVICE_TIMEOUT, STR_TIMEOUT)
		return false
	}
	c.cmdWaits = false
	switch cmd := c.cmd; {
	case cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM+RAM_SIZE:
		c.ram[cmd-CMD_WRITE_RAM] = v
	case cmd == CMD_WRITE_OUTPUT:
		c.outPort = v
		return v&OUT_RESET == 0
	case cmd == CMD_WRITE_KBD_OBUF:
		c.push(v, 0)
	case cmd == CMD_WRITE_AUX_OBUF:
		c.push(v, STR_AUXDATA)
	case cmd == CMD_WRITE_AUX:
		// For the auxiliary device, which is not there.
		c.push(DEVICE_TIMEOUT, STR_AUXDATA|STR_TIMEOUT)
	}
	return false
}

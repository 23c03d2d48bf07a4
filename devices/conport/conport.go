// Package conport is a line console on a serial port's addresses: a guest
// writing bytes to the transmit register (offset 0) has each completed line
// shown on the host console prefixed with the VM's name, and the line status
// register (offset 5) always reads "transmitter empty". It is what the
// selftest guests print through; the full 16550A model replaces it for
// real guests.
//
// This package is host-testable.
package conport

import (
	"io"
	"sync"
)

// Register offsets (PC16550D datasheet, Table II).
const (
	UART_THR = 0 // transmitter holding register
	UART_LSR = 5 // line status register
	// LSR_THRE and LSR_TEMT: transmitter holding register and
	// transmitter empty.
	LSR_THRE = 1 << 5
	LSR_TEMT = 1 << 6
	// SIZE is the port range the device claims.
	SIZE = 8
	// MAX_LINE bounds a line; longer ones are cut and printed.
	MAX_LINE = 256
)

// Port is the device. Its zero value is not usable; use New.
type Port struct {
	mu     sync.Mutex
	prefix string
	out    io.Writer
	line   []byte
	// Text keeps everything the guest printed, for tests and the
	// selftest, up to MAX_TEXT bytes.
	text []byte
}

// MAX_TEXT bounds what Text keeps.
const MAX_TEXT = 4096

// New returns a console that writes lines to out as "[name] line".
func New(name string, out io.Writer) *Port {
	return &Port{prefix: "[" + name + "] ", out: out, line: make([]byte, 0, MAX_LINE)}
}

// Read implements bus.Device.
func (p *Port) Read(offset uint64, data []byte) {
	for i := range data {
		data[i] = 0
		if offset+uint64(i) == UART_LSR {
			data[i] = LSR_THRE | LSR_TEMT
		}
	}
}

// Write implements bus.Device.
func (p *Port) Write(offset uint64, data []byte) {
	if offset != UART_THR || len(data) == 0 {
		return
	}
	c := data[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.text) < MAX_TEXT {
		p.text = append(p.text, c)
	}
	switch {
	case c == '\n' || len(p.line) == MAX_LINE:
		p.flush()
		if c != '\n' {
			p.line = append(p.line, printable(c))
		}
	case c == '\r':
	default:
		p.line = append(p.line, printable(c))
	}
}

// printable replaces control and non-ASCII bytes with '?'.
func printable(c byte) byte {
	if c < 0x20 || c > 0x7e {
		return '?'
	}
	return c
}

// flush prints the pending line.
func (p *Port) flush() {
	if p.out != nil {
		io.WriteString(p.out, p.prefix+string(p.line)+"\n")
	}
	p.line = p.line[:0]
}

// Text returns what the guest has printed so far (raw bytes, capped).
func (p *Port) Text() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.text)
}

//go:build tamago

package pc

import (
	"io"
	"time"
)

// 16550 UART registers (National Semiconductor PC16550D datasheet, 8.0
// "Registers", Table II "Summary of Registers"; 8.1 LCR, 8.3 baud
// generator, 8.4 LSR, 8.5 FCR, 8.9 MCR), as offsets from the port base.
const (
	// COM1_BASE is the legacy first serial port.
	COM1_BASE = 0x3f8

	UART_RBR = 0 // Receiver Buffer Register (read, DLAB=0)
	UART_THR = 0 // Transmitter Holding Register (write, DLAB=0)
	UART_DLL = 0 // Divisor Latch LSB (DLAB=1)
	UART_IER = 1 // Interrupt Enable Register (DLAB=0)
	UART_DLM = 1 // Divisor Latch MSB (DLAB=1)
	UART_FCR = 2 // FIFO Control Register (write)
	UART_LCR = 3 // Line Control Register
	UART_MCR = 4 // Modem Control Register
	UART_LSR = 5 // Line Status Register

	LCR_WLS_8  = 0x03   // 8 data bits, 1 stop bit, no parity
	LCR_DLAB   = 1 << 7 // Divisor Latch Access Bit
	FCR_ENABLE = 1 << 0 // FIFO enable
	FCR_RCVR   = 1 << 1 // clear the receiver FIFO
	FCR_XMIT   = 1 << 2 // clear the transmitter FIFO
	MCR_DTR    = 1 << 0 // Data Terminal Ready
	MCR_RTS    = 1 << 1 // Request To Send
	LSR_DR     = 1 << 0 // Data Ready
	LSR_THRE   = 1 << 5 // Transmitter Holding Register Empty

	// UART_CLOCK is the PC's 1.8432 MHz UART clock; the baud rate is
	// UART_CLOCK / (16 * divisor).
	UART_CLOCK = 1843200
	// BAUD_RATE is the console speed.
	BAUD_RATE = 115200
)

// UART is a 16550-compatible serial port driven by polling, with its
// interrupts off.
type UART struct {
	// Base is the first I/O port of the register block.
	Base uint16
}

// com1 is the console. It is a value, not a pointer, so that it is valid
// from the first instruction: printk (goos_unsafe.go) runs before package
// initialization.
var com1 = UART{Base: COM1_BASE}

// Console returns the serial console (COM1).
func Console() *UART {
	return &com1
}

// Init programs 115200 baud 8N1, enables and clears the FIFOs, raises DTR
// and RTS and disables UART interrupts.
func (u *UART) Init() {
	const divisor = UART_CLOCK / (16 * BAUD_RATE)

	outb(u.Base+UART_IER, 0)
	outb(u.Base+UART_LCR, LCR_DLAB)
	outb(u.Base+UART_DLL, divisor&0xff)
	outb(u.Base+UART_DLM, divisor>>8)
	outb(u.Base+UART_LCR, LCR_WLS_8)
	outb(u.Base+UART_FCR, FCR_ENABLE|FCR_RCVR|FCR_XMIT)
	outb(u.Base+UART_MCR, MCR_DTR|MCR_RTS)
}

// Tx writes one byte, waiting until the transmitter holding register is
// empty.
//
//go:nosplit
func (u *UART) Tx(c byte) {
	// nosplit: reached from Printk, which the runtime calls while
	// printing fatal errors, possibly on a stack that must not grow.
	for inb(u.Base+UART_LSR)&LSR_THRE == 0 {
	}

	outb(u.Base+UART_THR, c)
}

// Rx returns a received byte, or ok == false when none is waiting.
func (u *UART) Rx() (c byte, ok bool) {
	if inb(u.Base+UART_LSR)&LSR_DR == 0 {
		return 0, false
	}

	return inb(u.Base + UART_RBR), true
}

// Write sends p, turning "\n" into "\r\n" like the console does.
func (u *UART) Write(p []byte) (int, error) {
	for _, c := range p {
		u.putc(c)
	}

	return len(p), nil
}

// putc writes c to the console, turning "\n" into "\r\n".
//
//go:nosplit
func (u *UART) putc(c byte) {
	// nosplit: printk's path, see Tx.
	if c == '\n' {
		u.Tx('\r')
	}

	u.Tx(c)
}

// rawConsole writes bytes to COM1 unchanged (the shell does its own CRLF).
type rawConsole struct{ u *UART }

func (c rawConsole) Write(p []byte) (int, error) {
	for _, b := range p {
		c.u.Tx(b)
	}
	return len(p), nil
}

// RawConsole returns COM1 as a writer that sends bytes unchanged.
func RawConsole() io.Writer { return rawConsole{&com1} }

// RX_POLL_INTERVAL is how long the console reader sleeps when no byte is
// waiting. The 16550's 16-byte FIFO holds 1.4 ms of input at 115200 baud;
// QEMU and Bochs hold input back while the FIFO is full.
const RX_POLL_INTERVAL = time.Millisecond

// consoleReader reads COM1 by polling: Read blocks until at least one byte
// has arrived, then returns what is waiting.
type consoleReader struct{ u *UART }

func (r consoleReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	for n == 0 {
		for n < len(p) {
			c, ok := r.u.Rx()
			if !ok {
				break
			}
			p[n] = c
			n++
		}
		if n == 0 {
			time.Sleep(RX_POLL_INTERVAL)
		}
	}
	return n, nil
}

// ConsoleReader returns COM1 as a blocking reader.
func ConsoleReader() io.Reader { return consoleReader{&com1} }

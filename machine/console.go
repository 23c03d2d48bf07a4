package machine

import (
	"io"
	"sync"
)

// CONSOLE_HISTORY is how many bytes of a guest's serial output Console
// keeps for the next attach.
const CONSOLE_HISTORY = 64 << 10

// Console is a guest's serial port as the operator sees it: what the guest
// writes goes to a ring of the last CONSOLE_HISTORY bytes and, while
// someone is attached, to their writer; what they type goes to the UART.
type Console struct {
	mu       sync.Mutex
	ring     []byte
	start    int // index of the oldest byte once the ring is full
	full     bool
	attached io.Writer
	input    func([]byte) int
	lineLog  io.Writer // detached output, line by line, prefixed (may be nil)
	prefix   string
	line     []byte
}

// newConsole returns a console whose complete lines, while nobody is
// attached, also go to log prefixed with "[name] " (nil: nowhere).
func newConsole(name string, log io.Writer) *Console {
	return &Console{ring: make([]byte, 0, CONSOLE_HISTORY), lineLog: log, prefix: "[" + name + "] "}
}

// Write implements io.Writer for the UART's output.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if !c.full {
			c.ring = append(c.ring, b)
			c.full = len(c.ring) == cap(c.ring)
		} else {
			c.ring[c.start] = b
			c.start = (c.start + 1) % len(c.ring)
		}
	}
	if c.attached != nil {
		c.attached.Write(p)
		return len(p), nil
	}
	if c.lineLog != nil {
		for _, b := range p {
			switch {
			case b == '\n' || len(c.line) >= 240:
				c.lineLog.Write(append(append([]byte(c.prefix), c.line...), '\n'))
				c.line = c.line[:0]
			case b == '\r':
			case b < 0x20 && b != '\t':
			default:
				c.line = append(c.line, b)
			}
		}
	}
	return len(p), nil
}

// History returns a copy of the kept output, oldest first.
func (c *Console) History() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.historyLocked()
}

func (c *Console) historyLocked() []byte {
	if !c.full {
		return append([]byte(nil), c.ring...)
	}
	out := make([]byte, 0, len(c.ring))
	out = append(out, c.ring[c.start:]...)
	return append(out, c.ring[:c.start]...)
}

// Attach sends the guest's output to w from now on and returns what was
// kept before. Only one writer is attached at a time; Attach replaces it.
func (c *Console) Attach(w io.Writer) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attached = w
	c.line = c.line[:0]
	return c.historyLocked()
}

// Detach stops sending output to the attached writer.
func (c *Console) Detach() {
	c.mu.Lock()
	c.attached = nil
	c.mu.Unlock()
}

// Input types p into the guest's serial port and returns how many bytes it
// took (the UART's FIFO and backlog are bounded).
func (c *Console) Input(p []byte) int {
	c.mu.Lock()
	in := c.input
	c.mu.Unlock()
	if in == nil {
		return 0
	}
	return in(p)
}

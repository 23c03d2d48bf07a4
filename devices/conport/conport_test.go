package conport

import (
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/bus"
)

func TestPortThroughBus(t *testing.T) {
	var out strings.Builder
	p := New("vm1", &out)
	b := bus.NewPortBus(bus.Policy{})
	if err := b.Register(0x3f8, SIZE, p, "console"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []byte("hi\x01\r\nsecond\n") {
		if err := b.Write(0x3f8, []byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	lsr := []byte{0}
	if err := b.Read(0x3fd, lsr); err != nil || lsr[0] != LSR_THRE|LSR_TEMT {
		t.Errorf("LSR = %#x, %v; want %#x", lsr[0], err, LSR_THRE|LSR_TEMT)
	}
	if got, want := out.String(), "[vm1] hi?\n[vm1] second\n"; got != want {
		t.Errorf("console output %q, want %q", got, want)
	}
	if !strings.HasPrefix(p.Text(), "hi") {
		t.Errorf("Text() = %q", p.Text())
	}
}

func TestLongLineIsCut(t *testing.T) {
	var out strings.Builder
	p := New("v", &out)
	for range MAX_LINE + 10 {
		p.Write(UART_THR, []byte{'x'})
	}
	p.Write(UART_THR, []byte{'\n'})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || len(lines[0]) != len("[v] ")+MAX_LINE {
		t.Errorf("got %d lines, first %d bytes; want the line cut at %d", len(lines), len(lines[0]), MAX_LINE)
	}
}

func FuzzPort(f *testing.F) {
	f.Add([]byte("hello\n"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, off uint8) {
		var out strings.Builder
		p := New("f", &out)
		for _, c := range data {
			p.Write(uint64(off%SIZE), []byte{c})
			p.Read(uint64(c%SIZE), []byte{0, 0})
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if len(l) > len("[f] ")+MAX_LINE {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
	})
}

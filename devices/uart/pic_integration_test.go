package uart

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/pic"
)

// TestInterruptDrivenWithPIC wires the UART to IRQ 4 of an i8259 pair
// (edge-triggered, as on the PC) and runs a host goroutine pasting text
// while a "vCPU" goroutine takes interrupts and runs an 8250-style
// handler. Every byte must arrive, in order, without polling the UART
// outside the handler; run it with -race.
func TestInterruptDrivenWithPIC(t *testing.T) {
	kick := make(chan struct{}, 1)
	p := pic.New(func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	var out bytes.Buffer
	u := New(&out, p.Line(4))
	m, s := p.Master(), p.Slave()
	w := func(d interface{ Write(uint64, []byte) }, off uint64, v uint8) { d.Write(off, []byte{v}) }
	// Linux's init_8259A: ICW1-ICW4 to each chip, then unmask.
	w(m, 0, pic.ICW1_INIT|pic.ICW1_IC4)
	w(m, 1, 0x30)
	w(m, 1, 1<<pic.CASCADE_IRQ)
	w(m, 1, pic.ICW4_UPM)
	w(s, 0, pic.ICW1_INIT|pic.ICW1_IC4)
	w(s, 1, 0x38)
	w(s, 1, pic.CASCADE_IRQ)
	w(s, 1, pic.ICW4_UPM)
	w(m, 1, 0)
	w(s, 1, 0)
	w(u, LCR, 0x03)
	w(u, FCR, FCR_FIFO_ENABLE|FCR_TRIGGER_8)
	w(u, MCR, MCR_OUT2|MCR_DTR|MCR_RTS)
	w(u, IER, IER_ERBFI|IER_ELSI)

	var want bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&want, "line %d of pasted text\n", i)
	}
	go func() {
		rest := want.Bytes()
		for len(rest) > 0 {
			n := u.Input(rest[:min(len(rest), 700)])
			rest = rest[n:]
			if n == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()

	var got []byte
	b := []byte{0}
	r := func(off uint64) uint8 { u.Read(off, b); return b[0] }
	deadline := time.After(20 * time.Second)
	for len(got) < want.Len() {
		select {
		case <-kick:
		case <-deadline:
			t.Fatalf("received %d of %d bytes; Pending=%v, UART buffers %d", len(got), want.Len(), p.Pending(), u.Buffered())
		}
		for p.Pending() {
			v, ok := p.Acknowledge()
			if !ok {
				t.Fatal("Acknowledge failed")
			}
			if v == 0x34 {
				for r(IIR)&IIR_NO_INT == 0 {
					for r(LSR)&LSR_DR != 0 {
						got = append(got, r(RBR))
					}
				}
			}
			if v != 0x37 { // not spurious: EOI
				w(m, 0, pic.OCW2_NON_SPECIFIC_EOI)
			}
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("received %d bytes that differ from the %d sent", len(got), want.Len())
	}
}

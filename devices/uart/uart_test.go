package uart

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/hv/bus"
)

// COM1 is where the tests put the UART on the port bus.
const COM1 = 0x3f8

// rig is a UART on a port bus with a recording interrupt line.
type rig struct {
	t   *testing.T
	u   *UART
	b   *bus.PortBus
	irq *irqline.Recorder
	out *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, irq: &irqline.Recorder{}, out: &bytes.Buffer{}}
	r.u = New(r.out, r.irq)
	r.b = bus.NewPortBus(bus.Policy{Strict: true})
	if err := r.b.Register(COM1, SIZE, r.u, "com1"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) out8(reg uint16, v uint8) {
	r.t.Helper()
	if err := r.b.Write(COM1+reg, []byte{v}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) in8(reg uint16) uint8 {
	r.t.Helper()
	d := []byte{0}
	if err := r.b.Read(COM1+reg, d); err != nil {
		r.t.Fatal(err)
	}
	return d[0]
}

func (r *rig) expect(what string, reg uint16, want uint8) {
	r.t.Helper()
	if got := r.in8(reg); got != want {
		r.t.Errorf("%s: register %d = %#02x, want %#02x", what, reg, got, want)
	}
}

func (r *rig) expectLine(what string, want bool) {
	r.t.Helper()
	if got := r.irq.Level(); got != want {
		r.t.Errorf("%s: IRQ line %v, want %v", what, got, want)
	}
}

func TestRegisters(t *testing.T) {
	tests := []struct {
		name      string
		writes    [][2]uint8 // register, value
		reg       uint16
		want      uint8
		wantAfter uint8 // value on a second read
	}{
		{"scratch", [][2]uint8{{SCR, 0x5a}}, SCR, 0x5a, 0x5a},
		{"LCR", [][2]uint8{{LCR, 0x1b}}, LCR, 0x1b, 0x1b},
		{"IER keeps four bits", [][2]uint8{{IER, 0xff}}, IER, 0x0f, 0x0f},
		{"MCR keeps five bits", [][2]uint8{{MCR, 0xff}}, MCR, 0x1f, 0x1f},
		{"DLL behind DLAB", [][2]uint8{{LCR, LCR_DLAB}, {DLL, 0x0c}}, DLL, 0x0c, 0x0c},
		{"DLM behind DLAB", [][2]uint8{{LCR, LCR_DLAB}, {DLM, 0x01}}, DLM, 0x01, 0x01},
		{"DLAB hides IER", [][2]uint8{{IER, 0x05}, {LCR, LCR_DLAB}, {DLM, 0x00}, {LCR, 0x03}}, IER, 0x05, 0x05},
		{"reset LSR", nil, LSR, LSR_THRE | LSR_TEMT, LSR_THRE | LSR_TEMT},
		{"reset IIR", nil, IIR, IIR_NO_INT, IIR_NO_INT},
		{"reset MSR", nil, MSR, MODEM_INPUTS, MODEM_INPUTS},
		{"FIFO enabled in IIR", [][2]uint8{{FCR, FCR_FIFO_ENABLE}}, IIR, IIR_FIFO_ENABLED | IIR_NO_INT, IIR_FIFO_ENABLED | IIR_NO_INT},
		{"FCR bits need FIFO enable", [][2]uint8{{FCR, FCR_TRIGGER_14}}, IIR, IIR_NO_INT, IIR_NO_INT},
		{"LSR write ignored", [][2]uint8{{LSR, 0xff}}, LSR, LSR_THRE | LSR_TEMT, LSR_THRE | LSR_TEMT},
		{"THRE raised by ETBEI", [][2]uint8{{IER, IER_ETBEI}}, IIR, IIR_THRE, IIR_NO_INT},
		{"loopback modem bits", [][2]uint8{{MCR, MCR_LOOP | MCR_RTS | MCR_OUT2}}, MSR, MSR_CTS | MSR_DCD | MSR_DDSR, MSR_CTS | MSR_DCD},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			for _, w := range tc.writes {
				r.out8(uint16(w[0]), w[1])
			}
			r.expect("first read", tc.reg, tc.want)
			r.expect("second read", tc.reg, tc.wantAfter)
		})
	}
}

func TestWideAccessSplitsIntoBytes(t *testing.T) {
	r := newRig(t)
	r.out8(LCR, LCR_DLAB)
	if err := r.b.Write(COM1+DLL, []byte{0x34, 0x12}); err != nil {
		t.Fatal(err)
	}
	d := []byte{0, 0, 0, 0}
	if err := r.b.Read(COM1, d); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x34, 0x12, IIR_NO_INT, LCR_DLAB}; !bytes.Equal(d, want) {
		t.Errorf("32-bit read of DLL..LCR = % x, want % x", d, want)
	}
}

func TestTransmit(t *testing.T) {
	r := newRig(t)
	r.out8(LCR, 0x03) // 8N1
	for _, c := range []byte("hello\n") {
		r.out8(THR, c)
	}
	if got := r.out.String(); got != "hello\n" {
		t.Errorf("output %q, want %q", got, "hello\n")
	}
	r.expect("LSR after transmit", LSR, LSR_THRE|LSR_TEMT)

	// The word length does not matter: bytes pass whole.
	r.out.Reset()
	r.out8(LCR, 0x00) // 5 data bits, the reset value
	r.out8(THR, 0xc1)
	if got := r.out.Bytes(); !bytes.Equal(got, []byte{0xc1}) {
		t.Errorf("transmit of 0xc1 with 5-bit words sent % x, want c1", got)
	}
}

// TestLinuxAutoconfig walks the probes of Linux's 8250 autoconfig() and
// autoconfig_16550a() and checks the answers a 16550A gives.
func TestLinuxAutoconfig(t *testing.T) {
	r := newRig(t)
	// IER test: 0 and 0x0f read back.
	r.out8(IER, 0)
	r.expect("IER cleared", IER, 0)
	r.out8(IER, 0x0f)
	r.expect("IER 0x0f", IER, 0x0f)
	r.out8(IER, 0)
	// Loopback test: MSR high nibble is 0x90 with LOOP|OUT2|RTS.
	r.out8(MCR, MCR_LOOP|0x0a)
	if got := r.in8(MSR) & 0xf0; got != 0x90 {
		t.Errorf("loopback MSR = %#x, want 0x90", got)
	}
	r.out8(MCR, 0)
	// FIFO type: IIR bits 6-7 after enabling the FIFO.
	r.out8(LCR, 0xbf)
	r.out8(FCR, 0) // "EFR" write lands in FCR on a 16550A
	r.out8(LCR, 0)
	r.out8(FCR, FCR_FIFO_ENABLE)
	if got := r.in8(IIR) >> 6; got != 3 {
		t.Errorf("IIR>>6 = %d, want 3 (16550A)", got)
	}
	// No EFR: with LCR 0x80 or 0xbf, offset 2 reads IIR, which is nonzero.
	for _, lcr := range []uint8{0x80, 0xbf} {
		r.out8(LCR, lcr)
		if got := r.in8(2); got == 0 {
			t.Errorf("offset 2 with LCR %#x reads 0: looks like an EFR", lcr)
		}
	}
	// No 64-byte FIFO (bit 5) and no NS SuperIO (bit 4) in IIR.
	r.out8(LCR, 0)
	r.out8(FCR, FCR_FIFO_ENABLE|0x20)
	if got := r.in8(IIR) & 0x30; got != 0 {
		t.Errorf("IIR bits 4-5 = %#x, want 0", got)
	}
	// No UUE bit in IER.
	r.out8(IER, 0x40)
	r.expect("IER UUE", IER, 0)
	r.out8(IER, 0)
	// size_fifo(): 256 bytes in loopback, count what comes back.
	r.out8(FCR, FCR_FIFO_ENABLE|FCR_RCVR_RESET|FCR_XMIT_RESET)
	r.out8(MCR, MCR_LOOP)
	r.out8(LCR, LCR_DLAB)
	r.out8(DLL, 1)
	r.out8(DLM, 0)
	r.out8(LCR, 0x03)
	for i := range 256 {
		r.out8(THR, uint8(i))
	}
	n := 0
	for ; r.in8(LSR)&LSR_DR != 0 && n < 256; n++ {
		if got := r.in8(RBR); got != uint8(n) {
			t.Errorf("loopback byte %d = %#x, want %#x", n, got, n)
		}
	}
	if n != FIFO_SIZE {
		t.Errorf("size_fifo counted %d bytes, want %d", n, FIFO_SIZE)
	}
	if r.out.Len() != 0 {
		t.Errorf("loopback transmitted %d bytes to the host", r.out.Len())
	}
}

// TestTHRE follows the THRE checks of Linux's serial8250_do_startup and
// its interrupt-driven transmit.
func TestTHRE(t *testing.T) {
	r := newRig(t)
	r.out8(LCR, 0x03)
	r.out8(FCR, FCR_FIFO_ENABLE)

	// UART_BUG_THRE test: THRE must be reasserted by re-enabling ETBEI.
	r.out8(IER, IER_ETBEI)
	if iir := r.in8(IIR); iir&IIR_NO_INT != 0 {
		t.Errorf("IIR after enabling ETBEI = %#x, want a pending interrupt", iir)
	}
	r.out8(IER, 0)
	r.out8(IER, IER_ETBEI)
	if iir := r.in8(IIR); iir&IIR_ID_MASK != IIR_THRE || iir&IIR_NO_INT != 0 {
		t.Errorf("IIR after re-enabling ETBEI = %#x, want THRE", iir)
	}
	// The IIR read cleared it.
	r.expect("IIR after THRE read", IIR, IIR_FIFO_ENABLED|IIR_NO_INT)
	// Rewriting IER with ETBEI still set does not re-raise it.
	r.out8(IER, IER_ETBEI|IER_ERBFI)
	r.expect("IIR after IER rewrite", IIR, IIR_FIFO_ENABLED|IIR_NO_INT)

	// The line follows OUT2.
	r.expectLine("no OUT2, nothing pending", false)
	r.out8(THR, 'a')
	r.expectLine("THRE pending, OUT2 clear", false)
	r.out8(MCR, MCR_OUT2|MCR_DTR|MCR_RTS)
	r.expectLine("THRE pending, OUT2 set", true)
	r.out8(MCR, MCR_DTR|MCR_RTS)
	r.expectLine("OUT2 cleared", false)
	r.out8(MCR, MCR_OUT2|MCR_DTR|MCR_RTS)

	// Interrupt handler: IIR read drops the line, each write raises it.
	edges := r.irq.Edges()
	r.expect("IIR in handler", IIR, IIR_FIFO_ENABLED|IIR_THRE)
	r.expectLine("after IIR read", false)
	r.out8(THR, 'b')
	r.expectLine("after THR write", true)
	if r.irq.Edges() != edges+1 {
		t.Errorf("edges %d, want %d", r.irq.Edges(), edges+1)
	}
	// Stopping the transmitter (clearing ETBEI) drops the line.
	r.out8(IER, IER_ERBFI)
	r.expectLine("after ETBEI cleared", false)
	if got := r.out.String(); got != "ab" {
		t.Errorf("output %q, want %q", got, "ab")
	}
}

func TestReceive(t *testing.T) {
	tests := []struct {
		name    string
		fcr     uint8
		input   string
		wantIIR uint8 // after input, with ERBFI
	}{
		{"16450 mode", 0, "x", IIR_RDA},
		{"FIFO below trigger", FCR_FIFO_ENABLE | FCR_TRIGGER_4, "abc", IIR_FIFO_ENABLED | IIR_CTI},
		{"FIFO at trigger", FCR_FIFO_ENABLE | FCR_TRIGGER_4, "abcd", IIR_FIFO_ENABLED | IIR_RDA},
		{"FIFO trigger 1", FCR_FIFO_ENABLE | FCR_TRIGGER_1, "a", IIR_FIFO_ENABLED | IIR_RDA},
		{"FIFO trigger 14, 13 bytes", FCR_FIFO_ENABLE | FCR_TRIGGER_14, strings.Repeat("z", 13), IIR_FIFO_ENABLED | IIR_CTI},
		{"backlog fills the FIFO", FCR_FIFO_ENABLE | FCR_TRIGGER_14, strings.Repeat("y", 100), IIR_FIFO_ENABLED | IIR_RDA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.out8(LCR, 0x03)
			r.out8(FCR, tc.fcr)
			r.out8(MCR, MCR_OUT2)
			r.out8(IER, IER_ERBFI)
			if n := r.u.Input([]byte(tc.input)); n != len(tc.input) {
				t.Fatalf("Input accepted %d of %d bytes", n, len(tc.input))
			}
			r.expectLine("after input", true)
			r.expect("IIR", IIR, tc.wantIIR)
			var got []byte
			for r.in8(LSR)&LSR_DR != 0 {
				got = append(got, r.in8(RBR))
				if len(got) > len(tc.input) {
					break
				}
			}
			if string(got) != tc.input {
				t.Errorf("guest read %q, want %q", got, tc.input)
			}
			r.expectLine("after draining", false)
			r.expect("IIR drained", IIR, tc.wantIIR&IIR_FIFO_ENABLED|IIR_NO_INT)
		})
	}
}

func TestInputBounds(t *testing.T) {
	r := newRig(t)
	r.out8(FCR, FCR_FIFO_ENABLE)
	big := bytes.Repeat([]byte{'q'}, FIFO_SIZE+BACKLOG_SIZE+10)
	if n := r.u.Input(big); n != FIFO_SIZE+BACKLOG_SIZE {
		t.Errorf("Input accepted %d bytes, want %d", n, FIFO_SIZE+BACKLOG_SIZE)
	}
	if n := r.u.Input([]byte("more")); n != 0 {
		t.Errorf("Input into a full UART accepted %d bytes", n)
	}
	r.in8(RBR)
	if n := r.u.Input([]byte("more")); n != 1 {
		t.Errorf("Input after one read accepted %d bytes, want 1", n)
	}
	if b := r.u.Buffered(); b != FIFO_SIZE+BACKLOG_SIZE {
		t.Errorf("Buffered = %d, want %d", b, FIFO_SIZE+BACKLOG_SIZE)
	}
	r.u.Reset()
	if b := r.u.Buffered(); b != 0 {
		t.Errorf("Buffered after Reset = %d", b)
	}
}

func TestFIFOControl(t *testing.T) {
	r := newRig(t)
	r.out8(FCR, FCR_FIFO_ENABLE)
	r.out8(MCR, MCR_LOOP)
	r.out8(THR, 1)
	r.out8(THR, 2)
	r.out8(FCR, FCR_FIFO_ENABLE|FCR_RCVR_RESET)
	r.expect("LSR after RCVR reset", LSR, LSR_THRE|LSR_TEMT)
	r.out8(THR, 3)
	r.out8(FCR, 0) // disabling clears
	r.expect("LSR after FIFO disable", LSR, LSR_THRE|LSR_TEMT)
	// 16450 mode: a second byte overruns and replaces the first.
	r.out8(THR, 4)
	r.out8(THR, 5)
	r.expect("LSR after overrun", LSR, LSR_THRE|LSR_TEMT|LSR_DR|LSR_OE)
	r.expect("LSR read clears OE", LSR, LSR_THRE|LSR_TEMT|LSR_DR)
	r.expect("RBR", RBR, 5)
	r.expect("RBR empty reads stale", RBR, 5)
}

func TestPriorities(t *testing.T) {
	r := newRig(t)
	r.out8(FCR, FCR_FIFO_ENABLE|FCR_TRIGGER_1)
	r.out8(MCR, MCR_LOOP)
	for i := range FIFO_SIZE + 1 { // one byte too many: overrun
		r.out8(THR, uint8(i))
	}
	r.out8(MCR, MCR_LOOP|MCR_DTR) // DSR changes: modem status delta
	r.out8(IER, IER_ERBFI|IER_ETBEI|IER_ELSI|IER_EDSSI)
	steps := []struct {
		name string
		iir  uint8
		ack  func() // clears the source
	}{
		{"line status first", IIR_RLS, func() { r.in8(LSR) }},
		{"then receive data", IIR_RDA, func() { r.out8(FCR, FCR_FIFO_ENABLE|FCR_RCVR_RESET) }},
		{"then THRE", IIR_THRE, func() {}}, // the IIR read cleared it
		{"then modem status", IIR_MSI, func() { r.in8(MSR) }},
	}
	for _, s := range steps {
		if got := r.in8(IIR); got != IIR_FIFO_ENABLED|s.iir {
			t.Fatalf("%s: IIR = %#x, want %#x", s.name, got, IIR_FIFO_ENABLED|s.iir)
		}
		s.ack()
	}
	r.expect("all cleared", IIR, IIR_FIFO_ENABLED|IIR_NO_INT)
}

func TestLoopbackGatesLineAndInput(t *testing.T) {
	r := newRig(t)
	r.out8(MCR, MCR_LOOP|MCR_OUT2)
	r.out8(IER, IER_ETBEI)
	if iir := r.in8(IIR); iir != IIR_THRE {
		t.Errorf("IIR in loopback = %#x, want THRE", iir)
	}
	r.out8(IER, 0)
	r.out8(IER, IER_ETBEI)
	r.expectLine("loopback disconnects OUT2", false)
	r.u.Input([]byte("k"))
	r.expect("host input waits during loopback", LSR, LSR_THRE|LSR_TEMT)
	r.out8(MCR, MCR_OUT2)
	r.expectLine("loopback off", true)
	r.expect("host input arrives after loopback", LSR, LSR_THRE|LSR_TEMT|LSR_DR)
	r.expect("RBR", RBR, 'k')
}

func TestModemStatusDeltas(t *testing.T) {
	r := newRig(t)
	r.out8(MCR, MCR_LOOP)
	r.in8(MSR) // clear the deltas of entering loopback
	tests := []struct {
		mcr  uint8
		want uint8
	}{
		{MCR_LOOP | MCR_DTR, MSR_DSR | MSR_DDSR},
		{MCR_LOOP | MCR_DTR | MCR_OUT1, MSR_DSR | MSR_RI}, // RI rising: no TERI
		{MCR_LOOP | MCR_DTR, MSR_DSR | MSR_TERI},          // RI falling
		{MCR_LOOP | MCR_RTS | MCR_OUT2, MSR_CTS | MSR_DCD | MSR_DCTS | MSR_DDCD | MSR_DDSR},
		{MCR_LOOP | MCR_RTS | MCR_OUT2, MSR_CTS | MSR_DCD},
	}
	for _, tc := range tests {
		r.out8(MCR, tc.mcr)
		r.expect("MSR", MSR, tc.want)
	}
}

func TestNoAllocations(t *testing.T) {
	r := newRig(t)
	r.out8(MCR, MCR_OUT2)
	r.out8(IER, IER_ERBFI|IER_ETBEI)
	in, b := []byte("x"), []byte{0}
	allocs := testing.AllocsPerRun(100, func() {
		r.u.Write(THR, b)
		r.u.Read(IIR, b)
		r.u.Input(in)
		r.u.Read(RBR, b)
		r.u.Read(LSR, b)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access round, want 0", allocs)
	}
}

// FuzzUART runs random register accesses and host input: no panics, the
// FIFOs stay bounded, and the IRQ line always matches the UART's state.
func FuzzUART(f *testing.F) {
	f.Add([]byte{0x83, 0x80, 0x80, 0x0c, 0x83, 0x03, 0x82, 0xc1, 0x84, 0x0b, 0x81, 0x0f, 0x00, 0x41, 0x02})
	f.Add([]byte{0x84, 0x10, 0x82, 0x01, 0x80, 0x55, 0x80, 0x66, 0x05, 0x00, 0x06, 0x40, 0x61})
	f.Fuzz(func(t *testing.T, ops []byte) {
		irq := &irqline.Recorder{}
		var out bytes.Buffer
		u := New(&out, irq)
		buf := make([]byte, 8)
		for i := 0; i < len(ops); i++ {
			op := ops[i]
			off := uint64(op & 7)
			size := []int{1, 2, 4, 8}[op>>3&3]
			if off+uint64(size) > SIZE {
				size = 1
			}
			switch op >> 5 {
			case 0, 1, 2: // read
				u.Read(off, buf[:size])
			case 3: // host input of up to 31 bytes
				n := int(op & 0x1f)
				if i+1+n > len(ops) {
					n = len(ops) - i - 1
				}
				u.Input(ops[i+1 : i+1+n])
				i += n
			default: // write
				if i+size >= len(ops) {
					return
				}
				u.Write(off, ops[i+1:i+1+size])
				i += size
			}
			u.mu.Lock()
			if u.rxLen < 0 || u.rxLen > u.rxCap() || u.blLen < 0 || u.blLen > BACKLOG_SIZE {
				t.Fatalf("buffers out of bounds: rx %d/%d, backlog %d", u.rxLen, u.rxCap(), u.blLen)
			}
			if u.blLen > 0 && u.rxLen < u.rxCap() && !u.loopback() {
				t.Fatalf("backlog of %d bytes while the receiver has room (%d/%d)", u.blLen, u.rxLen, u.rxCap())
			}
			if want := u.intr(); irq.Level() != want {
				t.Fatalf("IRQ line %v, UART says %v", irq.Level(), want)
			}
			if u.ier&^IER_MASK != 0 || u.mcr&^MCR_MASK != 0 {
				t.Fatalf("reserved bits set: IER %#x MCR %#x", u.ier, u.mcr)
			}
			u.mu.Unlock()
		}
	})
}

package lapic

import (
	"testing"

	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/addr"
)

func TestResetState(t *testing.T) {
	r := newRig(t, 2, func(i int, c *Config) { c.ID = uint32(5 + i) })
	for _, tc := range []struct {
		name string
		reg  uint32
		want uint32
	}{
		{"ID", ID, 5 << 24},
		{"VERSION", VERSION, 0x00060014},
		{"TPR", TPR, 0},
		{"APR", APR, 0},
		{"PPR", PPR, 0},
		{"RRD", RRD, 0},
		{"LDR", LDR, 0},
		{"DFR", DFR, 0xffffffff},
		{"SVR", SVR, 0xff},
		{"ISR7", ISR + 0x70, 0},
		{"TMR0", TMR, 0},
		{"IRR3", IRR + 0x30, 0},
		{"ESR", ESR, 0},
		{"LVT_CMCI", LVT_CMCI, LVT_MASKED},
		{"ICR_LO", ICR_LO, 0},
		{"ICR_HI", ICR_HI, 0},
		{"LVT_TIMER", LVT_TIMER, LVT_MASKED},
		{"LVT_THERMAL", LVT_THERMAL, LVT_MASKED},
		{"LVT_PERF", LVT_PERF, LVT_MASKED},
		{"LVT_LINT0", LVT_LINT0, LVT_MASKED},
		{"LVT_LINT1", LVT_LINT1, LVT_MASKED},
		{"LVT_ERROR", LVT_ERROR, LVT_MASKED},
		{"INITIAL_COUNT", INITIAL_COUNT, 0},
		{"CURRENT_COUNT", CURRENT_COUNT, 0},
		{"DIVIDE_CONFIG", DIVIDE_CONFIG, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.rd(0, tc.reg); got != tc.want {
				t.Errorf("%s = %#x, want %#x", tc.name, got, tc.want)
			}
		})
	}
	if b := r.apics[0].APICBase(); b != 0xfee00900 {
		t.Errorf("BSP IA32_APIC_BASE = %#x, want 0xfee00900", b)
	}
	if b := r.apics[1].APICBase(); b != 0xfee00800 {
		t.Errorf("AP IA32_APIC_BASE = %#x, want 0xfee00800", b)
	}

	// INIT keeps the (rewritten) ID and the base, resets the rest.
	r.enable(1)
	r.w(1, ID, 0x21<<24)
	r.w(1, TPR, 0x40)
	r.w(1, LDR, 0x08000000)
	r.w(1, DFR, 0x0fffffff)
	r.w(1, LVT_LINT0, 0x700)
	r.apics[1].Deliver(0x50, true)
	r.apics[1].InitReset()
	for _, c := range []struct {
		reg       uint32
		want      uint32
		statement string
	}{{ID, 0x21 << 24, "ID kept"}, {TPR, 0, "TPR"}, {LDR, 0, "LDR"}, {DFR, 0xffffffff, "DFR"}, {SVR, 0xff, "SVR"},
		{LVT_LINT0, LVT_MASKED, "LINT0"}, {IRR + 0x20, 0, "IRR"}, {TMR + 0x20, 0, "TMR"}} {
		if got := r.rd(1, c.reg); got != c.want {
			t.Errorf("after INIT: %s = %#x, want %#x", c.statement, got, c.want)
		}
	}
	// Power-up reset restores the configured ID.
	r.apics[1].Reset()
	if got := r.rd(1, ID); got != 6<<24 {
		t.Errorf("after reset ID = %#x, want %#x", got, 6<<24)
	}
}

func TestVirtualWireReset(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.VirtualWire = true })
	if svr, l0, l1 := r.rd(0, SVR), r.rd(0, LVT_LINT0), r.rd(0, LVT_LINT1); svr != 0x1ff || l0 != 0x700 || l1 != 0x400 {
		t.Fatalf("virtual wire: SVR %#x LINT0 %#x LINT1 %#x, want 0x1ff 0x700 0x400", svr, l0, l1)
	}
	r.apics[0].LINT0().SetLevel(true)
	if !r.apics[0].ExtINTPending() {
		t.Fatal("PIC interrupt on LINT0 not pending as ExtINT")
	}
	r.apics[0].InitReset()
	if r.apics[0].ExtINTPending() {
		t.Fatal("INIT must give the SDM state (LINT0 masked)")
	}
}

func TestPriority(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tpr     uint32
		inServ  []uint8 // delivered and accepted, in order
		request []uint8
		want    uint8
		wantOK  bool
		wantPPR uint32
	}{
		{"nothing", 0, nil, nil, 0, false, 0},
		{"highest first", 0, nil, []uint8{0x31, 0x80, 0x7f}, 0x80, true, 0},
		{"TPR blocks same class", 0x80, nil, []uint8{0x85}, 0, false, 0x80},
		{"TPR passes higher class", 0x80, nil, []uint8{0x85, 0x91}, 0x91, true, 0x80},
		{"TPR sub-class ignored", 0x8f, nil, []uint8{0x90}, 0x90, true, 0x8f},
		{"ISR blocks same class", 0, []uint8{0x61}, []uint8{0x6f}, 0, false, 0x60},
		{"ISR passes higher class", 0, []uint8{0x61}, []uint8{0x70}, 0x70, true, 0x60},
		{"TPR above ISR", 0xa0, []uint8{0x61}, []uint8{0xa5, 0xb0}, 0xb0, true, 0xa0},
		{"ISR above TPR", 0x20, []uint8{0x61}, []uint8{0x40}, 0, false, 0x60},
		{"nested ISR", 0, []uint8{0x40, 0x90}, []uint8{0x80}, 0, false, 0x90},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 1, nil)
			r.enable(0)
			for _, v := range tc.inServ {
				r.apics[0].Deliver(v, false)
				if got, ok := r.take(0); !ok || got != v {
					t.Fatalf("taking %#x for the ISR got %#x %v", v, got, ok)
				}
			}
			r.w(0, TPR, tc.tpr)
			for _, v := range tc.request {
				if !r.apics[0].Deliver(v, false) {
					t.Fatalf("Deliver(%#x) refused", v)
				}
			}
			got, ok := r.apics[0].PendingVector()
			if ok != tc.wantOK || got != tc.want {
				t.Errorf("PendingVector = %#x %v, want %#x %v", got, ok, tc.want, tc.wantOK)
			}
			if ppr := r.rd(0, PPR); ppr != tc.wantPPR {
				t.Errorf("PPR = %#x, want %#x", ppr, tc.wantPPR)
			}
		})
	}
}

func TestAcceptEOISequence(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	l := r.apics[0]
	for _, v := range []uint8{0x30, 0x50, 0x40} {
		l.Deliver(v, false)
	}
	if v, _ := r.take(0); v != 0x50 {
		t.Fatalf("first = %#x", v)
	}
	// 0x40 and 0x30 wait for the EOI of 0x50.
	if _, ok := l.PendingVector(); ok {
		t.Fatal("lower class delivered while 0x50 in service")
	}
	// A higher class preempts (nests).
	l.Deliver(0x60, false)
	if v, _ := r.take(0); v != 0x60 {
		t.Fatalf("nested = %#x", v)
	}
	if !r.apics[0].regBit(ISR, 0x60) || !r.apics[0].regBit(ISR, 0x50) {
		t.Fatal("ISR should hold 0x60 and 0x50")
	}
	r.w(0, EOI, 0) // retires 0x60
	r.w(0, EOI, 0) // retires 0x50
	var got []uint8
	for {
		v, ok := r.take(0)
		if !ok {
			break
		}
		got = append(got, v)
		r.w(0, EOI, 0)
	}
	if len(got) != 2 || got[0] != 0x40 || got[1] != 0x30 {
		t.Fatalf("after EOIs delivered %x, want [40 30]", got)
	}
	if l.Accept(0x77) {
		t.Error("Accept of a vector not in the IRR succeeded")
	}
	l.EOI() // nothing in service: harmless
}

func TestSoftwareDisabled(t *testing.T) {
	r := newRig(t, 1, nil)
	l := r.apics[0]
	if l.Deliver(0x40, false) {
		t.Error("fixed interrupt accepted while software-disabled")
	}
	r.enable(0)
	r.w(0, LVT_TIMER, 0x40)
	r.w(0, LVT_LINT1, 0x400)
	if r.rd(0, LVT_TIMER)&LVT_MASKED != 0 {
		t.Fatal("LVT stays masked after enable")
	}
	l.Deliver(0x41, false)
	r.w(0, SVR, 0xff) // software disable
	if r.rd(0, LVT_TIMER) != 0x40|LVT_MASKED || r.rd(0, LVT_LINT1) != 0x400|LVT_MASKED {
		t.Fatalf("disable did not mask LVTs: timer %#x lint1 %#x", r.rd(0, LVT_TIMER), r.rd(0, LVT_LINT1))
	}
	r.w(0, LVT_TIMER, 0x42)
	if r.rd(0, LVT_TIMER)&LVT_MASKED == 0 {
		t.Fatal("LVT unmasked while software-disabled")
	}
	if _, ok := l.PendingVector(); ok {
		t.Fatal("interrupt pending while software-disabled")
	}
	if !r.irr(0, 0x41) {
		t.Fatal("IRR lost on software disable (it is held)")
	}
	// NMI and INIT messages are still accepted.
	if n := r.bus.Deliver(Message{Mode: DELIVERY_NMI, Dest: 0}); n != 1 {
		t.Fatalf("NMI accepted by %d", n)
	}
	r.enable(0)
	if v, ok := l.PendingVector(); !ok || v != 0x41 {
		t.Fatalf("held vector after re-enable: %#x %v", v, ok)
	}
}

func TestEOIBroadcast(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	var got []uint8
	r.bus.AddEOIListener(func(v uint8) { got = append(got, v) })
	l := r.apics[0]
	l.Deliver(0x31, true)
	l.Deliver(0x32, false)
	if !r.apics[0].regBit(TMR, 0x31) || r.apics[0].regBit(TMR, 0x32) {
		t.Fatal("TMR not set for level / set for edge")
	}
	r.take(0) // 0x32 edge
	r.w(0, EOI, 0)
	r.take(0) // 0x31 level
	r.w(0, EOI, 0)
	if len(got) != 1 || got[0] != 0x31 {
		t.Fatalf("EOI broadcasts %x, want [31]", got)
	}
}

func TestMMIOAccessSizes(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.ID = 0x12 })
	m := r.mmio[0]
	at := func(off uint64) addr.GPA { return addr.GPA(MSI_ADDRESS_BASE + off) }
	b := make([]byte, 8)
	for _, tc := range []struct {
		name string
		off  uint64
		size int
		want []byte
	}{
		{"byte 3 of ID", ID + 3, 1, []byte{0x12}},
		{"word of VERSION", VERSION, 2, []byte{0x14, 0x00}},
		{"qword of ID", ID, 8, []byte{0, 0, 0, 0x12, 0, 0, 0, 0}},
		{"dword in slot padding", ID + 4, 4, []byte{0, 0, 0, 0}},
		{"misaligned dword", ID + 2, 4, []byte{0, 0x12, 0, 0}},
		{"reserved register", 0x400, 4, []byte{0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Read(at(tc.off), b[:tc.size]); err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if b[i] != tc.want[i] {
					t.Fatalf("read %x, want %x", b[:tc.size], tc.want)
				}
			}
		})
	}
	// Only aligned 32-bit (or 64-bit) stores write.
	for _, w := range []struct {
		off  uint64
		data []byte
	}{{TPR, []byte{0x50}}, {TPR, []byte{0x50, 0}}, {TPR + 1, []byte{0x50, 0, 0, 0}}, {TPR + 4, []byte{0x50, 0, 0, 0}}} {
		if err := m.Write(at(w.off), w.data); err != nil {
			t.Fatal(err)
		}
	}
	if tpr := r.rd(0, TPR); tpr != 0 {
		t.Fatalf("odd writes changed TPR to %#x", tpr)
	}
	if err := m.Write(at(TPR), []byte{0x50, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if tpr := r.rd(0, TPR); tpr != 0x50 {
		t.Fatalf("8-byte write: TPR %#x, want 0x50", tpr)
	}
	// Reserved registers set ESR bit 7 (after the ESR write latches it).
	r.w(0, 0x3c0, 1)
	r.w(0, ESR, 0)
	if esr := r.rd(0, ESR); esr != ESR_ILLEGAL_REGISTER {
		t.Fatalf("ESR = %#x, want illegal register address", esr)
	}
	r.w(0, ESR, 0)
	if esr := r.rd(0, ESR); esr != 0 {
		t.Fatalf("ESR not cleared: %#x", esr)
	}
	// Read-only registers ignore xAPIC writes.
	r.w(0, VERSION, 0)
	r.w(0, PPR, 0xff)
	if v := r.rd(0, VERSION); v != VERSION_VALUE {
		t.Fatalf("VERSION written: %#x", v)
	}
}

func TestErrorInterrupt(t *testing.T) {
	r := newRig(t, 2, nil)
	r.enable(0)
	r.enable(1)
	r.w(0, LVT_ERROR, 0xee)
	r.w(0, ICR_HI, 1<<24)
	r.w(0, ICR_LO, 0x05) // fixed, vector 5: illegal
	if r.irr(1, 5) {
		t.Fatal("illegal vector delivered")
	}
	if v, ok := r.take(0); !ok || v != 0xee {
		t.Fatalf("error interrupt: %#x %v", v, ok)
	}
	r.w(0, ESR, 0)
	if esr := r.rd(0, ESR); esr != ESR_SEND_ILLEGAL_VECTOR {
		t.Fatalf("sender ESR = %#x", esr)
	}
	// A received illegal vector sets the receiver's ESR bit 6.
	if r.apics[1].Deliver(3, false) {
		t.Fatal("vector 3 accepted")
	}
	r.w(1, ESR, 0)
	if esr := r.rd(1, ESR); esr != ESR_RECEIVE_ILLEGAL_VECTOR {
		t.Fatalf("receiver ESR = %#x", esr)
	}
}

func TestLINT(t *testing.T) {
	t.Run("ExtINT", func(t *testing.T) {
		r := newRig(t, 1, nil)
		l := r.apics[0]
		r.enable(0)
		r.w(0, LVT_LINT0, uint32(DELIVERY_EXTINT)<<8|LVT_MASKED)
		l.LINT0().SetLevel(true)
		if l.ExtINTPending() || l.AcceptsPICInterrupt() {
			t.Fatal("masked ExtINT pending")
		}
		n0, _, _, _ := r.cpus[0].counts()
		r.w(0, LVT_LINT0, uint32(DELIVERY_EXTINT)<<8)
		if n, _, _, _ := r.cpus[0].counts(); !l.ExtINTPending() || !l.AcceptsPICInterrupt() || n == n0 {
			t.Fatal("unmasking an asserted ExtINT: not pending or not notified")
		}
		l.LINT0().SetLevel(false)
		if l.ExtINTPending() {
			t.Fatal("ExtINT pending after the PIC lowered INTR")
		}
		if _, ok := l.PendingVector(); ok {
			t.Fatal("ExtINT went through the IRR")
		}
	})
	t.Run("hardware-disabled pins go straight through", func(t *testing.T) {
		r := newRig(t, 1, nil)
		l := r.apics[0]
		if err := l.WriteMSR(IA32_APIC_BASE, 0xfee00000); err != nil {
			t.Fatal(err)
		}
		l.LINT0().SetLevel(true)
		l.LINT1().SetLevel(true)
		l.LINT1().SetLevel(true)
		if _, nmi, _, _ := r.cpus[0].counts(); !l.ExtINTPending() || !l.AcceptsPICInterrupt() || nmi != 1 {
			t.Fatalf("disabled APIC: ExtINT %v, NMIs %d; want true 1", l.ExtINTPending(), nmi)
		}
	})
	t.Run("LINT1 NMI on rising edge", func(t *testing.T) {
		r := newRig(t, 1, nil)
		r.enable(0)
		r.w(0, LVT_LINT1, uint32(DELIVERY_NMI)<<8)
		for _, lv := range []bool{true, true, false, true, false} {
			r.apics[0].LINT1().SetLevel(lv)
		}
		if _, nmi, _, _ := r.cpus[0].counts(); nmi != 2 {
			t.Fatalf("NMIs %d, want 2", nmi)
		}
	})
	t.Run("LINT0 fixed level with remote IRR", func(t *testing.T) {
		r := newRig(t, 1, nil)
		var eois []uint8
		r.bus.AddEOIListener(func(v uint8) { eois = append(eois, v) })
		r.enable(0)
		r.w(0, LVT_LINT0, 0x45|LVT_TRIGGER_LEVEL|LVT_POLARITY_LOW)
		l := r.apics[0]
		l.LINT0().SetLevel(false) // active low: asserted
		if v, ok := r.take(0); !ok || v != 0x45 {
			t.Fatalf("level LINT0: %#x %v", v, ok)
		}
		if r.rd(0, LVT_LINT0)&LVT_REMOTE_IRR == 0 {
			t.Fatal("remote IRR not set")
		}
		l.LINT0().SetLevel(false) // still asserted: no second request
		if r.irr(0, 0x45) {
			t.Fatal("re-requested while remote IRR set")
		}
		r.w(0, EOI, 0) // still asserted: re-requested
		if r.rd(0, LVT_LINT0)&LVT_REMOTE_IRR == 0 || !r.irr(0, 0x45) {
			t.Fatal("EOI with the line asserted should re-request")
		}
		l.LINT0().SetLevel(true) // deasserted
		r.take(0)
		r.w(0, EOI, 0)
		if r.rd(0, LVT_LINT0)&LVT_REMOTE_IRR != 0 || r.irr(0, 0x45) {
			t.Fatal("EOI with the line deasserted should clear remote IRR and request nothing")
		}
		if len(eois) != 2 {
			t.Fatalf("EOI broadcasts %d, want 2", len(eois))
		}
	})
}

func TestCR8(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	l := r.apics[0]
	l.SetCR8(9)
	if tpr := r.rd(0, TPR); tpr != 0x90 || l.CR8() != 9 {
		t.Fatalf("TPR %#x CR8 %d", tpr, l.CR8())
	}
	l.Deliver(0x95, false)
	if _, ok := l.PendingVector(); ok {
		t.Fatal("CR8 9 did not block class 9")
	}
	l.SetCR8(0)
	if v, ok := l.PendingVector(); !ok || v != 0x95 {
		t.Fatal("CR8 0 still blocks")
	}
}

func TestNoAllocs(t *testing.T) {
	r := newRig(t, 4, nil)
	for i := range r.apics {
		r.enable(i)
	}
	r.bus.AddEOIListener(func(uint8) {})
	l := r.apics[0]
	m := Message{Vector: 0x40, Mode: DELIVERY_FIXED, Logical: true, Dest: 0xff}
	hi, lo := []byte{0, 0, 0, 2}, []byte{0x43, 0, 0, 0}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Deliver", func() { l.Deliver(0x41, true) }},
		{"PendingVector+Accept+EOI", func() {
			l.Deliver(0x42, true)
			if v, ok := l.PendingVector(); ok {
				l.Accept(v)
			}
			l.EOI()
		}},
		{"Bus.Deliver", func() { r.bus.Deliver(m) }},
		{"IPI through the ICR", func() {
			l.Write(ICR_HI, hi)
			l.Write(ICR_LO, lo)
		}},
		{"EOI register", func() { l.Write(EOI, lo) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(100, tc.f); a != 0 {
				t.Errorf("%s allocates %.1f times", tc.name, a)
			}
		})
	}
	r.x2(1)
	if a := testing.AllocsPerRun(100, func() { _ = r.apics[1].WriteMSR(X2APIC_MSR_BASE+SELF_IPI>>4, 0x44) }); a != 0 {
		t.Errorf("SELF IPI allocates %.1f times", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = r.apics[1].ReadMSR(0x801) }); a != 0 {
		t.Errorf("#GP path allocates %.1f times", a)
	}
}

// fakeLines stands in for hv/irq.Lines.
type fakeLines struct{ nmi, init, sipi int }

func (f *fakeLines) RaiseNMI()       { f.nmi++ }
func (f *fakeLines) RaiseInit()      { f.init++ }
func (f *fakeLines) RaiseSIPI(uint8) { f.sipi++ }

func TestLinesCPU(t *testing.T) {
	r := newRig(t, 1, nil)
	var fl fakeLines
	woken := 0
	r.apics[0].SetCPU(LinesCPU{Lines: &fl, Wake: func() { woken++ }})
	r.enable(0)
	for _, m := range []DeliveryMode{DELIVERY_NMI, DELIVERY_INIT, DELIVERY_STARTUP, DELIVERY_FIXED} {
		r.bus.Deliver(Message{Mode: m, Vector: 0x40, Dest: 0})
		r.enable(0) // INIT software-disabled it
	}
	if fl.nmi != 1 || fl.init != 1 || fl.sipi != 1 || woken != 1 {
		t.Fatalf("lines %+v woken %d", fl, woken)
	}
}

func TestNewRejects(t *testing.T) {
	clk := &vclock.Fake{}
	for _, tc := range []struct {
		name string
		bus  *Bus
		cfg  Config
	}{
		{"no bus", nil, Config{Clock: clk}},
		{"no clock", NewBus(), Config{}},
		{"deadline without TSC", NewBus(), Config{Clock: clk, TSCDeadline: true}},
		{"ID 255 without x2APIC", NewBus(), Config{Clock: clk, ID: 255}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.bus, tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if l, err := New(NewBus(), Config{Clock: clk, ID: 300, X2APIC: true}); err != nil || l.InitialID() != 300 {
		t.Fatalf("x2APIC ID 300: %v", err)
	}
	if DELIVERY_EXTINT.String() != "extint" || DeliveryMode(3).String() != "reserved3" {
		t.Fatal("DeliveryMode names")
	}
}

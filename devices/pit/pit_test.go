package pit

import (
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/bus"
)

// rig is a PIT on a port bus with a fake clock and a recording IRQ0.
type rig struct {
	t   *testing.T
	clk *vclock.Fake
	irq *irqline.Recorder
	p   *PIT
	b   *bus.PortBus
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, clk: &vclock.Fake{}, irq: &irqline.Recorder{}}
	r.p = New(r.clk, r.irq)
	r.b = bus.NewPortBus(bus.Policy{Strict: true})
	if err := r.b.Register(PORT_BASE, SIZE, r.p, "pit"); err != nil {
		t.Fatal(err)
	}
	if err := r.b.Register(PORT_NMI_SC, NMI_SC_SIZE, r.p.NMIControl(), "nmi-sc"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) out(port uint16, v byte) {
	r.t.Helper()
	if err := r.b.Write(port, []byte{v}); err != nil {
		r.t.Fatalf("out %#x: %v", port, err)
	}
}

func (r *rig) in(port uint16) byte {
	r.t.Helper()
	d := []byte{0}
	if err := r.b.Read(port, d); err != nil {
		r.t.Fatalf("in %#x: %v", port, err)
	}
	return d[0]
}

// advanceTo moves the clock to exactly k input clocks after mark.
func (r *rig) advanceTo(mark time.Duration, k uint64) {
	r.t.Helper()
	target := mark + ticksToDur(k)
	if now := r.clk.Now(); target > now {
		r.clk.Advance(target - now)
	}
}

// program writes a control word and an LSB-then-MSB count to counter ch.
func (r *rig) program(ch int, mode byte, n uint16) {
	r.t.Helper()
	r.out(PORT_BASE+PORT_CONTROL, byte(ch)<<CW_SC_SHIFT|RW_LSB_MSB<<CW_RW_SHIFT|mode<<CW_MODE_SHIFT)
	r.out(PORT_BASE+uint16(ch), byte(n))
	r.out(PORT_BASE+uint16(ch), byte(n>>8))
}

// read16 reads a counter LSB then MSB.
func (r *rig) read16(ch int) uint16 {
	lo := r.in(PORT_BASE + uint16(ch))
	hi := r.in(PORT_BASE + uint16(ch))
	return uint16(hi)<<8 | uint16(lo)
}

func TestTickConversion(t *testing.T) {
	for _, k := range []uint64{0, 1, 2, 1193, 1193182, 1193182 * 3600, 1 << 40} {
		d := ticksToDur(k)
		if got := durToTicks(d); got != k {
			t.Errorf("durToTicks(ticksToDur(%d)=%v) = %d", k, d, got)
		}
		if k > 0 && durToTicks(d-1) != k-1 {
			t.Errorf("ticksToDur(%d) = %v is not the first instant of tick %d", k, d, k)
		}
	}
	if got := durToTicks(time.Second); got != PIT_HZ {
		t.Errorf("one second = %d clocks, want %d", got, PIT_HZ)
	}
}

// TestModes checks count and OUT (through port 61h bit 5) of counter 2 at
// exact numbers of input clocks after GATE rises, in every mode.
func TestModes(t *testing.T) {
	type point struct {
		k     uint64
		count uint16
		out   bool
	}
	for _, tc := range []struct {
		name string
		mode byte
		n    uint16
		pts  []point
	}{
		{"mode0", 0, 100, []point{{0, 100, false}, {50, 50, false}, {99, 1, false}, {100, 0, true}, {101, 0xffff, true}, {1000, 0xffff - 899, true}}},
		{"mode1", 1, 100, []point{{0, 100, false}, {99, 1, false}, {100, 0, true}, {300, 0xffff - 199, true}}},
		{"mode2", 2, 100, []point{{0, 100, true}, {98, 2, true}, {99, 1, false}, {100, 100, true}, {199, 1, false}, {250, 50, true}}},
		{"mode3-even", 3, 100, []point{{0, 100, true}, {49, 2, true}, {50, 100, false}, {99, 2, false}, {100, 100, true}}},
		{"mode3-odd", 3, 5, []point{{0, 5, true}, {2, 1, true}, {3, 5, false}, {4, 3, false}, {5, 5, true}}},
		{"mode4", 4, 100, []point{{0, 100, true}, {99, 1, true}, {100, 0, false}, {101, 0xffff, true}}},
		{"mode5", 5, 100, []point{{0, 100, true}, {100, 0, false}, {101, 0xffff, true}}},
		{"mode6-is-2", 6, 10, []point{{9, 1, false}, {10, 10, true}}},
		{"count0-is-65536", 2, 0, []point{{0, 0, true}, {1, 0xffff, true}, {65535, 1, false}, {65536, 0, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.out(PORT_NMI_SC, 0) // GATE2 low
			r.program(2, tc.mode, tc.n)
			r.out(PORT_NMI_SC, NMI_SC_TIM_CNT2_EN) // rising edge: start or trigger
			mark := r.clk.Now()
			for _, pt := range tc.pts {
				r.advanceTo(mark, pt.k)
				out := r.in(PORT_NMI_SC)&NMI_SC_TMR2_OUT_STS != 0
				// Latch, so that LSB and MSB come from one instant.
				r.out(PORT_BASE+PORT_CONTROL, 2<<CW_SC_SHIFT|RW_LATCH)
				if got := r.read16(2); got != pt.count || out != pt.out {
					t.Errorf("after %d clocks: count %d out %v, want %d %v", pt.k, got, out, pt.count, pt.out)
				}
			}
			if r.irq.Edges() != 0 {
				t.Errorf("counter 2 raised IRQ0 %d times", r.irq.Edges())
			}
		})
	}
}

func TestGateSuspendsMode0(t *testing.T) {
	r := newRig(t)
	r.out(PORT_NMI_SC, NMI_SC_TIM_CNT2_EN)
	r.program(2, 0, 1000)
	mark := r.clk.Now()
	r.advanceTo(mark, 300)
	r.out(PORT_NMI_SC, 0) // suspend at 700
	r.clk.Advance(time.Second)
	r.out(PORT_BASE+PORT_CONTROL, 2<<CW_SC_SHIFT)
	if got := r.read16(2); got != 700 {
		t.Fatalf("count while GATE low = %d, want 700", got)
	}
	r.out(PORT_NMI_SC, NMI_SC_TIM_CNT2_EN)
	mark = r.clk.Now()
	r.advanceTo(mark, 699)
	if r.in(PORT_NMI_SC)&NMI_SC_TMR2_OUT_STS != 0 {
		t.Fatal("OUT high one clock early")
	}
	r.advanceTo(mark, 700)
	if r.in(PORT_NMI_SC)&NMI_SC_TMR2_OUT_STS == 0 {
		t.Fatal("OUT low at terminal count")
	}
}

// TestLinuxTSCCalibration follows the sequence Linux uses to calibrate the
// TSC against counter 2: GATE high and speaker off through port 61h, mode
// 0 LSB/MSB binary, a count for 10 ms, then poll port 61h bit 5.
func TestLinuxTSCCalibration(t *testing.T) {
	r := newRig(t)
	const latch = PIT_HZ / 100
	v := r.in(PORT_NMI_SC)
	r.out(PORT_NMI_SC, v&^NMI_SC_SPKR_DAT_EN|NMI_SC_TIM_CNT2_EN)
	r.out(PORT_BASE+PORT_CONTROL, 0xb0)
	r.out(PORT_BASE+PORT_COUNTER2, latch&0xff)
	r.out(PORT_BASE+PORT_COUNTER2, latch>>8)
	start := r.clk.Now()
	polls := 0
	for r.in(PORT_NMI_SC)&NMI_SC_TMR2_OUT_STS == 0 {
		r.clk.Advance(time.Microsecond)
		if polls++; polls > 20000 {
			t.Fatal("OUT2 never rose")
		}
	}
	got := r.clk.Now() - start
	want := ticksToDur(latch)
	if got < want || got > want+time.Microsecond {
		t.Fatalf("OUT2 rose after %v, want %v", got, want)
	}
}

// TestLinuxQuickCalibration reads the running count's MSB without a latch,
// as Linux's quick PIT calibration does, and checks it falls at 1/256 of
// the input clock.
func TestLinuxQuickCalibration(t *testing.T) {
	r := newRig(t)
	r.out(PORT_NMI_SC, NMI_SC_TIM_CNT2_EN)
	r.out(PORT_BASE+PORT_CONTROL, 0xb0)
	r.out(PORT_BASE+PORT_COUNTER2, 0xff)
	r.out(PORT_BASE+PORT_COUNTER2, 0xff)
	mark := r.clk.Now()
	for msb := 0xff; msb > 0xf0; msb-- {
		r.advanceTo(mark, uint64(0xffff-(msb<<8|0x80)))
		r.in(PORT_BASE + PORT_COUNTER2) // LSB, ignored
		if got := r.in(PORT_BASE + PORT_COUNTER2); int(got) != msb {
			t.Fatalf("MSB = %#x, want %#x", got, msb)
		}
	}
}

func TestIRQ0Periodic(t *testing.T) {
	for _, mode := range []byte{2, 3} {
		r := newRig(t)
		const n = 11932 // ~10 ms
		r.program(0, mode, n)
		// Advance a second in uneven steps: the count of
		// interrupts must be exact (no drift).
		for i := 0; i < 1000; i++ {
			r.clk.Advance(time.Millisecond + time.Duration(i%7)*time.Microsecond)
		}
		elapsed := r.clk.Now()
		want := int(durToTicks(elapsed) / n)
		if got := r.irq.Edges(); got != want {
			t.Errorf("mode %d: %d interrupts in %v, want %d", mode, got, elapsed, want)
		}
		if s := r.p.Stats(); s.Coalesced != 0 || s.IRQs != uint64(want) {
			t.Errorf("mode %d: stats %+v", mode, s)
		}
		if r.irq.Level() {
			t.Error("IRQ0 left high")
		}
		if r.clk.Pending() != 1 {
			t.Errorf("%d timers pending, want 1", r.clk.Pending())
		}
	}
}

// lateClock fires every timer lag after it is due, like a busy host.
type lateClock struct {
	*vclock.Fake
	lag time.Duration
}

func (c lateClock) AfterFunc(d time.Duration, f func()) vclock.Timer {
	return c.Fake.AfterFunc(d+c.lag, f)
}

func TestIRQ0CoalescesWhenLate(t *testing.T) {
	fake := &vclock.Fake{}
	var irq irqline.Recorder
	p := New(lateClock{fake, 35 * time.Millisecond}, &irq)
	const n = 11932
	p.Write(PORT_CONTROL, []byte{0x34})
	p.Write(PORT_COUNTER0, []byte{n & 0xff})
	p.Write(PORT_COUNTER0, []byte{n >> 8})
	fake.Advance(time.Second)
	s := p.Stats()
	// Every pulse falls 35 ms late and covers the periods missed.
	if s.IRQs == 0 || s.IRQs > 30 {
		t.Fatalf("%d interrupts, want about 25 (one per 40 ms)", s.IRQs)
	}
	if uint64(irq.Edges()) != s.IRQs {
		t.Fatalf("recorder saw %d edges, stats %d", irq.Edges(), s.IRQs)
	}
	// No drift: delivered plus coalesced periods are all the periods
	// due by the last pulse.
	total := s.IRQs + s.Coalesced
	periods := durToTicks(fake.Now()) / n
	if total > periods || periods-total > 4 {
		t.Fatalf("delivered %d + coalesced %d = %d periods, %d elapsed", s.IRQs, s.Coalesced, total, periods)
	}
}

func TestIRQ0MinPeriod(t *testing.T) {
	r := newRig(t)
	r.program(0, 2, 2) // 596 kHz
	r.clk.Advance(10 * time.Millisecond)
	max := int(10*time.Millisecond/MIN_IRQ_PERIOD) + 1
	if got := r.irq.Edges(); got == 0 || got > max {
		t.Fatalf("%d interrupts in 10 ms, want 1..%d", got, max)
	}
	s := r.p.Stats()
	if periods := durToTicks(r.clk.Now()) / 2; s.IRQs+s.Coalesced+minIRQTicks/2 < periods {
		t.Fatalf("stats %+v account for fewer than the %d periods", s, periods)
	}
}

func TestIRQ0OneShot(t *testing.T) {
	for _, tc := range []struct {
		name string
		cw   byte
	}{{"mode0", 0x30}, {"mode4-linux-oneshot", 0x38}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			const n = 1193 // ~1 ms
			r.out(PORT_BASE+PORT_CONTROL, tc.cw)
			r.out(PORT_BASE, n&0xff)
			r.out(PORT_BASE, n>>8)
			mark := r.clk.Now()
			r.advanceTo(mark, n-1)
			if r.irq.Edges() != 0 {
				t.Fatal("interrupt before terminal count")
			}
			r.advanceTo(mark, n)
			if r.irq.Edges() != 1 {
				t.Fatalf("%d interrupts at terminal count, want 1", r.irq.Edges())
			}
			r.clk.Advance(time.Second)
			if r.irq.Edges() != 1 || r.clk.Pending() != 0 {
				t.Fatalf("after a second: %d interrupts, %d timers; want 1, 0", r.irq.Edges(), r.clk.Pending())
			}
			// Reprogramming re-arms; a control word alone disarms.
			r.out(PORT_BASE, n&0xff)
			r.out(PORT_BASE, n>>8)
			r.out(PORT_BASE+PORT_CONTROL, tc.cw)
			r.clk.Advance(time.Second)
			if r.irq.Edges() != 1 || r.clk.Pending() != 0 {
				t.Fatalf("control word did not cancel the shot: %d interrupts, %d timers", r.irq.Edges(), r.clk.Pending())
			}
		})
	}
}

func TestNewCountInMode2TakesEffectAtPeriodEnd(t *testing.T) {
	r := newRig(t)
	r.program(0, 2, 1000)
	mark := r.clk.Now()
	r.advanceTo(mark, 400)
	r.out(PORT_BASE, 0x20) // new count 0x0720: LSB
	r.out(PORT_BASE, 0x07) // MSB
	// The current cycle ends at 1000; the next at 1000+0x0720.
	r.advanceTo(mark, 999)
	if r.irq.Edges() != 0 {
		t.Fatal("early interrupt")
	}
	r.advanceTo(mark, 1000)
	if r.irq.Edges() != 1 {
		t.Fatalf("%d interrupts at the end of the first cycle, want 1", r.irq.Edges())
	}
	r.advanceTo(mark, 1000+0x0720-1)
	if r.irq.Edges() != 1 {
		t.Fatal("new count not in effect")
	}
	r.advanceTo(mark, 1000+0x0720)
	if r.irq.Edges() != 2 {
		t.Fatalf("%d interrupts, want 2", r.irq.Edges())
	}
}

func TestLatchAndReadBack(t *testing.T) {
	r := newRig(t)
	r.program(1, 2, 0x1234)
	mark := r.clk.Now()
	r.advanceTo(mark, 0x34)
	r.out(PORT_BASE+PORT_CONTROL, 1<<CW_SC_SHIFT|RW_LATCH)
	r.advanceTo(mark, 0x100)
	r.out(PORT_BASE+PORT_CONTROL, 1<<CW_SC_SHIFT|RW_LATCH) // ignored: already latched
	if got := r.read16(1); got != 0x1200 {
		t.Fatalf("latched count %#x, want 0x1200", got)
	}
	if got := r.read16(1); got != 0x1234-0x100 {
		t.Fatalf("live count %#x, want %#x", got, 0x1234-0x100)
	}

	// Read-back: status and count of counter 1; status comes first.
	r.advanceTo(mark, 0x200)
	r.out(PORT_BASE+PORT_CONTROL, 0xc0|RB_CNT1)
	st := r.in(PORT_BASE + 1)
	wantSt := byte(STATUS_OUTPUT | RW_LSB_MSB<<CW_RW_SHIFT | 2<<CW_MODE_SHIFT)
	if st != wantSt {
		t.Fatalf("status %#08b, want %#08b", st, wantSt)
	}
	if got := r.read16(1); got != 0x1234-0x200 {
		t.Fatalf("read-back count %#x, want %#x", got, 0x1234-0x200)
	}

	// Null count: set by a control word, cleared when a count loads.
	r.out(PORT_BASE+PORT_CONTROL, 1<<CW_SC_SHIFT|RW_LSB<<CW_RW_SHIFT|0<<CW_MODE_SHIFT)
	r.out(PORT_BASE+PORT_CONTROL, 0xc0|RB_NOT_COUNT|RB_CNT1)
	if st := r.in(PORT_BASE + 1); st != STATUS_NULL_COUNT|RW_LSB<<CW_RW_SHIFT {
		t.Fatalf("status after control word %#08b", st)
	}
	r.out(PORT_BASE+1, 50)
	r.out(PORT_BASE+PORT_CONTROL, 0xc0|RB_NOT_COUNT|RB_CNT1)
	if st := r.in(PORT_BASE + 1); st != RW_LSB<<CW_RW_SHIFT {
		t.Fatalf("status after count %#08b", st)
	}
	// LSB-only access: reads return the LSB, repeatedly.
	if a, b := r.in(PORT_BASE+1), r.in(PORT_BASE+1); a != 50 || b != 50 {
		t.Fatalf("LSB reads %d %d, want 50 50", a, b)
	}
}

func TestBCD(t *testing.T) {
	r := newRig(t)
	r.out(PORT_NMI_SC, NMI_SC_TIM_CNT2_EN)
	r.out(PORT_BASE+PORT_CONTROL, 0xb1) // counter 2, LSB/MSB, mode 0, BCD
	r.out(PORT_BASE+2, 0x00)
	r.out(PORT_BASE+2, 0x01) // 100 decimal
	mark := r.clk.Now()
	r.advanceTo(mark, 11)
	if got := r.read16(2); got != 0x0089 {
		t.Fatalf("BCD count %#04x, want 0x0089", got)
	}
	r.advanceTo(mark, 101)
	if got := r.read16(2); got != 0x9999 {
		t.Fatalf("BCD count after wrap %#04x, want 0x9999", got)
	}
}

func TestNMIControlPort(t *testing.T) {
	r := newRig(t)
	r.out(PORT_NMI_SC, 0xff)
	if got := r.in(PORT_NMI_SC) & NMI_SC_RW_MASK; got != NMI_SC_RW_MASK {
		t.Fatalf("writable bits read %#x", got)
	}
	if r.in(PORT_NMI_SC)&(NMI_SC_IOCHK_NMI_STS|NMI_SC_SERR_NMI_STS) != 0 {
		t.Fatal("NMI status bits set")
	}
	a := r.in(PORT_NMI_SC) & NMI_SC_REF_TOGGLE
	r.clk.Advance(REFRESH_PERIOD)
	if b := r.in(PORT_NMI_SC) & NMI_SC_REF_TOGGLE; a == b {
		t.Fatal("refresh bit did not toggle")
	}
	// Port 43h reads FFh; a wide access is split into byte accesses.
	if got := r.in(PORT_BASE + PORT_CONTROL); got != 0xff {
		t.Fatalf("port 43h reads %#x", got)
	}
	r.program(2, 0, 0x0302)
	d := []byte{0, 0, 0, 0}
	r.p.Read(0, d)
	if d[3] != 0xff || d[2] != 0x02 {
		t.Fatalf("dword read at 40h = % x", d)
	}
}

func TestStop(t *testing.T) {
	r := newRig(t)
	r.program(0, 2, 1000)
	r.p.Stop()
	r.program(0, 2, 1000)
	r.clk.Advance(time.Second)
	if r.irq.Edges() != 0 || r.clk.Pending() != 0 {
		t.Fatalf("after Stop: %d interrupts, %d timers", r.irq.Edges(), r.clk.Pending())
	}
}

var _ bus.Device = (*PIT)(nil)
var _ bus.Device = (*NMIControl)(nil)

// FuzzPIT drives the PIT with accesses decoded from the input, three bytes
// each: an opcode (port, direction, width, clock step), a value and a step
// size. It checks that nothing panics, that at most one timer is pending,
// that IRQ0 is never left high and that interrupts stay rate-limited.
func FuzzPIT(f *testing.F) {
	f.Add([]byte{0x03, 0x34, 0, 0x00, 0x9c, 0, 0x00, 0x2e, 0, 0xc0, 0, 200})
	f.Add([]byte{0x04, 0x01, 0, 0x03, 0xb0, 0, 0x02, 0xff, 0, 0x02, 0xff, 0, 0x84, 0, 9, 0x82, 0, 9})
	f.Add([]byte{0x03, 0xde, 0, 0x03, 0x38, 0, 0x00, 0x10, 0, 0x00, 0, 0, 0xc0, 0, 255})
	f.Add([]byte{0x03, 0x16, 0, 0x00, 0x02, 0, 0xc0, 0, 255, 0x03, 0xc2, 0, 0x80, 0, 0, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		clk := &vclock.Fake{}
		var irq irqline.Recorder
		p := New(clk, &irq)
		nmi := p.NMIControl()
		writes := 0
		buf := make([]byte, 8)
		for len(in) >= 3 {
			op, v, step := in[0], in[1], in[2]
			in = in[3:]
			width := 1 << (op >> 4 & 3) // 1, 2, 4, 8
			d := buf[:width]
			for i := range d {
				d[i] = v + byte(i)
			}
			read := op&0x40 != 0
			switch port := op & 7; {
			case op&0x80 != 0:
				// Up to ~67 ms: long enough to wrap counters,
				// short enough to keep executions fast.
				clk.Advance(time.Duration(step) << (op & 0xf) * time.Nanosecond)
			case port < 4:
				off := uint64(port)
				if read {
					p.Read(off, d)
				} else {
					p.Write(off, d)
					writes++
				}
			default:
				if read {
					nmi.Read(0, d)
				} else {
					nmi.Write(0, d)
				}
			}
			if clk.Pending() > 1 {
				t.Fatalf("%d timers pending", clk.Pending())
			}
		}
		clk.Advance(100 * time.Millisecond)
		if irq.Level() {
			t.Fatal("IRQ0 left high")
		}
		// At most one pulse per MIN_IRQ_PERIOD, plus one per write
		// (each may re-arm a one-shot).
		limit := int(clk.Now()/MIN_IRQ_PERIOD) + writes + 1
		if irq.Edges() > limit {
			t.Fatalf("%d interrupts in %v with %d writes", irq.Edges(), clk.Now(), writes)
		}
		p.Stop()
		if clk.Pending() != 0 {
			t.Fatal("timer left after Stop")
		}
	})
}

// TestConcurrent runs IRQ0 on the real clock while several goroutines
// program and read the counters, for the race detector.
func TestConcurrent(t *testing.T) {
	var irq irqline.Recorder
	p := New(vclock.NewReal(), &irq)
	p.Write(PORT_CONTROL, []byte{0x34})
	p.Write(PORT_COUNTER0, []byte{0x00, 0x01}) // 256 clocks: MIN_IRQ_PERIOD applies
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := []byte{0}
			for i := 0; i < 2000; i++ {
				p.Read(uint64(i%3), d)
				p.NMIControl().Write(0, []byte{byte(i)})
				p.NMIControl().Read(0, d)
				if i%100 == 0 {
					p.Write(PORT_CONTROL, []byte{0x36})
					p.Write(PORT_COUNTER0, []byte{byte(i), 0x02})
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	p.Stop()
}

func TestNoAlloc(t *testing.T) {
	r := newRig(t)
	d := []byte{0}
	allocs := testing.AllocsPerRun(100, func() {
		r.p.Write(PORT_CONTROL, []byte{0xb0})
		r.p.Write(PORT_COUNTER2, []byte{0x10})
		r.p.Write(PORT_COUNTER2, []byte{0x27})
		r.p.NMIControl().Write(0, []byte{NMI_SC_TIM_CNT2_EN})
		r.p.NMIControl().Read(0, d)
		r.p.Read(PORT_COUNTER2, d)
		r.p.Read(PORT_COUNTER0, d)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access", allocs)
	}
}

package pmtimer

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/bus"
)

const base = DEFAULT_PORT_BASE

type sleepCall struct {
	typ uint8
	s5  bool
}

type rig struct {
	t      *testing.T
	clk    *vclock.Fake
	sci    *irqline.Recorder
	blk    *Block
	b      *bus.PortBus
	sleeps []sleepCall
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, clk: &vclock.Fake{}, sci: &irqline.Recorder{}}
	cfg.Clock, cfg.SCI = r.clk, r.sci
	cfg.Sleep = func(typ uint8, s5 bool) { r.sleeps = append(r.sleeps, sleepCall{typ, s5}) }
	r.blk = NewBlock(cfg)
	r.b = bus.NewPortBus(bus.Policy{Strict: true})
	if err := r.b.Register(base, BLOCK_SIZE, r.blk, "acpi-pm"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) in(port uint16, n int) uint32 {
	r.t.Helper()
	d := make([]byte, n)
	if err := r.b.Read(port, d); err != nil {
		r.t.Fatal(err)
	}
	v := uint32(0)
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint32(d[i])
	}
	return v
}

func (r *rig) out(port uint16, n int, v uint32) {
	r.t.Helper()
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(v >> (8 * i))
	}
	if err := r.b.Write(port, d); err != nil {
		r.t.Fatal(err)
	}
}

func TestLayout(t *testing.T) {
	// The FADT wants each block's address and length.
	for _, tc := range []struct {
		name        string
		off, length int
	}{
		{"PM1a_EVT", BLOCK_PM1_EVT, PM1_EVT_LEN},
		{"PM1a_CNT", BLOCK_PM1_CNT, PM1_CNT_LEN},
		{"PM_TMR", BLOCK_PM_TMR, PM_TMR_LEN},
	} {
		if tc.off+tc.length > BLOCK_SIZE || tc.off%tc.length != 0 {
			t.Errorf("%s at %d+%d does not fit BLOCK_SIZE %d aligned", tc.name, tc.off, tc.length, BLOCK_SIZE)
		}
	}
	if PM1_EVT_LEN != 4 || PM1_CNT_LEN != 2 || PM_TMR_LEN != 4 || BLOCK_PM1_EN != 2 {
		t.Error("register lengths differ from ACPI's fixed lengths")
	}
}

func TestTimer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ext32 bool
		at    time.Duration
		want  uint32
	}{
		{"24-at-1s", false, time.Second, PM_TIMER_HZ},
		{"24-wraps", false, 10 * time.Second, (10 * PM_TIMER_HZ) & 0xffffff},
		{"32-at-10s", true, 10 * time.Second, 10 * PM_TIMER_HZ},
		{"32-wraps", true, 1200 * time.Second, uint32(uint64(1200*PM_TIMER_HZ) & 0xffffffff)},
		{"fraction", false, 1 * time.Microsecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{Ext32: tc.ext32})
			r.clk.Advance(tc.at)
			if got := r.in(base+BLOCK_PM_TMR, 4); got != tc.want {
				t.Errorf("PM_TMR = %#x, want %#x", got, tc.want)
			}
			if got := r.in(base+BLOCK_PM_TMR+2, 2); got != tc.want>>16 {
				t.Errorf("PM_TMR high word = %#x, want %#x", got, tc.want>>16)
			}
			r.out(base+BLOCK_PM_TMR, 4, 0) // read-only
			if got := r.blk.Timer().Value(); got != tc.want {
				t.Errorf("after a write PM_TMR = %#x", got)
			}
		})
	}
	// The timer on its own.
	clk := &vclock.Fake{}
	tm := NewTimer(clk, false)
	clk.Advance(2 * time.Second)
	d := make([]byte, 4)
	tm.Read(0, d)
	if got := binary.LittleEndian.Uint32(d); got != 2*PM_TIMER_HZ {
		t.Errorf("standalone timer = %d", got)
	}
}

func TestPowerButton(t *testing.T) {
	r := newRig(t, Config{})
	if r.in(base+BLOCK_PM1_CNT, 2)&SCI_EN == 0 {
		t.Fatal("SCI_EN clear without LegacyMode")
	}
	// Not enabled: status only.
	r.blk.PressPowerButton()
	if r.sci.Edges() != 0 || r.in(base+BLOCK_PM1_STS, 2)&PWRBTN_STS == 0 {
		t.Fatal("disabled power button")
	}
	r.out(base+BLOCK_PM1_STS, 2, PWRBTN_STS)
	// The OS enables the fixed power button event.
	r.out(base+BLOCK_PM1_EN, 2, PWRBTN_EN)
	r.blk.PressPowerButton()
	if !r.sci.Level() {
		t.Fatal("power button did not raise the SCI")
	}
	// A dword read of the event block: status low, enable high.
	if got := r.in(base+BLOCK_PM1_EVT, 4); got != PWRBTN_STS|PWRBTN_EN<<16 {
		t.Fatalf("PM1_EVT = %#x", got)
	}
	// Writing 0 clears nothing; writing 1 clears.
	r.out(base+BLOCK_PM1_STS, 2, 0)
	if !r.sci.Level() {
		t.Fatal("write of 0 cleared the status")
	}
	r.out(base+BLOCK_PM1_STS+1, 1, PWRBTN_STS>>8) // byte access to the high byte
	if r.sci.Level() || r.in(base+BLOCK_PM1_STS, 2) != 0 {
		t.Fatal("write of 1 did not clear PWRBTN_STS")
	}
	if r.sci.Edges() != 1 {
		t.Fatalf("%d SCI edges, want 1", r.sci.Edges())
	}
}

func TestLegacyMode(t *testing.T) {
	r := newRig(t, Config{LegacyMode: true})
	r.out(base+BLOCK_PM1_EN, 2, PWRBTN_EN)
	r.out(base+BLOCK_PM1_CNT, 2, SCI_EN) // OSPM cannot set it
	r.blk.PressPowerButton()
	if r.sci.Level() || r.in(base+BLOCK_PM1_CNT, 2)&SCI_EN != 0 {
		t.Fatal("SCI in legacy mode")
	}
	r.blk.SetSCIEnabled(true)
	if !r.sci.Level() {
		t.Fatal("pending event not signalled on entering ACPI mode")
	}
	r.out(base+BLOCK_PM1_CNT, 2, 0) // OSPM preserves... or not: SCI_EN stays
	if r.in(base+BLOCK_PM1_CNT, 2)&SCI_EN == 0 {
		t.Fatal("guest cleared SCI_EN")
	}
}

func TestSleep(t *testing.T) {
	const s5 = 5
	for _, tc := range []struct {
		name   string
		writes [][]byte // at PM1_CNT
		want   []sleepCall
	}{
		{"linux-s5", [][]byte{{0, s5 << 2}, {0, s5<<2 | SLP_EN>>8}}, []sleepCall{{s5, true}}},
		{"s1", [][]byte{{0, 1 << 2}, {0, 1<<2 | SLP_EN>>8}}, []sleepCall{{1, false}}},
		{"bytes", [][]byte{{0}, {0}}, nil},
		{"slp-typ-only", [][]byte{{0, s5 << 2}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{S5SleepType: s5})
			for _, w := range tc.writes {
				if err := r.b.Write(base+BLOCK_PM1_CNT, w); err != nil {
					t.Fatal(err)
				}
			}
			if len(r.sleeps) != len(tc.want) || (len(tc.want) > 0 && r.sleeps[0] != tc.want[0]) {
				t.Fatalf("Sleep calls %v, want %v", r.sleeps, tc.want)
			}
			if r.in(base+BLOCK_PM1_CNT, 2)&SLP_EN != 0 {
				t.Fatal("SLP_EN reads 1")
			}
		})
	}
	// A byte write to the high byte alone also sleeps, with the SLP_TYP
	// it carries.
	r := newRig(t, Config{S5SleepType: s5})
	r.out(base+BLOCK_PM1_CNT+1, 1, s5<<2|SLP_EN>>8)
	if len(r.sleeps) != 1 || r.sleeps[0] != (sleepCall{s5, true}) {
		t.Fatalf("Sleep calls %v", r.sleeps)
	}
	// Waking sets WAK_STS, cleared by writing 1.
	r.blk.Wake()
	if r.in(base+BLOCK_PM1_STS, 2) != WAK_STS || r.sci.Level() {
		t.Fatal("Wake")
	}
	r.out(base+BLOCK_PM1_STS, 2, WAK_STS)
	if r.in(base+BLOCK_PM1_STS, 2) != 0 {
		t.Fatal("WAK_STS not cleared")
	}
}

func TestTimerStatusAndSCI(t *testing.T) {
	r := newRig(t, Config{})
	toggle := ticksToDur(1 << 23)
	r.clk.Advance(toggle - 1)
	if r.in(base+BLOCK_PM1_STS, 2)&TMR_STS != 0 {
		t.Fatal("TMR_STS before bit 23 toggled")
	}
	r.clk.Advance(1)
	if r.in(base+BLOCK_PM1_STS, 2)&TMR_STS == 0 {
		t.Fatal("TMR_STS not set when bit 23 toggled")
	}
	if r.sci.Edges() != 0 || r.clk.Pending() != 0 {
		t.Fatal("SCI or timer without TMR_EN")
	}
	r.out(base+BLOCK_PM1_STS, 2, TMR_STS)
	r.out(base+BLOCK_PM1_EN, 2, TMR_EN)
	r.clk.Advance(ticksToDur(2<<23) - 1 - r.clk.Now())
	if r.sci.Level() {
		t.Fatal("early SCI")
	}
	r.clk.Advance(1)
	if !r.sci.Level() || r.clk.Pending() != 0 {
		t.Fatalf("SCI %v, %d timers at the toggle", r.sci.Level(), r.clk.Pending())
	}
	r.out(base+BLOCK_PM1_STS, 2, TMR_STS)
	if r.sci.Level() || r.clk.Pending() != 1 {
		t.Fatal("clearing TMR_STS did not lower the SCI and re-arm")
	}
	r.blk.Stop()
	r.clk.Advance(10 * toggle)
	if r.sci.Edges() != 1 || r.clk.Pending() != 0 {
		t.Fatal("timer ran after Stop")
	}
}

func TestNoAlloc(t *testing.T) {
	r := newRig(t, Config{})
	d := make([]byte, 4)
	allocs := testing.AllocsPerRun(100, func() {
		r.blk.Read(BLOCK_PM_TMR, d)
		r.blk.Read(BLOCK_PM1_EVT, d)
		r.blk.Write(BLOCK_PM1_STS, d[:2])
		r.blk.Timer().Read(0, d)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access", allocs)
	}
}

var _ bus.Device = (*Block)(nil)
var _ bus.Device = (*Timer)(nil)

// FuzzBlock drives a Block with accesses decoded from the input, three
// bytes each (opcode, value, clock step), and host events. It checks that
// nothing panics, that the SCI is high exactly when an enabled event is
// pending with SCI_EN, that SLP_EN and undefined bits read 0, that Sleep
// is called only for writes with SLP_EN, that at most one timer is pending
// and that the PM timer stays a 24-bit counter.
func FuzzBlock(f *testing.F) {
	f.Add([]byte{0x02, 0x00, 0, 0x03, 0x01, 0, 0xc0, 0, 0, 0x00, 0x00, 0})
	f.Add([]byte{0x04, 0x00, 0, 0x05, 0x34, 0, 0x15, 0x00, 0})
	f.Add([]byte{0x02, 0x01, 0, 0x80, 0x80, 0xff, 0x80, 0x80, 0xff, 0x00, 0x01, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		clk := &vclock.Fake{}
		var sci irqline.Recorder
		sleeps, slpWrites := 0, 0
		blk := NewBlock(Config{Clock: clk, SCI: &sci, S5SleepType: 5, LegacyMode: len(in)%2 == 1,
			Sleep: func(uint8, bool) { sleeps++ }})
		buf := make([]byte, 8)
		for len(in) >= 3 {
			op, v, step := in[0], in[1], in[2]
			in = in[3:]
			off := uint64(op & 0xf % BLOCK_SIZE)
			n := 1 << (op >> 4 & 3)
			if off+uint64(n) > BLOCK_SIZE {
				n = 1
			}
			d := buf[:n]
			for i := range d {
				d[i] = v
			}
			switch {
			case op&0xc0 == 0xc0:
				switch step % 4 {
				case 0:
					blk.PressPowerButton()
				case 1:
					blk.Wake()
				case 2:
					blk.SetSCIEnabled(v&1 != 0)
				}
			case op&0x80 != 0:
				clk.Advance(time.Duration(step) << (v % 34))
			case op&0x40 != 0:
				blk.Read(off, d)
			default:
				blk.Write(off, d)
				if off <= BLOCK_PM1_CNT+1 && off+uint64(n) > BLOCK_PM1_CNT+1 && v&(SLP_EN>>8) != 0 {
					slpWrites++
				}
			}
			if clk.Pending() > 1 {
				t.Fatalf("%d timers pending", clk.Pending())
			}
		}
		sts, en, cnt := blk.Status()
		want := cnt&SCI_EN != 0 && sts&en&PM1_SCI_EVENTS != 0
		if sci.Level() != want {
			t.Fatalf("SCI %v with STS %#x EN %#x CNT %#x", sci.Level(), sts, en, cnt)
		}
		if cnt&SLP_EN != 0 || cnt&^(SCI_EN|PM1_CNT_RWMASK) != 0 || en&^PM1_EN_MASK != 0 || sts&^PM1_STS_MASK != 0 {
			t.Fatalf("undefined bits: STS %#x EN %#x CNT %#x", sts, en, cnt)
		}
		if sleeps != slpWrites {
			t.Fatalf("%d Sleep calls for %d SLP_EN writes", sleeps, slpWrites)
		}
		if v := blk.Timer().Value(); v>>24 != 0 {
			t.Fatalf("24-bit timer reads %#x", v)
		}
		blk.Stop()
		if clk.Pending() != 0 {
			t.Fatal("timer left after Stop")
		}
	})
}

// TestConcurrent presses the power button and runs the TMR_STS timer on
// the real clock while goroutines access the registers, for the race
// detector.
func TestConcurrent(t *testing.T) {
	var sci irqline.Recorder
	blk := NewBlock(Config{Clock: vclock.NewReal(), SCI: &sci, Sleep: func(uint8, bool) {}})
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := make([]byte, 4)
			for i := 0; i < 2000; i++ {
				blk.Write(BLOCK_PM1_EN, []byte{TMR_EN, PWRBTN_EN >> 8})
				blk.PressPowerButton()
				blk.Read(BLOCK_PM1_EVT, d)
				blk.Write(BLOCK_PM1_STS, d[:2])
				blk.Read(BLOCK_PM_TMR, d)
				if i%500 == 0 {
					blk.Write(BLOCK_PM1_CNT, []byte{0, SLP_EN >> 8})
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	blk.Stop()
}

package lapic

import (
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/vclock"
)

const (
	DIV_1  = 0xb
	DIV_2  = 0x0
	DIV_16 = 0x3
)

// drain injects and EOIs every pending interrupt of LAPIC i, returning
// them.
func (r *rig) drain(i int) []uint8 {
	var out []uint8
	for {
		v, ok := r.take(i)
		if !ok {
			return out
		}
		out = append(out, v)
		r.w(i, EOI, 0)
	}
}

func TestDivisor(t *testing.T) {
	for dcr, want := range map[uint32]uint64{0: 2, 1: 4, 2: 8, 3: 16, 8: 32, 9: 64, 10: 128, 11: 1} {
		if got := divisor(dcr); got != want {
			t.Errorf("divisor(%#x) = %d, want %d", dcr, got, want)
		}
	}
}

func TestOneShot(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	r.w(0, LVT_TIMER, 0x40)
	r.w(0, DIVIDE_CONFIG, DIV_16)
	r.w(0, INITIAL_COUNT, 1_000_000) // 16 ms at 1 GHz / 16
	for _, step := range []struct {
		advance time.Duration
		count   uint32
		fired   bool
	}{
		{0, 1_000_000, false},
		{4 * time.Millisecond, 750_000, false},
		{12*time.Millisecond - 1, 1, false},
		{1, 0, true},
		{time.Second, 0, false},
	} {
		r.clock.Advance(step.advance)
		if c := r.rd(0, CURRENT_COUNT); c != step.count {
			t.Fatalf("at %v: current count %d, want %d", r.clock.Now(), c, step.count)
		}
		if got := r.drain(0); (len(got) == 1) != step.fired {
			t.Fatalf("at %v: interrupts %x, want fired=%v", r.clock.Now(), got, step.fired)
		}
	}
	if r.rd(0, INITIAL_COUNT) != 1_000_000 {
		t.Fatal("initial count changed")
	}
	// Writing 0 stops a running count.
	r.w(0, INITIAL_COUNT, 100)
	r.w(0, INITIAL_COUNT, 0)
	r.clock.Advance(time.Millisecond)
	if got := r.drain(0); len(got) != 0 || r.clock.Pending() != 0 {
		t.Fatalf("stopped timer fired %x / left %d host timers", got, r.clock.Pending())
	}
}

func TestMaskedTimerCounts(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	r.w(0, LVT_TIMER, 0x40|LVT_MASKED)
	r.w(0, DIVIDE_CONFIG, DIV_1)
	r.w(0, INITIAL_COUNT, 1000)
	r.clock.Advance(2 * time.Microsecond)
	if c := r.rd(0, CURRENT_COUNT); c != 0 || len(r.drain(0)) != 0 {
		t.Fatalf("masked: count %d or interrupt raised", c)
	}
}

func TestPeriodicDoesNotDrift(t *testing.T) {
	// 3 MHz input, divide by 1, 10000 counts: a period of 3.333... ms,
	// which no whole number of nanoseconds matches.
	const hz, initial, periods = 3_000_000, 10_000, 300
	r := newRig(t, 1, func(_ int, c *Config) { c.TimerHz = hz })
	r.enable(0)
	r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
	r.w(0, DIVIDE_CONFIG, DIV_1)
	r.clock.Advance(123 * time.Nanosecond) // t0 off the origin
	t0 := r.clock.Now()
	r.w(0, INITIAL_COUNT, initial)
	n := 0
	end := t0 + time.Duration(uint64(periods)*initial*1_000_000_000/hz)
	for r.clock.Now() < end {
		r.clock.Advance(700 * time.Microsecond) // less than a period: no coalescing
		n += len(r.drain(0))
	}
	r.cpus[0].mu.Lock()
	times := append([]time.Duration(nil), r.cpus[0].notifyT...)
	r.cpus[0].mu.Unlock()
	if n != periods || len(times) != periods {
		t.Fatalf("%d interrupts (%d notifications) in %d periods", n, len(times), periods)
	}
	for k, at := range times {
		// Expiry k+1 at t0 + ceil((k+1)*initial*1e9/hz) ns.
		c := uint64(k+1) * initial * 1_000_000_000
		want := t0 + time.Duration((c+hz-1)/hz)
		if at != want {
			t.Fatalf("expiry %d at %v, want %v (drift %v)", k+1, at, want, at-want)
		}
	}
	// The count runs down within each period.
	r.clock.Advance(time.Duration(initial/2) * time.Second / hz)
	if c := r.rd(0, CURRENT_COUNT); c == 0 || c > initial {
		t.Fatalf("periodic current count %d", c)
	}
}

// lateClock is a Clock whose timers run only when the test says, at
// whatever time it says: a host that fell behind.
type lateClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*lateTimer
}

type lateTimer struct {
	c    *lateClock
	when time.Duration
	f    func()
}

func (c *lateClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lateClock) AfterFunc(d time.Duration, f func()) vclock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &lateTimer{c: c, when: c.now + d, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *lateTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// runAt sets the time to at and runs the timers due by then, each once,
// the way a late host would: all at the same late time.
func (c *lateClock) runAt(at time.Duration) int {
	c.mu.Lock()
	c.now = at
	var due []*lateTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.when <= at {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].when < due[j].when })
	for _, t := range due {
		t.f()
	}
	return len(due)
}

func (c *lateClock) next() (time.Duration, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return -1, 0
	}
	return c.timers[0].when, len(c.timers)
}

func TestPeriodicCoalescesWhenLate(t *testing.T) {
	clk := &lateClock{}
	r := newRig(t, 1, func(_ int, c *Config) { c.Clock = clk })
	r.enable(0)
	r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
	r.w(0, DIVIDE_CONFIG, DIV_1)
	r.w(0, INITIAL_COUNT, 1_000_000) // 1 ms
	if when, n := clk.next(); when != time.Millisecond || n != 1 {
		t.Fatalf("first expiry armed at %v (%d timers)", when, n)
	}
	// The host runs the callback 9.5 ms late.
	if clk.runAt(10*time.Millisecond+500*time.Microsecond) != 1 {
		t.Fatal("callback did not run")
	}
	if got := r.drain(0); len(got) != 1 {
		t.Fatalf("late expiry raised %d interrupts, want 1 (coalesced)", len(got))
	}
	// Next expiry on the original grid, not 1 ms after the late run.
	if when, n := clk.next(); when != 11*time.Millisecond || n != 1 {
		t.Fatalf("next expiry at %v (%d timers), want 11ms", when, n)
	}
	if c := r.rd(0, CURRENT_COUNT); c != 500_000 {
		t.Fatalf("current count %d, want 500000", c)
	}
	// An on-time run raises one more.
	clk.runAt(11 * time.Millisecond)
	if got := r.drain(0); len(got) != 1 {
		t.Fatalf("on-time expiry raised %d", len(got))
	}
}

func TestPeriodicMinimumHostPeriod(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
	r.w(0, DIVIDE_CONFIG, DIV_1)
	r.w(0, INITIAL_COUNT, 10) // 10 ns period
	r.clock.Advance(time.Millisecond)
	n, _, _, _ := r.cpus[0].counts()
	if max := int(time.Millisecond/MIN_TIMER_PERIOD_NS) + 1; n < 2 || n > max {
		t.Fatalf("%d host expiries in 1 ms, want 2..%d", n, max)
	}
	if r.clock.Pending() != 1 {
		t.Fatalf("%d host timers pending, want 1", r.clock.Pending())
	}
}

func TestTimerReprogramming(t *testing.T) {
	t.Run("divide change keeps the count", func(t *testing.T) {
		r := newRig(t, 1, nil)
		r.enable(0)
		r.w(0, LVT_TIMER, 0x40)
		r.w(0, DIVIDE_CONFIG, DIV_1)
		r.w(0, INITIAL_COUNT, 1000)
		r.clock.Advance(400)
		r.w(0, DIVIDE_CONFIG, DIV_2)
		r.clock.Advance(400)
		if c := r.rd(0, CURRENT_COUNT); c != 400 {
			t.Fatalf("count %d, want 400", c)
		}
		r.clock.Advance(799)
		if len(r.drain(0)) != 0 {
			t.Fatal("fired early")
		}
		r.clock.Advance(1)
		if len(r.drain(0)) != 1 {
			t.Fatal("did not fire at 600+800 ns")
		}
	})
	t.Run("one-shot to periodic continues", func(t *testing.T) {
		r := newRig(t, 1, nil)
		r.enable(0)
		r.w(0, LVT_TIMER, 0x40)
		r.w(0, DIVIDE_CONFIG, DIV_1)
		r.w(0, INITIAL_COUNT, 1000)
		r.clock.Advance(300)
		r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
		if c := r.rd(0, CURRENT_COUNT); c != 700 {
			t.Fatalf("count after mode switch %d, want 700", c)
		}
		r.clock.Advance(700 + 1000*MIN_TIMER_PERIOD_NS/1000) // first expiry, then periods
		if len(r.drain(0)) != 1 {
			t.Fatal("no expiry")
		}
		if c := r.rd(0, CURRENT_COUNT); c == 0 {
			t.Fatal("periodic timer stopped")
		}
	})
	t.Run("expiry due at a mode switch is not lost", func(t *testing.T) {
		clk := &lateClock{}
		r := newRig(t, 1, func(_ int, c *Config) { c.Clock = clk })
		r.enable(0)
		r.w(0, LVT_TIMER, 0x40)
		r.w(0, DIVIDE_CONFIG, DIV_1)
		r.w(0, INITIAL_COUNT, 1000)
		clk.mu.Lock()
		clk.now = 5000 // expired; the host has not run the callback
		clk.mu.Unlock()
		r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
		if len(r.drain(0)) != 1 {
			t.Fatal("expiry lost")
		}
		clk.runAt(6000) // the stale callback does nothing
		if len(r.drain(0)) != 0 {
			t.Fatal("stale callback fired")
		}
	})
	t.Run("INIT and Close stop the timer", func(t *testing.T) {
		r := newRig(t, 1, nil)
		r.enable(0)
		r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
		r.w(0, INITIAL_COUNT, 1000)
		r.apics[0].InitReset()
		if r.clock.Pending() != 0 {
			t.Fatal("INIT left the host timer armed")
		}
		r.enable(0)
		r.w(0, LVT_TIMER, TIMER_PERIODIC|0x40)
		r.w(0, INITIAL_COUNT, 1000)
		r.apics[0].Close()
		if r.clock.Pending() != 0 {
			t.Fatal("Close left the host timer armed")
		}
	})
}

func TestTSCDeadline(t *testing.T) {
	r := newRig(t, 1, nil)
	r.enable(0)
	l := r.apics[0]
	wdl := func(v uint64) {
		t.Helper()
		if err := l.WriteMSR(IA32_TSC_DEADLINE, v); err != nil {
			t.Fatal(err)
		}
	}
	rdl := func() uint64 {
		t.Helper()
		v, err := l.ReadMSR(IA32_TSC_DEADLINE)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Ignored outside TSC-deadline mode.
	wdl(r.tsc() + 10)
	if rdl() != 0 || r.clock.Pending() != 0 {
		t.Fatal("IA32_TSC_DEADLINE active in one-shot mode")
	}
	r.w(0, LVT_TIMER, TIMER_TSC_DEADLINE|0x40)
	r.clock.Advance(time.Millisecond)
	dl := r.tsc() + 2_000_000 // 1 ms of guest TSC
	wdl(dl)
	if rdl() != dl {
		t.Fatalf("IA32_TSC_DEADLINE reads %#x, want %#x", rdl(), dl)
	}
	r.w(0, INITIAL_COUNT, 5) // ignored in TSC-deadline mode
	if r.rd(0, INITIAL_COUNT) != 0 || r.rd(0, CURRENT_COUNT) != 0 {
		t.Fatal("count registers active in TSC-deadline mode")
	}
	r.clock.Advance(time.Millisecond - 1)
	if len(r.drain(0)) != 0 {
		t.Fatal("fired before the deadline")
	}
	r.clock.Advance(1)
	if got := r.drain(0); len(got) != 1 || got[0] != 0x40 {
		t.Fatalf("at the deadline: %x", got)
	}
	if rdl() != 0 {
		t.Fatal("IA32_TSC_DEADLINE not cleared when the timer fired")
	}
	// A deadline already passed fires at once.
	wdl(1)
	if len(r.drain(0)) != 1 || rdl() != 0 {
		t.Fatal("past deadline did not fire at once")
	}
	// Zero disarms; so does rewriting.
	wdl(r.tsc() + 100)
	wdl(0)
	r.clock.Advance(time.Millisecond)
	if len(r.drain(0)) != 0 || r.clock.Pending() != 0 {
		t.Fatal("disarmed deadline fired")
	}
	// Leaving TSC-deadline mode disarms.
	wdl(r.tsc() + 100)
	r.w(0, LVT_TIMER, TIMER_ONE_SHOT|0x40)
	r.clock.Advance(time.Millisecond)
	if len(r.drain(0)) != 0 || rdl() != 0 {
		t.Fatal("mode switch did not disarm")
	}
	r.w(0, LVT_TIMER, TIMER_TSC_DEADLINE|0x40)
	if rdl() != 0 {
		t.Fatal("deadline survived the round trip")
	}
	// Masked: the deadline passes, the MSR clears, no interrupt.
	r.w(0, LVT_TIMER, TIMER_TSC_DEADLINE|0x40|LVT_MASKED)
	wdl(r.tsc() + 10)
	r.clock.Advance(time.Microsecond)
	if len(r.drain(0)) != 0 || rdl() != 0 {
		t.Fatal("masked deadline timer")
	}
}

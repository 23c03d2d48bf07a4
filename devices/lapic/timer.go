package lapic

import (
	"math"
	"math/bits"
	"time"

	"github.com/keel-hv/keel/devices/vclock"
)

// The APIC timer (Intel SDM Vol. 3A, §11.5.4 "APIC Timer").
//
// In one-shot and periodic mode the current count is not stored but
// computed from the clock: the counter was loaded with first counts at
// time t0 and decrements once every divisor input clocks at TimerHz, so
// expiry k (k = 0, 1, ...) falls when first + k*initial counts have
// elapsed. Deadlines are computed from t0, never from the time a callback
// happened to run, so a periodic timer does not drift; when the host
// runs a callback late, the expiries it missed raise one interrupt (the
// IRR holds one bit per vector) and the next one is the next period
// boundary after now (and at least MIN_TIMER_PERIOD_NS away).
//
// In TSC-deadline mode (§11.5.4.1) the timer fires once the guest TSC
// reaches IA32_TSC_DEADLINE, which then reads 0.
//
// Timer mode 11b is reserved; it behaves as one-shot.
type timerState struct {
	initial uint32 // Initial Count Register
	divide  uint32 // Divide Configuration Register
	running bool   // counting in one-shot or periodic mode
	t0      time.Duration
	first   uint64 // counts from t0 to the first expiry
	next    uint64 // counts from t0 to the next expiry
	// deadline is IA32_TSC_DEADLINE; 0 is disarmed.
	deadline uint64
	host     vclock.Timer
	// gen identifies the current host timer; callbacks of stopped or
	// replaced timers see another value and return.
	gen uint64
}

const nsPerSecond = 1_000_000_000

// divisor decodes the Divide Configuration Register (Figure 11-10): bits
// 3 and 1:0 give 2, 4, ..., 128, and 111b divides by 1.
func divisor(dcr uint32) uint64 {
	v := dcr&3 | dcr>>1&4
	if v == 7 {
		return 1
	}
	return 2 << v
}

// mulDiv returns a*b/c rounded down (up if ceil), saturating at
// MaxUint64.
func mulDiv(a, b, c uint64, ceil bool) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, c)
	if ceil && r != 0 {
		if q == math.MaxUint64 {
			return q
		}
		q++
	}
	return q
}

// after returns t0+ns as a Duration, saturating.
func after(t0 time.Duration, ns uint64) time.Duration {
	if ns > uint64(math.MaxInt64-t0) {
		return math.MaxInt64
	}
	return t0 + time.Duration(ns)
}

func (l *LAPIC) timerMode() uint32 { return l.lvt[lvtTimer] & LVT_TIMER_MODE }

// countsLocked returns the counts elapsed from t0 to now.
func (l *LAPIC) countsLocked(now time.Duration) uint64 {
	d := now - l.timer.t0
	if d <= 0 {
		return 0
	}
	return mulDiv(uint64(d), l.timerHz, nsPerSecond*divisor(l.timer.divide), false)
}

// atLocked returns the time at which count c (from t0) is reached.
func (l *LAPIC) atLocked(c uint64) time.Duration {
	return after(l.timer.t0, mulDiv(c, nsPerSecond*divisor(l.timer.divide), l.timerHz, true))
}

// currentCountLocked computes the Current Count Register at now.
func (l *LAPIC) currentCountLocked(now time.Duration) uint32 {
	t := &l.timer
	mode := l.timerMode()
	if !t.running || mode == TIMER_TSC_DEADLINE {
		return 0
	}
	n := l.countsLocked(now)
	if n < t.first {
		return uint32(t.first - n)
	}
	if mode == TIMER_PERIODIC && t.initial != 0 {
		return t.initial - uint32((n-t.first)%uint64(t.initial))
	}
	return 0
}

// stopHostLocked cancels the host timer; a callback already on its way
// finds gen changed.
func (l *LAPIC) stopHostLocked() {
	t := &l.timer
	if t.host != nil {
		t.host.Stop()
		t.host = nil
	}
	t.gen++
}

// scheduleLocked arms the host timer to call timerExpired after d.
func (l *LAPIC) scheduleLocked(d time.Duration) {
	l.stopHostLocked()
	if d < 0 {
		d = 0
	}
	gen := l.timer.gen
	l.timer.host = l.clock.AfterFunc(d, func() { l.timerExpired(gen) })
}

func (l *LAPIC) resetTimerLocked() {
	l.stopHostLocked()
	t := &l.timer
	t.initial, t.divide, t.running, t.deadline, t.first, t.next = 0, 0, false, 0, 0, 0
}

// startCountLocked loads the counter with count at now; 0 stops it.
func (l *LAPIC) startCountLocked(now time.Duration, count uint64) {
	t := &l.timer
	l.stopHostLocked()
	t.running = count != 0
	if !t.running {
		return
	}
	t.t0, t.first, t.next = now, count, count
	l.scheduleLocked(l.atLocked(count) - now)
}

// writeInitialCountLocked starts (or, with 0, stops) the counter. In
// TSC-deadline mode the write is ignored (§11.5.4.1).
func (l *LAPIC) writeInitialCountLocked(v uint32, e *effects) {
	if l.timerMode() == TIMER_TSC_DEADLINE {
		return
	}
	now := l.clock.Now()
	l.advanceLocked(now, e)
	l.timer.initial = v
	l.startCountLocked(now, uint64(v))
}

// writeDivideLocked changes the divider; a running counter continues from
// its current count at the new rate.
func (l *LAPIC) writeDivideLocked(v uint32, e *effects) {
	now := l.clock.Now()
	l.advanceLocked(now, e)
	if !l.timer.running {
		l.timer.divide = v
		return
	}
	c := l.currentCountLocked(now)
	l.timer.divide = v
	l.startCountLocked(now, uint64(c))
}

// timerLVTChangedLocked handles a write of the LVT timer entry from old to
// n. Entering or leaving TSC-deadline mode disarms the timer (§11.5.4.1);
// switching between one-shot and periodic lets a running counter continue
// from its current count, reloading (periodic) or stopping (one-shot) at
// the next expiry.
func (l *LAPIC) timerLVTChangedLocked(old, n uint32, e *effects) {
	om, nm := old&LVT_TIMER_MODE, n&LVT_TIMER_MODE
	if om == nm {
		return
	}
	t := &l.timer
	if om == TIMER_TSC_DEADLINE || nm == TIMER_TSC_DEADLINE {
		l.stopHostLocked()
		t.running, t.deadline, t.initial = false, 0, 0
		return
	}
	// Settle the counter in the old mode, then restart it from its
	// current count in the new one.
	now := l.clock.Now()
	l.lvt[lvtTimer] = old
	l.advanceLocked(now, e)
	c := l.currentCountLocked(now)
	l.lvt[lvtTimer] = n
	if t.running {
		l.startCountLocked(now, uint64(c))
	}
}

// advanceLocked performs the counter's expiry if it is due at now: it
// raises the timer interrupt and reloads (periodic) or stops (one-shot)
// the counter. It reports whether an expiry was due.
func (l *LAPIC) advanceLocked(now time.Duration, e *effects) bool {
	t := &l.timer
	if !t.running || l.timerMode() == TIMER_TSC_DEADLINE || l.countsLocked(now) < t.next {
		return false
	}
	l.timerInterruptLocked(e)
	if l.timerMode() != TIMER_PERIODIC || t.initial == 0 {
		t.running = false
		l.stopHostLocked()
		return true
	}
	// The next period boundary after now+MIN_TIMER_PERIOD_NS: missed
	// expiries coalesce, and the phase stays that of t0.
	target := l.countsLocked(now + MIN_TIMER_PERIOD_NS)
	k := (target-t.first)/uint64(t.initial) + 1
	hi, next := bits.Mul64(k, uint64(t.initial))
	next += t.first
	if hi != 0 || next < t.first { // beyond 2^64 counts: stop
		t.running = false
		l.stopHostLocked()
		return true
	}
	t.next = next
	l.scheduleLocked(l.atLocked(next) - now)
	return true
}

// writeDeadlineLocked writes IA32_TSC_DEADLINE in TSC-deadline mode: 0
// disarms, a value already reached fires at once.
func (l *LAPIC) writeDeadlineLocked(v uint64, e *effects) {
	l.timer.deadline = v
	l.stopHostLocked()
	if v != 0 {
		l.checkDeadlineLocked(e)
	}
}

// checkDeadlineLocked fires the TSC-deadline timer if the guest TSC has
// reached the deadline, and otherwise arms the host timer for the rest.
func (l *LAPIC) checkDeadlineLocked(e *effects) {
	t := &l.timer
	now := l.tsc()
	if now >= t.deadline {
		t.deadline = 0
		l.timerInterruptLocked(e)
		return
	}
	ns := mulDiv(t.deadline-now, nsPerSecond, l.tscHz, true)
	l.scheduleLocked(after(0, ns))
}

// timerInterruptLocked raises the LVT timer interrupt unless masked.
func (l *LAPIC) timerInterruptLocked(e *effects) {
	lvt := l.lvt[lvtTimer]
	if lvt&LVT_MASKED == 0 && l.enabledLocked() {
		l.requestLocked(uint8(lvt), false, e)
	}
}

// timerExpired runs when the host timer armed as generation gen fires.
func (l *LAPIC) timerExpired(gen uint64) {
	var e effects
	l.mu.Lock()
	t := &l.timer
	if l.closed || gen != t.gen {
		l.mu.Unlock()
		return
	}
	t.host = nil
	if l.timerMode() == TIMER_TSC_DEADLINE {
		if t.deadline != 0 {
			l.checkDeadlineLocked(&e)
		}
	} else if t.running {
		now := l.clock.Now()
		if !l.advanceLocked(now, &e) {
			// Early (clock granularity): wait for the rest.
			l.scheduleLocked(l.atLocked(t.next) - now)
		}
	}
	l.mu.Unlock()
	l.apply(&e)
}

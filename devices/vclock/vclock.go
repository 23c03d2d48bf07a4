// Package vclock is the time source of device models: a monotonic clock
// and one-shot timers. Devices (PIT, RTC, PM timer, local APIC timer) take
// a Clock so the hypervisor runs them on real time and tests run them on a
// Fake clock advanced by hand.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package vclock

import (
	"math/bits"
	"sort"
	"sync"
	"time"
)

// Clock is a monotonic time source with one-shot timers.
type Clock interface {
	// Now returns the time elapsed since an arbitrary fixed origin.
	Now() time.Duration
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still
	// pending.
	Stop() bool
}

// Real is the host's monotonic clock.
type Real struct{ origin time.Time }

// NewReal returns a clock whose origin is now.
func NewReal() *Real { return &Real{origin: time.Now()} }

// Now implements Clock.
func (r *Real) Now() time.Duration { return time.Since(r.origin) }

// AfterFunc implements Clock.
func (r *Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a clock for tests: time moves only through Advance, which runs
// the timers that fall due, in order, on the caller's goroutine.
type Fake struct {
	mu     sync.Mutex
	now    time.Duration
	seq    uint64
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *Fake
	when time.Duration
	seq  uint64
	f    func()
}

// Now implements Clock.
func (c *Fake) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements Clock.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.seq++
	t := &fakeTimer{c: c, when: c.now + d, seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return t
}

// Stop implements Timer.
func (t *fakeTimer) Stop() bool {
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

// Pending returns the number of timers not yet fired or stopped.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves time forward by d, firing every timer that falls due (and
// timers those set, if they fall due too) in time order.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now + d
	for {
		sort.Slice(c.timers, func(i, j int) bool {
			a, b := c.timers[i], c.timers[j]
			if a.when != b.when {
				return a.when < b.when
			}
			return a.seq < b.seq
		})
		if len(c.timers) == 0 || c.timers[0].when > end {
			break
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		c.now = t.when
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// Ticks converts a duration since a clock's origin to whole ticks of a
// hz-hertz counter (a device's input clock); negative durations are 0.
func Ticks(d time.Duration, hz uint64) uint64 {
	if d <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(d), hz)
	if hi >= uint64(time.Second) {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	return q
}

// TicksDuration returns the first duration at which Ticks(d, hz) reaches
// t, saturating at the largest duration.
func TicksDuration(t, hz uint64) time.Duration {
	hi, lo := bits.Mul64(t, uint64(time.Second))
	if hi >= hz {
		return 1<<63 - 1
	}
	q, r := bits.Div64(hi, lo, hz)
	if r != 0 {
		q++
	}
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return time.Duration(q)
}

package vclock

import (
	"testing"
	"time"
)

func TestFakeOrderAndStop(t *testing.T) {
	var c Fake
	var got []string
	c.AfterFunc(3*time.Millisecond, func() { got = append(got, "c") })
	b := c.AfterFunc(2*time.Millisecond, func() { got = append(got, "b") })
	c.AfterFunc(1*time.Millisecond, func() {
		got = append(got, "a")
		c.AfterFunc(time.Millisecond, func() { got = append(got, "a2") })
	})
	c.AfterFunc(time.Second, func() { got = append(got, "late") })
	if !b.Stop() || b.Stop() {
		t.Fatal("Stop should succeed once")
	}
	c.Advance(5 * time.Millisecond)
	want := "a a2 c"
	s := ""
	for i, g := range got {
		if i > 0 {
			s += " "
		}
		s += g
	}
	if s != want || c.Now() != 5*time.Millisecond || c.Pending() != 1 {
		t.Fatalf("fired %q now %v pending %d, want %q 5ms 1", s, c.Now(), c.Pending(), want)
	}
}

func TestRealAdvances(t *testing.T) {
	r := NewReal()
	a := r.Now()
	done := make(chan struct{})
	r.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	if r.Now() <= a {
		t.Fatal("real clock did not advance")
	}
}

func TestTicks(t *testing.T) {
	const hz = 1_193_182
	for _, d := range []time.Duration{0, 1, time.Microsecond, time.Second, 3*time.Hour + 7} {
		n := Ticks(d, hz)
		if back := TicksDuration(n, hz); back > d || (d > 0 && Ticks(back, hz) != n) {
			t.Errorf("d=%v: %d ticks, first at %v", d, n, back)
		}
	}
	if Ticks(time.Second, hz) != hz || Ticks(-5, hz) != 0 {
		t.Error("one second must be hz ticks, negative zero")
	}
	if TicksDuration(^uint64(0), hz) != 1<<63-1 {
		t.Error("TicksDuration does not saturate")
	}
}

package irq

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-hv/keel/hv/arch"
)

var open = arch.IntrState{IF: true}

func TestPriorityOrder(t *testing.T) {
	l := New()
	for _, v := range []uint8{0x30, 0xef, 0x20, 0x80, 0x7f, 0xff, 16} {
		if err := l.Raise(v); err != nil {
			t.Fatal(err)
		}
	}
	l.Raise(0x30) // already pending: no duplicate
	var got []uint8
	for {
		d := l.Next(open)
		if !d.Inject {
			break
		}
		if d.Event.Type != arch.EventExternal {
			t.Fatalf("event %s", d.Event)
		}
		got = append(got, d.Event.Vector)
	}
	want := []uint8{0xff, 0xef, 0x80, 0x7f, 0x30, 0x20, 16}
	if len(got) != len(want) {
		t.Fatalf("delivered %x, want %x", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delivered %x, want %x", got, want)
		}
	}
}

func TestRaiseRejectsLowVectors(t *testing.T) {
	l := New()
	for v := 0; v < 16; v++ {
		if err := l.Raise(uint8(v)); err != ErrBadVector {
			t.Errorf("Raise(%d) = %v", v, err)
		}
	}
	if l.Pending() {
		t.Error("low vector became pending")
	}
}

func TestNextWindowLogic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vectors  []uint8
		nmi      bool
		st       arch.IntrState
		inject   bool
		event    arch.Event
		window   bool
		stillIRQ bool
		stillNMI bool
	}{
		{"nothing", nil, false, open, false, arch.Event{}, false, false, false},
		{"inject", []uint8{0x40}, false, open, true, arch.ExternalInterrupt(0x40), false, false, false},
		{"inject and window for the next", []uint8{0x40, 0x41}, false, open, true, arch.ExternalInterrupt(0x41), true, true, false},
		{"IF clear", []uint8{0x40}, false, arch.IntrState{}, false, arch.Event{}, true, true, false},
		{"shadow", []uint8{0x40}, false, arch.IntrState{IF: true, Shadow: true}, false, arch.Event{}, true, true, false},
		{"event pending", []uint8{0x40}, false, arch.IntrState{IF: true, EventPending: true}, false, arch.Event{}, true, true, false},
		{"nmi first", []uint8{0x40}, true, open, true, arch.NMI(), true, true, false},
		{"nmi with IF clear", nil, true, arch.IntrState{}, true, arch.NMI(), false, false, false},
		{"nmi blocked", nil, true, arch.IntrState{IF: true, NMIBlocked: true}, false, arch.Event{}, true, false, true},
		{"nmi blocked, irq goes", []uint8{0x50}, true, arch.IntrState{IF: true, NMIBlocked: true}, true, arch.ExternalInterrupt(0x50), true, false, true},
		{"nmi in shadow", nil, true, arch.IntrState{Shadow: true}, false, arch.Event{}, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New()
			for _, v := range tc.vectors {
				l.Raise(v)
			}
			if tc.nmi {
				l.RaiseNMI()
			}
			d := l.Next(tc.st)
			if d.Inject != tc.inject || (tc.inject && d.Event != tc.event) || d.Window != tc.window {
				t.Errorf("Next = %+v; want inject %v %s window %v", d, tc.inject, tc.event, tc.window)
			}
			if l.Pending() != tc.stillIRQ || l.NMIPending() != tc.stillNMI {
				t.Errorf("after Next: irq pending %v, nmi pending %v", l.Pending(), l.NMIPending())
			}
		})
	}
}

func TestRunnable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raise  func(*Lines)
		ifFlag bool
		want   bool
	}{
		{"nothing", func(*Lines) {}, true, false},
		{"irq with IF", func(l *Lines) { l.Raise(0x30) }, true, true},
		{"irq without IF", func(l *Lines) { l.Raise(0x30) }, false, false},
		{"nmi without IF", func(l *Lines) { l.RaiseNMI() }, false, true},
		{"init", func(l *Lines) { l.RaiseInit() }, false, true},
		{"sipi", func(l *Lines) { l.RaiseSIPI(0x9) }, false, true},
		{"cleared irq", func(l *Lines) { l.Raise(0x30); l.Clear(0x30) }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New()
			tc.raise(l)
			if got := l.Runnable(tc.ifFlag); got != tc.want {
				t.Errorf("Runnable(%v) = %v", tc.ifFlag, got)
			}
		})
	}
}

func TestStartupSignals(t *testing.T) {
	l := New()
	if _, ok := l.TakeSIPI(); ok || l.TakeInit() || l.StartupPending() {
		t.Fatal("startup signals pending on a new Lines")
	}
	l.RaiseInit()
	l.RaiseSIPI(0x10)
	l.RaiseSIPI(0x9f)
	if !l.TakeInit() || l.TakeInit() {
		t.Error("INIT not taken exactly once")
	}
	if v, ok := l.TakeSIPI(); !ok || v != 0x9f {
		t.Errorf("SIPI = %#x %v", v, ok)
	}
	if _, ok := l.TakeSIPI(); ok {
		t.Error("SIPI taken twice")
	}
}

func TestHighestAndIsPending(t *testing.T) {
	l := New()
	if _, ok := l.Highest(); ok {
		t.Fatal("Highest on empty")
	}
	l.Raise(0x41)
	l.Raise(0xc0)
	if v, ok := l.Highest(); !ok || v != 0xc0 || !l.IsPending(0x41) || l.IsPending(0x42) {
		t.Errorf("Highest = %#x", v)
	}
}

func TestWakeAndKick(t *testing.T) {
	l := New()
	var kicks atomic.Int32
	l.SetKick(func() { kicks.Add(1) })
	done := make(chan bool)
	go func() {
		select {
		case <-l.Wake():
			done <- l.Runnable(true)
		case <-time.After(10 * time.Second):
			done <- false
		}
	}()
	l.Raise(0x99)
	if !<-done {
		t.Fatal("halted waiter not woken")
	}
	l.RaiseNMI()
	l.RaiseNMI() // the wake slot is full: no block
	if kicks.Load() != 3 {
		t.Errorf("kicked %d times", kicks.Load())
	}
	l.SetKick(nil)
	l.Raise(0x98)
	if kicks.Load() != 3 {
		t.Error("kicked after SetKick(nil)")
	}
}

func TestConcurrentRaiseAndTake(t *testing.T) {
	l := New()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for v := 16 + g; v < 256; v += 4 {
				l.Raise(uint8(v))
			}
		}(g)
	}
	seen := make(map[uint8]bool)
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 240 && time.Now().Before(deadline) {
		d := l.Next(open)
		if d.Inject {
			if seen[d.Event.Vector] {
				t.Fatalf("vector %#x delivered twice", d.Event.Vector)
			}
			seen[d.Event.Vector] = true
		}
	}
	wg.Wait()
	if len(seen) != 240 {
		t.Errorf("delivered %d of 240 vectors", len(seen))
	}
}

func TestFastPathsDoNotAllocate(t *testing.T) {
	l := New()
	l.SetKick(func() {})
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"raise", func() { l.Raise(0x40) }},
		{"next", func() { l.Raise(0x40); l.Next(open) }},
		{"nmi", func() { l.RaiseNMI(); l.Next(open) }},
		{"runnable", func() { _ = l.Runnable(true) }},
		{"wake drain", func() {
			l.Raise(0x41)
			select {
			case <-l.Wake():
			default:
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, tc.fn); n != 0 {
				t.Errorf("%v allocations", n)
			}
		})
	}
}

// fakeSource is a Source with a queue of vectors.
type fakeSource struct{ q []uint8 }

func (s *fakeSource) Ready() bool { return len(s.q) > 0 }
func (s *fakeSource) Take() (uint8, bool) {
	if len(s.q) == 0 {
		return 0, false
	}
	v := s.q[0]
	s.q = s.q[1:]
	return v, true
}

// TestSource checks that a Source's interrupts come after the Lines' own,
// wake a halted vCPU with IF set, and get a window while blocked.
func TestSource(t *testing.T) {
	l := New()
	src := &fakeSource{q: []uint8{0x30, 0x31}}
	l.SetSource(src)
	if !l.Runnable(true) || l.Runnable(false) {
		t.Fatal("a ready Source must wake a halted vCPU with IF set, and only then")
	}
	open := arch.IntrState{IF: true}
	if err := l.Raise(0x40); err != nil {
		t.Fatal(err)
	}
	d := l.Next(open)
	if !d.Inject || d.Event != arch.ExternalInterrupt(0x40) || !d.Window {
		t.Fatalf("first decision %+v: want the Lines' own vector 0x40 and a window for the Source", d)
	}
	d = l.Next(open)
	if !d.Inject || d.Event != arch.ExternalInterrupt(0x30) || !d.Window {
		t.Fatalf("second decision %+v: want 0x30 from the Source and a window for 0x31", d)
	}
	if d = l.Next(arch.IntrState{IF: false}); d.Inject || !d.Window {
		t.Fatalf("with IF clear %+v: want a window and no injection", d)
	}
	if d = l.Next(open); !d.Inject || d.Event != arch.ExternalInterrupt(0x31) || d.Window {
		t.Fatalf("last decision %+v: want 0x31 and no window", d)
	}
	woke := make(chan struct{})
	go func() { <-l.Wake(); close(woke) }()
	l.Notify()
	<-woke
}

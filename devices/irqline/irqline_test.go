package irqline

import "testing"

func TestRecorderAndPulse(t *testing.T) {
	var r Recorder
	Pulse(&r)
	Pulse(&r)
	if r.Edges() != 2 || r.Level() {
		t.Fatalf("after two pulses: edges=%d level=%v, want 2 false", r.Edges(), r.Level())
	}
	r.SetLevel(true)
	r.SetLevel(true)
	if r.Edges() != 3 || !r.Level() {
		t.Fatalf("held high: edges=%d level=%v, want 3 true", r.Edges(), r.Level())
	}
}

func TestFanoutAndFunc(t *testing.T) {
	var a, b Recorder
	var got []bool
	f := Fanout{&a, &b, Func(func(h bool) { got = append(got, h) }), None{}}
	Pulse(f)
	if a.Edges() != 1 || b.Edges() != 1 || len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("fanout: a=%d b=%d func=%v", a.Edges(), b.Edges(), got)
	}
}

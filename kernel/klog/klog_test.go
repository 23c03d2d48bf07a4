package klog

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock returns a clock that advances by step on each reading.
func fakeClock(start, step int64) func() int64 {
	var mu sync.Mutex
	t := start - step
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		t += step
		return t
	}
}

// texts returns the Text of each entry.
func texts(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Text
	}
	return out
}

func TestEntryString(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{name: "zero", e: Entry{}, want: "[     0.000000] debug "},
		{name: "subsystem", e: Entry{Time: 1_234_567_891, Level: Info, Subsystem: "pc", Text: "hello"},
			want: "[     1.234567] info  pc: hello"},
		{name: "no subsystem", e: Entry{Time: 12 * int64(time.Second), Level: Warn, Text: "w"},
			want: "[    12.000000] warn  w"},
		{name: "error", e: Entry{Time: 999, Level: Error, Subsystem: "svm", Text: "x"},
			want: "[     0.000000] error svm: x"},
		{name: "large", e: Entry{Time: 1_000_000 * int64(time.Second), Level: Info, Text: "t"},
			want: "[1000000.000000] info  t"},
		{name: "negative", e: Entry{Time: -1_500_000_000, Level: Info, Text: "t"},
			want: "[    -1.500000] info  t"},
		{name: "min int64", e: Entry{Time: -1 << 63, Level: Info, Text: "t"},
			want: "[-9223372036.854775] info  t"},
		{name: "odd level", e: Entry{Level: 9, Text: "t"}, want: "[     0.000000] level(9) t"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogf(t *testing.T) {
	tests := []struct {
		name      string
		format    string
		args      []any
		subsystem string
		want      []string
	}{
		{name: "plain", format: "hello %d", args: []any{42}, want: []string{"hello 42"}},
		{name: "no args keeps percent", format: "100%", want: []string{"100%"}},
		{name: "trailing newline", format: "a\n", want: []string{"a"}},
		{name: "empty", format: "", want: []string{""}},
		{name: "lines", format: "a\n\nb\n", want: []string{"a", "", "b"}},
		{name: "controls", format: "a\x1b[2Jb\rc\x00", want: []string{"a?[2Jb?c?"}},
		{name: "tab", format: "a\tb", want: []string{"a b"}},
		{name: "utf8 kept", format: "température", want: []string{"température"}},
		{name: "invalid utf8", format: "a\xffb\xc3", want: []string{"a?b?"}},
		{name: "C1 control", format: "a\u009bb", want: []string{"a?b"}},
		{name: "cut", format: strings.Repeat("x", 40), want: []string{strings.Repeat("x", 29) + "..."}},
		{name: "exact fit", format: strings.Repeat("x", 32), want: []string{strings.Repeat("x", 32)}},
		{name: "cut multibyte", format: strings.Repeat("é", 20), want: []string{strings.Repeat("é", 14) + "..."}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Config{MaxLineLen: 32, Clock: fakeClock(0, 1)})
			l.Logf(Info, tt.subsystem, tt.format, tt.args...)

			got := texts(l.Lines())
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("Logf(%q) logged %q, want %q", tt.format, got, tt.want)
			}

			for _, e := range l.Lines() {
				if len(e.Text) > 32 {
					t.Errorf("line of %d bytes, longer than MaxLineLen 32", len(e.Text))
				}
			}
		})
	}
}

func TestMultilineSharesTime(t *testing.T) {
	l := New(Config{Clock: fakeClock(100, 10)})
	l.Logf(Warn, "hv", "one\ntwo")
	l.Printf("three")

	got := l.Lines()
	want := []Entry{
		{Seq: 1, Time: 100, Level: Warn, Subsystem: "hv", Text: "one"},
		{Seq: 2, Time: 100, Level: Warn, Subsystem: "hv", Text: "two"},
		{Seq: 3, Time: 110, Level: Info, Text: "three"},
	}

	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Lines() = %+v, want %+v", got, want)
	}
}

func TestSubsystem(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pc", "pc"},
		{"svm/npt", "svm/npt"},
		{"a b:\x1b", "a?b??"},
		{"abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"},
	}

	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l := New(Config{})
			l.Logf(Info, tt.in, "x")
			if got := l.Lines()[0].Subsystem; got != tt.want {
				t.Errorf("subsystem %q stored as %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRing(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		lines       []string
		want        []string
		wantDropped uint64
	}{
		{name: "fits", cfg: Config{MaxLines: 3}, lines: []string{"a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "drop oldest by lines", cfg: Config{MaxLines: 3}, lines: []string{"a", "b", "c", "d", "e"},
			want: []string{"c", "d", "e"}, wantDropped: 2},
		{name: "drop oldest by bytes", cfg: Config{MaxBytes: 10},
			lines: []string{"aaaa", "bbbb", "cccc", "dd"}, want: []string{"bbbb", "cccc", "dd"}, wantDropped: 1},
		{name: "one line", cfg: Config{MaxLines: 1}, lines: []string{"a", "b"}, want: []string{"b"}, wantDropped: 1},
		{name: "line as long as the ring", cfg: Config{MaxBytes: 8, MaxLineLen: 100},
			lines: []string{"aa", "12345678"}, want: []string{"12345678"}, wantDropped: 1},
		{name: "empty", cfg: Config{MaxLines: 2}, want: []string{}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.cfg)
			for _, s := range tt.lines {
				l.Printf("%s", s)
			}

			if got := texts(l.Lines()); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("Lines() = %q, want %q", got, tt.want)
			}

			if got := l.Dropped(); got != tt.wantDropped {
				t.Errorf("Dropped() = %d, want %d", got, tt.wantDropped)
			}

			if got := l.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
		})
	}
}

func TestRingWrapsManyTimes(t *testing.T) {
	l := New(Config{MaxLines: 7, MaxBytes: 1 << 20})
	for i := range 1000 {
		l.Printf("%d", i)
	}

	got := texts(l.Lines())
	want := []string{"993", "994", "995", "996", "997", "998", "999"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}

	if d := l.Dropped(); d != 993 {
		t.Errorf("Dropped() = %d, want 993", d)
	}

	if seq := l.Lines()[0].Seq; seq != 994 {
		t.Errorf("oldest Seq = %d, want 994", seq)
	}
}

func TestTail(t *testing.T) {
	l := New(Config{MaxLines: 4})
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		l.Printf("%s", s)
	}

	tests := []struct {
		n    int
		want []string
	}{
		{n: -1, want: []string{"b", "c", "d", "e"}},
		{n: 0, want: []string{}},
		{n: 1, want: []string{"e"}},
		{n: 3, want: []string{"c", "d", "e"}},
		{n: 4, want: []string{"b", "c", "d", "e"}},
		{n: 100, want: []string{"b", "c", "d", "e"}},
	}

	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := texts(l.Tail(tt.n)); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("Tail(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestTailIsACopy(t *testing.T) {
	l := New(Config{MaxLines: 2})
	l.Printf("a")
	got := l.Tail(1)
	got[0].Text = "changed"
	if l.Tail(1)[0].Text != "a" {
		t.Error("changing the slice Tail returned changed the log")
	}
}

func TestMirror(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Clock: fakeClock(0, 1_000_000), Mirror: &buf, MirrorLevel: Info})
	l.Logger("pc").Debugf("hidden")
	l.Logger("pc").Infof("shown %d", 1)
	l.Logger("svm").Errorf("bad\nworse")

	want := "[     0.001000] info  pc: shown 1\n" +
		"[     0.002000] error svm: bad\n" +
		"[     0.002000] error svm: worse\n"
	if buf.String() != want {
		t.Errorf("mirror got\n%q\nwant\n%q", buf.String(), want)
	}

	if n := l.Len(); n != 4 {
		t.Errorf("Len() = %d, want 4: a filtered line is still kept", n)
	}

	buf.Reset()
	l.SetMirror(nil, Debug)
	l.Printf("quiet")
	if buf.Len() != 0 {
		t.Errorf("mirror written after SetMirror(nil): %q", buf.String())
	}
}

// countingWriter counts Write calls and checks that each is one whole line.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	bad    []string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if bytes.Count(p, []byte("\n")) != 1 || p[len(p)-1] != '\n' {
		w.bad = append(w.bad, string(p))
	}
	return len(p), nil
}

func TestConcurrent(t *testing.T) {
	w := &countingWriter{}
	l := New(Config{MaxLines: 100, Mirror: w})

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				l.Logger(fmt.Sprint("g", g)).Infof("line %d", i)
				if i%50 == 0 {
					_ = l.Tail(10)
				}
			}
		})
	}
	wg.Wait()

	if w.writes != 1600 {
		t.Errorf("mirror saw %d writes, want 1600", w.writes)
	}
	if len(w.bad) > 0 {
		t.Errorf("mirror writes that are not one line: %q", w.bad[:min(3, len(w.bad))])
	}
	if l.Len() != 100 || l.Dropped() != 1500 {
		t.Errorf("Len() = %d, Dropped() = %d; want 100, 1500", l.Len(), l.Dropped())
	}

	var last uint64
	for _, e := range l.Lines() {
		if e.Seq <= last {
			t.Fatalf("Seq not increasing: %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
}

// blockingWriter blocks each Write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.release
	return len(p), nil
}

func TestSlowMirrorDoesNotBlockReaders(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := New(Config{Mirror: w, MirrorLevel: Warn})

	done := make(chan struct{})
	go func() {
		l.Logger("x").Warnf("stuck in the mirror")
		close(done)
	}()
	<-w.entered

	// The writer is stuck in the mirror: the ring must still work.
	ok := make(chan struct{})
	go func() {
		l.Printf("below the mirror level")
		_ = l.Lines()
		_ = l.Tail(1)
		_ = l.Dropped()
		close(ok)
	}()

	select {
	case <-ok:
	case <-time.After(5 * time.Second):
		t.Fatal("the log blocked on a slow mirror")
	}

	close(w.release)
	<-done

	if got := texts(l.Lines()); fmt.Sprint(got) != "[stuck in the mirror below the mirror level]" {
		t.Errorf("Lines() = %q", got)
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   []string
	}{
		{name: "one line", writes: []string{"hello\n"}, want: []string{"hello"}},
		{name: "pieces", writes: []string{"he", "llo\nwor", "ld\n"}, want: []string{"hello", "world"}},
		{name: "crlf", writes: []string{"a\r\nb\r", "\n"}, want: []string{"a", "b"}},
		{name: "partial waits", writes: []string{"abc"}, want: []string{}},
		{name: "flush", writes: []string{"abc"}, flush: true, want: []string{"abc"}},
		{name: "flush nothing", writes: []string{"abc\n"}, flush: true, want: []string{"abc"}},
		{name: "empty lines", writes: []string{"\n\n"}, want: []string{"", ""}},
		{name: "long line split", writes: []string{strings.Repeat("x", 20) + "\n"},
			want: []string{strings.Repeat("x", 8), strings.Repeat("x", 8), "xxxx"}},
		{name: "long line in pieces", writes: []string{"xxxxx", "xxxxx", "xx"},
			want: []string{"xxxxxxxx"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(Config{MaxLineLen: 8})
			w := l.Logger("con").Writer(Warn)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if tt.flush {
				w.Flush()
			}

			es := l.Lines()
			if got := texts(es); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("logged %q, want %q", got, tt.want)
			}
			for _, e := range es {
				if e.Level != Warn || e.Subsystem != "con" {
					t.Errorf("entry %+v, want level warn, subsystem con", e)
				}
			}
		})
	}
}

func TestZeroLogger(t *testing.T) {
	var g Logger
	g.Infof("nothing") // must not panic
	g.Errorf("nothing")
}

func TestDefaultClockAdvances(t *testing.T) {
	l := New(Config{})
	l.Printf("a")
	time.Sleep(2 * time.Millisecond)
	l.Printf("b")
	es := l.Lines()
	if es[0].Time < 0 || es[1].Time <= es[0].Time {
		t.Errorf("times %d, %d: want increasing and not negative", es[0].Time, es[1].Time)
	}
}

func FuzzLog(f *testing.F) {
	f.Add([]byte("hello\nworld\r\n"), 3)
	f.Add([]byte("\x1b[31mred\x1b[0m\xff\xfe\u009b"), 1)
	f.Add([]byte(strings.Repeat("long ", 50)), 7)

	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		const maxBytes, maxLine = 256, 40
		l := New(Config{MaxLines: 16, MaxBytes: maxBytes, MaxLineLen: maxLine})
		w := l.Writer(Info, "fz")

		chunk = max(1, chunk%64)
		for p := data; len(p) > 0; {
			n := min(chunk, len(p))
			w.Write(p[:n])
			p = p[n:]
		}
		l.Printf("%s", data)
		w.Flush()

		total := 0
		for _, e := range l.Lines() {
			if len(e.Text) > maxLine {
				t.Fatalf("line of %d bytes: %q", len(e.Text), e.Text)
			}
			for i := 0; i < len(e.Text); i++ {
				if c := e.Text[i]; c < 0x20 || c == 0x7f {
					t.Fatalf("control byte %#x kept in %q", c, e.Text)
				}
			}
			total += len(e.Text) + len(e.Subsystem)
		}
		if total > maxBytes || l.Len() > 16 {
			t.Fatalf("ring holds %d bytes in %d lines, more than %d bytes or 16 lines", total, l.Len(), maxBytes)
		}
	})
}

// Package klog is the Keel kernel log: a bounded ring of recent log lines,
// each with a timestamp, a level and a subsystem, that the serial shell's
// `log` command prints and that can be mirrored, line by line, to the
// console.
//
// The ring has a fixed capacity in lines and in bytes, both set at
// construction; when either is exceeded the oldest lines are dropped and
// counted. Lines are sanitized when they are logged (control characters and
// invalid UTF-8 become '?', long lines are cut), so that text that came from
// a guest can neither grow the log without bound nor drive the terminal.
//
// The package is pure Go and host-testable; the kernel supplies the clock
// and the console.
package klog

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Level is the severity of a log line.
type Level int8

// The levels, from least to most severe.
const (
	// Debug is detail for developers; the console usually hides it.
	Debug Level = iota
	// Info is normal operation.
	Info
	// Warn is something unexpected that Keel recovered from.
	Warn
	// Error is a failure that lost work or a feature.
	Error
)

// String returns the level's lower-case name ("debug", "info", "warn",
// "error"), or "level(N)" for a value outside the four.
func (l Level) String() string {
	switch l {
	case Debug:
		return "debug"
	case Info:
		return "info"
	case Warn:
		return "warn"
	case Error:
		return "error"
	}

	return fmt.Sprintf("level(%d)", int8(l))
}

// Defaults for the zero fields of Config.
const (
	// DEFAULT_MAX_LINES is the default capacity of the ring in lines.
	DEFAULT_MAX_LINES = 1024
	// DEFAULT_MAX_BYTES is the default capacity of the ring in bytes of
	// text (64 KiB).
	DEFAULT_MAX_BYTES = 64 << 10
	// DEFAULT_MAX_LINE_LEN is the default length at which a line is cut.
	DEFAULT_MAX_LINE_LEN = 512
	// MAX_SUBSYSTEM_LEN bounds a subsystem name; longer names are cut.
	MAX_SUBSYSTEM_LEN = 16
)

// truncMark ends a line that was cut at MaxLineLen.
const truncMark = "..."

// Config sets up a Log. The zero value is usable: 1024 lines, 64 KiB, lines
// cut at 512 bytes, time since New, no mirror.
type Config struct {
	// MaxLines is the ring's capacity in lines (DEFAULT_MAX_LINES if 0 or
	// less).
	MaxLines int
	// MaxBytes bounds the bytes of text (subsystem plus message) held in
	// the ring (DEFAULT_MAX_BYTES if 0 or less).
	MaxBytes int
	// MaxLineLen is the length in bytes at which a message is cut, "..."
	// included (DEFAULT_MAX_LINE_LEN if 0 or less; never more than
	// MaxBytes - MAX_SUBSYSTEM_LEN, never less than 8).
	MaxLineLen int
	// Clock returns the timestamp of a new line in nanoseconds, normally
	// the time since boot. If nil, the time since New is used.
	Clock func() int64
	// Mirror, if not nil, receives every line at MirrorLevel or above as
	// it is logged (see SetMirror).
	Mirror io.Writer
	// MirrorLevel is the least severe level written to Mirror.
	MirrorLevel Level
}

// Entry is one log line.
type Entry struct {
	// Seq numbers the lines logged since New, from 1, dropped ones
	// included: a gap in Seq is where lines were dropped.
	Seq uint64
	// Time is the clock's reading when the line was logged, in
	// nanoseconds.
	Time int64
	// Level is the line's severity.
	Level Level
	// Subsystem names the part of Keel that logged the line; it may be
	// empty.
	Subsystem string
	// Text is the message, without a newline.
	Text string
}

// String formats the entry as the console and the `log` command show it:
//
//	[     1.234567] info  pc: text
//
// the time in seconds with microseconds, the level padded to five columns,
// then "subsystem: " if there is one, then the text.
func (e Entry) String() string {
	var b strings.Builder
	e.appendTo(&b)
	return b.String()
}

// appendTo writes the formatted entry to b.
func (e Entry) appendTo(b *strings.Builder) {
	t := e.Time
	sign := ""
	if t < 0 {
		sign = "-"
		t = -t // the most negative int64 stays negative; handled below
		if t < 0 {
			t = 1<<63 - 1
		}
	}

	sec := t / int64(time.Second)
	usec := t % int64(time.Second) / int64(time.Microsecond)

	fmt.Fprintf(b, "[%6s.%06d] %-5s ", sign+fmt.Sprint(sec), usec, e.Level)
	if e.Subsystem != "" {
		b.WriteString(e.Subsystem)
		b.WriteString(": ")
	}

	b.WriteString(e.Text)
}

// Log is a kernel log. Its methods are safe for concurrent use.
type Log struct {
	mu       sync.Mutex
	clock    func() int64
	ring     []Entry // fixed length MaxLines; the oldest entry at head
	head     int
	count    int
	bytes    int // subsystem plus text bytes of the entries in the ring
	maxBytes int
	maxLine  int
	seq      uint64
	dropped  uint64

	mirror      io.Writer
	mirrorLevel Level

	// mirrorMu serializes the writes to the mirror, so that concurrent
	// lines come out whole. It is never held together with mu.
	mirrorMu sync.Mutex
}

// New returns an empty log set up by c.
func New(c Config) *Log {
	if c.MaxLines <= 0 {
		c.MaxLines = DEFAULT_MAX_LINES
	}

	if c.MaxBytes <= 0 {
		c.MaxBytes = DEFAULT_MAX_BYTES
	}

	if c.MaxLineLen <= 0 {
		c.MaxLineLen = DEFAULT_MAX_LINE_LEN
	}

	// A line and its subsystem fit in the ring.
	c.MaxLineLen = max(min(c.MaxLineLen, c.MaxBytes-MAX_SUBSYSTEM_LEN), 8)

	if c.Clock == nil {
		start := time.Now()
		c.Clock = func() int64 { return int64(time.Since(start)) }
	}

	return &Log{
		clock:       c.Clock,
		ring:        make([]Entry, c.MaxLines),
		maxBytes:    c.MaxBytes,
		maxLine:     c.MaxLineLen,
		mirror:      c.Mirror,
		mirrorLevel: c.MirrorLevel,
	}
}

// SetMirror sets the writer that receives each new line at the level or
// above, formatted as Entry.String plus "\n", in one Write call per line;
// nil turns mirroring off. Lines already in the ring are not written.
//
// The mirror is written after the line is in the ring and outside the
// ring's lock: a slow mirror delays only the goroutine whose line it is
// writing (and other goroutines whose lines wait for the mirror), never
// Lines, Tail or a goroutine logging while the mirror is off or filtered
// out. Lines from concurrent goroutines reach the mirror whole, one after
// the other, in close to Seq order. Write errors are ignored. The mirror
// must not log to this Log from its Write method.
func (l *Log) SetMirror(w io.Writer, level Level) {
	l.mu.Lock()
	l.mirror, l.mirrorLevel = w, level
	l.mu.Unlock()
}

// Logf logs a message at the given level for the subsystem. The message is
// formatted as by fmt.Sprintf; one trailing newline is removed, and each
// further newline starts another entry with the same timestamp.
func (l *Log) Logf(level Level, subsystem, format string, args ...any) {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}

	l.log(level, subsystem, msg)
}

// Printf logs a message at level Info with no subsystem, as Logf does.
func (l *Log) Printf(format string, args ...any) {
	l.Logf(Info, "", format, args...)
}

// log splits msg into lines and logs them.
func (l *Log) log(level Level, subsystem, msg string) {
	msg = strings.TrimSuffix(msg, "\n")
	subsystem = cleanSubsystem(subsystem)

	first := true
	var t int64
	for {
		line, rest, more := strings.Cut(msg, "\n")
		e := l.add(level, subsystem, line, first, &t)
		first = false

		l.mirrorEntry(e)

		if !more {
			return
		}

		msg = rest
	}
}

// add appends one line to the ring and returns it with the mirror to write
// it to, if any. The clock is read for the first line of a message only; the
// other lines share its time through t.
func (l *Log) add(level Level, subsystem, text string, first bool, t *int64) mirrored {
	text = clean(text, l.maxLine)

	l.mu.Lock()
	defer l.mu.Unlock()

	if first {
		*t = l.clock()
	}

	l.seq++
	e := Entry{Seq: l.seq, Time: *t, Level: level, Subsystem: subsystem, Text: text}
	size := len(subsystem) + len(text)

	for l.count > 0 && (l.count == len(l.ring) || l.bytes+size > l.maxBytes) {
		old := &l.ring[l.head]
		l.bytes -= len(old.Subsystem) + len(old.Text)
		*old = Entry{}
		l.head = (l.head + 1) % len(l.ring)
		l.count--
		l.dropped++
	}

	l.ring[(l.head+l.count)%len(l.ring)] = e
	l.count++
	l.bytes += size

	if l.mirror == nil || level < l.mirrorLevel {
		return mirrored{}
	}

	return mirrored{w: l.mirror, e: e}
}

// mirrored is a line to write to the mirror w, if w is not nil.
type mirrored struct {
	w io.Writer
	e Entry
}

// mirrorEntry writes m to its mirror, outside l.mu.
func (l *Log) mirrorEntry(m mirrored) {
	if m.w == nil {
		return
	}

	var b strings.Builder
	m.e.appendTo(&b)
	b.WriteByte('\n')

	l.mirrorMu.Lock()
	defer l.mirrorMu.Unlock()
	m.w.Write([]byte(b.String())) // best effort: there is nowhere to report
}

// Lines returns a copy of the lines in the ring, oldest first.
func (l *Log) Lines() []Entry {
	return l.Tail(-1)
}

// Tail returns a copy of the newest n lines in the ring, oldest first: all
// of them if n is negative or more than the ring holds, none if n is 0.
func (l *Log) Tail(n int) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()

	if n < 0 || n > l.count {
		n = l.count
	}

	out := make([]Entry, n)
	for i := range out {
		out[i] = l.ring[(l.head+l.count-n+i)%len(l.ring)]
	}

	return out
}

// Len returns the number of lines in the ring.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.count
}

// Dropped returns the number of lines dropped from the ring to make room
// for newer ones since New.
func (l *Log) Dropped() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.dropped
}

// Logger logs for one subsystem. The zero Logger discards everything.
type Logger struct {
	log       *Log
	subsystem string
}

// Logger returns a Logger that logs to l as the subsystem.
func (l *Log) Logger(subsystem string) Logger {
	return Logger{log: l, subsystem: subsystem}
}

// Debugf logs at level Debug, as Log.Logf does.
func (g Logger) Debugf(format string, args ...any) { g.logf(Debug, format, args) }

// Infof logs at level Info, as Log.Logf does.
func (g Logger) Infof(format string, args ...any) { g.logf(Info, format, args) }

// Printf is Infof.
func (g Logger) Printf(format string, args ...any) { g.logf(Info, format, args) }

// Warnf logs at level Warn, as Log.Logf does.
func (g Logger) Warnf(format string, args ...any) { g.logf(Warn, format, args) }

// Errorf logs at level Error, as Log.Logf does.
func (g Logger) Errorf(format string, args ...any) { g.logf(Error, format, args) }

// Writer returns an io.Writer that logs what is written to it at the level,
// as Log.Writer does.
func (g Logger) Writer(level Level) *Writer {
	return g.log.Writer(level, g.subsystem)
}

// logf logs unless g is the zero Logger.
func (g Logger) logf(level Level, format string, args []any) {
	if g.log != nil {
		g.log.Logf(level, g.subsystem, format, args...)
	}
}

// Writer is an io.Writer that logs each line written to it. A line ends at
// "\n" (a "\r" before it is dropped); a partial line waits in the Writer
// until its end is written or Flush is called, and one longer than the
// log's line length is logged in pieces. Its methods are safe for
// concurrent use.
type Writer struct {
	log       *Log
	level     Level
	subsystem string

	mu      sync.Mutex
	partial []byte
}

// Writer returns a Writer that logs to l at the level for the subsystem.
func (l *Log) Writer(level Level, subsystem string) *Writer {
	return &Writer{log: l, level: level, subsystem: subsystem}
}

// Write logs the complete lines in p and keeps the rest for later. It
// always returns len(p), nil.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()

	n := len(p)
	for len(p) > 0 {
		i := indexByte(p, '\n')
		room := w.log.maxLine - len(w.partial)

		switch {
		case i >= 0 && i <= room:
			// The end of a line that fits.
			w.partial = append(w.partial, p[:i]...)
			p = p[i+1:]
			w.emit()
		case i < 0 && len(p) <= room:
			// The start of a line that fits so far.
			w.partial = append(w.partial, p...)
			p = nil
		default:
			// A line longer than a log line: log a piece of it.
			w.partial = append(w.partial, p[:room]...)
			p = p[room:]
			w.emit()
		}
	}

	return n, nil
}

// Flush logs the partial line, if there is one.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()

	if len(w.partial) > 0 {
		w.emit()
	}
}

// emit logs w.partial, without a trailing "\r", and empties it. The buffer
// is kept unless it grew past a line (it never grows much past one).
func (w *Writer) emit() {
	line := w.partial
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}

	w.log.log(w.level, w.subsystem, string(line))
	w.partial = w.partial[:0]
}

// indexByte returns the index of the first c in p, or -1.
func indexByte(p []byte, c byte) int {
	for i, b := range p {
		if b == c {
			return i
		}
	}

	return -1
}

// clean returns s with each control character other than tab, each C1
// control and each invalid UTF-8 byte replaced by '?', tabs replaced by a
// space, and cut to at most maxLen bytes, ending in "..." if it was cut.
func clean(s string, maxLen int) string {
	ok := len(s) <= maxLen
	if ok {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f {
				ok = false
				break
			}
		}
	}

	if ok {
		return s
	}

	// Cleaning never makes s longer, so only a string longer than maxLen
	// is cut, with room kept for the mark.
	limit := maxLen
	if len(s) > maxLen {
		limit = maxLen - len(truncMark)
	}

	var b strings.Builder
	b.Grow(min(len(s), maxLen))

	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\t':
			r = ' '
		case r == utf8.RuneError && size <= 1, unicode.IsControl(r):
			r = '?'
		}

		if b.Len()+utf8.RuneLen(r) > limit {
			b.WriteString(truncMark)
			break
		}

		b.WriteRune(r)
		i += size
	}

	return b.String()
}

// cleanSubsystem returns name with characters other than ASCII letters,
// digits and "-_./" replaced by '?', cut to MAX_SUBSYSTEM_LEN bytes.
func cleanSubsystem(name string) string {
	if len(name) > MAX_SUBSYSTEM_LEN {
		name = name[:MAX_SUBSYSTEM_LEN]
	}

	for i := 0; i < len(name); i++ {
		if !subsystemChar(name[i]) {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if !subsystemChar(b[j]) {
					b[j] = '?'
				}
			}

			return string(b)
		}
	}

	return name
}

// subsystemChar reports whether c may appear in a subsystem name.
func subsystemChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '/'
}

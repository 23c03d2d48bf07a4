package shell

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/keel-hv/keel/kernel/klog"
)

// editorSeeds are inputs that reach every key and escape state.
var editorSeeds = []string{
	"help\r",
	"abc\x7f\b\x15\x03\x01\x05\x02\x06\x04\x0b\x17\x0c\t\r\n\n\r",
	"one\rtwo\r\x1b[A\x1b[Ax\x1b[B\x1b[B\x10\x0e\r",
	"\x1b[D\x1b[C\x1bOA\x1bOB\x1bOC\x1bOD\x1b[H\x1b[F\x1bOH\x1bOF\x1b[1~\x1b[4~\x1b[7~\x1b[8~\x1b[3~",
	"\x1b[1;5C\x1b[1;5D\x1bb\x1bf\x1bOM\x1b[?25h\x1b[<0;1;2M\x1b[2~\x1b[15~",
	"\x1b", "\x1b[", "\x1bO", "\x1b[1;", "\x1b\x1b\x1b[[[", "\x1b[" + strings.Repeat("9", 40) + "D",
	"\x80\xff\xc3\xa9\x00\x1f\x7f",
	strings.Repeat("x", 600) + "\r",
	"c\t\tp\t\r",
}

// FuzzEditor feeds random bytes to the editor, in random chunks and with a
// random line limit, and checks that it ends, never exceeds its bounds and
// writes nothing but printable ASCII and its own control sequences.
func FuzzEditor(f *testing.F) {
	for i, s := range editorSeeds {
		f.Add([]byte(s), uint8(i), uint16(i*37))
	}

	complete := func(word string) []string {
		var out []string
		for _, c := range []string{"cpus", "cpu-hotplug", "help", "log", "poweroff", "\x1bbad", "has space"} {
			if strings.HasPrefix(c, word) {
				out = append(out, c)
			}
		}
		return out
	}

	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, maxLine uint16) {
		const historySize = 4

		var out bytes.Buffer
		e := NewEditor(&chunkReader{data: data, n: int(chunk%16) + 1}, &out)
		e.MaxLine = int(maxLine%600) + 1
		e.History = NewHistory(historySize)
		e.Complete = complete

		calls := 0
		for {
			calls++
			if calls > len(data)+2 {
				t.Fatalf("%d ReadLine calls for %d bytes: not consuming input", calls, len(data))
			}

			line, err := e.ReadLine()
			if len(line) > e.MaxLine || !printable(line) {
				t.Fatalf("line %q: longer than %d or not printable ASCII", line, e.MaxLine)
			}
			if e.cur < 0 || e.cur > len(e.buf) || len(e.buf) > e.MaxLine {
				t.Fatalf("cursor %d, line length %d, MaxLine %d", e.cur, len(e.buf), e.MaxLine)
			}

			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil && !errors.Is(err, ErrInterrupted) {
				t.Fatalf("ReadLine: %v", err)
			}
		}

		h := e.History.Lines()
		if len(h) > historySize {
			t.Fatalf("history of %d lines, more than %d", len(h), historySize)
		}
		seen := map[string]bool{}
		for _, l := range h {
			if seen[l] || strings.TrimSpace(l) == "" || len(l) > e.MaxLine {
				t.Fatalf("history %q: duplicate, blank or long line %q", h, l)
			}
			seen[l] = true
		}

		// Output is bounded per input byte (a redraw, or a completion
		// listing), and made of printable ASCII, CR, LF, BS, BEL and ESC.
		if limit := (len(data) + 2) * (3*e.MaxLine + 1024); out.Len() > limit {
			t.Fatalf("%d bytes of output for %d bytes of input", out.Len(), len(data))
		}
		for _, c := range out.Bytes() {
			if (c < 0x20 || c >= DEL) && c != CR && c != LF && c != BS && c != BEL && c != ESC {
				t.Fatalf("output byte %#x: input garbage reached the terminal: %q", c, out.Bytes())
			}
		}
	})
}

// fuzzShell returns a shell with the standard commands over fake sources.
func fuzzShell(out io.Writer) *Shell {
	l := klog.New(klog.Config{MaxLines: 8})
	l.Printf("boot")

	reg := NewRegistry()
	reg.MustRegister(StandardCommands(Sources{
		Version:  "fuzz",
		CPUs:     func() []CPUInfo { return []CPUInfo{{Online: true, Features: "svm"}} },
		Mem:      func() MemInfo { return MemInfo{Map: []MemRegion{{Length: 1 << 20, Type: "usable"}}} },
		Uptime:   func() time.Duration { return time.Second },
		Log:      l,
		Reboot:   func() error { return errors.New("not in a test") },
		PowerOff: func() error { return errors.New("not in a test") },
	})...)

	return New(out, reg)
}

// FuzzShell types random bytes into a shell with the standard commands and
// runs them as a script: neither may panic or hang.
func FuzzShell(f *testing.F) {
	for _, s := range editorSeeds {
		f.Add(s)
	}
	for _, s := range []string{
		"version; cpus; mem; uptime; log; log 1; log x; reboot; poweroff; help; help log",
		`echo "a;b" 'c d'; help "log"; nope`, `echo "open`, "cpus extra\rlog -1\r",
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, input string) {
		var out bytes.Buffer
		s := fuzzShell(&out)
		s.RunScript(input)

		if err := s.Run(&chunkReader{data: []byte(input), n: 7}); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

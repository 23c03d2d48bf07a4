package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkReader returns its data at most n bytes per Read, then io.EOF.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}

	n := min(len(p), len(r.data), max(r.n, 1))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// lines runs ReadLine on input until it fails and returns what each call
// gave: the line, "^C" for Ctrl-C, or "EOF:partial" at the end.
func lines(t *testing.T, e *Editor) []string {
	t.Helper()

	var got []string
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("ReadLine did not reach the end of the input")
		}

		line, err := e.ReadLine()
		switch {
		case err == nil:
			got = append(got, line)
		case errors.Is(err, ErrInterrupted):
			got = append(got, "^C")
		case errors.Is(err, io.EOF):
			return append(got, "EOF:"+line)
		default:
			t.Fatalf("ReadLine: %v", err)
		}
	}
}

// edit runs input through a new editor, chunk bytes per Read, and returns
// the ReadLine results, the history and the output.
func edit(t *testing.T, input string, chunk int, setup func(*Editor)) ([]string, []string, string) {
	t.Helper()

	var out bytes.Buffer
	e := NewEditor(&chunkReader{data: []byte(input), n: chunk}, &out)
	if setup != nil {
		setup(e)
	}

	got := lines(t, e)
	return got, e.History.Lines(), out.String()
}

func TestEditorLines(t *testing.T) {
	long := strings.Repeat("x", DEFAULT_MAX_LINE)

	tests := []struct {
		name  string
		input string
		want  []string
	}{
		// Enter.
		{name: "CR", input: "abc\r", want: []string{"abc"}},
		{name: "LF", input: "abc\n", want: []string{"abc"}},
		{name: "CRLF once", input: "a\r\nb\r\n", want: []string{"a", "b"}},
		{name: "LFCR once", input: "a\n\rb\n\r", want: []string{"a", "b"}},
		{name: "CR CR twice", input: "a\r\rb\r", want: []string{"a", "", "b"}},
		{name: "LF LF twice", input: "a\n\nb\n", want: []string{"a", "", "b"}},
		{name: "CRLF CRLF empty lines", input: "\r\n\r\n", want: []string{"", ""}},
		{name: "CRLFCR is two", input: "a\r\n\rb\r", want: []string{"a", "", "b"}},
		{name: "unterminated line", input: "abc", want: []string{"EOF:abc"}},
		{name: "empty input", input: "", want: []string{"EOF:"}},

		// Editing keys.
		{name: "DEL", input: "abc\x7f\r", want: []string{"ab"}},
		{name: "BS", input: "abc\b\b\r", want: []string{"a"}},
		{name: "backspace at start", input: "\x7f\x7fa\r", want: []string{"a"}},
		{name: "backspace in middle", input: "abc\x1b[D\x7f\r", want: []string{"ac"}},
		{name: "Ctrl-U", input: "abc\x15d\r", want: []string{"d"}},
		{name: "Ctrl-U in middle", input: "abc\x1b[D\x15d\r", want: []string{"d"}},
		{name: "Ctrl-C", input: "abc\x03d\r", want: []string{"^C", "d"}},
		{name: "Ctrl-C empty", input: "\x03\x03", want: []string{"^C", "^C", "EOF:"}},
		{name: "Ctrl-A", input: "bc\x01a\r", want: []string{"abc"}},
		{name: "Ctrl-E", input: "bc\x01a\x05d\r", want: []string{"abcd"}},
		{name: "Ctrl-B Ctrl-F", input: "ac\x02b\x02\x02\x06\x06\x06\x06d\r", want: []string{"abcd"}},
		{name: "Ctrl-D", input: "abc\x01\x04\r", want: []string{"bc"}},
		{name: "Ctrl-D at end", input: "abc\x04\r", want: []string{"abc"}},
		{name: "Ctrl-K", input: "abcd\x1b[D\x1b[D\x0b\r", want: []string{"ab"}},
		{name: "Ctrl-W", input: "foo bar\x17\r", want: []string{"foo "}},
		{name: "Ctrl-W trailing spaces", input: "foo bar  \x17\r", want: []string{"foo "}},
		{name: "Ctrl-W at start", input: "foo\x01\x17\r", want: []string{"foo"}},
		{name: "Ctrl-L keeps line", input: "ab\x0cc\r", want: []string{"abc"}},
		{name: "Tab without completion", input: "a\tb\r", want: []string{"ab"}},

		// Arrows, Home, End, Delete in their CSI and SS3 forms.
		{name: "left", input: "ac\x1b[Db\r", want: []string{"abc"}},
		{name: "left at start", input: "a\x1b[D\x1b[D\x1b[Db\r", want: []string{"ba"}},
		{name: "right", input: "ac\x1b[D\x1b[Cd\r", want: []string{"acd"}},
		{name: "right at end", input: "a\x1b[C\x1b[Cb\r", want: []string{"ab"}},
		{name: "SS3 left right", input: "ac\x1bODb\x1bOCd\r", want: []string{"abcd"}},
		{name: "home CSI H", input: "bc\x1b[Ha\r", want: []string{"abc"}},
		{name: "home 1~", input: "bc\x1b[1~a\r", want: []string{"abc"}},
		{name: "home 7~", input: "bc\x1b[7~a\r", want: []string{"abc"}},
		{name: "home SS3", input: "bc\x1bOHa\r", want: []string{"abc"}},
		{name: "end CSI F", input: "ab\x01\x1b[Fc\r", want: []string{"abc"}},
		{name: "end 4~", input: "ab\x01\x1b[4~c\r", want: []string{"abc"}},
		{name: "end 8~", input: "ab\x01\x1b[8~c\r", want: []string{"abc"}},
		{name: "end SS3", input: "ab\x01\x1bOFc\r", want: []string{"abc"}},
		{name: "delete", input: "abc\x1b[D\x1b[D\x1b[3~\r", want: []string{"ac"}},
		{name: "delete at end", input: "abc\x1b[3~\r", want: []string{"abc"}},
		{name: "Alt-b Alt-f", input: "foo bar\x1bbX\x1bfY\r", want: []string{"foo XbarY"}},
		{name: "Ctrl-left", input: "foo bar\x1b[1;5DX\r", want: []string{"foo Xbar"}},
		{name: "Ctrl-right", input: "foo bar\x01\x1b[1;5CX\r", want: []string{"fooX bar"}},
		{name: "keypad Enter", input: "ab\x1bOMc\r", want: []string{"ab", "c"}},

		// Sequences that are ignored.
		{name: "Insert key", input: "a\x1b[2~b\r", want: []string{"ab"}},
		{name: "F1 SS3", input: "a\x1bOPb\r", want: []string{"ab"}},
		{name: "F5", input: "a\x1b[15~b\r", want: []string{"ab"}},
		{name: "unknown final", input: "a\x1b[99Zb\r", want: []string{"ab"}},
		{name: "private mode", input: "a\x1b[?25hb\r", want: []string{"ab"}},
		{name: "mouse report", input: "a\x1b[<0;12;34Mb\r", want: []string{"ab"}},
		{name: "three parameters", input: "ab\x1b[1;2;3DX\r", want: []string{"abX"}},
		{name: "intermediate byte", input: "ab\x1b[1 DX\r", want: []string{"abX"}},
		{name: "cursor report", input: "a\x1b[24;80Rb\r", want: []string{"ab"}},
		{name: "huge parameter", input: "ab\x1b[99999999999999~X\r", want: []string{"abX"}},
		{name: "Alt-x", input: "a\x1bxb\r", want: []string{"ab"}},
		{name: "ESC ESC", input: "ab\x1b\x1b[DX\r", want: []string{"aXb"}},

		// Malformed sequences.
		{name: "ESC then Enter", input: "a\x1b\rb\r", want: []string{"a", "b"}},
		{name: "CSI then Enter", input: "a\x1b[\rb\r", want: []string{"a", "b"}},
		{name: "CSI params then Ctrl-C", input: "a\x1b[1\x03b\r", want: []string{"^C", "b"}},
		{name: "SS3 then Enter", input: "a\x1bO\rb\r", want: []string{"a", "b"}},
		{name: "ESC then high byte", input: "a\x1b\xffb\r", want: []string{"ab"}},
		{name: "CSI then high byte", input: "a\x1b[1\xffb\r", want: []string{"ab"}},
		{name: "ESC then DEL", input: "ab\x1b\x7fc\r", want: []string{"ac"}},
		{name: "CSI then ESC restarts", input: "ab\x1b[1\x1b[DX\r", want: []string{"aXb"}},
		{name: "ESC at end of input", input: "ab\x1b", want: []string{"EOF:ab"}},
		{name: "CSI at end of input", input: "ab\x1b[1;", want: []string{"EOF:ab"}},
		{name: "CSI of 16 parameter bytes", input: "ab\x1b[" + strings.Repeat("0", MAX_ESCAPE) + "DX\r",
			want: []string{"aXb"}},
		{name: "CSI of 17 parameter bytes ignored", input: "ab\x1b[" + strings.Repeat("0", MAX_ESCAPE+1) + "DX\r",
			want: []string{"abX"}},
		{name: "very long CSI", input: "a\x1b[" + strings.Repeat("1;", 5000) + "Cb\r", want: []string{"ab"}},

		// Bytes that are ignored.
		{name: "non-ASCII", input: "a\xc3\xa9b\r", want: []string{"ab"}},
		{name: "control bytes", input: "a\x00\x07\x12\x1cb\r", want: []string{"ab"}},

		// Length limit.
		{name: "long line refused", input: long + "yyy\r", want: []string{long}},
		{name: "full line still edits", input: long + "\x7fz\r", want: []string{long[1:] + "z"}},
		{name: "full line refuses middle insert", input: long + "\x01z\r", want: []string{long}},
	}

	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 64} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tt.name, chunk), func(t *testing.T) {
				got, _, _ := edit(t, tt.input, chunk, nil)
				want := tt.want
				if want[len(want)-1][:min(4, len(want[len(want)-1]))] != "EOF:" {
					want = append(want, "EOF:")
				}

				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
					t.Errorf("input %q:\n got %q\nwant %q", tt.input, got, want)
				}
			})
		}
	}
}

func TestEditorHistory(t *testing.T) {
	const up, down = "\x1b[A", "\x1b[B"

	tests := []struct {
		name        string
		input       string
		want        []string
		wantHistory []string
	}{
		{name: "recall", input: "a\rb\r" + up + up + "\r", want: []string{"a", "b", "a"},
			wantHistory: []string{"b", "a"}},
		{name: "recall newest", input: "a\rb\r" + up + "\r", want: []string{"a", "b", "b"},
			wantHistory: []string{"a", "b"}},
		{name: "SS3 and Ctrl-P/N", input: "a\rb\r\x1bOA\x10\x0e\r", want: []string{"a", "b", "b"},
			wantHistory: []string{"a", "b"}},
		{name: "up at oldest stays", input: "one\r" + up + up + up + "\r", want: []string{"one", "one"},
			wantHistory: []string{"one"}},
		{name: "down at newest stays", input: "abc" + down + "\r", want: []string{"abc"},
			wantHistory: []string{"abc"}},
		{name: "typed line comes back", input: "one\rnew" + up + down + "\r", want: []string{"one", "new"},
			wantHistory: []string{"one", "new"}},
		{name: "edit to recalled line kept while navigating", input: "one\rtwo\r" + up + "x" + up + down + "\r",
			want: []string{"one", "two", "twox"}, wantHistory: []string{"one", "two", "twox"}},
		{name: "edit to recalled line dropped on Ctrl-C", input: "one\r" + up + "x\x03" + up + "\r",
			want: []string{"one", "^C", "one"}, wantHistory: []string{"one"}},
		{name: "edit at cursor of recalled line", input: "abc\r" + up + "\x01X\r",
			want: []string{"abc", "Xabc"}, wantHistory: []string{"abc", "Xabc"}},
		{name: "distinct", input: "a\ra\rb\ra\r", want: []string{"a", "a", "b", "a"},
			wantHistory: []string{"b", "a"}},
		{name: "blank lines left out", input: "\r  \r", want: []string{"", "  "}, wantHistory: []string{}},
		{name: "interrupted lines left out", input: "abc\x03", want: []string{"^C"}, wantHistory: []string{}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, history, _ := edit(t, tt.input, 2, nil)
			want := append(tt.want, "EOF:")
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("lines %q, want %q", got, want)
			}
			if fmt.Sprintf("%q", history) != fmt.Sprintf("%q", tt.wantHistory) {
				t.Errorf("history %q, want %q", history, tt.wantHistory)
			}
		})
	}
}

func TestEditorHistoryBounded(t *testing.T) {
	var in strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "cmd%d\r", i)
	}

	_, history, _ := edit(t, in.String(), 64, func(e *Editor) { e.History = NewHistory(8) })
	want := []string{"cmd92", "cmd93", "cmd94", "cmd95", "cmd96", "cmd97", "cmd98", "cmd99"}
	if fmt.Sprint(history) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q", history, want)
	}
}

func TestEditorOutput(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{name: "echo", input: "ab\r", want: "keel> ab\r\n"},
		{name: "backspace", input: "ab\x7f\r", want: "keel> ab\b\x1b[K\r\n"},
		{name: "backspace at start rings nothing", input: "\x7f\r", want: "keel> \r\n"},
		{name: "insert in middle", input: "ac\x1b[Db\r", want: "keel> ac\bbc\bc\r\n"},
		{name: "delete in middle", input: "abc\x1b[D\x1b[D\x1b[3~\r", want: "keel> abc\b\bc\x1b[K\bc\r\n"},
		{name: "Ctrl-U", input: "abc\x15", want: "keel> abc\b\b\b\x1b[K\r\n"},
		{name: "Ctrl-C", input: "ab\x03", want: "keel> ab^C\r\nkeel> \r\n"},
		{name: "Ctrl-C mid-line goes to end", input: "ab\x01\x03", want: "keel> ab\b\bab^C\r\nkeel> \r\n"},
		{name: "home long line uses CUB", input: "abcdefghij\x01\x05", want: "keel> abcdefghij\x1b[10Dabcdefghij\r\n"},
		{name: "history recall", input: "abc\r\x1b[A\r", want: "keel> abc\r\nkeel> abc\r\n"},
		{name: "history recall shorter", input: "a\rabc\x1b[A\r", want: "keel> a\r\nkeel> abc\b\b\x1b[K\r\n"},
		{name: "Ctrl-L", input: "ab\x02\x0c", want: "keel> ab\b\x1b[H\x1b[2J\rkeel> \x1b[Kab\bb\r\n"},
		{name: "bell when full", input: strings.Repeat("x", DEFAULT_MAX_LINE) + "y\r",
			want: "keel> " + strings.Repeat("x", DEFAULT_MAX_LINE) + "\a\r\n"},
		{name: "ignored escape prints nothing", input: "a\x1b[15~\x1b[?1h\x1bOP\xff\x00\r", want: "keel> a\r\n"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// At the end of the input, ReadLine prints a prompt and a
			// newline.
			want := tt.want
			if strings.HasSuffix(tt.input, "\r") {
				want += "keel> \r\n"
			}

			_, _, out := edit(t, tt.input, 1, nil)
			if out != want {
				t.Errorf("input %q:\n got %q\nwant %q", tt.input, out, want)
			}
		})
	}
}

func TestEditorComplete(t *testing.T) {
	names := []string{"cpus", "help", "log", "poweroff", "reboot", "uptime", "version", "bad name", "bad\x1b"}
	complete := func(word string) []string {
		var out []string
		for _, n := range names {
			if strings.HasPrefix(n, word) {
				out = append(out, n)
			}
		}
		return out
	}

	tests := []struct {
		name    string
		input   string
		want    string
		wantOut string
	}{
		{name: "unique", input: "ver\t\r", want: "version ", wantOut: "keel> version \r\n"},
		{name: "unique then argument", input: "lo\t10\r", want: "log 10"},
		{name: "no match", input: "zz\t\r", want: "zz", wantOut: "keel> zz\a\r\n"},
		{name: "common prefix lists", input: "p\t\r", want: "poweroff "},
		{name: "several list", input: "\t\r", want: "",
			wantOut: "keel> \r\ncpus  help  log  poweroff  reboot  uptime  version\r\n\rkeel> \x1b[K\r\n"},
		{name: "second word not completed", input: "log x\t\r", want: "log x"},
		{name: "mid-word", input: "upXX\x02\x02\t\r", want: "uptime XX"},
		{name: "complete before space", input: "ve 1\x01\x06\x06\t\r", want: "version 1"},
		{name: "bad candidates dropped", input: "ba\t\r", want: "ba"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, out := edit(t, tt.input, 1, func(e *Editor) { e.Complete = complete })
			if got[0] != tt.want {
				t.Errorf("line %q, want %q", got[0], tt.want)
			}
			if tt.wantOut != "" && out != tt.wantOut+"keel> \r\n" {
				t.Errorf("output %q, want %q", out, tt.wantOut+"keel> \r\n")
			}
		})
	}
}

func TestEditorCompleteLimits(t *testing.T) {
	t.Run("many candidates", func(t *testing.T) {
		complete := func(string) []string {
			out := make([]string, 1000)
			for i := range out {
				out[i] = fmt.Sprintf("c%d", i)
			}
			return out
		}

		_, _, out := edit(t, "c\t\r", 1, func(e *Editor) { e.Complete = complete })
		listing := strings.Split(out, "\r\n")[1]
		if n := len(strings.Fields(listing)); n != maxCompletions+1 || !strings.HasSuffix(listing, "  ...") {
			t.Errorf("listing of %d words, want %d candidates and ...: %q", n, maxCompletions, listing)
		}
	})

	t.Run("completion longer than the line", func(t *testing.T) {
		complete := func(string) []string { return []string{"a" + strings.Repeat("b", 100)} }
		got, _, _ := edit(t, "a\t\r", 1, func(e *Editor) { e.Complete = complete; e.MaxLine = 10 })
		if got[0] != "a" {
			t.Errorf("line %q, want %q", got[0], "a")
		}
	})
}

func TestEditorMaxLine(t *testing.T) {
	got, _, _ := edit(t, "abcdefgh\r\x1b[A\r", 1, func(e *Editor) { e.MaxLine = 4 })
	want := []string{"abcd", "abcd", "EOF:"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", got, want)
	}

	// A history line longer than MaxLine (from another editor) is cut.
	e := NewEditor(&chunkReader{data: []byte("\x1b[A\r")}, io.Discard)
	e.MaxLine = 3
	e.History.Add("abcdef")
	if line, err := e.ReadLine(); line != "abc" || err != nil {
		t.Errorf("recalled %q, %v; want %q", line, err, "abc")
	}
}

func TestEditorPrompt(t *testing.T) {
	_, _, out := edit(t, "x\r", 1, func(e *Editor) { e.Prompt = "vm0# " })
	if want := "vm0# x\r\nvm0# \r\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// errReader returns its data and err together, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, r.err
}

func TestEditorReadErrors(t *testing.T) {
	broken := errors.New("uart gone")

	t.Run("data with error", func(t *testing.T) {
		e := NewEditor(&errReader{data: []byte("one\rtwo"), err: broken}, io.Discard)
		if line, err := e.ReadLine(); line != "one" || err != nil {
			t.Fatalf("first ReadLine = %q, %v; want one, nil", line, err)
		}
		if line, err := e.ReadLine(); line != "two" || err != broken {
			t.Fatalf("second ReadLine = %q, %v; want two, %v", line, err, broken)
		}
	})

	t.Run("no progress", func(t *testing.T) {
		e := NewEditor(&errReader{}, io.Discard)
		if _, err := e.ReadLine(); err != io.ErrNoProgress {
			t.Fatalf("ReadLine = %v, want io.ErrNoProgress", err)
		}
	})

	t.Run("nil input", func(t *testing.T) {
		e := NewEditor(nil, io.Discard)
		if _, err := e.ReadLine(); err != io.EOF {
			t.Fatalf("ReadLine = %v, want io.EOF", err)
		}
	})

	t.Run("bad count", func(t *testing.T) {
		e := NewEditor(badCountReader{}, io.Discard)
		if _, err := e.ReadLine(); err != io.ErrNoProgress {
			t.Fatalf("ReadLine = %v, want io.ErrNoProgress", err)
		}
	})

	t.Run("reset drops buffered input", func(t *testing.T) {
		e := NewEditor(&chunkReader{data: []byte("one\rtwo\r"), n: 64}, io.Discard)
		e.ReadLine()
		e.Reset(&chunkReader{data: []byte("three\r")})
		if line, _ := e.ReadLine(); line != "three" {
			t.Fatalf("after Reset, ReadLine = %q, want three", line)
		}
	})
}

// badCountReader claims to have read -1 bytes.
type badCountReader struct{}

func (badCountReader) Read(p []byte) (int, error) { return -1, nil }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the buffer ends with suffix.
func waitFor(t *testing.T, b *syncBuffer, suffix string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(b.String(), suffix) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q does not end with %q", b.String(), suffix)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEditorWriterWhileEditing(t *testing.T) {
	var out syncBuffer
	r, w := io.Pipe()
	e := NewEditor(r, &out)

	type result struct {
		line string
		err  error
	}
	done := make(chan result)
	go func() {
		line, err := e.ReadLine()
		done <- result{line, err}
	}()

	w.Write([]byte("abc\x1b[D"))
	waitFor(t, &out, "keel> abc\b")

	log := e.Writer()
	fmt.Fprintf(log, "svm: exit\n")
	fmt.Fprintf(log, "partial")

	w.Write([]byte("X\r"))
	res := <-done
	if res.line != "abXc" || res.err != nil {
		t.Errorf("ReadLine = %q, %v; want abXc", res.line, res.err)
	}

	want := "keel> abc\b" +
		"\r\x1b[Ksvm: exit\r\nkeel> abc\b" +
		"\r\x1b[Kpartial\r\nkeel> abc\b" +
		"Xc\bc\r\n"
	if got := out.String(); got != want {
		t.Errorf("output\n got %q\nwant %q", got, want)
	}

	// Not editing: text goes straight out, and the next prompt starts on a
	// new line if the text did not end one.
	fmt.Fprintf(log, "one\ntwo")
	go func() {
		line, err := e.ReadLine()
		done <- result{line, err}
	}()
	w.Close()
	<-done

	if got, want := out.String()[len(want):], "one\r\ntwo\r\nkeel> \r\n"; got != want {
		t.Errorf("output after the line %q, want %q", got, want)
	}
}

func TestEditorWriterConcurrent(t *testing.T) {
	var out syncBuffer
	r, w := io.Pipe()
	e := NewEditor(r, &out)

	done := make(chan string)
	go func() {
		var got []string
		for {
			line, err := e.ReadLine()
			if err != nil {
				done <- strings.Join(got, ",")
				return
			}
			got = append(got, line)
		}
	}()

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			lw := e.Writer()
			for i := range 50 {
				fmt.Fprintf(lw, "g%d line %d\n", g, i)
			}
		})
	}

	for i := range 50 {
		fmt.Fprintf(w, "cmd%d\r", i)
	}
	wg.Wait()
	w.Close()

	got := <-done
	if strings.Count(got, "cmd") != 50 {
		t.Errorf("lines %q: want cmd0 to cmd49", got)
	}
}

func TestHistory(t *testing.T) {
	h := NewHistory(3)
	for _, l := range []string{"a", "b", "", " ", "c", "a", "d", "d"} {
		h.Add(l)
	}

	if got, want := h.Lines(), []string{"c", "a", "d"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}

	if h.Len() != 3 {
		t.Errorf("Len() = %d, want 3", h.Len())
	}

	if NewHistory(0).max != DEFAULT_HISTORY {
		t.Errorf("NewHistory(0) keeps %d lines, want %d", NewHistory(0).max, DEFAULT_HISTORY)
	}
}

func TestCRLFWriter(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{name: "lf", writes: []string{"a\nb\n"}, want: "a\r\nb\r\n"},
		{name: "crlf kept", writes: []string{"a\r\nb"}, want: "a\r\nb"},
		{name: "split crlf", writes: []string{"a\r", "\nb"}, want: "a\r\nb"},
		{name: "lone cr", writes: []string{"a\rb"}, want: "a\rb"},
		{name: "lflf", writes: []string{"\n\n"}, want: "\r\n\r\n"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewCRLFWriter(&out)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if out.String() != tt.want {
				t.Errorf("wrote %q, want %q", out.String(), tt.want)
			}
		})
	}
}

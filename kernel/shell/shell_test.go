package shell

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// testShell returns a shell with a few test commands and its output.
func testShell(t *testing.T) (*Shell, *bytes.Buffer) {
	t.Helper()

	reg := NewRegistry()
	reg.MustRegister(
		EchoCommand(),
		Command{
			Name: "fail", Help: "always fail",
			Run: func(ctx *Context, args []string) error { return errors.New("it broke") },
		},
		Command{
			Name: "half", Help: "print without a newline, then fail",
			Run: func(ctx *Context, args []string) error {
				ctx.Printf("partial")
				return errors.New("stopped")
			},
		},
		Command{
			Name: "pick", Args: "A|B", Help: "take one argument\nThe argument is A or B.",
			Run: func(ctx *Context, args []string) error {
				if len(args) != 1 {
					return ErrUsage
				}
				if args[0] != "A" && args[0] != "B" {
					return Usagef("want A or B, not %q", args[0])
				}
				ctx.Printf("picked %s\n", args[0])
				return nil
			},
		},
		Command{
			Name: "boom", Help: "panic",
			Run: func(ctx *Context, args []string) error { panic("nil map") },
		},
		Command{
			Name: "exit", Help: "leave the shell",
			Run: func(ctx *Context, args []string) error { return ErrExit },
		},
	)

	var out bytes.Buffer
	return New(&out, reg), &out
}

func TestExec(t *testing.T) {
	tests := []struct {
		line    string
		want    string
		wantErr error
	}{
		{line: "", want: ""},
		{line: "   ", want: ""},
		{line: "echo hi  there", want: "hi there\r\n"},
		{line: `echo "hi  there"`, want: "hi  there\r\n"},
		{line: "x", want: "keel: unknown command \"x\" (try help)\r\n", wantErr: ErrUnknownCommand},
		{line: "\"a b\" c", want: "keel: unknown command \"a b\" (try help)\r\n", wantErr: ErrUnknownCommand},
		{line: "fail", want: "keel: fail: it broke\r\n"},
		{line: "half", want: "partial\r\nkeel: half: stopped\r\n"},
		{line: "pick", want: "keel: pick: invalid arguments\r\nusage: pick A|B\r\n", wantErr: ErrUsage},
		{line: "pick C", want: "keel: pick: want A or B, not \"C\"\r\nusage: pick A|B\r\n", wantErr: ErrUsage},
		{line: "pick B", want: "picked B\r\n"},
		{line: "boom", want: "keel: boom: internal error: nil map (this is a bug in the command)\r\n"},
		{line: `echo "open`, want: "keel: unterminated double quote at column 6: close it with \"\r\n"},
		{line: "exit", want: "", wantErr: ErrExit},
		{line: "help x y", want: "keel: help: too many arguments\r\nusage: help [COMMAND]\r\n", wantErr: ErrUsage},
		{line: "help nope", want: "keel: help: no command \"nope\" (help lists them)\r\n"},
		{line: "help pick", want: "usage: pick A|B\r\ntake one argument\r\nThe argument is A or B.\r\n"},
		{line: "help", want: "commands:\r\n" +
			"  boom            panic\r\n" +
			"  echo [TEXT...]  print the arguments\r\n" +
			"  exit            leave the shell\r\n" +
			"  fail            always fail\r\n" +
			"  half            print without a newline, then fail\r\n" +
			"  help [COMMAND]  list the commands, or describe one\r\n" +
			"  pick A|B        take one argument\r\n"},
	}

	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s, out := testShell(t)
			err := s.Exec(tt.line)

			if got := out.String(); got != tt.want {
				t.Errorf("Exec(%q) printed\n%q\nwant\n%q", tt.line, got, tt.want)
			}

			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Exec(%q) = %v, want %v", tt.line, err, tt.wantErr)
			case tt.wantErr == nil && strings.Contains(tt.want, "keel: ") != (err != nil):
				t.Errorf("Exec(%q) = %v, want an error exactly when one is printed", tt.line, err)
			}
		})
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{name: "session", input: "echo one\rbogus\r\r",
			want: "keel> echo one\r\none\r\n" +
				"keel> bogus\r\nkeel: unknown command \"bogus\" (try help)\r\n" +
				"keel> \r\n" +
				"keel> \r\n"},
		{name: "Ctrl-C", input: "echo no\x03echo yes\r",
			want: "keel> echo no^C\r\nkeel> echo yes\r\nyes\r\nkeel> \r\n"},
		{name: "unterminated line not run", input: "echo no",
			want: "keel> echo no\r\n"},
		{name: "exit", input: "exit\recho no\r",
			want: "keel> exit\r\n"},
		{name: "prompt after partial output", input: "half\r",
			want: "keel> half\r\npartial\r\nkeel: half: stopped\r\nkeel> \r\n"},
		{name: "tab completes", input: "ec\thi\r",
			want: "keel> echo hi\r\nhi\r\nkeel> \r\n"},
		{name: "history", input: "echo a\r\x1b[A\r",
			want: "keel> echo a\r\na\r\nkeel> echo a\r\na\r\nkeel> \r\n"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out := testShell(t)
			if err := s.Run(&chunkReader{data: []byte(tt.input), n: 1}); err != nil {
				t.Fatalf("Run = %v", err)
			}

			if got := out.String(); got != tt.want {
				t.Errorf("transcript\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRunReadError(t *testing.T) {
	broken := errors.New("uart gone")
	s, _ := testShell(t)
	if err := s.Run(&errReader{data: []byte("echo a\r"), err: broken}); err != broken {
		t.Errorf("Run = %v, want %v", err, broken)
	}
}

func TestRunScript(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		want    string
		wantErr string
	}{
		{name: "two commands", script: "echo a; echo b",
			want: "keel> echo a\r\na\r\nkeel> echo b\r\nb\r\n"},
		{name: "quoted semicolon", script: `echo "x; y"; echo 'z;'`,
			want: "keel> echo \"x; y\"\r\nx; y\r\nkeel> echo 'z;'\r\nz;\r\n"},
		{name: "failure does not stop", script: "fail; echo after",
			want: "keel> fail\r\nkeel: fail: it broke\r\nkeel> echo after\r\nafter\r\n", wantErr: "it broke"},
		{name: "usage error", script: "pick", wantErr: "invalid arguments",
			want: "keel> pick\r\nkeel: pick: invalid arguments\r\nusage: pick A|B\r\n"},
		{name: "exit stops", script: "echo a; exit; echo b",
			want: "keel> echo a\r\na\r\nkeel> exit\r\n"},
		{name: "newlines", script: "echo a\necho b\n",
			want: "keel> echo a\r\na\r\nkeel> echo b\r\nb\r\n"},
		{name: "empty", script: " ; ", want: ""},
		{name: "unterminated quote runs nothing", script: `echo a; echo "b`,
			want:    "keel: script not run: unterminated double quote at column 14: close it with \"\r\n",
			wantErr: "unterminated double quote"},
		{name: "control byte runs nothing", script: "echo a; echo \x1b[2J",
			want:    "keel: script not run: byte 0x1b at column 14: scripts are printable ASCII\r\n",
			wantErr: "printable ASCII"},
		{name: "long line runs nothing", script: "echo a; echo " + strings.Repeat("x", 600),
			want:    "keel: script not run: command \"echo xxxxxxxxxxxxxxxx...\" is 605 bytes long, more than 512\r\n",
			wantErr: "more than 512"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out := testShell(t)
			err := s.RunScript(tt.script)

			if got := out.String(); got != tt.want {
				t.Errorf("RunScript(%q) printed\n%q\nwant\n%q", tt.script, got, tt.want)
			}

			if (tt.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RunScript(%q) = %v, want error containing %q", tt.script, err, tt.wantErr)
			}
		})
	}
}

func TestRunScriptThenRun(t *testing.T) {
	s, out := testShell(t)
	s.RunScript("echo boot")
	out.Reset()

	// The script's lines are in the history, as if typed.
	if err := s.Run(&chunkReader{data: []byte("\x1b[A\r"), n: 8}); err != nil {
		t.Fatal(err)
	}

	if want := "keel> echo boot\r\nboot\r\nkeel> \r\n"; out.String() != want {
		t.Errorf("transcript %q, want %q", out.String(), want)
	}
}

func TestRegister(t *testing.T) {
	run := func(*Context, []string) error { return nil }

	tests := []struct {
		name    string
		cmd     Command
		wantErr string
	}{
		{name: "ok", cmd: Command{Name: "vm-list", Help: "h", Run: run}},
		{name: "dotted", cmd: Command{Name: "net.up", Help: "h", Run: run}},
		{name: "duplicate", cmd: Command{Name: "help", Help: "h", Run: run}, wantErr: `command "help" is registered twice`},
		{name: "empty name", cmd: Command{Help: "h", Run: run}, wantErr: "want 1 to 32 characters"},
		{name: "long name", cmd: Command{Name: strings.Repeat("a", 33), Help: "h", Run: run}, wantErr: "want 1 to 32"},
		{name: "space", cmd: Command{Name: "a b", Help: "h", Run: run}, wantErr: "want a letter"},
		{name: "digit first", cmd: Command{Name: "1st", Help: "h", Run: run}, wantErr: "want a letter"},
		{name: "no help", cmd: Command{Name: "x", Help: " \n", Run: run}, wantErr: "no help text"},
		{name: "no run", cmd: Command{Name: "x", Help: "h"}, wantErr: "no Run function"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRegistry()
			err := r.Register(tt.cmd)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Register = %v", err)
				}
				if _, ok := r.Lookup(tt.cmd.Name); !ok {
					t.Errorf("Lookup(%q) found nothing after Register", tt.cmd.Name)
				}
				return
			}

			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Register = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMustRegisterPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustRegister of a duplicate did not panic")
		}
	}()

	NewRegistry().MustRegister(EchoCommand(), EchoCommand())
}

func TestNames(t *testing.T) {
	r := NewRegistry()
	r.MustRegister(EchoCommand(), VersionCommand("v"))

	tests := []struct {
		prefix string
		want   string
	}{
		{"", "[echo help version]"},
		{"e", "[echo]"},
		{"z", "[]"},
	}

	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			if got := fmt.Sprint(r.Names(tt.prefix)); got != tt.want {
				t.Errorf("Names(%q) = %s, want %s", tt.prefix, got, tt.want)
			}
		})
	}
}

func TestShellWriter(t *testing.T) {
	s, out := testShell(t)
	fmt.Fprintf(s.Writer(), "[ 0.1] info log line\n")
	if want := "[ 0.1] info log line\r\n"; out.String() != want {
		t.Errorf("Writer wrote %q, want %q", out.String(), want)
	}
}

func TestNewWithoutRegistry(t *testing.T) {
	var out bytes.Buffer
	s := New(&out, nil)
	if _, ok := s.Registry().Lookup("help"); !ok {
		t.Fatal("New(out, nil) has no help command")
	}
	s.Editor().Prompt = "> "
	if err := s.Run(strings.NewReader("nope\n")); err != nil {
		t.Fatal(err)
	}
	if want := "> nope\r\nkeel: unknown command \"nope\" (try help)\r\n> \r\n"; out.String() != want {
		t.Errorf("transcript %q, want %q", out.String(), want)
	}
}

// Exec on a nil-returning reader is covered by the editor tests; this checks
// that Run gives up on a reader that never makes progress.
func TestRunNoProgress(t *testing.T) {
	s, _ := testShell(t)
	if err := s.Run(&errReader{}); err != io.ErrNoProgress {
		t.Errorf("Run = %v, want io.ErrNoProgress", err)
	}
}

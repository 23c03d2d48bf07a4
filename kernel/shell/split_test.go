package shell

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		line    string
		want    []string
		wantErr string
	}{
		{line: "", want: nil},
		{line: "   \t ", want: nil},
		{line: "help", want: []string{"help"}},
		{line: "  log   10  ", want: []string{"log", "10"}},
		{line: "a\tb\r\nc", want: []string{"a", "b", "c"}},
		{line: `echo "a b"  c`, want: []string{"echo", "a b", "c"}},
		{line: `echo "" x`, want: []string{"echo", "", "x"}},
		{line: `echo ''`, want: []string{"echo", ""}},
		{line: `a"b c"d`, want: []string{"ab cd"}},
		{line: `"a;b"`, want: []string{"a;b"}},
		{line: `a;b`, want: []string{"a;b"}},
		{line: `"say \"hi\""`, want: []string{`say "hi"`}},
		{line: `"back\\slash"`, want: []string{`back\slash`}},
		{line: `"keep \n as is"`, want: []string{`keep \n as is`}},
		{line: `a\b`, want: []string{`a\b`}},
		{line: `a\"b`, wantErr: "unterminated double quote at column 3: close it with \""},
		{line: `'it''s'`, want: []string{"its"}},
		{line: `'a "b" c'`, want: []string{`a "b" c`}},
		{line: `"it's"`, want: []string{"it's"}},
		{line: `'\\'`, want: []string{`\\`}},
		{line: `echo "abc`, wantErr: "unterminated double quote at column 6: close it with \""},
		{line: `echo 'abc`, wantErr: "unterminated single quote at column 6: close it with '"},
		{line: `"\"`, wantErr: "unterminated double quote at column 1: close it with \""},
	}

	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := Split(tt.line)
			if tt.wantErr != "" {
				var se *SyntaxError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &se) {
					t.Fatalf("Split(%q) = %q, %v; want error %q", tt.line, got, err, tt.wantErr)
				}
				return
			}

			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Split(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
			}
		})
	}
}

func TestSplitScript(t *testing.T) {
	tests := []struct {
		script  string
		want    []string
		wantErr string
	}{
		{script: "", want: nil},
		{script: " ; ;; ", want: nil},
		{script: "version", want: []string{"version"}},
		{script: "version; cpus", want: []string{"version", "cpus"}},
		{script: "version;cpus;", want: []string{"version", "cpus"}},
		{script: "  a  ;  b c  ", want: []string{"a", "b c"}},
		{script: "a\nb\r\nc", want: []string{"a", "b", "c"}},
		{script: `echo "a; b"; log 5`, want: []string{`echo "a; b"`, "log 5"}},
		{script: `echo 'a; b'; log`, want: []string{`echo 'a; b'`, "log"}},
		{script: `echo "say \"x;y\""; z`, want: []string{`echo "say \"x;y\""`, "z"}},
		{script: `echo "\\"; z`, want: []string{`echo "\\"`, "z"}},
		{script: "echo \"a\nb\"", want: []string{"echo \"a\nb\""}},
		{script: `a; echo "b`, wantErr: "unterminated double quote at column 9: close it with \""},
		{script: `a; echo 'b;c`, wantErr: "unterminated single quote at column 9: close it with '"},
	}

	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			got, err := SplitScript(tt.script)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("SplitScript(%q) = %q, %v; want error %q", tt.script, got, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("SplitScript(%q) returned lines %q with an error", tt.script, got)
				}
				return
			}

			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("SplitScript(%q) = %q, %v; want %q", tt.script, got, err, tt.want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ arg, want string }{
		{"plain", "plain"},
		{"", `""`},
		{"a b", `"a b"`},
		{`say "hi"`, `"say \"hi\""`},
		{`c:\dir`, `"c:\\dir"`},
		{"a;b", `"a;b"`},
		{"it's", `"it's"`},
		{"tab\there", "\"tab\there\""},
	}

	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			if got := Quote(tt.arg); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.arg, got, tt.want)
			}

			back, err := Split(Quote(tt.arg))
			if err != nil || len(back) != 1 || back[0] != tt.arg {
				t.Errorf("Split(Quote(%q)) = %q, %v", tt.arg, back, err)
			}
		})
	}

	args := []string{"echo", "", "a b", `"`, `\`, ";"}
	if got, err := Split(Join(args)); err != nil || !slices.Equal(got, args) {
		t.Errorf("Split(Join(%q)) = %q, %v", args, got, err)
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"", "help", `echo "a b" c`, `a"b c"d`, `"say \"hi\""`, `"\\"`, `'it''s'`,
		"version; cpus", `echo "a; b"; log 5`, "a\nb\r\nc", `unterminated "quote`,
		`"\"`, `\`, "\x00\xff\x1b[A", strings.Repeat(`"a;b" `, 20),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		args, err := Split(s)
		if err == nil {
			for _, a := range args {
				if len(a) > len(s) {
					t.Fatalf("argument %q longer than the line %q", a, s)
				}
			}

			back, err := Split(Join(args))
			if err != nil || !slices.Equal(back, args) {
				t.Fatalf("Split(%q) = %q, but Split(Join(...)) = %q, %v", s, args, back, err)
			}
		} else if args != nil {
			t.Fatalf("Split(%q) returned %q with error %v", s, args, err)
		}

		lines, err := SplitScript(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(s) || s[se.Column-1] != se.Quote {
				t.Fatalf("SplitScript(%q): bad error %v", s, err)
			}
			return
		}

		for _, line := range lines {
			if line == "" || strings.Trim(line, " \t\v\f") != line {
				t.Fatalf("SplitScript(%q) gave untrimmed or empty line %q", s, line)
			}

			// Each line has balanced quotes, so Split accepts it.
			if _, err := Split(line); err != nil {
				t.Fatalf("SplitScript(%q) gave line %q that Split rejects: %v", s, line, err)
			}
		}

		// Joining the lines with ; gives the same lines back.
		again, err := SplitScript(strings.Join(lines, ";"))
		if err != nil || fmt.Sprintf("%q", again) != fmt.Sprintf("%q", lines) {
			t.Fatalf("SplitScript(%q) = %q, but on the lines joined: %q, %v", s, lines, again, err)
		}
	})
}

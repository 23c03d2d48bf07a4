// Package shell is Keel's serial console shell: a line editor for a serial
// terminal (Editor), a registry of commands (Registry), argument and script
// splitting with quotes (Split, SplitScript), the read-edit-run loop and the
// kernel command-line scripts (Shell), and the standard commands, which
// reach the kernel's data through functions that the kernel passes in.
//
// Everything typed on the console is untrusted input: the editor never
// hangs, never panics and keeps its memory bounded whatever bytes arrive.
//
// The package is pure Go and host-testable; the kernel wires it to the
// console UART and supplies the data sources.
package shell

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Error is an error of this package. Its values are constants, so that they
// exist before package initialization.
type Error string

// Error returns the message.
func (e Error) Error() string {
	return string(e)
}

const (
	// ErrUsage is the error of a command called with wrong arguments; the
	// shell prints it with the command's usage line. Usagef returns an
	// error that is ErrUsage (errors.Is) with a specific message.
	ErrUsage Error = "invalid arguments"
	// ErrExit, returned by a command, ends Shell.Run and Shell.RunScript.
	ErrExit Error = "exit requested"
	// ErrUnknownCommand is the error of a line whose command does not
	// exist.
	ErrUnknownCommand Error = "unknown command"
)

// UsageError is a usage error with a message that says what is wrong with
// the arguments. errors.Is(err, ErrUsage) is true for it.
type UsageError struct {
	// Msg says what is wrong, e.g. `unexpected argument "x"`.
	Msg string
}

// Error returns the message.
func (e *UsageError) Error() string {
	return e.Msg
}

// Is reports whether target is ErrUsage.
func (e *UsageError) Is(target error) bool {
	return target == ErrUsage
}

// Usagef returns a *UsageError with the message formatted as by
// fmt.Sprintf.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Context is what a running command gets besides its arguments.
type Context struct {
	// Out is the terminal. It turns "\n" into "\r\n".
	Out io.Writer
	// Shell is the shell running the command.
	Shell *Shell
	// Name is the command's name.
	Name string
}

// Printf writes to ctx.Out as fmt.Fprintf does.
func (ctx *Context) Printf(format string, args ...any) {
	fmt.Fprintf(ctx.Out, format, args...)
}

// Shell reads command lines with an Editor and runs them from a Registry.
// Run, RunScript and Exec must not be called concurrently with each other;
// Writer is safe to use from any goroutine.
type Shell struct {
	reg *Registry
	ed  *Editor
}

// New returns a shell that writes to out and runs the commands of reg (a
// new registry with only `help` if reg is nil). Tab completes command
// names.
func New(out io.Writer, reg *Registry) *Shell {
	if reg == nil {
		reg = NewRegistry()
	}

	s := &Shell{reg: reg, ed: NewEditor(nil, out)}
	s.ed.Complete = reg.Names

	return s
}

// Registry returns the shell's commands.
func (s *Shell) Registry() *Registry {
	return s.reg
}

// Editor returns the shell's line editor, to change its prompt, line
// length or history before Run.
func (s *Shell) Editor() *Editor {
	return s.ed
}

// Writer returns a writer for output from other goroutines, such as the
// kernel log's mirror: see Editor.Writer.
func (s *Shell) Writer() io.Writer {
	return s.ed.Writer()
}

// Run reads command lines from in and runs them until the input ends, a
// command returns ErrExit or reading fails. Ctrl-C cancels the line being
// typed; a line that has not been ended with Enter when the input ends is
// not run. It returns nil at the end of the input (io.EOF) or on ErrExit,
// else the read error.
func (s *Shell) Run(in io.Reader) error {
	s.ed.Reset(in)

	for {
		line, err := s.ed.ReadLine()
		switch {
		case errors.Is(err, ErrInterrupted):
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}

		if errors.Is(s.Exec(line), ErrExit) {
			return nil
		}
	}
}

// RunScript runs a script of command lines separated by semicolons or
// newlines (see SplitScript), as if each had been typed: it prints the
// prompt and the line, runs it, and adds it to the history. It is how the
// kernel runs keel.run="..." from its command line.
//
// The script is checked first, and nothing runs if it has an unterminated
// quote, a byte that is not printable ASCII, tab, CR or LF, or a line
// longer than the editor's MaxLine; the error is printed and returned. A
// failing command does not stop the script, which ends early only on
// ErrExit. RunScript returns the first error a command returned (already
// printed), or nil.
func (s *Shell) RunScript(script string) error {
	out := s.ed.Writer()

	lines, err := s.checkScript(script)
	if err != nil {
		fmt.Fprintf(out, "keel: script not run: %v\n", err)
		return err
	}

	var first error
	for _, line := range lines {
		fmt.Fprintf(out, "%s%s\n", s.ed.Prompt, line)
		s.ed.History.Add(line)

		err := s.Exec(line)
		if errors.Is(err, ErrExit) {
			return nil
		}

		if first == nil {
			first = err
		}
	}

	return first
}

// checkScript splits script and checks its bytes and line lengths.
func (s *Shell) checkScript(script string) ([]string, error) {
	for i := 0; i < len(script); i++ {
		if c := script[i]; (c < 0x20 || c >= DEL) && c != '\t' && c != '\r' && c != '\n' {
			return nil, fmt.Errorf("byte %#02x at column %d: scripts are printable ASCII", c, i+1)
		}
	}

	lines, err := SplitScript(script)
	if err != nil {
		return nil, err
	}

	maxLine := s.ed.MaxLine
	if maxLine <= 0 {
		maxLine = DEFAULT_MAX_LINE
	}

	for _, line := range lines {
		if len(line) > maxLine {
			return nil, fmt.Errorf("command %q is %d bytes long, more than %d", trimLine(line, 24), len(line), maxLine)
		}
	}

	return lines, nil
}

// Exec runs one command line: it splits it, looks the command up, runs it
// and prints what went wrong, if anything, on its own line:
//
//	keel: unknown command "x" (try help)
//	keel: NAME: MESSAGE                  (an error from the command)
//	keel: NAME: MESSAGE                  (a usage error, then its usage)
//	usage: NAME ARGS
//	keel: unterminated double quote ...  (a line Split rejects)
//
// A panic in a command is recovered and printed as an internal error. Exec
// returns the error it printed (ErrUnknownCommand for an unknown command),
// ErrExit if the command returned it, or nil; an empty line does nothing.
func (s *Shell) Exec(line string) error {
	out := s.ed.Writer().(*termWriter)

	args, err := Split(line)
	if err != nil {
		fmt.Fprintf(out, "keel: %v\n", err)
		return err
	}

	if len(args) == 0 {
		return nil
	}

	name := args[0]
	cmd, ok := s.reg.Lookup(name)
	if !ok {
		fmt.Fprintf(out, "keel: unknown command %q (try help)\n", name)
		return fmt.Errorf("%w %q", ErrUnknownCommand, name)
	}

	err = run(cmd, &Context{Out: out, Shell: s, Name: name}, args[1:])
	if err == nil || errors.Is(err, ErrExit) {
		return err
	}

	// Report on a line of its own, after whatever the command printed.
	if out.last != 0 && out.last != '\n' {
		fmt.Fprint(out, "\n")
	}

	fmt.Fprintf(out, "keel: %s: %v\n", name, err)
	if errors.Is(err, ErrUsage) {
		fmt.Fprintf(out, "usage: %s\n", cmd.Usage())
	}

	return err
}

// run runs cmd, turning a panic into an error.
func run(cmd Command, ctx *Context, args []string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v (this is a bug in the command)", p)
		}
	}()

	return cmd.Run(ctx, args)
}

// NewCRLFWriter returns a writer that writes to w with each "\n" not
// already after a "\r" turned into "\r\n", for a terminal. It returns
// len(p) and the error of the write to w.
func NewCRLFWriter(w io.Writer) io.Writer {
	return &crlfWriter{w: w}
}

// crlfWriter is the writer NewCRLFWriter returns.
type crlfWriter struct {
	w      io.Writer
	lastCR bool
	buf    []byte
}

// Write converts p and writes it.
func (c *crlfWriter) Write(p []byte) (int, error) {
	c.buf, c.lastCR = appendCRLF(c.buf[:0], p, c.lastCR)
	_, err := c.w.Write(c.buf)
	if cap(c.buf) > maxOutput {
		c.buf = nil
	}

	return len(p), err
}

// trimLine returns s cut to n bytes with "..." if it is longer.
func trimLine(s string, n int) string {
	if len(s) <= n {
		return s
	}

	return strings.TrimRight(s[:n-3], " ") + "..."
}

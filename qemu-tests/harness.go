// Package qemutests boots Keel images under QEMU and checks what they print
// on the serial console.
//
// harness.go is the reusable part: Start runs qemu-system-x86_64 with the
// serial console on its standard input and output, and the returned *VM lets
// a test wait for console output (Expect), type into the console (Send) and
// wait for QEMU to exit (Wait). QEMU is killed when the test ends, and if the
// test failed the whole console log is printed with t.Log. StartEmulator
// does the same for other emulators (Bochs), optionally reading the serial
// console from a named pipe that the emulator writes as a file.
//
// Host-only package; the tests need qemu-system-x86_64 (Debian package
// qemu-system-x86, installed by `make test`) and a kernel in KEEL_KERNEL.
package qemutests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// QEMUBinary is the emulator the harness runs.
const QEMUBinary = "qemu-system-x86_64"

// VM is a running emulator (QEMU unless started with StartEmulator) whose
// serial console is captured.
type VM struct {
	t     testing.TB
	name  string // what to call the emulator in messages
	cmd   *exec.Cmd
	stdin io.WriteCloser // nil if the console is read from a pipe
	start time.Time

	serial     *os.File      // the serial FIFO's read end, or nil
	serialDone chan struct{} // closed when the FIFO reader has stopped

	mu      sync.Mutex
	console []byte        // everything QEMU printed, '\r' removed
	output  []byte        // the emulator's own output, when kept apart
	pos     int           // Expect searches console[pos:]
	changed chan struct{} // closed and replaced on every new output
	exited  chan struct{} // closed when QEMU has exited
	exitErr error         // cmd.Wait's result, valid after exited
}

// consoleWriter appends QEMU's output to the VM's console.
type consoleWriter struct{ vm *VM }

// Write records p and wakes whoever waits in Expect.
func (w consoleWriter) Write(p []byte) (int, error) {
	vm := w.vm
	vm.mu.Lock()
	vm.console = append(vm.console, bytes.ReplaceAll(p, []byte("\r"), nil)...)
	close(vm.changed)
	vm.changed = make(chan struct{})
	vm.mu.Unlock()
	return len(p), nil
}

// outputWriter keeps the emulator's own output when the console comes from
// a serial pipe.
type outputWriter struct{ vm *VM }

// Write records p.
func (w outputWriter) Write(p []byte) (int, error) {
	w.vm.mu.Lock()
	w.vm.output = append(w.vm.output, p...)
	w.vm.mu.Unlock()
	return len(p), nil
}

// Start runs QEMU with args (which must put the serial console on stdio, for
// example with -nographic) and returns the running VM. It fails the test if
// QEMU cannot be started. QEMU is killed when the test ends; if the test
// failed, the console log is written with t.Log.
func Start(t testing.TB, args ...string) *VM {
	t.Helper()
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		t.Fatalf("%s not found in PATH: install the Debian package qemu-system-x86 (make test does it through scripts/deps.sh)", QEMUBinary)
	}
	return StartProgram(t, QEMUBinary, args...)
}

// StartProgram is Start for any program that talks on its standard input
// and output (another emulator, or a stand-in in the harness's own tests).
func StartProgram(t testing.TB, name string, args ...string) *VM {
	t.Helper()
	return StartEmulator(t, Emulator{Program: name, Args: args})
}

// Emulator describes a process for StartEmulator.
type Emulator struct {
	// Program is the command to run (looked up in PATH), Args its
	// arguments.
	Program string
	Args    []string
	// Name is what messages call it ("QEMU exited ..."); default QEMU.
	Name string
	// SerialFIFO, if set, is a path at which the harness creates a named
	// pipe and from which it reads the console: configure the emulator
	// to write its serial port there as a file (Bochs: com1: mode=file,
	// dev=PATH). The emulator's standard input is then /dev/null (Send
	// fails the test) and its own standard output and error are kept
	// apart (Output) and printed if the test fails.
	SerialFIFO string
}

// StartEmulator runs e and returns the running VM, failing the test if it
// cannot be started. It is killed when the test ends; if the test failed,
// the console log (and the emulator's output, if kept apart) is written
// with t.Log.
func StartEmulator(t testing.TB, e Emulator) *VM {
	t.Helper()
	bin, err := exec.LookPath(e.Program)
	if err != nil {
		t.Fatalf("%s not found: %v", e.Program, err)
	}
	vm := &VM{
		t:       t,
		name:    e.Name,
		changed: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	if vm.name == "" {
		vm.name = "QEMU"
	}
	vm.cmd = exec.Command(bin, e.Args...)
	// QEMU gets its own process group so that Kill also reaches anything
	// it started (and anything holding its output pipe), and dies with
	// the test binary even if that exits without running cleanups (a
	// -timeout panic, ^C).
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	vm.cmd.WaitDelay = 2 * time.Second
	if e.SerialFIFO == "" {
		vm.cmd.Stdout = consoleWriter{vm}
		vm.cmd.Stderr = consoleWriter{vm}
		stdin, err := vm.cmd.StdinPipe()
		if err != nil {
			t.Fatalf("creating %s's stdin pipe: %v", vm.name, err)
		}
		vm.stdin = stdin
	} else {
		vm.cmd.Stdout = outputWriter{vm}
		vm.cmd.Stderr = outputWriter{vm}
		if err := vm.openSerialFIFO(e.SerialFIFO); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("starting %s %s", bin, strings.Join(e.Args, " "))
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		if vm.serial != nil {
			vm.serial.Close()
		}
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		err := vm.cmd.Wait()
		vm.drainSerial()
		vm.mu.Lock()
		vm.exitErr = err
		vm.mu.Unlock()
		close(vm.exited)
	}()
	t.Cleanup(func() {
		vm.Kill()
		if t.Failed() {
			t.Logf("console log (%s after start):\n%s", time.Since(vm.start).Round(time.Millisecond), printable(vm.Console()))
			if out := vm.Output(); out != "" {
				const max = 8 << 10
				if len(out) > max {
					out = "...\n" + out[len(out)-max:]
				}
				t.Logf("%s output:\n%s", vm.name, printable(out))
			}
		}
	})
	return vm
}

// openSerialFIFO creates the named pipe path and starts copying what
// arrives there to the console. The read end is opened read-write, so that
// the open does not wait for the emulator and the pipe never reports end of
// file when the emulator closes and reopens it.
func (vm *VM) openSerialFIFO(path string) error {
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("creating the serial pipe %s: %v", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("opening the serial pipe %s: %v", path, err)
	}
	vm.serial = f
	vm.serialDone = make(chan struct{})
	go func() {
		defer close(vm.serialDone)
		io.Copy(consoleWriter{vm}, f)
	}()
	return nil
}

// drainSerial stops the serial pipe reader once the emulator has exited,
// after reading what the emulator wrote last.
func (vm *VM) drainSerial() {
	if vm.serial == nil {
		return
	}
	// Reads return what is buffered, then time out.
	vm.serial.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	select {
	case <-vm.serialDone:
	case <-time.After(2 * time.Second):
	}
	vm.serial.Close()
}

// Output returns the emulator's own output when the console is read from a
// serial pipe (Emulator.SerialFIFO); otherwise that output is part of the
// console and Output returns "".
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.output)
}

// Elapsed returns the time since the emulator was started.
func (vm *VM) Elapsed() time.Duration {
	return time.Since(vm.start)
}

// Console returns everything QEMU has printed so far.
func (vm *VM) Console() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.console)
}

// Mark returns the position up to which Expect has consumed the console.
// Pass it to Rewind to search the same output again, e.g. for lines whose
// relative order does not matter.
func (vm *VM) Mark() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return vm.pos
}

// Rewind makes the next Expect search from mark, a value returned by Mark.
func (vm *VM) Rewind(mark int) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.pos = mark
}

// Expect waits up to timeout for the console output after the previous
// match to match the regular expression pattern (Go syntax; use (?m) for ^
// at line starts), consumes the output up to the end of the match and
// returns the match followed by its submatches. It fails the test if the
// pattern does not match in time or QEMU exits first.
//
// The output is matched as it arrives, so a pattern ending in \S+ or $ can
// match a line that is still being printed; end such patterns with \n.
func (vm *VM) Expect(pattern string, timeout time.Duration) []string {
	vm.t.Helper()
	m, err := vm.expect(pattern, timeout)
	if err != nil {
		vm.t.Fatal(err)
	}
	return m
}

func (vm *VM) expect(pattern string, timeout time.Duration) ([]string, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("Expect: bad pattern %q: %v", pattern, err)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		vm.mu.Lock()
		m, ok := vm.matchLocked(re)
		changed := vm.changed
		vm.mu.Unlock()
		if ok {
			return m, nil
		}
		select {
		case <-changed:
		case <-vm.exited:
			// The last output may have arrived together with the
			// exit: look once more before giving up.
			vm.mu.Lock()
			m, ok := vm.matchLocked(re)
			vm.mu.Unlock()
			if ok {
				return m, nil
			}
			return nil, fmt.Errorf("%s exited (%s) before the console matched %q", vm.name, vm.exitDescription(), pattern)
		case <-deadline.C:
			return nil, fmt.Errorf("console did not match %q within %v", pattern, timeout)
		}
	}
}

// matchLocked matches re against the unconsumed console and, on a match,
// consumes up to its end. vm.mu must be held.
func (vm *VM) matchLocked(re *regexp.Regexp) ([]string, bool) {
	rest := vm.console[vm.pos:]
	loc := re.FindSubmatchIndex(rest)
	if loc == nil {
		return nil, false
	}
	m := make([]string, len(loc)/2)
	for i := range m {
		if loc[2*i] >= 0 {
			m[i] = string(rest[loc[2*i]:loc[2*i+1]])
		}
	}
	vm.pos += loc[1]
	return m, true
}

// Send writes s to the serial console's input, as if typed.
func (vm *VM) Send(s string) {
	vm.t.Helper()
	if vm.stdin == nil {
		vm.t.Fatalf("Send(%q): this %s's console is read from a serial pipe and takes no input", s, vm.name)
	}
	if _, err := vm.stdin.Write([]byte(s)); err != nil {
		vm.t.Fatalf("sending %q to the console: %v", s, err)
	}
}

// Wait waits up to timeout for QEMU to exit and returns its exit status
// (with -device isa-debug-exit, a guest writing v to the port gives
// (v<<1)|1). It fails the test if QEMU does not exit in time or is killed by
// a signal.
func (vm *VM) Wait(timeout time.Duration) int {
	vm.t.Helper()
	select {
	case <-vm.exited:
	case <-time.After(timeout):
		vm.t.Fatalf("%s did not exit within %v", vm.name, timeout)
	}
	vm.mu.Lock()
	err := vm.exitErr
	vm.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	vm.t.Fatalf("%s did not exit normally: %v", vm.name, err)
	return -1
}

// Kill stops QEMU and its process group if it is still running, and waits
// for it.
func (vm *VM) Kill() {
	select {
	case <-vm.exited:
		return
	default:
	}
	if vm.stdin != nil {
		vm.stdin.Close()
	}
	syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-vm.exited:
	case <-time.After(10 * time.Second):
		vm.t.Errorf("%s (pid %d) did not die after SIGKILL", vm.name, vm.cmd.Process.Pid)
	}
}

func (vm *VM) exitDescription() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.exitErr == nil {
		return "status 0"
	}
	return vm.exitErr.Error()
}

// KernelPath returns the kernel image named by KEEL_KERNEL, failing the test
// with what to do if it is unset or missing.
func KernelPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("KEEL_KERNEL")
	if path == "" {
		t.Fatal("KEEL_KERNEL is not set: run `make test`, which builds build/keel.elf and sets it, or set KEEL_KERNEL=/path/to/keel.elf")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("KEEL_KERNEL=%s: %v; run `make kernel` first", path, err)
	}
	return path
}

// printable escapes control characters other than newline and tab (the
// firmware's terminal resets, for one) so that the log cannot garble the
// terminal it is printed on.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

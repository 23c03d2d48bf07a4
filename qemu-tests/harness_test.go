package qemutests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The harness is tested with /bin/sh standing in for QEMU: a script that
// prints, reads the "console" and exits with a status.

func TestHarnessExpectSendWait(t *testing.T) {
	vm := StartProgram(t, "/bin/sh", "-c", `
		printf 'boot\r\nkeel: ready version=v1 cpu="A B" mem=2047M\n'
		printf 'keel> '
		read line
		echo "got $line"
		sleep 0.2
		echo "late line"
		exit 7`)
	m := vm.Expect(`(?m)^keel: ready version=(\S+) cpu=(.*) mem=(\S+)\n`, 5*time.Second)
	if want := []string{`keel: ready version=v1 cpu="A B" mem=2047M` + "\n", "v1", `"A B"`, "2047M"}; strings.Join(m, "|") != strings.Join(want, "|") {
		t.Errorf("Expect = %q, want %q", m, want)
	}
	vm.Expect(`(?m)^keel> `, 5*time.Second)
	vm.Send("hello\n")
	if m := vm.Expect(`got (\w+)\n`, 5*time.Second); m[1] != "hello" {
		t.Errorf("echoed %q, want hello", m[1])
	}
	vm.Expect(`late line`, 5*time.Second)
	if status := vm.Wait(5 * time.Second); status != 7 {
		t.Errorf("exit status %d, want 7", status)
	}
	if c := vm.Console(); strings.Contains(c, "\r") || !strings.HasPrefix(c, "boot\nkeel: ready") {
		t.Errorf("console = %q, want the output with \\r removed", c)
	}
}

func TestHarnessMarkRewind(t *testing.T) {
	vm := StartProgram(t, "/bin/sh", "-c", `echo one; echo two; echo three; sleep 10`)
	vm.Expect(`three\n`, 5*time.Second)
	if _, err := vm.expect(`one\n`, 100*time.Millisecond); err == nil {
		t.Error("Expect matched output before the previous match")
	}
	vm.Rewind(0)
	vm.Expect(`one\n`, time.Second)
	mark := vm.Mark()
	vm.Expect(`three\n`, time.Second)
	vm.Rewind(mark)
	vm.Expect(`two\n`, time.Second)
}

func TestHarnessExpectFailures(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		pattern string
		timeout time.Duration
		wantErr string
	}{
		{"timeout", `echo nothing useful; sleep 10`, `keel: ready`, 300 * time.Millisecond, "did not match"},
		{"exit before match", `echo bye; exit 3`, `keel: ready`, 5 * time.Second, "QEMU exited (exit status 3)"},
		{"bad pattern", `sleep 10`, `(`, time.Second, "bad pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := StartProgram(t, "/bin/sh", "-c", tt.script)
			start := time.Now()
			_, err := vm.expect(tt.pattern, tt.timeout)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("expect error = %v, want one containing %q", err, tt.wantErr)
			}
			if time.Since(start) > tt.timeout+2*time.Second {
				t.Errorf("expect took %v with a %v timeout", time.Since(start), tt.timeout)
			}
		})
	}
}

func TestHarnessKillsOnCleanup(t *testing.T) {
	var vm *VM
	t.Run("inner", func(t *testing.T) {
		vm = StartProgram(t, "/bin/sh", "-c", `echo started; sleep 60`)
		vm.Expect(`started`, 5*time.Second)
	})
	select {
	case <-vm.exited:
	default:
		t.Fatal("the process was still running after the test that started it ended")
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"keel> \n\tok", "keel> \n\tok"},
		{"\x1bc\x1b[2J", `\x1bc\x1b[2J`},
		{"a\x00b\x7f", `a\x00b\x7f`},
		{"cpu=\"AMD Ryzen™\"", "cpu=\"AMD Ryzen™\""},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := printable(tt.in); got != tt.want {
				t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHarnessSerialFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "com1")
	vm := StartEmulator(t, Emulator{
		Name:    "Bochs",
		Program: "/bin/sh",
		// Like Bochs: log lines on stdout, the serial port written as
		// a file (opened, closed and reopened), the last bytes written
		// just before exiting, exit status 1.
		Args: []string{"-c", `
			echo "00000000000i[      ] emulator log line"
			printf 'boot\r\nkeel: ready cpus=1\n' > "$1"
			sleep 0.2
			printf 'keel> poweroff\nlast line\n' >> "$1"
			exit 1`, "sh", fifo},
		SerialFIFO: fifo,
	})
	vm.Expect(`(?m)^keel: ready cpus=1\n`, 5*time.Second)
	vm.Expect(`last line\n`, 5*time.Second)
	if status := vm.Wait(5 * time.Second); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	if c := vm.Console(); c != "boot\nkeel: ready cpus=1\nkeel> poweroff\nlast line\n" {
		t.Errorf("console = %q", c)
	}
	if out := vm.Output(); !strings.Contains(out, "emulator log line") || strings.Contains(vm.Console(), "emulator log") {
		t.Errorf("emulator output %q was not kept apart from the console", out)
	}
	if vm.Elapsed() <= 0 {
		t.Error("Elapsed is not positive")
	}
}

func TestHarnessSerialFIFOExitMessage(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "com1")
	vm := StartEmulator(t, Emulator{Name: "Bochs", Program: "/bin/sh", Args: []string{"-c", `printf 'x\n' > "$1"; exit 3`, "sh", fifo}, SerialFIFO: fifo})
	_, err := vm.expect(`keel: ready`, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "Bochs exited (exit status 3)") {
		t.Fatalf("expect error = %v, want one naming Bochs and its status", err)
	}
	if vm.Console() != "x\n" {
		t.Errorf("console = %q, want the output written just before the exit", vm.Console())
	}
}

package qemutests

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Timeouts are generous: QEMU runs in software emulation (TCG) here and on
// CI, and a loaded machine can be several times slower than an idle one.
const (
	bootTimeout = 90 * time.Second
	stepTimeout = 30 * time.Second
	exitTimeout = 30 * time.Second
)

// keelArgs returns QEMU's arguments for booting kernel as a PVH ELF on the
// reference machine with mem of RAM.
func keelArgs(kernel, mem string) []string {
	return []string{
		"-machine", "q35", "-cpu", "max", "-m", mem, "-smp", "2",
		"-nographic", "-no-reboot", "-nic", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-kernel", kernel,
	}
}

// TestBoot boots the kernel and checks the boot banner, the shell prompt and
// that time advances across a sleep.
//
// The kernel prints (cpu= is quoted, it has spaces):
//
//	keel: runtime ok goroutines=N gc=M
//	keel: ready version=V cpus=N cpu="VENDOR MODEL" virt=svm mem=2047M
//	keel: clock t0=<ns>
//	keel: clock t1=<ns> slept=<ns>     (after sleeping 500ms)
//	keel>
func TestBoot(t *testing.T) {
	vm := Start(t, keelArgs(KernelPath(t), "2G")...)

	// The runtime self-check ran goroutines and at least one GC cycle.
	m := vm.Expect(`(?m)keel: runtime ok goroutines=(\d+) gc=(\d+)\n`, bootTimeout)
	if g, gc := parseNanos(t, m[1]), parseNanos(t, m[2]); g < 2 || gc < 1 {
		t.Errorf("runtime self-check: goroutines=%d gc=%d, want at least 2 goroutines and 1 GC cycle", g, gc)
	}

	// Patterns end in \n so that a line still being printed cannot match
	// with a truncated field. SeaBIOS ends its output with "Booting from
	// ROM.." and no newline, so the kernel's first line starts after it.
	m = vm.Expect(`(?m)^(?:Booting from ROM\.\.)?keel: ready .*version=(\S+) .*cpu=(.*) virt=svm .*mem=(\S+)[^\n]*\n`, bootTimeout)
	version, cpu, mem := m[1], m[2], m[3]
	t.Logf("booted: version=%s cpu=%s mem=%s", version, cpu, mem)
	if cpu == "" || cpu == `""` {
		t.Errorf("ready line has an empty cpu= field: %q", m[0])
	}
	vm.Expect(`(?m)^keel> `, stepTimeout)

	// The clock lines may come before or after the prompt.
	vm.Rewind(0)
	t0 := parseNanos(t, vm.Expect(`(?m)^keel: clock t0=(\d+)\n`, stepTimeout)[1])
	m = vm.Expect(`(?m)^keel: clock t1=(\d+) slept=(\d+)\n`, stepTimeout)
	t1, slept := parseNanos(t, m[1]), parseNanos(t, m[2])

	// A functional check that time advances under TCG, not a speed
	// assertion: the upper bound only catches a clock running wild.
	const sleep = 500 * time.Millisecond
	elapsed := time.Duration(t1 - t0)
	if elapsed < sleep || elapsed >= 5*time.Second {
		t.Errorf("clock advanced %v across a %v sleep (t0=%d t1=%d), want at least %v and under 5s", elapsed, sleep, t0, t1, sleep)
	}
	if d := time.Duration(slept); d < sleep || d >= 5*time.Second {
		t.Errorf("kernel reports slept=%v, want at least %v and under 5s", d, sleep)
	}

	// The console answers: a known command, an unknown one, and
	// poweroff ends QEMU through isa-debug-exit (status 0 -> exit 1).
	vm.Send("version\r")
	vm.Expect(`keel version `+regexp.QuoteMeta(version)+`\r?\n`, stepTimeout)
	vm.Send("frobnicate\r")
	vm.Expect(`keel: unknown command "frobnicate"`, stepTimeout)
	vm.Send("poweroff\r")
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("QEMU exit status after poweroff = %d, want 1 (isa-debug-exit value 0)", status)
	}
}

// TestBootTooLittleMemory boots with less RAM than the kernel's heap layout
// needs: it must say so and stop QEMU instead of crashing or hanging.
func TestBootTooLittleMemory(t *testing.T) {
	vm := Start(t, keelArgs(KernelPath(t), "256M")...)
	vm.Expect(`keel: not enough memory: the kernel needs RAM up to 0x[0-9a-f]+ \(\d+ MiB\)`, bootTimeout)
	if status := vm.Wait(exitTimeout); status != 3 {
		t.Errorf("QEMU exit status = %d, want 3 (isa-debug-exit value 1)", status)
	}
}

func parseNanos(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad nanosecond value %q: %v", s, err)
	}
	return n
}

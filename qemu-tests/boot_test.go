package qemutests

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/keel-hv/keel/kernel/selftest"
)

// Timeouts are generous: QEMU runs in software emulation (TCG) here and on
// CI, and a loaded machine can be several times slower than an idle one.
const (
	bootTimeout = 90 * time.Second
	stepTimeout = 30 * time.Second
	exitTimeout = 30 * time.Second
)

// keelArgs returns QEMU's arguments for booting kernel as a PVH ELF
// (qemu -kernel) on the reference machine with mem of RAM and cpus CPUs,
// plus extra arguments.
func keelArgs(kernel, mem string, cpus int, extra ...string) []string {
	args := []string{
		"-machine", "q35", "-cpu", "max", "-m", mem, "-smp", strconv.Itoa(cpus),
		"-nographic", "-no-reboot", "-nic", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
		"-kernel", kernel,
	}
	return append(args, extra...)
}

// TestBoot boots the kernel through PVH with 2 and 4 CPUs and checks the
// runtime self-check, that every CPU came up and ran goroutines, the
// banner, that time advances across a sleep, the shell (cpus, mem, an
// unknown command, a usage error) and poweroff ending QEMU.
//
// The kernel prints (cpu= is quoted, it has spaces):
//
//	keel: runtime ok goroutines=N gc=M
//	keel: smp ok cpus=N ran-on=N
//	keel: ready version=V cpus=N cpu="VENDOR MODEL" virt=svm mem=2047M
//	keel: clock t0=<ns>
//	keel: clock t1=<ns> slept=<ns>     (after sleeping 500ms)
//	keel>
func TestBoot(t *testing.T) {
	for _, cpus := range []int{2, 4} {
		t.Run(fmt.Sprintf("smp%d", cpus), func(t *testing.T) {
			t.Parallel()
			vm := Start(t, keelArgs(KernelPath(t), "2G", cpus)...)

			// The runtime self-check ran goroutines and at least one GC cycle.
			m := vm.Expect(`(?m)keel: runtime ok goroutines=(\d+) gc=(\d+)\n`, bootTimeout)
			if g, gc := parseNanos(t, m[1]), parseNanos(t, m[2]); g < 2 || gc < 1 {
				t.Errorf("runtime self-check: goroutines=%d gc=%d, want at least 2 goroutines and 1 GC cycle", g, gc)
			}
			m = vm.Expect(`(?m)^keel: smp ok cpus=(\d+) ran-on=(\d+)\n`, bootTimeout)
			if m[1] != strconv.Itoa(cpus) || m[2] != m[1] {
				t.Errorf("smp check: cpus=%s ran-on=%s, want both %d", m[1], m[2], cpus)
			}

			// Patterns end in \n so that a line still being printed cannot
			// match with a truncated field.
			m = vm.Expect(`(?m)^keel: ready .*version=(\S+) cpus=(\d+) .*cpu=(.*) virt=svm .*mem=(\S+)[^\n]*\n`, bootTimeout)
			version, n, cpu, mem := m[1], m[2], m[3], m[4]
			t.Logf("booted: version=%s cpus=%s cpu=%s mem=%s", version, n, cpu, mem)
			if n != strconv.Itoa(cpus) {
				t.Errorf("ready line says cpus=%s, the machine has %d", n, cpus)
			}
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

			// The shell: one line per CPU, the memory map, errors.
			vm.Send("cpus\r")
			for i := range cpus {
				vm.Expect(fmt.Sprintf(`(?m)^ +%d +%d +online +.*svm`, i, i), stepTimeout)
			}
			vm.Expect(fmt.Sprintf(`%d CPUs, %d online`, cpus, cpus), stepTimeout)
			vm.Send("mem\r")
			vm.Expect(`(?m)^usable: 2\.0G`, stepTimeout)
			vm.Send("version\r")
			vm.Expect(`keel version `+regexp.QuoteMeta(version)+` `, stepTimeout)
			vm.Send("frobnicate\r")
			vm.Expect(`keel: unknown command "frobnicate" \(try help\)`, stepTimeout)
			vm.Send("mem extra\r")
			vm.Expect(`(?m)^usage: mem`, stepTimeout)

			// poweroff is ACPI S5: QEMU exits with status 0.
			vm.Send("poweroff\r")
			if status := vm.Wait(exitTimeout); status != 0 {
				t.Errorf("QEMU exit status after poweroff = %d, want 0 (ACPI S5)", status)
			}
		})
	}
}

// TestHighMemory boots with 8 GiB and 4 CPUs: Keel maps the RAM above
// 4 GiB, writes and reads a word at its top, and `mem` shows it.
func TestHighMemory(t *testing.T) {
	t.Parallel()
	vm := Start(t, keelArgs(KernelPath(t), "8G", 4, "-append", `keel.run="mem; poweroff"`)...)
	m := vm.Expect(`(?m)^keel: ready .* cpus=(\d+) .* mem=(\d+)M`, bootTimeout)
	if m[1] != "4" {
		t.Errorf("cpus=%s, want 4", m[1])
	}
	if mb, _ := strconv.Atoi(m[2]); mb < 8000 || mb > 8192 {
		t.Errorf("mem=%sM, want about 8 GiB", m[2])
	}
	vm.Expect(`(?m)^  0x0000000100000000  0x000000027fffffff +6G +usable`, stepTimeout)
	vm.Expect(`(?m)^mapped: 0x0-0x280000000 identity`, stepTimeout)
	vm.Expect(`(?m)^high memory check: wrote and read back 0x27ffffff8: ok`, stepTimeout)
	if status := vm.Wait(exitTimeout); status != 0 {
		t.Errorf("QEMU exit status after poweroff = %d, want 0", status)
	}
}

// TestBootTooLittleMemory boots with less RAM than the kernel's heap layout
// needs: it must say so and stop QEMU instead of crashing or hanging.
func TestBootTooLittleMemory(t *testing.T) {
	t.Parallel()
	vm := Start(t, keelArgs(KernelPath(t), "256M", 1)...)
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

// TestBootWithoutACPI boots a machine without ACPI tables: Keel says so,
// runs on one CPU, and poweroff still ends QEMU (isa-debug-exit fallback).
func TestBootWithoutACPI(t *testing.T) {
	t.Parallel()
	args := keelArgs(KernelPath(t), "2G", 2, "-append", `keel.run="cpus; poweroff"`)
	args[1] = "pc,acpi=off"
	vm := Start(t, args...)
	vm.Expect(`ACPI tables unusable \(.*\): running on one CPU`, bootTimeout)
	vm.Expect(`(?m)^keel: ready .* cpus=1 `, bootTimeout)
	vm.Expect(`1 CPU, 1 online`, stepTimeout)
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("QEMU exit status after poweroff = %d, want 1 (isa-debug-exit value 0)", status)
	}
}

// TestBootAPTimeout withholds the Start-up IPI from one processor
// (keel.test.ap-fail): Keel reports it, skips it and runs on the others.
func TestBootAPTimeout(t *testing.T) {
	t.Parallel()
	vm := Start(t, keelArgs(KernelPath(t), "2G", 4, "-append", `keel.test.ap-fail=2 keel.run="cpus; poweroff"`)...)
	vm.Expect(`cpu apic=2 did not start within 1s; skipped`, bootTimeout)
	vm.Expect(`(?m)^keel: smp ok cpus=3 ran-on=3\n`, bootTimeout)
	vm.Expect(`(?m)^keel: ready .* cpus=3 `, bootTimeout)
	vm.Expect(`(?m)^ +2 +2 +offline`, stepTimeout)
	vm.Expect(`4 CPUs, 3 online`, stepTimeout)
	if status := vm.Wait(exitTimeout); status != 0 {
		t.Errorf("QEMU exit status after poweroff = %d, want 0", status)
	}
}

// selftestCases is the number of cases `selftest` runs; every backend
// must pass them all.
var selftestCases = len(selftest.Cases())

// checkSelftest checks the suite's summary line and the lines the guests
// printed, and that `vm list` names the backend.
func checkSelftest(t *testing.T, vm *VM, backend string, timeout time.Duration) {
	t.Helper()
	m := vm.Expect(`(?m)^selftest: (\d+) passed, (\d+) failed`, timeout)
	if m[2] != "0" || m[1] != strconv.Itoa(selftestCases) {
		t.Errorf("selftest: %s passed, %s failed; want %d passed, 0 failed", m[1], m[2], selftestCases)
	}
	vm.Rewind(0)
	vm.Expect(`\[st-real\] hello from real mode`, stepTimeout)
	vm.Expect(`\[st-long\] hello from long mode`, stepTimeout)
	vm.Expect(`(?m)^backend `+backend+`, 0 VMs`, timeout)
}

// TestSelftest runs the guest suite on the SVM backend under QEMU TCG with
// 2 CPUs: every case must pass.
func TestSelftest(t *testing.T) {
	t.Parallel()
	vm := Start(t, keelArgs(KernelPath(t), "2G", 2, "-append", `keel.run="selftest; vm list; poweroff"`)...)
	checkSelftest(t, vm, "svm", 4*bootTimeout)
	if status := vm.Wait(exitTimeout); status != 0 {
		t.Errorf("QEMU exit status after poweroff = %d, want 0", status)
	}
}

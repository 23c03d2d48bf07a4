//go:build linux

// Command init is the reference guest's whole userland: the /init of the
// initramfs that `keel-guest initramfs` builds (see docs/guests.md).
//
// Linux runs it as process 1. It mounts devtmpfs on /dev, proc on /proc and
// sysfs on /sys, and prints on the console (/dev/console, the serial port
// given console=ttyS0):
//
//	keel-guest: userspace up
//	keel-guest: nproc=N
//	keel-guest: memtotal=KIBkB
//	keel-guest: clock realtime=SECONDS.NANOSECONDS monotonic=NANOSECONDS
//
// N is the number of online CPUs as Linux sees them
// (/sys/devices/system/cpu/online, else the CPUs this process may run on).
// With keel.sleep=DURATION on the kernel command line (a Go duration such
// as 10s or 1m30s) it then prints `keel-guest: sleeping DURATION`, sleeps,
// and prints the clock line again, so that a test can compare the time the
// guest saw pass with the host's. Last it prints `keel-guest: power off`
// and powers the machine off, or, with keel.reboot=1, prints
// `keel-guest: reboot` and reboots it.
//
// Anything that fails is reported as `keel-guest: error: ...` and the
// program goes on to power off. If even that fails it exits, which makes
// the kernel panic (and, with panic=-1, reboot).
//
// Linux-only: built with GOOS=linux GOARCH=amd64 CGO_ENABLED=0 by
// `keel-guest initramfs`; it imports nothing outside the standard library.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prefix starts every line the program prints.
const prefix = "keel-guest: "

// Kernel command line parameters the program reads from /proc/cmdline.
// Linux ignores unknown parameters with a dot in their name instead of
// passing them to init, so they reach us only through /proc/cmdline.
const (
	// PARAM_SLEEP is how long to wait before powering off (a Go
	// duration).
	PARAM_SLEEP = "keel.sleep"
	// PARAM_REBOOT set to 1 asks for a reboot instead of a power-off.
	PARAM_REBOOT = "keel.reboot"
)

// console is where the program prints: /dev/console, or standard output if
// that cannot be opened.
var console io.Writer = os.Stdout

// say prints one line on the console.
func say(format string, args ...any) {
	fmt.Fprintf(console, prefix+format+"\n", args...)
}

// fail reports an error on the console.
func fail(format string, args ...any) {
	say("error: "+format, args...)
}

func main() {
	// devtmpfs first: its /dev/console is the console even if the
	// initramfs has no device node (the kernel's built-in one does).
	mountErr := mount("devtmpfs", "/dev", "devtmpfs", 0o755)
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0); err == nil {
		console = f
	}
	say("userspace up")
	if mountErr != nil {
		fail("%v", mountErr)
	}
	for _, m := range []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := mount(m.source, m.target, m.fstype, 0o555); err != nil {
			fail("%v", err)
		}
	}

	say("nproc=%d", onlineCPUs())
	printMemory()
	printClock()

	sleep, reboot := options()
	if sleep > 0 {
		say("sleeping %v", sleep)
		time.Sleep(sleep)
		printClock()
	}
	shutdown(reboot)
}

// mount mounts a file system of type fstype from source on target,
// creating target (with mode perm) if it is missing.
func mount(source, target, fstype string, perm os.FileMode) error {
	if err := os.MkdirAll(target, perm); err != nil {
		return fmt.Errorf("mount %s on %s: %v", fstype, target, err)
	}
	if err := syscall.Mount(source, target, fstype, syscall.MS_NOSUID|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %v", fstype, target, err)
	}
	return nil
}

// onlineCPUs returns the number of CPUs Linux has online, read from
// /sys/devices/system/cpu/online (a list such as 0-1 or 0,2-3). If that
// fails it reports why and returns the number of CPUs this process may run
// on (sched_getaffinity, which the Go runtime reads at start-up).
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err == nil {
		var n int
		n, err = countCPUList(strings.TrimSpace(string(b)))
		if err == nil {
			return n
		}
	}
	fail("online CPUs: %v; counting the CPUs init may run on instead", err)
	return runtime.NumCPU()
}

// countCPUList counts the CPUs in a Linux CPU list: comma-separated
// numbers and ranges N-M, as in Documentation/ABI/testing/sysfs-devices-system-cpu.
func countCPUList(list string) (int, error) {
	if list == "" {
		return 0, nil
	}
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("CPU list %q: %q is not a number", list, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				return 0, fmt.Errorf("CPU list %q: %q is not a number", list, hi)
			}
		}
		if first < 0 || last < first {
			return 0, fmt.Errorf("CPU list %q: bad range %q", list, part)
		}
		n += last - first + 1
	}
	return n, nil
}

// printMemory prints MemTotal from /proc/meminfo, in KiB.
func printMemory() {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		fail("reading /proc/meminfo: %v", err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			say("memtotal=%skB", strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return
		}
	}
	fail("no MemTotal in /proc/meminfo")
}

// printClock prints CLOCK_REALTIME and CLOCK_MONOTONIC.
func printClock() {
	rt, err := clockGettime(CLOCK_REALTIME)
	if err != nil {
		fail("clock_gettime(CLOCK_REALTIME): %v", err)
		return
	}
	mono, err := clockGettime(CLOCK_MONOTONIC)
	if err != nil {
		fail("clock_gettime(CLOCK_MONOTONIC): %v", err)
		return
	}
	say("clock realtime=%d.%09d monotonic=%d", rt.Sec, rt.Nsec, mono.Nano())
}

// options reads keel.sleep and keel.reboot from /proc/cmdline.
func options() (sleep time.Duration, reboot bool) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fail("reading the kernel command line: %v", err)
		return 0, false
	}
	return parseCmdline(string(b))
}

// parseCmdline returns what the kernel command line asks of the program.
// Bad values are reported and ignored.
func parseCmdline(cmdline string) (sleep time.Duration, reboot bool) {
	for _, field := range strings.Fields(cmdline) {
		key, value, _ := strings.Cut(field, "=")
		switch key {
		case PARAM_SLEEP:
			d, err := time.ParseDuration(value)
			if err != nil || d < 0 {
				fail("%s=%q: not a duration (write e.g. %s=10s)", PARAM_SLEEP, value, PARAM_SLEEP)
				continue
			}
			sleep = d
		case PARAM_REBOOT:
			switch value {
			case "1":
				reboot = true
			case "0":
				reboot = false
			default:
				fail("%s=%q: want 1 or 0", PARAM_REBOOT, value)
			}
		}
	}
	return sleep, reboot
}

// shutdown powers the machine off, or reboots it. It returns only by
// exiting the program, if the reboot system call fails.
func shutdown(reboot bool) {
	cmd, what := syscall.LINUX_REBOOT_CMD_POWER_OFF, "power off"
	if reboot {
		cmd, what = syscall.LINUX_REBOOT_CMD_RESTART, "reboot"
	}
	say("%s", what)
	syscall.Sync()
	err := syscall.Reboot(cmd)
	fail("%s: reboot(2): %v; exiting, which panics the kernel", what, err)
	os.Exit(1)
}

package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/guest/initramfs"
	"github.com/keel-hv/keel/guest/linux"
)

// qemuBinary is the emulator the reference test runs.
const qemuBinary = "qemu-system-x86_64"

// bootTimeout bounds each wait for the guest. Generous: a boot takes some
// 10 to 20 s under TCG on an idle 2-core host, and the hosts this runs on
// are often busy.
const bootTimeout = 5 * time.Minute

// bundleConf is the default bundle's configuration, whose demo VM the test
// boots.
const bundleConf = "bundle/keel.conf"

// Lines the guest prints (see guest/init).
var (
	markerLine = regexp.MustCompile(`keel-guest: userspace up\n`)
	nprocLine  = regexp.MustCompile(`keel-guest: nproc=(\d+)\n`)
	clockLine  = regexp.MustCompile(`keel-guest: clock realtime=(\d+)\.(\d{9}) monotonic=(\d+)\n`)
	errorLine  = regexp.MustCompile(`keel-guest: error: [^\n]*`)
)

// TestReferenceGuestQEMU boots the reference guest directly under QEMU
// (TCG, no KVM, no Keel) as the bundle's demo VM declares it: Debian's
// kernel, the initramfs with the Go init, the VM's command line, memory and
// vCPUs. It checks the userspace marker, that Linux sees every vCPU online,
// the clock lines, and that QEMU exits after the guest powers off; then,
// with keel.sleep=3s keel.reboot=1, that the guest's clocks advance by the
// sleep and that it reboots. It logs the wall time to the marker.
//
// Skipped (with the reason) without qemu-system-x86_64, when the kernel
// cannot be fetched, and with -short; KEEL_REQUIRE_GUEST=1 turns the first
// two into failures.
func TestReferenceGuestQEMU(t *testing.T) {
	require := os.Getenv("KEEL_REQUIRE_GUEST") == "1"
	skip := func(format string, args ...any) {
		t.Helper()
		if require {
			t.Fatalf("KEEL_REQUIRE_GUEST=1, but "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if testing.Short() && !require {
		t.Skip("-short: boots Linux under QEMU TCG twice (a minute or more)")
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		skip("%s is not installed (Debian package qemu-system-x86; `make deps` installs it)", qemuBinary)
	}
	vm := demoVM(t)

	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	var fetchLog bytes.Buffer
	kernel, err := linux.Fetch(ctx, linux.Options{Log: &fetchLog})
	if err != nil {
		skip("the guest kernel cannot be fetched: %v\n%s", err, fetchLog.String())
	}
	t.Logf("kernel %s (%s)", kernel, linux.Pinned())
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := initramfs.Build(ctx, initramfs.Options{Output: initrd}); err != nil {
		t.Fatal(err)
	}

	boot := func(t *testing.T, extra string) *qemu {
		cmdline := strings.TrimSpace(vm.Cmdline + " " + extra)
		t.Logf("kernel command line: %s", cmdline)
		return startQEMU(t, "-machine", "q35", "-cpu", "max",
			"-m", strconv.FormatUint(vm.Memory>>20, 10)+"M", "-smp", strconv.Itoa(vm.VCPUs),
			"-nographic", "-no-reboot", "-nic", "none",
			"-kernel", kernel, "-initrd", initrd, "-append", cmdline)
	}

	t.Run("poweroff", func(t *testing.T) {
		q := boot(t, "")
		_, at := q.expect(t, markerLine)
		t.Logf("userspace marker after %.2f s (wall time from starting QEMU, TCG)", at.Seconds())
		m, _ := q.expect(t, nprocLine)
		if m[1] != strconv.Itoa(vm.VCPUs) {
			t.Errorf("the guest sees %s CPUs online, want %d (vcpus of the demo VM)", m[1], vm.VCPUs)
		}
		c := parseClock(t, q.expectMatch(t, clockLine))
		t.Logf("guest monotonic clock at the marker: %.2f s", c.mono.Seconds())
		q.expect(t, regexp.MustCompile(`keel-guest: power off\n`))
		q.expect(t, regexp.MustCompile(`reboot: Power down`))
		if err := q.wait(t); err != nil {
			t.Errorf("QEMU after the power-off: %v, want exit status 0", err)
		}
		q.noErrors(t)
	})

	t.Run("sleep-reboot", func(t *testing.T) {
		const sleep = 3 * time.Second
		q := boot(t, fmt.Sprintf("keel.sleep=%v keel.reboot=1", sleep))
		q.expect(t, markerLine)
		c1 := parseClock(t, q.expectMatch(t, clockLine))
		_, host1 := q.expect(t, regexp.MustCompile(`keel-guest: sleeping 3s\n`))
		c2 := parseClock(t, q.expectMatch(t, clockLine))
		host2 := q.lastAt
		q.expect(t, regexp.MustCompile(`keel-guest: reboot\n`))
		q.expect(t, regexp.MustCompile(`reboot: Restarting system`))
		if err := q.wait(t); err != nil {
			t.Errorf("QEMU after the reboot (with -no-reboot): %v, want exit status 0", err)
		}
		q.noErrors(t)

		mono, real, host := c2.mono-c1.mono, c2.real.Sub(c1.real), host2-host1
		t.Logf("across keel.sleep=%v: guest monotonic +%v, guest realtime +%v, host +%v (host time between the console lines)", sleep, mono, real, host)
		if mono < sleep {
			t.Errorf("the guest's monotonic clock advanced %v across a %v sleep", mono, sleep)
		}
		if d := real - mono; d < -100*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("the guest's realtime clock advanced %v, its monotonic clock %v: they should agree", real, mono)
		}
		// The host saw the line before the sleep no later, and the one
		// after it no earlier, than the guest printed them.
		if mono > host+time.Second {
			t.Errorf("the guest's monotonic clock advanced %v while the host's advanced only %v", mono, host)
		}
	})
}

// demoVM returns the demo VM of the default bundle's configuration.
func demoVM(t *testing.T) *config.VM {
	src, err := os.ReadFile(bundleConf)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(bundleConf, src, nil)
	if err != nil {
		t.Fatalf("%s:\n%v", bundleConf, err)
	}
	vm := cfg.VM("demo")
	if vm == nil {
		t.Fatalf("%s declares no VM demo", bundleConf)
	}
	return vm
}

// clock is one `keel-guest: clock` line.
type clock struct {
	real time.Time
	mono time.Duration
}

func parseClock(t *testing.T, m []string) clock {
	t.Helper()
	sec, err1 := strconv.ParseInt(m[1], 10, 64)
	nsec, err2 := strconv.ParseInt(m[2], 10, 64)
	mono, err3 := strconv.ParseInt(m[3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("clock line %q: %v", m[0], err)
	}
	return clock{real: time.Unix(sec, nsec), mono: time.Duration(mono)}
}

// qemu is a running QEMU whose console (standard output, -nographic) the
// test reads.
type qemu struct {
	cmd   *exec.Cmd
	start time.Time

	mu      sync.Mutex
	console []byte        // everything QEMU printed, '\r' removed
	pos     int           // expect searches console[pos:]
	changed chan struct{} // closed and replaced on new output or exit
	exited  chan struct{} // closed when QEMU has exited
	exitErr error         // cmd.Wait's result once exited is closed

	// lastAt is when the text the last expect matched had arrived.
	lastAt time.Duration
	// arrivals records, for each read, the console length after it and
	// when it arrived, so that a match can be dated.
	arrivals []arrival
}

type arrival struct {
	end int
	at  time.Duration
}

// startQEMU starts QEMU with args. It is killed when the test ends, and the
// console log is printed if the test failed.
func startQEMU(t *testing.T, args ...string) *qemu {
	t.Helper()
	q := &qemu{changed: make(chan struct{}), exited: make(chan struct{})}
	q.cmd = exec.Command(qemuBinary, args...)
	q.cmd.Stdout = consoleWriter{q}
	q.cmd.Stderr = consoleWriter{q}
	q.start = time.Now()
	if err := q.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", qemuBinary, err)
	}
	go func() {
		err := q.cmd.Wait()
		q.mu.Lock()
		q.exitErr = err
		close(q.exited)
		close(q.changed)
		q.changed = make(chan struct{})
		q.mu.Unlock()
	}()
	t.Cleanup(func() {
		q.cmd.Process.Kill()
		<-q.exited
		if t.Failed() {
			q.mu.Lock()
			t.Logf("console of %s %s:\n%s", qemuBinary, strings.Join(args, " "), q.console)
			q.mu.Unlock()
		}
	})
	return q
}

// consoleWriter appends QEMU's output to its console.
type consoleWriter struct{ q *qemu }

func (w consoleWriter) Write(p []byte) (int, error) {
	q := w.q
	at := time.Since(q.start)
	q.mu.Lock()
	q.console = append(q.console, bytes.ReplaceAll(p, []byte("\r"), nil)...)
	q.arrivals = append(q.arrivals, arrival{end: len(q.console), at: at})
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
	return len(p), nil
}

// expectMatch waits up to bootTimeout for re to match the console after
// the previous match and returns the submatches. It fails the test if QEMU
// exits or the time runs out first.
func (q *qemu) expectMatch(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	m, _ := q.expect(t, re)
	return m
}

// expect is expectMatch that also returns when the matched text had
// arrived, counted from QEMU's start.
func (q *qemu) expect(t *testing.T, re *regexp.Regexp) ([]string, time.Duration) {
	t.Helper()
	deadline := time.After(bootTimeout)
	for {
		q.mu.Lock()
		loc := re.FindSubmatchIndex(q.console[q.pos:])
		if loc != nil {
			var m []string
			for i := 0; i < len(loc); i += 2 {
				if loc[i] >= 0 {
					m = append(m, string(q.console[q.pos+loc[i]:q.pos+loc[i+1]]))
				} else {
					m = append(m, "")
				}
			}
			end := q.pos + loc[1]
			q.pos = end
			for _, a := range q.arrivals {
				if a.end >= end {
					q.lastAt = a.at
					break
				}
			}
			at := q.lastAt
			q.mu.Unlock()
			return m, at
		}
		changed := q.changed
		select {
		case <-q.exited:
			err := q.exitErr
			q.mu.Unlock()
			t.Fatalf("QEMU exited (%v) after %.1f s before the console showed %q", err, time.Since(q.start).Seconds(), re)
		default:
			q.mu.Unlock()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %q on the console within %v", re, bootTimeout)
		}
	}
}

// wait waits up to bootTimeout for QEMU to exit and returns cmd.Wait's
// result.
func (q *qemu) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-q.exited:
		return q.exitErr
	case <-time.After(bootTimeout):
		t.Fatalf("QEMU still running %v after the guest's last line", bootTimeout)
		return nil
	}
}

// noErrors fails the test if the guest reported an error.
func (q *qemu) noErrors(t *testing.T) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range errorLine.FindAll(q.console, -1) {
		t.Errorf("the guest reported %s", m)
	}
}

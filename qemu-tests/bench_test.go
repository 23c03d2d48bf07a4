package qemutests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchRuns is how many times TestBootTimes boots each path.
const benchRuns = 5

// bootSample is one measured boot.
type bootSample struct {
	// ready is the host time from starting the emulator to the end of
	// Keel's ready line.
	ready time.Duration
	// firstKeel is the host time to Keel's first console line.
	firstKeel time.Duration
	// tscEntry, tscReady and tscHz come from the kernel's line
	// `keel: boot tsc-entry=E tsc-ready=R tsc-hz=H`, zero if absent.
	tscEntry, tscReady, tscHz uint64
}

// share returns the share of the boot spent before Keel's first
// instruction and how it was measured.
func (s bootSample) share() (float64, string) {
	if s.tscReady > 0 {
		return float64(s.tscEntry) / float64(s.tscReady), "tsc"
	}
	return s.firstKeel.Seconds() / s.ready.Seconds(), "wall"
}

// tscLine is the kernel's boot timing line.
var tscLine = regexp.MustCompile(`keel: boot tsc-entry=(\d+) tsc-ready=(\d+) tsc-hz=(\d+)`)

// TestBootTimes measures, for every boot path, the time from starting the
// emulator to Keel's ready line (median of 5 runs) and the share of it
// spent before Keel's first instruction (firmware, network boot, GRUB or
// iPXE). It is a measurement, not a test: it runs only with
// KEEL_BENCH_BOOT=1 (make bench-boot) and fails only if a path does not
// boot.
//
// The share comes from the kernel's `keel: boot tsc-entry=E tsc-ready=R
// tsc-hz=H` line when it prints one: the TSC starts at 0 at machine reset
// under QEMU TCG and Bochs, so E/R is the share of virtual time before the
// first instruction. Without that line it is the host time to Keel's first
// console line divided by the host time to the ready line (which counts
// Keel's own start-up before its first print as loader time).
func TestBootTimes(t *testing.T) {
	if os.Getenv("KEEL_BENCH_BOOT") == "" {
		t.Skip("a measurement of several minutes: run `make bench-boot` (KEEL_BENCH_BOOT=1)")
	}
	kernel := KernelPath(t)
	iso, pxe := buildMedia(t, kernel, t.TempDir(), "")
	load0 := loadAverage()

	type path struct {
		name  string
		start func(t *testing.T) *VM
		// tscHz, if set, is the TSC's real frequency, used instead of
		// the kernel's tsc-hz for the virtual time of the first
		// instruction (Bochs: its TSC counts instructions).
		tscHz uint64
	}
	paths := []path{{name: "pvh (qemu -kernel)", start: func(t *testing.T) *VM {
		return Start(t, append(qemuMachine(false), "-nic", "none", "-kernel", kernel)...)
	}}}
	for _, p := range bootPaths {
		paths = append(paths, path{name: p.name, start: func(t *testing.T) *VM { return Start(t, p.args(iso, pxe)...) }})
	}
	paths = append(paths, path{
		name:  "bochs iso-bios",
		start: func(t *testing.T) *VM { return startBochs(t, iso, bochsCPUs) },
		tscHz: bochsIPS,
	})

	var report []string
	for _, p := range paths {
		var samples []bootSample
		for i := range benchRuns {
			t.Run(fmt.Sprintf("%s/%d", strings.Fields(p.name)[0], i), func(t *testing.T) {
				vm := p.start(t)
				timeout := mediaBootTimeout
				if strings.HasPrefix(p.name, "bochs") {
					timeout = bochsTimeout
				}
				var s bootSample
				vm.Expect(`keel: `, timeout)
				s.firstKeel = vm.Elapsed()
				vm.Expect(`keel: ready [^\n]*\n`, timeout)
				s.ready = vm.Elapsed()
				// The timing line may come before or after ready.
				vm.Rewind(0)
				if m, err := vm.expect(tscLine.String(), 2*time.Second); err == nil {
					s.tscEntry, _ = strconv.ParseUint(m[1], 10, 64)
					s.tscReady, _ = strconv.ParseUint(m[2], 10, 64)
					s.tscHz, _ = strconv.ParseUint(m[3], 10, 64)
				}
				if p.tscHz != 0 {
					s.tscHz = p.tscHz
				}
				vm.Kill()
				samples = append(samples, s)
			})
		}
		if len(samples) == 0 {
			continue
		}
		report = append(report, summarize(p.name, samples))
	}
	t.Logf("boot times, %d runs per path, medians (load average %s at start, %s at end; %s):\n%-20s %8s %8s %8s  %s\n%s",
		benchRuns, load0, loadAverage(), filepath.Base(kernel),
		"path", "ready", "min", "max", "before Keel (share, method)", strings.Join(report, "\n"))
}

// summarize formats one path's medians.
func summarize(name string, samples []bootSample) string {
	var ready, shares []float64
	method := ""
	var entry []float64
	for _, s := range samples {
		ready = append(ready, s.ready.Seconds())
		sh, m := s.share()
		shares = append(shares, sh)
		method = m
		if s.tscHz > 0 {
			entry = append(entry, float64(s.tscEntry)/float64(s.tscHz))
		}
	}
	slices.Sort(ready)
	line := fmt.Sprintf("%-20s %7.2fs %7.2fs %7.2fs  %4.0f%% (%s)", name, median(ready), ready[0], ready[len(ready)-1], 100*median(shares), method)
	if len(entry) > 0 {
		line += fmt.Sprintf(", first instruction at %.2fs virtual", median(entry))
	}
	return line
}

// median returns the median of v (which it sorts).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// loadAverage returns the host's 1-minute load average, which says how far
// to trust wall-clock figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

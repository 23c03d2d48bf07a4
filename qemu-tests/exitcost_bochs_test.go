package qemutests

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-hv/keel/boot/media"
	"github.com/keel-hv/keel/kernel/selftest/guests"
)

// The bench disk for Bochs: a flat image with a geometry Bochs accepts
// (2 cylinders, 16 heads, 63 sectors per track).
const (
	BOCHS_DISK_CYLINDERS = 2
	BOCHS_DISK_HEADS     = 16
	BOCHS_DISK_SPT       = 63
)

// bochsBenchDrive writes a disk image that boots the bench guest directly
// on Bochs' BIOS (bootsect.S loads it at 0x1000, as for QEMU) and returns
// the bochsrc lines that boot it.
func bochsBenchDrive(t testing.TB) string {
	t.Helper()
	boot, bench := guests.Images["bootsect"], guests.Images["bench"]
	const sectors = 32 // SECTORS in bootsect.S
	if len(boot) != 512 || len(bench) > sectors*512 {
		t.Fatalf("boot sector is %d bytes (want 512), bench guest %d (at most %d)", len(boot), len(bench), sectors*512)
	}
	img := make([]byte, BOCHS_DISK_CYLINDERS*BOCHS_DISK_HEADS*BOCHS_DISK_SPT*512)
	copy(img, boot)
	copy(img[512:], bench)
	path := filepath.Join(t.TempDir(), "bench-disk.img")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("ata0-master: type=disk, path=%s, mode=flat, cylinders=%d, heads=%d, spt=%d\nboot: disk",
		path, BOCHS_DISK_CYLINDERS, BOCHS_DISK_HEADS, BOCHS_DISK_SPT)
}

// runBenchBochsNative boots the bench guest directly on Bochs (one CPU, no
// Keel) and returns its figures. Bochs has no isa-debug-exit: the test
// stops it after the last line.
func runBenchBochsNative(t *testing.T) map[string]float64 {
	vm := startBochsDrive(t, bochsBenchDrive(t), 1)
	vm.Expect(`bench: hypercall n=\d+ tsc=\d+\r?\n`, bochsTimeout)
	return benchResults(t, vm.Console())
}

// TestBenchGuestBochsNative checks the reference half of the Bochs exit
// table: the bench guest boots on Bochs' BIOS and measures every loop.
// Bochs' TSC advances one unit per emulated instruction here (ips and
// clock: sync=none), and device emulation runs outside the count, so each
// loop's extra cost over the empty loop is the instructions its body adds:
// CPUID 2, OUT 1, MOV 1, and the #UD round trip of the hypercall a handful.
func TestBenchGuestBochsNative(t *testing.T) {
	t.Parallel()
	res := runBenchBochsNative(t)
	want := map[string][2]float64{"cpuid": {2, 2}, "port": {1, 1}, "mmio": {1, 1}, "hypercall": {3, 20}}
	for _, name := range benchLoopNames {
		if r := math.Round(res[name]*10) / 10; r < want[name][0] || r > want[name][1] {
			t.Errorf("%s costs %.1f TSC units per iteration natively under Bochs, want %v to %v", name, r, want[name][0], want[name][1])
		}
	}
}

// TestExitCostsBochs is `make bench`'s exit table for the VMX backend: the
// bench guest under Keel on Bochs (Skylake-X, one CPU, so that the TSC
// counts one CPU's instructions) beside the same guest directly on Bochs
// in the same run, and Keel's heap allocations per exit. Bochs counts
// VMLAUNCH, VMREAD and a VM exit as one instruction each, so the figures
// are the instruction counts of Keel's exit paths, comparable with the
// SVM table under QEMU -icount; they say nothing about the speed of
// hardware, where VMX transitions cost hundreds of cycles. A measurement,
// not a test: it runs only with KEEL_BENCH=1 and fails only if something
// does not run.
func TestExitCostsBochs(t *testing.T) {
	if os.Getenv("KEEL_BENCH") != "1" {
		t.Skip("a measurement: run `make bench` (KEEL_BENCH=1)")
	}
	native := runBenchBochsNative(t)

	iso := filepath.Join(t.TempDir(), "keel-bench.iso")
	if err := media.BuildISO(media.Options{Kernel: KernelPath(t), Cmdline: `keel.run="bench; poweroff"`}, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	vm := startBochs(t, iso, 1)
	vm.Expect(`keel: powering off`, bochsTimeout)
	console := vm.Console()
	if strings.Contains(console, "keel: bench:") {
		t.Fatalf("the bench failed:\n%s", console)
	}
	keel := benchResults(t, console)
	allocs := map[string][]string{}
	for _, m := range allocLine.FindAllStringSubmatch(console, -1) {
		allocs[m[1]] = m[2:]
	}

	var b strings.Builder
	fmt.Fprintf(&b, "exit round trips on the VMX backend, guest TSC units per operation (Bochs %s, corei7_skylake_x, 1 CPU: 1 unit = 1 emulated instruction)\n", bochsVersion())
	fmt.Fprintf(&b, "%-10s %10s %12s %9s %14s\n", "operation", "keel", "bochs direct", "ratio", "allocs/exit")
	for _, name := range benchLoopNames {
		a := "?"
		if v, ok := allocs[name]; ok {
			a = fmt.Sprintf("%s (%s/%s)", v[2], v[1], v[0])
		}
		fmt.Fprintf(&b, "%-10s %10.0f %12.1f %8.0fx %14s\n", name, keel[name], native[name], keel[name]/native[name], a)
	}
	b.WriteString("bochs direct: the same guest code on Bochs' BIOS; the hypercall raises #UD there, which the guest's handler skips.\n")
	b.WriteString("Bochs timings say nothing about hardware speed: a VM entry or exit counts as one instruction here and costs hundreds\n")
	b.WriteString("of cycles on a processor. The comparable figure is the instruction count of Keel's exit path (docs/exits.md).\n")
	t.Log("\n" + b.String())
}

// bochsVersion returns the version Bochs prints in its banner.
func bochsVersion() string {
	out, _ := execOutput("bochs", "--help")
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "Bochs x86 Emulator "); i >= 0 {
			return strings.TrimSpace(l[i+len("Bochs x86 Emulator "):])
		}
	}
	return "2.7"
}

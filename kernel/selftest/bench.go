package selftest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/kernel/selftest/guests"
)

// The bench guest's loops (bits of its mask, see guests/bench.S) and the
// exit each one causes under Keel.
var benchLoops = []struct {
	name string
	bit  uint
	exit arch.ExitReason
}{
	{"cpuid", 1, arch.ExitCPUID},
	{"port", 2, arch.ExitIO},
	{"mmio", 3, arch.ExitPageFault}, // nested page fault, then the emulator,
	{"hypercall", 4, arch.ExitHypercall},
}

const (
	// BENCH_ITERATIONS is how many times each loop of the cost run
	// repeats.
	BENCH_ITERATIONS = 1000
	// BENCH_NOOP_PORT and BENCH_MMIO are the bench guest's no-op
	// devices (guests/bench.S).
	BENCH_NOOP_PORT = 0x80
	BENCH_MMIO      = 0x20000000
	// allocRuns are the two iteration counts whose difference in heap
	// allocations gives allocations per exit (fixed costs of creating
	// and destroying the VM cancel out).
	allocRunShort = 1000
	allocRunLong  = 11000
)

// nullDevice is a device that reads zero and ignores writes.
type nullDevice struct{}

func (nullDevice) Read(_ uint64, data []byte) { clear(data) }
func (nullDevice) Write(uint64, []byte)       {}

// benchSetup returns the setup of a bench VM: the no-op devices and the
// parameter block patched to run the loops in mask iterations times.
func benchSetup(iterations, mask uint64) func(*hv.VM) error {
	return func(vm *hv.VM) error {
		if err := vm.Ports().Register(BENCH_NOOP_PORT, 1, nullDevice{}, "noop"); err != nil {
			return err
		}
		if err := vm.MMIO().Register(BENCH_MMIO, addr.PAGE_SIZE_4K, nullDevice{}, "noop"); err != nil {
			return err
		}
		off := bytes.Index(guests.Images["bench"], []byte("KEELBNCH"))
		if off < 0 {
			return errors.New("the bench guest has no parameter block")
		}
		var p [16]byte
		binary.LittleEndian.PutUint64(p[0:], iterations)
		binary.LittleEndian.PutUint64(p[8:], mask)
		return vm.Memory().Write(addr.GPA(guests.LOAD_ADDRESS+off+8), p[:])
	}
}

// runBench runs the bench guest once and returns its report, what it
// printed and its exit counts.
func runBench(env Env, name string, iterations, mask uint64) (string, [arch.NumExitReasons]uint64, error) {
	var counts [arch.NumExitReasons]uint64
	var vmRef *hv.VM
	setup := benchSetup(iterations, mask)
	r, text, err := run(env, name, "bench", func(vm *hv.VM) error {
		vmRef = vm
		return setup(vm)
	})
	if err != nil {
		return text, counts, err
	}
	counts = vmRef.ExitCounts()
	if r.State != hv.Stopped || r.ExitStatus != 0 {
		return text, counts, fmt.Errorf("the bench guest ended %s: %s", r.State, r.Reason)
	}
	return text, counts, nil
}

// Bench measures the exit round trips from inside a guest (the bench
// guest prints `bench: NAME n=N tsc=T` lines, which Keel's console shows
// prefixed with the VM name) and counts heap allocations per exit on each
// path. Under QEMU with -icount the TSC figures repeat exactly; `make
// bench` compares them with the same guest run directly on QEMU.
func Bench(env Env, out io.Writer, only string) error {
	if only != "" {
		for _, l := range benchLoops {
			if l.name == only {
				_, counts, err := runBench(env, "bench-"+l.name, BENCH_ITERATIONS, 1<<l.bit)
				fmt.Fprintf(out, "bench: %s: %d %s exits\n", l.name, counts[l.exit], l.exit)
				return err
			}
		}
		return fmt.Errorf("no bench loop %q (cpuid, port, mmio, hypercall)", only)
	}
	fmt.Fprintf(out, "bench: exit costs, %d iterations per loop\n", BENCH_ITERATIONS)
	text, _, err := runBench(env, "bench", BENCH_ITERATIONS, 0x1f)
	if err != nil {
		return err
	}
	if got := strings.Count(text, "bench: "); got != 5 {
		return fmt.Errorf("the bench guest printed %d result lines, want 5: %q", got, text)
	}
	for _, l := range benchLoops {
		var ms runtime.MemStats
		var mallocs, exits [2]uint64
		for i, n := range [2]uint64{allocRunShort, allocRunLong} {
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			_, counts, err := runBench(env, "bench-"+l.name, n, 1<<l.bit)
			if err != nil {
				return err
			}
			runtime.ReadMemStats(&ms)
			mallocs[i], exits[i] = ms.Mallocs-before, counts[l.exit]
		}
		dExits := exits[1] - exits[0]
		if exits[1] < exits[0] || dExits < allocRunLong-allocRunShort {
			return fmt.Errorf("%s: %d and %d %s exits for %d and %d iterations", l.name, exits[0], exits[1], l.exit, allocRunShort, allocRunLong)
		}
		dMallocs := int64(mallocs[1]) - int64(mallocs[0])
		fmt.Fprintf(out, "bench: allocs %s exits=%d allocs=%d per-exit=%.4f\n", l.name, dExits, dMallocs, float64(dMallocs)/float64(dExits))
	}
	return nil
}

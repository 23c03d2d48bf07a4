//go:build tamago

package pc

import (
	"time"

	"github.com/keel-hv/keel/kernel/pc/cpuid"
	"github.com/keel-hv/keel/kernel/pc/tsc"
)

// TSC calibration sources, as TSCFrequency reports them.
const (
	// TSCSourceCPUID: CPUID leaves 15H/16H enumerate the frequency.
	TSCSourceCPUID = "cpuid"
	// TSCSourcePIT: measured against PIT counter 2.
	TSCSourcePIT = "pit"
	// TSCSourceAssumed: calibration failed, 1 GHz is assumed.
	TSCSourceAssumed = "assumed"
)

var (
	// clock is the system clock; Nanotime reads it.
	clock tsc.Clock
	// tscSource is one of TSCSource*, set by calibrateTSC.
	tscSource = TSCSourceAssumed
)

// tscFromCPUID returns the frequency enumerated by CPUID leaves 15H/16H, or
// 0. It reads only the leaves it needs and does not allocate, so it can run
// in Hwinit1.
func tscFromCPUID() uint64 {
	max, _, _, _ := cpuidInsn(cpuid.CPUID_VENDOR, 0)

	if max < cpuid.CPUID_TSC_CRYSTAL {
		return 0
	}

	den, num, crystal, _ := cpuidInsn(cpuid.CPUID_TSC_CRYSTAL, 0)

	var baseMHz uint32
	if max >= cpuid.CPUID_FREQUENCY {
		baseMHz, _, _, _ = cpuidInsn(cpuid.CPUID_FREQUENCY, 0)
	}

	return tsc.FromCPUID(den, num, crystal, baseMHz)
}

// tscFromPIT measures the TSC against the PIT PIT_CAL_SAMPLES times and
// returns the median frequency, or 0 when the PIT does not count.
func tscFromPIT() uint64 {
	var m [PIT_CAL_SAMPLES]uint64

	for i := range m {
		if m[i] = measurePIT(); m[i] == 0 {
			return 0
		}
	}

	return tsc.FromPIT(tsc.Median3(m[0], m[1], m[2]), PIT_CAL_TICKS)
}

// calibrateTSC finds the TSC frequency and switches the clock to it. It
// does not allocate.
func calibrateTSC() {
	// The PIT first: CPUID 15h/16h give the nominal frequency, which
	// emulators do not keep (Bochs counts one TSC tick per emulated
	// instruction but reports 3.5 GHz).
	hz, source := tscFromPIT(), TSCSourcePIT

	if hz == 0 {
		hz, source = tscFromCPUID(), TSCSourceCPUID
	}

	if err := clock.Calibrate(hz, rdtsc()); err != nil {
		print("keel: TSC calibration failed (", source, ", ", hz, " Hz); time runs at an assumed 1 GHz\n")
		return
	}

	tscSource = source
}

// TSCFrequency returns the TSC frequency the clock uses and where it came
// from (TSCSource*).
func TSCFrequency() (hz uint64, source string) {
	return clock.Hz(), tscSource
}

// TSC returns the time stamp counter.
func TSC() uint64 { return rdtsc() }

// TSCHz returns the TSC frequency the clock uses.
func TSCHz() uint64 { return clock.Hz() }

// Uptime returns the time since Keel's first instruction.
func Uptime() time.Duration {
	hz := clock.Hz()
	if hz == 0 {
		return 0
	}
	d := rdtsc() - EntryTSC()
	return time.Duration(d/hz)*time.Second + time.Duration(d%hz*1e9/hz)
}

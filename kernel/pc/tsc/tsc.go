// Package tsc converts time-stamp-counter readings into nanoseconds: the
// frequency arithmetic for CPUID leaves 15H/16H and for a PIT measurement,
// a fixed-point cycles-to-nanoseconds scale, and a Clock that switches from
// an assumed early frequency to the calibrated one without going backwards.
//
// The package is pure Go and host-testable; reading the TSC, CPUID and the
// PIT is the board's job (kernel/pc).
package tsc

import (
	"math/bits"
	"sync/atomic"
)

// Error is an error of this package. Its values are constants, not
// variables set by package initialization, because the board calibrates
// the clock from runtime/goos.Hwinit1, before any init function has run.
type Error string

// Error returns the message.
func (e Error) Error() string {
	return string(e)
}

const (
	// ErrFrequencyRange: the frequency is outside [MIN_HZ, MAX_HZ].
	ErrFrequencyRange Error = "tsc: frequency outside [1 MHz, 100 GHz]: the calibration failed"
	// ErrCalibrated: Calibrate was called twice.
	ErrCalibrated Error = "tsc: clock is already calibrated"
)

// Intel 8254 Programmable Interval Timer (8254 datasheet, "Functional
// Description"): on a PC each counter is clocked at 14.31818 MHz / 12.
const (
	// PIT_TICK_RATE is the 8254 input clock in Hz on PC-compatible
	// machines.
	PIT_TICK_RATE = 1193182
)

const (
	// EARLY_HZ is the TSC frequency assumed before calibration: one cycle
	// counts as one nanosecond.
	EARLY_HZ = 1_000_000_000

	// MIN_HZ and MAX_HZ bound the frequencies NewScale accepts (1 MHz to
	// 100 GHz); anything outside is a failed measurement.
	MIN_HZ = 1_000_000
	MAX_HZ = 100_000_000_000

	// SCALE_SHIFT is the number of fractional bits of Scale's multiplier.
	SCALE_SHIFT = 32
)

// FromCPUID returns the TSC frequency in Hz enumerated by CPUID leaf 15H
// (Intel SDM Vol. 2A, CPUID—"Time Stamp Counter and Nominal Core Crystal
// Clock Information Leaf": den = EAX, num = EBX, crystalHz = ECX) and, when
// the crystal frequency is not enumerated, leaf 16H (baseMHz = EAX,
// "Processor Base Frequency", SDM Vol. 3B 20.7.3). It returns 0 when the
// leaves do not give a frequency: callers pass zeros for leaves above the
// maximum standard leaf.
func FromCPUID(den, num, crystalHz, baseMHz uint32) uint64 {
	if den == 0 || num == 0 {
		// "If EBX[31:0] is 0, the TSC/core crystal clock ratio is not
		// enumerated."
		return 0
	}

	if crystalHz != 0 {
		return uint64(crystalHz) * uint64(num) / uint64(den)
	}

	// crystal = base * den / num, so TSC = crystal * num / den = base.
	return uint64(baseMHz) * 1_000_000
}

// FromPIT returns the TSC frequency in Hz given the TSC cycles that elapsed
// while the PIT counted ticks periods of PIT_TICK_RATE. It returns 0 when
// ticks is 0 or the result does not fit in 64 bits.
func FromPIT(cycles uint64, ticks uint32) uint64 {
	if ticks == 0 {
		return 0
	}

	hi, lo := bits.Mul64(cycles, PIT_TICK_RATE)

	if hi >= uint64(ticks) {
		return 0
	}

	q, _ := bits.Div64(hi, lo, uint64(ticks))

	return q
}

// Median3 returns the median of three measurements.
func Median3(a, b, c uint64) uint64 {
	if a > b {
		a, b = b, a
	}

	if b > c {
		b = c
	}

	if a > b {
		return a
	}

	return b
}

// Scale converts cycles of a fixed-frequency counter to nanoseconds with a
// 32.32 fixed-point multiplier.
type Scale struct {
	hz   uint64
	mult uint64
}

// NewScale returns the scale for a counter running at hz, or
// ErrFrequencyRange. It does not allocate.
func NewScale(hz uint64) (Scale, error) {
	if hz < MIN_HZ || hz > MAX_HZ {
		return Scale{}, ErrFrequencyRange
	}

	// mult = round(1e9 * 2^SCALE_SHIFT / hz); 1e9 * 2^32 < 2^64.
	const num = uint64(1_000_000_000) << SCALE_SHIFT

	return Scale{hz: hz, mult: (num + hz/2) / hz}, nil
}

// Hz returns the frequency the scale was built for.
func (s Scale) Hz() uint64 {
	return s.hz
}

// Nanoseconds converts cycles to nanoseconds, truncating.
//
//go:nosplit
func (s Scale) Nanoseconds(cycles uint64) uint64 {
	// nosplit: part of Clock.Now, which runs under the runtime's nosplit
	// nanotime.
	hi, lo := bits.Mul64(cycles, s.mult)

	return hi<<(64-SCALE_SHIFT) | lo>>SCALE_SHIFT
}

// Clock turns TSC readings into monotonic nanoseconds. Before Calibrate it
// assumes EARLY_HZ; Calibrate switches to the measured frequency and adds
// an offset so that time continues from where the early clock stood.
//
// The zero value is ready to use. Now may run concurrently with itself;
// Calibrate must not run concurrently with Now on another CPU.
type Clock struct {
	// calibrated is 1 once scale and offset hold the calibrated clock.
	calibrated atomic.Uint32
	scale      Scale
	offset     int64
}

// Now returns the nanoseconds for the TSC reading cycles. It does not
// allocate.
//
//go:nosplit
func (c *Clock) Now(cycles uint64) int64 {
	// nosplit: the board's runtime/goos.Nanotime calls this from the
	// runtime's nosplit nanotime, which the scheduler uses with locks
	// held; growing the stack there is not allowed.
	if c.calibrated.Load() == 0 {
		return int64(cycles)
	}

	return int64(c.scale.Nanoseconds(cycles)) + c.offset
}

// Calibrate switches the clock to frequency hz. at must be a TSC reading
// taken just before the call and no older than any reading passed to Now so
// far: Now(at) is the same before and after the switch, so time never goes
// backwards. It returns ErrFrequencyRange or ErrCalibrated without changing
// the clock, and does not allocate.
func (c *Clock) Calibrate(hz uint64, at uint64) error {
	s, err := NewScale(hz)
	if err != nil {
		return err
	}

	before := c.Now(at)

	if c.calibrated.Load() != 0 {
		return ErrCalibrated
	}

	c.scale = s
	c.offset = before - int64(s.Nanoseconds(at))
	c.calibrated.Store(1)

	return nil
}

// Hz returns the frequency the clock runs at: EARLY_HZ before Calibrate.
func (c *Clock) Hz() uint64 {
	if c.calibrated.Load() == 0 {
		return EARLY_HZ
	}

	return c.scale.Hz()
}

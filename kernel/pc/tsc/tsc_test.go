package tsc

import (
	"math/big"
	"strings"
	"testing"
)

func TestFromCPUID(t *testing.T) {
	tests := []struct {
		name                      string
		den, num, crystal, baseMH uint32
		want                      uint64
	}{
		{name: "not enumerated", want: 0},
		{name: "ratio zero", den: 2, num: 0, crystal: 24_000_000, want: 0},
		{name: "denominator zero", den: 0, num: 200, crystal: 24_000_000, want: 0},
		// Skylake-X style: 25 MHz crystal, ratio 168/2.
		{name: "crystal enumerated", den: 2, num: 168, crystal: 25_000_000, want: 2_100_000_000},
		// Atom style: 19.2 MHz crystal.
		{name: "19.2 MHz crystal", den: 1, num: 100, crystal: 19_200_000, want: 1_920_000_000},
		// Skylake client: crystal not enumerated, base from leaf 16H.
		{name: "crystal from leaf 16H", den: 2, num: 216, crystal: 0, baseMH: 2700, want: 2_700_000_000},
		{name: "no crystal, no base", den: 2, num: 216, want: 0},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromCPUID(tt.den, tt.num, tt.crystal, tt.baseMH); got != tt.want {
				t.Errorf("FromCPUID(%d, %d, %d, %d) = %d, want %d", tt.den, tt.num, tt.crystal, tt.baseMH, got, tt.want)
			}
		})
	}
}

func TestFromPIT(t *testing.T) {
	tests := []struct {
		name   string
		cycles uint64
		ticks  uint32
		want   uint64
	}{
		// 11932 ticks is 10 ms; a 3 GHz TSC counts 30,000,453 cycles then.
		{name: "3 GHz over 10 ms", cycles: 30_000_453, ticks: 11932, want: 3_000_000_000},
		{name: "exact one second", cycles: 2_400_000_000, ticks: PIT_TICK_RATE, want: 2_400_000_000},
		{name: "zero ticks", cycles: 1, ticks: 0, want: 0},
		{name: "overflow", cycles: ^uint64(0), ticks: 1, want: 0},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromPIT(tt.cycles, tt.ticks)

			// Allow 1 ppm of rounding.
			diff := int64(got) - int64(tt.want)
			if diff < 0 {
				diff = -diff
			}

			if uint64(diff) > tt.want/1_000_000 {
				t.Errorf("FromPIT(%d, %d) = %d, want %d", tt.cycles, tt.ticks, got, tt.want)
			}
		})
	}
}

func TestMedian3(t *testing.T) {
	for _, tt := range [][4]uint64{
		{1, 2, 3, 2}, {1, 3, 2, 2}, {2, 1, 3, 2}, {2, 3, 1, 2},
		{3, 1, 2, 2}, {3, 2, 1, 2}, {5, 5, 1, 5}, {7, 7, 7, 7},
	} {
		if got := Median3(tt[0], tt[1], tt[2]); got != tt[3] {
			t.Errorf("Median3(%d, %d, %d) = %d, want %d", tt[0], tt[1], tt[2], got, tt[3])
		}
	}
}

func TestNewScale(t *testing.T) {
	for _, hz := range []uint64{0, MIN_HZ - 1, MAX_HZ + 1} {
		if _, err := NewScale(hz); err == nil || !strings.Contains(err.Error(), "calibration failed") {
			t.Errorf("NewScale(%d) error = %v, want a calibration error", hz, err)
		}
	}
}

// exactNs is cycles * 1e9 / hz, computed exactly.
func exactNs(cycles, hz uint64) *big.Int {
	n := new(big.Int).SetUint64(cycles)
	n.Mul(n, big.NewInt(1_000_000_000))

	return n.Quo(n, new(big.Int).SetUint64(hz))
}

func TestScaleNanoseconds(t *testing.T) {
	hzs := []uint64{MIN_HZ, 1_193_182, 999_999_937, EARLY_HZ, 2_100_000_000, 3_392_123_456, 5_000_000_000, MAX_HZ}
	cycles := []uint64{0, 1, 1000, 1 << 32, 3_000_000_000 * 3600, 1 << 50, 1 << 60}

	for _, hz := range hzs {
		s, err := NewScale(hz)
		if err != nil {
			t.Fatalf("NewScale(%d) = %v", hz, err)
		}

		for _, c := range cycles {
			want := exactNs(c, hz)
			if !want.IsUint64() {
				continue
			}

			got := s.Nanoseconds(c)

			// The multiplier is rounded to 2^-32 ns per cycle, so the
			// error is at most cycles * 2^-33 ns, i.e. below 0.12 ppb of
			// the cycle count, plus one for truncation.
			diff := new(big.Int).Sub(new(big.Int).SetUint64(got), want)
			limit := new(big.Int).SetUint64(c>>33 + 1)

			if diff.CmpAbs(limit) > 0 {
				t.Errorf("hz=%d cycles=%d: Nanoseconds = %d, want %s (±%s)", hz, c, got, want, limit)
			}
		}
	}
}

func TestClockContinuousAndMonotonic(t *testing.T) {
	tests := []struct {
		name string
		hz   uint64
		at   uint64
	}{
		{name: "slower than early", hz: 500_000_000, at: 123_456_789},
		{name: "faster than early", hz: 3_400_000_000, at: 123_456_789},
		{name: "equal to early", hz: EARLY_HZ, at: 42},
		{name: "large TSC after a long uptime", hz: 2_900_000_000, at: 1 << 52},
		{name: "switch at zero", hz: 2_000_000_000, at: 0},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Clock

			if c.Hz() != EARLY_HZ {
				t.Fatalf("early Hz() = %d", c.Hz())
			}

			var last int64 = -1 << 63
			step := uint64(7919)

			// Early readings up to the switch.
			start := uint64(0)
			if tt.at > 1000*step {
				start = tt.at - 1000*step
			}

			for tsc := start; tsc <= tt.at; tsc += step {
				now := c.Now(tsc)
				if now < last {
					t.Fatalf("early clock went back at tsc=%d: %d < %d", tsc, now, last)
				}
				last = now
			}

			early := c.Now(tt.at)

			if err := c.Calibrate(tt.hz, tt.at); err != nil {
				t.Fatalf("Calibrate() = %v", err)
			}

			if got := c.Now(tt.at); got != early {
				t.Fatalf("Now(at) after switch = %d, want %d (continuity)", got, early)
			}

			if c.Hz() != tt.hz {
				t.Errorf("Hz() = %d, want %d", c.Hz(), tt.hz)
			}

			last = early
			for tsc := tt.at; tsc < tt.at+1000*step; tsc += step {
				now := c.Now(tsc)
				if now < last {
					t.Fatalf("calibrated clock went back at tsc=%d: %d < %d", tsc, now, last)
				}
				last = now
			}

			// One second of cycles is one second of nanoseconds (±1 ns).
			d := c.Now(tt.at+tt.hz) - c.Now(tt.at)
			if d < 999_999_999 || d > 1_000_000_001 {
				t.Errorf("one second of cycles = %d ns", d)
			}

			if err := c.Calibrate(tt.hz, tt.at); err != ErrCalibrated {
				t.Errorf("second Calibrate() = %v, want ErrCalibrated", err)
			}
		})
	}
}

func TestClockRejectsBadFrequency(t *testing.T) {
	var c Clock

	if err := c.Calibrate(0, 100); err != ErrFrequencyRange {
		t.Fatalf("Calibrate(0) = %v, want ErrFrequencyRange", err)
	}

	if got := c.Now(100); got != 100 {
		t.Errorf("clock changed after a failed Calibrate: Now(100) = %d", got)
	}
}

func TestClockDoesNotAllocate(t *testing.T) {
	var c Clock

	if n := testing.AllocsPerRun(1, func() { _ = c.Calibrate(0, 10) }); n != 0 {
		t.Errorf("failing Calibrate allocates %v times", n)
	}

	if n := testing.AllocsPerRun(1, func() { _ = c.Calibrate(2_000_000_000, 10) }); n != 0 {
		t.Errorf("Calibrate allocates %v times", n)
	}

	if n := testing.AllocsPerRun(100, func() { _ = c.Now(12345) }); n != 0 {
		t.Errorf("Now allocates %v times per call", n)
	}
}

func FuzzScaleMonotonic(f *testing.F) {
	f.Add(uint64(2_100_000_000), uint64(1000), uint64(1001))

	f.Fuzz(func(t *testing.T, hz, a, b uint64) {
		s, err := NewScale(hz)
		if err != nil {
			return
		}

		if a > b {
			a, b = b, a
		}

		if s.Nanoseconds(a) > s.Nanoseconds(b) {
			t.Fatalf("hz=%d: Nanoseconds(%d) > Nanoseconds(%d)", hz, a, b)
		}
	})
}

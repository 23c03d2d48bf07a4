package kvmclock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand"
	"testing"
	"time"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// fakeMem is guest RAM [0, size) that logs every write.
type fakeMem struct {
	ram  []byte
	log  []write
	fail bool
}

type write struct {
	gpa  addr.GPA
	data []byte
}

var errOutside = errors.New("outside guest RAM")

func (m *fakeMem) Write(gpa addr.GPA, p []byte) error {
	if m.fail || uint64(gpa) > uint64(len(m.ram)) || uint64(len(p)) > uint64(len(m.ram))-uint64(gpa) {
		return errOutside
	}
	copy(m.ram[gpa:], p)
	m.log = append(m.log, write{gpa, append([]byte(nil), p...)})
	return nil
}

func (m *fakeMem) timeInfo(gpa addr.GPA) TimeInfo {
	var b [TIME_INFO_SIZE]byte
	copy(b[:], m.ram[gpa:])
	return DecodeTimeInfo(&b)
}

func TestCPUIDSignature(t *testing.T) {
	_, ebx, ecx, edx := SignatureLeaf(KVM_CPUID_SIGNATURE)
	var sig [12]byte
	binary.LittleEndian.PutUint32(sig[0:], ebx)
	binary.LittleEndian.PutUint32(sig[4:], ecx)
	binary.LittleEndian.PutUint32(sig[8:], edx)
	if string(sig[:]) != KVM_SIGNATURE {
		t.Fatalf("signature %q, want %q", sig, KVM_SIGNATURE)
	}
	for _, base := range []uint32{0x40000000, 0x40000100} {
		if eax, _, _, _ := SignatureLeaf(base); eax != base+1 {
			t.Errorf("max leaf at base %#x = %#x", base, eax)
		}
	}
	eax, ebx, ecx, edx := FeaturesLeaf(CLOCK_FEATURES, 1<<KVM_HINTS_REALTIME)
	if eax != 1<<3|1<<24 || ebx != 0 || ecx != 0 || edx != 1 {
		t.Errorf("features leaf %#x %#x %#x %#x", eax, ebx, ecx, edx)
	}
	if MSR_KVM_WALL_CLOCK_NEW != 0x4b564d00 || MSR_KVM_SYSTEM_TIME_NEW != 0x4b564d01 {
		t.Error("MSR numbers")
	}
}

func TestLayout(t *testing.T) {
	ti := TimeInfo{Version: 0x11223344, TSCTimestamp: 0x0102030405060708, SystemTime: 0x1112131415161718,
		TSCToSystemMul: 0xa1a2a3a4, TSCShift: -2, Flags: PVCLOCK_TSC_STABLE_BIT}
	var b [TIME_INFO_SIZE]byte
	for i := range b {
		b[i] = 0xee
	}
	ti.Encode(&b)
	want := [TIME_INFO_SIZE]byte{
		0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
		0xa4, 0xa3, 0xa2, 0xa1, 0xfe, 0x01, 0, 0,
	}
	if b != want {
		t.Fatalf("encoded\n% x\nwant\n% x", b, want)
	}
	if got := DecodeTimeInfo(&b); got != ti {
		t.Fatalf("decoded %+v, want %+v", got, ti)
	}
	wc := WallClock{Version: 2, Sec: 0x5f5e1000, Nsec: 999999999}
	var wb [WALL_CLOCK_SIZE]byte
	wc.Encode(&wb)
	if wb != [WALL_CLOCK_SIZE]byte{2, 0, 0, 0, 0x00, 0x10, 0x5e, 0x5f, 0xff, 0xc9, 0x9a, 0x3b} || DecodeWallClock(&wb) != wc {
		t.Fatalf("wall clock % x", wb)
	}
}

// exactNS is delta * 1e9 / hz as a big rational.
func exactNS(delta, hz uint64) *big.Rat {
	r := new(big.Rat).SetInt(new(big.Int).Mul(new(big.Int).SetUint64(delta), big.NewInt(1e9)))
	return r.Quo(r, new(big.Rat).SetInt(new(big.Int).SetUint64(hz)))
}

// checkScale verifies Scale(hz) against exact arithmetic for delta.
func checkScale(t *testing.T, hz uint64, mul uint32, shift int8, delta uint64) {
	t.Helper()
	got := ScaleDelta(delta, mul, shift)
	exact := exactNS(delta, hz)
	ef, _ := exact.Float64()
	// Tolerance: mul's rounding (< 2^-31 relative), the final floor
	// (< 1 ns), and for right shifts the dropped low bits of delta.
	tol := 1 + ef/(1<<31)
	if shift < 0 {
		tol += float64(uint64(1)<<uint(-int(shift))) * 1e9 / float64(hz)
	}
	diff, _ := new(big.Rat).Sub(new(big.Rat).SetInt(new(big.Int).SetUint64(got)), exact).Float64()
	if math.Abs(diff) > tol {
		t.Fatalf("%d Hz (mul %#x shift %d): delta %d -> %d ns, exact %.3f, off by %.3f > %.3f",
			hz, mul, shift, delta, got, ef, diff, tol)
	}
}

func TestScaleAgainstBig(t *testing.T) {
	freqs := []uint64{1e6, 1e6 + 1, 1193182, 3579545, 14318180, 25e6, 100e6, 999999999, 1e9, 1e9 + 1,
		1999999999, 2e9, 2e9 + 1, 2112000000, 2399987000, 2904000000, 3e9, 3.6e9, 4.2e9, 5e9, 7.3e9, 1e10}
	// And a logarithmic sweep from 1 MHz to 10 GHz.
	for f := 1e6; f <= 1e10; f *= 1.037 {
		freqs = append(freqs, uint64(f))
	}
	rng := rand.New(rand.NewSource(1))
	for _, hz := range freqs {
		mul, shift, err := Scale(hz)
		if err != nil {
			t.Fatal(err)
		}
		if mul < 1<<31 {
			t.Errorf("%d Hz: mul %#x not normalized", hz, mul)
		}
		if (hz > 2e9 && shift >= 0) || (hz < 1e9 && shift <= 0) {
			t.Errorf("%d Hz: shift %d", hz, shift)
		}
		deltas := []uint64{0, 1, 2, 1000, hz / 1000, hz, 10 * hz, 3600 * hz, 1 << 40, 1 << 50}
		for range 20 {
			deltas = append(deltas, rng.Uint64()>>uint(rng.Intn(40)+12))
		}
		for _, d := range deltas {
			if shift > 0 && d >= 1<<(64-uint(shift)) {
				continue // the guest's shift would overflow too
			}
			checkScale(t, hz, mul, shift, d)
		}
		// The guest can recover the frequency from the scale (Linux
		// derives tsc_khz this way).
		back := 1e9 * math.Ldexp(1, 32-int(shift)) / float64(mul)
		if math.Abs(back-float64(hz))/float64(hz) > 1e-9 {
			t.Errorf("%d Hz: scale implies %.1f Hz", hz, back)
		}
	}
	if _, _, err := Scale(0); err == nil {
		t.Error("Scale(0) accepted")
	}
	for _, hz := range []uint64{1, 2, 1 << 62, math.MaxUint64} {
		if _, _, err := Scale(hz); err != nil {
			t.Errorf("Scale(%d): %v", hz, err)
		}
	}
}

func TestWriteTimeInfoProtocol(t *testing.T) {
	m := &fakeMem{ram: make([]byte, 4096)}
	ti := TimeInfo{TSCTimestamp: 1000, SystemTime: 5, TSCToSystemMul: 1 << 31, TSCShift: 1}
	if err := WriteTimeInfo(m, 0x100, &ti); err != nil {
		t.Fatal(err)
	}
	if ti.Version != 2 || len(m.log) != 3 {
		t.Fatalf("version %d after %d writes; want 2 after 3", ti.Version, len(m.log))
	}
	v := func(w write) uint32 { return binary.LittleEndian.Uint32(w.data) }
	if m.log[0].gpa != 0x100 || len(m.log[0].data) != 4 || v(m.log[0]) != 1 {
		t.Errorf("first write %+v: want version 1 at 0x100", m.log[0])
	}
	if m.log[1].gpa != 0x104 || len(m.log[1].data) != TIME_INFO_SIZE-4 {
		t.Errorf("second write %+v: want the body at 0x104", m.log[1])
	}
	if m.log[2].gpa != 0x100 || v(m.log[2]) != 2 {
		t.Errorf("third write %+v: want version 2", m.log[2])
	}
	if got := m.timeInfo(0x100); got != ti {
		t.Errorf("guest sees %+v, want %+v", got, ti)
	}
	// An update that failed half-way leaves an odd version; the next
	// one moves past it.
	ti.Version = 5
	if err := WriteTimeInfo(m, 0x100, &ti); err != nil || ti.Version != 8 {
		t.Errorf("after odd 5: version %d, %v; want 8", ti.Version, err)
	}
	if err := WriteTimeInfo(m, 4090, &ti); !errors.Is(err, errOutside) {
		t.Errorf("record past the end: %v", err)
	}
	var wc WallClock
	if err := WriteWallClock(m, 0x200, &wc); err != nil || wc.Version != 2 {
		t.Errorf("wall clock: version %d, %v", wc.Version, err)
	}
}

func TestClockMSR(t *testing.T) {
	const hz = 2_500_000_000
	m := &fakeMem{ram: make([]byte, 1<<20)}
	c, err := NewClock(m, hz, PVCLOCK_TSC_STABLE_BIT)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		value   uint64
		enabled bool
		errIs   error
	}{
		{"disabled", 0x1000, false, nil},
		{"enable", 0x1000 | 1, true, nil},
		{"misaligned", 0x1002 | 1, false, ErrMisaligned},
		{"outside RAM", 1<<20 | 1, false, errOutside},
		{"straddles the end", (1<<20 - 16) | 1, false, errOutside},
		{"huge GPA", math.MaxUint64 - 2, false, errOutside},
		{"re-enable", 0x2000 | 1, true, nil},
		{"disable", 0x2000, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.WriteMSR(tc.value, 1_000_000, 42)
			if tc.errIs == nil && err != nil || tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Fatalf("WriteMSR(%#x) = %v, want %v", tc.value, err, tc.errIs)
			}
			if c.ReadMSR() != tc.value {
				t.Errorf("MSR reads %#x, want %#x", c.ReadMSR(), tc.value)
			}
			gpa, on := c.Enabled()
			if on != tc.enabled || (on && uint64(gpa) != tc.value&^1) {
				t.Errorf("enabled %v at %s", on, gpa)
			}
			if on {
				got := m.timeInfo(gpa)
				if got.Version%2 != 0 || got.TSCTimestamp != 1_000_000 || got.SystemTime != 42 || got.Flags != PVCLOCK_TSC_STABLE_BIT {
					t.Errorf("record %+v", got)
				}
			}
		})
	}
	// Updates while enabled, none while disabled.
	c.WriteMSR(0x3000|1, 0, 0)
	n := len(m.log)
	if err := c.Update(hz, uint64(time.Second)); err != nil {
		t.Fatal(err)
	}
	ti := m.timeInfo(0x3000)
	if got := ti.GuestTime(2 * hz); got < uint64(2*time.Second)-1 || got > uint64(2*time.Second)+1 {
		t.Errorf("guest time one second after the update: %d ns", got)
	}
	c.WriteMSR(0x3000, 0, 0)
	n = len(m.log)
	if err := c.Update(5, 5); err != nil || len(m.log) != n {
		t.Error("disabled clock wrote memory")
	}
	if _, err := NewClock(m, 0, 0); err == nil {
		t.Error("NewClock with 0 Hz accepted")
	}
}

func TestWallMSR(t *testing.T) {
	m := &fakeMem{ram: make([]byte, 4096)}
	w := NewWall(m)
	boot := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	if err := w.WriteMSR(0x800, boot); err != nil {
		t.Fatal(err)
	}
	var b [WALL_CLOCK_SIZE]byte
	copy(b[:], m.ram[0x800:])
	if got := DecodeWallClock(&b); got != (WallClock{Version: 2, Sec: uint32(boot.Unix()), Nsec: 123456789}) {
		t.Errorf("wall clock %+v", got)
	}
	if err := w.WriteMSR(0x801, boot); !errors.Is(err, ErrMisaligned) || w.ReadMSR() != 0x801 {
		t.Errorf("misaligned: %v, MSR %#x", err, w.ReadMSR())
	}
	if err := w.WriteMSR(4092, boot); !errors.Is(err, errOutside) {
		t.Errorf("past the end: %v", err)
	}
	// Each write publishes again with a new version.
	w.WriteMSR(0x800, boot)
	copy(b[:], m.ram[0x800:])
	if v := DecodeWallClock(&b).Version; v%2 != 0 || v <= 2 {
		t.Errorf("version %d after a rewrite", v)
	}
}

func TestClockNoAlloc(t *testing.T) {
	m := &fakeMem{ram: make([]byte, 4096)}
	c, _ := NewClock(m, 3e9, 0)
	c.WriteMSR(1, 0, 0)
	m.log = nil
	mem := &countingMem{}
	c.mem = mem
	allocs := testing.AllocsPerRun(100, func() { c.Update(1, 1) })
	if allocs != 0 {
		t.Errorf("%v allocations per Update", allocs)
	}
}

// countingMem accepts every write without keeping it.
type countingMem struct{ n int }

func (m *countingMem) Write(addr.GPA, []byte) error { m.n++; return nil }

func ExampleScale() {
	mul, shift, _ := Scale(3_000_000_000)
	fmt.Println(mul, shift, ScaleDelta(3_000_000_000, mul, shift))
	// Output: 2863311531 -1 1000000000
}

// FuzzClock drives a Clock and a Wall with MSR writes and updates decoded
// from the input and checks that nothing panics, that the MSRs read back,
// that enabled records are consistent (even version, the latest sample,
// the scale of the TSC frequency) and that Scale agrees with exact
// arithmetic.
func FuzzClock(f *testing.F) {
	f.Add(uint64(2_400_000_000), []byte{1, 0x10, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint64(1_000_000), []byte{1, 0x13, 0x10, 0, 0, 0, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint64(9_999_999_999), []byte{3, 0x00, 0x08, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, hz uint64, in []byte) {
		if hz == 0 {
			return
		}
		mul, shift, err := Scale(hz)
		if err != nil {
			t.Fatalf("Scale(%d): %v", hz, err)
		}
		if hz <= 1<<40 && mul < 1<<31 {
			t.Fatalf("Scale(%d) mul %#x not normalized", hz, mul)
		}
		if hz >= 1e6 && hz <= 1e10 && len(in) >= 8 {
			d := binary.LittleEndian.Uint64(in) >> 20
			checkScale(t, hz, mul, shift, d)
		}
		m := &fakeMem{ram: make([]byte, 1<<12)}
		c, err := NewClock(m, hz, PVCLOCK_TSC_STABLE_BIT)
		if err != nil {
			t.Fatal(err)
		}
		w := NewWall(&fakeMem{ram: make([]byte, 1<<12)})
		var tsc, sys uint64
		var pubTSC, pubSys uint64 // the sample of the last successful publish
		for len(in) >= 9 {
			op, v := in[0], binary.LittleEndian.Uint64(in[1:9])
			in = in[9:]
			tsc += v >> 40
			sys += v >> 44
			switch op % 4 {
			case 0:
				if c.WriteMSR(v, tsc, sys) == nil && v&1 != 0 {
					pubTSC, pubSys = tsc, sys
				}
				if c.ReadMSR() != v {
					t.Fatal("system time MSR does not read back")
				}
			case 1:
				if err := c.WriteMSR(v&0xfe0|1, tsc, sys); err != nil { // always valid
					t.Fatal(err)
				}
				pubTSC, pubSys = tsc, sys
			case 2:
				if err := c.Update(tsc, sys); err != nil {
					t.Fatal(err)
				}
				if _, on := c.Enabled(); on {
					pubTSC, pubSys = tsc, sys
				}
			case 3:
				w.WriteMSR(v&0xfff, time.Unix(int64(v>>34), int64(v%1e9)))
				if w.ReadMSR() != v&0xfff {
					t.Fatal("wall clock MSR does not read back")
				}
			}
			if gpa, on := c.Enabled(); on {
				got := m.timeInfo(gpa)
				if got.Version%2 != 0 || got.TSCTimestamp != pubTSC || got.SystemTime != pubSys ||
					got.TSCToSystemMul != mul || got.TSCShift != shift || got != c.Info() {
					t.Fatalf("record at %s: %+v, clock has %+v", gpa, got, c.Info())
				}
			}
		}
	})
}

// A VM's guest memory is a GuestWriter.
var _ GuestWriter = (*mem.GuestMemory)(nil)

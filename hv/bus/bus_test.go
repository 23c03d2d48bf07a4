package bus

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
)

// fakeLine is a fake interrupt line that records its level changes.
type fakeLine struct {
	level  bool
	raises int
}

func (l *fakeLine) Set(level bool) {
	if level && !l.level {
		l.raises++
	}
	l.level = level
}

// fakeDev is a device with 16 bytes of registers. Writing offset 0xf raises
// its interrupt line when the value is non-zero and lowers it otherwise;
// reading offset 0xe returns how many writes it has seen.
type fakeDev struct {
	regs   [16]byte
	writes int
	irq    *fakeLine
	last   struct {
		off  uint64
		size int
	}
}

func (d *fakeDev) Read(off uint64, data []byte) {
	d.last.off, d.last.size = off, len(data)
	for i := range data {
		if off+uint64(i) == 0xe {
			data[i] = byte(d.writes)
			continue
		}
		data[i] = d.regs[(off+uint64(i))%16]
	}
}

func (d *fakeDev) Write(off uint64, data []byte) {
	d.last.off, d.last.size = off, len(data)
	d.writes++
	for i, b := range data {
		d.regs[(off+uint64(i))%16] = b
		if off+uint64(i) == 0xf && d.irq != nil {
			d.irq.Set(b != 0)
		}
	}
}

func TestRegisterRejects(t *testing.T) {
	b := NewPortBus(DefaultPolicy())
	if err := b.Register(0x3f8, 8, &fakeDev{}, "com1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Register(0x2f8, 8, &fakeDev{}, "com2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		base uint16
		size uint32
		dev  Device
		dn   string
		want []string
	}{
		{"overlap start", 0x3f0, 0x9, &fakeDev{}, "x", []string{`"x"`, `"com1"`, "overlaps"}},
		{"overlap end", 0x3ff, 1, &fakeDev{}, "y", []string{`"y"`, `"com1"`}},
		{"inside", 0x3fa, 2, &fakeDev{}, "z", []string{`"z"`, `"com1"`}},
		{"covering", 0x2f0, 0x200, &fakeDev{}, "big", []string{`"big"`, "overlaps device"}},
		{"zero size", 0x100, 0, &fakeDev{}, "empty", []string{`"empty"`, "size 0"}},
		{"past the end", 0xfffe, 4, &fakeDev{}, "top", []string{`"top"`, "past the end"}},
		{"no device", 0x100, 1, nil, "nil", []string{"without an implementation"}},
		{"no name", 0x100, 1, &fakeDev{}, "", []string{"without a name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Register(tc.base, tc.size, tc.dev, tc.dn)
			if err == nil {
				t.Fatal("registration succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
		})
	}
	if err := b.Register(0xfffc, 4, &fakeDev{}, "last ports"); err != nil {
		t.Errorf("device ending at the last port: %v", err)
	}
	if err := b.Register(0x3f0, 8, &fakeDev{}, "adjacent"); err != nil {
		t.Errorf("adjacent device: %v", err)
	}
	m := NewMMIOBus(DefaultPolicy())
	if err := m.Register(0xfffffffffffff000, 0x1000, &fakeDev{}, "top page"); err != nil {
		t.Errorf("device ending at 2^64: %v", err)
	}
	if err := m.Register(0xfffffffffffff000, 0x2000, &fakeDev{}, "wrap"); err == nil {
		t.Error("wrapping device accepted")
	}
	if got := len(b.Devices()); got != 4 {
		t.Errorf("%d devices listed", got)
	}
}

func TestPortAccess(t *testing.T) {
	line := &fakeLine{}
	dev := &fakeDev{irq: line}
	b := NewPortBus(DefaultPolicy())
	if err := b.Register(0x100, 16, dev, "fake"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		port    uint16
		write   []byte
		size    int
		wantErr error
		wantDev string
		off     uint64
	}{
		{"byte", 0x100, []byte{0x11}, 1, nil, "", 0},
		{"word", 0x102, []byte{0x22, 0x33}, 2, nil, "", 2},
		{"dword at end", 0x10c, []byte{1, 2, 3, 4}, 4, nil, "", 0xc},
		{"qword", 0x108, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 8, nil, "", 8},
		{"straddles end", 0x10e, []byte{1, 2, 3, 4}, 4, ErrStraddle, "fake", 0},
		{"straddles start", 0x0fe, []byte{1, 2, 3, 4}, 4, ErrStraddle, "fake", 0},
		{"bad size", 0x100, []byte{1, 2, 3}, 3, ErrSize, "", 0},
		{"empty", 0x100, nil, 0, ErrSize, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Write(tc.port, tc.write)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.wantDev != "" && !strings.Contains(err.Error(), tc.wantDev) {
					t.Errorf("err %q does not name %q", err, tc.wantDev)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dev.last.off != tc.off || dev.last.size != tc.size {
				t.Errorf("device saw offset %#x size %d", dev.last.off, dev.last.size)
			}
			got := make([]byte, tc.size)
			if err := b.Read(tc.port, got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if tc.port+uint16(i) == 0x10e {
					continue // the write counter
				}
				if got[i] != tc.write[i] {
					t.Errorf("read back % x, wrote % x", got, tc.write)
					break
				}
			}
		})
	}
	// Offset 0xf is the interrupt register.
	b.Write(0x10f, []byte{1})
	if !line.level || line.raises != 1 {
		t.Errorf("line level %v after raising", line.level)
	}
	b.Write(0x10f, []byte{0})
	if line.level {
		t.Error("line still up after lowering")
	}
	s := b.Stats()
	if s.Errors != 4 || s.Writes == 0 || s.Reads == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestUnclaimed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pol      Policy
		wantRead []byte
		wantErr  bool
	}{
		{"default all-ones", DefaultPolicy(), []byte{0xff, 0xff, 0xff, 0xff}, false},
		{"zero fill", Policy{}, []byte{0, 0, 0, 0}, false},
		{"strict", Policy{Strict: true}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewMMIOBus(tc.pol)
			if err := b.Register(0xfee00000, 0x1000, &fakeDev{}, "lapic"); err != nil {
				t.Fatal(err)
			}
			got := []byte{1, 2, 3, 4}
			rerr := b.Read(0xfec00000, got)
			werr := b.Write(0xfec00000, got)
			s := b.Stats()
			if tc.wantErr {
				for _, err := range []error{rerr, werr} {
					if !errors.Is(err, ErrUnclaimed) || !strings.Contains(err.Error(), "GPA 0xfec00000") {
						t.Errorf("err = %v", err)
					}
				}
				if s.Errors != 2 {
					t.Errorf("stats %+v", s)
				}
				return
			}
			if rerr != nil || werr != nil {
				t.Fatalf("read %v, write %v", rerr, werr)
			}
			if string(got) != string(tc.wantRead) {
				t.Errorf("read % x", got)
			}
			if s.UnclaimedReads != 1 || s.UnclaimedWrites != 1 || s.Reads != 0 || s.Writes != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestUnregister(t *testing.T) {
	b := NewMMIOBus(DefaultPolicy())
	d := &fakeDev{}
	if err := b.Register(0xfebf0000, 0x1000, d, "bar0"); err != nil {
		t.Fatal(err)
	}
	if !b.Claimed(0xfebf0fff) || b.Claimed(0xfebf1000) {
		t.Error("Claimed wrong")
	}
	if _, err := b.Unregister(0xfebf0004); err == nil {
		t.Error("unregistering by a non-base address succeeded")
	}
	got, err := b.Unregister(0xfebf0000)
	if err != nil || got != d {
		t.Fatalf("Unregister = %v, %v", got, err)
	}
	if b.Claimed(0xfebf0000) {
		t.Error("still claimed")
	}
	// The BAR moves: registering at the new place works.
	if err := b.Register(0xfebe0000, 0x1000, d, "bar0"); err != nil {
		t.Fatal(err)
	}
	p := NewPortBus(DefaultPolicy())
	if _, err := p.Unregister(0x60); err == nil {
		t.Error("unregistering from an empty bus succeeded")
	}
}

func TestManyDevicesLookup(t *testing.T) {
	b := NewMMIOBus(Policy{Strict: true})
	devs := make([]*fakeDev, 100)
	// Register in a scrambled order; lookups must find each.
	for i := 0; i < 100; i++ {
		j := (i * 37) % 100
		devs[j] = &fakeDev{}
		if err := b.Register(addr.GPA(0xd0000000+j*0x2000), 0x1000, devs[j], "dev"); err != nil {
			t.Fatal(err)
		}
	}
	for j := 0; j < 100; j++ {
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], uint32(j))
		if err := b.Write(addr.GPA(0xd0000000+j*0x2000+4), v[:]); err != nil {
			t.Fatal(err)
		}
		if got := binary.LittleEndian.Uint32(devs[j].regs[4:]); got != uint32(j) {
			t.Fatalf("device %d got %d", j, got)
		}
		if err := b.Read(addr.GPA(0xd0000000+j*0x2000+0x1000), v[:]); !errors.Is(err, ErrUnclaimed) {
			t.Fatalf("gap after device %d: %v", j, err)
		}
	}
}

func TestConcurrentRegisterAndAccess(t *testing.T) {
	b := NewMMIOBus(DefaultPolicy())
	if err := b.Register(0x1000, 0x10, &fakeDev{}, "fixed"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			b.Register(0x2000, 0x10, &fakeDev{}, "moving")
			b.Unregister(0x2000)
		}
	}()
	go func() {
		defer wg.Done()
		var v [4]byte
		for i := 0; i < 1000; i++ {
			if err := b.Read(0x1004, v[:]); err != nil {
				t.Error(err)
				return
			}
			b.Read(0x2004, v[:])
		}
	}()
	wg.Wait()
}

// nopDev is a device that does nothing, for allocation tests.
type nopDev struct{}

func (nopDev) Read(uint64, []byte)  {}
func (nopDev) Write(uint64, []byte) {}

func TestAccessDoesNotAllocate(t *testing.T) {
	p := NewPortBus(DefaultPolicy())
	m := NewMMIOBus(DefaultPolicy())
	for i := 0; i < 32; i++ {
		p.Register(uint16(0x100+i*8), 8, nopDev{}, "nop")
		m.Register(addr.GPA(0xfe000000+i*0x1000), 0x1000, nopDev{}, "nop")
	}
	buf := make([]byte, 4)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"port read", func() { _ = p.Read(0x154, buf) }},
		{"port write", func() { _ = p.Write(0x154, buf) }},
		{"port unclaimed", func() { _ = p.Read(0x80, buf) }},
		{"mmio read", func() { _ = m.Read(0xfe00a004, buf) }},
		{"mmio write", func() { _ = m.Write(0xfe00a004, buf) }},
		{"mmio unclaimed", func() { _ = m.Write(0x1000, buf) }},
		{"claimed", func() { _ = m.Claimed(0xfe00a004) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, tc.fn); n != 0 {
				t.Errorf("allocates %v times per access", n)
			}
		})
	}
}

// FuzzBus registers devices and performs accesses from fuzzer-chosen
// operations, checking that nothing panics, that accepted accesses stay
// inside their device, and that overlapping registrations are refused.
func FuzzBus(f *testing.F) {
	f.Add([]byte{0, 0x10, 0x00, 0x10, 1, 0x10, 0x04, 4, 2, 0x10, 0x0e, 4})
	f.Add([]byte{0, 0xff, 0xfc, 0x08, 1, 0xff, 0xff, 8, 0, 0xff, 0xf0, 0x20})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 1, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		b := NewPortBus(DefaultPolicy())
		type reg struct{ base, size uint64 }
		var regs []reg
		checker := &boundsDev{t: t}
		for len(ops) >= 4 {
			op, a, s := ops[0]%4, uint64(ops[1])<<8|uint64(ops[2]), uint64(ops[3])
			ops = ops[4:]
			switch op {
			case 0:
				err := b.Register(uint16(a), uint32(s), checker.with(s), "d")
				overlap := false
				for _, r := range regs {
					if (addr.Range{Base: a, Size: s}).Overlaps(addr.Range{Base: r.base, Size: r.size}) {
						overlap = true
					}
				}
				valid := s != 0 && a+s <= PORT_SPACE_SIZE && !overlap
				if (err == nil) != valid {
					t.Fatalf("Register(%#x, %#x) = %v, valid %v", a, s, err, valid)
				}
				if err == nil {
					regs = append(regs, reg{a, s})
				}
			case 1, 2:
				data := make([]byte, s%9)
				var err error
				if op == 1 {
					err = b.Read(uint16(a), data)
				} else {
					err = b.Write(uint16(a), data)
				}
				if err != nil && !errors.Is(err, ErrSize) && !errors.Is(err, ErrStraddle) {
					t.Fatalf("unexpected error %v", err)
				}
			case 3:
				if _, err := b.Unregister(uint16(a)); err == nil {
					for i, r := range regs {
						if r.base == a {
							regs = append(regs[:i], regs[i+1:]...)
							break
						}
					}
				}
			}
		}
	})
}

// boundsDev fails the test if the bus hands it an access outside its size.
type boundsDev struct {
	t    *testing.T
	size uint64
}

func (d *boundsDev) with(size uint64) *boundsDev { return &boundsDev{t: d.t, size: size} }

func (d *boundsDev) Read(off uint64, data []byte)  { d.check(off, data) }
func (d *boundsDev) Write(off uint64, data []byte) { d.check(off, data) }

func (d *boundsDev) check(off uint64, data []byte) {
	if off+uint64(len(data)) > d.size {
		d.t.Fatalf("device of size %#x got access at %#x size %d", d.size, off, len(data))
	}
}

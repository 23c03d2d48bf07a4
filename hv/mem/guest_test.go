package mem

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
)

func TestAllocateLayout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    uint64
		layout  Layout
		regions []addr.Range // GPA ranges (merged where host-contiguous is not guaranteed: compared by coverage)
	}{
		{"small", 16 * MiB, DefaultLayout(), []addr.Range{{Base: 0, Size: 16 * MiB}}},
		{"below hole", 3 * GiB, DefaultLayout(), []addr.Range{{Base: 0, Size: 3 * GiB}}},
		{"across hole", 3*GiB + 512*MiB, DefaultLayout(), []addr.Range{{Base: 0, Size: 3 * GiB}, {Base: 4 * GiB, Size: 512 * MiB}}},
		{"no holes", 64 * MiB, Layout{}, []addr.Range{{Base: 0, Size: 64 * MiB}}},
		{"legacy hole", 2 * MiB, Layout{Holes: []addr.Range{{Base: 0xa0000, Size: 0x60000}}}, []addr.Range{{Base: 0, Size: 0xa0000}, {Base: 0x100000, Size: 2*MiB - 0xa0000}}},
		{"hole at zero", 8 * KiB, Layout{Holes: []addr.Range{{Base: 0, Size: 4 * KiB}}}, []addr.Range{{Base: 4 * KiB, Size: 8 * KiB}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := NewSparseHost(0, 8*GiB)
			f, err := NewFrames([]addr.Range{{Base: 0, Size: 8 * GiB}}, nil, host)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Allocate(f, "vm1", tc.size, tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release()
			if m.Size() != tc.size || f.Usage("vm1") != tc.size {
				t.Errorf("size %#x, usage %#x, want %#x", m.Size(), f.Usage("vm1"), tc.size)
			}
			var covered uint64
			for _, r := range m.Regions() {
				covered += r.Size
				found := false
				for _, w := range tc.regions {
					if w.Contains(uint64(r.GPA)) && w.Contains(uint64(r.GPA)+r.Size-1) {
						found = true
					}
				}
				if !found {
					t.Errorf("region %s lies outside the expected %v", r, tc.regions)
				}
			}
			if covered != tc.size {
				t.Errorf("regions cover %#x bytes, want %#x", covered, tc.size)
			}
		})
	}
}

func TestAllocateUsesLargeChunks(t *testing.T) {
	host := NewSparseHost(0, 8*GiB)
	f, err := NewFrames([]addr.Range{{Base: 0, Size: 8 * GiB}}, []addr.Range{{Base: 0, Size: 1 * MiB}}, host)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Allocate(f, "vm1", 2*GiB+2*MiB+4*KiB, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	// 2 x 1 GiB + 1 x 2 MiB + 1 x 4 KiB.
	if n := f.Stats().Chunks; n != 4 {
		t.Errorf("%d chunks, want 4: %v", n, m.Regions())
	}
	for _, r := range m.Regions() {
		if r.Size >= addr.PAGE_SIZE_1G && !addr.IsAligned(uint64(r.HPA), addr.PAGE_SIZE_1G) {
			t.Errorf("region %s: 1 GiB backing not aligned", r)
		}
	}
}

func TestAllocateFallsBackWhenFragmented(t *testing.T) {
	host := NewSparseHost(0, 1*GiB)
	f, err := NewFrames([]addr.Range{{Base: 0, Size: 8 * MiB}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	// Break every 2 MiB block.
	var pins []addr.HPA
	for i := 0; i < 4; i++ {
		p, err := f.Alloc(OwnerKeel, addr.PAGE_SIZE_2M)
		if err != nil {
			t.Fatal(err)
		}
		pins = append(pins, p)
	}
	for _, p := range pins {
		f.Free(p)
		if _, err := f.Alloc(OwnerKeel, addr.PAGE_SIZE_4K); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Allocate(f, "vm1", 4*MiB, Layout{})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Usage("vm1"); got != 4*MiB {
		t.Errorf("usage %#x", got)
	}
	if err := m.Write64(4*MiB-8, 0x1122334455667788); err != nil {
		t.Fatal(err)
	}
	m.Release()
	// Too big: fails and leaks nothing.
	before := f.Stats()
	_, err = Allocate(f, "vm2", 8*MiB, Layout{})
	if !errors.Is(err, ErrNoMemory) || !strings.Contains(err.Error(), "vm2") {
		t.Fatalf("err = %v", err)
	}
	if after := f.Stats(); after.Free != before.Free || f.Usage("vm2") != 0 {
		t.Errorf("failed Allocate leaked: before %s, after %s", before, after)
	}
}

func TestAllocateErrors(t *testing.T) {
	f, _ := newTestFrames(t)
	for _, tc := range []struct {
		name   string
		size   uint64
		layout Layout
		want   string
	}{
		{"zero", 0, DefaultLayout(), "non-zero multiple of 4 KiB"},
		{"unaligned", 4097, DefaultLayout(), "non-zero multiple"},
		{"empty hole", 4096, Layout{Holes: []addr.Range{{Base: 0x1000}}}, "non-empty"},
		{"overlapping holes", 4096, Layout{Holes: []addr.Range{{Base: 0x1000, Size: 0x2000}, {Base: 0x2000, Size: 0x1000}}}, "overlap"},
		{"wrapping hole", 4096, Layout{Holes: []addr.Range{{Base: 0xfffffffffffff000, Size: 0x2000}}}, "wraps"},
		{"does not fit", 8 * KiB, Layout{Holes: []addr.Range{{Base: 0x1000, Size: 0xffffffffffffe000}}}, "does not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Allocate(f, "vm1", tc.size, tc.layout)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "vm1") {
				t.Errorf("err = %v, want one naming vm1 and containing %q", err, tc.want)
			}
			if f.Usage("vm1") != 0 {
				t.Errorf("leaked %#x", f.Usage("vm1"))
			}
		})
	}
}

func newTestGuest(t testing.TB, size uint64) (*GuestMemory, *Frames) {
	t.Helper()
	f, _ := newTestFrames(t)
	m, err := Allocate(f, "vm7", size, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	return m, f
}

func TestReadWrite(t *testing.T) {
	m, _ := newTestGuest(t, 3*GiB+4*MiB)
	defer m.Release()
	for _, tc := range []struct {
		name string
		gpa  addr.GPA
		n    int
		want string // error substring, "" for success
	}{
		{"first byte", 0, 1, ""},
		{"page crossing", 0xffc, 8, ""},
		{"chunk crossing", 1*GiB - 3, 6, ""},
		{"last bytes below hole", 3*GiB - 8, 8, ""},
		{"into the hole", 3*GiB - 4, 8, "outside guest RAM"},
		{"in the hole", 0xfee00000, 4, "outside guest RAM"},
		{"high RAM", 4 * GiB, 16, ""},
		{"past the end", 4*GiB + 4*MiB - 2, 4, "outside guest RAM"},
		{"far away", 1 << 50, 1, "outside guest RAM"},
		{"wraps", ^addr.GPA(0), 2, "outside guest RAM"},
		{"empty", 3 * GiB, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]byte, tc.n)
			for i := range in {
				in[i] = byte(i*7 + 1)
			}
			werr := m.Write(tc.gpa, in)
			out := make([]byte, tc.n)
			rerr := m.Read(tc.gpa, out)
			if tc.want != "" {
				for _, err := range []error{werr, rerr} {
					if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "vm7") || !strings.Contains(err.Error(), tc.gpa.String()) {
						t.Errorf("err = %v; want one naming vm7, %s and %q", err, tc.gpa, tc.want)
					}
					if !errors.Is(err, ErrOutsideRAM) {
						t.Errorf("err = %v does not wrap ErrOutsideRAM", err)
					}
				}
				return
			}
			if werr != nil || rerr != nil {
				t.Fatalf("write %v, read %v", werr, rerr)
			}
			if !bytes.Equal(in, out) {
				t.Errorf("read back % x, wrote % x", out, in)
			}
		})
	}
}

func TestSizedAccess(t *testing.T) {
	m, _ := newTestGuest(t, 8*MiB)
	defer m.Release()
	if err := m.Write64(0xffd, 0x0102030405060708); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func() (uint64, error)
		want uint64
	}{
		{"8", func() (uint64, error) { v, err := m.Read8(0xffd); return uint64(v), err }, 0x08},
		{"16", func() (uint64, error) { v, err := m.Read16(0xffd); return uint64(v), err }, 0x0708},
		{"32", func() (uint64, error) { v, err := m.Read32(0xfff); return uint64(v), err }, 0x03040506},
		{"64", func() (uint64, error) { return m.Read64(0xffd) }, 0x0102030405060708},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.read()
			if err != nil || got != tc.want {
				t.Errorf("got %#x, %v; want %#x", got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		write func() error
		read  func() (uint64, error)
		want  uint64
	}{
		{"8", func() error { return m.Write8(0x10, 0xab) }, func() (uint64, error) { v, err := m.Read8(0x10); return uint64(v), err }, 0xab},
		{"16", func() error { return m.Write16(0x20, 0xabcd) }, func() (uint64, error) { v, err := m.Read16(0x20); return uint64(v), err }, 0xabcd},
		{"32", func() error { return m.Write32(0x30, 0xdeadbeef) }, func() (uint64, error) { v, err := m.Read32(0x30); return uint64(v), err }, 0xdeadbeef},
	} {
		t.Run("write"+tc.name, func(t *testing.T) {
			if err := tc.write(); err != nil {
				t.Fatal(err)
			}
			if got, err := tc.read(); err != nil || got != tc.want {
				t.Errorf("got %#x, %v", got, err)
			}
		})
	}
	if _, err := m.Read32(8*MiB - 2); err == nil {
		t.Error("Read32 straddling the end succeeded")
	}
}

func TestTranslate(t *testing.T) {
	m, _ := newTestGuest(t, 3*GiB+2*MiB)
	defer m.Release()
	regs := m.Regions()
	for _, tc := range []struct {
		name string
		gpa  addr.GPA
		n    uint64
		want string
	}{
		{"start", 0, 4096, ""},
		{"one address", 0x1234, 0, ""},
		{"high", 4*GiB + 4096, 8, ""},
		{"hole", 3 * GiB, 1, "outside guest RAM"},
		{"past end", 4*GiB + 2*MiB - 4, 8, "outside guest RAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hpa, err := m.Translate(tc.gpa, tc.n)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range regs {
				if tc.gpa >= r.GPA && uint64(tc.gpa-r.GPA) < r.Size {
					if want := r.HPA + addr.HPA(tc.gpa-r.GPA); hpa != want {
						t.Errorf("Translate = %s, want %s", hpa, want)
					}
				}
			}
		})
	}
	// A span over two host chunks that are not contiguous.
	if len(regs) > 1 && regs[0].GPA+addr.GPA(regs[0].Size) == regs[1].GPA {
		_, err := m.Translate(regs[1].GPA-4, 8)
		if err == nil || !strings.Contains(err.Error(), "spans host chunks") {
			t.Errorf("cross-chunk translate: %v", err)
		}
	}
}

func TestRelease(t *testing.T) {
	m, f := newTestGuest(t, 4*MiB)
	if err := m.Release(); err != nil {
		t.Fatal(err)
	}
	if f.Usage("vm7") != 0 {
		t.Errorf("usage after release: %#x", f.Usage("vm7"))
	}
	if err := m.Release(); err == nil {
		t.Error("second Release succeeded")
	}
	var b [4]byte
	for _, err := range []error{m.Read(0, b[:]), m.Write(0, b[:])} {
		if !errors.Is(err, ErrReleased) {
			t.Errorf("access after release: %v", err)
		}
	}
	if _, err := m.Translate(0, 1); !errors.Is(err, ErrReleased) {
		t.Errorf("translate after release: %v", err)
	}
	if m.Contains(0, 1) {
		t.Error("released memory contains GPA 0")
	}
}

// TestCreateDestroyLeaksNothing creates and destroys 20 VMs' memory of
// assorted sizes, interleaved with the hypervisor's own page allocations,
// and checks that the accounting returns exactly to its start.
func TestCreateDestroyLeaksNothing(t *testing.T) {
	f, host := newTestFrames(t)
	start := f.Stats()
	var live []*GuestMemory
	for i := 0; i < 20; i++ {
		size := uint64(i%5+1)*64*MiB + uint64(i)*4*KiB
		m, err := Allocate(f, Owner(fmt.Sprintf("vm%d", i)), size, DefaultLayout())
		if err != nil {
			t.Fatalf("vm%d: %v", i, err)
		}
		pt, err := f.Alloc(OwnerKeel, addr.PAGE_SIZE_4K) // e.g. its NPT root
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Write32(0x1000, uint32(i)); err != nil {
			t.Fatal(err)
		}
		live = append(live, m)
		if len(live) > 3 {
			if err := live[0].Release(); err != nil {
				t.Fatal(err)
			}
			live = live[1:]
		}
		if err := f.Free(pt); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range live {
		if err := m.Release(); err != nil {
			t.Fatal(err)
		}
	}
	end := f.Stats()
	if end.Free != start.Free || end.Chunks != start.Chunks || len(end.ByOwner) != 0 || end.Free1G != start.Free1G || end.Free2M != start.Free2M {
		t.Errorf("accounting did not return to its start:\nstart %s\nend   %s", start, end)
	}
	if host.Touched() > 64 {
		t.Errorf("%d host pages still backed after everything was freed and re-zeroed", host.Touched())
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	m, _ := newTestGuest(t, 8*MiB)
	defer m.Release()
	buf := make([]byte, 64)
	m.Write(0x1000, buf) // touch the sparse pages first
	m.Write(0x2000, buf)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"Read", func() { _ = m.Read(0x1ff0, buf) }},
		{"Write", func() { _ = m.Write(0x1ff0, buf) }},
		{"Read32", func() { _, _ = m.Read32(0x1004) }},
		{"Write64", func() { _ = m.Write64(0x1008, 7) }},
		{"Translate", func() { _, _ = m.Translate(0x1000, 8) }},
		{"Contains", func() { _ = m.Contains(0x1000, 8) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(200, tc.fn); n != 0 {
				t.Errorf("%s allocates %v times per call", tc.name, n)
			}
		})
	}
}

func FuzzGuestMemoryAccess(f *testing.F) {
	f.Add(uint64(0), uint16(8), true)
	f.Add(uint64(3*GiB-4), uint16(8), false)
	f.Add(uint64(4*GiB), uint16(4096), true)
	f.Add(^uint64(0), uint16(2), false)
	f.Add(uint64(0xfff), uint16(0), true)
	frames, _ := newTestFrames(f)
	m, err := Allocate(frames, "fuzz", 3*GiB+8*MiB, DefaultLayout())
	if err != nil {
		f.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	f.Fuzz(func(t *testing.T, gpa uint64, n uint16, write bool) {
		p := buf[:n]
		var err error
		if write {
			err = m.Write(addr.GPA(gpa), p)
		} else {
			err = m.Read(addr.GPA(gpa), p)
		}
		inRAM := m.Contains(addr.GPA(gpa), uint64(n))
		if _, ok := addr.GPA(gpa).Add(uint64(n)); !ok {
			inRAM = false
		}
		if (err == nil) != inRAM {
			t.Fatalf("access %#x+%d: err %v but Contains says %v", gpa, n, err, inRAM)
		}
		if err != nil && !errors.Is(err, ErrOutsideRAM) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if hpa, err := m.Translate(addr.GPA(gpa), uint64(n)); err == nil {
			if uint64(hpa) < 1*GiB || uint64(hpa)+uint64(n) > 5*GiB {
				t.Fatalf("Translate(%#x, %d) = %s outside host RAM", gpa, n, hpa)
			}
		}
	})
}

package mem

import (
	"errors"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

// newTestFrames gives an allocator over 4 GiB of host RAM at [1 GiB, 5 GiB)
// with the first 1 MiB reserved.
func newTestFrames(t testing.TB) (*Frames, *SparseHost) {
	t.Helper()
	host := NewSparseHost(1*GiB, 4*GiB)
	f, err := NewFrames([]addr.Range{{Base: 1 * GiB, Size: 4 * GiB}}, []addr.Range{{Base: 1 * GiB, Size: 1 * MiB}}, host)
	if err != nil {
		t.Fatal(err)
	}
	return f, host
}

func TestNewFrames(t *testing.T) {
	host := NewSparseHost(0, 16*GiB)
	for _, tc := range []struct {
		name      string
		ram, res  []addr.Range
		total     uint64
		free1G    int
		wantError string
	}{
		{"one range", []addr.Range{{Base: 0, Size: 2 * GiB}}, nil, 2 * GiB, 2, ""},
		{"unaligned edges shrink", []addr.Range{{Base: 0x1234, Size: 2 * MiB}}, nil, 2*MiB - 4*KiB, 0, ""},
		{"reserved grows", []addr.Range{{Base: 0, Size: 1 * GiB}}, []addr.Range{{Base: 0x10, Size: 0x10}}, 1*GiB - 4*KiB, 0, ""},
		{"two ranges with gap", []addr.Range{{Base: 0, Size: 640 * KiB}, {Base: 1 * MiB, Size: 3*GiB - 1*MiB}}, nil, 3*GiB - 384*KiB, 2, ""},
		{"overlapping ranges", []addr.Range{{Base: 0, Size: 1 * GiB}, {Base: 512 * MiB, Size: 1 * GiB}}, nil, 1*GiB + 512*MiB, 1, ""},
		{"reserved outside RAM ignored", []addr.Range{{Base: 1 * GiB, Size: 1 * GiB}}, []addr.Range{{Base: 0, Size: 4 * KiB}, {Base: 8 * GiB, Size: ^uint64(0) - 8*GiB}}, 1 * GiB, 1, ""},
		{"no RAM", nil, nil, 0, 0, "no whole 4 KiB page"},
		{"tiny RAM", []addr.Range{{Base: 1, Size: 4095}}, nil, 0, 0, "no whole 4 KiB page"},
		{"all reserved", []addr.Range{{Base: 0, Size: 1 * MiB}}, []addr.Range{{Base: 0, Size: 2 * MiB}}, 0, 0, "cover all RAM"},
		{"wrapping RAM", []addr.Range{{Base: ^uint64(0) - 10, Size: 20}}, nil, 0, 0, "wraps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFrames(tc.ram, tc.res, host)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := f.Stats()
			if s.Total != tc.total || s.Free != tc.total || s.Free1G != tc.free1G {
				t.Errorf("stats %s; want total=free=%#x, %d free 1 GiB blocks", s, tc.total, tc.free1G)
			}
		})
	}
	if _, err := NewFrames([]addr.Range{{Base: 0, Size: GiB}}, nil, nil); err == nil {
		t.Error("NewFrames without HostMemory succeeded")
	}
}

func TestAllocAlignmentAndAccounting(t *testing.T) {
	f, _ := newTestFrames(t)
	start := f.Stats()
	for _, tc := range []struct {
		name  string
		owner Owner
		size  uint64
	}{
		{"page", OwnerKeel, addr.PAGE_SIZE_4K},
		{"2M", "vm1", addr.PAGE_SIZE_2M},
		{"1G", "vm1", addr.PAGE_SIZE_1G},
		{"another page", "vm2", addr.PAGE_SIZE_4K},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.Usage(tc.owner)
			hpa, err := f.Alloc(tc.owner, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if !addr.IsAligned(uint64(hpa), tc.size) {
				t.Errorf("%s chunk at %s is not aligned", sizeName(tc.size), hpa)
			}
			if hpa < 1*GiB+1*MiB || uint64(hpa)+tc.size > 5*GiB {
				t.Errorf("chunk at %s lies outside the free RAM", hpa)
			}
			if got := f.Usage(tc.owner); got != before+tc.size {
				t.Errorf("usage of %s = %#x, want %#x", tc.owner, got, before+tc.size)
			}
		})
	}
	s := f.Stats()
	want := uint64(2*addr.PAGE_SIZE_4K + addr.PAGE_SIZE_2M + addr.PAGE_SIZE_1G)
	if s.Free != start.Free-want || s.Chunks != 4 {
		t.Errorf("stats %s; want %#x less free and 4 chunks", s, want)
	}
	if s.ByOwner["vm1"] != addr.PAGE_SIZE_2M+addr.PAGE_SIZE_1G || s.ByOwner[OwnerKeel] != addr.PAGE_SIZE_4K {
		t.Errorf("by owner %v", s.ByOwner)
	}
	if !strings.Contains(s.String(), "vm1 1050624 KiB") {
		t.Errorf("String() = %q", s.String())
	}
}

func TestAllocBadRequests(t *testing.T) {
	f, _ := newTestFrames(t)
	for _, tc := range []struct {
		name  string
		owner Owner
		size  uint64
		want  string
	}{
		{"odd size", "vm1", 8 * KiB, "chunks are 4 KiB, 2 MiB or 1 GiB"},
		{"zero", "vm1", 0, "chunks are"},
		{"no owner", "", addr.PAGE_SIZE_4K, "without an owner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Alloc(tc.owner, tc.size)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAllocPrefersUsedBlocks(t *testing.T) {
	f, _ := newTestFrames(t)
	// The reserved first MiB makes block 0 partial: 4 KiB pages go there
	// first, right after the reservation.
	p, err := f.Alloc(OwnerKeel, addr.PAGE_SIZE_4K)
	if err != nil {
		t.Fatal(err)
	}
	if p != 1*GiB+1*MiB {
		t.Errorf("first page at %s, want just after the reserved MiB", p)
	}
	// 2 MiB chunks come from the partly used first 1 GiB block.
	c, err := f.Alloc(OwnerKeel, addr.PAGE_SIZE_2M)
	if err != nil {
		t.Fatal(err)
	}
	if c != 1*GiB+2*MiB {
		t.Errorf("first 2 MiB chunk at %s, want 0x40200000", c)
	}
	// 1 GiB chunks skip the used block.
	g, err := f.Alloc("vm", addr.PAGE_SIZE_1G)
	if err != nil {
		t.Fatal(err)
	}
	if g != 2*GiB {
		t.Errorf("1 GiB chunk at %s, want 0x80000000", g)
	}
}

func TestExhaustionAndFree(t *testing.T) {
	host := NewSparseHost(0, 8*MiB)
	f, err := NewFrames([]addr.Range{{Base: 0, Size: 4 * MiB}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Alloc("vm", addr.PAGE_SIZE_1G); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("1 GiB from 4 MiB: err = %v, want ErrNoMemory", err)
	}
	a, err := f.Alloc("vm", addr.PAGE_SIZE_2M)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Alloc("vm", addr.PAGE_SIZE_4K)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Alloc("vm", addr.PAGE_SIZE_2M); !errors.Is(err, ErrNoMemory) || !strings.Contains(err.Error(), "smaller pieces") {
		t.Fatalf("2 MiB with one block broken: err = %v", err)
	}
	var pages []addr.HPA
	for {
		q, err := f.Alloc("vm", addr.PAGE_SIZE_4K)
		if err != nil {
			if !errors.Is(err, ErrNoMemory) {
				t.Fatal(err)
			}
			break
		}
		pages = append(pages, q)
	}
	if len(pages) != 511 || f.Stats().Free != 0 {
		t.Fatalf("got %d more pages, free %#x; want 511 and 0", len(pages), f.Stats().Free)
	}
	for _, tc := range []struct {
		name string
		hpa  addr.HPA
		want string
	}{
		{"middle of a chunk", a + 4*KiB, "not the start of an allocated chunk"},
		{"never allocated", 1 * GiB, "not the start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.Free(tc.hpa); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Free(%s) = %v", tc.hpa, err)
			}
		})
	}
	if err := f.Free(p); err != nil {
		t.Fatal(err)
	}
	if err := f.Free(p); err == nil || !strings.Contains(err.Error(), "double free") {
		t.Errorf("double free: %v", err)
	}
	for _, q := range append(pages, a) {
		if err := f.Free(q); err != nil {
			t.Fatal(err)
		}
	}
	s := f.Stats()
	if s.Free != s.Total || s.Chunks != 0 || len(s.ByOwner) != 0 || s.Free2M != 2 {
		t.Errorf("after freeing everything: %s", s)
	}
}

func TestAllocZeroes(t *testing.T) {
	f, host := newTestFrames(t)
	p, err := f.Alloc("vm1", addr.PAGE_SIZE_4K)
	if err != nil {
		t.Fatal(err)
	}
	s, err := host.Slice(p+8, 8)
	if err != nil {
		t.Fatal(err)
	}
	copy(s, "secret!!")
	if err := f.Free(p); err != nil {
		t.Fatal(err)
	}
	q, err := f.Alloc("vm2", addr.PAGE_SIZE_4K)
	if err != nil {
		t.Fatal(err)
	}
	if q != p {
		t.Fatalf("expected the same page back, got %s vs %s", q, p)
	}
	s, _ = host.Slice(q, addr.PAGE_SIZE_4K)
	for i, b := range s {
		if b != 0 {
			t.Fatalf("byte %d of the reallocated page is %#x: data leaked between owners", i, b)
		}
	}
}

// failingHost refuses to zero.
type failingHost struct{ SparseHost }

func (h *failingHost) Zero(addr.HPA, uint64) error { return errors.New("zero failed") }

func TestAllocZeroFailure(t *testing.T) {
	h := &failingHost{}
	f, err := NewFrames([]addr.Range{{Base: 0, Size: 4 * MiB}}, nil, h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Alloc("vm", addr.PAGE_SIZE_4K); err == nil || !strings.Contains(err.Error(), "zero failed") {
		t.Fatalf("err = %v", err)
	}
	if s := f.Stats(); s.Free != s.Total || s.Chunks != 0 {
		t.Errorf("failed allocation leaked: %s", s)
	}
}

func TestSparseHost(t *testing.T) {
	h := NewSparseHost(0x1000, 0x3000)
	for _, tc := range []struct {
		name string
		hpa  addr.HPA
		n    uint64
		want string
	}{
		{"inside", 0x1000, 0x1000, ""},
		{"below", 0, 1, "outside"},
		{"above", 0x4000, 1, "outside"},
		{"crosses page", 0x1ff0, 0x20, "crosses"},
		{"wraps", ^addr.HPA(0), 2, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Slice(tc.hpa, tc.n)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Slice(%s, %#x) = %v, want %q", tc.hpa, tc.n, err, tc.want)
			}
		})
	}
	if h.Touched() != 1 {
		t.Errorf("touched %d pages", h.Touched())
	}
	if err := h.Zero(0x1000, 0x3000); err != nil || h.Touched() != 0 {
		t.Errorf("Zero: %v, touched %d", err, h.Touched())
	}
	if err := h.Zero(0x1001, 0x1000); err == nil {
		t.Error("unaligned Zero succeeded")
	}
}

// FuzzFrames runs fuzzer-chosen allocation and free sequences and checks
// the allocator's invariants: chunks are aligned, inside RAM, outside the
// reserved range, never overlapping, and the accounting always adds up.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 0x80, 1, 0x81, 0x82})
	f.Add([]byte{2, 2, 2, 2, 1, 1, 1, 0x80, 0x80, 0x83})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0x84, 0x83, 0x82, 0x81})
	f.Fuzz(func(t *testing.T, ops []byte) {
		host := NewSparseHost(0, 4*GiB)
		fr, err := NewFrames([]addr.Range{{Base: 1*GiB + 3*MiB, Size: 2*GiB + 5*MiB}}, []addr.Range{{Base: 1*GiB + 64*MiB, Size: 9 * MiB}}, host)
		if err != nil {
			t.Fatal(err)
		}
		type chunk struct {
			hpa  addr.HPA
			size uint64
		}
		var live []chunk
		var used uint64
		sizes := []uint64{addr.PAGE_SIZE_4K, addr.PAGE_SIZE_2M, addr.PAGE_SIZE_1G}
		for _, op := range ops {
			if op&0x80 != 0 && len(live) > 0 {
				i := int(op&0x7f) % len(live)
				if err := fr.Free(live[i].hpa); err != nil {
					t.Fatal(err)
				}
				used -= live[i].size
				live = append(live[:i], live[i+1:]...)
				continue
			}
			size := sizes[int(op)%3]
			hpa, err := fr.Alloc("fuzz", size)
			if err != nil {
				if !errors.Is(err, ErrNoMemory) {
					t.Fatal(err)
				}
				continue
			}
			c := addr.Range{Base: uint64(hpa), Size: size}
			if !addr.IsAligned(uint64(hpa), size) || c.Base < 1*GiB+3*MiB || c.Last() >= 3*GiB+8*MiB {
				t.Fatalf("bad chunk %s", c)
			}
			if c.Overlaps(addr.Range{Base: 1*GiB + 64*MiB, Size: 9 * MiB}) {
				t.Fatalf("chunk %s overlaps the reserved range", c)
			}
			for _, l := range live {
				if c.Overlaps(addr.Range{Base: uint64(l.hpa), Size: l.size}) {
					t.Fatalf("chunk %s overlaps a live chunk at %s", c, l.hpa)
				}
			}
			live = append(live, chunk{hpa, size})
			used += size
		}
		s := fr.Stats()
		if s.Total-s.Free != used || fr.Usage("fuzz") != used || s.Chunks != len(live) {
			t.Fatalf("accounting %s, expected %#x used in %d chunks", s, used, len(live))
		}
	})
}

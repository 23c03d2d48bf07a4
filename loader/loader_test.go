package loader_test

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
)

// GuestMemory is what the kernel hands the loaders.
var _ loader.Memory = (*mem.GuestMemory)(nil)

const (
	MiB = 1 << 20
	GiB = 1 << 30
)

func rg(base, size uint64) addr.Range { return addr.Range{Base: base, Size: size} }

func e(base, size uint64, t loader.MemoryType) loader.MapEntry {
	return loader.MapEntry{Range: rg(base, size), Type: t}
}

// regionsMem is a Memory with fixed regions, for RAM's error cases.
type regionsMem []mem.Region

func (r regionsMem) Write(addr.GPA, []byte) error { return nil }
func (r regionsMem) Regions() []mem.Region        { return r }

func TestRAM(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       loader.Memory
		want    []addr.Range
		wantErr string
	}{
		{"flat merged across 1 GiB chunks", testmem.Flat(0, 3*GiB), []addr.Range{rg(0, 3*GiB)}, ""},
		{"hole", testmem.New(0, rg(0, 3*GiB), rg(4*GiB, 2*GiB)), []addr.Range{rg(0, 3*GiB), rg(4*GiB, 2*GiB)}, ""},
		{"unsorted", regionsMem{{GPA: 0x2000, Size: 0x1000}, {GPA: 0, Size: 0x2000}}, []addr.Range{rg(0, 0x3000)}, ""},
		{"none", regionsMem{}, nil, "no guest RAM"},
		{"overlap", regionsMem{{GPA: 0, Size: 0x2000}, {GPA: 0x1000, Size: 0x2000}}, nil, "overlap"},
		{"wrap", regionsMem{{GPA: 0xFFFFFFFFFFFFF000, Size: 0x2000}}, nil, "wraps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loader.RAM(tc.m)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBuildMap(t *testing.T) {
	const (
		RAM = loader.E820_TYPE_RAM
		RES = loader.E820_TYPE_RESERVED
		ACP = loader.E820_TYPE_ACPI
		NVS = loader.E820_TYPE_NVS
	)
	legacy := []loader.MapEntry{e(0, 0x9FC00, RAM), e(0x9FC00, 0x400, RES), e(0xF0000, 0x10000, RES)}
	for _, tc := range []struct {
		name     string
		ram      []addr.Range
		reserved []loader.MapEntry
		want     []loader.MapEntry
		wantErr  string
	}{
		{
			name: "flat 64 MiB",
			ram:  []addr.Range{rg(0, 64*MiB)},
			want: append(legacy[:3:3], e(MiB, 63*MiB, RAM)),
		},
		{
			name: "PCI hole and high RAM",
			ram:  []addr.Range{rg(0, 3*GiB), rg(4*GiB, 3*GiB)},
			want: append(legacy[:3:3], e(MiB, 3*GiB-MiB, RAM), e(4*GiB, 3*GiB, RAM)),
		},
		{
			name:     "ACPI tables in RAM, MMIO in the hole",
			ram:      []addr.Range{rg(0, 3*GiB), rg(4*GiB, GiB)},
			reserved: []loader.MapEntry{e(0xFEC00000, 0x1000, RES), e(0xBFFF0000, 0x10000, ACP)},
			want: append(legacy[:3:3], e(MiB, 3*GiB-MiB-0x10000, RAM), e(0xBFFF0000, 0x10000, ACP),
				e(0xFEC00000, 0x1000, RES), e(4*GiB, GiB, RAM)),
		},
		{
			name:     "reserved over the legacy areas wins",
			ram:      []addr.Range{rg(0, 16*MiB)},
			reserved: []loader.MapEntry{e(0xE0000, 0x20000, NVS)},
			want:     []loader.MapEntry{e(0, 0x9FC00, RAM), e(0x9FC00, 0x400, RES), e(0xE0000, 0x20000, NVS), e(MiB, 15*MiB, RAM)},
		},
		{
			name:     "adjacent same type merged",
			ram:      []addr.Range{rg(0, 16*MiB)},
			reserved: []loader.MapEntry{e(0xA0000, 0x50000, RES)},
			want:     []loader.MapEntry{e(0, 0x9FC00, RAM), e(0x9FC00, 0x60400, RES), e(MiB, 15*MiB, RAM)},
		},
		{
			name: "RAM only above 1 MiB",
			ram:  []addr.Range{rg(MiB, MiB)},
			want: []loader.MapEntry{e(0x9FC00, 0x400, RES), e(0xF0000, 0x10000, RES), e(MiB, MiB, RAM)},
		},
		{name: "reserved overlap", ram: []addr.Range{rg(0, 16*MiB)}, reserved: []loader.MapEntry{e(0x200000, 0x2000, RES), e(0x201000, 0x1000, ACP)}, wantErr: "overlap"},
		{name: "reserved as RAM", ram: []addr.Range{rg(0, 16*MiB)}, reserved: []loader.MapEntry{e(0x200000, 0x2000, RAM)}, wantErr: "want reserved"},
		{name: "reserved empty", ram: []addr.Range{rg(0, 16*MiB)}, reserved: []loader.MapEntry{e(0x200000, 0, RES)}, wantErr: "empty"},
		{name: "reserved wraps", ram: []addr.Range{rg(0, 16*MiB)}, reserved: []loader.MapEntry{e(^uint64(0)-10, 20, RES)}, wantErr: "wraps"},
		{name: "too many", ram: []addr.Range{rg(0, 16*MiB)}, reserved: manyReserved(129), wantErr: "at most 128"},
		{name: "map too long", ram: []addr.Range{rg(0, 16*MiB)}, reserved: manyReserved(126), wantErr: "entries, at most 128"},
		{name: "RAM unsorted", ram: []addr.Range{rg(MiB, MiB), rg(0, 2*MiB)}, wantErr: "not sorted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loader.BuildMap(tc.ram, tc.reserved)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// manyReserved returns n one-page reserved ranges with gaps, from 2 MiB.
func manyReserved(n int) []loader.MapEntry {
	var r []loader.MapEntry
	for i := range n {
		r = append(r, e(2*MiB+uint64(i)*0x2000, 0x1000, loader.E820_TYPE_RESERVED))
	}
	return r
}

func TestSpace(t *testing.T) {
	memMap, err := loader.BuildMap([]addr.Range{rg(0, 64*MiB)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := loader.NewSpace(memMap)
	if err := sp.Take("a", rg(0x1000, 0x1000)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    addr.Range
		want string
	}{
		{"overlap", rg(0x1800, 0x1000), "b [0x1800-0x27ff] overlaps the a [0x1000-0x1fff]"},
		{"EBDA", rg(0x9F000, 0x1000), "not in usable guest RAM"},
		{"VGA hole", rg(0xB8000, 0x1000), "not in usable guest RAM"},
		{"past RAM", rg(64*MiB-0x1000, 0x2000), "not in usable guest RAM"},
		{"empty", rg(0x5000, 0), "empty"},
		{"wrap", rg(^uint64(0)-0xFFF, 0x2000), "wraps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sp.Take("b", tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Take(%s) = %v, want an error containing %q", tc.r, err, tc.want)
			}
		})
	}

	t.Run("lowest", func(t *testing.T) {
		for _, tc := range []struct {
			size, align, from, limit uint64
			want                     uint64
			ok                       bool
		}{
			{0x1000, 0x1000, 0, 1 << 32, 0, true},
			{0x1000, 0x1000, 0x1000, 1 << 32, 0x2000, true},
			{0x200000, 0x200000, 0, 1 << 32, 0x200000, true},
			{0x1000, 0x1000, 0x9F000, 1 << 32, 0x100000, true}, // skips the legacy areas
			{0x1000, 0x1000, 0, 0x1000, 0, true},
			{0x1000, 0x1000, 0x1000, 0x2000, 0, false},
			{64 * MiB, 0x1000, 0, 1 << 32, 0, false},
			{0, 0x1000, 0, 1 << 32, 0, false},
			{0x1000, 3, 0, 1 << 32, 0, false},
		} {
			got, ok := sp.Lowest(tc.size, tc.align, tc.from, tc.limit)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Lowest(%#x, %#x, %#x, %#x) = %#x, %v; want %#x, %v", tc.size, tc.align, tc.from, tc.limit, got, ok, tc.want, tc.ok)
			}
		}
	})
	t.Run("highest", func(t *testing.T) {
		for _, tc := range []struct {
			size, align, from, limit uint64
			want                     uint64
			ok                       bool
		}{
			{0x1000, 0x1000, 0, 1 << 32, 64*MiB - 0x1000, true},
			{0x1800, 0x1000, 0, 1 << 32, 64*MiB - 0x2000, true},
			{0x1000, 0x1000, 0, 32*MiB + 0x800, 32*MiB - 0x1000, true},
			{0x1000, 0x1000, 0, 0x100800, 0x9E000, true}, // below 1 MiB the last free page ends at 0x9F000 (EBDA at 0x9FC00)
			{0x1000, 0x1000, MiB, 0x100800, 0, false},
			{0x1000, 0x1000, 0, 0x1000, 0, true},
			{0x2000, 0x1000, 0, 0x3000, 0, false}, // 0x1000 is taken
			{63 * MiB, 0x1000, 0, 1 << 32, MiB, true},
			{63 * MiB, 0x1000, MiB + 1, 1 << 32, 0, false},
			{63*MiB + 0x1000, 0x1000, 0, 1 << 32, 0, false},
			{0, 0x1000, 0, 1 << 32, 0, false},
		} {
			got, ok := sp.Highest(tc.size, tc.align, tc.from, tc.limit)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Highest(%#x, %#x, %#x, %#x) = %#x, %v; want %#x, %v", tc.size, tc.align, tc.from, tc.limit, got, ok, tc.want, tc.ok)
			}
		}
	})
	t.Run("write only into placements", func(t *testing.T) {
		m := testmem.Flat(0, 64*MiB)
		if err := sp.Write(m, 0x1000, make([]byte, 0x1000)); err != nil {
			t.Errorf("write inside a placement: %v", err)
		}
		if err := sp.Write(m, 0x1800, make([]byte, 0x1000)); err == nil {
			t.Error("write past a placement's end succeeded")
		}
		if err := sp.Zero(m, rg(0x3000, 0x10)); err == nil {
			t.Error("zeroing outside every placement succeeded")
		}
		if len(m.Writes) != 1 {
			t.Errorf("writes = %v, want one", m.Writes)
		}
	})
	t.Run("placed sorted", func(t *testing.T) {
		if err := sp.Take("c", rg(0x300000, 0x1000)); err != nil {
			t.Fatal(err)
		}
		if err := sp.Take("d", rg(0x200000, 0x1000)); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range sp.Placed() {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, ","); got != "a,d,c" {
			t.Errorf("placed = %s, want a,d,c", got)
		}
		if n := sp.LargestBelow(1 << 32); n != 64*MiB-0x301000 {
			t.Errorf("LargestBelow = %#x, want %#x", n, 64*MiB-0x301000)
		}
	})
}

func TestDescriptor(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"code64", loader.Descriptor(loader.CodeSegment64(0x10)), 0x00AF9B000000FFFF},
		{"code32", loader.Descriptor(loader.CodeSegment32(0x08)), 0x00CF9B000000FFFF},
		{"data", loader.Descriptor(loader.DataSegment(0x18)), 0x00CF93000000FFFF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("descriptor %#016x, want %#016x", tc.got, tc.want)
			}
		})
	}
	g := loader.GDT(loader.CodeSegment64(0x10), loader.DataSegment(0x18))
	if len(g) != 32 {
		t.Fatalf("GDT is %d bytes, want 32", len(g))
	}
	for i, want := range []uint64{0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF} {
		if got := binary.LittleEndian.Uint64(g[8*i:]); got != want {
			t.Errorf("GDT[%d] = %#016x, want %#016x", i, got, want)
		}
	}
}

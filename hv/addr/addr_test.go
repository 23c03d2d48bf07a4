package addr

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"gpa", GPA(0xfee00000).String(), "GPA 0xfee00000"},
		{"hpa", HPA(0x1000).String(), "HPA 0x1000"},
		{"gva", GVA(0xffffffff80000000).String(), "GVA 0xffffffff80000000"},
		{"zero", GPA(0).String(), "GPA 0x0"},
		{"range", Range{Base: 0x1000, Size: 0x1000}.String(), "[0x1000-0x1fff]"},
		{"range to 2^64", Range{Base: 0xffffffffffff0000, Size: 0x10000}.String(), "[0xffffffffffff0000-0xffffffffffffffff]"},
		{"empty range", Range{Base: 5}.String(), "[0x5, empty]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestAlign(t *testing.T) {
	for _, tc := range []struct {
		name      string
		x, align  uint64
		down, up  uint64
		upOK, isA bool
	}{
		{"aligned", 0x2000, PAGE_SIZE_4K, 0x2000, 0x2000, true, true},
		{"mid", 0x2001, PAGE_SIZE_4K, 0x2000, 0x3000, true, false},
		{"2M", 0x300000, PAGE_SIZE_2M, 0x200000, 0x400000, true, false},
		{"1G", PAGE_SIZE_1G, PAGE_SIZE_1G, PAGE_SIZE_1G, PAGE_SIZE_1G, true, true},
		{"overflow", ^uint64(0), PAGE_SIZE_4K, ^uint64(0) &^ 0xfff, 0, false, false},
		{"zero", 0, PAGE_SIZE_1G, 0, 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AlignDown(tc.x, tc.align); got != tc.down {
				t.Errorf("AlignDown = %#x, want %#x", got, tc.down)
			}
			up, ok := AlignUp(tc.x, tc.align)
			if ok != tc.upOK || (ok && up != tc.up) {
				t.Errorf("AlignUp = %#x, %v; want %#x, %v", up, ok, tc.up, tc.upOK)
			}
			if got := IsAligned(tc.x, tc.align); got != tc.isA {
				t.Errorf("IsAligned = %v, want %v", got, tc.isA)
			}
		})
	}
}

func TestAddAndOffset(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    uint64
		n    uint64
		sum  uint64
		ok   bool
	}{
		{"simple", 0x1000, 0x10, 0x1010, true},
		{"to top", ^uint64(0) - 1, 1, ^uint64(0), true},
		{"wrap", ^uint64(0), 1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := GPA(tc.a).Add(tc.n)
			h, ok2 := HPA(tc.a).Add(tc.n)
			v, ok3 := GVA(tc.a).Add(tc.n)
			if uint64(g) != tc.sum || ok != tc.ok || uint64(h) != tc.sum || ok2 != tc.ok || uint64(v) != tc.sum || ok3 != tc.ok {
				t.Errorf("Add(%#x, %#x) = %#x %v / %#x %v / %#x %v; want %#x %v", tc.a, tc.n, g, ok, h, ok2, v, ok3, tc.sum, tc.ok)
			}
		})
	}
	if GPA(0x1234).PageOffset() != 0x234 || HPA(0x1fff).PageOffset() != 0xfff || GVA(0x1000).PageOffset() != 0 {
		t.Error("PageOffset wrong")
	}
	if !IsPow2(PAGE_SIZE_2M) || IsPow2(0) || IsPow2(3) {
		t.Error("IsPow2 wrong")
	}
}

func TestRange(t *testing.T) {
	a := Range{Base: 0x1000, Size: 0x1000}
	for _, tc := range []struct {
		name    string
		other   Range
		overlap bool
	}{
		{"same", a, true},
		{"before", Range{Base: 0, Size: 0x1000}, false},
		{"after", Range{Base: 0x2000, Size: 0x1000}, false},
		{"inside", Range{Base: 0x1800, Size: 1}, true},
		{"straddle end", Range{Base: 0x1fff, Size: 2}, true},
		{"empty", Range{Base: 0x1800}, false},
		{"to 2^64", Range{Base: 0x1500, Size: ^uint64(0) - 0x14ff}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Overlaps(tc.other); got != tc.overlap {
				t.Errorf("%s.Overlaps(%s) = %v", a, tc.other, got)
			}
			if got := tc.other.Overlaps(a); got != tc.overlap {
				t.Errorf("%s.Overlaps(%s) = %v (reversed)", tc.other, a, got)
			}
		})
	}
	if !a.Contains(0x1000) || !a.Contains(0x1fff) || a.Contains(0x2000) || a.Contains(0xfff) {
		t.Error("Contains wrong")
	}
	if e, ok := a.End(); !ok || e != 0x2000 {
		t.Errorf("End = %#x %v", e, ok)
	}
	if _, ok := (Range{Base: ^uint64(0), Size: 2}).End(); ok {
		t.Error("End of a wrapping range reported ok")
	}
}

package nested

import (
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

var testFormat = Format{Name: "test", Present: 1, Large: 1 << 7, Addr: 0x000ffffffffff000, Table: 7, Leaf: 7, Huge2M: true, Huge1G: true}

func TestMapLookupFree(t *testing.T) {
	host := mem.NewSparseHost(1<<32, 8<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 32, Size: 8 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	free := frames.Stats().Free
	tb, err := New(frames, "vm", testFormat)
	if err != nil {
		t.Fatal(err)
	}
	regions := []mem.Region{
		{GPA: 0, HPA: 1 << 32, Size: 1 << 30},                     // one 1 GiB leaf
		{GPA: 1 << 30, HPA: 1<<32 + 1<<30 + 2<<20, Size: 4 << 20}, // 2 MiB leaves (HPA not 1 GiB aligned)
		{GPA: 2 << 30, HPA: 1<<32 + 3<<30 + 4096, Size: 8192},     // 4 KiB leaves
	}
	for _, r := range regions {
		if err := tb.Map(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		gpa, hpa, size uint64
		ok             bool
	}{
		{0x1234, 1<<32 + 0x1234, 1 << 30, true},
		{1<<30 + 3<<20 + 5, 1<<32 + 1<<30 + 5<<20 + 5, 2 << 20, true},
		{2<<30 + 4096 + 7, 1<<32 + 3<<30 + 8192 + 7, 4096, true},
		{3 << 30, 0, 0, false},
	} {
		hpa, size, leaf, ok := tb.Lookup(tc.gpa)
		if ok != tc.ok || hpa != tc.hpa || size != tc.size || (ok && leaf&7 != 7) {
			t.Errorf("Lookup(%#x) = %#x, %#x, %#x, %v; want %#x, %#x, %v", tc.gpa, hpa, size, leaf, ok, tc.hpa, tc.size, tc.ok)
		}
	}
	if err := tb.Map(mem.Region{GPA: 0x1000, HPA: 1 << 32, Size: 4096}); err == nil || !strings.Contains(err.Error(), "large page already maps") {
		t.Errorf("mapping inside a 1 GiB leaf: %v", err)
	}
	if err := tb.Map(mem.Region{GPA: 0x800, HPA: 1 << 32, Size: 4096}); err == nil || !strings.Contains(err.Error(), "not 4 KiB aligned") {
		t.Errorf("unaligned region: %v", err)
	}
	if err := tb.Free(); err != nil {
		t.Fatal(err)
	}
	if got := frames.Stats().Free; got != free {
		t.Errorf("free memory %d after Free, %d before", got, free)
	}
}

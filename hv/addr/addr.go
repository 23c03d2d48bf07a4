// Package addr defines Keel's typed addresses — guest physical (GPA), host
// physical (HPA) and guest virtual (GVA) — and the x86-64 page sizes with
// alignment helpers.
//
// Keeping the three address spaces in distinct types lets the compiler catch
// the classic hypervisor bug of using a guest address as a host one. The
// package is pure Go and host-testable: it runs under plain `go test`.
package addr

import "fmt"

// Page sizes of the x86-64 4-level paging structures, shared by guest paging,
// AMD nested paging and Intel EPT (AMD64 APM Vol. 2, §5.3 "Long-Mode Page
// Translation"; Intel SDM Vol. 3A, §4.5 "4-Level Paging and 5-Level Paging",
// §29.3.2 "EPT Translation Mechanism").
const (
	// PAGE_SIZE_4K is the size of a page mapped by a PTE.
	PAGE_SIZE_4K = 1 << PAGE_SHIFT_4K
	// PAGE_SIZE_2M is the size of a large page mapped by a PDE with PS=1.
	PAGE_SIZE_2M = 1 << PAGE_SHIFT_2M
	// PAGE_SIZE_1G is the size of a huge page mapped by a PDPTE with PS=1.
	PAGE_SIZE_1G = 1 << PAGE_SHIFT_1G

	// PAGE_SHIFT_4K is log2(PAGE_SIZE_4K).
	PAGE_SHIFT_4K = 12
	// PAGE_SHIFT_2M is log2(PAGE_SIZE_2M).
	PAGE_SHIFT_2M = 21
	// PAGE_SHIFT_1G is log2(PAGE_SIZE_1G).
	PAGE_SHIFT_1G = 30
)

// GPA is a guest physical address: what the guest puts on its address bus,
// translated by nested paging (NPT) or EPT into an HPA.
type GPA uint64

// HPA is a host physical address: a location in the machine's RAM or MMIO.
type HPA uint64

// GVA is a guest virtual (linear) address, translated by the guest's own
// page tables into a GPA.
type GVA uint64

// String formats the address as "GPA 0x1000".
func (a GPA) String() string { return fmt.Sprintf("GPA %#x", uint64(a)) }

// String formats the address as "HPA 0x1000".
func (a HPA) String() string { return fmt.Sprintf("HPA %#x", uint64(a)) }

// String formats the address as "GVA 0x1000".
func (a GVA) String() string { return fmt.Sprintf("GVA %#x", uint64(a)) }

// Add returns a+n and whether the sum did not wrap around 2^64.
func (a GPA) Add(n uint64) (GPA, bool) { s := uint64(a) + n; return GPA(s), s >= uint64(a) }

// Add returns a+n and whether the sum did not wrap around 2^64.
func (a HPA) Add(n uint64) (HPA, bool) { s := uint64(a) + n; return HPA(s), s >= uint64(a) }

// Add returns a+n and whether the sum did not wrap around 2^64.
func (a GVA) Add(n uint64) (GVA, bool) { s := uint64(a) + n; return GVA(s), s >= uint64(a) }

// PageOffset returns the offset of a within its 4 KiB page.
func (a GPA) PageOffset() uint64 { return uint64(a) & (PAGE_SIZE_4K - 1) }

// PageOffset returns the offset of a within its 4 KiB page.
func (a HPA) PageOffset() uint64 { return uint64(a) & (PAGE_SIZE_4K - 1) }

// PageOffset returns the offset of a within its 4 KiB page.
func (a GVA) PageOffset() uint64 { return uint64(a) & (PAGE_SIZE_4K - 1) }

// IsPow2 reports whether x is a power of two (0 is not).
func IsPow2(x uint64) bool { return x != 0 && x&(x-1) == 0 }

// IsAligned reports whether x is a multiple of align, which must be a power
// of two.
func IsAligned(x, align uint64) bool { return x&(align-1) == 0 }

// AlignDown rounds x down to a multiple of align, which must be a power of
// two.
func AlignDown(x, align uint64) uint64 { return x &^ (align - 1) }

// AlignUp rounds x up to a multiple of align, which must be a power of two,
// and reports false if the result does not fit in 64 bits.
func AlignUp(x, align uint64) (uint64, bool) {
	r := (x + align - 1) &^ (align - 1)
	return r, r >= x
}

// Range is a half-open range [Base, Base+Size) of addresses of one kind,
// expressed as plain integers so that it serves GPA, HPA and port ranges.
type Range struct {
	// Base is the first address of the range.
	Base uint64
	// Size is the number of bytes (or ports) in the range.
	Size uint64
}

// End returns the first address after the range and whether it fits in 64
// bits; a range reaching exactly 2^64 reports (0, false).
func (r Range) End() (uint64, bool) {
	e := r.Base + r.Size
	return e, e >= r.Base
}

// Last returns the last address in the range. The range must not be empty.
func (r Range) Last() uint64 { return r.Base + r.Size - 1 }

// Contains reports whether x lies in the range.
func (r Range) Contains(x uint64) bool { return r.Size != 0 && x >= r.Base && x-r.Base < r.Size }

// Overlaps reports whether the two ranges share at least one address.
func (r Range) Overlaps(o Range) bool {
	if r.Size == 0 || o.Size == 0 {
		return false
	}
	return r.Base <= o.Last() && o.Base <= r.Last()
}

// String formats the range as "[0x1000-0x1fff]" (inclusive last address, so
// that a range ending at 2^64 prints too).
func (r Range) String() string {
	if r.Size == 0 {
		return fmt.Sprintf("[%#x, empty]", r.Base)
	}
	return fmt.Sprintf("[%#x-%#x]", r.Base, r.Last())
}

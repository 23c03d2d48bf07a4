package svm

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// Nested page tables (APM Vol. 2, 15.25 "Nested Paging"): the guest-physical
// to host-physical map has the format of 4-level long-mode page tables. All
// accesses through it are user accesses, so every entry sets U/S.
const (
	NPT_P    = 1 << 0
	NPT_RW   = 1 << 1
	NPT_US   = 1 << 2
	NPT_PS   = 1 << 7
	NPT_ADDR = 0x000ffffffffff000
	// NPT_LEAF is a present, writable, user leaf or table entry.
	NPT_TABLE = NPT_P | NPT_RW | NPT_US
)

// npt builds and owns one VM's nested page tables.
type npt struct {
	frames *mem.Frames
	owner  mem.Owner
	root   addr.HPA
	pages  []addr.HPA
	huge   bool // 1 GiB pages allowed
}

// newNPT allocates an empty root table.
func newNPT(frames *mem.Frames, owner mem.Owner, huge bool) (*npt, error) {
	t := &npt{frames: frames, owner: owner, huge: huge}
	root, err := t.page()
	if err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

func (t *npt) page() (addr.HPA, error) {
	hpa, err := t.frames.Alloc(t.owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return 0, fmt.Errorf("svm: nested page table for %s: %w", t.owner, err)
	}
	t.pages = append(t.pages, hpa)
	return hpa, nil
}

// entry returns the table page at hpa as a slice of entries' bytes.
func (t *npt) table(hpa addr.HPA) ([]byte, error) {
	return t.frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
}

// next returns the table that entry i of table tbl points to, creating it.
func (t *npt) next(tbl []byte, i uint64) ([]byte, error) {
	e := le.Uint64(tbl[i*8:])
	if e&NPT_P != 0 {
		if e&NPT_PS != 0 {
			return nil, fmt.Errorf("svm: nested page tables: a large page already maps this range")
		}
		return t.table(addr.HPA(e & NPT_ADDR))
	}
	hpa, err := t.page()
	if err != nil {
		return nil, err
	}
	le.PutUint64(tbl[i*8:], uint64(hpa)|NPT_TABLE)
	return t.table(hpa)
}

// mapRegion maps [gpa, gpa+size) to [hpa, hpa+size) with the largest pages
// both addresses' alignment allows.
func (t *npt) mapRegion(r mem.Region) error {
	gpa, hpa, end := uint64(r.GPA), uint64(r.HPA), uint64(r.GPA)+r.Size
	if gpa%addr.PAGE_SIZE_4K != 0 || hpa%addr.PAGE_SIZE_4K != 0 || r.Size%addr.PAGE_SIZE_4K != 0 {
		return fmt.Errorf("svm: region %s is not 4 KiB aligned", r)
	}
	for gpa < end {
		pml4, err := t.table(t.root)
		if err != nil {
			return err
		}
		pdpt, err := t.next(pml4, gpa>>39&511)
		if err != nil {
			return err
		}
		fits := func(size uint64) bool { return gpa%size == 0 && hpa%size == 0 && gpa+size <= end }
		if t.huge && fits(addr.PAGE_SIZE_1G) {
			le.PutUint64(pdpt[(gpa>>30&511)*8:], hpa|NPT_TABLE|NPT_PS)
			gpa, hpa = gpa+addr.PAGE_SIZE_1G, hpa+addr.PAGE_SIZE_1G
			continue
		}
		pd, err := t.next(pdpt, gpa>>30&511)
		if err != nil {
			return err
		}
		if fits(addr.PAGE_SIZE_2M) {
			le.PutUint64(pd[(gpa>>21&511)*8:], hpa|NPT_TABLE|NPT_PS)
			gpa, hpa = gpa+addr.PAGE_SIZE_2M, hpa+addr.PAGE_SIZE_2M
			continue
		}
		pt, err := t.next(pd, gpa>>21&511)
		if err != nil {
			return err
		}
		le.PutUint64(pt[(gpa>>12&511)*8:], hpa|NPT_TABLE)
		gpa, hpa = gpa+addr.PAGE_SIZE_4K, hpa+addr.PAGE_SIZE_4K
	}
	return nil
}

// lookup walks the tables for gpa (tests and diagnostics): the HPA and
// the page size, or ok false when unmapped.
func (t *npt) lookup(gpa uint64) (hpa uint64, size uint64, ok bool) {
	tbl, err := t.table(t.root)
	for level, shift := 0, uint(39); err == nil && level < 4; level, shift = level+1, shift-9 {
		e := le.Uint64(tbl[(gpa>>shift&511)*8:])
		if e&NPT_P == 0 {
			return 0, 0, false
		}
		if e&NPT_PS != 0 || level == 3 {
			size = 1 << shift
			return e&NPT_ADDR&^(size-1) | gpa&(size-1), size, true
		}
		tbl, err = t.table(addr.HPA(e & NPT_ADDR))
	}
	return 0, 0, false
}

// free returns every table page.
func (t *npt) free() error {
	var first error
	for _, p := range t.pages {
		if err := t.frames.Free(p); err != nil && first == nil {
			first = err
		}
	}
	t.pages = nil
	return first
}

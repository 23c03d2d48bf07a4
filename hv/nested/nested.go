// Package nested builds the tables that map guest-physical to host-physical
// addresses for hardware nested paging. AMD's nested page tables (APM Vol.
// 2, 15.25) and Intel's extended page tables (SDM Vol. 3C, 29.3) share the
// layout — a 4-level walk of 4 KiB tables of 512 8-byte entries, with
// 1 GiB leaves in the third level and 2 MiB leaves in the second — and
// differ only in the entry bits, which a Format gives. svm/ and vmx/ each
// keep their Format next to their hardware constants.
//
// The package is pure Go and host-testable: tables live in frames from a
// mem.Frames, reached through its HostMemory.
package nested

import (
	"encoding/binary"
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// Format is the entry format of one vendor's tables.
type Format struct {
	// Name names the tables in errors ("svm: nested page table").
	Name string
	// Present are the bits any of which make an entry present.
	Present uint64
	// Large is the page-size bit of 2 MiB and 1 GiB leaves.
	Large uint64
	// Addr masks the address in an entry.
	Addr uint64
	// Table are the flags of an entry that points to a table; Leaf those
	// of a leaf (Large is added for large leaves).
	Table, Leaf uint64
	// Huge2M and Huge1G allow 2 MiB and 1 GiB leaves.
	Huge2M, Huge1G bool
}

var le = binary.LittleEndian

// Tables is one VM's nested tables.
type Tables struct {
	f      Format
	frames *mem.Frames
	owner  mem.Owner
	// Root is the top-level table (the PML4): NPT's nCR3, EPT's EPTP
	// address.
	Root  addr.HPA
	pages []addr.HPA
}

// New allocates an empty root table, charged to owner.
func New(frames *mem.Frames, owner mem.Owner, f Format) (*Tables, error) {
	t := &Tables{f: f, frames: frames, owner: owner}
	root, err := t.page()
	if err != nil {
		return nil, err
	}
	t.Root = root
	return t, nil
}

func (t *Tables) page() (addr.HPA, error) {
	hpa, err := t.frames.Alloc(t.owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return 0, fmt.Errorf("%s for %s: %w", t.f.Name, t.owner, err)
	}
	t.pages = append(t.pages, hpa)
	return hpa, nil
}

// table returns the table page at hpa.
func (t *Tables) table(hpa addr.HPA) ([]byte, error) {
	return t.frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
}

// next returns the table that entry i of tbl points to, creating it.
func (t *Tables) next(tbl []byte, i uint64) ([]byte, error) {
	e := le.Uint64(tbl[i*8:])
	if e&t.f.Present != 0 {
		if e&t.f.Large != 0 {
			return nil, fmt.Errorf("%s: a large page already maps this range", t.f.Name)
		}
		return t.table(addr.HPA(e & t.f.Addr))
	}
	hpa, err := t.page()
	if err != nil {
		return nil, err
	}
	le.PutUint64(tbl[i*8:], uint64(hpa)|t.f.Table)
	return t.table(hpa)
}

// Map maps the region's [GPA, GPA+Size) to [HPA, HPA+Size) with the
// largest pages both addresses' alignment and the Format allow.
func (t *Tables) Map(r mem.Region) error {
	gpa, hpa, end := uint64(r.GPA), uint64(r.HPA), uint64(r.GPA)+r.Size
	if gpa%addr.PAGE_SIZE_4K != 0 || hpa%addr.PAGE_SIZE_4K != 0 || r.Size%addr.PAGE_SIZE_4K != 0 {
		return fmt.Errorf("%s: region %s is not 4 KiB aligned", t.f.Name, r)
	}
	for gpa < end {
		pml4, err := t.table(t.Root)
		if err != nil {
			return err
		}
		pdpt, err := t.next(pml4, gpa>>39&511)
		if err != nil {
			return err
		}
		fits := func(size uint64) bool { return gpa%size == 0 && hpa%size == 0 && gpa+size <= end }
		if t.f.Huge1G && fits(addr.PAGE_SIZE_1G) {
			le.PutUint64(pdpt[(gpa>>30&511)*8:], hpa|t.f.Leaf|t.f.Large)
			gpa, hpa = gpa+addr.PAGE_SIZE_1G, hpa+addr.PAGE_SIZE_1G
			continue
		}
		pd, err := t.next(pdpt, gpa>>30&511)
		if err != nil {
			return err
		}
		if t.f.Huge2M && fits(addr.PAGE_SIZE_2M) {
			le.PutUint64(pd[(gpa>>21&511)*8:], hpa|t.f.Leaf|t.f.Large)
			gpa, hpa = gpa+addr.PAGE_SIZE_2M, hpa+addr.PAGE_SIZE_2M
			continue
		}
		pt, err := t.next(pd, gpa>>21&511)
		if err != nil {
			return err
		}
		le.PutUint64(pt[(gpa>>12&511)*8:], hpa|t.f.Leaf)
		gpa, hpa = gpa+addr.PAGE_SIZE_4K, hpa+addr.PAGE_SIZE_4K
	}
	return nil
}

// Lookup walks the tables for gpa (tests and diagnostics): the HPA, the
// page size and the leaf entry, or ok false when unmapped.
func (t *Tables) Lookup(gpa uint64) (hpa, size, leaf uint64, ok bool) {
	tbl, err := t.table(t.Root)
	for level, shift := 0, uint(39); err == nil && level < 4; level, shift = level+1, shift-9 {
		e := le.Uint64(tbl[(gpa>>shift&511)*8:])
		if e&t.f.Present == 0 {
			return 0, 0, 0, false
		}
		if e&t.f.Large != 0 || level == 3 {
			size = 1 << shift
			return e&t.f.Addr&^(size-1) | gpa&(size-1), size, e, true
		}
		tbl, err = t.table(addr.HPA(e & t.f.Addr))
	}
	return 0, 0, 0, false
}

// Free returns every table page.
func (t *Tables) Free() error {
	var first error
	for _, p := range t.pages {
		if err := t.frames.Free(p); err != nil && first == nil {
			first = err
		}
	}
	t.pages = nil
	return first
}

package vmx

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// Extended page tables (SDM Vol. 3C, 29.3 "The Extended Page Table
// Mechanism (EPT)"): a 4-level walk of the guest-physical address, tables
// of 512 8-byte entries. Bits 2:0 of every entry are read, write and
// execute permission (an entry with none is not present); a leaf (a PTE,
// or a PDE/PDPTE with bit 7 set) carries the memory type in bits 5:3 and
// the ignore-PAT bit 6 (Tables 29-1 to 29-6).
const (
	EPT_READ       = 1 << 0
	EPT_WRITE      = 1 << 1
	EPT_EXECUTE    = 1 << 2
	EPT_RWX        = EPT_READ | EPT_WRITE | EPT_EXECUTE
	EPT_MT_SHIFT   = 3
	EPT_IGNORE_PAT = 1 << 6
	EPT_LARGE      = 1 << 7
	EPT_ADDR       = 0x000ffffffffff000
	// EPT_LEAF is a write-back, read/write/execute leaf. The guest's PAT
	// still applies (ignore-PAT clear), as on hardware.
	EPT_LEAF = EPT_RWX | MEMORY_TYPE_WB<<EPT_MT_SHIFT

	// EPTP fields (SDM Vol. 3C, 25.6.11, Table 25-9): memory type of the
	// tables in bits 2:0, page-walk length minus one in 5:3.
	EPTP_MT_WB  = MEMORY_TYPE_WB
	EPTP_WALK_4 = 3 << 3
	EPTP_FLAGS  = EPTP_MT_WB | EPTP_WALK_4
)

// ept builds and owns one VM's extended page tables.
type ept struct {
	frames *mem.Frames
	owner  mem.Owner
	root   addr.HPA
	pages  []addr.HPA
	huge2M bool // 2 MiB pages allowed
	huge1G bool // 1 GiB pages allowed
}

// newEPT allocates an empty root table (the PML4).
func newEPT(frames *mem.Frames, owner mem.Owner, huge2M, huge1G bool) (*ept, error) {
	t := &ept{frames: frames, owner: owner, huge2M: huge2M, huge1G: huge1G}
	root, err := t.page()
	if err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

// eptp returns the EPT pointer: the root, write-back, 4-level walk.
func (t *ept) eptp() uint64 { return uint64(t.root) | EPTP_FLAGS }

func (t *ept) page() (addr.HPA, error) {
	hpa, err := t.frames.Alloc(t.owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return 0, fmt.Errorf("vmx: extended page table for %s: %w", t.owner, err)
	}
	t.pages = append(t.pages, hpa)
	return hpa, nil
}

// table returns the table page at hpa.
func (t *ept) table(hpa addr.HPA) ([]byte, error) {
	return t.frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
}

// next returns the table that entry i of tbl points to, creating it.
func (t *ept) next(tbl []byte, i uint64) ([]byte, error) {
	e := le.Uint64(tbl[i*8:])
	if e&EPT_RWX != 0 {
		if e&EPT_LARGE != 0 {
			return nil, fmt.Errorf("vmx: extended page tables: a large page already maps this range")
		}
		return t.table(addr.HPA(e & EPT_ADDR))
	}
	hpa, err := t.page()
	if err != nil {
		return nil, err
	}
	le.PutUint64(tbl[i*8:], uint64(hpa)|EPT_RWX)
	return t.table(hpa)
}

// mapRegion maps [gpa, gpa+size) to [hpa, hpa+size) with the largest pages
// both addresses' alignment and the processor allow.
func (t *ept) mapRegion(r mem.Region) error {
	gpa, hpa, end := uint64(r.GPA), uint64(r.HPA), uint64(r.GPA)+r.Size
	if gpa%addr.PAGE_SIZE_4K != 0 || hpa%addr.PAGE_SIZE_4K != 0 || r.Size%addr.PAGE_SIZE_4K != 0 {
		return fmt.Errorf("vmx: region %s is not 4 KiB aligned", r)
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
		if t.huge1G && fits(addr.PAGE_SIZE_1G) {
			le.PutUint64(pdpt[(gpa>>30&511)*8:], hpa|EPT_LEAF|EPT_LARGE)
			gpa, hpa = gpa+addr.PAGE_SIZE_1G, hpa+addr.PAGE_SIZE_1G
			continue
		}
		pd, err := t.next(pdpt, gpa>>30&511)
		if err != nil {
			return err
		}
		if t.huge2M && fits(addr.PAGE_SIZE_2M) {
			le.PutUint64(pd[(gpa>>21&511)*8:], hpa|EPT_LEAF|EPT_LARGE)
			gpa, hpa = gpa+addr.PAGE_SIZE_2M, hpa+addr.PAGE_SIZE_2M
			continue
		}
		pt, err := t.next(pd, gpa>>21&511)
		if err != nil {
			return err
		}
		le.PutUint64(pt[(gpa>>12&511)*8:], hpa|EPT_LEAF)
		gpa, hpa = gpa+addr.PAGE_SIZE_4K, hpa+addr.PAGE_SIZE_4K
	}
	return nil
}

// lookup walks the tables for gpa (tests and diagnostics): the HPA, the
// page size and the leaf entry, or ok false when unmapped.
func (t *ept) lookup(gpa uint64) (hpa uint64, size uint64, leaf uint64, ok bool) {
	tbl, err := t.table(t.root)
	for level, shift := 0, uint(39); err == nil && level < 4; level, shift = level+1, shift-9 {
		e := le.Uint64(tbl[(gpa>>shift&511)*8:])
		if e&EPT_RWX == 0 {
			return 0, 0, 0, false
		}
		if e&EPT_LARGE != 0 || level == 3 {
			size = 1 << shift
			return e&EPT_ADDR&^(size-1) | gpa&(size-1), size, e, true
		}
		tbl, err = t.table(addr.HPA(e & EPT_ADDR))
	}
	return 0, 0, 0, false
}

// free returns every table page.
func (t *ept) free() error {
	var first error
	for _, p := range t.pages {
		if err := t.frames.Free(p); err != nil && first == nil {
			first = err
		}
	}
	t.pages = nil
	return first
}

package mem

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"sync"

	"github.com/keel-hv/keel/hv/addr"
)

// Owner names who holds frames: OwnerKeel for the hypervisor's own
// structures, or a VM's name.
type Owner string

// OwnerKeel owns frames the hypervisor uses itself (VMCB/VMCS, nested page
// tables, rings).
const OwnerKeel Owner = "keel"

// ErrNoMemory is wrapped by the errors Alloc returns when no free chunk of
// the requested size exists.
var ErrNoMemory = errors.New("out of host memory")

const (
	pagesPer2M = addr.PAGE_SIZE_2M / addr.PAGE_SIZE_4K
	pagesPer1G = addr.PAGE_SIZE_1G / addr.PAGE_SIZE_4K
	wordsPer2M = pagesPer2M / 64
	wordsPer1G = pagesPer1G / 64
)

// allocation records one chunk handed out.
type allocation struct {
	size  uint64
	owner Owner
}

// Frames is the physical frame allocator. It tracks the host RAM given at
// construction in 4 KiB pages and hands out naturally aligned chunks of
// PAGE_SIZE_4K, PAGE_SIZE_2M or PAGE_SIZE_1G. To keep large chunks available,
// 4 KiB pages come from 2 MiB blocks that are already in use before a fresh
// block is broken, and 2 MiB chunks likewise prefer 1 GiB blocks already in
// use. Every chunk is zeroed through HostMemory before it is returned. It is
// safe for concurrent use.
type Frames struct {
	host HostMemory

	mu sync.Mutex
	// base is the first tracked page's address (1 GiB aligned); the span
	// is a whole number of 1 GiB blocks.
	base uint64
	// used has one bit per 4 KiB page: set when allocated or not RAM.
	used []uint64
	// used2M and used1G count the set bits per 2 MiB / 1 GiB block.
	used2M []uint16
	used1G []uint32
	allocs map[addr.HPA]allocation
	owners map[Owner]uint64
	total  uint64
	free   uint64
}

// NewFrames builds an allocator over the host RAM ranges ram minus the
// reserved ranges. RAM ranges are shrunk to whole 4 KiB pages and reserved
// ranges grown to whole pages; overlapping inputs are fine. host is used to
// zero allocated chunks.
func NewFrames(ram, reserved []addr.Range, host HostMemory) (*Frames, error) {
	if host == nil {
		return nil, errors.New("frames: no HostMemory given; the allocator zeroes chunks through it")
	}
	lo, hi := ^uint64(0), uint64(0)
	for _, r := range ram {
		end, ok := r.End()
		if !ok {
			return nil, fmt.Errorf("frames: RAM range %s wraps around 2^64", r)
		}
		b, ok := addr.AlignUp(r.Base, addr.PAGE_SIZE_4K)
		e := addr.AlignDown(end, addr.PAGE_SIZE_4K)
		if !ok || b >= e {
			continue
		}
		lo, hi = min(lo, b), max(hi, e)
	}
	if lo >= hi {
		return nil, fmt.Errorf("frames: no whole 4 KiB page of RAM in %v", ram)
	}
	base := addr.AlignDown(lo, addr.PAGE_SIZE_1G)
	top, ok := addr.AlignUp(hi, addr.PAGE_SIZE_1G)
	if !ok || top == 0 {
		return nil, fmt.Errorf("frames: RAM ends at %#x, too close to 2^64", hi)
	}
	npages := (top - base) >> addr.PAGE_SHIFT_4K
	f := &Frames{
		host:   host,
		base:   base,
		used:   make([]uint64, npages/64),
		used2M: make([]uint16, npages/pagesPer2M),
		used1G: make([]uint32, npages/pagesPer1G),
		allocs: make(map[addr.HPA]allocation),
		owners: make(map[Owner]uint64),
	}
	// Start with everything unavailable, then open RAM, then close
	// reserved ranges again.
	f.mark(0, npages, true)
	for _, r := range ram {
		end, _ := r.End()
		b, _ := addr.AlignUp(r.Base, addr.PAGE_SIZE_4K)
		e := addr.AlignDown(end, addr.PAGE_SIZE_4K)
		if b < e {
			f.mark((b-base)>>addr.PAGE_SHIFT_4K, (e-b)>>addr.PAGE_SHIFT_4K, false)
		}
	}
	for _, r := range reserved {
		end, ok := r.End()
		if !ok {
			end = ^uint64(0)
		}
		b := max(addr.AlignDown(r.Base, addr.PAGE_SIZE_4K), base)
		e, ok := addr.AlignUp(end, addr.PAGE_SIZE_4K)
		if !ok || e == 0 {
			e = top
		}
		e = min(e, top)
		if b < e {
			f.mark((b-base)>>addr.PAGE_SHIFT_4K, (e-b)>>addr.PAGE_SHIFT_4K, true)
		}
	}
	var usedPages uint64
	for _, c := range f.used1G {
		usedPages += uint64(c)
	}
	f.total = (npages - usedPages) << addr.PAGE_SHIFT_4K
	f.free = f.total
	if f.total == 0 {
		return nil, fmt.Errorf("frames: the reserved ranges %v cover all RAM %v", reserved, ram)
	}
	return f, nil
}

// Host returns the HostMemory the allocator zeroes through.
func (f *Frames) Host() HostMemory { return f.host }

// mark sets (used=true) or clears the bits of pages [first, first+n) and
// keeps the per-block counters in step. Pages already in the target state
// are left alone.
func (f *Frames) mark(first, n uint64, used bool) {
	for n > 0 {
		w, b := first/64, first%64
		k := min(64-b, n)
		var m uint64 = ^uint64(0)
		if k < 64 {
			m = (uint64(1)<<k - 1) << b
		}
		old := f.used[w]
		var changed uint64
		if used {
			changed = m &^ old
			f.used[w] = old | m
		} else {
			changed = m & old
			f.used[w] = old &^ m
		}
		if c := bits.OnesCount64(changed); c != 0 {
			i2, i1 := first/pagesPer2M, first/pagesPer1G
			if used {
				f.used2M[i2] += uint16(c)
				f.used1G[i1] += uint32(c)
			} else {
				f.used2M[i2] -= uint16(c)
				f.used1G[i1] -= uint32(c)
			}
		}
		first += k
		n -= k
	}
}

// Alloc allocates a zeroed chunk of size bytes — PAGE_SIZE_4K, PAGE_SIZE_2M
// or PAGE_SIZE_1G — aligned to its size, for owner. The error wraps
// ErrNoMemory when no such chunk is free.
func (f *Frames) Alloc(owner Owner, size uint64) (addr.HPA, error) {
	if owner == "" {
		return 0, errors.New("frames: allocation without an owner; pass OwnerKeel or the VM's name")
	}
	f.mu.Lock()
	page, ok := uint64(0), false
	switch size {
	case addr.PAGE_SIZE_4K:
		page, ok = f.find4K()
	case addr.PAGE_SIZE_2M:
		var blk uint64
		if blk, ok = f.find2M(); ok {
			page = blk * pagesPer2M
		}
	case addr.PAGE_SIZE_1G:
		for i, c := range f.used1G {
			if c == 0 {
				page, ok = uint64(i)*pagesPer1G, true
				break
			}
		}
	default:
		f.mu.Unlock()
		return 0, fmt.Errorf("frames: %s asked for %#x bytes; chunks are 4 KiB, 2 MiB or 1 GiB", owner, size)
	}
	if !ok {
		free := f.free
		f.mu.Unlock()
		return 0, fmt.Errorf("frames: no free %s chunk for %s (%d MiB free in smaller pieces): %w", sizeName(size), owner, free>>20, ErrNoMemory)
	}
	f.mark(page, size>>addr.PAGE_SHIFT_4K, true)
	hpa := addr.HPA(f.base + page<<addr.PAGE_SHIFT_4K)
	f.allocs[hpa] = allocation{size: size, owner: owner}
	f.owners[owner] += size
	f.free -= size
	f.mu.Unlock()
	if err := f.host.Zero(hpa, size); err != nil {
		_ = f.Free(hpa)
		return 0, fmt.Errorf("frames: zeroing the %s chunk at %s for %s: %w", sizeName(size), hpa, owner, err)
	}
	return hpa, nil
}

func sizeName(size uint64) string {
	switch size {
	case addr.PAGE_SIZE_4K:
		return "4 KiB"
	case addr.PAGE_SIZE_2M:
		return "2 MiB"
	case addr.PAGE_SIZE_1G:
		return "1 GiB"
	}
	return fmt.Sprintf("%#x-byte", size)
}

// find4K returns a free page, preferring partly used 2 MiB blocks.
func (f *Frames) find4K() (uint64, bool) {
	blk := -1
	for i, c := range f.used2M {
		if c > 0 && c < pagesPer2M {
			blk = i
			break
		}
	}
	if blk < 0 {
		b, ok := f.find2M()
		if !ok {
			return 0, false
		}
		blk = int(b)
	}
	for w := blk * wordsPer2M; w < (blk+1)*wordsPer2M; w++ {
		if f.used[w] != ^uint64(0) {
			return uint64(w)*64 + uint64(bits.TrailingZeros64(^f.used[w])), true
		}
	}
	return 0, false // unreachable: the counter said the block had room
}

// find2M returns a free 2 MiB block, preferring partly used 1 GiB blocks.
func (f *Frames) find2M() (uint64, bool) {
	for pass := 0; pass < 2; pass++ {
		for g, c := range f.used1G {
			partial := c > 0 && c < pagesPer1G
			if (pass == 0 && !partial) || (pass == 1 && c != 0) {
				continue
			}
			for i := g * (pagesPer1G / pagesPer2M); i < (g+1)*(pagesPer1G/pagesPer2M); i++ {
				if f.used2M[i] == 0 {
					return uint64(i), true
				}
			}
		}
	}
	return 0, false
}

// Free returns the chunk that Alloc returned at hpa.
func (f *Frames) Free(hpa addr.HPA) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.allocs[hpa]
	if !ok {
		return fmt.Errorf("frames: free of %s, which is not the start of an allocated chunk (double free?)", hpa)
	}
	delete(f.allocs, hpa)
	f.mark((uint64(hpa)-f.base)>>addr.PAGE_SHIFT_4K, a.size>>addr.PAGE_SHIFT_4K, false)
	f.owners[a.owner] -= a.size
	if f.owners[a.owner] == 0 {
		delete(f.owners, a.owner)
	}
	f.free += a.size
	return nil
}

// Stats is a snapshot of the allocator's accounting.
type Stats struct {
	// Total is the number of bytes of RAM under management.
	Total uint64
	// Free is the number of bytes not allocated.
	Free uint64
	// Free2M and Free1G count the free, aligned 2 MiB and 1 GiB blocks.
	Free2M, Free1G int
	// Chunks is the number of allocated chunks.
	Chunks int
	// ByOwner is the number of bytes each owner holds.
	ByOwner map[Owner]uint64
}

// String formats the stats on one line, owners sorted by name.
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "total %d MiB, free %d MiB (%d x 2 MiB, %d x 1 GiB free), %d chunks", s.Total>>20, s.Free>>20, s.Free2M, s.Free1G, s.Chunks)
	owners := make([]string, 0, len(s.ByOwner))
	for o := range s.ByOwner {
		owners = append(owners, string(o))
	}
	sort.Strings(owners)
	for _, o := range owners {
		fmt.Fprintf(&b, ", %s %d KiB", o, s.ByOwner[Owner(o)]>>10)
	}
	return b.String()
}

// Stats returns a snapshot of the accounting.
func (f *Frames) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Total: f.total, Free: f.free, Chunks: len(f.allocs), ByOwner: make(map[Owner]uint64, len(f.owners))}
	for o, n := range f.owners {
		s.ByOwner[o] = n
	}
	for _, c := range f.used2M {
		if c == 0 {
			s.Free2M++
		}
	}
	for _, c := range f.used1G {
		if c == 0 {
			s.Free1G++
		}
	}
	return s
}

// Usage returns the number of bytes owner holds.
func (f *Frames) Usage(owner Owner) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owners[owner]
}

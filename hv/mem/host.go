package mem

import (
	"fmt"
	"sync"

	"github.com/keel-hv/keel/hv/addr"
)

// HostMemory gives access to host physical memory. The kernel implements it
// over its identity map of RAM; tests use SparseHost.
//
// Callers never ask Slice for a span that crosses a 4 KiB page boundary, so
// an implementation may back each page separately. Implementations must be
// safe for concurrent use and must not allocate in Slice on the hot path.
type HostMemory interface {
	// Slice returns the n bytes of host memory at hpa as a byte slice that
	// aliases the memory. hpa+n never crosses a 4 KiB boundary. It returns
	// an error if the span is not RAM it can reach.
	Slice(hpa addr.HPA, n uint64) ([]byte, error)
	// Zero clears n bytes at hpa; hpa and n are multiples of 4 KiB.
	Zero(hpa addr.HPA, n uint64) error
}

// SparseHost is a HostMemory for tests and host tools: host "RAM" from Base
// to Base+Size whose 4 KiB pages are Go memory allocated on first touch, so
// that tests can model many GiB of host RAM at realistic addresses. Pages
// that were zeroed or never written cost nothing. It is safe for concurrent
// use.
type SparseHost struct {
	// Base is the first host-physical address backed.
	Base addr.HPA
	// Size is the number of bytes backed.
	Size uint64

	mu    sync.Mutex
	pages map[uint64]*[addr.PAGE_SIZE_4K]byte
}

// NewSparseHost returns a SparseHost backing [base, base+size).
func NewSparseHost(base addr.HPA, size uint64) *SparseHost {
	return &SparseHost{Base: base, Size: size, pages: make(map[uint64]*[addr.PAGE_SIZE_4K]byte)}
}

func (h *SparseHost) check(hpa addr.HPA, n uint64) error {
	end, ok := hpa.Add(n)
	if !ok || hpa < h.Base || uint64(end-h.Base) > h.Size {
		return fmt.Errorf("sparse host memory: %s+%#x is outside [%#x, %#x)", hpa, n, uint64(h.Base), uint64(h.Base)+h.Size)
	}
	return nil
}

// Slice implements HostMemory. It allocates only the first time a page is
// touched.
func (h *SparseHost) Slice(hpa addr.HPA, n uint64) ([]byte, error) {
	if err := h.check(hpa, n); err != nil {
		return nil, err
	}
	off := hpa.PageOffset()
	if off+n > addr.PAGE_SIZE_4K {
		return nil, fmt.Errorf("sparse host memory: %s+%#x crosses a 4 KiB page boundary", hpa, n)
	}
	pfn := uint64(hpa) >> addr.PAGE_SHIFT_4K
	h.mu.Lock()
	p := h.pages[pfn]
	if p == nil {
		p = new([addr.PAGE_SIZE_4K]byte)
		h.pages[pfn] = p
	}
	h.mu.Unlock()
	return p[off : off+n], nil
}

// Zero implements HostMemory by dropping the pages.
func (h *SparseHost) Zero(hpa addr.HPA, n uint64) error {
	if err := h.check(hpa, n); err != nil {
		return err
	}
	if !addr.IsAligned(uint64(hpa)|n, addr.PAGE_SIZE_4K) {
		return fmt.Errorf("sparse host memory: zero of %s+%#x is not 4 KiB aligned", hpa, n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first, last := uint64(hpa)>>addr.PAGE_SHIFT_4K, (uint64(hpa)+n)>>addr.PAGE_SHIFT_4K
	if uint64(len(h.pages)) < last-first {
		for pfn := range h.pages {
			if pfn >= first && pfn < last {
				delete(h.pages, pfn)
			}
		}
		return nil
	}
	for pfn := first; pfn < last; pfn++ {
		delete(h.pages, pfn)
	}
	return nil
}

// Touched returns the number of pages currently backed by Go memory.
func (h *SparseHost) Touched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pages)
}

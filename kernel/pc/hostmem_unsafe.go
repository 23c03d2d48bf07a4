//go:build tamago

package pc

import (
	"fmt"
	"unsafe"

	"github.com/keel-hv/keel/hv/addr"
)

// HostMemory is the identity-mapped RAM as hv/mem sees it: host pages
// handed out by the frame allocator, read and written in place.
type HostMemory struct{}

// Slice implements mem.HostMemory.
func (HostMemory) Slice(hpa addr.HPA, n uint64) ([]byte, error) {
	a := uint64(hpa)
	if a < 0x1000 || a+n < a || a+n > mappedEnd.Load() {
		return nil, fmt.Errorf("host memory %#x+%#x is not mapped RAM", a, n)
	}
	return unsafe.Slice((*byte)(unsafe.Add(nil, uintptr(a))), n), nil
}

// Zero implements mem.HostMemory.
func (h HostMemory) Zero(hpa addr.HPA, n uint64) error {
	b, err := h.Slice(hpa, n)
	if err != nil {
		return err
	}
	clear(b)
	return nil
}

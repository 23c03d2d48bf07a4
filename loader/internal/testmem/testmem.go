// Package testmem is a fake guest memory for the loaders' tests: sparse
// 4 KiB pages over a list of RAM ranges, filled with a pattern until
// written, recording every write and every attempt to write outside RAM.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package testmem

import (
	"bytes"
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

const page = addr.PAGE_SIZE_4K

// Mem implements loader.Memory.
type Mem struct {
	ram   []addr.Range
	fill  byte
	pages map[uint64]*[page]byte
	// Writes are the ranges written, in order.
	Writes []addr.Range
	// Outside are the writes refused because they were not all RAM.
	Outside []addr.Range
}

// New returns a memory with RAM at the given ranges (4 KiB aligned), every
// byte reading as fill until written.
func New(fill byte, ram ...addr.Range) *Mem {
	return &Mem{ram: ram, fill: fill, pages: map[uint64]*[page]byte{}}
}

// Flat returns a memory with size bytes of RAM from 0 reading as fill.
func Flat(fill byte, size uint64) *Mem { return New(fill, addr.Range{Size: size}) }

// Regions returns the RAM ranges as regions, split at 1 GiB boundaries the
// way the frame allocator's chunks can come.
func (m *Mem) Regions() []mem.Region {
	var out []mem.Region
	for _, r := range m.ram {
		for a, left := r.Base, r.Size; left > 0; {
			n := min(left, addr.PAGE_SIZE_1G-a%addr.PAGE_SIZE_1G)
			out = append(out, mem.Region{GPA: addr.GPA(a), HPA: addr.HPA(a), Size: n})
			a += n
			left -= n
		}
	}
	return out
}

// IsRAM reports whether [gpa, gpa+n) is all RAM.
func (m *Mem) IsRAM(gpa, n uint64) bool {
	if gpa+n < gpa {
		return false
	}
	for n > 0 {
		found := false
		for _, r := range m.ram {
			if r.Contains(gpa) {
				k := min(n, r.Size-(gpa-r.Base))
				gpa += k
				n -= k
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Write copies p to gpa, or fails writing nothing if it is not all RAM.
func (m *Mem) Write(gpa addr.GPA, p []byte) error {
	r := addr.Range{Base: uint64(gpa), Size: uint64(len(p))}
	if !m.IsRAM(uint64(gpa), uint64(len(p))) {
		m.Outside = append(m.Outside, r)
		return fmt.Errorf("write of %d bytes at %s: %w", len(p), gpa, mem.ErrOutsideRAM)
	}
	m.Writes = append(m.Writes, r)
	a := uint64(gpa)
	for len(p) > 0 {
		off := a % page
		n := min(uint64(len(p)), page-off)
		pg := m.pages[a-off]
		if pg == nil {
			if m.fill == 0 && allZero(p[:n]) {
				p, a = p[n:], a+n
				continue
			}
			pg = new([page]byte)
			if m.fill != 0 {
				for i := range pg {
					pg[i] = m.fill
				}
			}
			m.pages[a-off] = pg
		}
		copy(pg[off:], p[:n])
		p, a = p[n:], a+n
	}
	return nil
}

// Read returns n bytes at gpa; bytes outside RAM read as 0xEE, unwritten
// RAM as the fill byte.
func (m *Mem) Read(gpa, n uint64) []byte {
	out := make([]byte, n)
	for i := range out {
		a := gpa + uint64(i)
		switch pg := m.pages[a&^(page-1)]; {
		case !m.IsRAM(a, 1):
			out[i] = 0xEE
		case pg != nil:
			out[i] = pg[a%page]
		default:
			out[i] = m.fill
		}
	}
	return out
}

// Written reports whether any write touched r.
func (m *Mem) Written(r addr.Range) bool {
	for _, w := range m.Writes {
		if w.Overlaps(r) {
			return true
		}
	}
	return false
}

var zeroPage [page]byte

// allZero reports whether b, at most a page, is all zeros.
func allZero(b []byte) bool { return bytes.Equal(b, zeroPage[:len(b)]) }

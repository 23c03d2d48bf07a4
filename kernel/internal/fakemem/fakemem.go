// Package fakemem is physical memory for tests of the parsers of loader
// and firmware data: byte-slice segments at physical addresses, read
// through the ReadAt interface that kernel/bootinfo and kernel/acpi use.
//
// This package is host-testable.
package fakemem

import "fmt"

// Mem is physical memory made of byte-slice segments; a read must lie
// within one segment.
type Mem struct {
	segs []seg
}

type seg struct {
	base uint64
	b    []byte
}

// Add maps b at physical address base and returns m.
func (m *Mem) Add(base uint64, b []byte) *Mem {
	m.segs = append(m.segs, seg{base, b})
	return m
}

// ReadAt copies len(p) bytes at addr into p, or fails when they do not
// lie within one segment.
func (m *Mem) ReadAt(p []byte, addr uint64) error {
	n := uint64(len(p))
	for _, s := range m.segs {
		if addr >= s.base && addr-s.base <= uint64(len(s.b)) && n <= uint64(len(s.b))-(addr-s.base) {
			copy(p, s.b[addr-s.base:])
			return nil
		}
	}
	return fmt.Errorf("fake memory: no RAM at [%#x, %#x+%d)", addr, addr, n)
}

// Remove unmaps the segment that starts at base, if any, and returns m.
func (m *Mem) Remove(base uint64) *Mem {
	for i, s := range m.segs {
		if s.base == base {
			m.segs = append(m.segs[:i], m.segs[i+1:]...)
			break
		}
	}
	return m
}

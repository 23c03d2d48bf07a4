package multiboot_test

import (
	"encoding/binary"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/multiboot"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

var le = binary.LittleEndian

func rg(base, size uint64) addr.Range { return addr.Range{Base: base, Size: size} }

// seg is a program header of a synthetic ELF file.
type seg struct {
	typ          uint32 // 0: PT_LOAD
	vaddr, paddr uint64
	data         []byte // the file bytes
	memsz        uint64 // 0: len(data)
}

// elfImage describes a synthetic Multiboot ELF kernel.
type elfImage struct {
	class   int    // 32 or 64
	machine uint16 // 0: EM_386 for ELF32, EM_X86_64 for ELF64
	etype   uint16 // 0: ET_EXEC
	entry   uint64
	segs    []seg
	// mbFlags are the Multiboot header flags; the header follows the
	// program headers unless noHeader. With MULTIBOOT_AOUT_KLUDGE the
	// address fields follow.
	mbFlags  uint32
	aout     [5]uint32 // header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr
	noHeader bool
	// dataAt is the file offset of the first segment's bytes; 0 means
	// dataStart.
	dataAt int
}

// dataStart is where the segments' file bytes start.
const dataStart = 0x1000

// build lays the file out: ELF header, program headers, Multiboot header,
// then each segment's bytes from dataStart, 16-byte aligned. It returns the
// image and the file offset of each segment.
func (o elfImage) build() ([]byte, []uint64) {
	ehsize, phentsize := 52, 32
	if o.class == 64 {
		ehsize, phentsize = 64, 56
	}
	machine := o.machine
	if machine == 0 {
		machine = multiboot.EM_386
		if o.class == 64 {
			machine = multiboot.EM_X86_64
		}
	}
	etype := o.etype
	if etype == 0 {
		etype = multiboot.ET_EXEC
	}
	phoff := ehsize
	mbOff := phoff + phentsize*len(o.segs)
	mbOff = (mbOff + 3) &^ 3
	offs := make([]uint64, len(o.segs))
	end := dataStart
	if o.dataAt != 0 {
		end = o.dataAt
	}
	for i, s := range o.segs {
		offs[i] = uint64(end)
		end += (len(s.data) + 15) &^ 15
	}
	b := make([]byte, end)
	copy(b, "\x7fELF")
	b[multiboot.EI_CLASS] = byte(o.class / 32)
	b[multiboot.EI_DATA] = multiboot.ELFDATA2LSB
	b[multiboot.EI_VERSION] = multiboot.EV_CURRENT
	le.PutUint16(b[16:], etype)
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	if o.class == 64 {
		le.PutUint64(b[24:], o.entry)
		le.PutUint64(b[32:], uint64(phoff))
		le.PutUint16(b[52:], uint16(ehsize))
		le.PutUint16(b[54:], uint16(phentsize))
		le.PutUint16(b[56:], uint16(len(o.segs)))
	} else {
		le.PutUint32(b[24:], uint32(o.entry))
		le.PutUint32(b[28:], uint32(phoff))
		le.PutUint16(b[40:], uint16(ehsize))
		le.PutUint16(b[42:], uint16(phentsize))
		le.PutUint16(b[44:], uint16(len(o.segs)))
	}
	for i, s := range o.segs {
		p := b[phoff+i*phentsize:]
		typ := s.typ
		if typ == 0 {
			typ = multiboot.PT_LOAD
		}
		memsz := s.memsz
		if memsz == 0 {
			memsz = uint64(len(s.data))
		}
		le.PutUint32(p, typ)
		if o.class == 64 {
			le.PutUint32(p[4:], 5) // R+X
			le.PutUint64(p[8:], offs[i])
			le.PutUint64(p[16:], s.vaddr)
			le.PutUint64(p[24:], s.paddr)
			le.PutUint64(p[32:], uint64(len(s.data)))
			le.PutUint64(p[40:], memsz)
			le.PutUint64(p[48:], 0x1000)
		} else {
			le.PutUint32(p[4:], uint32(offs[i]))
			le.PutUint32(p[8:], uint32(s.vaddr))
			le.PutUint32(p[12:], uint32(s.paddr))
			le.PutUint32(p[16:], uint32(len(s.data)))
			le.PutUint32(p[20:], uint32(memsz))
			le.PutUint32(p[24:], 5)
			le.PutUint32(p[28:], 0x1000)
		}
		copy(b[offs[i]:], s.data)
	}
	if !o.noHeader {
		putHeader(b[mbOff:], o.mbFlags, o.aout)
	}
	return b, offs
}

// putHeader writes a Multiboot header with a correct checksum, and the
// address fields if flags has the a.out kludge.
func putHeader(b []byte, flags uint32, aout [5]uint32) {
	le.PutUint32(b, multiboot.MULTIBOOT_HEADER_MAGIC)
	le.PutUint32(b[4:], flags)
	le.PutUint32(b[8:], -(multiboot.MULTIBOOT_HEADER_MAGIC + flags))
	if flags&multiboot.MULTIBOOT_AOUT_KLUDGE != 0 {
		for i, v := range aout {
			le.PutUint32(b[12+4*i:], v)
		}
	}
}

// pattern returns n bytes that differ from their neighbours and from the
// fake memory's fill.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13) ^ seed | 1
	}
	return b
}

// checkWrites fails unless every write lies inside a placement of r and
// none went outside RAM or into reserved ranges.
func checkWrites(t *testing.T, m *testmem.Mem, r *loader.Result, reserved []loader.MapEntry) {
	t.Helper()
	if len(m.Outside) > 0 {
		t.Errorf("writes outside RAM: %v", m.Outside)
	}
	for _, w := range m.Writes {
		in := false
		for _, p := range r.Placed {
			if p.Range.Contains(w.Base) && w.Size <= p.Range.Size-(w.Base-p.Range.Base) {
				in = true
			}
		}
		if !in {
			t.Errorf("write %s lies in no placement of %v", w, r.Placed)
		}
		for _, res := range reserved {
			if res.Range.Overlaps(w) {
				t.Errorf("write %s overlaps reserved %s", w, res)
			}
		}
	}
}

// u32 reads a u32 of guest memory.
func u32(m *testmem.Mem, a uint64) uint32 { return le.Uint32(m.Read(a, 4)) }

// cstring reads a NUL-terminated string of guest memory, at most 4 KiB.
func cstring(m *testmem.Mem, a uint64) string {
	b := m.Read(a, 4096)
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Package mb1 gives a kernel ELF a Multiboot (version 1, specification
// 0.6.96) header that uses the "a.out kludge", so that Multiboot v1 loaders
// which only load 32-bit ELF files (iPXE's multiboot image type, QEMU's
// -kernel) can load Keel's 64-bit ELF as a flat binary image.
//
// With flags bit 16 (MULTIBOOT_AOUT_KLUDGE) set, a loader ignores the ELF
// structure: it copies the file from the offset that puts header_addr at the
// header's file offset, up to load_end_addr, zeroes memory up to
// bss_end_addr and jumps to entry_addr in 32-bit protected mode
// (Multiboot Specification 0.6.96, 3.1.3 "The address fields of Multiboot
// header"). Patch computes those fields from the ELF's PT_LOAD segments and
// writes the header into a zero-filled gap in the first 8 KiB of the file
// (3.1.1 "OS image format": the header must lie there, 32-bit aligned).
//
// The flat image view only holds when the file is laid out like memory: the
// first PT_LOAD starts at file offset 0, every PT_LOAD has the same
// p_vaddr - p_offset, p_vaddr == p_paddr, and the file bytes that a flat
// copy puts over a segment's bss are zero. Patch checks all of this and
// refuses files that break it. Go's linker (and so build/keel.elf) lays out
// its files this way.
//
// Host-only package.
package mb1

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Constants from the Multiboot Specification version 0.6.96, 3.1 "OS image
// format" (names as in its multiboot.h).
const (
	// MULTIBOOT_HEADER_MAGIC identifies the header.
	MULTIBOOT_HEADER_MAGIC = 0x1BADB002
	// MULTIBOOT_BOOTLOADER_MAGIC is what a Multiboot loader passes in EAX.
	MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002
	// MULTIBOOT_SEARCH is how far into the file loaders search for the
	// header.
	MULTIBOOT_SEARCH = 8192
	// MULTIBOOT_HEADER_ALIGN is the header's alignment in the file.
	MULTIBOOT_HEADER_ALIGN = 4

	// MULTIBOOT_PAGE_ALIGN asks for boot modules aligned on 4 KiB.
	MULTIBOOT_PAGE_ALIGN = 1 << 0
	// MULTIBOOT_MEMORY_INFO asks for the mem_* fields and the memory map.
	MULTIBOOT_MEMORY_INFO = 1 << 1
	// MULTIBOOT_AOUT_KLUDGE says the address fields are valid and are to
	// be used instead of the ELF headers.
	MULTIBOOT_AOUT_KLUDGE = 1 << 16
)

// Flags is the flags word Patch writes: page-aligned modules, memory
// information, and the a.out kludge.
const Flags = MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO | MULTIBOOT_AOUT_KLUDGE

// HeaderSize is the size of a header with the address fields: magic, flags,
// checksum, header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr.
const HeaderSize = 8 * 4

// baseSize is the size of the mandatory part: magic, flags, checksum.
const baseSize = 3 * 4

// Header is a Multiboot header with its address fields.
type Header struct {
	// Offset is the header's offset in the file.
	Offset int
	// Flags is the flags word.
	Flags uint32
	// HeaderAddr is the physical address the header is loaded at.
	HeaderAddr uint32
	// LoadAddr is the physical address of the start of the flat image.
	LoadAddr uint32
	// LoadEndAddr is the end of the bytes copied from the file.
	LoadEndAddr uint32
	// BSSEndAddr is the end of the zeroed area after LoadEndAddr.
	BSSEndAddr uint32
	// EntryAddr is where the loader jumps.
	EntryAddr uint32
}

// Checksum is the value that makes magic + flags + checksum zero (mod 2^32).
func (h Header) Checksum() uint32 {
	return -(MULTIBOOT_HEADER_MAGIC + h.Flags)
}

// Bytes returns the header as written in the file (little endian).
func (h Header) Bytes() []byte {
	b := make([]byte, HeaderSize)
	for i, v := range []uint32{MULTIBOOT_HEADER_MAGIC, h.Flags, h.Checksum(),
		h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr} {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// String describes the header in one line.
func (h Header) String() string {
	return fmt.Sprintf("Multiboot header at file offset %#x: flags=%#x header_addr=%#x load_addr=%#x load_end_addr=%#x bss_end_addr=%#x entry_addr=%#x",
		h.Offset, h.Flags, h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr)
}

// Find returns the first Multiboot header in the first 8 KiB of image, the
// one a loader would use: a 32-bit aligned magic whose checksum is right.
// The address fields are filled in only if flags bit 16 is set. ok is false
// if there is none.
func Find(image []byte) (h Header, ok bool) {
	end := min(len(image), MULTIBOOT_SEARCH)
	for off := 0; off+baseSize <= end; off += MULTIBOOT_HEADER_ALIGN {
		if binary.LittleEndian.Uint32(image[off:]) != MULTIBOOT_HEADER_MAGIC {
			continue
		}
		flags := binary.LittleEndian.Uint32(image[off+4:])
		sum := binary.LittleEndian.Uint32(image[off+8:])
		if MULTIBOOT_HEADER_MAGIC+flags+sum != 0 {
			continue
		}
		h = Header{Offset: off, Flags: flags}
		if flags&MULTIBOOT_AOUT_KLUDGE != 0 && off+HeaderSize <= len(image) {
			f := func(i int) uint32 { return binary.LittleEndian.Uint32(image[off+4*i:]) }
			h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr = f(3), f(4), f(5), f(6), f(7)
		}
		return h, true
	}
	return Header{}, false
}

// Layout computes the address fields for image, an ELF kernel, without
// choosing where the header goes (Offset and HeaderAddr are left zero). It
// fails, saying what is wrong, if the file cannot be loaded as a flat image.
func Layout(image []byte) (Header, error) {
	l, err := analyze(image)
	if err != nil {
		return Header{}, err
	}
	return l.header, nil
}

// Patch returns a copy of image, an ELF kernel, with a Multiboot header
// using the a.out kludge, and that header. The header goes into the first
// run of HeaderSize zero bytes (4-byte aligned, within the first 8 KiB)
// that no ELF header, program or section header table, section or non-load
// segment covers. If image already has a Multiboot header, it is rewritten
// in place if it has room for the address fields; otherwise Patch fails,
// because loaders use the first header they find.
func Patch(image []byte) ([]byte, Header, error) {
	l, err := analyze(image)
	if err != nil {
		return nil, Header{}, err
	}
	h := l.header

	off, err := l.place(image)
	if err != nil {
		return nil, Header{}, err
	}
	h.Offset = off
	h.HeaderAddr = h.LoadAddr + uint32(off)

	out := bytes.Clone(image)
	copy(out[off:], h.Bytes())
	return out, h, nil
}

// byteRange is a half-open range of file offsets.
type byteRange struct {
	name       string
	start, end uint64
}

// layout is what analyze learned about an ELF file.
type layout struct {
	header Header
	// flatSize is the number of file bytes the loader copies.
	flatSize uint64
	// ranges are the file ranges the header must not overlap.
	ranges []byteRange
}

// analyze parses image and checks that it loads correctly as a flat image.
func analyze(image []byte) (*layout, error) {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("not a readable ELF file (%v): pass the kernel ELF that `make kernel` builds (build/keel.elf)", err)
	}
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil, fmt.Errorf("ELF machine is %v, want EM_X86_64 or EM_386: pass an x86 kernel", f.Machine)
	}
	if f.Data != elf.ELFDATA2LSB {
		return nil, errors.New("ELF file is big endian: Multiboot is for little-endian x86 kernels")
	}

	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	if len(loads) == 0 {
		return nil, errors.New("ELF file has no PT_LOAD segment: there is nothing to load; pass a linked executable")
	}
	sort.SliceStable(loads, func(i, j int) bool { return loads[i].Vaddr < loads[j].Vaddr })

	first := loads[0]
	if first.Off != 0 {
		return nil, fmt.Errorf("first PT_LOAD (vaddr %#x) starts at file offset %#x, want 0: the a.out kludge loads the file as a flat image from offset 0; link the kernel so that its headers are part of the first segment (Go's linker does)", first.Vaddr, first.Off)
	}
	delta := first.Vaddr - first.Off
	var loadEnd, bssEnd uint64
	for i, p := range loads {
		if p.Vaddr != p.Paddr {
			return nil, fmt.Errorf("PT_LOAD %d has p_vaddr %#x but p_paddr %#x: Multiboot loads at physical addresses and jumps to e_entry, so the kernel must be linked with virtual = physical addresses", i, p.Vaddr, p.Paddr)
		}
		if p.Filesz > p.Memsz {
			return nil, fmt.Errorf("PT_LOAD %d has p_filesz %#x > p_memsz %#x: the ELF file is malformed", i, p.Filesz, p.Memsz)
		}
		if p.Filesz > 0 && p.Vaddr-p.Off != delta {
			return nil, fmt.Errorf("PT_LOAD %d has p_vaddr - p_offset = %#x - %#x = %#x, but the first PT_LOAD has %#x: the file is not laid out like memory, so it cannot be loaded as one flat image; link with file offsets congruent to addresses (Go's linker does)", i, p.Vaddr, p.Off, p.Vaddr-p.Off, delta)
		}
		if p.Filesz > 0 && p.Off+p.Filesz > uint64(len(image)) {
			return nil, fmt.Errorf("PT_LOAD %d (file offset %#x, size %#x) runs past the end of the %d-byte file: the file is truncated", i, p.Off, p.Filesz, len(image))
		}
		if i > 0 && p.Vaddr < loads[i-1].Vaddr+loads[i-1].Memsz {
			return nil, fmt.Errorf("PT_LOAD %d at %#x overlaps the previous segment, which ends at %#x: the ELF file is malformed", i, p.Vaddr, loads[i-1].Vaddr+loads[i-1].Memsz)
		}
		if p.Filesz > 0 {
			loadEnd = p.Vaddr + p.Filesz
		}
		bssEnd = max(bssEnd, p.Vaddr+p.Memsz)
	}
	if bssEnd > 1<<32 || f.Entry >= 1<<32 {
		return nil, fmt.Errorf("the image ends at %#x and enters at %#x: Multiboot v1 addresses are 32-bit, so the kernel must be linked below 4 GiB", bssEnd, f.Entry)
	}
	if f.Entry < first.Vaddr || f.Entry >= loadEnd {
		return nil, fmt.Errorf("entry point %#x is outside the loaded image [%#x, %#x): the ELF file is malformed", f.Entry, first.Vaddr, loadEnd)
	}
	flatSize := loadEnd - delta

	// A flat copy also writes the file bytes that lie between segments.
	// Where such bytes land on a segment's bss (p_memsz > p_filesz, then
	// another segment follows), they must be zero.
	for i, p := range loads {
		zs := p.Vaddr + p.Filesz - delta // file offset of the bss start
		ze := min(p.Vaddr+p.Memsz-delta, flatSize)
		if zs >= ze {
			continue
		}
		if ze > uint64(len(image)) {
			return nil, fmt.Errorf("PT_LOAD %d's bss [%#x, %#x) is overlaid by file bytes past the end of the file: the file is truncated", i, p.Vaddr+p.Filesz, delta+ze)
		}
		if j := bytes.IndexFunc(image[zs:ze], func(r rune) bool { return r != 0 }); j >= 0 {
			return nil, fmt.Errorf("PT_LOAD %d's bss at %#x would receive nonzero file bytes (file offset %#x) when loaded as a flat image: put the bss in the last segment or pad the file with zeros", i, p.Vaddr+p.Filesz, zs+uint64(j))
		}
	}

	l := &layout{
		header: Header{
			Flags:       Flags,
			LoadAddr:    uint32(delta),
			LoadEndAddr: uint32(loadEnd),
			BSSEndAddr:  uint32(bssEnd),
			EntryAddr:   uint32(f.Entry),
		},
		flatSize: flatSize,
	}

	// What the header must not overwrite.
	add := func(name string, off, size uint64) {
		if size > 0 {
			l.ranges = append(l.ranges, byteRange{name, off, off + size})
		}
	}
	ehsize, phoff, phentsize, shoff, shentsize := elfTables(image, f.Class)
	add("ELF header", 0, ehsize)
	add("program header table", phoff, phentsize*uint64(len(f.Progs)))
	add("section header table", shoff, shentsize*uint64(len(f.Sections)))
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOBITS && s.Type != elf.SHT_NULL {
			add("section "+s.Name, s.Offset, s.FileSize)
		}
	}
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			add(fmt.Sprintf("segment %d (%v)", i, p.Type), p.Off, p.Filesz)
		}
	}
	return l, nil
}

// elfTables returns the ELF header size and the offsets and entry sizes of
// the program and section header tables, which debug/elf does not export.
func elfTables(image []byte, class elf.Class) (ehsize, phoff, phentsize, shoff, shentsize uint64) {
	le := binary.LittleEndian
	if class == elf.ELFCLASS64 {
		return uint64(le.Uint16(image[52:])), le.Uint64(image[32:]), uint64(le.Uint16(image[54:])),
			le.Uint64(image[40:]), uint64(le.Uint16(image[58:]))
	}
	return uint64(le.Uint16(image[40:])), uint64(le.Uint32(image[28:])), uint64(le.Uint16(image[42:])),
		uint64(le.Uint32(image[32:])), uint64(le.Uint16(image[46:]))
}

// coveredBy returns the name of a range that overlaps [start, end), or "".
// A range that contains [start, start+skip) entirely is ignored when skip
// is nonzero: it is the one holding an existing header being rewritten.
func (l *layout) coveredBy(start, end, skip uint64) string {
	for _, r := range l.ranges {
		if skip > 0 && r.start <= start && start+skip <= r.end {
			continue
		}
		if r.start < end && start < r.end {
			return r.name
		}
	}
	return ""
}

// place chooses the header's file offset.
func (l *layout) place(image []byte) (int, error) {
	limit := min(uint64(MULTIBOOT_SEARCH), l.flatSize)

	if old, ok := Find(image); ok {
		off := uint64(old.Offset)
		fits := off+HeaderSize <= limit
		if fits && old.Flags&MULTIBOOT_AOUT_KLUDGE == 0 {
			// Room for the address fields: zeros that belong to
			// nothing else.
			fits = allZero(image[off+baseSize:off+HeaderSize]) && l.coveredBy(off, off+HeaderSize, baseSize) == ""
		}
		if !fits {
			return 0, fmt.Errorf("the file already has a Multiboot header at offset %#x (flags %#x) without room for the %d bytes of address fields after it; loaders use the first header they find, so remove that header or reserve %d bytes for it", off, old.Flags, HeaderSize-baseSize, HeaderSize)
		}
		return int(off), nil
	}

	for off := uint64(0); off+HeaderSize <= limit; off += MULTIBOOT_HEADER_ALIGN {
		if allZero(image[off:off+HeaderSize]) && l.coveredBy(off, off+HeaderSize, 0) == "" {
			return int(off), nil
		}
	}
	return 0, fmt.Errorf("no free space for the %d-byte Multiboot header: it must lie in the first %d bytes of the loaded image, 4-byte aligned, on zero bytes that no header, section or segment uses, and there are none; leave zeros in the ELF header area (Go's linker pads it to the first page of text)", HeaderSize, limit)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

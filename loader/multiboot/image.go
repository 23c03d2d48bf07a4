package multiboot

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// ELF fields Keel reads (System V ABI, "ELF Header" and "Program Header";
// names as in elf.h). The program headers are parsed here rather than with
// debug/elf so that every offset is checked in one place and a hostile
// header count cannot make the loader allocate.
const (
	EI_CLASS    = 4
	EI_DATA     = 5
	EI_VERSION  = 6
	ELFCLASS32  = 1
	ELFCLASS64  = 2
	ELFDATA2LSB = 1
	EV_CURRENT  = 1
	ET_EXEC     = 2
	EM_386      = 3
	EM_X86_64   = 62
	PT_LOAD     = 1
	// PN_XNUM in e_phnum says the count is elsewhere; Keel refuses it.
	PN_XNUM = 0xFFFF

	// Header sizes.
	ELF32_EHDR_SIZE = 52
	ELF64_EHDR_SIZE = 64
	ELF32_PHDR_SIZE = 32
	ELF64_PHDR_SIZE = 56
)

// MAX_LOAD_SEGMENTS bounds the PT_LOAD segments Keel loads; kernels have a
// handful.
const MAX_LOAD_SEGMENTS = 64

// elfMagic starts an ELF file.
var elfMagic = []byte{0x7F, 'E', 'L', 'F'}

// segment is a piece of the image to load: filesz bytes from file offset
// off to guest-physical paddr, then zeros up to memsz.
type segment struct {
	name                      string
	off, filesz, paddr, memsz uint64
}

// kernel is what to load and where to enter.
type kernel struct {
	segs  []segment
	entry uint32
}

// layoutOf returns how to load image, by the a.out kludge address fields
// when the header has MULTIBOOT_AOUT_KLUDGE, by the ELF program headers
// otherwise.
func layoutOf(image []byte, h *Header) (*kernel, error) {
	if h.Flags&MULTIBOOT_AOUT_KLUDGE != 0 {
		return aoutLayout(image, h)
	}
	if !bytes.HasPrefix(image, elfMagic) {
		return nil, fmt.Errorf("multiboot: the image is not an ELF file and its header flags %#x lack bit 16 (a.out kludge): there is no way to know where to load it; link an ELF kernel or give the header its address fields", h.Flags)
	}
	return elfLayout(image)
}

// aoutLayout loads the file as one flat image (§3.1.3 "The address fields
// of Multiboot header"): from the offset that puts header_addr at the
// header, up to load_end_addr (0: the end of the file), then zeros up to
// bss_end_addr (0: none), entering at entry_addr.
func aoutLayout(image []byte, h *Header) (*kernel, error) {
	if h.LoadAddr > h.HeaderAddr {
		return nil, fmt.Errorf("multiboot: load_addr %#x is above header_addr %#x: the text segment must start at or before the header", h.LoadAddr, h.HeaderAddr)
	}
	lead := uint64(h.HeaderAddr - h.LoadAddr)
	if lead > uint64(h.Offset) {
		return nil, fmt.Errorf("multiboot: header_addr - load_addr = %#x, but the header is at file offset %#x: loading would start before the beginning of the file", lead, h.Offset)
	}
	off := uint64(h.Offset) - lead
	load := uint64(h.LoadAddr)
	filesz := uint64(len(image)) - off
	if h.LoadEndAddr != 0 {
		if h.LoadEndAddr < h.LoadAddr {
			return nil, fmt.Errorf("multiboot: load_end_addr %#x is below load_addr %#x", h.LoadEndAddr, h.LoadAddr)
		}
		filesz = uint64(h.LoadEndAddr - h.LoadAddr)
		if filesz > uint64(len(image))-off {
			return nil, fmt.Errorf("multiboot: truncated: load_addr %#x to load_end_addr %#x is %d bytes from file offset %#x, but the file has %d", h.LoadAddr, h.LoadEndAddr, filesz, off, uint64(len(image))-off)
		}
	}
	memsz := filesz
	if h.BSSEndAddr != 0 {
		if uint64(h.BSSEndAddr) < load+filesz {
			return nil, fmt.Errorf("multiboot: bss_end_addr %#x is below the end of the loaded image %#x", h.BSSEndAddr, load+filesz)
		}
		memsz = uint64(h.BSSEndAddr) - load
	}
	if load+memsz > 1<<32 {
		return nil, fmt.Errorf("multiboot: the image [%#x, %#x) reaches past 4 GiB: Multiboot v1 kernels load below 4 GiB", load, load+memsz)
	}
	if memsz == 0 {
		return nil, fmt.Errorf("multiboot: the a.out kludge fields load nothing (load_addr %#x, load_end_addr %#x, bss_end_addr %#x)", h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr)
	}
	if e := uint64(h.EntryAddr); e < load || e >= load+filesz {
		return nil, fmt.Errorf("multiboot: entry_addr %#x is outside the loaded image [%#x, %#x)", h.EntryAddr, load, load+filesz)
	}
	return &kernel{
		segs:  []segment{{name: "image", off: off, filesz: filesz, paddr: load, memsz: memsz}},
		entry: h.EntryAddr,
	}, nil
}

// elfLayout loads the PT_LOAD segments of an ELF32 (EM_386) or ELF64
// (EM_X86_64) executable at their physical addresses (p_paddr). The entry
// point e_entry is translated from virtual to physical through the segment
// whose p_vaddr range holds it; failing that it must lie in a segment's
// p_paddr range as it is.
func elfLayout(image []byte) (*kernel, error) {
	le := binary.LittleEndian
	if len(image) < ELF32_EHDR_SIZE {
		return nil, fmt.Errorf("multiboot: truncated ELF file: %d bytes, shorter than an ELF header", len(image))
	}
	class, data := image[EI_CLASS], image[EI_DATA]
	if data != ELFDATA2LSB {
		return nil, fmt.Errorf("multiboot: ELF data encoding %d, want %d (little endian): not an x86 kernel", data, ELFDATA2LSB)
	}
	if v := image[EI_VERSION]; v != EV_CURRENT {
		return nil, fmt.Errorf("multiboot: ELF version %d, want %d: the file is corrupt", v, EV_CURRENT)
	}
	var (
		entry, phoff   uint64
		phentsize      uint64
		phnum          int
		minPhent       uint64
		wantMachine    uint16
		wantMachineStr string
	)
	switch class {
	case ELFCLASS32:
		entry = uint64(le.Uint32(image[24:]))
		phoff = uint64(le.Uint32(image[28:]))
		phentsize = uint64(le.Uint16(image[42:]))
		phnum = int(le.Uint16(image[44:]))
		minPhent, wantMachine, wantMachineStr = ELF32_PHDR_SIZE, EM_386, "EM_386"
	case ELFCLASS64:
		if len(image) < ELF64_EHDR_SIZE {
			return nil, fmt.Errorf("multiboot: truncated ELF file: %d bytes, shorter than an ELF64 header", len(image))
		}
		entry = le.Uint64(image[24:])
		phoff = le.Uint64(image[32:])
		phentsize = uint64(le.Uint16(image[54:]))
		phnum = int(le.Uint16(image[56:]))
		minPhent, wantMachine, wantMachineStr = ELF64_PHDR_SIZE, EM_X86_64, "EM_X86_64"
	default:
		return nil, fmt.Errorf("multiboot: ELF class %d, want %d (ELF32) or %d (ELF64): the file is corrupt", class, ELFCLASS32, ELFCLASS64)
	}
	if t := le.Uint16(image[16:]); t != ET_EXEC {
		return nil, fmt.Errorf("multiboot: ELF type %d, want %d (ET_EXEC): Multiboot loads executables at fixed physical addresses; link the kernel as a static executable", t, ET_EXEC)
	}
	if m := le.Uint16(image[18:]); m != wantMachine {
		return nil, fmt.Errorf("multiboot: ELF machine %d, want %d (%s) for an ELF%d file: not an x86 kernel", m, wantMachine, wantMachineStr, map[byte]int{ELFCLASS32: 32, ELFCLASS64: 64}[class])
	}
	switch {
	case phnum == 0:
		return nil, fmt.Errorf("multiboot: the ELF file has no program headers: there is nothing to load; pass a linked executable")
	case phnum == PN_XNUM:
		return nil, fmt.Errorf("multiboot: the ELF file uses extended program header numbering (e_phnum %#x), which Keel does not read", PN_XNUM)
	case phentsize < minPhent:
		return nil, fmt.Errorf("multiboot: ELF e_phentsize is %d, want at least %d: the file is corrupt", phentsize, minPhent)
	}
	if tbl := uint64(phnum) * phentsize; phoff > uint64(len(image)) || tbl > uint64(len(image))-phoff {
		return nil, fmt.Errorf("multiboot: truncated ELF file: the program headers at %#x (%d of %d bytes) run past the end of the %d-byte file", phoff, phnum, phentsize, len(image))
	}

	k := &kernel{}
	var physEntry uint64
	entryFound := false
	for i := range phnum {
		p := image[phoff+uint64(i)*phentsize:]
		if le.Uint32(p[0:]) != PT_LOAD {
			continue
		}
		var off, vaddr, paddr, filesz, memsz uint64
		if class == ELFCLASS32 {
			off, vaddr, paddr = uint64(le.Uint32(p[4:])), uint64(le.Uint32(p[8:])), uint64(le.Uint32(p[12:]))
			filesz, memsz = uint64(le.Uint32(p[16:])), uint64(le.Uint32(p[20:]))
		} else {
			off, vaddr, paddr = le.Uint64(p[8:]), le.Uint64(p[16:]), le.Uint64(p[24:])
			filesz, memsz = le.Uint64(p[32:]), le.Uint64(p[40:])
		}
		if memsz == 0 {
			continue
		}
		if len(k.segs) == MAX_LOAD_SEGMENTS {
			return nil, fmt.Errorf("multiboot: the ELF file has more than %d PT_LOAD segments", MAX_LOAD_SEGMENTS)
		}
		switch {
		case filesz > memsz:
			return nil, fmt.Errorf("multiboot: ELF program header %d has p_filesz %#x > p_memsz %#x: the file is corrupt", i, filesz, memsz)
		case off > uint64(len(image)) || filesz > uint64(len(image))-off:
			return nil, fmt.Errorf("multiboot: truncated ELF file: program header %d loads %#x bytes from file offset %#x, past the end of the %d-byte file", i, filesz, off, len(image))
		case paddr >= 1<<32 || memsz > 1<<32-paddr:
			return nil, fmt.Errorf("multiboot: ELF program header %d loads at physical [%#x, %#x+%#x), past 4 GiB: Multiboot v1 kernels load below 4 GiB", i, paddr, paddr, memsz)
		}
		k.segs = append(k.segs, segment{name: fmt.Sprintf("segment %d", i), off: off, filesz: filesz, paddr: paddr, memsz: memsz})
		if !entryFound && entry >= vaddr && entry-vaddr < memsz {
			physEntry, entryFound = entry-vaddr+paddr, true
		}
	}
	if len(k.segs) == 0 {
		return nil, fmt.Errorf("multiboot: the ELF file has no PT_LOAD segment with memory: there is nothing to load")
	}
	if !entryFound {
		for _, s := range k.segs {
			if entry >= s.paddr && entry-s.paddr < s.memsz {
				physEntry, entryFound = entry, true
				break
			}
		}
	}
	if !entryFound {
		return nil, fmt.Errorf("multiboot: the ELF entry point %#x lies in no PT_LOAD segment, by virtual or physical address", entry)
	}
	k.entry = uint32(physEntry) // < 4 GiB: it lies in a segment below 4 GiB
	return k, nil
}

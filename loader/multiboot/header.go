package multiboot

import (
	"encoding/binary"
	"fmt"
)

// The OS image header (Multiboot Specification 0.6.96, §3.1 "OS image
// format"; names from its multiboot.h).
const (
	// MULTIBOOT_HEADER_MAGIC identifies the header.
	MULTIBOOT_HEADER_MAGIC = 0x1BADB002
	// MULTIBOOT_SEARCH is how much of the image holds the header: it
	// must lie completely within the first 8192 bytes.
	MULTIBOOT_SEARCH = 8192
	// MULTIBOOT_HEADER_ALIGN is the header's alignment in the file.
	MULTIBOOT_HEADER_ALIGN = 4
	// MULTIBOOT_HEADER_SIZE is magic, flags and checksum.
	MULTIBOOT_HEADER_SIZE = 12
	// MULTIBOOT_AOUT_HEADER_SIZE adds the address fields header_addr,
	// load_addr, load_end_addr, bss_end_addr and entry_addr.
	MULTIBOOT_AOUT_HEADER_SIZE = 32

	// Header flags. Bits 0-15 are requirements a loader that cannot
	// meet them must refuse; bits 16-31 are optional features (§3.1.2
	// "The magic fields of Multiboot header").
	MULTIBOOT_PAGE_ALIGN  = 1 << 0  // align boot modules on 4 KiB
	MULTIBOOT_MEMORY_INFO = 1 << 1  // pass mem_* and the memory map
	MULTIBOOT_VIDEO_MODE  = 1 << 2  // pass the video mode table
	MULTIBOOT_AOUT_KLUDGE = 1 << 16 // the address fields are valid: load by them, not the ELF headers

	// MULTIBOOT_REQUIRED_MASK are the requirement bits.
	MULTIBOOT_REQUIRED_MASK = 0xFFFF
	// SUPPORTED_REQUIREMENTS are the requirement bits Keel meets.
	SUPPORTED_REQUIREMENTS = MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO

	// MULTIBOOT2_HEADER_MAGIC starts a Multiboot2 header, which Keel
	// does not load; it is only recognised for a better error.
	MULTIBOOT2_HEADER_MAGIC = 0xE85250D6
)

// Header is a Multiboot header found in an image.
type Header struct {
	// Offset is the header's offset in the file.
	Offset int
	// Flags is the flags word.
	Flags uint32
	// The address fields, valid when Flags has MULTIBOOT_AOUT_KLUDGE
	// (§3.1.3 "The address fields of Multiboot header").
	HeaderAddr, LoadAddr, LoadEndAddr, BSSEndAddr, EntryAddr uint32
}

// String describes the header in one line.
func (h *Header) String() string {
	s := fmt.Sprintf("Multiboot header at file offset %#x, flags %#x", h.Offset, h.Flags)
	if h.Flags&MULTIBOOT_AOUT_KLUDGE != 0 {
		s += fmt.Sprintf(", header_addr %#x load_addr %#x load_end_addr %#x bss_end_addr %#x entry_addr %#x",
			h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr)
	}
	return s
}

// FindHeader returns the Multiboot header of image: the first 4-byte
// aligned magic in the first MULTIBOOT_SEARCH bytes whose checksum is
// right. It fails, saying why, if there is none, if the header asks for
// something Keel cannot provide (a video mode, or a requirement bit the
// specification does not define), or if its address fields are cut off.
func FindHeader(image []byte) (*Header, error) {
	le := binary.LittleEndian
	end := min(len(image), MULTIBOOT_SEARCH)
	badSum := -1
	mb2 := -1
	for off := 0; off+MULTIBOOT_HEADER_SIZE <= end; off += MULTIBOOT_HEADER_ALIGN {
		switch le.Uint32(image[off:]) {
		case MULTIBOOT_HEADER_MAGIC:
		case MULTIBOOT2_HEADER_MAGIC:
			if mb2 < 0 {
				mb2 = off
			}
			continue
		default:
			continue
		}
		flags := le.Uint32(image[off+4:])
		if MULTIBOOT_HEADER_MAGIC+flags+le.Uint32(image[off+8:]) != 0 {
			if badSum < 0 {
				badSum = off
			}
			continue
		}
		h := &Header{Offset: off, Flags: flags}
		if err := h.check(); err != nil {
			return nil, err
		}
		if flags&MULTIBOOT_AOUT_KLUDGE != 0 {
			if off+MULTIBOOT_AOUT_HEADER_SIZE > end {
				return nil, fmt.Errorf("multiboot: the header at file offset %#x has flags bit 16 (a.out kludge), but its address fields end at %#x, past the end of the first %d bytes of the %d-byte file", off, off+MULTIBOOT_AOUT_HEADER_SIZE, MULTIBOOT_SEARCH, len(image))
			}
			f := func(i int) uint32 { return le.Uint32(image[off+4*i:]) }
			h.HeaderAddr, h.LoadAddr, h.LoadEndAddr, h.BSSEndAddr, h.EntryAddr = f(3), f(4), f(5), f(6), f(7)
		}
		return h, nil
	}
	switch {
	case badSum >= 0:
		sum := MULTIBOOT_HEADER_MAGIC + le.Uint32(image[badSum+4:]) + le.Uint32(image[badSum+8:])
		return nil, fmt.Errorf("multiboot: the header at file offset %#x has a bad checksum (magic + flags + checksum = %#x, want 0): the image is corrupt", badSum, uint32(sum))
	case mb2 >= 0:
		return nil, fmt.Errorf("multiboot: the image has a Multiboot2 header (file offset %#x) but no Multiboot v1 header: Keel loads Multiboot v1 kernels only", mb2)
	case len(image) >= 0x206 && le.Uint32(image[0x202:]) == 0x53726448:
		return nil, fmt.Errorf("multiboot: no Multiboot header in the first %d bytes; the image is a Linux bzImage: boot it as a Linux kernel", MULTIBOOT_SEARCH)
	}
	return nil, fmt.Errorf("multiboot: no Multiboot header (magic %#x, 4-byte aligned, right checksum) in the first %d bytes of the %d-byte image: not a Multiboot kernel", MULTIBOOT_HEADER_MAGIC, MULTIBOOT_SEARCH, len(image))
}

// check refuses requirements Keel cannot meet.
func (h *Header) check() error {
	req := h.Flags & MULTIBOOT_REQUIRED_MASK
	if req&MULTIBOOT_VIDEO_MODE != 0 {
		return fmt.Errorf("multiboot: the header (flags %#x) requires a video mode (bit 2), which Keel cannot provide: its VMs have no display; build the kernel without MULTIBOOT_VIDEO_MODE", h.Flags)
	}
	if bad := req &^ SUPPORTED_REQUIREMENTS; bad != 0 {
		return fmt.Errorf("multiboot: the header (flags %#x) has requirement bits %#x that Multiboot 0.6.96 does not define; Keel refuses them as the specification asks", h.Flags, bad)
	}
	return nil
}

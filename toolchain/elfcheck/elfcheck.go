// Package elfcheck inspects kernel ELF images on the host: it finds the PVH
// entry point that `qemu -kernel` (and any PVH loader) uses to start Keel.
//
// A PVH kernel carries an ELF note named "Xen" of type
// XEN_ELFNOTE_PHYS32_ENTRY whose descriptor is the 32-bit protected-mode
// entry address (xen/include/public/elfnote.h). QEMU's PVH loader
// (load_elfboot) finds it through the PT_NOTE program headers and truncates
// it to 32 bits.
// The keel linker patch emits it as section .note.go.pvh in a PT_NOTE
// segment.
//
// Host-only package.
package elfcheck

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Constants from xen/include/public/elfnote.h.
const (
	// XEN_ELFNOTE_PHYS32_ENTRY is the note type holding the physical
	// 32-bit entry point of a PVH kernel.
	XEN_ELFNOTE_PHYS32_ENTRY = 0x12
	// XenNoteName is the owner name of Xen notes (stored as "Xen\0").
	XenNoteName = "Xen"
)

// EntrySymbol is the symbol the keel linker patch points the PVH note at.
const EntrySymbol = "_rt0_amd64_tamago"

// Note is one ELF note.
type Note struct {
	// Name is the owner name without its terminating NUL.
	Name string
	// Type is the note type, interpreted per owner.
	Type uint32
	// Desc is the descriptor.
	Desc []byte
}

// PVH is a PVH entry note found in an ELF file.
type PVH struct {
	// Entry is the descriptor's address.
	Entry uint64
	// Where names the segment or section the note was found in.
	Where string
	// InSegment is true if the note was found through a PT_NOTE program
	// header, which is where QEMU looks. A note only in a section is
	// invisible to it.
	InSegment bool
}

// FindPVH returns the PVH entry note of f. It searches the PT_NOTE segments
// first and, if none holds the note, the SHT_NOTE sections.
func FindPVH(f *elf.File) (PVH, error) {
	order := f.ByteOrder
	for i, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		where := fmt.Sprintf("PT_NOTE segment %d", i)
		data, err := io.ReadAll(io.NewSectionReader(p, 0, int64(p.Filesz)))
		if err != nil {
			return PVH{}, fmt.Errorf("reading %s: %w", where, err)
		}
		pvh, found, err := findPVHIn(data, order, p.Align, where)
		if err != nil {
			return PVH{}, err
		}
		if found {
			pvh.InSegment = true
			return pvh, nil
		}
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		where := "section " + s.Name
		data, err := s.Data()
		if err != nil {
			return PVH{}, fmt.Errorf("reading %s: %w", where, err)
		}
		pvh, found, err := findPVHIn(data, order, s.Addralign, where)
		if err != nil {
			return PVH{}, err
		}
		if found {
			return pvh, nil
		}
	}
	return PVH{}, fmt.Errorf("no %q note of type %#x (XEN_ELFNOTE_PHYS32_ENTRY) in any PT_NOTE segment or note section: qemu -kernel will refuse this ELF; the linker must emit .note.go.pvh (toolchain patch for cmd/link)",
		XenNoteName, XEN_ELFNOTE_PHYS32_ENTRY)
}

func findPVHIn(data []byte, order binary.ByteOrder, align uint64, where string) (PVH, bool, error) {
	notes, err := ParseNotes(data, order, align)
	if err != nil {
		return PVH{}, false, fmt.Errorf("%s: %w", where, err)
	}
	for _, n := range notes {
		if n.Name != XenNoteName || n.Type != XEN_ELFNOTE_PHYS32_ENTRY {
			continue
		}
		var entry uint64
		switch len(n.Desc) {
		case 4:
			entry = uint64(order.Uint32(n.Desc))
		case 8:
			entry = order.Uint64(n.Desc)
		default:
			return PVH{}, false, fmt.Errorf("%s: Xen PHYS32_ENTRY note has a %d-byte descriptor: expected 4 or 8 bytes holding the entry address", where, len(n.Desc))
		}
		return PVH{Entry: entry, Where: where}, true, nil
	}
	return PVH{}, false, nil
}

// ParseNotes splits the content of a note segment or section into notes.
// align is the segment's or section's alignment: 8 means 8-byte padding of
// name and descriptor, anything else the usual 4.
func ParseNotes(data []byte, order binary.ByteOrder, align uint64) ([]Note, error) {
	pad := uint64(4)
	if align == 8 {
		pad = 8
	}
	roundUp := func(n uint64) uint64 { return (n + pad - 1) &^ (pad - 1) }
	var notes []Note
	off := uint64(0)
	size := uint64(len(data))
	for off < size {
		if size-off < 12 {
			return nil, fmt.Errorf("note at offset %d is truncated: %d bytes left, a note header needs 12", off, size-off)
		}
		namesz := uint64(order.Uint32(data[off:]))
		descsz := uint64(order.Uint32(data[off+4:]))
		typ := order.Uint32(data[off+8:])
		nameOff := off + 12
		descOff := nameOff + roundUp(namesz)
		end := descOff + roundUp(descsz)
		if descOff+descsz > size || descOff < nameOff {
			return nil, fmt.Errorf("note at offset %d is truncated: name (%d bytes) and descriptor (%d bytes) run past the end (%d bytes)", off, namesz, descsz, size)
		}
		name := data[nameOff : nameOff+namesz]
		if len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		notes = append(notes, Note{Name: string(name), Type: typ, Desc: data[descOff : descOff+descsz]})
		if end > size {
			end = size // the last note's padding may be missing
		}
		off = end
	}
	return notes, nil
}

// CheckKernel checks that the ELF file at path can be booted with
// `qemu -kernel`: it has a PVH entry note in a PT_NOTE segment, the entry is
// below 4 GiB and inside an executable PT_LOAD segment, and, if the file has
// a symbol table with EntrySymbol, the note points at that symbol. It
// returns the entry address.
func CheckKernel(path string) (uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%s: not a readable ELF file: %w", path, err)
	}
	defer f.Close()
	pvh, err := FindPVH(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if !pvh.InSegment {
		return 0, fmt.Errorf("%s: the PVH note is in %s but no PT_NOTE segment covers it: PVH loaders read notes through the program headers (QEMU 7.2 finds it only because it reads past the end of a PT_NOTE segment); the linker must cover .note.go.pvh with a PT_NOTE segment", path, pvh.Where)
	}
	if pvh.Entry >= 1<<32 {
		return 0, fmt.Errorf("%s: PVH entry %#x is above 4 GiB: PVH enters in 32-bit mode and QEMU truncates the address; link the kernel lower (-T)", path, pvh.Entry)
	}
	inText := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && pvh.Entry >= p.Paddr && pvh.Entry < p.Paddr+p.Memsz {
			inText = true
		}
	}
	if !inText {
		return 0, fmt.Errorf("%s: PVH entry %#x is not inside any executable PT_LOAD segment (by physical address): the note points at the wrong place", path, pvh.Entry)
	}
	syms, err := f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return 0, fmt.Errorf("%s: reading symbols: %w", path, err)
	}
	for _, s := range syms {
		if s.Name == EntrySymbol && s.Value != pvh.Entry {
			return 0, fmt.Errorf("%s: PVH entry %#x is not %s (%#x)", path, pvh.Entry, EntrySymbol, s.Value)
		}
	}
	return pvh.Entry, nil
}

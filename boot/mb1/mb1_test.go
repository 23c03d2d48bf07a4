package mb1

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// synth describes a synthetic ELF file for the tests. Sections and
// segments are written as headers only; their contents are whatever fill
// puts in the file (zeros elsewhere).
type synth struct {
	class elf.Class
	entry uint64
	loads []prog // PT_LOAD
	notes []prog // PT_NOTE
	secs  []sec
	size  int
	fill  []fill
}

type prog struct{ off, vaddr, paddr, filesz, memsz uint64 }

type sec struct {
	typ       elf.SectionType
	off, size uint64
}

type fill struct {
	off, n int
	b      byte
}

// build lays out the ELF header, the program header table right after it
// and the section header table right after that, like Go's linker.
func (s synth) build() []byte {
	is64 := s.class != elf.ELFCLASS32
	ehsize, phentsize, shentsize := 52, 32, 40
	if is64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	nph := len(s.loads) + len(s.notes)
	nsh := len(s.secs) + 1 // plus the null section
	phoff := ehsize
	shoff := phoff + nph*phentsize
	img := make([]byte, s.size)
	le := binary.LittleEndian

	copy(img, []byte{0x7f, 'E', 'L', 'F'})
	img[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	img[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le.PutUint16(img[16:], uint16(elf.ET_EXEC))
	le.PutUint32(img[20:], uint32(elf.EV_CURRENT))
	if is64 {
		img[elf.EI_CLASS] = byte(elf.ELFCLASS64)
		le.PutUint16(img[18:], uint16(elf.EM_X86_64))
		le.PutUint64(img[24:], s.entry)
		le.PutUint64(img[32:], uint64(phoff))
		le.PutUint64(img[40:], uint64(shoff))
		le.PutUint16(img[52:], uint16(ehsize))
		le.PutUint16(img[54:], uint16(phentsize))
		le.PutUint16(img[56:], uint16(nph))
		le.PutUint16(img[58:], uint16(shentsize))
		le.PutUint16(img[60:], uint16(nsh))
	} else {
		img[elf.EI_CLASS] = byte(elf.ELFCLASS32)
		le.PutUint16(img[18:], uint16(elf.EM_386))
		le.PutUint32(img[24:], uint32(s.entry))
		le.PutUint32(img[28:], uint32(phoff))
		le.PutUint32(img[32:], uint32(shoff))
		le.PutUint16(img[40:], uint16(ehsize))
		le.PutUint16(img[42:], uint16(phentsize))
		le.PutUint16(img[44:], uint16(nph))
		le.PutUint16(img[46:], uint16(shentsize))
		le.PutUint16(img[48:], uint16(nsh))
	}

	ph := img[phoff:]
	put := func(typ elf.ProgType, p prog) {
		if is64 {
			le.PutUint32(ph[0:], uint32(typ))
			le.PutUint32(ph[4:], uint32(elf.PF_R))
			le.PutUint64(ph[8:], p.off)
			le.PutUint64(ph[16:], p.vaddr)
			le.PutUint64(ph[24:], p.paddr)
			le.PutUint64(ph[32:], p.filesz)
			le.PutUint64(ph[40:], p.memsz)
			le.PutUint64(ph[48:], 0x1000)
		} else {
			le.PutUint32(ph[0:], uint32(typ))
			le.PutUint32(ph[4:], uint32(p.off))
			le.PutUint32(ph[8:], uint32(p.vaddr))
			le.PutUint32(ph[12:], uint32(p.paddr))
			le.PutUint32(ph[16:], uint32(p.filesz))
			le.PutUint32(ph[20:], uint32(p.memsz))
			le.PutUint32(ph[24:], uint32(elf.PF_R))
			le.PutUint32(ph[28:], 0x1000)
		}
		ph = ph[phentsize:]
	}
	for _, p := range s.loads {
		put(elf.PT_LOAD, p)
	}
	for _, p := range s.notes {
		put(elf.PT_NOTE, p)
	}

	sh := img[shoff+shentsize:] // after the null section
	for _, c := range s.secs {
		if is64 {
			le.PutUint32(sh[4:], uint32(c.typ))
			le.PutUint64(sh[24:], c.off)
			le.PutUint64(sh[32:], c.size)
		} else {
			le.PutUint32(sh[4:], uint32(c.typ))
			le.PutUint32(sh[16:], uint32(c.off))
			le.PutUint32(sh[20:], uint32(c.size))
		}
		sh = sh[shentsize:]
	}
	for _, f := range s.fill {
		for i := range f.n {
			img[f.off+i] = f.b
		}
	}
	return img
}

// keelLike is laid out like build/keel.elf: headers in the first segment
// at file offset 0, text from 0x1000, data with bss in the last segment.
// Headers end at 64 + 3*56 = 0xe8 (program headers) + 4*64 = 0x1e8
// (section headers, with the null section).
func keelLike() synth {
	return synth{
		class: elf.ELFCLASS64,
		entry: 0x400_1010,
		loads: []prog{
			{off: 0, vaddr: 0x400_0000, paddr: 0x400_0000, filesz: 0x1100, memsz: 0x1100},
			{off: 0x2000, vaddr: 0x400_2000, paddr: 0x400_2000, filesz: 0x40, memsz: 0x1000},
		},
		notes: []prog{{off: 0xf00, vaddr: 0x400_0f00, paddr: 0x400_0f00, filesz: 0x20, memsz: 0x20}},
		secs: []sec{
			{typ: elf.SHT_NOTE, off: 0xf00, size: 0x20},
			{typ: elf.SHT_PROGBITS, off: 0x1000, size: 0x100},
			{typ: elf.SHT_PROGBITS, off: 0x2000, size: 0x40},
		},
		size: 0x2040,
		fill: []fill{{0xf00, 0x20, 0x11}, {0x1000, 0x100, 0xcc}, {0x2000, 0x40, 0xdd}},
	}
}

func TestPatch(t *testing.T) {
	tests := []struct {
		name   string
		synth  func() synth
		offset int
		want   Header // Offset and HeaderAddr are derived from offset
	}{
		{
			name:   "keel-like elf64",
			synth:  keelLike,
			offset: 0x1e8,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
		{
			name: "elf32",
			synth: func() synth {
				s := keelLike()
				s.class = elf.ELFCLASS32
				return s
			},
			// 52 + 3*32 = 0x94, + 4*40 = 0x134.
			offset: 0x134,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
		{
			name: "zero-filled note is not a gap",
			synth: func() synth {
				s := keelLike()
				s.notes = append(s.notes, prog{off: 0x220, vaddr: 0x400_0220, paddr: 0x400_0220, filesz: 0x20, memsz: 0x20})
				return s
			},
			// The extra program header moves the section table by
			// 56 bytes: it ends at 0x220; the note covers it to 0x240.
			offset: 0x240,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
		{
			name: "zero-filled section is not a gap",
			synth: func() synth {
				s := keelLike()
				s.secs = append(s.secs, sec{typ: elf.SHT_PROGBITS, off: 0x228, size: 0x40})
				return s
			},
			offset: 0x268,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
		{
			name: "gap must be all zero",
			synth: func() synth {
				s := keelLike()
				s.fill = append(s.fill, fill{0x1f8, 1, 0xff})
				return s
			},
			offset: 0x1fc,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
		{
			name: "pure bss segment",
			synth: func() synth {
				s := keelLike()
				s.loads = append(s.loads, prog{off: 0x2040, vaddr: 0x400_4000, paddr: 0x400_4000, memsz: 0x8000})
				return s
			},
			offset: 0x220,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_c000, EntryAddr: 0x400_1010},
		},
		{
			name: "bss before the last segment with zero padding",
			synth: func() synth {
				s := keelLike()
				s.loads[0].memsz = 0x1800
				return s
			},
			offset: 0x1e8,
			want:   Header{LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.synth().build()
			orig := bytes.Clone(in)
			out, h, err := Patch(in)
			if err != nil {
				t.Fatalf("Patch: %v", err)
			}
			if !bytes.Equal(in, orig) {
				t.Error("Patch modified its input")
			}
			want := tt.want
			want.Offset = tt.offset
			want.Flags = Flags
			want.HeaderAddr = want.LoadAddr + uint32(tt.offset)
			if h != want {
				t.Errorf("Patch header:\n got %v\nwant %v", h, want)
			}
			checkPatched(t, orig, out, h)

			// Running it again changes nothing.
			again, h2, err := Patch(out)
			if err != nil {
				t.Fatalf("Patch of the patched file: %v", err)
			}
			if h2 != h || !bytes.Equal(again, out) {
				t.Errorf("Patch is not idempotent: second header %v", h2)
			}
		})
	}
}

// checkPatched checks that out is orig with exactly the header h written,
// that a loader finds h first, and that the file still parses as before.
func checkPatched(t *testing.T, orig, out []byte, h Header) {
	t.Helper()
	if len(out) != len(orig) {
		t.Fatalf("patched file is %d bytes, want %d", len(out), len(orig))
	}
	if h.Offset%MULTIBOOT_HEADER_ALIGN != 0 || h.Offset+HeaderSize > MULTIBOOT_SEARCH {
		t.Errorf("header at %#x: want 4-byte aligned within the first %d bytes", h.Offset, MULTIBOOT_SEARCH)
	}
	if !bytes.Equal(out[:h.Offset], orig[:h.Offset]) || !bytes.Equal(out[h.Offset+HeaderSize:], orig[h.Offset+HeaderSize:]) {
		t.Error("Patch changed bytes outside the header")
	}
	le := binary.LittleEndian
	magic, flags, sum := le.Uint32(out[h.Offset:]), le.Uint32(out[h.Offset+4:]), le.Uint32(out[h.Offset+8:])
	if magic != MULTIBOOT_HEADER_MAGIC || magic+flags+sum != 0 {
		t.Errorf("header words magic=%#x flags=%#x checksum=%#x: want magic %#x and a zero sum", magic, flags, sum, MULTIBOOT_HEADER_MAGIC)
	}
	if flags != MULTIBOOT_PAGE_ALIGN|MULTIBOOT_MEMORY_INFO|MULTIBOOT_AOUT_KLUDGE {
		t.Errorf("flags = %#x, want bits 0, 1 and 16", flags)
	}
	if found, ok := Find(out); !ok || found != h {
		t.Errorf("Find = %v, %v; want the header written, %v", found, ok, h)
	}
	// What a loader computes (Multiboot 0.6.96 section 3.1.3): the load
	// starts at file offset header offset - (header_addr - load_addr).
	if start := int64(h.Offset) - int64(h.HeaderAddr-h.LoadAddr); start != 0 {
		t.Errorf("the loader would start copying at file offset %d, want 0", start)
	}
	if n := int(h.LoadEndAddr - h.LoadAddr); n > len(out) {
		t.Errorf("load_end_addr - load_addr = %d exceeds the file (%d bytes)", n, len(out))
	}
	f1, err1 := elf.NewFile(bytes.NewReader(orig))
	f2, err2 := elf.NewFile(bytes.NewReader(out))
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing: %v, %v", err1, err2)
	}
	if len(f1.Progs) != len(f2.Progs) || len(f1.Sections) != len(f2.Sections) || f1.Entry != f2.Entry {
		t.Error("the patched file no longer parses like the original")
	}
}

func TestPatchErrors(t *testing.T) {
	tests := []struct {
		name  string
		image func(t *testing.T) []byte
		want  string
	}{
		{"not elf", func(t *testing.T) []byte { return []byte("#!/bin/sh\necho not a kernel\n") }, "not a readable ELF file"},
		{"no PT_LOAD", func(t *testing.T) []byte {
			s := keelLike()
			s.loads = nil
			return s.build()
		}, "no PT_LOAD"},
		{"first segment not at offset 0", func(t *testing.T) []byte {
			s := keelLike()
			s.loads[0].off, s.loads[0].vaddr, s.loads[0].paddr, s.loads[0].filesz = 0x1000, 0x400_1000, 0x400_1000, 0x100
			return s.build()
		}, "starts at file offset 0x1000, want 0"},
		{"inconsistent vaddr - offset", func(t *testing.T) []byte {
			s := keelLike()
			s.loads[1].vaddr, s.loads[1].paddr = 0x400_3000, 0x400_3000
			return s.build()
		}, "p_vaddr - p_offset = 0x4003000 - 0x2000 = 0x4001000, but the first PT_LOAD has 0x4000000"},
		{"virtual != physical", func(t *testing.T) []byte {
			s := keelLike()
			s.loads[1].vaddr = 0xffff_8000_0400_2000
			s.loads[0].vaddr = 0xffff_8000_0400_0000
			s.entry = 0xffff_8000_0400_1010
			return s.build()
		}, "must be linked with virtual = physical addresses"},
		{"above 4 GiB", func(t *testing.T) []byte {
			s := keelLike()
			for i := range s.loads {
				s.loads[i].vaddr += 1 << 32
				s.loads[i].paddr += 1 << 32
			}
			s.entry += 1 << 32
			return s.build()
		}, "linked below 4 GiB"},
		{"entry outside the image", func(t *testing.T) []byte {
			s := keelLike()
			s.entry = 0x10_0000
			return s.build()
		}, "entry point 0x100000 is outside the loaded image"},
		{"truncated", func(t *testing.T) []byte {
			return keelLike().build()[:0x2020]
		}, "runs past the end"},
		{"bss overlaid by nonzero bytes", func(t *testing.T) []byte {
			s := keelLike()
			s.loads[0].memsz = 0x1800
			s.fill = append(s.fill, fill{0x1700, 4, 0x90})
			return s.build()
		}, "PT_LOAD 0's bss at 0x4001100 would receive nonzero file bytes (file offset 0x1700)"},
		{"no gap", func(t *testing.T) []byte {
			s := keelLike()
			s.fill = append(s.fill, fill{0x1e8, 0x2040 - 0x1e8, 0xcc})
			return s.build()
		}, "no free space for the 32-byte Multiboot header"},
		{"existing header without room", func(t *testing.T) []byte {
			img := keelLike().build()
			h := Header{Flags: MULTIBOOT_PAGE_ALIGN}.Bytes()[:baseSize]
			copy(img[0xf00:], h) // inside the filled note
			return img
		}, "already has a Multiboot header at offset 0xf00 (flags 0x1) without room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Patch(tt.image(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Patch error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestPatchExistingHeader checks that a kernel's own Multiboot header (no
// address fields, zeros after it) is completed in place, not shadowed by a
// second header that loaders would never reach.
func TestPatchExistingHeader(t *testing.T) {
	s := keelLike()
	s.secs = append(s.secs, sec{typ: elf.SHT_PROGBITS, off: 0x400, size: baseSize})
	img := s.build()
	copy(img[0x400:], Header{Flags: MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO}.Bytes()[:baseSize])
	out, h, err := Patch(img)
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != 0x400 || h.HeaderAddr != 0x400_0400 {
		t.Errorf("header at %#x (header_addr %#x), want the existing one at 0x400", h.Offset, h.HeaderAddr)
	}
	checkPatched(t, img, out, h)
}

func TestLayout(t *testing.T) {
	h, err := Layout(keelLike().build())
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Flags: Flags, LoadAddr: 0x400_0000, LoadEndAddr: 0x400_2040, BSSEndAddr: 0x400_3000, EntryAddr: 0x400_1010}
	if h != want {
		t.Errorf("Layout = %v, want %v", h, want)
	}
}

// TestPatchKernel patches the real kernel (KEEL_KERNEL, set by make test)
// and checks the header against the ELF's own program headers, read here
// independently of the package.
func TestPatchKernel(t *testing.T) {
	path := os.Getenv("KEEL_KERNEL")
	if path == "" {
		t.Skip("KEEL_KERNEL is not set (make test sets it to build/keel.elf)")
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("KEEL_KERNEL=%s: %v; run `make kernel` first", path, err)
	}
	out, h, err := Patch(img)
	if err != nil {
		t.Fatalf("Patch(%s): %v", path, err)
	}
	t.Logf("%s: %v", path, h)
	checkPatched(t, img, out, h)

	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	var loads []*elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			loads = append(loads, p)
		}
	}
	first, last := loads[0], loads[len(loads)-1]
	want := Header{
		Offset:      h.Offset,
		Flags:       Flags,
		HeaderAddr:  uint32(first.Paddr) + uint32(h.Offset),
		LoadAddr:    uint32(first.Paddr),
		LoadEndAddr: uint32(last.Paddr + last.Filesz),
		BSSEndAddr:  uint32(last.Paddr + last.Memsz),
		EntryAddr:   uint32(f.Entry),
	}
	if h != want {
		t.Errorf("header for %s:\n got %v\nwant %v", path, h, want)
	}
	// The kernel is loaded at its ELF physical addresses: 0x0400F000
	// for the first segment (RAM_START + 60 KiB, text at +64 KiB).
	if first.Off != 0 || first.Paddr != 0x0400_f000 {
		t.Logf("note: the first PT_LOAD is at offset %#x, address %#x (was 0, 0x400f000 when this test was written)", first.Off, first.Paddr)
	}

	// The Multiboot2 header, if the kernel has one, is left alone and
	// still found by a loader's search: 8-byte aligned in the first
	// 32 KiB, magic plus checksum.
	for off := 0; off+16 <= min(len(out), 32768); off += 8 {
		le := binary.LittleEndian
		if le.Uint32(out[off:]) == 0xE85250D6 {
			if le.Uint32(out[off:])+le.Uint32(out[off+4:])+le.Uint32(out[off+8:])+le.Uint32(out[off+12:]) != 0 {
				t.Errorf("Multiboot2 header at %#x has a bad checksum after patching", off)
			}
			t.Logf("Multiboot2 header at file offset %#x", off)
			break
		}
	}
}

// FuzzPatch checks that no input makes Patch panic and that whatever it
// accepts carries a correct header.
func FuzzPatch(f *testing.F) {
	f.Add(keelLike().build())
	s := keelLike()
	s.class = elf.ELFCLASS32
	f.Add(s.build())
	f.Fuzz(func(t *testing.T, in []byte) {
		out, h, err := Patch(in)
		if err != nil {
			return
		}
		if found, ok := Find(out); !ok || found != h {
			t.Fatalf("Patch wrote %v but Find sees %v, %v", h, found, ok)
		}
	})
}

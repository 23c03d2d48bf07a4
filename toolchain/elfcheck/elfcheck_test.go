package elfcheck

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadBase is where the test images are "linked".
const loadBase = 0x100000

// elfSpec describes a tiny ELF image made by makeELF: one PT_LOAD segment
// covering the whole file, a note blob, a few bytes of "text", and
// optionally section headers.
type elfSpec struct {
	class         elf.Class
	notes         []byte
	noteAlign     uint64
	noteInSegment bool // add a PT_NOTE program header for the notes
	noteInSection bool // add section headers with an SHT_NOTE section
	readOnlyLoad  bool // PT_LOAD without PF_X
}

// makeELF builds the image and returns it with the address of its text.
func makeELF(t *testing.T, s elfSpec) ([]byte, uint64) {
	t.Helper()
	le := binary.LittleEndian
	is64 := s.class == elf.ELFCLASS64
	ehsize, phentsize, shentsize := uint64(52), uint64(32), uint64(40)
	if is64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	align := func(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

	phnum := uint64(1)
	if s.noteInSegment {
		phnum++
	}
	notesOff := align(ehsize+phnum*phentsize, 8)
	textOff := align(notesOff+uint64(len(s.notes)), 16)
	text := bytes.Repeat([]byte{0xf4}, 16) // hlt
	end := textOff + uint64(len(text))
	shstrtab := []byte("\x00.note.go.pvh\x00.shstrtab\x00")
	var shstrOff, shOff, shnum uint64
	if s.noteInSection {
		shstrOff = end
		shOff = align(shstrOff+uint64(len(shstrtab)), 8)
		shnum = 3
		end = shOff + shnum*shentsize
	}
	textAddr := loadBase + textOff
	flags := elf.PF_R | elf.PF_X
	if s.readOnlyLoad {
		flags = elf.PF_R
	}

	var b bytes.Buffer
	w := func(v any) {
		if err := binary.Write(&b, le, v); err != nil {
			t.Fatal(err)
		}
	}
	pad := func(to uint64) {
		if uint64(b.Len()) > to {
			t.Fatalf("layout overlap: at %d, want %d", b.Len(), to)
		}
		b.Write(make([]byte, to-uint64(b.Len())))
	}
	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS] = byte(s.class)
	ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	shstrndx := uint16(0)
	if s.noteInSection {
		shstrndx = 2
	}
	if is64 {
		w(elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
			Entry: textAddr, Phoff: ehsize, Shoff: shOff, Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(phnum),
			Shentsize: uint16(shentsize), Shnum: uint16(shnum), Shstrndx: shstrndx})
		w(elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(flags), Off: 0, Vaddr: loadBase, Paddr: loadBase, Filesz: end, Memsz: end, Align: 0x1000})
		if s.noteInSegment {
			w(elf.Prog64{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R), Off: notesOff, Vaddr: loadBase + notesOff, Paddr: loadBase + notesOff,
				Filesz: uint64(len(s.notes)), Memsz: uint64(len(s.notes)), Align: s.noteAlign})
		}
	} else {
		w(elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_386), Version: uint32(elf.EV_CURRENT),
			Entry: uint32(textAddr), Phoff: uint32(ehsize), Shoff: uint32(shOff), Ehsize: uint16(ehsize), Phentsize: uint16(phentsize), Phnum: uint16(phnum),
			Shentsize: uint16(shentsize), Shnum: uint16(shnum), Shstrndx: shstrndx})
		w(elf.Prog32{Type: uint32(elf.PT_LOAD), Flags: uint32(flags), Off: 0, Vaddr: loadBase, Paddr: loadBase, Filesz: uint32(end), Memsz: uint32(end), Align: 0x1000})
		if s.noteInSegment {
			w(elf.Prog32{Type: uint32(elf.PT_NOTE), Flags: uint32(elf.PF_R), Off: uint32(notesOff), Vaddr: uint32(loadBase + notesOff), Paddr: uint32(loadBase + notesOff),
				Filesz: uint32(len(s.notes)), Memsz: uint32(len(s.notes)), Align: uint32(s.noteAlign)})
		}
	}
	pad(notesOff)
	b.Write(s.notes)
	pad(textOff)
	b.Write(text)
	if s.noteInSection {
		pad(shstrOff)
		b.Write(shstrtab)
		pad(shOff)
		type sec struct {
			name, typ           uint32
			addr, off, size, al uint64
		}
		secs := []sec{
			{},
			{name: 1, typ: uint32(elf.SHT_NOTE), addr: loadBase + notesOff, off: notesOff, size: uint64(len(s.notes)), al: s.noteAlign},
			{name: 14, typ: uint32(elf.SHT_STRTAB), off: shstrOff, size: uint64(len(shstrtab)), al: 1},
		}
		for _, x := range secs {
			if is64 {
				w(elf.Section64{Name: x.name, Type: x.typ, Addr: x.addr, Off: x.off, Size: x.size, Addralign: x.al})
			} else {
				w(elf.Section32{Name: x.name, Type: x.typ, Addr: uint32(x.addr), Off: uint32(x.off), Size: uint32(x.size), Addralign: uint32(x.al)})
			}
		}
	}
	if uint64(b.Len()) != end {
		t.Fatalf("image is %d bytes, layout says %d", b.Len(), end)
	}
	return b.Bytes(), textAddr
}

// note encodes one ELF note (little-endian) with name and descriptor padded
// to padTo bytes.
func note(name string, typ uint32, desc []byte, padTo int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	nameBytes := []byte(name)
	if name != "" {
		nameBytes = append(nameBytes, 0)
	}
	b.Write(le.AppendUint32(nil, uint32(len(nameBytes))))
	b.Write(le.AppendUint32(nil, uint32(len(desc))))
	b.Write(le.AppendUint32(nil, typ))
	padded := func(p []byte) {
		b.Write(p)
		b.Write(make([]byte, (padTo-len(p)%padTo)%padTo))
	}
	padded(nameBytes)
	padded(desc)
	return b.Bytes()
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// entryMarker in a note descriptor is replaced by the image's text address.
const entryMarker = 0xdeadbeef

func pvhNote32() []byte { return note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, u32(entryMarker), 4) }

// withEntry rewrites entryMarker descriptors to entry.
func withEntry(img []byte, entry uint64) []byte {
	img = bytes.ReplaceAll(img, u64(entryMarker), u64(entry))
	return bytes.ReplaceAll(img, u32(entryMarker), u32(uint32(entry)))
}

func TestFindPVH(t *testing.T) {
	gnuBuildID := note("GNU", 3, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 4)
	goBuildID := note("Go", 4, []byte("build-id-xyz"), 4)
	tests := []struct {
		name        string
		spec        elfSpec
		wantSegment bool
		wantErr     string
		wantWhere   string
	}{
		{
			name:        "ELF64, 4-byte descriptor",
			spec:        elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSegment: true},
			wantSegment: true, wantWhere: "PT_NOTE segment 1",
		},
		{
			name:        "ELF64, 8-byte descriptor",
			spec:        elfSpec{class: elf.ELFCLASS64, notes: note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, u64(entryMarker), 4), noteAlign: 4, noteInSegment: true},
			wantSegment: true,
		},
		{
			name:        "ELF32",
			spec:        elfSpec{class: elf.ELFCLASS32, notes: pvhNote32(), noteAlign: 4, noteInSegment: true},
			wantSegment: true,
		},
		{
			name:        "after other notes",
			spec:        elfSpec{class: elf.ELFCLASS64, notes: concat(gnuBuildID, goBuildID, note("Xen", 0x11, u32(1), 4), pvhNote32()), noteAlign: 4, noteInSegment: true},
			wantSegment: true,
		},
		{
			name:        "8-byte aligned notes",
			spec:        elfSpec{class: elf.ELFCLASS64, notes: concat(note("GNU", 5, u32(7), 8), note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, u32(entryMarker), 8)), noteAlign: 8, noteInSegment: true},
			wantSegment: true,
		},
		{
			name:      "only in a section",
			spec:      elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSection: true},
			wantWhere: "section .note.go.pvh",
		},
		{
			name:        "segment and section",
			spec:        elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSegment: true, noteInSection: true},
			wantSegment: true,
		},
		{
			name:    "no notes at all",
			spec:    elfSpec{class: elf.ELFCLASS64},
			wantErr: "no \"Xen\" note of type 0x12",
		},
		{
			name:    "Xen note of another type",
			spec:    elfSpec{class: elf.ELFCLASS64, notes: note("Xen", 0x11, u32(entryMarker), 4), noteAlign: 4, noteInSegment: true},
			wantErr: "no \"Xen\" note of type 0x12",
		},
		{
			name:    "type 0x12 of another owner",
			spec:    elfSpec{class: elf.ELFCLASS64, notes: note("Xe", XEN_ELFNOTE_PHYS32_ENTRY, u32(entryMarker), 4), noteAlign: 4, noteInSegment: true},
			wantErr: "no \"Xen\" note of type 0x12",
		},
		{
			name:    "2-byte descriptor",
			spec:    elfSpec{class: elf.ELFCLASS64, notes: note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, []byte{1, 2}, 4), noteAlign: 4, noteInSegment: true},
			wantErr: "2-byte descriptor",
		},
		{
			name:    "truncated header",
			spec:    elfSpec{class: elf.ELFCLASS64, notes: concat(pvhNote32()[:8]), noteAlign: 4, noteInSegment: true},
			wantErr: "truncated",
		},
		{
			name:    "descriptor runs past the end",
			spec:    elfSpec{class: elf.ELFCLASS64, notes: pvhNote32()[:18], noteAlign: 4, noteInSegment: true},
			wantErr: "truncated",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, text := makeELF(t, tt.spec)
			img = withEntry(img, text)
			f, err := elf.NewFile(bytes.NewReader(img))
			if err != nil {
				t.Fatalf("test image does not parse: %v", err)
			}
			got, err := FindPVH(f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FindPVH error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Entry != text {
				t.Errorf("Entry = %#x, want %#x", got.Entry, text)
			}
			if got.InSegment != tt.wantSegment {
				t.Errorf("InSegment = %v, want %v", got.InSegment, tt.wantSegment)
			}
			if tt.wantWhere != "" && got.Where != tt.wantWhere {
				t.Errorf("Where = %q, want %q", got.Where, tt.wantWhere)
			}
		})
	}
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseNotes(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		align uint64
		want  []Note
	}{
		{"empty", nil, 4, nil},
		{"one", note("Xen", 0x12, u32(5), 4), 4, []Note{{"Xen", 0x12, u32(5)}}},
		{"empty name and desc", note("", 7, nil, 4), 4, []Note{{"", 7, []byte{}}}},
		{"two, 8-byte padding", concat(note("GNU", 1, []byte{1}, 8), note("Go", 2, nil, 8)), 8, []Note{{"GNU", 1, []byte{1}}, {"Go", 2, []byte{}}}},
		{"last padding missing", note("Xen", 0x12, []byte{1, 2, 3, 4, 5, 6}, 4)[:22], 4, []Note{{"Xen", 0x12, []byte{1, 2, 3, 4, 5, 6}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNotes(tt.data, binary.LittleEndian, tt.align)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseNotes = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Name != tt.want[i].Name || got[i].Type != tt.want[i].Type || !bytes.Equal(got[i].Desc, tt.want[i].Desc) {
					t.Errorf("note %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCheckKernel(t *testing.T) {
	tests := []struct {
		name    string
		spec    elfSpec
		entry   func(text uint64) uint64
		raw     []byte // file content instead of an image
		wantErr string
	}{
		{name: "good", spec: elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSegment: true}},
		{name: "note only in a section", spec: elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSection: true}, wantErr: "no PT_NOTE segment covers it"},
		{name: "entry outside text", spec: elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSegment: true},
			entry: func(uint64) uint64 { return 0x5000 }, wantErr: "not inside any executable PT_LOAD"},
		{name: "entry above 4 GiB", spec: elfSpec{class: elf.ELFCLASS64, notes: note("Xen", XEN_ELFNOTE_PHYS32_ENTRY, u64(entryMarker), 4), noteAlign: 4, noteInSegment: true},
			entry: func(text uint64) uint64 { return 1<<32 + text }, wantErr: "above 4 GiB"},
		{name: "segment not executable", spec: elfSpec{class: elf.ELFCLASS64, notes: pvhNote32(), noteAlign: 4, noteInSegment: true, readOnlyLoad: true}, wantErr: "not inside any executable PT_LOAD"},
		{name: "no note", spec: elfSpec{class: elf.ELFCLASS64}, wantErr: "qemu -kernel will refuse"},
		{name: "not ELF", raw: []byte("#!/bin/sh\necho hi\n"), wantErr: "not a readable ELF file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.raw
			var text uint64
			if img == nil {
				img, text = makeELF(t, tt.spec)
				entry := text
				if tt.entry != nil {
					entry = tt.entry(text)
				}
				img = withEntry(img, entry)
			}
			path := filepath.Join(t.TempDir(), "keel.elf")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := CheckKernel(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("CheckKernel error = %v, want one naming the file and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != text {
				t.Errorf("CheckKernel = %#x, want %#x", got, text)
			}
		})
	}
}

// TestKernelELF checks the real kernel image. `make test` builds
// build/keel.elf and names it in KEEL_KERNEL.
func TestKernelELF(t *testing.T) {
	path := os.Getenv("KEEL_KERNEL")
	if path == "" {
		t.Skip("KEEL_KERNEL is not set (make test sets it to build/keel.elf)")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("KEEL_KERNEL=%s: %v (make kernel builds it)", path, err)
	}
	entry, err := CheckKernel(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: PVH entry %#x", path, entry)
}

package multiboot_test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/multiboot"
)

// kernel32 is an ELF32 kernel at 1 MiB: text, then data with a bss.
func kernel32() elfImage {
	return elfImage{
		class:   32,
		entry:   0x100010,
		mbFlags: multiboot.MULTIBOOT_PAGE_ALIGN | multiboot.MULTIBOOT_MEMORY_INFO,
		segs: []seg{
			{vaddr: 0x100000, paddr: 0x100000, data: pattern(0x3000, 1)},
			{vaddr: 0x104000, paddr: 0x104000, data: pattern(0x800, 2), memsz: 0x5000},
		},
	}
}

// TestHelperELF checks that the test helper writes files debug/elf reads
// as intended, so that the loader is tested against real ELF layouts.
func TestHelperELF(t *testing.T) {
	for _, o := range []elfImage{kernel32(), {class: 64, entry: 0xFFFFFFFF80200000, segs: []seg{{vaddr: 0xFFFFFFFF80200000, paddr: 0x200000, data: pattern(0x100, 3), memsz: 0x2000}}}} {
		img, offs := o.build()
		f, err := elf.NewFile(bytes.NewReader(img))
		if err != nil {
			t.Fatal(err)
		}
		if f.Entry != o.entry || f.Type != elf.ET_EXEC || len(f.Progs) != len(o.segs) {
			t.Fatalf("entry %#x type %v progs %d", f.Entry, f.Type, len(f.Progs))
		}
		for i, p := range f.Progs {
			s := o.segs[i]
			memsz := max(s.memsz, uint64(len(s.data)))
			if p.Type != elf.PT_LOAD || p.Vaddr != s.vaddr || p.Paddr != s.paddr || p.Off != offs[i] || p.Filesz != uint64(len(s.data)) || p.Memsz != memsz {
				t.Errorf("prog %d = %+v, want %+v at offset %#x", i, p.ProgHeader, s, offs[i])
			}
		}
	}
}

func TestLoadELF32(t *testing.T) {
	o := kernel32()
	img, _ := o.build()
	mods := []multiboot.Module{
		{Data: pattern(5000, 7), Cmdline: "initrd.img quiet"},
		{Data: pattern(100, 8), Cmdline: "config"},
		{Data: nil, Cmdline: ""},
	}
	acpi := loader.MapEntry{Range: rg(64*MiB-64*KiB, 64*KiB), Type: loader.E820_TYPE_ACPI}
	cfg := multiboot.Config{Kernel: img, Cmdline: "root=/dev/sda console=ttyS0", Modules: mods, Reserved: []loader.MapEntry{acpi}}
	m := testmem.Flat(0xCC, 64*MiB)
	r, err := multiboot.Load(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	checkWrites(t, m, r, cfg.Reserved)

	const info = 0x2000
	t.Run("placements", func(t *testing.T) {
		infoSize := uint64(multiboot.MULTIBOOT_INFO_SIZE + 24*5 + 16*3 + len(cfg.Cmdline) + 1 + len("keel") + 1 + len("initrd.img quiet") + 1 + len("config") + 1 + 1)
		want := []loader.Placement{
			{Name: "GDT", Range: rg(0x1000, 24)},
			{Name: "boot info", Range: rg(info, infoSize)},
			{Name: "segment 0", Range: rg(0x100000, 0x3000)},
			{Name: "segment 1", Range: rg(0x104000, 0x5000)},
			{Name: "module 0", Range: rg(0x109000, 0x2000)},
			{Name: "module 1", Range: rg(0x10B000, 0x1000)},
			{Name: "module 2", Range: rg(0x10C000, 0x1000)},
		}
		if got, w := fmt.Sprint(r.Placed), fmt.Sprint(want); got != w {
			t.Errorf("placed\n got %s\nwant %s", got, w)
		}
	})

	t.Run("kernel", func(t *testing.T) {
		for _, s := range o.segs {
			if !bytes.Equal(m.Read(s.paddr, uint64(len(s.data))), s.data) {
				t.Errorf("segment at %#x not loaded", s.paddr)
			}
		}
		if got := m.Read(0x104800, 0x5000-0x800); !bytes.Equal(got, make([]byte, len(got))) {
			t.Error("bss not zeroed")
		}
		if got := m.Read(0x103000, 0x1000); !bytes.Equal(got, bytes.Repeat([]byte{0xCC}, 0x1000)) {
			t.Error("the gap between the segments was written")
		}
	})

	t.Run("info", func(t *testing.T) {
		want := uint32(multiboot.MULTIBOOT_INFO_MEMORY | multiboot.MULTIBOOT_INFO_CMDLINE | multiboot.MULTIBOOT_INFO_MODS | multiboot.MULTIBOOT_INFO_MEM_MAP | multiboot.MULTIBOOT_INFO_BOOT_LOADER_NAME)
		if got := u32(m, info); got != want {
			t.Errorf("flags %#x, want %#x", got, want)
		}
		if lo, hi := u32(m, info+4), u32(m, info+8); lo != 639 || hi != (63*MiB-64*KiB)/KiB {
			t.Errorf("mem_lower %d mem_upper %d, want 639 and %d", lo, hi, (63*MiB-64*KiB)/KiB)
		}
		if got := cstring(m, uint64(u32(m, info+16))); got != cfg.Cmdline {
			t.Errorf("cmdline %q", got)
		}
		if got := cstring(m, uint64(u32(m, info+64))); got != "keel" {
			t.Errorf("boot_loader_name %q", got)
		}
		if got := m.Read(info+12, 4); !bytes.Equal(got, make([]byte, 4)) {
			t.Errorf("boot_device % x, want zero", got)
		}
		if n := u32(m, info+20); n != 3 {
			t.Fatalf("mods_count %d", n)
		}
		list := uint64(u32(m, info+24))
		prevEnd := uint64(0x109000)
		for i, mod := range mods {
			start, end, str := uint64(u32(m, list+16*uint64(i))), uint64(u32(m, list+16*uint64(i)+4)), u32(m, list+16*uint64(i)+8)
			if start%4096 != 0 || start < prevEnd || end != start+uint64(len(mod.Data)) {
				t.Errorf("module %d at [%#x, %#x): want page aligned, after %#x, %d bytes", i, start, end, prevEnd, len(mod.Data))
			}
			prevEnd = max(end, start+1)
			if !bytes.Equal(m.Read(start, uint64(len(mod.Data))), mod.Data) {
				t.Errorf("module %d data not at mod_start", i)
			}
			if got := cstring(m, uint64(str)); got != mod.Cmdline {
				t.Errorf("module %d string %q, want %q", i, got, mod.Cmdline)
			}
		}
		mlen, maddr := u32(m, info+44), uint64(u32(m, info+48))
		if mlen != 24*5 {
			t.Fatalf("mmap_length %d, want %d", mlen, 24*5)
		}
		for i, w := range r.Map {
			p := m.Read(maddr+24*uint64(i), 24)
			if le.Uint32(p) != 20 || le.Uint64(p[4:]) != w.Range.Base || le.Uint64(p[12:]) != w.Range.Size || loader.MemoryType(le.Uint32(p[20:])) != w.Type {
				t.Errorf("mmap[%d] = % x, want %s", i, p, w)
			}
		}
		if r.Map[4] != acpi {
			t.Errorf("map[4] = %s, want the ACPI range", r.Map[4])
		}
	})

	t.Run("registers", func(t *testing.T) {
		s := &r.Sregs
		if mode := arch.ModeOf(s, r.Regs.RFLAGS); mode != arch.ModeProtected32 {
			t.Errorf("mode %s, want protected32", mode)
		}
		if r.Regs.GPR[arch.RAX] != 0x2BADB002 || r.Regs.GPR[arch.RBX] != info || r.Regs.RIP != 0x100010 {
			t.Errorf("eax %#x ebx %#x eip %#x", r.Regs.GPR[arch.RAX], r.Regs.GPR[arch.RBX], r.Regs.RIP)
		}
		if r.Regs.RFLAGS&(arch.RFLAGS_IF|arch.RFLAGS_VM) != 0 {
			t.Errorf("rflags %#x: IF and VM must be clear", r.Regs.RFLAGS)
		}
		if s.CR0&arch.CR0_PE == 0 || s.CR0&arch.CR0_PG != 0 || s.EFER != 0 || s.CR4 != 0 {
			t.Errorf("cr0 %#x cr4 %#x efer %#x: want protected mode, paging off", s.CR0, s.CR4, s.EFER)
		}
		code := s.CS
		if code.Base != 0 || code.Limit != 0xFFFFFFFF || !code.DB || code.Type != 0xB || code.L {
			t.Errorf("cs %s, want flat 32-bit execute/read", code)
		}
		for _, d := range []arch.Segment{s.DS, s.ES, s.FS, s.GS, s.SS} {
			if d.Base != 0 || d.Limit != 0xFFFFFFFF || d.Type != 0x3 || !d.DB || d.Selector != multiboot.MB_DS {
				t.Errorf("data segment %s, want flat read/write", d)
			}
		}
		gdt := m.Read(s.GDTR.Base, uint64(s.GDTR.Limit)+1)
		if le.Uint64(gdt[s.CS.Selector:]) != loader.Descriptor(s.CS) || le.Uint64(gdt[s.DS.Selector:]) != loader.Descriptor(s.DS) {
			t.Errorf("GDT % x does not hold the segment registers' descriptors", gdt)
		}
	})
}

func TestLoadELF64(t *testing.T) {
	const virt = 0xFFFFFFFF80000000
	for _, tc := range []struct {
		name  string
		entry uint64
	}{
		{"virtual entry", virt + 0x200040},
		{"physical entry", 0x200040},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := elfImage{
				class: 64, entry: tc.entry, mbFlags: multiboot.MULTIBOOT_MEMORY_INFO,
				segs: []seg{
					{typ: 4 /* PT_NOTE */, data: pattern(16, 9)},
					{vaddr: virt + 0x200000, paddr: 0x200000, data: pattern(0x1234, 4), memsz: 0x3000},
				},
			}
			img, _ := o.build()
			m := testmem.Flat(0xCC, 16*MiB)
			r, err := multiboot.Load(m, multiboot.Config{Kernel: img, Modules: []multiboot.Module{{Data: pattern(10, 1), Cmdline: "m"}}})
			if err != nil {
				t.Fatal(err)
			}
			checkWrites(t, m, r, nil)
			if r.Regs.RIP != 0x200040 {
				t.Errorf("eip %#x, want the physical entry 0x200040", r.Regs.RIP)
			}
			if !bytes.Equal(m.Read(0x200000, 0x1234), o.segs[1].data) || !bytes.Equal(m.Read(0x201234, 0x3000-0x1234), make([]byte, 0x3000-0x1234)) {
				t.Error("segment or bss wrong")
			}
			if mod := u32(m, uint64(u32(m, r.Regs.GPR[arch.RBX]+24))); mod != 0x203000 {
				t.Errorf("module at %#x, want 0x203000, the first page after the kernel", mod)
			}
			if got := cstring(m, uint64(u32(m, r.Regs.GPR[arch.RBX]+16))); got != "" {
				t.Errorf("cmdline %q, want empty", got)
			}
		})
	}
}

// aoutImage is a flat image loaded at 1 MiB + 0x1000 whose header sits at
// file offset 0x40.
func aoutImage(fileLen int, fields [5]uint32) []byte {
	b := pattern(fileLen, 5)
	copy(b[0x40:], make([]byte, 32))
	putHeader(b[0x40:], multiboot.MULTIBOOT_MEMORY_INFO|multiboot.MULTIBOOT_AOUT_KLUDGE, fields)
	return b
}

func TestLoadAout(t *testing.T) {
	const base = 0x101000
	for _, tc := range []struct {
		name               string
		img                []byte
		loadFrom, loadLen  int // file range loaded at base
		memsz              uint64
		entry              uint64
		wantPlacedSizeSame bool
	}{
		{
			name:     "load_end and bss_end",
			img:      aoutImage(0x3000, [5]uint32{base + 0x40, base, base + 0x2800, base + 0x6000, base + 0x100}),
			loadFrom: 0, loadLen: 0x2800, memsz: 0x6000, entry: base + 0x100,
		},
		{
			name:     "whole file, no bss",
			img:      aoutImage(0x3000, [5]uint32{base + 0x40, base, 0, 0, base + 0x2FFF}),
			loadFrom: 0, loadLen: 0x3000, memsz: 0x3000, entry: base + 0x2FFF,
		},
		{
			name:     "text starts after the file start",
			img:      aoutImage(0x3000, [5]uint32{base + 0x10, base, 0, 0, base}),
			loadFrom: 0x30, loadLen: 0x3000 - 0x30, memsz: 0x3000 - 0x30, entry: base,
		},
		{
			name: "kludge on an ELF file wins",
			img: func() []byte {
				o := kernel32()
				o.mbFlags |= multiboot.MULTIBOOT_AOUT_KLUDGE
				// the header lies at offset 52+2*32 = 0x74
				o.aout = [5]uint32{base + 0x74, base, base + 0x1000, base + 0x2000, base + 0x80}
				img, _ := o.build()
				return img
			}(),
			loadFrom: 0, loadLen: 0x1000, memsz: 0x2000, entry: base + 0x80,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testmem.Flat(0xCC, 16*MiB)
			r, err := multiboot.Load(m, multiboot.Config{Kernel: tc.img})
			if err != nil {
				t.Fatal(err)
			}
			checkWrites(t, m, r, nil)
			if r.Regs.RIP != tc.entry {
				t.Errorf("eip %#x, want %#x", r.Regs.RIP, tc.entry)
			}
			if !bytes.Equal(m.Read(base, uint64(tc.loadLen)), tc.img[tc.loadFrom:tc.loadFrom+tc.loadLen]) {
				t.Error("image not loaded at load_addr")
			}
			if bss := m.Read(base+uint64(tc.loadLen), tc.memsz-uint64(tc.loadLen)); !bytes.Equal(bss, make([]byte, len(bss))) {
				t.Error("bss not zeroed")
			}
			if after := m.Read(base+tc.memsz, 1); after[0] != 0xCC {
				t.Error("wrote past bss_end_addr")
			}
		})
	}
}

func TestFindHeader(t *testing.T) {
	withHeader := func(off int, flags uint32) []byte {
		b := make([]byte, 0x3000+32)
		putHeader(b[off:], flags, [5]uint32{1, 2, 3, 4, 5})
		return b[:0x3000]
	}
	badSum := withHeader(0x100, 0)
	le.PutUint32(badSum[0x108:], 1)
	mb2 := make([]byte, 0x100)
	le.PutUint32(mb2[0x10:], multiboot.MULTIBOOT2_HEADER_MAGIC)
	bzimage := make([]byte, 0x400)
	copy(bzimage[0x202:], "HdrS")
	unaligned := make([]byte, 0x100)
	putHeader(unaligned[0x12:], 0, [5]uint32{})

	for _, tc := range []struct {
		name    string
		img     []byte
		want    multiboot.Header
		wantErr string
	}{
		{name: "at 0", img: withHeader(0, 3), want: multiboot.Header{Offset: 0, Flags: 3}},
		{name: "last place", img: withHeader(8192-12, 0), want: multiboot.Header{Offset: 8192 - 12}},
		{name: "kludge", img: withHeader(0x20, 1<<16), want: multiboot.Header{Offset: 0x20, Flags: 1 << 16, HeaderAddr: 1, LoadAddr: 2, LoadEndAddr: 3, BSSEndAddr: 4, EntryAddr: 5}},
		{name: "optional bits ignored", img: withHeader(0, 0xFFFE0003), want: multiboot.Header{Flags: 0xFFFE0003}},
		{name: "second of two, first bad", img: func() []byte { b := bytes.Clone(badSum); putHeader(b[0x200:], 0, [5]uint32{}); return b }(), want: multiboot.Header{Offset: 0x200}},
		{name: "past 8 KiB", img: withHeader(8192-8, 0), wantErr: "no Multiboot header"},
		{name: "unaligned", img: unaligned, wantErr: "no Multiboot header"},
		{name: "empty", img: nil, wantErr: "in the first 8192 bytes of the 0-byte image"},
		{name: "bad checksum", img: badSum, wantErr: "header at file offset 0x100 has a bad checksum (magic + flags + checksum = 0x1badb003, want 0)"},
		{name: "video mode", img: withHeader(0, 1<<2), wantErr: "requires a video mode (bit 2)"},
		{name: "unknown requirement", img: withHeader(0, 1<<5|1), wantErr: "requirement bits 0x20"},
		{name: "multiboot2", img: mb2, wantErr: "Multiboot2 header (file offset 0x10)"},
		{name: "bzImage", img: bzimage, wantErr: "Linux bzImage"},
		{name: "kludge fields cut off", img: withHeader(8192-16, 1<<16), wantErr: "address fields end at 0x2010"},
		{name: "kludge fields past EOF", img: withHeader(0x1000-16, 1<<16)[:0x1000-4], wantErr: "address fields end at 0x1010, past the end of the first 8192 bytes of the 4092-byte file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := multiboot.FindHeader(tc.img)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *h != tc.want {
				t.Errorf("got %+v, want %+v", *h, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	k := kernel32()
	good, _ := k.build()
	elfWith := func(f func(*elfImage)) []byte {
		o := kernel32()
		f(&o)
		img, _ := o.build()
		return img
	}
	patched := func(off int, p ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], p)
		return b
	}
	const base = 0x101000
	for _, tc := range []struct {
		name     string
		img      []byte
		cmdline  string
		mods     []multiboot.Module
		reserved []loader.MapEntry
		want     string
	}{
		{name: "not ELF without kludge", img: func() []byte { b := make([]byte, 0x100); putHeader(b[8:], 0, [5]uint32{}); return b }(), want: "not an ELF file and its header flags 0x0 lack bit 16"},
		{name: "truncated ELF", img: func() []byte { b := bytes.Clone(good[:48]); putHeader(b[36:], 0, [5]uint32{}); return b }(), want: "truncated ELF file: 48 bytes, shorter than an ELF header"},
		{name: "truncated ELF64", img: func() []byte { b := bytes.Clone(good[:60]); b[4] = 2; putHeader(b[48:], 0, [5]uint32{}); return b }(), want: "shorter than an ELF64 header"},
		{name: "big endian", img: patched(5, 2), want: "ELF data encoding 2"},
		{name: "bad ELF version", img: patched(6, 9), want: "ELF version 9"},
		{name: "bad class", img: patched(4, 3), want: "ELF class 3"},
		{name: "shared object", img: elfWith(func(o *elfImage) { o.etype = 3 }), want: "ELF type 3, want 2 (ET_EXEC)"},
		{name: "wrong machine", img: elfWith(func(o *elfImage) { o.machine = 40 }), want: "ELF machine 40, want 3 (EM_386) for an ELF32 file"},
		{name: "ELF64 with EM_386", img: elfWith(func(o *elfImage) { o.class = 64; o.machine = 3 }), want: "want 62 (EM_X86_64) for an ELF64 file"},
		{name: "no program headers", img: patched(44, 0, 0), want: "no program headers"},
		{name: "PN_XNUM", img: patched(44, 0xFF, 0xFF), want: "extended program header numbering"},
		{name: "small phentsize", img: patched(42, 16, 0), want: "e_phentsize is 16, want at least 32"},
		{name: "program headers past EOF", img: patched(28, 0xF0, 0xFF, 0, 0), want: "program headers at 0xfff0"},
		{name: "filesz > memsz", img: elfWith(func(o *elfImage) { o.segs[1].memsz = 0x100 }), want: "p_filesz 0x800 > p_memsz 0x100"},
		{name: "segment data past EOF", img: elfWith(func(o *elfImage) { o.segs[1].data = pattern(0x800, 2) })[:0x4400], want: "program header 1 loads 0x800 bytes from file offset 0x4000, past the end"},
		{name: "segment above 4 GiB", img: elfWith(func(o *elfImage) { o.class = 64; o.segs[1].paddr = 4 * GiB }), want: "past 4 GiB"},
		{name: "segment crossing 4 GiB", img: elfWith(func(o *elfImage) { o.segs[1].paddr = 0xFFFFF000 }), want: "past 4 GiB"},
		{name: "segment outside RAM", img: elfWith(func(o *elfImage) { o.segs[1].paddr = 128 * MiB }), want: "the kernel's segment 1 [0x8000000-0x8004fff] is not in usable guest RAM"},
		{name: "segment in the VGA hole", img: elfWith(func(o *elfImage) { o.segs[1].paddr = 0xB8000 }), want: "segment 1 [0xb8000-0xbcfff] is not in usable guest RAM"},
		{name: "segment on ACPI tables", img: good, reserved: []loader.MapEntry{{Range: rg(0x104000, 0x1000), Type: loader.E820_TYPE_ACPI}}, want: "segment 1 [0x104000-0x108fff] is not in usable guest RAM"},
		{name: "overlapping segments", img: elfWith(func(o *elfImage) { o.segs[1].paddr = 0x102000 }), want: "segment 1 [0x102000-0x106fff] overlaps the segment 0 [0x100000-0x102fff]"},
		{name: "entry in no segment", img: elfWith(func(o *elfImage) { o.entry = 0x200000 }), want: "entry point 0x200000 lies in no PT_LOAD segment"},
		{name: "no PT_LOAD", img: elfWith(func(o *elfImage) { o.segs[0].typ = 4; o.segs[1].typ = 4 }), want: "no PT_LOAD segment with memory"},
		{name: "load_addr above header_addr", img: aoutImage(0x3000, [5]uint32{base, base + 0x40, 0, 0, base}), want: "load_addr 0x101040 is above header_addr 0x101000"},
		{name: "load before file start", img: aoutImage(0x3000, [5]uint32{base + 0x80, base, 0, 0, base}), want: "loading would start before the beginning of the file"},
		{name: "load_end below load_addr", img: aoutImage(0x3000, [5]uint32{base + 0x40, base, base - 1, 0, base}), want: "load_end_addr 0x100fff is below load_addr"},
		{name: "a.out truncated", img: aoutImage(0x3000, [5]uint32{base + 0x40, base, base + 0x3001, 0, base}), want: "truncated: load_addr 0x101000 to load_end_addr 0x104001 is 12289 bytes"},
		{name: "bss_end below load_end", img: aoutImage(0x3000, [5]uint32{base + 0x40, base, base + 0x2000, base + 0x1000, base}), want: "bss_end_addr 0x102000 is below the end of the loaded image 0x103000"},
		{name: "a.out entry outside", img: aoutImage(0x3000, [5]uint32{base + 0x40, base, base + 0x2000, base + 0x4000, base + 0x2000}), want: "entry_addr 0x103000 is outside the loaded image [0x101000, 0x103000)"},
		{name: "a.out past 4 GiB", img: aoutImage(0x3000, [5]uint32{0xFFFFF040, 0xFFFFF000, 0, 0, 0xFFFFF000}), want: "reaches past 4 GiB"},
		{name: "a.out in the EBDA", img: aoutImage(0x3000, [5]uint32{0x9E040, 0x9E000, 0, 0, 0x9E000}), want: "the kernel's image [0x9e000-0xa0fff] is not in usable guest RAM"},
		{name: "command line with NUL", img: good, cmdline: "a\x00", want: "command line has a NUL byte at offset 1"},
		{name: "command line too long", img: good, cmdline: strings.Repeat("x", multiboot.MAX_STRING+1), want: "command line is 65537 bytes, at most 65536"},
		{name: "module string with NUL", img: good, mods: []multiboot.Module{{}, {Cmdline: "\x00"}}, want: "string of module 1 has a NUL byte"},
		{name: "too many modules", img: good, mods: make([]multiboot.Module, multiboot.MAX_MODULES+1), want: "257 boot modules, at most 256"},
		{name: "module too big", img: good, mods: []multiboot.Module{{Data: make([]byte, 10*MiB), Cmdline: "a"}, {Data: make([]byte, 10*MiB), Cmdline: "big"}}, want: `module 1 ("big") is 10485760 bytes, which do not fit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testmem.Flat(0, 16*MiB)
			_, err := multiboot.Load(m, multiboot.Config{Kernel: tc.img, Cmdline: tc.cmdline, Modules: tc.mods, Reserved: tc.reserved})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant one containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "multiboot: ") {
				t.Errorf("error %q does not say which loader", err)
			}
			if len(m.Writes) > 0 || len(m.Outside) > 0 {
				t.Errorf("a refused load wrote %v (outside RAM: %v)", m.Writes, m.Outside)
			}
		})
	}
}

// TestModulesDisjoint loads many modules of odd sizes and checks that no
// two of them, the kernel or the boot information overlap, and that all
// lie above the kernel.
func TestModulesDisjoint(t *testing.T) {
	img, _ := kernel32().build()
	var mods []multiboot.Module
	for i := range 40 {
		mods = append(mods, multiboot.Module{Data: pattern(i*997%9000, byte(i)), Cmdline: fmt.Sprintf("mod%d", i)})
	}
	m := testmem.Flat(0, 16*MiB)
	r, err := multiboot.Load(m, multiboot.Config{Kernel: img, Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	checkWrites(t, m, r, nil)
	for i, a := range r.Placed {
		for _, b := range r.Placed[i+1:] {
			if a.Range.Overlaps(b.Range) {
				t.Errorf("%s overlaps %s", a, b)
			}
		}
		if strings.HasPrefix(a.Name, "module") && (a.Range.Base < 0x109000 || a.Range.Base%4096 != 0) {
			t.Errorf("%s is not page aligned above the kernel", a)
		}
	}
	list := uint64(u32(m, r.Regs.GPR[arch.RBX]+24))
	for i, mod := range mods {
		start := uint64(u32(m, list+16*uint64(i)))
		if !bytes.Equal(m.Read(start, uint64(len(mod.Data))), mod.Data) {
			t.Errorf("module %d corrupted", i)
		}
	}
}

// TestModuleBelow4G checks that a module never ends at 4 GiB, where
// mod_end would wrap to 0.
func TestModuleBelow4G(t *testing.T) {
	img, _ := kernel32().build()
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{24*MiB - 4096, true},
		{24 * MiB, false},
	} {
		m := testmem.New(0, rg(0, 2*MiB), rg(4*GiB-24*MiB, 24*MiB))
		r, err := multiboot.Load(m, multiboot.Config{Kernel: img, Modules: []multiboot.Module{{Data: make([]byte, tc.size)}}})
		if (err == nil) != tc.ok {
			t.Fatalf("module of %#x bytes: err = %v, want ok = %v", tc.size, err, tc.ok)
		}
		if err != nil {
			continue
		}
		list := uint64(u32(m, r.Regs.GPR[arch.RBX]+24))
		if start, end := u32(m, list), u32(m, list+4); start != 4*GiB-24*MiB || end != 4*GiB-4096 {
			t.Errorf("module at [%#x, %#x)", start, end)
		}
	}
}

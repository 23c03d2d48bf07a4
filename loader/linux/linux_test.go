package linux_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/linux"
)

func TestLoad(t *testing.T) {
	o := bzDefault()
	img := o.image()
	initrd := bytes.Repeat([]byte("initrd!"), 1500) // 10500 bytes
	acpi := loader.MapEntry{Range: rg(64*MiB-64*KiB, 64*KiB), Type: loader.E820_TYPE_ACPI}
	cfg := linux.Config{
		Kernel:   img,
		Initrd:   initrd,
		Cmdline:  "console=ttyS0 root=/dev/vda",
		Reserved: []loader.MapEntry{acpi},
		ACPIRSDP: 0xE0000,
	}
	m := testmem.Flat(0xCC, 64*MiB)
	r, err := linux.Load(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	checkWrites(t, m, r, cfg.Reserved)

	const load = 16 * MiB
	initrdAt := uint64(64*MiB - 64*KiB - 0x3000) // 10500 bytes round to 3 pages, just below the ACPI tables

	t.Run("placements", func(t *testing.T) {
		want := []loader.Placement{
			{Name: "GDT", Range: rg(0x1000, 32)},
			{Name: "boot stack", Range: rg(0x6000, 0x1000)},
			{Name: "zero page", Range: rg(0x7000, 0x1000)},
			{Name: "page tables", Range: rg(0x9000, 0x6000)},
			{Name: "cmdline", Range: rg(0x20000, uint64(len(cfg.Cmdline))+1)},
			{Name: "kernel", Range: rg(load, MiB)},
			{Name: "initrd", Range: rg(initrdAt, 0x3000)},
		}
		if got, w := fmt.Sprint(r.Placed), fmt.Sprint(want); got != w {
			t.Errorf("placed\n got %s\nwant %s", got, w)
		}
	})

	t.Run("memory", func(t *testing.T) {
		if got := m.Read(load, uint64(o.kernelSize)); !bytes.Equal(got, img[len(img)-o.kernelSize:]) {
			t.Error("the protected-mode kernel is not at 16 MiB")
		}
		if got := m.Read(load+uint64(o.kernelSize), 16); !bytes.Equal(got, bytes.Repeat([]byte{0xCC}, 16)) {
			t.Errorf("bytes after the kernel image were written: % x", got)
		}
		if got := m.Read(initrdAt, uint64(len(initrd))); !bytes.Equal(got, initrd) {
			t.Error("the initrd is not where ramdisk_image says")
		}
		if got := string(m.Read(0x20000, uint64(len(cfg.Cmdline)+1))); got != cfg.Cmdline+"\x00" {
			t.Errorf("cmdline = %q", got)
		}
		gdt := m.Read(0x1000, 32)
		for i, want := range []uint64{0, 0, loader.Descriptor(r.Sregs.CS), loader.Descriptor(r.Sregs.DS)} {
			if got := le.Uint64(gdt[8*i:]); got != want {
				t.Errorf("GDT[%d] = %#x, want %#x (the descriptor of the segment register)", i, got, want)
			}
		}
		if le.Uint64(gdt[16:]) != 0x00AF9B000000FFFF || le.Uint64(gdt[24:]) != 0x00CF93000000FFFF {
			t.Errorf("GDT = % x, want flat 64-bit code at 0x10 and flat data at 0x18", gdt)
		}
		if got := m.Read(0, 0x1000); !bytes.Equal(got, bytes.Repeat([]byte{0xCC}, 0x1000)) {
			t.Error("page 0 was written")
		}
	})

	t.Run("zero page", func(t *testing.T) {
		zp := m.Read(linux.ZERO_PAGE_ADDR, linux.BOOT_PARAMS_SIZE)
		hdrEnd := 0x202 + int(o.jumpLen)
		copied := bytes.Clone(img[0x1F1:hdrEnd])
		if got := zp[0x1F1:hdrEnd]; !bytes.Equal(got[:0x210-0x1F1], copied[:0x210-0x1F1]) {
			t.Errorf("setup header not copied: % x", got[:0x20])
		}
		if !bytes.Equal(zp[linux.HDR_HEADER:linux.HDR_HEADER+4], []byte("HdrS")) {
			t.Error("no HdrS in the zero page")
		}
		for _, f := range []struct {
			name      string
			off, size int
			want      uint64
		}{
			{"type_of_loader", linux.HDR_TYPE_OF_LOADER, 1, 0xFF},
			{"loadflags", linux.HDR_LOADFLAGS, 1, linux.LOADED_HIGH},
			{"version", linux.HDR_VERSION, 2, 0x020F},
			{"cmd_line_ptr", linux.HDR_CMD_LINE_PTR, 4, 0x20000},
			{"ramdisk_image", linux.HDR_RAMDISK_IMAGE, 4, initrdAt},
			{"ramdisk_size", linux.HDR_RAMDISK_SIZE, 4, uint64(len(initrd))},
			{"ext_ramdisk_image", linux.BP_EXT_RAMDISK_IMAGE, 4, 0},
			{"ext_ramdisk_size", linux.BP_EXT_RAMDISK_SIZE, 4, 0},
			{"ext_cmd_line_ptr", linux.BP_EXT_CMD_LINE_PTR, 4, 0},
			{"setup_data", linux.HDR_SETUP_DATA, 8, 0},
			{"hardware_subarch", linux.HDR_HARDWARE_SUBARCH, 4, 0},
			{"pref_address", linux.HDR_PREF_ADDRESS, 8, 16 * MiB},
			{"init_size", linux.HDR_INIT_SIZE, 4, MiB},
			{"kernel_info_offset", linux.HDR_KERNEL_INFO_OFFSET, 4, 0x1234},
			{"acpi_rsdp_addr", linux.BP_ACPI_RSDP_ADDR, 8, 0xE0000},
			{"sentinel", linux.BP_SENTINEL, 1, 0},
			{"e820_entries", linux.BP_E820_ENTRIES, 1, 5},
			{"screen_info", 0, 8, 0},
			{"after hdr", hdrEnd, 8, 0},
		} {
			var got uint64
			for i := f.size - 1; i >= 0; i-- {
				got = got<<8 | uint64(zp[f.off+i])
			}
			if got != f.want {
				t.Errorf("%s at %#x = %#x, want %#x", f.name, f.off, got, f.want)
			}
		}
		want := []loader.MapEntry{
			{Range: rg(0, 0x9FC00), Type: loader.E820_TYPE_RAM},
			{Range: rg(0x9FC00, 0x400), Type: loader.E820_TYPE_RESERVED},
			{Range: rg(0xF0000, 0x10000), Type: loader.E820_TYPE_RESERVED},
			{Range: rg(MiB, 63*MiB-64*KiB), Type: loader.E820_TYPE_RAM},
			acpi,
		}
		for i, w := range want {
			p := zp[linux.BP_E820_TABLE+20*i:]
			got := loader.MapEntry{Range: rg(le.Uint64(p), le.Uint64(p[8:])), Type: loader.MemoryType(le.Uint32(p[16:]))}
			if got != w {
				t.Errorf("e820[%d] = %s, want %s", i, got, w)
			}
		}
		if !bytes.Equal(zp[linux.BP_E820_TABLE+20*len(want):linux.BP_E820_TABLE+20*128], make([]byte, 20*(128-len(want)))) {
			t.Error("unused e820 entries are not zero")
		}
	})

	t.Run("page tables", func(t *testing.T) {
		for _, va := range []uint64{0, 0x7000, 0x20000, load + 0x200, initrdAt, 0xBFFFFFFF, 0xFEE00000, 0xFFFFFFFF} {
			pa, ok := translate(m, r.Sregs.CR3, va)
			if !ok || pa != va {
				t.Errorf("translate(%#x) = %#x, %v; want identity", va, pa, ok)
			}
		}
		if _, ok := translate(m, r.Sregs.CR3, 4*GiB); ok {
			t.Error("4 GiB is mapped; the tables cover [0, 4 GiB)")
		}
	})

	t.Run("registers", func(t *testing.T) {
		s := &r.Sregs
		if mode := arch.ModeOf(s, r.Regs.RFLAGS); mode != arch.ModeLong64 {
			t.Errorf("mode %s, want long64", mode)
		}
		if r.Regs.RIP != load+0x200 || r.Regs.GPR[arch.RSI] != 0x7000 || r.Regs.GPR[arch.RSP] != 0x7000 {
			t.Errorf("rip %#x rsi %#x rsp %#x; want 0x1000200, 0x7000, 0x7000", r.Regs.RIP, r.Regs.GPR[arch.RSI], r.Regs.GPR[arch.RSP])
		}
		if r.Regs.RFLAGS != arch.RFLAGS_FIXED {
			t.Errorf("rflags %#x, want interrupts off (0x2)", r.Regs.RFLAGS)
		}
		for i, v := range r.Regs.GPR {
			if i != arch.RSI && i != arch.RSP && v != 0 {
				t.Errorf("%s = %#x, want 0", arch.GPRName(i), v)
			}
		}
		if s.CR0&(arch.CR0_PE|arch.CR0_PG) != arch.CR0_PE|arch.CR0_PG || s.CR0&(arch.CR0_CD|arch.CR0_NW) != 0 {
			t.Errorf("cr0 %#x, want PE|PG, caches on", s.CR0)
		}
		if s.CR4 != arch.CR4_PAE || s.EFER != arch.EFER_LME|arch.EFER_LMA || s.CR3 != linux.BOOT_PML4_ADDR {
			t.Errorf("cr4 %#x efer %#x cr3 %#x", s.CR4, s.EFER, s.CR3)
		}
		if s.CS.Selector != 0x10 || !s.CS.L || s.CS.DB || s.CS.Type != 0xB || !s.CS.Present || !s.CS.S {
			t.Errorf("cs %s, want __BOOT_CS flat 64-bit code", s.CS)
		}
		for _, seg := range []arch.Segment{s.DS, s.ES, s.SS} {
			if seg != loader.DataSegment(0x18) || seg.Base != 0 || seg.Limit != 0xFFFFFFFF {
				t.Errorf("data segment %s, want __BOOT_DS flat", seg)
			}
		}
		if s.GDTR.Base != 0x1000 || s.GDTR.Limit != 31 {
			t.Errorf("gdtr %+v", s.GDTR)
		}
		if s.APICBase&arch.APIC_BASE_BSP == 0 {
			t.Error("not the BSP")
		}
	})
}

func TestLoadPlacement(t *testing.T) {
	for _, tc := range []struct {
		name       string
		o          bz
		mem        *testmem.Mem
		reserved   []loader.MapEntry
		initrd     int
		wantKernel uint64
		wantInitrd uint64
	}{
		{
			name:       "initrd below initrd_addr_max",
			o:          bzDefault().with(func(o *bz) { o.initrdAddrMax = 0x37FFFFFF }),
			mem:        testmem.Flat(0, 2*GiB),
			initrd:     0x20000,
			wantKernel: 16 * MiB,
			wantInitrd: 0x38000000 - 0x20000,
		},
		{
			name:       "initrd below the PCI hole, not above 4 GiB",
			o:          bzDefault(),
			mem:        testmem.New(0, rg(0, 3*GiB), rg(4*GiB, 3*GiB)),
			initrd:     5000,
			wantKernel: 16 * MiB,
			wantInitrd: 0x80000000 - 0x2000,
		},
		{
			name:       "initrd below top of low RAM",
			o:          bzDefault().with(func(o *bz) { o.initrdAddrMax = 0xFFFFFFFF }),
			mem:        testmem.New(0, rg(0, 3*GiB), rg(4*GiB, 3*GiB)),
			initrd:     5000,
			wantKernel: 16 * MiB,
			wantInitrd: 3*GiB - 0x2000,
		},
		{
			name:       "relocatable kernel skips a reserved pref_address",
			o:          bzDefault(),
			mem:        testmem.Flat(0, 64*MiB),
			reserved:   []loader.MapEntry{{Range: rg(16*MiB+512*KiB, 0x1000), Type: loader.E820_TYPE_RESERVED}},
			wantKernel: 18 * MiB,
		},
		{
			name:       "kernel_alignment honoured",
			o:          bzDefault().with(func(o *bz) { o.prefAddress = 0x1100000; o.kernelAlign = 16 * MiB }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: 32 * MiB,
		},
		{
			name:       "not relocatable: pref_address exactly",
			o:          bzDefault().with(func(o *bz) { o.relocatable = false; o.prefAddress = 0x1001000; o.kernelAlign = 3 }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: 0x1001000,
		},
		{
			name:       "pref_address 0 means 16 MiB",
			o:          bzDefault().with(func(o *bz) { o.prefAddress = 0 }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: 16 * MiB,
		},
		{
			name:       "low pref_address: not below 1 MiB",
			o:          bzDefault().with(func(o *bz) { o.prefAddress = 0x1000; o.kernelAlign = 0x1000; o.initSize = 0x10000 }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: MiB,
		},
		{
			name:       "setup_sects 0 means 4",
			o:          bzDefault().with(func(o *bz) { o.setupSects = 0 }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: 16 * MiB,
		},
		{
			name:       "init_size below the image size",
			o:          bzDefault().with(func(o *bz) { o.initSize = 0x100 }),
			mem:        testmem.Flat(0, 64*MiB),
			wantKernel: 16 * MiB,
		},
		{
			name:       "whole RAM for kernel and initrd",
			o:          bzDefault().with(func(o *bz) { o.initSize = 16 * MiB }),
			mem:        testmem.Flat(0, 32*MiB+0x2000),
			initrd:     0x2000,
			wantKernel: 16 * MiB,
			wantInitrd: 32 * MiB,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.o.image()
			initrd := bytes.Repeat([]byte{0x42}, tc.initrd)
			r, err := linux.Load(tc.mem, linux.Config{Kernel: img, Initrd: initrd, Reserved: tc.reserved})
			if err != nil {
				t.Fatal(err)
			}
			checkWrites(t, tc.mem, r, tc.reserved)
			if r.Regs.RIP != tc.wantKernel+0x200 {
				t.Errorf("rip %#x, want the kernel at %#x", r.Regs.RIP, tc.wantKernel)
			}
			if got := tc.mem.Read(tc.wantKernel, 16); !bytes.Equal(got, img[len(img)-tc.o.kernelSize:][:16]) {
				t.Errorf("kernel bytes at %#x: % x", tc.wantKernel, got)
			}
			zp := tc.mem.Read(linux.ZERO_PAGE_ADDR, linux.BOOT_PARAMS_SIZE)
			if got := uint64(le.Uint32(zp[linux.HDR_RAMDISK_IMAGE:])); got != tc.wantInitrd {
				t.Errorf("ramdisk_image %#x, want %#x", got, tc.wantInitrd)
			}
			if got := le.Uint32(zp[linux.HDR_RAMDISK_SIZE:]); got != uint32(tc.initrd) {
				t.Errorf("ramdisk_size %d, want %d", got, tc.initrd)
			}
			if tc.initrd > 0 && !bytes.Equal(tc.mem.Read(tc.wantInitrd, uint64(tc.initrd)), initrd) {
				t.Error("initrd bytes are not at ramdisk_image")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	d := bzDefault()
	good := d.image()
	for _, tc := range []struct {
		name     string
		image    []byte
		mem      *testmem.Mem // default: 64 MiB
		cmdline  string
		initrd   int
		reserved []loader.MapEntry
		want     string
	}{
		{name: "empty", image: nil, want: "image is 0 bytes, too short to hold the setup header"},
		{name: "truncated header", image: good[:0x203], want: "too short to hold the setup header"},
		{name: "ELF", image: append([]byte("\x7fELF"), make([]byte, 0x300)...), want: "ELF file (vmlinux?)"},
		{name: "bad magic", image: patch(good, linux.HDR_HEADER, []byte("HdrT")), want: "setup header magic at 0x202 is 0x54726448, want 0x53726448"},
		{name: "bad boot flag", image: patch(good, linux.HDR_BOOT_FLAG, []byte{0x55, 0xAB}), want: "boot_flag at 0x1fe is 0xab55, want 0xaa55"},
		{name: "too old", image: d.with(func(o *bz) { o.version = 0x0205 }).image(), want: "boot protocol 2.05 too old, need 2.12+"},
		{name: "2.11", image: d.with(func(o *bz) { o.version = 0x020B }).image(), want: "boot protocol 2.11 too old"},
		{name: "short header", image: d.with(func(o *bz) { o.jumpLen = 0x50 }).image(), want: "setup header ends at 0x252"},
		{name: "header past setup", image: d.with(func(o *bz) { o.setupSects = 0; o.jumpLen = 0xFF }).image()[:0x400], want: "truncated"},
		{name: "truncated setup", image: good[:9*512], want: "truncated: the image is 4608 bytes, but its setup code alone takes 4608"},
		{name: "truncated kernel", image: good[:len(good)-100], want: "truncated: syssize says the protected-mode kernel is 65536 bytes, the image has 65436"},
		{name: "zImage", image: d.with(func(o *bz) { o.loadflags = 0 }).image(), want: "lack LOADED_HIGH"},
		{name: "32-bit kernel", image: d.with(func(o *bz) { o.xloadflags = 0 }).image(), want: "lack XLF_KERNEL_64"},
		{name: "tiny kernel", image: d.with(func(o *bz) { o.kernelSize = 0x200 }).image(), want: "its 64-bit entry point is at offset 0x200"},
		{name: "alignment not a power of two", image: d.with(func(o *bz) { o.kernelAlign = 0x300000 }).image(), want: "kernel_alignment 0x300000 is not a power of two"},
		{name: "alignment zero", image: d.with(func(o *bz) { o.kernelAlign = 0 }).image(), want: "kernel_alignment 0x0 is not a power of two"},
		{name: "kernel larger than RAM", image: d.with(func(o *bz) { o.initSize = 60 * MiB }).image(), want: "the kernel needs 0x3c00000 bytes (init_size 0x3c00000) of usable RAM at or above 0x1000000"},
		{name: "image larger than RAM", image: d.with(func(o *bz) { o.kernelSize = 2 * MiB }).image(), mem: testmem.Flat(0, 17*MiB), want: "the kernel needs 0x200000 bytes"},
		{name: "fixed kernel outside RAM", image: d.with(func(o *bz) { o.relocatable = false; o.prefAddress = 128 * MiB }).image(), want: "not relocatable and must load at pref_address 0x8000000"},
		{name: "fixed kernel on the boot structures", image: d.with(func(o *bz) { o.relocatable = false; o.prefAddress = 0x7000 }).image(), want: "wants pref_address 0x7000, below 1 MiB"},
		{name: "fixed kernel unaligned", image: d.with(func(o *bz) { o.relocatable = false; o.prefAddress = 0x1000010 }).image(), want: "not 4 KiB aligned"},
		{name: "fixed kernel above 4 GiB", image: d.with(func(o *bz) { o.relocatable = false; o.prefAddress = 0xFFFFF000 }).image(), want: "beyond the 4 GiB"},
		{name: "command line too long", image: d.with(func(o *bz) { o.cmdlineSize = 10 }).image(), cmdline: "console=ttyS0", want: "command line is 13 bytes, the kernel accepts at most 10"},
		{name: "command line past Keel's limit", image: d.with(func(o *bz) { o.cmdlineSize = 1 << 20 }).image(), cmdline: strings.Repeat("x", linux.CMDLINE_MAX), want: "Keel's limit 65535"},
		{name: "command line with NUL", image: good, cmdline: "a\x00b", want: "NUL byte at offset 1"},
		{name: "initrd too big", image: good, initrd: 48 * MiB, want: "initrd is 50331648 bytes, which does not fit"},
		{name: "initrd_addr_max too low", image: d.with(func(o *bz) { o.initrdAddrMax = 0xFFFFF }).image(), initrd: 10, want: "between 1 MiB and 0x100000 (initrd_addr_max 0xfffff"},
		{name: "initrd_addr_max below the kernel", image: d.with(func(o *bz) { o.initrdAddrMax = 16*MiB + 0x7FFF }).image(), initrd: 15*MiB + 1, want: "the largest free stretch below 0x1008000 is 15728640 bytes"},
		{name: "no RAM for the boot structures", image: good, mem: testmem.New(0, rg(MiB, 64*MiB)), want: "GDT [0x1000-0x101f] is not in usable guest RAM"},
		{name: "reserved zero page", image: good, reserved: []loader.MapEntry{{Range: rg(0x7000, 0x100), Type: loader.E820_TYPE_ACPI}}, want: "zero page [0x7000-0x7fff] is not in usable guest RAM"},
		{name: "bad reserved", image: good, reserved: []loader.MapEntry{{Range: rg(0x7000, 0x100), Type: loader.E820_TYPE_RAM}}, want: "memory map: reserved range 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.mem
			if m == nil {
				m = testmem.Flat(0, 64*MiB)
			}
			_, err := linux.Load(m, linux.Config{Kernel: tc.image, Cmdline: tc.cmdline, Initrd: make([]byte, tc.initrd), Reserved: tc.reserved})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant one containing %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "bzImage: ") && !strings.HasPrefix(err.Error(), "linux: ") {
				t.Errorf("error %q does not say which loader", err)
			}
			if len(m.Writes) > 0 || len(m.Outside) > 0 {
				t.Errorf("a refused load wrote %v (outside RAM: %v)", m.Writes, m.Outside)
			}
		})
	}
}

func TestParse(t *testing.T) {
	h, err := linux.Parse(bzDefault().image())
	if err != nil {
		t.Fatal(err)
	}
	want := linux.Header{
		Version: 0x020F, SetupSects: 8, HeaderEnd: 0x26C, LoadFlags: linux.LOADED_HIGH,
		XLoadFlags: linux.XLF_KERNEL_64 | linux.XLF_CAN_BE_LOADED_ABOVE_4G, Relocatable: true,
		KernelAlignment: 2 * MiB, InitrdAddrMax: 0x7FFFFFFF, CmdlineSize: 2047, PrefAddress: 16 * MiB,
		InitSize: MiB, KernelOffset: 9 * 512, KernelSize: 64 * KiB,
	}
	if *h != want {
		t.Errorf("got  %+v\nwant %+v", *h, want)
	}
	if s := h.String(); !strings.Contains(s, "protocol 2.15") {
		t.Errorf("String() = %q", s)
	}
}

// patch returns a copy of b with p written at off.
func patch(b []byte, off int, p []byte) []byte {
	c := bytes.Clone(b)
	copy(c[off:], p)
	return c
}

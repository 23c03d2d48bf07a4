package bootinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseMultiboot1(t *testing.T) {
	all := uint32(MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME)
	mmap := []Region{
		{Base: 0, Size: 0x9fc00, Type: RAM},
		{Base: 0x9fc00, Size: 0x400, Type: Reserved},
		{Base: 0x100000, Size: 0x7fee0000, Type: RAM},
		{Base: 0x7ffe0000, Size: 0x20000, Type: ACPIReclaim},
	}

	tests := []struct {
		name  string
		m     mb1
		check func(t *testing.T, info *Info)
	}{
		{
			name: "everything",
			m: mb1{
				flags: all, lower: 639, upper: 2096000,
				cmdline: "/keel.elf console=ttyS0", loader: "iPXE 1.21.1",
				mods: []Module{{Base: 0x1000000, Size: 0x5000, Cmdline: "bundle"}, {Base: 0x1005000, Size: 0x10, Cmdline: ""}},
				mmap: mmap,
			},
			check: func(t *testing.T, info *Info) {
				want := &Info{
					Protocol: ProtocolMultiboot, Loader: "iPXE 1.21.1", Cmdline: "/keel.elf console=ttyS0",
					Memory: mmap, RawMemory: mmap, MemLowerKiB: 639, MemUpperKiB: 2096000,
					Modules: []Module{{Base: 0x1000000, Size: 0x5000, Cmdline: "bundle"}, {Base: 0x1005000, Size: 0x10}},
				}
				if !reflect.DeepEqual(info, want) {
					t.Errorf("ParseMultiboot1() =\n%+v\nwant\n%+v", info, want)
				}
			},
		},
		{
			name: "no flags",
			m:    mb1{cmdline: "ignored"},
			check: func(t *testing.T, info *Info) {
				if info.Cmdline != "" || info.Memory != nil || !hasWarning(info, "no memory map") {
					t.Errorf("got %+v", info)
				}
			},
		},
		{
			name: "basic memory only",
			m:    mb1{flags: MULTIBOOT_INFO_MEMORY, lower: 639, upper: 1024},
			check: func(t *testing.T, info *Info) {
				want := []Region{{Base: 0, Size: 639 << 10, Type: RAM}, {Base: 0x100000, Size: 1 << 20, Type: RAM}}
				if !reflect.DeepEqual(info.Memory, want) {
					t.Errorf("Memory = %v, want %v", info.Memory, want)
				}
			},
		},
		{
			name: "entries with a larger size field",
			m:    mb1{flags: MULTIBOOT_INFO_MEM_MAP, mmap: mmap, mmapStride: 24},
			check: func(t *testing.T, info *Info) {
				if !reflect.DeepEqual(info.Memory, mmap) {
					t.Errorf("Memory = %v, want %v", info.Memory, mmap)
				}
			},
		},
		{
			name: "only the loader name: reads 68 bytes",
			m:    mb1{flags: MULTIBOOT_INFO_BOOT_LOADER_NAME, loader: "GNU GRUB 0.97"},
			check: func(t *testing.T, info *Info) {
				if info.Loader != "GNU GRUB 0.97" {
					t.Errorf("Loader = %q", info.Loader)
				}
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, addr := tt.m.build(0x9000)

			info, err := ParseMultiboot1(im.mem(), addr)
			if err != nil {
				t.Fatalf("ParseMultiboot1() error = %v", err)
			}

			checkInfo(t, info)
			tt.check(t, info)
		})
	}
}

func TestParseMultiboot1Errors(t *testing.T) {
	const base = 0x9000

	good := func() (*image, uint64) {
		im, addr := mb1{
			flags: MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP,
			mods:  []Module{{Base: 0x100000, Size: 0x1000, Cmdline: "m"}},
			mmap:  []Region{{Base: 0, Size: 0x1000, Type: RAM}},
		}.build(base)
		im.alloc(make([]byte, 64), 1) // readable zeros after the memory map

		return im, addr
	}

	set := func(off int, v uint32) func(im *image, addr uint64) {
		return func(im *image, addr uint64) { le.PutUint32(im.at(addr)[off:], v) }
	}

	tests := []struct {
		name    string
		patch   func(im *image, addr uint64)
		addr    uint64
		wantErr string
	}{
		{name: "unreadable", addr: 0x100, wantErr: "cannot read the boot information at 0x100"},
		{name: "struct cut off", patch: func(im *image, addr uint64) {
			le.PutUint32(im.at(addr)[0:], MULTIBOOT_INFO_BOOT_LOADER_NAME)
			im.b = im.b[:60]
		}, wantErr: "cannot read 68 bytes of boot information at 0x9000 (flags 0x200)"},
		{name: "cmdline pointer outside memory", patch: set(MULTIBOOT_OFF_CMDLINE, 0xfffff000), wantErr: "command line at 0xfffff000"},
		{name: "too many modules", patch: set(MULTIBOOT_OFF_MODS_COUNT, MAX_MODULES+1), wantErr: "mods_count is 257"},
		{name: "module list outside memory", patch: set(MULTIBOOT_OFF_MODS_ADDR, 0x10), wantErr: "cannot read the 1-entry module list at 0x10"},
		{name: "module end before start", patch: func(im *image, addr uint64) {
			mods := uint64(le.Uint32(im.at(addr)[MULTIBOOT_OFF_MODS_ADDR:]))
			le.PutUint32(im.at(mods)[4:], 0x1000)
		}, wantErr: "module 0 has mod_end 0x1000 before mod_start 0x100000"},
		{name: "module string unterminated", patch: func(im *image, addr uint64) {
			str := im.alloc([]byte(strings.Repeat("z", 5000)), 1)
			mods := uint64(le.Uint32(im.at(addr)[MULTIBOOT_OFF_MODS_ADDR:]))
			le.PutUint32(im.at(mods)[8:], uint32(str))
		}, wantErr: "module 0 string at"},
		{name: "mmap_length absurd", patch: set(MULTIBOOT_OFF_MMAP_LENGTH, 1<<20), wantErr: "mmap_length is 1048576"},
		{name: "mmap_length cuts an entry", patch: set(MULTIBOOT_OFF_MMAP_LENGTH, 20), wantErr: "runs past mmap_length 20"},
		{name: "mmap_length leaves 2 bytes", patch: set(MULTIBOOT_OFF_MMAP_LENGTH, 26), wantErr: "cut off by mmap_length 26"},
		{name: "mmap entry size too small", patch: func(im *image, addr uint64) {
			mm := uint64(le.Uint32(im.at(addr)[MULTIBOOT_OFF_MMAP_ADDR:]))
			le.PutUint32(im.at(mm)[0:], 8)
		}, wantErr: "has size 8, want at least 20"},
		{name: "mmap outside memory", patch: set(MULTIBOOT_OFF_MMAP_ADDR, 0xffffff00), wantErr: "cannot read the 24-byte memory map at 0xffffff00"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, addr := good()
			if tt.patch != nil {
				tt.patch(im, addr)
			}

			if tt.addr != 0 {
				addr = tt.addr
			}

			_, err := ParseMultiboot1(im.mem(), addr)
			wantErr(t, err, tt.wantErr)
		})
	}
}

func TestParseMultiboot1TooManyEntries(t *testing.T) {
	rs := make([]Region, MAX_MEMORY_ENTRIES+1)
	for k := range rs {
		rs[k] = Region{Base: uint64(k) << 12, Size: 0x1000, Type: RAM}
	}

	im, addr := mb1{flags: MULTIBOOT_INFO_MEM_MAP, mmap: rs}.build(0x9000)

	_, err := ParseMultiboot1(im.mem(), addr)
	wantErr(t, err, "more than 1024 entries")

	im, addr = mb1{flags: MULTIBOOT_INFO_MEM_MAP, mmap: rs[:MAX_MEMORY_ENTRIES]}.build(0x9000)

	info, err := ParseMultiboot1(im.mem(), addr)
	if err != nil {
		t.Fatal(err)
	}

	if want := []Region{{Base: 0, Size: MAX_MEMORY_ENTRIES << 12, Type: RAM}}; !reflect.DeepEqual(info.Memory, want) {
		t.Errorf("Memory = %v, want one merged range %v", info.Memory, want)
	}
}

package bootinfo

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// grubLike is a boot information block shaped like the one GRUB 2 builds
// for `multiboot2 /boot/keel.elf keel.run="a; b"` plus one module on a
// 2 GiB BIOS machine.
func grubLike() []byte {
	return mb2Info(
		mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, `/boot/keel.elf "keel.run=a; b"`),
		mb2String(MULTIBOOT_TAG_TYPE_BOOT_LOADER_NAME, "GRUB 2.06-13+deb12u1"),
		mb2Module(0x1000000, 0x1234567, "/boot/bundle.img bundle"),
		mb2Meminfo(639, 2096000),
		mb2Tag(5, []byte{0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), // BIOS boot device: skipped
		mb2Mmap(24,
			Region{Base: 0, Size: 0x9fc00, Type: RAM},
			Region{Base: 0x9fc00, Size: 0x400, Type: Reserved},
			Region{Base: 0xf0000, Size: 0x10000, Type: Reserved},
			Region{Base: 0x100000, Size: 0x7fee0000, Type: RAM},
			Region{Base: 0x7ffe0000, Size: 0x20000, Type: Reserved},
			Region{Base: 0xfffc0000, Size: 0x40000, Type: Reserved},
		),
		mb2Tag(MULTIBOOT_TAG_TYPE_ACPI_OLD, rsdpBytes(ACPI_RSDP_V1_SIZE)),
		mb2Tag(99, []byte("unknown tag, skipped")),
		mb2End(),
	)
}

func TestParseMultiboot2(t *testing.T) {
	const base = 0x10000

	info, err := ParseMultiboot2(memAt(base, grubLike()), base)
	if err != nil {
		t.Fatalf("ParseMultiboot2() error = %v", err)
	}

	want := &Info{
		Protocol:    ProtocolMultiboot2,
		Loader:      "GRUB 2.06-13+deb12u1",
		Cmdline:     `/boot/keel.elf "keel.run=a; b"`,
		MemLowerKiB: 639,
		MemUpperKiB: 2096000,
		Memory: []Region{
			{Base: 0, Size: 0x9fc00, Type: RAM},
			{Base: 0x9fc00, Size: 0x400, Type: Reserved},
			{Base: 0xf0000, Size: 0x10000, Type: Reserved},
			{Base: 0x100000, Size: 0x7fee0000, Type: RAM},
			{Base: 0x7ffe0000, Size: 0x20000, Type: Reserved},
			{Base: 0xfffc0000, Size: 0x40000, Type: Reserved},
		},
		Modules: []Module{{Base: 0x1000000, Size: 0x234567, Cmdline: "/boot/bundle.img bundle"}},
		RSDP:    rsdpBytes(ACPI_RSDP_V1_SIZE),
	}
	want.RawMemory = want.Memory

	if !reflect.DeepEqual(info, want) {
		t.Errorf("ParseMultiboot2() =\n%+v\nwant\n%+v", info, want)
	}

	cl, err := ParseCmdline(info.Cmdline)
	if err != nil {
		t.Fatal(err)
	}

	if v, _ := cl.Get("keel.run"); !reflect.DeepEqual(SplitCommands(v), []string{"a", "b"}) {
		t.Errorf("keel.run = %q, want commands a and b", v)
	}
}

func TestParseMultiboot2Tags(t *testing.T) {
	const base = 0x10000

	tests := []struct {
		name  string
		tags  [][]byte
		check func(t *testing.T, info *Info)
	}{
		{
			name: "new RSDP preferred over old whatever the order",
			tags: [][]byte{
				mb2Tag(MULTIBOOT_TAG_TYPE_ACPI_NEW, rsdpBytes(ACPI_RSDP_V2_SIZE)),
				mb2Tag(MULTIBOOT_TAG_TYPE_ACPI_OLD, rsdpBytes(ACPI_RSDP_V1_SIZE)),
			},
			check: func(t *testing.T, info *Info) {
				if len(info.RSDP) != ACPI_RSDP_V2_SIZE {
					t.Errorf("RSDP is %d bytes, want the %d-byte v2 copy", len(info.RSDP), ACPI_RSDP_V2_SIZE)
				}
			},
		},
		{
			name: "short RSDP copy ignored",
			tags: [][]byte{mb2Tag(MULTIBOOT_TAG_TYPE_ACPI_NEW, rsdpBytes(20))},
			check: func(t *testing.T, info *Info) {
				if info.RSDP != nil {
					t.Errorf("RSDP = %x, want none", info.RSDP)
				}
			},
		},
		{
			name: "EFI64 system table",
			tags: [][]byte{mb2EFI64(0x7fb3e018)},
			check: func(t *testing.T, info *Info) {
				if info.EFI64SystemTable != 0x7fb3e018 {
					t.Errorf("EFI64SystemTable = %#x, want 0x7fb3e018", info.EFI64SystemTable)
				}
			},
		},
		{
			name: "basic meminfo only",
			tags: [][]byte{mb2Meminfo(640, 0x1000)},
			check: func(t *testing.T, info *Info) {
				want := []Region{{Base: 0, Size: 0xa0000, Type: RAM}, {Base: 0x100000, Size: 0x400000, Type: RAM}}
				if !reflect.DeepEqual(info.Memory, want) {
					t.Errorf("Memory = %v, want %v", info.Memory, want)
				}
			},
		},
		{
			name: "memory map wins over basic meminfo",
			tags: [][]byte{mb2Meminfo(640, 0x1000), mb2Mmap(24, Region{Base: 0x100000, Size: 0x1000, Type: RAM})},
			check: func(t *testing.T, info *Info) {
				if info.RAM() != 0x1000 {
					t.Errorf("RAM() = %#x, want 0x1000 from the memory map", info.RAM())
				}
			},
		},
		{
			name: "larger entry size",
			tags: [][]byte{mb2Mmap(32, Region{Base: 0x100000, Size: 0x1000, Type: RAM}, Region{Base: 0x200000, Size: 0x1000, Type: ACPINVS})},
			check: func(t *testing.T, info *Info) {
				want := []Region{{Base: 0x100000, Size: 0x1000, Type: RAM}, {Base: 0x200000, Size: 0x1000, Type: ACPINVS}}
				if !reflect.DeepEqual(info.Memory, want) {
					t.Errorf("Memory = %v, want %v", info.Memory, want)
				}
			},
		},
		{
			name: "several modules in order",
			tags: [][]byte{mb2Module(0x200000, 0x201000, "a"), mb2Module(0x300000, 0x300000, ""), mb2Module(0x400000, 0x400010, "c x=1")},
			check: func(t *testing.T, info *Info) {
				want := []Module{{0x200000, 0x1000, "a"}, {0x300000, 0, ""}, {0x400000, 0x10, "c x=1"}}
				if !reflect.DeepEqual(info.Modules, want) {
					t.Errorf("Modules = %+v, want %+v", info.Modules, want)
				}
			},
		},
		{
			name: "duplicate command line: first kept, warned",
			tags: [][]byte{mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, "first"), mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, "second")},
			check: func(t *testing.T, info *Info) {
				if info.Cmdline != "first" || !hasWarning(info, "duplicate tag type 1") {
					t.Errorf("Cmdline = %q, warnings %q", info.Cmdline, info.Warnings)
				}
			},
		},
		{
			name: "unterminated command line kept whole, warned",
			tags: [][]byte{mb2Tag(MULTIBOOT_TAG_TYPE_CMDLINE, []byte("abc"))},
			check: func(t *testing.T, info *Info) {
				if info.Cmdline != "abc" || !hasWarning(info, "not NUL-terminated") {
					t.Errorf("Cmdline = %q, warnings %q", info.Cmdline, info.Warnings)
				}
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseMultiboot2(memAt(base, mb2Info(append(tt.tags, mb2End())...)), base)
			if err != nil {
				t.Fatalf("ParseMultiboot2() error = %v", err)
			}

			checkInfo(t, info)
			tt.check(t, info)
		})
	}
}

func TestParseMultiboot2Errors(t *testing.T) {
	const base = 0x10000

	good := mb2Info(mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, "x"), mb2End())

	patch := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		le.PutUint32(b[off:], v)
		return b
	}

	tooManyModules := make([][]byte, 0, MAX_MODULES+2)
	for range MAX_MODULES + 1 {
		tooManyModules = append(tooManyModules, mb2Module(0, 0, ""))
	}

	tests := []struct {
		name     string
		mem      Memory
		addr     uint64
		wantErr  string
		wantWarn string
	}{
		{name: "unreadable", mem: memAt(base, good), addr: 0x20000, wantErr: "cannot read the boot information at 0x20000"},
		{name: "total_size too small", mem: memAt(base, patch(good, 0, 8)), addr: base, wantErr: "total_size 8, want at least 16"},
		{name: "total_size absurd", mem: memAt(base, patch(good, 0, 0x7fffffff)), addr: base, wantErr: "at most 65536"},
		{name: "total_size past memory", mem: memAt(base, patch(good, 0, uint32(len(good)+8))), addr: base, wantErr: "cannot read the 40-byte boot information"},
		{name: "tag size below 8", mem: memAt(base, patch(good, 12, 4)), addr: base, wantErr: "tag type 1 at 0x10008 (offset 8) has size 4"},
		{name: "tag past total_size", mem: memAt(base, patch(good, 12, 0x100)), addr: base, wantErr: "size 256, past total_size 32"},
		{name: "end tag past total_size", mem: memAt(base, patch(good, 0, 20)), addr: base, wantWarn: "no end tag"},
		{
			name:    "short module tag",
			mem:     memAt(base, mb2Info(mb2Tag(MULTIBOOT_TAG_TYPE_MODULE, []byte{1, 2, 3, 4}), mb2End())),
			addr:    base,
			wantErr: "module tag at 0x10008 has size 12, want at least 16",
		},
		{
			name:    "module end before start",
			mem:     memAt(base, mb2Info(mb2Module(0x2000, 0x1000, "m"), mb2End())),
			addr:    base,
			wantErr: "mod_end 0x1000 before mod_start 0x2000",
		},
		{
			name:    "too many modules",
			mem:     memAt(base, mb2Info(append(tooManyModules, mb2End())...)),
			addr:    base,
			wantErr: "past the limit of 256 modules",
		},
		{
			name:    "command line too long",
			mem:     memAt(base, mb2Info(mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, strings.Repeat("a", MAX_CMDLINE+1)), mb2End())),
			addr:    base,
			wantErr: "command line at 0x10008 is 4097 bytes",
		},
		{
			name:    "mmap entry size too small",
			mem:     memAt(base, mb2Info(mb2Mmap(16, Region{Size: 1}), mb2End())),
			addr:    base,
			wantErr: "entry_size 16",
		},
		{
			name:    "mmap entry size not a multiple of 8",
			mem:     memAt(base, mb2Info(mb2Mmap(28, Region{Size: 1}), mb2End())),
			addr:    base,
			wantErr: "entry_size 28",
		},
		{
			name:    "short meminfo tag",
			mem:     memAt(base, mb2Info(mb2Tag(MULTIBOOT_TAG_TYPE_BASIC_MEMINFO, []byte{1, 2, 3, 4}), mb2End())),
			addr:    base,
			wantErr: "basic memory information tag at 0x10008 has size 12, want 16",
		},
		{
			name:    "short EFI64 tag",
			mem:     memAt(base, mb2Info(mb2Tag(MULTIBOOT_TAG_TYPE_EFI64, []byte{1, 2, 3, 4}), mb2End())),
			addr:    base,
			wantErr: "EFI64 system table tag at 0x10008 has size 12, want 16",
		},
		{
			name:     "unaligned info",
			mem:      memAt(base+4, good),
			addr:     base + 4,
			wantWarn: "not 8-byte aligned",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseMultiboot2(tt.mem, tt.addr)
			wantErr(t, err, tt.wantErr)

			if err == nil && !hasWarning(info, tt.wantWarn) {
				t.Errorf("Warnings = %q, want one containing %q", info.Warnings, tt.wantWarn)
			}
		})
	}
}

func hasWarning(info *Info, s string) bool {
	if s == "" {
		return true
	}

	for _, w := range info.Warnings {
		if strings.Contains(w, s) {
			return true
		}
	}

	return false
}

package bootinfo

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   []Region
		want []Region
	}{
		{
			name: "empty",
			in:   nil,
			want: nil,
		},
		{
			name: "sorts and drops zero size",
			in: []Region{
				{Base: 0x100000, Size: 0x100000, Type: RAM},
				{Base: 0x5000, Size: 0, Type: Reserved},
				{Base: 0, Size: 0x9fc00, Type: RAM},
			},
			want: []Region{
				{Base: 0, Size: 0x9fc00, Type: RAM},
				{Base: 0x100000, Size: 0x100000, Type: RAM},
			},
		},
		{
			name: "merges adjacent same type",
			in: []Region{
				{Base: 0x1000, Size: 0x1000, Type: RAM},
				{Base: 0x2000, Size: 0x1000, Type: RAM},
				{Base: 0x3000, Size: 0x1000, Type: Reserved},
			},
			want: []Region{
				{Base: 0x1000, Size: 0x2000, Type: RAM},
				{Base: 0x3000, Size: 0x1000, Type: Reserved},
			},
		},
		{
			name: "reserved punches a hole in RAM",
			in: []Region{
				{Base: 0, Size: 0x10000, Type: RAM},
				{Base: 0x4000, Size: 0x1000, Type: Reserved},
			},
			want: []Region{
				{Base: 0, Size: 0x4000, Type: RAM},
				{Base: 0x4000, Size: 0x1000, Type: Reserved},
				{Base: 0x5000, Size: 0xb000, Type: RAM},
			},
		},
		{
			name: "most restrictive wins a three-way overlap",
			in: []Region{
				{Base: 0, Size: 0x3000, Type: ACPIReclaim},
				{Base: 0x1000, Size: 0x3000, Type: Unusable},
				{Base: 0, Size: 0x5000, Type: RAM},
				{Base: 0x2000, Size: 0x1000, Type: ACPINVS},
			},
			want: []Region{
				{Base: 0, Size: 0x1000, Type: ACPIReclaim},
				{Base: 0x1000, Size: 0x3000, Type: Unusable},
				{Base: 0x4000, Size: 0x1000, Type: RAM},
			},
		},
		{
			name: "identical duplicates collapse",
			in: []Region{
				{Base: 0x1000, Size: 0x1000, Type: RAM},
				{Base: 0x1000, Size: 0x1000, Type: RAM},
			},
			want: []Region{{Base: 0x1000, Size: 0x1000, Type: RAM}},
		},
		{
			name: "unknown type beats RAM, loses to reserved",
			in: []Region{
				{Base: 0, Size: 0x4000, Type: RAM},
				{Base: 0x1000, Size: 0x2000, Type: 12},
				{Base: 0x2000, Size: 0x2000, Type: Reserved},
			},
			want: []Region{
				{Base: 0, Size: 0x1000, Type: RAM},
				{Base: 0x1000, Size: 0x1000, Type: 12},
				{Base: 0x2000, Size: 0x2000, Type: Reserved},
			},
		},
		{
			name: "range wrapping past 2^64 is cut",
			in: []Region{
				{Base: math.MaxUint64 - 0xfff, Size: 0x2000, Type: Reserved},
			},
			want: []Region{{Base: math.MaxUint64 - 0xfff, Size: 0xfff, Type: Reserved}},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in)

			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Sanitize() = %v, want %v", got, tt.want)
			}

			checkSanitized(t, got)
		})
	}
}

func TestInfoHelpers(t *testing.T) {
	info := &Info{}
	info.setMemory([]Region{
		{Base: 0, Size: 0x9fc00, Type: RAM},
		{Base: 0x9fc00, Size: 0x400, Type: Reserved},
		{Base: 0x100000, Size: 0x3ff00000, Type: RAM},
		{Base: 0x200000, Size: 0x100000, Type: Reserved}, // overlaps: hole in RAM
		{Base: 0x100000000, Size: 0x40000000, Type: RAM},
		{Base: 0xfd00000000, Size: 0x300000000, Type: Reserved},
	})

	if len(info.Warnings) != 1 || !strings.Contains(info.Warnings[0], "overlapping") {
		t.Errorf("Warnings = %q, want one about overlapping ranges", info.Warnings)
	}

	if got, want := info.RAM(), uint64(0x9fc00+0x3ff00000-0x100000+0x40000000); got != want {
		t.Errorf("RAM() = %#x, want %#x", got, want)
	}

	if got, want := info.MaxAddr(), uint64(0x140000000); got != want {
		t.Errorf("MaxAddr() = %#x, want %#x", got, want)
	}

	covers := []struct {
		name      string
		base, end uint64
		want      bool
	}{
		{"low RAM", 0x1000, 0x9f000, true},
		{"whole low RAM", 0, 0x9fc00, true},
		{"into EBDA", 0x9f000, 0xa0000, false},
		{"below the hole", 0x100000, 0x200000, true},
		{"across the hole", 0x100000, 0x300001, false},
		{"above the hole", 0x300000, 0x40000000, true},
		{"across the 4G gap", 0x3fff0000, 0x100001000, false},
		{"high RAM", 0x100000000, 0x140000000, true},
		{"past the end", 0x13ffff000, 0x140001000, false},
		{"empty", 0x1000, 0x1000, false},
		{"inverted", 0x2000, 0x1000, false},
	}

	for _, tt := range covers {
		t.Run(tt.name, func(t *testing.T) {
			if got := info.Covers(tt.base, tt.end); got != tt.want {
				t.Errorf("Covers(%#x, %#x) = %v, want %v", tt.base, tt.end, got, tt.want)
			}
		})
	}
}

func TestParseDispatch(t *testing.T) {
	pvhIm, pvhAddr := pvhInfo{magic: XEN_HVM_START_MAGIC_VALUE, version: 1, cmdline: "pvh"}.build(0x6000)
	mb1Im, mb1Addr := mb1{flags: MULTIBOOT_INFO_CMDLINE, cmdline: "mb1"}.build(0x9000)
	mb2Addr := uint64(0x8000)
	mb2Bytes := mb2Info(mb2String(MULTIBOOT_TAG_TYPE_CMDLINE, "mb2"), mb2End())

	mem := &fakeMem{}
	mem.Add(pvhIm.base, pvhIm.b).Add(mb1Im.base, mb1Im.b).Add(mb2Addr, mb2Bytes).Add(0xa000, make([]byte, 64))

	tests := []struct {
		name         string
		eax, ebx     uint32
		wantProtocol string
		wantCmdline  string
		wantErr      string
	}{
		{"multiboot2", MULTIBOOT2_BOOTLOADER_MAGIC, uint32(mb2Addr), ProtocolMultiboot2, "mb2", ""},
		{"multiboot", MULTIBOOT_BOOTLOADER_MAGIC, uint32(mb1Addr), ProtocolMultiboot, "mb1", ""},
		{"pvh", 0, uint32(pvhAddr), ProtocolPVH, "pvh", ""},
		{"pvh with junk in eax", 0xdeadbeef, uint32(pvhAddr), ProtocolPVH, "pvh", ""},
		{"nothing matches", 0x1234, 0xa000, "", "", "points at 0x0, not the PVH start info magic 0x336ec578"},
		{"ebx unreadable", 0x1234, 0xfff00000, "", "", "EBX 0xfff00000 cannot be read"},
		{"multiboot2 magic but multiboot1 data", MULTIBOOT2_BOOTLOADER_MAGIC, uint32(mb1Addr), "", "", "multiboot2"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Parse(mem, tt.eax, tt.ebx)
			wantErr(t, err, tt.wantErr)

			if err != nil {
				return
			}

			if info.Protocol != tt.wantProtocol || info.Cmdline != tt.wantCmdline {
				t.Errorf("Parse() = protocol %q cmdline %q, want %q %q", info.Protocol, info.Cmdline, tt.wantProtocol, tt.wantCmdline)
			}
		})
	}
}

func TestReadString(t *testing.T) {
	long := strings.Repeat("x", MAX_CMDLINE)

	tests := []struct {
		name    string
		mem     Memory
		addr    uint64
		want    string
		wantErr string
	}{
		{"simple", memAt(0x1000, []byte("hello\x00junk")), 0x1000, "hello", ""},
		{"empty", memAt(0x1000, []byte{0}), 0x1000, "", ""},
		{"unaligned, ends at the end of memory", memAt(0x1003, []byte("abc\x00")), 0x1003, "abc", ""},
		{"crosses chunk boundaries", memAt(0x103d, append([]byte(strings.Repeat("y", 200)), 0)), 0x103d, strings.Repeat("y", 200), ""},
		{"longest accepted", memAt(0x1000, append([]byte(long), 0)), 0x1000, long, ""},
		{"one byte too long", memAt(0x1000, append([]byte(long+"x"), 0)), 0x1000, "", "no NUL within 4097 bytes"},
		{"no NUL before the end of memory", memAt(0x1000, []byte("abc")), 0x1000, "", "no RAM at [0x1003"},
		{"wraps", memAt(math.MaxUint64-2, []byte("abc")), math.MaxUint64 - 2, "", "wraps past 2^64"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readString(tt.mem, tt.addr, MAX_CMDLINE)
			wantErr(t, err, tt.wantErr)

			if got != tt.want {
				t.Errorf("readString() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReadBytes(t *testing.T) {
	mem := memAt(0x1000, make([]byte, 3*readChunk))

	tests := []struct {
		name    string
		addr    uint64
		n       int
		wantErr string
	}{
		{"zero", 0x1000, 0, ""},
		{"several chunks", 0x1000, 3 * readChunk, ""},
		{"one past", 0x1000, 3*readChunk + 1, "no RAM"},
		{"wraps", math.MaxUint64 - 3, 8, "wraps past 2^64"},
		{"negative", 0x1000, -1, "negative length"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := readBytes(mem, tt.addr, tt.n)
			wantErr(t, err, tt.wantErr)

			if err == nil && len(b) != tt.n {
				t.Errorf("readBytes() returned %d bytes, want %d", len(b), tt.n)
			}
		})
	}
}

func TestRegionTypeString(t *testing.T) {
	tests := []struct {
		typ  RegionType
		want string
	}{
		{RAM, "RAM"},
		{ACPIReclaim, "ACPI reclaimable"},
		{Persistent, "persistent"},
		{12, "type 12"},
	}

	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.typ.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

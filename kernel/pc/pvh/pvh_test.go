package pvh

import (
	"encoding/binary"
	"strings"
	"testing"
)

// startInfo builds a raw hvm_start_info of the given size.
func startInfo(size int, magic, version uint32, memmap uint64, entries uint32) []byte {
	b := make([]byte, size)
	le := binary.LittleEndian
	le.PutUint32(b[OFF_MAGIC:], magic)
	le.PutUint32(b[OFF_VERSION:], version)
	le.PutUint32(b[OFF_FLAGS:], 0)
	le.PutUint32(b[OFF_NR_MODULES:], 0)
	le.PutUint64(b[OFF_RSDP_PADDR:], 0xf5a00)

	if size >= START_INFO_SIZE_V1 {
		le.PutUint64(b[OFF_MEMMAP_PADDR:], memmap)
		le.PutUint32(b[OFF_MEMMAP_ENTRIES:], entries)
	}

	return b
}

// memmap builds a raw memory map from entries.
func memmap(entries ...MemmapEntry) []byte {
	b := make([]byte, len(entries)*MEMMAP_ENTRY_SIZE)
	le := binary.LittleEndian

	for i, e := range entries {
		r := b[i*MEMMAP_ENTRY_SIZE:]
		le.PutUint64(r[0:], e.Addr)
		le.PutUint64(r[8:], e.Size)
		le.PutUint32(r[16:], e.Type)
		le.PutUint32(r[20:], 0xdeadbeef) // reserved, must be ignored
	}

	return b
}

// qemuQ35 is the map QEMU 7.2 (SeaBIOS 1.16.2, pvh.bin) hands over for
// `-machine q35 -cpu max -m 2G`, read from a probe kernel. The last entry is
// the AMD HyperTransport hole above 1 TiB.
var qemuQ35 = []MemmapEntry{
	{Addr: 0, Size: 0x9fc00, Type: XEN_HVM_MEMMAP_TYPE_RAM},
	{Addr: 0x9fc00, Size: 0x400, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0xf0000, Size: 0x10000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0x100000, Size: 0x7fedf000, Type: XEN_HVM_MEMMAP_TYPE_RAM},
	{Addr: 0x7ffdf000, Size: 0x21000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0xb0000000, Size: 0x10000000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0xfed1c000, Size: 0x4000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0xfffc0000, Size: 0x40000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
	{Addr: 0xfd00000000, Size: 0x300000000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
}

func TestParseStartInfo(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte
		want    StartInfo
		wantErr string
	}{
		{
			name: "v1 with memmap",
			raw:  startInfo(START_INFO_SIZE_V1, XEN_HVM_START_MAGIC_VALUE, 1, 0x6000, 8),
			want: StartInfo{Version: 1, RsdpPaddr: 0xf5a00, MemmapPaddr: 0x6000, MemmapEntries: 8},
		},
		{
			name: "v0 has no memmap fields",
			raw:  startInfo(START_INFO_SIZE_V0, XEN_HVM_START_MAGIC_VALUE, 0, 0, 0),
			want: StartInfo{Version: 0, RsdpPaddr: 0xf5a00},
		},
		{
			name:    "bad magic",
			raw:     startInfo(START_INFO_SIZE_V1, 0x2badb002, 1, 0, 0),
			wantErr: "magic is 0x2badb002",
		},
		{
			name:    "short",
			raw:     make([]byte, 12),
			wantErr: "12 bytes",
		},
		{
			name:    "v1 truncated",
			raw:     startInfo(START_INFO_SIZE_V1, XEN_HVM_START_MAGIC_VALUE, 1, 0x6000, 8)[:48],
			wantErr: "version 1 start info is 48 bytes",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStartInfo(tt.raw)

			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseStartInfo() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}

			if err != nil {
				t.Fatalf("ParseStartInfo() error = %v", err)
			}

			if got != tt.want {
				t.Errorf("ParseStartInfo() = %+v, want %+v", got, tt.want)
			}

			if got.HasMemmap() != (tt.want.MemmapEntries != 0) {
				t.Errorf("HasMemmap() = %v", got.HasMemmap())
			}
		})
	}
}

func TestParseMemmap(t *testing.T) {
	raw := memmap(qemuQ35...)

	tests := []struct {
		name    string
		raw     []byte
		n       int
		want    []MemmapEntry
		wantErr string
	}{
		{name: "qemu q35 2G", raw: raw, n: len(qemuQ35), want: qemuQ35},
		{name: "prefix", raw: raw, n: 2, want: qemuQ35[:2]},
		{name: "empty", raw: nil, n: 0, want: []MemmapEntry{}},
		{name: "truncated", raw: raw[:len(raw)-1], n: len(qemuQ35), wantErr: "needs 216 bytes, have 215"},
		{name: "negative", raw: raw, n: -1, wantErr: "negative"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMemmap(tt.raw, tt.n)

			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMemmap() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}

			if err != nil {
				t.Fatalf("ParseMemmap() error = %v", err)
			}

			if len(got) != len(tt.want) {
				t.Fatalf("ParseMemmap() returned %d entries, want %d", len(got), len(tt.want))
			}

			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestTotalRAMAndCovers(t *testing.T) {
	const (
		kernelStart = 0x10000000
		kernelEnd   = 0x30000000
	)

	tests := []struct {
		name      string
		m         []MemmapEntry
		wantTotal uint64
		wantCover bool
	}{
		{
			name:      "q35 2G",
			m:         qemuQ35,
			wantTotal: 0x9fc00 + 0x7fedf000, // 2047 MiB + 763 KiB
			wantCover: true,
		},
		{
			name: "256M is too small",
			m: []MemmapEntry{
				{Addr: 0, Size: 0x9fc00, Type: XEN_HVM_MEMMAP_TYPE_RAM},
				{Addr: 0x100000, Size: 0xff00000, Type: XEN_HVM_MEMMAP_TYPE_RAM},
			},
			wantTotal: 0x9fc00 + 0xff00000,
			wantCover: false,
		},
		{
			name: "split RAM does not count as cover",
			m: []MemmapEntry{
				{Addr: 0x100000, Size: 0x1ff00000, Type: XEN_HVM_MEMMAP_TYPE_RAM},
				{Addr: 0x20000000, Size: 0x20000000, Type: XEN_HVM_MEMMAP_TYPE_RAM},
			},
			wantTotal: 0x1ff00000 + 0x20000000,
			wantCover: false,
		},
		{
			name: "reserved range does not count",
			m: []MemmapEntry{
				{Addr: 0, Size: 0x40000000, Type: XEN_HVM_MEMMAP_TYPE_RESERVED},
			},
			wantTotal: 0,
			wantCover: false,
		},
		{
			name: "entry reaching the top of the address space",
			m: []MemmapEntry{
				{Addr: 0x100000, Size: ^uint64(0), Type: XEN_HVM_MEMMAP_TYPE_RAM},
			},
			wantTotal: ^uint64(0),
			wantCover: true,
		},
		{name: "empty", m: nil},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TotalRAM(tt.m); got != tt.wantTotal {
				t.Errorf("TotalRAM() = %#x, want %#x", got, tt.wantTotal)
			}

			if got := Covers(tt.m, kernelStart, kernelEnd); got != tt.wantCover {
				t.Errorf("Covers() = %v, want %v", got, tt.wantCover)
			}
		})
	}
}

func TestQ35ReportsMiB(t *testing.T) {
	if got := TotalRAM(qemuQ35) >> 20; got != 2047 {
		t.Errorf("q35 -m 2G RAM = %d MiB, want 2047", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(startInfo(START_INFO_SIZE_V1, XEN_HVM_START_MAGIC_VALUE, 1, 0, 2), memmap(qemuQ35[:2]...))

	f.Fuzz(func(t *testing.T, si, mm []byte) {
		s, err := ParseStartInfo(si)
		if err != nil {
			return
		}

		n := int(s.MemmapEntries % 1024)
		m, err := ParseMemmap(mm, n)
		if err != nil {
			return
		}

		_ = TotalRAM(m)
		_ = Covers(m, 0x10000000, 0x30000000)
	})
}

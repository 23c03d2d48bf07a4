package acpi

import (
	"testing"
)

func TestParseRSDP(t *testing.T) {
	v2 := rsdpV2(0x7ffe0000, 0x7ffe1000)

	patched := func(b []byte, f func(b []byte)) []byte {
		b = append([]byte(nil), b...)
		f(b)

		return b
	}

	tests := []struct {
		name    string
		b       []byte
		want    RSDP
		wantErr string
	}{
		{
			name: "v1 (QEMU/SeaBIOS)",
			b:    rsdpV1(0x7ffe1234),
			want: RSDP{Source: SourceCopy, Revision: 0, OEMID: "BOCHS ", RSDTAddr: 0x7ffe1234},
		},
		{
			name: "v2",
			b:    v2,
			want: RSDP{Source: SourceCopy, Revision: 2, OEMID: "KEEL  ", RSDTAddr: 0x7ffe0000, XSDTAddr: 0x7ffe1000, Length: 36},
		},
		{
			name: "v2 with trailing bytes in the copy",
			b:    append(append([]byte(nil), v2...), 0xaa, 0xbb),
			want: RSDP{Source: SourceCopy, Revision: 2, OEMID: "KEEL  ", RSDTAddr: 0x7ffe0000, XSDTAddr: 0x7ffe1000, Length: 36},
		},
		{name: "short", b: v2[:19], wantErr: "RSDP (loader copy): 19 bytes, want at least 20"},
		{name: "bad signature", b: patched(v2, func(b []byte) { b[0] = 'X' }), wantErr: `signature is "XSD PTR ", want "RSD PTR "`},
		{name: "bad checksum", b: patched(rsdpV1(1), func(b []byte) { b[RSDP_OFF_RSDT_ADDRESS]++ }), wantErr: "checksum mismatch: the first 20 bytes sum to 0x01"},
		{name: "bad extended checksum", b: patched(v2, func(b []byte) { b[RSDP_OFF_XSDT_ADDRESS]++ }), wantErr: "extended checksum mismatch"},
		{name: "v2 copy cut to 20 bytes", b: v2[:20], wantErr: "revision 2 RSDP is 20 bytes, want at least 36"},
		{
			name:    "v2 length too small",
			b:       patched(v2, func(b []byte) { le.PutUint32(b[RSDP_OFF_LENGTH:], 20); fix(b[:20], RSDP_OFF_CHECKSUM) }),
			wantErr: "has length 20, want 36 to 4096",
		},
		{
			name:    "v2 length absurd",
			b:       patched(v2, func(b []byte) { le.PutUint32(b[RSDP_OFF_LENGTH:], 0xffffffff); fix(b[:20], RSDP_OFF_CHECKSUM) }),
			wantErr: "has length 4294967295",
		},
		{
			name:    "v2 length past the copy",
			b:       patched(v2, func(b []byte) { le.PutUint32(b[RSDP_OFF_LENGTH:], 40); fix(b[:20], RSDP_OFF_CHECKSUM) }),
			wantErr: "length 40, but only 36 bytes are there",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRSDP(tt.b)
			wantErr(t, err, tt.wantErr)

			if err == nil && got != tt.want {
				t.Errorf("ParseRSDP() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestScanRSDP(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(m *machine)
		noPage0    bool
		wantAddr   uint64
		wantSource string
		wantErr    string
	}{
		{
			name:       "BIOS area (SeaBIOS)",
			setup:      func(m *machine) { m.putRSDP(0xf5a00, rsdpV1(0x1234)) },
			wantAddr:   0xf5a00,
			wantSource: SourceBIOSArea,
		},
		{
			name:       "EBDA first",
			setup:      func(m *machine) { m.putRSDP(ebdaBase+0x40, rsdpV2(1, 2)); m.putRSDP(0xf5a00, rsdpV1(0x1234)) },
			wantAddr:   ebdaBase + 0x40,
			wantSource: SourceEBDA,
		},
		{
			name: "only the first KiB of the EBDA",
			setup: func(m *machine) {
				m.putRSDP(ebdaBase+0x400, rsdpV1(1))
				m.putRSDP(ebdaBase-0x10, rsdpV1(1))
				m.putRSDP(0xfff00, rsdpV1(0x1234))
			},
			wantAddr:   0xfff00,
			wantSource: SourceBIOSArea,
		},
		{
			name:       "last slot of the BIOS area",
			setup:      func(m *machine) { m.putRSDP(0xfffe0, rsdpV1(0x1234)) },
			wantAddr:   0xfffe0,
			wantSource: SourceBIOSArea,
		},
		{
			name: "bad checksum skipped",
			setup: func(m *machine) {
				bad := rsdpV1(1)
				bad[RSDP_OFF_CHECKSUM]++
				m.putRSDP(0xe0000, bad)
				m.putRSDP(0xf0000, rsdpV1(2))
			},
			wantAddr:   0xf0000,
			wantSource: SourceBIOSArea,
		},
		{
			name:    "not on a 16-byte boundary",
			setup:   func(m *machine) { m.putRSDP(0xf5a08, rsdpV1(0x1234)) },
			wantErr: "no valid RSDP found (searched: EBDA at 0x9fc00, BIOS area 0xe0000-0xfffff)",
		},
		{
			name: "only bad candidates",
			setup: func(m *machine) {
				bad := rsdpV2(1, 2)
				bad[RSDP_OFF_EXTENDED_CHECKSUM]++
				m.putRSDP(0xe1000, bad)
			},
			wantErr: "rejected: acpi: RSDP at 0xe1000 (BIOS area): extended checksum mismatch",
		},
		{
			name:       "page 0 unreadable: BIOS area still searched",
			setup:      func(m *machine) { m.putRSDP(0xf5a00, rsdpV1(0x1234)) },
			noPage0:    true,
			wantAddr:   0xf5a00,
			wantSource: SourceBIOSArea,
		},
		{
			name:    "no EBDA",
			setup:   func(m *machine) { le.PutUint16(m.page0[EBDA_SEGMENT_PTR:], 0) },
			wantErr: "no EBDA (segment pointer 0x0)",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			tt.setup(m)

			mem := m.mem()
			if tt.noPage0 {
				mem.Remove(0)
			}

			got, err := ScanRSDP(mem)
			wantErr(t, err, tt.wantErr)

			if err == nil && (got.Addr != tt.wantAddr || got.Source != tt.wantSource) {
				t.Errorf("ScanRSDP() found %+v, want address %#x from %s", got, tt.wantAddr, tt.wantSource)
			}
		})
	}
}

func TestScanRSDPNoBIOSArea(t *testing.T) {
	// A UEFI machine: nothing at the legacy addresses.
	_, err := ScanRSDP(&fakeMem{})
	wantErr(t, err, "EBDA pointer at 0x40e unreadable")
	wantErr(t, err, "on a UEFI machine the loader must pass the RSDP")
}

func TestFindRSDP(t *testing.T) {
	m := newMachine()
	m.putRSDP(0xf5a00, rsdpV1(0x1111))
	at := m.Add(rsdpV2(0x2222, 0x3333))
	mem := m.mem()

	tests := []struct {
		name     string
		hints    []uint64
		wantRSDT uint32
		wantErr  string
	}{
		{name: "no hints: scan", wantRSDT: 0x1111},
		{name: "zero hint skipped", hints: []uint64{0}, wantRSDT: 0x1111},
		{name: "good hint", hints: []uint64{at}, wantRSDT: 0x2222},
		{name: "bad hint then good", hints: []uint64{at + 16, at}, wantRSDT: 0x2222},
		{name: "bad hint: scan", hints: []uint64{0x12345678}, wantRSDT: 0x1111},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindRSDP(mem, tt.hints...)
			wantErr(t, err, tt.wantErr)

			if got.RSDTAddr != tt.wantRSDT {
				t.Errorf("FindRSDP() = %+v, want RSDT %#x", got, tt.wantRSDT)
			}
		})
	}

	_, err := FindRSDP(&fakeMem{}, 0x1000)
	wantErr(t, err, "RSDP at 0x1000 (loader address): cannot read it")
}

func TestReadRSDP(t *testing.T) {
	// A revision 2 RSDP with a longer Length (4 extra bytes).
	long := append(rsdpV2(1, 2), 0, 0, 0, 0)
	le.PutUint32(long[RSDP_OFF_LENGTH:], 40)
	fix(long[:RSDP_V1_LENGTH], RSDP_OFF_CHECKSUM)
	fix(long, RSDP_OFF_EXTENDED_CHECKSUM)

	v2 := rsdpV2(1, 2)

	tests := []struct {
		name    string
		mem     Memory
		addr    uint64
		wantLen uint32
		wantErr string
	}{
		{name: "v2", mem: (&fakeMem{}).Add(0x1000, v2), addr: 0x1000, wantLen: 36},
		{name: "v2 longer than 36 bytes", mem: (&fakeMem{}).Add(0x1000, long), addr: 0x1000, wantLen: 40},
		{name: "v1 at the end of memory", mem: (&fakeMem{}).Add(0x1000, rsdpV1(1)), addr: 0x1000},
		{name: "v2 cut after 20 bytes", mem: (&fakeMem{}).Add(0x1000, v2[:20]), addr: 0x1000, wantErr: "cannot read its revision 2 fields"},
		{name: "v2 longer, cut", mem: (&fakeMem{}).Add(0x1000, long[:38]), addr: 0x1000, wantErr: "cannot read its 40 bytes"},
		{name: "wraps", mem: &fakeMem{}, addr: 0xfffffffffffffff0, wantErr: "wraps past 2^64"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadRSDP(tt.mem, tt.addr)
			wantErr(t, err, tt.wantErr)

			if err == nil && (r.Length != tt.wantLen || r.Addr != tt.addr || r.Source != SourceAddress) {
				t.Errorf("ReadRSDP() = %+v", r)
			}
		})
	}
}

func TestRootEntries(t *testing.T) {
	tests := []struct {
		name     string
		root     []byte
		v2       bool
		wantN    int
		wantWarn string
	}{
		{name: "RSDT trailing bytes", root: sdt(SIG_RSDT, 1, []byte{0, 0, 0, 0, 1, 2}), wantN: 1, wantWarn: "has 2 bytes after its 1 entries"},
		{name: "XSDT too many entries", root: sdt(SIG_XSDT, 1, make([]byte, 8*(MAX_ROOT_ENTRIES+5))), v2: true, wantN: MAX_ROOT_ENTRIES, wantWarn: "lists 1029 tables; only the first 1024 are read"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			root := m.Add(tt.root)

			if tt.v2 {
				m.putRSDP(0xe0000, rsdpV2(0, root))
			} else {
				m.putRSDP(0xe0000, rsdpV1(uint32(root)))
			}

			tb, err := Parse(m.mem(), RSDPHint{})
			if err != nil {
				t.Fatal(err)
			}

			if !hasWarning(tb.Warnings, tt.wantWarn) {
				t.Errorf("Warnings = %q, want one containing %q", tb.Warnings, tt.wantWarn)
			}

			if n := (len(tb.Warnings)); tt.v2 && n < tt.wantN {
				t.Errorf("%d warnings, want one per zero entry (%d)", n, tt.wantN)
			}
		})
	}
}

package acpi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseErrors breaks one thing at a time in the ACPI 6.5 machine and
// checks that Parse either fails with an error naming it or carries on
// with a warning naming it.
func TestParseErrors(t *testing.T) {
	goodS5 := s5AML(2, []byte{AML_BYTE_PREFIX, 5}, []byte{AML_BYTE_PREFIX, 5})

	// setLen overwrites a table's length without fixing the checksum.
	setLen := func(n uint32) func(b []byte) { return func(b []byte) { le.PutUint32(b[SDT_OFF_LENGTH:], n) } }

	tests := []struct {
		name     string
		aml      []byte
		patch    func(m *machine, a map[string]uint64)
		wantErr  string
		wantWarn string
		check    func(t *testing.T, tb *Tables)
	}{
		{
			name:    "no RSDP",
			patch:   func(m *machine, a map[string]uint64) { clear(m.low) },
			wantErr: "no valid RSDP found",
		},
		{
			name:     "XSDT bad checksum: RSDT used",
			patch:    func(m *machine, a map[string]uint64) { m.at(a["XSDT"])[SDT_OFF_CHECKSUM]++ },
			wantWarn: "XSDT table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if tb.Root.Signature != SIG_RSDT || tb.FADT == nil || tb.MADT != nil {
					t.Errorf("root %+v, FADT %v, MADT %v; want the RSDT's FADT only", tb.Root, tb.FADT != nil, tb.MADT != nil)
				}
			},
		},
		{
			name: "XSDT and RSDT bad",
			patch: func(m *machine, a map[string]uint64) {
				m.at(a["XSDT"])[SDT_OFF_CHECKSUM]++
				copy(m.at(a["RSDT"]), "RSDX")
			},
			wantErr: "RSDT table at 0x7ffe",
		},
		{
			name: "XSDT outside memory, no RSDT",
			patch: func(m *machine, a map[string]uint64) {
				m.putRSDP(ebdaBase, rsdpV2(0, 0x1_0000_0000))
			},
			wantErr: "XSDT table at 0x100000000: cannot read its header",
		},
		{
			name:     "MADT checksum",
			patch:    func(m *machine, a map[string]uint64) { m.at(a["APIC"])[50]++ },
			wantWarn: "APIC table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if tb.MADT != nil || tb.FADT == nil || tb.S5 == nil || !hasWarning(tb.Warnings, "checksum mismatch") || !hasWarning(tb.Warnings, "no usable MADT") {
					t.Errorf("MADT %v FADT %v S5 %v, warnings %q", tb.MADT != nil, tb.FADT != nil, tb.S5, tb.Warnings)
				}
			},
		},
		{
			name:     "MADT length absurd",
			patch:    func(m *machine, a map[string]uint64) { setLen(0x7fffffff)(m.at(a["APIC"])) },
			wantWarn: "APIC table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if tb.MADT != nil || !hasWarning(tb.Warnings, "length 2147483647, at most 4194304 is accepted") {
					t.Errorf("warnings %q", tb.Warnings)
				}
			},
		},
		{
			name:     "MADT length shorter than a header",
			patch:    func(m *machine, a map[string]uint64) { setLen(12)(m.at(a["APIC"])) },
			wantWarn: "APIC table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if !hasWarning(tb.Warnings, "length 12 is shorter than the 36-byte header") {
					t.Errorf("warnings %q", tb.Warnings)
				}
			},
		},
		{
			name: "MADT too short for its fixed part",
			patch: func(m *machine, a map[string]uint64) {
				b := m.at(a["APIC"])
				copy(b, sdt(SIG_MADT, 5, []byte{0, 0, 0xe0, 0xfe}))
			},
			wantWarn: "length 40 is shorter than its 44-byte fixed part",
		},
		{
			name: "table past the end of memory",
			patch: func(m *machine, a map[string]uint64) {
				last := m.Add(sdt("HPET", 1, make([]byte, 20)))
				setLen(100)(m.at(last))
				x := xsdtTable(a["FACP"], a["APIC"], last)
				copy(m.at(a["XSDT"]), x)
			},
			wantWarn: "HPET table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if !hasWarning(tb.Warnings, "cannot read its 100 bytes") || tb.MADT == nil {
					t.Errorf("warnings %q", tb.Warnings)
				}
			},
		},
		{
			name: "zero and repeated entries",
			patch: func(m *machine, a map[string]uint64) {
				copy(m.at(a["XSDT"]), xsdtTable(0, a["FACP"], a["APIC"], a["FACP"]))
				m.tables = append(m.tables, make([]byte, 64)...)
			},
			check: func(t *testing.T, tb *Tables) {
				if !hasWarning(tb.Warnings, "XSDT entry 0 is 0") || !hasWarning(tb.Warnings, "XSDT entry 3 repeats table address") || tb.FADT == nil {
					t.Errorf("warnings %q", tb.Warnings)
				}
			},
		},
		{
			name: "entry pointing outside memory",
			patch: func(m *machine, a map[string]uint64) {
				copy(m.at(a["XSDT"]), xsdtTable(a["FACP"], 0xffff_ffff_ffff_fff0, a["APIC"]))
				m.tables = append(m.tables, make([]byte, 64)...)
			},
			wantWarn: "ACPI table at 0xfffffffffffffff0: cannot read its header",
		},
		{
			name: "X_DSDT bad: DSDT field used",
			patch: func(m *machine, a map[string]uint64) {
				patchFADT(m, a, func(b []byte) {
					le.PutUint32(b[FADT_OFF_DSDT:], uint32(a["DSDT"]))
					le.PutUint64(b[FADT_OFF_X_DSDT:], 0x5000)
				})
			},
			wantWarn: "trying the FADT's other DSDT address",
			check: func(t *testing.T, tb *Tables) {
				if tb.S5 == nil {
					t.Errorf("no S5; warnings %q", tb.Warnings)
				}
			},
		},
		{
			name:     "DSDT checksum",
			patch:    func(m *machine, a map[string]uint64) { m.at(a["DSDT"])[40]++ },
			wantWarn: "DSDT table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if tb.S5 != nil || !hasWarning(tb.Warnings, "; no DSDT") {
					t.Errorf("S5 %+v, warnings %q", tb.S5, tb.Warnings)
				}
			},
		},
		{
			name: "DSDT is not a DSDT",
			patch: func(m *machine, a map[string]uint64) {
				patchFADT(m, a, func(b []byte) { le.PutUint64(b[FADT_OFF_X_DSDT:], a["SSDT"]) })
			},
			wantWarn: "DSDT table at 0x7ffe",
			check: func(t *testing.T, tb *Tables) {
				if !hasWarning(tb.Warnings, "signature is SSDT, want DSDT") {
					t.Errorf("warnings %q", tb.Warnings)
				}
			},
		},
		{
			name:     "no _S5 anywhere",
			aml:      []byte{0x10, 0x05, '_', 'S', 'B', '_'},
			wantWarn: "no usable \\_S5",
			check: func(t *testing.T, tb *Tables) {
				if tb.S5 != nil || !errorsIs(tb.Warnings, "no Name(\\_S5") {
					t.Errorf("S5 %+v, warnings %q", tb.S5, tb.Warnings)
				}
			},
		},
		{
			name: "_S5 in an SSDT",
			aml:  []byte{0x10, 0x05, '_', 'S', 'B', '_'},
			patch: func(m *machine, a map[string]uint64) {
				copy(m.at(a["SSDT"]), sdt(SIG_SSDT, 2, make([]byte, 2)))
				ssdt := m.Add(sdt(SIG_SSDT, 2, s5AML(2, []byte{AML_ONE_OP}, []byte{AML_WORD_PREFIX, 3, 0})))
				copy(m.at(a["XSDT"]), xsdtTable(a["FACP"], a["APIC"], ssdt))
			},
			check: func(t *testing.T, tb *Tables) {
				if tb.S5 == nil || *tb.S5 != (SleepType{1, 3}) {
					t.Errorf("S5 %+v, warnings %q", tb.S5, tb.Warnings)
				}
			},
		},
		{
			name:     "bad _S5 in the DSDT",
			aml:      s5AML(2, []byte{AML_BYTE_PREFIX, 9}, []byte{0}),
			wantWarn: "SLP_TYPa is 0x9, which does not fit",
		},
		{
			name:     "no FADT",
			patch:    func(m *machine, a map[string]uint64) { copy(m.at(a["FACP"]), "FACX") },
			wantWarn: "no usable FADT",
			check: func(t *testing.T, tb *Tables) {
				if tb.FADT != nil || tb.S5 != nil || tb.MADT == nil {
					t.Errorf("FADT %v S5 %v MADT %v", tb.FADT, tb.S5, tb.MADT != nil)
				}
			},
		},
		{
			name: "two FADTs",
			patch: func(m *machine, a map[string]uint64) {
				copy(m.at(a["XSDT"]), xsdtTable(a["FACP"], a["APIC"], m.Add(fadtTable(116, 1, nil))))
			},
			wantWarn: "second FADT",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aml := tt.aml
			if aml == nil {
				aml = goodS5
			}

			m, a := acpi65(aml)
			if tt.patch != nil {
				tt.patch(m, a)
			}

			tb, err := Parse(m.mem(), RSDPHint{})
			wantErr(t, err, tt.wantErr)

			if err != nil {
				return
			}

			if !hasWarning(tb.Warnings, tt.wantWarn) {
				t.Errorf("Warnings = %q, want one containing %q", tb.Warnings, tt.wantWarn)
			}

			if tt.check != nil {
				tt.check(t, tb)
			}
		})
	}
}

// patchFADT changes the machine's FADT and fixes its checksum.
func patchFADT(m *machine, a map[string]uint64, f func(b []byte)) {
	b := m.at(a["FACP"])[:276]
	f(b)
	fix(b, SDT_OFF_CHECKSUM)
}

func errorsIs(ws []string, s string) bool {
	return hasWarning(ws, s)
}

func TestReadTable(t *testing.T) {
	m := newMachine()
	good := m.Add(sdt("HPET", 1, make([]byte, 20)))
	mem := m.mem()

	b, h, err := ReadTable(mem, good, "HPET")
	if err != nil || len(b) != 56 || h.Signature != "HPET" || h.Addr != good || h.Length != 56 || h.OEMTableID != "KEELTEST" {
		t.Errorf("ReadTable() = %d bytes, %+v, %v", len(b), h, err)
	}

	if got := h.String(); !strings.HasPrefix(got, `HPET at 0x7ffe0000, 56 bytes, revision 1, OEM "KEEL  " "KEELTEST"`) {
		t.Errorf("String() = %q", got)
	}

	_, _, err = ReadTable(mem, good, "MCFG")
	wantErr(t, err, "MCFG table at 0x7ffe0000: signature is HPET, want MCFG")

	m.at(good)[0] = 0x01
	_, h, err = ReadTable(m.mem(), good, "")
	wantErr(t, err, `"\x01PET" table at 0x7ffe0000: checksum mismatch`)

	if got := h.String(); !strings.HasPrefix(got, `"\x01PET" at`) {
		t.Errorf("String() of a garbage signature = %q", got)
	}
}

func TestParseMADT(t *testing.T) {
	tests := []struct {
		name     string
		table    []byte
		check    func(t *testing.T, m *MADT)
		wantWarn string
		wantErr  string
	}{
		{
			name:  "non-contiguous IDs, disabled CPU, revision 3 ignores online capable",
			table: madtTable(3, 0xfee00000, 0, lapic(0, 0, 1), lapic(1, 4, 1), lapic(2, 8, 0), lapic(3, 12, LAPIC_ONLINE_CAPABLE), lapic(4, 16, 1)),
			check: func(t *testing.T, m *MADT) {
				var ids []uint32
				for _, c := range m.CPUs {
					if c.Usable() {
						ids = append(ids, c.APICID)
					}
				}
				if want := []uint32{0, 4, 16}; !reflect.DeepEqual(ids, want) || m.PCATCompat {
					t.Errorf("usable APIC IDs = %v, want %v", ids, want)
				}
			},
		},
		{
			name:  "revision 5 online capable",
			table: madtTable(5, 0xfee00000, 0, lapic(0, 0, 1), lapic(1, 1, LAPIC_ONLINE_CAPABLE), lapic(2, 2, LAPIC_ENABLED|LAPIC_ONLINE_CAPABLE)),
			check: func(t *testing.T, m *MADT) {
				want := []CPU{{0, 0, false, 1, true, false}, {1, 1, false, 2, false, true}, {2, 2, false, 3, true, false}}
				if !reflect.DeepEqual(m.CPUs, want) {
					t.Errorf("CPUs = %+v, want %+v", m.CPUs, want)
				}
			},
		},
		{
			name:     "duplicate APIC ID across LAPIC and x2APIC",
			table:    madtTable(4, 0xfee00000, 1, lapic(0, 0, 1), lapic(1, 1, 1), x2apic(1, 1, 7)),
			wantWarn: "repeats APIC ID 0x1 of CPU UID 1",
			check: func(t *testing.T, m *MADT) {
				if len(m.CPUs) != 2 {
					t.Errorf("CPUs = %+v", m.CPUs)
				}
			},
		},
		{
			name:     "broadcast IDs skipped",
			table:    madtTable(4, 0xfee00000, 1, lapic(0, 0xff, 1), x2apic(0xffffffff, 1, 9), lapic(1, 1, 1)),
			wantWarn: "broadcast",
			check: func(t *testing.T, m *MADT) {
				if len(m.CPUs) != 1 || m.CPUs[0].APICID != 1 {
					t.Errorf("CPUs = %+v", m.CPUs)
				}
			},
		},
		{
			name:  "local APIC address override",
			table: madtTable(4, 0xfee00000, 1, lapicOverride(0x1_fee0_0000), lapic(0, 0, 1)),
			check: func(t *testing.T, m *MADT) {
				if m.LocalAPICAddr != 0x1_fee0_0000 {
					t.Errorf("LocalAPICAddr = %#x", m.LocalAPICAddr)
				}
			},
		},
		{
			name:     "second override ignored",
			table:    madtTable(4, 0xfee00000, 1, lapicOverride(0x1000), lapicOverride(0x2000)),
			wantWarn: "second local APIC address override",
			check: func(t *testing.T, m *MADT) {
				if m.LocalAPICAddr != 0x1000 {
					t.Errorf("LocalAPICAddr = %#x", m.LocalAPICAddr)
				}
			},
		},
		{
			name:  "unknown and longer entries",
			table: madtTable(4, 0xfee00000, 1, []byte{0x0B, 4, 0, 0}, func() []byte { e := append(lapic(0, 3, 1), 0xaa, 0xbb); e[1] = 10; return e }(), lapic(1, 5, 1)),
			check: func(t *testing.T, m *MADT) {
				if len(m.CPUs) != 2 || m.CPUs[0].APICID != 3 || m.CPUs[1].APICID != 5 {
					t.Errorf("CPUs = %+v", m.CPUs)
				}
			},
		},
		{
			name:     "short entry skipped",
			table:    madtTable(4, 0xfee00000, 1, []byte{MADT_IO_APIC, 6, 1, 0, 0, 0}, lapic(0, 0, 1)),
			wantWarn: "entry type 1 at offset 44 has length 6, want 12; ignored",
			check: func(t *testing.T, m *MADT) {
				if len(m.IOAPICs) != 0 || len(m.CPUs) != 1 {
					t.Errorf("IOAPICs %+v CPUs %+v", m.IOAPICs, m.CPUs)
				}
			},
		},
		{
			name:     "zero-length entry ends the walk",
			table:    madtTable(4, 0xfee00000, 1, lapic(0, 0, 1), []byte{0, 0}, lapic(1, 1, 1)),
			wantWarn: "entry type 0 at offset 52 has length 0",
			check: func(t *testing.T, m *MADT) {
				if len(m.CPUs) != 1 {
					t.Errorf("CPUs = %+v", m.CPUs)
				}
			},
		},
		{
			name:     "entry past the end",
			table:    madtTable(4, 0xfee00000, 1, lapic(0, 0, 1), []byte{0, 8, 1, 1}),
			wantWarn: "entry type 0 at offset 52 of length 8 runs past the table's end at 56",
		},
		{
			name:     "stray byte",
			table:    madtTable(4, 0xfee00000, 1, lapic(0, 0, 1), []byte{7}),
			wantWarn: "1 stray byte at offset 52",
		},
		{name: "wrong signature", table: sdt("APIX", 1, make([]byte, 8)), wantErr: "signature is APIX, want APIC"},
		{name: "too short", table: sdt(SIG_MADT, 1, make([]byte, 4)), wantErr: "length 40 is shorter than its 44-byte fixed part"},
		{name: "bad checksum", table: func() []byte { b := madtTable(4, 0, 0); b[40] = 1; return b }(), wantErr: "checksum mismatch: the 44 bytes sum to 0x01"},
		{name: "length past the slice", table: madtTable(4, 0, 0, lapic(0, 0, 1))[:48], wantErr: "length 52, but only 48 bytes are there"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, warnings, err := ParseMADT(tt.table)
			wantErr(t, err, tt.wantErr)

			if err != nil {
				return
			}

			if !hasWarning(warnings, tt.wantWarn) {
				t.Errorf("warnings = %q, want one containing %q", warnings, tt.wantWarn)
			}

			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestParseFADT(t *testing.T) {
	tests := []struct {
		name    string
		table   []byte
		check   func(t *testing.T, f *FADT)
		wantErr string
	}{
		{
			name: "ACPI 1.0 (116 bytes)",
			table: fadtTable(116, 1, func(b []byte) {
				le.PutUint32(b[FADT_OFF_PM_TMR_BLK:], 0xb008)
				b[FADT_OFF_PM_TMR_LEN] = 4
				le.PutUint32(b[FADT_OFF_FLAGS:], RESET_REG_SUP)
			}),
			check: func(t *testing.T, f *FADT) {
				if g, ok := f.PMTimer(); !ok || g.Address != 0xb008 {
					t.Errorf("PMTimer() = %v, %v", g, ok)
				}
				// The flag without the register the table cannot hold.
				if f.ResetSupported() {
					t.Errorf("ResetSupported() = true for a 116-byte FADT")
				}
			},
		},
		{
			name:  "shorter than ACPI 1.0: missing fields are zero",
			table: fadtTable(80, 1, func(b []byte) { le.PutUint32(b[FADT_OFF_DSDT:], 0x1234); le.PutUint32(b[FADT_OFF_PM_TMR_BLK:], 0x608) }),
			check: func(t *testing.T, f *FADT) {
				if f.DSDTAddr() != 0x1234 || f.PMTmrBlk != 0x608 || f.PMTmrLen != 0 || f.Flags != 0 {
					t.Errorf("FADT = %+v", f)
				}
				if _, ok := f.PMTimer(); ok {
					t.Errorf("PMTimer() with PM_TMR_LEN 0 = ok")
				}
			},
		},
		{
			name:  "only the DSDT",
			table: fadtTable(44, 1, func(b []byte) { le.PutUint32(b[FADT_OFF_DSDT:], 0x1234) }),
			check: func(t *testing.T, f *FADT) {
				if f.DSDTAddr() != 0x1234 {
					t.Errorf("DSDTAddr() = %#x", f.DSDTAddr())
				}
			},
		},
		{
			name: "hardware reduced",
			table: fadtTable(276, 6, func(b []byte) {
				le.PutUint32(b[FADT_OFF_FLAGS:], HW_REDUCED_ACPI)
				putGAS(b, FADT_OFF_SLEEP_CONTROL_REG, GAS{SpaceID: ADDRESS_SPACE_SYSTEM_MEMORY, BitWidth: 8, Address: 0xfed80000})
				le.PutUint64(b[FADT_OFF_HYPERVISOR_VENDOR:], 0x4b45454c)
			}),
			check: func(t *testing.T, f *FADT) {
				if _, ok := f.PMTimer(); ok || !f.HardwareReduced() || f.SleepControlReg.Address != 0xfed80000 || f.HypervisorVendorIdentity != 0x4b45454c {
					t.Errorf("FADT = %+v", f)
				}
				if s := f.SleepControlReg.String(); s != "mem 0xfed80000/8" {
					t.Errorf("String() = %q", s)
				}
			},
		},
		{
			name: "GAS cut by the length",
			table: fadtTable(FADT_OFF_X_PM_TMR_BLK+6, 3, func(b []byte) {
				putGAS(b, FADT_OFF_X_PM1A_CNT_BLK, GAS{SpaceID: 1, BitWidth: 16, Address: 0x404})
			}),
			check: func(t *testing.T, f *FADT) {
				if f.XPM1aCntBlk.Address != 0x404 || f.XPMTmrBlk != (GAS{}) {
					t.Errorf("X_PM1a_CNT %v, X_PM_TMR %v", f.XPM1aCntBlk, f.XPMTmrBlk)
				}
			},
		},
		{name: "too short for the DSDT", table: fadtTable(40, 1, nil), wantErr: "length 40 is too short to hold the DSDT address"},
		{name: "wrong signature", table: madtTable(1, 0, 0), wantErr: "signature is APIC, want FACP"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFADT(tt.table)
			wantErr(t, err, tt.wantErr)

			if err == nil && tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func TestFindS5(t *testing.T) {
	noise := []byte("\x10\x4e\x04_SB_\x08_S4_\x12\x06\x04\x0a\x06\x00\x00\x00")

	// pkg2 is Name(_S5, Package(){...}) with a 2-byte PkgLength.
	pkg2 := func(a, b byte) []byte {
		body := []byte{0x02, AML_BYTE_PREFIX, a, AML_BYTE_PREFIX, b}
		body = append(body, make([]byte, 100)...) // padding inside the package
		n := 2 + len(body)

		return append([]byte{AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0x40 | byte(n&0xf), byte(n >> 4)}, body...)
	}

	tests := []struct {
		name    string
		aml     []byte
		want    SleepType
		wantErr string
	}{
		{name: "QEMU: ZeroOp", aml: qemuS5},
		{name: "BytePrefix after other objects", aml: append(noise, s5AML(4, []byte{AML_BYTE_PREFIX, 5}, []byte{AML_BYTE_PREFIX, 5}, []byte{0}, []byte{0})...), want: SleepType{5, 5}},
		{name: "OneOp and WordPrefix", aml: s5AML(2, []byte{AML_ONE_OP}, []byte{AML_WORD_PREFIX, 7, 0}), want: SleepType{1, 7}},
		{name: "DWord and QWord", aml: s5AML(2, []byte{AML_DWORD_PREFIX, 6, 0, 0, 0}, []byte{AML_QWORD_PREFIX, 2, 0, 0, 0, 0, 0, 0, 0}), want: SleepType{6, 2}},
		{name: "root prefix", aml: append([]byte{AML_NAME_OP, '\\'}, s5AML(2, []byte{AML_BYTE_PREFIX, 7}, []byte{0})[1:]...), want: SleepType{7, 0}},
		{name: "two-byte PkgLength", aml: pkg2(5, 3), want: SleepType{5, 3}},
		{name: "one element: a in bits 7:0, b in 15:8", aml: s5AML(1, []byte{AML_WORD_PREFIX, 0x05, 0x07}), want: SleepType{5, 7}},
		{name: "false candidate skipped", aml: append([]byte("\x0d_S5_ string\x00"), s5AML(2, []byte{AML_BYTE_PREFIX, 3}, []byte{0})...), want: SleepType{3, 0}},
		{name: "bad candidate then good one", aml: append(s5AML(2, []byte{0x70}, []byte{0}), s5AML(2, []byte{AML_BYTE_PREFIX, 4}, []byte{0})...), want: SleepType{4, 0}},
		{name: "none", aml: noise, wantErr: "no Name(\\_S5, Package(){...}) object"},
		{name: "empty AML", aml: nil, wantErr: "no Name(\\_S5"},
		{name: "method, not a name", aml: []byte("\x14\x09_S5_\x00\xa4\x00\x00"), wantErr: "no Name(\\_S5"},
		{name: "method whose PkgLength looks like NameOp", aml: []byte("\x14\x08_S5_\x00\xa4\x00"), wantErr: "the object is opcode 0x00, not a Package"},
		{name: "name of a non-package", aml: []byte("\x08_S5_\x0a\x05"), wantErr: "\\_S5 at AML offset 0x1: the object is opcode 0x0a, not a Package (0x12)"},
		{name: "ends after the name", aml: []byte("\x08_S5_"), wantErr: "the AML ends after the name"},
		{name: "ends in the PkgLength", aml: []byte("\x08_S5_\x12\x80\x01"), wantErr: "the AML ends inside a 3-byte PkgLength"},
		{name: "reserved PkgLength bits", aml: []byte("\x08_S5_\x12\x50\x01\x02\x0a\x05\x0a\x05"), wantErr: "reserved bits 5:4 set"},
		{name: "package past the end", aml: []byte("\x08_S5_\x12\x20\x02\x00\x00"), wantErr: "package length 32 runs past the end"},
		{name: "PkgLength 0 (found by fuzzing)", aml: []byte("\x08_S5_\x12\x00"), wantErr: "package length 0 is shorter than its own 1-byte encoding"},
		{name: "no NumElements", aml: []byte("\x08_S5_\x12\x01"), wantErr: "no NumElements byte"},
		{name: "empty package", aml: s5AML(0), wantErr: "the package is empty"},
		{name: "element missing", aml: s5AML(2, []byte{AML_BYTE_PREFIX, 5}), wantErr: "element 1: the package ends before the element"},
		{name: "element cut", aml: s5AML(2, []byte{AML_BYTE_PREFIX, 5}, []byte{AML_WORD_PREFIX, 5}), wantErr: "element 1: the package ends inside a 2-byte integer"},
		{name: "element not a constant", aml: s5AML(2, []byte{'S', 'L', 'P', 'A'}, []byte{0}), wantErr: "element 0: opcode 0x53 is not an integer constant"},
		{name: "value too big", aml: s5AML(2, []byte{0}, []byte{AML_BYTE_PREFIX, 8}), wantErr: "SLP_TYPb is 0x8, which does not fit"},
		{name: "OnesOp too big", aml: s5AML(2, []byte{AML_ONES_OP}, []byte{0}), wantErr: "SLP_TYPa is 0xffffffffffffffff"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindS5(tt.aml)
			wantErr(t, err, tt.wantErr)

			if err == nil && got != tt.want {
				t.Errorf("FindS5() = %+v, want %+v", got, tt.want)
			}

			if tt.wantErr == "no Name(\\_S5, Package(){...}) object" && !errors.Is(err, ErrNoS5) {
				t.Errorf("error %v is not ErrNoS5", err)
			}
		})
	}
}

func TestSleepControl(t *testing.T) {
	tests := []struct {
		name    string
		current uint16
		typ     uint8
		want    uint16
	}{
		{"QEMU S5 from zero", 0, 0, 0x2000},
		{"keeps SCI_EN", SCI_EN, 5, 0x3401},
		{"replaces an old SLP_TYP", 0x1c01, 0, 0x2001},
		{"masks a too-wide type", 0, 0xff, 0x3c00},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SleepControl(tt.current, tt.typ); got != tt.want {
				t.Errorf("SleepControl(%#x, %d) = %#x, want %#x", tt.current, tt.typ, got, tt.want)
			}
		})
	}
}

package acpi

import (
	"testing"
)

// fuzzBase is where FuzzParseTables places its input in the fake physical
// memory (the same bytes also appear in the BIOS area, so the scan runs on
// them too); seeds build their pointers against it, with the RSDP first.
const fuzzBase = 0x10000

// compactTables lays a full set of tables out from fuzzBase: RSDP, DSDT,
// FADT, MADT, SSDT, XSDT and RSDT.
func compactTables(v2 bool, fadt []byte, madt []byte, dsdtAML []byte) []byte {
	m := &machine{tablesAt: fuzzBase}
	rsdp := m.Add(make([]byte, RSDP_V2_LENGTH))
	dsdt := m.Add(sdt(SIG_DSDT, 2, dsdtAML))
	f := m.Add(withDSDT(fadt, uint32(dsdt), uint64(dsdt)))
	a := m.Add(madt)
	s := m.Add(sdt(SIG_SSDT, 2, s5AML(2, []byte{1}, []byte{1})))
	x := m.Add(xsdtTable(f, a, s))
	r := m.Add(rsdtTable(f, a, s))

	if v2 {
		copy(m.at(rsdp), rsdpV2(uint32(r), x))
	} else {
		copy(m.at(rsdp), rsdpV1(uint32(r)))
	}

	return m.tables
}

func fuzzMADT() []byte {
	return madtTable(5, 0xfee00000, PCAT_COMPAT,
		lapic(0, 0, 1), lapic(1, 2, 0), lapic(2, 4, LAPIC_ONLINE_CAPABLE), x2apic(0x100, 1, 3),
		ioapic(0, 0xfec00000, 0), iso(0, 2, 0), iso(9, 9, 0xd), nmiSource(0, 23),
		lapicNMI(0xff, 0, 1), x2apicNMI(0, 0xffffffff, 1), lapicOverride(0xfee00000))
}

func FuzzParseTables(f *testing.F) {
	f.Add(compactTables(false, qemuQ35FADT, qemuQ35MADT, qemuS5), false)
	f.Add(compactTables(true, qemuQ35FADT, fuzzMADT(), s5AML(2, []byte{AML_BYTE_PREFIX, 5}, []byte{AML_WORD_PREFIX, 5, 0})), false)
	f.Add(compactTables(true, qemuPCFADT, fuzzMADT(), []byte{0x10, 0}), true)
	f.Add([]byte("RSD PTR "), false)

	f.Fuzz(func(t *testing.T, data []byte, asCopy bool) {
		mem := (&fakeMem{}).Add(fuzzBase, data).Add(BIOS_AREA_START, data)

		hint := RSDPHint{Addr: fuzzBase}
		if asCopy {
			hint = RSDPHint{Copy: data}
		}

		tb, err := Parse(mem, hint)
		if err != nil {
			return
		}

		if tb.MADT != nil {
			checkMADT(t, tb.MADT)
		}

		if tb.S5 != nil && (tb.S5.SlpTypA > 7 || tb.S5.SlpTypB > 7) {
			t.Fatalf("S5 = %+v does not fit SLP_TYPx", tb.S5)
		}

		if tb.FADT != nil {
			tb.FADT.PMTimer()
			tb.FADT.PM1aControl()
			tb.FADT.PM1bControl()
		}
	})
}

// checkMADT checks the invariants of a decoded MADT.
func checkMADT(t *testing.T, m *MADT) {
	t.Helper()

	ids := map[uint32]bool{}

	for _, c := range m.CPUs {
		if ids[c.APICID] {
			t.Fatalf("APIC ID %#x twice in %+v", c.APICID, m.CPUs)
		}

		ids[c.APICID] = true

		if (!c.X2APIC && c.APICID == 0xff) || c.APICID == 0xffffffff {
			t.Fatalf("broadcast APIC ID accepted: %+v", c)
		}

		if c.Enabled && c.OnlineCapable {
			t.Fatalf("CPU both enabled and online capable: %+v", c)
		}
	}
}

func FuzzMADT(f *testing.F) {
	f.Add(qemuQ35MADT)
	f.Add(fuzzMADT())
	f.Add(madtTable(3, 0, 0, []byte{0, 0}))

	f.Fuzz(func(t *testing.T, data []byte) {
		// The decoder proper, without the checksum that random input
		// would almost never pass.
		if len(data) >= SDT_HEADER_LENGTH {
			m, err := decodeMADT(Header{Signature: SIG_MADT, Revision: data[SDT_OFF_REVISION]}, data, func(string, ...any) {})
			if err == nil {
				m.applyOnlineCapable(true)
				checkMADT(t, m)
				m.ISAIRQ(0)
				m.UsableCPUs()
			}
		}

		if m, _, err := ParseMADT(data); err == nil {
			checkMADT(t, m)
		}
	})
}

func FuzzFADT(f *testing.F) {
	f.Add(qemuQ35FADT)
	f.Add(qemuPCFADT)
	f.Add(fadtTable(276, 6, func(b []byte) { le.PutUint32(b[FADT_OFF_FLAGS:], HW_REDUCED_ACPI) }))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= SDT_HEADER_LENGTH {
			if fd, err := decodeFADT(Header{Signature: SIG_FADT}, data); err == nil {
				fd.PMTimer()
				fd.PM1aControl()
				fd.PM1bControl()
				fd.PM1aEvent()
				fd.ResetSupported()
				fd.DSDTAddr()
				fd.Version()
				_ = fd.ResetReg.String()
			}
		}

		ParseFADT(data)
	})
}

func FuzzAML_S5(f *testing.F) {
	f.Add(qemuS5)
	f.Add(s5AML(1, []byte{AML_WORD_PREFIX, 5, 7}))
	f.Add(s5AML(2, []byte{AML_DWORD_PREFIX, 6, 0, 0, 0}, []byte{AML_QWORD_PREFIX, 2, 0, 0, 0, 0, 0, 0, 0}))
	f.Add([]byte("\x08\\_S5_\x12\x41\x01\x02\x0a\x05\x0a\x05"))
	f.Add([]byte("\x14\x08_S5_\x00\xa4\x00"))

	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := FindS5(data)
		if err == nil && (s.SlpTypA > 7 || s.SlpTypB > 7) {
			t.Fatalf("FindS5(%x) = %+v does not fit SLP_TYPx", data, s)
		}
	})
}

func FuzzRSDP(f *testing.F) {
	f.Add(rsdpV1(0x7ffe1234))
	f.Add(rsdpV2(1, 2))

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRSDP(data)
		if err == nil && r.Revision >= 2 && (r.Length < RSDP_V2_LENGTH || int(r.Length) > len(data)) {
			t.Fatalf("ParseRSDP accepted length %d of a %d-byte copy", r.Length, len(data))
		}

		ReadRSDP((&fakeMem{}).Add(0x1000, data), 0x1000)
	})
}

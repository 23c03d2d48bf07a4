package acpi

import (
	"reflect"
	"testing"
)

func TestQEMUTablesChecksum(t *testing.T) {
	// The recorded QEMU tables must pass as they are: this checks both
	// the transcription and the header checks.
	for _, tt := range []struct {
		name string
		b    []byte
		sig  string
		len  uint32
	}{
		{"q35 MADT", qemuQ35MADT, SIG_MADT, 120},
		{"q35 FADT", qemuQ35FADT, SIG_FADT, 244},
		{"pc FADT", qemuPCFADT, SIG_FADT, 116},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := parseHeader(tt.b, tt.sig, 0)
			if err != nil {
				t.Fatal(err)
			}

			if h.Length != tt.len || h.OEMID != "BOCHS " || h.CreatorID != "BXPC" {
				t.Errorf("header = %+v", h)
			}
		})
	}
}

// TestParseQEMUQ35 checks Parse against what QEMU's q35 machine provides:
// one CPU at APIC ID 0, I/O APIC 0 at 0xfec00000 with GSI base 0, IRQ0 on
// GSI 2, PCI IRQs 5, 9, 10, 11 level/active high, PM timer at port 0x608,
// PM1a_CNT at 0x604, reset by writing 0x0f to port 0xcf9, \_S5 type 0.
func TestParseQEMUQ35(t *testing.T) {
	m, dsdt := q35()

	tb, err := Parse(m.mem(), RSDPHint{})
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}

	if len(tb.Warnings) != 0 {
		t.Errorf("Warnings = %q", tb.Warnings)
	}

	if tb.RSDP.Addr != qemuRSDP || tb.RSDP.Source != SourceBIOSArea || tb.RSDP.Revision != 0 || tb.Root.Signature != SIG_RSDT {
		t.Errorf("RSDP = %+v, root %+v", tb.RSDP, tb.Root)
	}

	var sigs []string
	for _, h := range tb.Headers {
		sigs = append(sigs, h.Signature)
	}

	if want := []string{SIG_FADT, SIG_MADT, SIG_DSDT}; !reflect.DeepEqual(sigs, want) {
		t.Errorf("Headers = %q, want %q", sigs, want)
	}

	if h, ok := tb.Table(SIG_DSDT); !ok || h.Addr != dsdt {
		t.Errorf("Table(DSDT) = %+v, %v; want address %#x", h, ok, dsdt)
	}

	madt := tb.MADT
	if madt == nil {
		t.Fatal("no MADT")
	}

	wantCPUs := []CPU{{UID: 0, APICID: 0, Flags: 1, Enabled: true}}
	if !reflect.DeepEqual(madt.CPUs, wantCPUs) {
		t.Errorf("CPUs = %+v, want %+v", madt.CPUs, wantCPUs)
	}

	if madt.LocalAPICAddr != 0xfee00000 || !madt.PCATCompat {
		t.Errorf("LocalAPICAddr = %#x, PCATCompat = %v", madt.LocalAPICAddr, madt.PCATCompat)
	}

	if want := []IOAPIC{{ID: 0, Addr: 0xfec00000, GSIBase: 0}}; !reflect.DeepEqual(madt.IOAPICs, want) {
		t.Errorf("IOAPICs = %+v, want %+v", madt.IOAPICs, want)
	}

	wantISO := []InterruptOverride{
		{Source: 0, GSI: 2, Flags: 0},
		{Source: 5, GSI: 5, Flags: 0xd},
		{Source: 9, GSI: 9, Flags: 0xd},
		{Source: 10, GSI: 10, Flags: 0xd},
		{Source: 11, GSI: 11, Flags: 0xd},
	}
	if !reflect.DeepEqual(madt.Overrides, wantISO) {
		t.Errorf("Overrides = %+v, want %+v", madt.Overrides, wantISO)
	}

	if o := madt.Overrides[1]; o.Polarity() != MPS_INTI_POLARITY_HIGH || o.Trigger() != MPS_INTI_TRIGGER_LEVEL {
		t.Errorf("IRQ5 polarity %#x trigger %#x, want active high, level", o.Polarity(), o.Trigger())
	}

	if want := []LocalNMI{{UID: ALL_PROCESSORS_UID32, Flags: 0, LINT: 1}}; !reflect.DeepEqual(madt.LocalNMIs, want) {
		t.Errorf("LocalNMIs = %+v, want %+v", madt.LocalNMIs, want)
	}

	f := tb.FADT
	if f == nil {
		t.Fatal("no FADT")
	}

	if major, minor := f.Version(); major != 3 || minor != 0 {
		t.Errorf("Version() = %d.%d, want 3.0", major, minor)
	}

	if f.SCIInt != 9 || f.SMICmd != 0xb2 || f.ACPIEnable != 2 || f.ACPIDisable != 3 || f.Century != 0x32 {
		t.Errorf("SCI %d SMI_CMD %#x ACPI_ENABLE %#x ACPI_DISABLE %#x CENTURY %#x", f.SCIInt, f.SMICmd, f.ACPIEnable, f.ACPIDisable, f.Century)
	}

	if g, ok := f.PMTimer(); !ok || g != (GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 32, Address: 0x608}) || f.PMTimer32Bit() {
		t.Errorf("PMTimer() = %v, %v; 32-bit %v; want io 0x608/32, 24-bit counter", g, ok, f.PMTimer32Bit())
	}

	if g, ok := f.PM1aControl(); !ok || g != (GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 16, Address: 0x604}) {
		t.Errorf("PM1aControl() = %v, %v; want io 0x604/16", g, ok)
	}

	if g, ok := f.PM1bControl(); ok {
		t.Errorf("PM1bControl() = %v, want none", g)
	}

	if g, ok := f.PM1aEvent(); !ok || g.Address != 0x600 || g.BitWidth != 32 {
		t.Errorf("PM1aEvent() = %v, %v; want io 0x600/32", g, ok)
	}

	if !f.ResetSupported() || f.ResetReg != (GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 8, Address: 0xcf9}) || f.ResetValue != 0x0f {
		t.Errorf("reset: supported %v, register %v, value %#x; want io 0xcf9/8, 0x0f", f.ResetSupported(), f.ResetReg, f.ResetValue)
	}

	if f.DSDTAddr() != dsdt || f.HardwareReduced() {
		t.Errorf("DSDTAddr() = %#x, want %#x; HardwareReduced %v", f.DSDTAddr(), dsdt, f.HardwareReduced())
	}

	if tb.S5 == nil || *tb.S5 != (SleepType{}) {
		t.Fatalf("S5 = %+v, want types 0, 0", tb.S5)
	}

	if v := SleepControl(0x0001, tb.S5.SlpTypA); v != 0x2001 {
		t.Errorf("PM1a_CNT value for S5 = %#x, want 0x2001 (SCI_EN kept, SLP_EN set)", v)
	}
}

// TestParseQEMUPC checks the pc (i440FX/PIIX4) machine's short revision 1
// FADT: no RESET_REG, no X_ fields.
func TestParseQEMUPC(t *testing.T) {
	m := newMachine()
	dsdt := m.Add(sdt(SIG_DSDT, 1, qemuS5))
	fadt := m.Add(withDSDT(qemuPCFADT, uint32(dsdt), 0))
	madt := m.Add(qemuQ35MADT)
	rsdt := m.Add(rsdtTable(fadt, madt))
	m.putRSDP(qemuRSDP, rsdpV1(uint32(rsdt)))

	tb, err := Parse(m.mem(), RSDPHint{})
	if err != nil {
		t.Fatal(err)
	}

	f := tb.FADT

	if g, ok := f.PMTimer(); !ok || g.Address != 0x608 || !g.IsIO() {
		t.Errorf("PMTimer() = %v, %v; want io 0x608", g, ok)
	}

	if g, ok := f.PM1aControl(); !ok || g.Address != 0x604 {
		t.Errorf("PM1aControl() = %v, %v; want io 0x604", g, ok)
	}

	if f.ACPIEnable != 0xf1 || f.ACPIDisable != 0xf0 || f.GPE0Blk != 0xafe0 {
		t.Errorf("ACPI_ENABLE %#x ACPI_DISABLE %#x GPE0_BLK %#x", f.ACPIEnable, f.ACPIDisable, f.GPE0Blk)
	}

	if f.ResetSupported() || f.XDSDT != 0 || f.XPMTmrBlk != (GAS{}) {
		t.Errorf("a 116-byte FADT has no reset register or X_ fields: %+v", f)
	}

	if tb.S5 == nil || *tb.S5 != (SleepType{}) {
		t.Errorf("S5 = %+v", tb.S5)
	}

	// Without ACPI 6.3 tables, Online Capable means nothing.
	if madt := tb.MADT; madt == nil || madt.UsableCPUs() != 1 {
		t.Errorf("MADT = %+v", madt)
	}
}

// acpi65 builds an ACPI 6.5-style machine: RSDP v2 in the EBDA, XSDT (and
// an RSDT), a full-length FADT with X_ blocks, a MADT with x2APIC entries
// and non-contiguous APIC IDs, an SSDT, and a DSDT.
func acpi65(dsdtAML []byte) (*machine, map[string]uint64) {
	m := newMachine()
	a := map[string]uint64{}

	a["DSDT"] = m.Add(sdt(SIG_DSDT, 2, dsdtAML))
	a["FACP"] = m.Add(fadtTable(276, 6, func(b []byte) {
		le.PutUint32(b[FADT_OFF_DSDT:], 0xdead0000) // superseded by X_DSDT
		le.PutUint64(b[FADT_OFF_X_DSDT:], a["DSDT"])
		b[FADT_OFF_MINOR_VERSION] = 0x15 // errata 1, minor 5
		le.PutUint16(b[FADT_OFF_SCI_INT:], 9)
		le.PutUint32(b[FADT_OFF_PM1A_CNT_BLK:], 0x1804)
		le.PutUint32(b[FADT_OFF_PM_TMR_BLK:], 0x1808)
		b[FADT_OFF_PM_TMR_LEN] = 4
		b[FADT_OFF_PM1_CNT_LEN] = 2
		le.PutUint32(b[FADT_OFF_FLAGS:], TMR_VAL_EXT|RESET_REG_SUP)
		putGAS(b, FADT_OFF_RESET_REG, GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 8, AccessSize: ACCESS_SIZE_BYTE, Address: 0xcf9})
		b[FADT_OFF_RESET_VALUE] = 0x06
		putGAS(b, FADT_OFF_X_PM1A_CNT_BLK, GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 16, AccessSize: ACCESS_SIZE_WORD, Address: 0x1804})
		putGAS(b, FADT_OFF_X_PM_TMR_BLK, GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 32, AccessSize: ACCESS_SIZE_DWORD, Address: 0x1808})
	}))
	a["APIC"] = m.Add(madtTable(5, 0xfee00000, PCAT_COMPAT,
		lapic(0, 0, LAPIC_ENABLED),
		lapic(1, 2, LAPIC_ENABLED),
		lapic(2, 4, 0), // disabled, not online capable: unusable
		lapic(3, 6, LAPIC_ONLINE_CAPABLE),
		x2apic(0x100, LAPIC_ENABLED, 4),
		ioapic(8, 0xfec00000, 0),
		ioapic(9, 0xfec01000, 24),
		iso(0, 2, 0),
		iso(9, 9, MPS_INTI_POLARITY_LOW|MPS_INTI_TRIGGER_LEVEL),
		nmiSource(MPS_INTI_TRIGGER_EDGE, 23),
		lapicNMI(0xff, 0x5, 1),
		x2apicNMI(0, 4, 1),
	))
	a["SSDT"] = m.Add(sdt(SIG_SSDT, 2, []byte{0x10, 0x00}))
	a["XSDT"] = m.Add(xsdtTable(a["FACP"], a["APIC"], a["SSDT"]))
	a["RSDT"] = m.Add(rsdtTable(a["FACP"]))
	m.putRSDP(ebdaBase, rsdpV2(uint32(a["RSDT"]), a["XSDT"]))

	return m, a
}

func TestParseACPI65(t *testing.T) {
	m, a := acpi65(s5AML(4, []byte{AML_BYTE_PREFIX, 5}, []byte{AML_BYTE_PREFIX, 5}, []byte{0}, []byte{0}))

	tb, err := Parse(m.mem(), RSDPHint{})
	if err != nil {
		t.Fatal(err)
	}

	if len(tb.Warnings) != 0 {
		t.Errorf("Warnings = %q", tb.Warnings)
	}

	if tb.RSDP.Source != SourceEBDA || tb.Root.Signature != SIG_XSDT || tb.Root.Addr != a["XSDT"] {
		t.Errorf("RSDP %+v root %+v", tb.RSDP, tb.Root)
	}

	wantCPUs := []CPU{
		{UID: 0, APICID: 0, Flags: 1, Enabled: true},
		{UID: 1, APICID: 2, Flags: 1, Enabled: true},
		{UID: 2, APICID: 4, Flags: 0},
		{UID: 3, APICID: 6, Flags: 2, OnlineCapable: true},
		{UID: 4, APICID: 0x100, Flags: 1, Enabled: true, X2APIC: true},
	}
	if !reflect.DeepEqual(tb.MADT.CPUs, wantCPUs) {
		t.Errorf("CPUs =\n%+v\nwant\n%+v", tb.MADT.CPUs, wantCPUs)
	}

	var usable []uint32
	for _, c := range tb.MADT.CPUs {
		if c.Usable() {
			usable = append(usable, c.APICID)
		}
	}

	if want := []uint32{0, 2, 6, 0x100}; !reflect.DeepEqual(usable, want) || tb.MADT.UsableCPUs() != 4 {
		t.Errorf("usable APIC IDs = %#x, want %#x", usable, want)
	}

	if gsi, flags := tb.MADT.ISAIRQ(0); gsi != 2 || flags != 0 {
		t.Errorf("ISAIRQ(0) = %d, %#x; want 2, 0", gsi, flags)
	}

	if gsi, flags := tb.MADT.ISAIRQ(9); gsi != 9 || flags != 0xf {
		t.Errorf("ISAIRQ(9) = %d, %#x; want 9, 0xf", gsi, flags)
	}

	if gsi, flags := tb.MADT.ISAIRQ(4); gsi != 4 || flags != 0 {
		t.Errorf("ISAIRQ(4) = %d, %#x; want 4, 0 (identity)", gsi, flags)
	}

	if want := []NMISource{{Flags: MPS_INTI_TRIGGER_EDGE, GSI: 23}}; !reflect.DeepEqual(tb.MADT.NMISources, want) {
		t.Errorf("NMISources = %+v", tb.MADT.NMISources)
	}

	if want := []LocalNMI{{UID: ALL_PROCESSORS_UID32, Flags: 5, LINT: 1}, {UID: 4, LINT: 1}}; !reflect.DeepEqual(tb.MADT.LocalNMIs, want) {
		t.Errorf("LocalNMIs = %+v, want %+v", tb.MADT.LocalNMIs, want)
	}

	f := tb.FADT

	if major, minor := f.Version(); major != 6 || minor != 5 {
		t.Errorf("Version() = %d.%d, want 6.5", major, minor)
	}

	if f.DSDTAddr() != a["DSDT"] {
		t.Errorf("DSDTAddr() = %#x, want X_DSDT %#x", f.DSDTAddr(), a["DSDT"])
	}

	if g, ok := f.PMTimer(); !ok || g.AccessSize != ACCESS_SIZE_DWORD || g.Address != 0x1808 || !f.PMTimer32Bit() {
		t.Errorf("PMTimer() = %+v, %v, 32-bit %v; want the X_PM_TMR_BLK", g, ok, f.PMTimer32Bit())
	}

	if g, ok := f.PM1aControl(); !ok || g.AccessSize != ACCESS_SIZE_WORD {
		t.Errorf("PM1aControl() = %+v, %v; want the X_PM1a_CNT_BLK", g, ok)
	}

	if !f.ResetSupported() || f.ResetValue != 6 {
		t.Errorf("ResetSupported() = %v, value %#x", f.ResetSupported(), f.ResetValue)
	}

	if tb.S5 == nil || *tb.S5 != (SleepType{5, 5}) {
		t.Errorf("S5 = %+v, want 5, 5", tb.S5)
	}

	if v := SleepControl(0x1c01, tb.S5.SlpTypA); v != 0x3401 {
		t.Errorf("SleepControl(0x1c01, 5) = %#x, want 0x3401", v)
	}
}

func TestParseOnlineCapableNeedsACPI63(t *testing.T) {
	tests := []struct {
		name       string
		fadtRev    uint8
		fadtMinor  uint8
		noFADT     bool
		madtRev    uint8
		wantOnline bool
	}{
		{name: "FADT 6.3", fadtRev: 6, fadtMinor: 3, madtRev: 5, wantOnline: true},
		{name: "FADT 6.2 errata B, MADT revision 45", fadtRev: 6, fadtMinor: 0x22, madtRev: 45, wantOnline: false},
		{name: "FADT 7.0", fadtRev: 7, fadtMinor: 0, madtRev: 6, wantOnline: true},
		{name: "FADT 5.1", fadtRev: 5, fadtMinor: 1, madtRev: 5, wantOnline: false},
		{name: "no FADT, MADT revision 5", noFADT: true, madtRev: 5, wantOnline: true},
		{name: "no FADT, MADT revision 4", noFADT: true, madtRev: 4, wantOnline: false},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			madt := m.Add(madtTable(tt.madtRev, 0xfee00000, 0, lapic(0, 0, LAPIC_ENABLED), lapic(1, 1, LAPIC_ONLINE_CAPABLE)))
			entries := []uint64{madt}

			if !tt.noFADT {
				entries = append(entries, m.Add(fadtTable(276, tt.fadtRev, func(b []byte) { b[FADT_OFF_MINOR_VERSION] = tt.fadtMinor })))
			}

			m.putRSDP(0xe0000, rsdpV2(0, m.Add(xsdtTable(entries...))))

			tb, err := Parse(m.mem(), RSDPHint{})
			if err != nil {
				t.Fatal(err)
			}

			if got := tb.MADT.CPUs[1].OnlineCapable; got != tt.wantOnline {
				t.Errorf("OnlineCapable = %v, want %v", got, tt.wantOnline)
			}
		})
	}
}

func TestParseHints(t *testing.T) {
	m, _ := q35()
	copyAddr := m.Add(rsdpV2(0, 0)) // valid RSDP, but points nowhere
	mem := m.mem()

	rsdt := le.Uint32(m.bios[qemuRSDP-biosBase+RSDP_OFF_RSDT_ADDRESS:])
	good := rsdpV1(rsdt)
	bad := append([]byte(nil), good...)
	bad[0] = 'X'

	tests := []struct {
		name       string
		hint       RSDPHint
		wantSource string
		wantWarn   string
		wantErr    string
	}{
		{name: "copy", hint: RSDPHint{Copy: good}, wantSource: SourceCopy},
		{name: "copy before address", hint: RSDPHint{Copy: good, Addr: copyAddr}, wantSource: SourceCopy},
		{name: "address", hint: RSDPHint{Addr: qemuRSDP}, wantSource: SourceAddress},
		{name: "bad copy: address", hint: RSDPHint{Copy: bad, Addr: qemuRSDP}, wantSource: SourceAddress, wantWarn: "used the loader's address instead"},
		{name: "bad address: scan", hint: RSDPHint{Addr: 0x1234}, wantSource: SourceBIOSArea, wantWarn: "found the RSDP by scanning instead"},
		{name: "RSDP without root tables", hint: RSDPHint{Addr: copyAddr}, wantErr: "gives no RSDT address and no XSDT address"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := Parse(mem, tt.hint)
			wantErr(t, err, tt.wantErr)

			if err != nil {
				return
			}

			if tb.RSDP.Source != tt.wantSource || !hasWarning(tb.Warnings, tt.wantWarn) || tb.MADT == nil {
				t.Errorf("RSDP %+v, warnings %q", tb.RSDP, tb.Warnings)
			}
		})
	}
}

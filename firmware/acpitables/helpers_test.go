package acpitables

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/kernel/acpi"
)

// testPM is an ICH9-like PM device: PM1a event at 0x600, control at
// 0x604, timer at 0x608.
var testPM = PMDevice{
	PM1aEvt: 0x600, PM1EvtLen: 4,
	PM1aCnt: 0x604, PM1CntLen: 2,
	PMTmr: 0x608, PMTmrLen: 4,
	TimerExt: true,
	SlpTypS5: 5,
}

// guestMem is guest memory for the parser: one buffer at base. It
// implements acpi.Memory and GuestWriter.
type guestMem struct {
	base uint64
	b    []byte
}

// ReadAt implements acpi.Memory.
func (m *guestMem) ReadAt(p []byte, a uint64) error {
	if a < m.base || a-m.base > uint64(len(m.b)) || uint64(len(p)) > uint64(len(m.b))-(a-m.base) {
		return fmt.Errorf("no guest memory at [%#x, +%d)", a, len(p))
	}

	copy(p, m.b[a-m.base:])

	return nil
}

// Write implements GuestWriter.
func (m *guestMem) Write(gpa addr.GPA, p []byte) error {
	a := uint64(gpa)
	if a < m.base || a-m.base > uint64(len(m.b)) || uint64(len(p)) > uint64(len(m.b))-(a-m.base) {
		return fmt.Errorf("no guest memory at [%#x, +%d)", a, len(p))
	}

	copy(m.b[a-m.base:], p)

	return nil
}

// memFor returns guest memory holding the image, with slack around it.
func memFor(t testing.TB, im *Image) *guestMem {
	const slack = 0x1000

	base := uint64(0)
	if uint64(im.Base) > slack {
		base = uint64(im.Base) - slack
	}

	m := &guestMem{base: base, b: make([]byte, uint64(im.Base)-base+uint64(len(im.Bytes))+slack)}
	if err := im.Install(m); err != nil {
		t.Fatalf("Install: %v", err)
	}

	return m
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}

	return s
}

// checkImage checks, without kernel/acpi, every checksum and length and
// that the tables lie inside the image without overlapping.
func checkImage(t testing.TB, im *Image) {
	t.Helper()

	if len(im.Tables) != 7 {
		t.Fatalf("image has %d tables, want 7: %+v", len(im.Tables), im.Tables)
	}

	end := 0

	for _, tb := range im.Tables {
		if tb.Offset < end {
			t.Errorf("%s at offset %#x overlaps the table before, which ends at %#x", tb.Signature, tb.Offset, end)
		}

		if tb.Offset+tb.Length > len(im.Bytes) {
			t.Fatalf("%s at offset %#x, %d bytes, runs past the image's %d bytes", tb.Signature, tb.Offset, tb.Length, len(im.Bytes))
		}

		if tb.GPA != im.Base+addr.GPA(tb.Offset) {
			t.Errorf("%s: GPA %v, want base %v + offset %#x", tb.Signature, tb.GPA, im.Base, tb.Offset)
		}

		end = tb.Offset + tb.Length
		b := im.Bytes[tb.Offset:end]

		if !strings.HasPrefix(string(b), tb.Signature) {
			t.Errorf("table at offset %#x starts %q, want %q", tb.Offset, b[:4], tb.Signature)
		}

		switch tb.Signature {
		case RSDP_SIGNATURE:
			if tb.GPA%16 != 0 {
				t.Errorf("RSDP at %v is not 16-byte aligned", tb.GPA)
			}

			if s := sum(b[:RSDP_V1_LENGTH]); s != 0 {
				t.Errorf("RSDP checksum: first 20 bytes sum to %#x", s)
			}

			if s := sum(b[:RSDP_LENGTH]); s != 0 {
				t.Errorf("RSDP extended checksum: 36 bytes sum to %#x", s)
			}

			if n := le.Uint32(b[RSDP_OFF_LENGTH:]); n != RSDP_LENGTH || tb.Length != RSDP_LENGTH {
				t.Errorf("RSDP length field %d, table length %d, want %d", n, tb.Length, RSDP_LENGTH)
			}

			if r := b[RSDP_OFF_REVISION]; r != 2 {
				t.Errorf("RSDP revision %d, want 2", r)
			}

		case SIG_FACS:
			if tb.GPA%FACS_ALIGN != 0 {
				t.Errorf("FACS at %v is not 64-byte aligned", tb.GPA)
			}

			if n := le.Uint32(b[FACS_OFF_LENGTH:]); n != FACS_LENGTH || tb.Length != FACS_LENGTH {
				t.Errorf("FACS length field %d, table length %d, want %d", n, tb.Length, FACS_LENGTH)
			}

		default:
			if n := le.Uint32(b[SDT_OFF_LENGTH:]); int(n) != tb.Length {
				t.Errorf("%s: length field %d, table length %d", tb.Signature, n, tb.Length)
			}

			if s := sum(b); s != 0 {
				t.Errorf("%s: checksum: the %d bytes sum to %#x", tb.Signature, len(b), s)
			}

			if got := string(b[SDT_OFF_OEMID : SDT_OFF_OEMID+6]); got != OEM_ID {
				t.Errorf("%s: OEM ID %q, want %q", tb.Signature, got, OEM_ID)
			}

			if got := string(b[SDT_OFF_OEM_TABLE_ID : SDT_OFF_OEM_TABLE_ID+8]); got != OEM_TABLE_ID {
				t.Errorf("%s: OEM table ID %q, want %q", tb.Signature, got, OEM_TABLE_ID)
			}

			if got := string(b[SDT_OFF_CREATOR_ID : SDT_OFF_CREATOR_ID+4]); got != CREATOR_ID {
				t.Errorf("%s: creator ID %q, want %q", tb.Signature, got, CREATOR_ID)
			}
		}
	}

	if end != len(im.Bytes) {
		t.Errorf("the last table ends at %#x, the image at %#x", end, len(im.Bytes))
	}

	if want, got := uint64(im.Base)+OFF_RSDP, uint64(im.RSDP); got != want {
		t.Errorf("RSDP at %#x, want %#x", got, want)
	}

	if fadt := im.TableBytes(SIG_FADT); len(fadt) != FADT_LENGTH {
		t.Errorf("FADT is %d bytes, want %d", len(fadt), FADT_LENGTH)
	}
}

// checkParsed checks what kernel/acpi finds in the image against c.
func checkParsed(t testing.TB, c Config, im *Image, tabs *acpi.Tables) {
	t.Helper()

	if len(tabs.Warnings) > 0 {
		t.Errorf("parser warnings:\n%s", strings.Join(tabs.Warnings, "\n"))
	}

	if tabs.RSDP.OEMID != OEM_ID {
		t.Errorf("RSDP: OEM %q, want %q", tabs.RSDP.OEMID, OEM_ID)
	}

	m := tabs.MADT
	if m == nil {
		t.Fatalf("parser found no MADT")
	}

	if m.LocalAPICAddr != uint64(c.LocalAPICAddr) || !m.PCATCompat {
		t.Errorf("MADT: local APIC %#x, PCAT_COMPAT %v; want %#x, true", m.LocalAPICAddr, m.PCATCompat, c.LocalAPICAddr)
	}

	if len(m.CPUs) != c.CPUs || m.UsableCPUs() != c.CPUs {
		t.Errorf("MADT: %d CPUs, %d usable; want %d", len(m.CPUs), m.UsableCPUs(), c.CPUs)
	}

	for k, cpu := range m.CPUs {
		if cpu.APICID != uint32(k) || cpu.UID != uint32(k) || !cpu.Enabled || cpu.X2APIC {
			t.Errorf("MADT CPU %d: %+v, want APIC ID and UID %d, enabled, xAPIC", k, cpu, k)
		}
	}

	if len(m.IOAPICs) != 1 {
		t.Fatalf("MADT: %d I/O APICs, want 1", len(m.IOAPICs))
	}

	if io := m.IOAPICs[0]; io.ID != c.IOAPIC.ID || io.Addr != c.IOAPIC.Addr || io.GSIBase != c.IOAPIC.GSIBase {
		t.Errorf("MADT I/O APIC %+v, want %+v", io, c.IOAPIC)
	}

	for _, o := range c.Overrides {
		if gsi, flags := m.ISAIRQ(o.IRQ); gsi != o.GSI || flags != o.Flags {
			t.Errorf("MADT: IRQ %d goes to GSI %d flags %#x, want GSI %d flags %#x", o.IRQ, gsi, flags, o.GSI, o.Flags)
		}
	}

	if gsi, flags := m.ISAIRQ(c.SCIIRQ); flags&acpi.MPS_INTI_TRIGGER_MASK != acpi.MPS_INTI_TRIGGER_LEVEL {
		t.Errorf("MADT: SCI IRQ %d goes to GSI %d with flags %#x, want level-triggered", c.SCIIRQ, gsi, flags)
	}

	if len(m.LocalNMIs) != 1 || m.LocalNMIs[0].LINT != 1 || m.LocalNMIs[0].UID != acpi.ALL_PROCESSORS_UID32 {
		t.Errorf("MADT local NMIs %+v, want LINT1 of every processor", m.LocalNMIs)
	}

	f := tabs.FADT
	if f == nil {
		t.Fatalf("parser found no FADT")
	}

	if major, minor := f.Version(); major != 6 || minor != 3 || f.Header.Length != FADT_LENGTH {
		t.Errorf("FADT version %d.%d, %d bytes; want 6.3, %d", major, minor, f.Header.Length, FADT_LENGTH)
	}

	facs, _ := im.Table(SIG_FACS)
	dsdt, _ := im.Table(SIG_DSDT)

	if f.FirmwareCtrl != uint32(facs.GPA) || f.XFirmwareCtrl != 0 {
		t.Errorf("FADT FIRMWARE_CTRL %#x, X_FIRMWARE_CTRL %#x; want %#x, 0", f.FirmwareCtrl, f.XFirmwareCtrl, uint64(facs.GPA))
	}

	if f.DSDT != uint32(dsdt.GPA) || f.XDSDT != uint64(dsdt.GPA) {
		t.Errorf("FADT DSDT %#x, X_DSDT %#x; want both %#x", f.DSDT, f.XDSDT, uint64(dsdt.GPA))
	}

	pm := c.PM
	if f.SCIInt != uint16(c.SCIIRQ) || f.SMICmd != 0 || f.ACPIEnable != 0 || f.ACPIDisable != 0 {
		t.Errorf("FADT SCI_INT %d SMI_CMD %#x ACPI_ENABLE %d ACPI_DISABLE %d; want %d, 0, 0, 0", f.SCIInt, f.SMICmd, f.ACPIEnable, f.ACPIDisable, c.SCIIRQ)
	}

	if f.PM1aEvtBlk != uint32(pm.PM1aEvt) || f.PM1EvtLen != pm.PM1EvtLen ||
		f.PM1aCntBlk != uint32(pm.PM1aCnt) || f.PM1CntLen != pm.PM1CntLen ||
		f.PMTmrBlk != uint32(pm.PMTmr) || f.PMTmrLen != PM_TMR_LEN {
		t.Errorf("FADT blocks evt %#x/%d cnt %#x/%d tmr %#x/%d; want %+v", f.PM1aEvtBlk, f.PM1EvtLen, f.PM1aCntBlk, f.PM1CntLen, f.PMTmrBlk, f.PMTmrLen, pm)
	}

	for _, r := range []struct {
		name string
		gas  acpi.GAS
		ok   bool
		port uint16
		bits uint8
	}{
		{"PM1a event", first(f.PM1aEvent()), second(f.PM1aEvent()), pm.PM1aEvt, 8 * pm.PM1EvtLen},
		{"PM1a control", first(f.PM1aControl()), second(f.PM1aControl()), pm.PM1aCnt, 8 * pm.PM1CntLen},
		{"PM timer", first(f.PMTimer()), second(f.PMTimer()), pm.PMTmr, 32},
	} {
		if !r.ok || !r.gas.IsIO() || r.gas.Address != uint64(r.port) || r.gas.BitWidth != r.bits {
			t.Errorf("FADT %s register %v (present %v), want io %#x/%d", r.name, r.gas, r.ok, r.port, r.bits)
		}
	}

	if f.PMTimer32Bit() != pm.TimerExt {
		t.Errorf("FADT TMR_VAL_EXT %v, want %v", f.PMTimer32Bit(), pm.TimerExt)
	}

	wantFlags := uint32(WBINVD | PROC_C1 | SLP_BUTTON | RESET_REG_SUP)
	if pm.TimerExt {
		wantFlags |= TMR_VAL_EXT
	}

	if f.Flags != wantFlags || f.Flags&PWR_BUTTON != 0 || f.HardwareReduced() {
		t.Errorf("FADT flags %#x, want %#x (fixed power button, not hardware-reduced)", f.Flags, wantFlags)
	}

	if f.IAPCBootArch != LEGACY_DEVICES|IAPC_8042 {
		t.Errorf("FADT IAPC_BOOT_ARCH %#x, want %#x", f.IAPCBootArch, LEGACY_DEVICES|IAPC_8042)
	}

	if !f.ResetSupported() || !f.ResetReg.IsIO() || f.ResetReg.Address != uint64(c.ResetPort) || f.ResetReg.BitWidth != 8 || f.ResetValue != c.ResetValue {
		t.Errorf("FADT reset %v value %#x (supported %v), want io %#x/8 value %#x", f.ResetReg, f.ResetValue, f.ResetSupported(), c.ResetPort, c.ResetValue)
	}

	if tabs.S5 == nil || tabs.S5.SlpTypA != pm.SlpTypS5 || tabs.S5.SlpTypB != pm.SlpTypS5 {
		t.Errorf("\\_S5 %+v, want SLP_TYPa and SLP_TYPb %d", tabs.S5, pm.SlpTypS5)
	}

	for _, sig := range []string{acpi.SIG_FADT, acpi.SIG_MADT, acpi.SIG_DSDT} {
		h, ok := tabs.Table(sig)
		if !ok {
			t.Errorf("parser did not list %s", sig)
			continue
		}

		if want, _ := im.Table(sig); h.Addr != uint64(want.GPA) || h.OEMID != OEM_ID || h.OEMTableID != OEM_TABLE_ID || h.CreatorID != CREATOR_ID {
			t.Errorf("parser's %s header %v, want at %v with KEEL ids", sig, h, want.GPA)
		}
	}
}

func first[A, B any](a A, _ B) A  { return a }
func second[A, B any](_ A, b B) B { return b }

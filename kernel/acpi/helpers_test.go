package acpi

import (
	"encoding/binary"
	"encoding/hex"
	"github.com/keel-hv/keel/kernel/internal/fakemem"
	"strings"
	"testing"
)

var le = binary.LittleEndian

// fakeMem is the shared test memory.
type fakeMem = fakemem.Mem

// fix sets the checksum byte at off so that b sums to 0.
func fix(b []byte, off int) []byte {
	b[off] = 0
	b[off] = -checksum(b)

	return b
}

// sdt builds a table: header with the given signature and revision, body,
// correct length and checksum.
func sdt(sig string, rev uint8, body []byte) []byte {
	b := make([]byte, SDT_HEADER_LENGTH, SDT_HEADER_LENGTH+len(body))
	copy(b[SDT_OFF_SIGNATURE:], sig)
	le.PutUint32(b[SDT_OFF_LENGTH:], uint32(SDT_HEADER_LENGTH+len(body)))
	b[SDT_OFF_REVISION] = rev
	copy(b[SDT_OFF_OEMID:], "KEEL  ")
	copy(b[SDT_OFF_OEM_TABLE_ID:], "KEELTEST")
	le.PutUint32(b[SDT_OFF_OEM_REVISION:], 1)
	copy(b[SDT_OFF_CREATOR_ID:], "KEEL")
	le.PutUint32(b[SDT_OFF_CREATOR_REVISION:], 1)
	b = append(b, body...)

	return fix(b, SDT_OFF_CHECKSUM)
}

// rsdpV1 builds an ACPI 1.0 RSDP.
func rsdpV1(rsdt uint32) []byte {
	b := make([]byte, RSDP_V1_LENGTH)
	copy(b, RSDP_SIGNATURE)
	copy(b[RSDP_OFF_OEMID:], "BOCHS ")
	le.PutUint32(b[RSDP_OFF_RSDT_ADDRESS:], rsdt)

	return fix(b, RSDP_OFF_CHECKSUM)
}

// rsdpV2 builds an ACPI 2.0+ RSDP.
func rsdpV2(rsdt uint32, xsdt uint64) []byte {
	b := make([]byte, RSDP_V2_LENGTH)
	copy(b, RSDP_SIGNATURE)
	copy(b[RSDP_OFF_OEMID:], "KEEL  ")
	b[RSDP_OFF_REVISION] = 2
	le.PutUint32(b[RSDP_OFF_RSDT_ADDRESS:], rsdt)
	le.PutUint32(b[RSDP_OFF_LENGTH:], RSDP_V2_LENGTH)
	le.PutUint64(b[RSDP_OFF_XSDT_ADDRESS:], xsdt)
	fix(b[:RSDP_V1_LENGTH], RSDP_OFF_CHECKSUM)

	return fix(b, RSDP_OFF_EXTENDED_CHECKSUM)
}

func rsdtTable(addrs ...uint64) []byte {
	b := make([]byte, 4*len(addrs))
	for k, a := range addrs {
		le.PutUint32(b[4*k:], uint32(a))
	}

	return sdt(SIG_RSDT, 1, b)
}

func xsdtTable(addrs ...uint64) []byte {
	b := make([]byte, 8*len(addrs))
	for k, a := range addrs {
		le.PutUint64(b[8*k:], a)
	}

	return sdt(SIG_XSDT, 1, b)
}

// MADT entries.
func lapic(uid, id uint8, flags uint32) []byte {
	b := []byte{MADT_PROCESSOR_LOCAL_APIC, 8, uid, id, 0, 0, 0, 0}
	le.PutUint32(b[4:], flags)

	return b
}

func x2apic(id, flags, uid uint32) []byte {
	b := make([]byte, 16)
	b[0], b[1] = MADT_PROCESSOR_LOCAL_X2APIC, 16
	le.PutUint32(b[4:], id)
	le.PutUint32(b[8:], flags)
	le.PutUint32(b[12:], uid)

	return b
}

func ioapic(id uint8, addr, gsi uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1], b[2] = MADT_IO_APIC, 12, id
	le.PutUint32(b[4:], addr)
	le.PutUint32(b[8:], gsi)

	return b
}

func iso(src uint8, gsi uint32, flags uint16) []byte {
	b := make([]byte, 10)
	b[0], b[1], b[2], b[3] = MADT_INTERRUPT_SOURCE_OVERRIDE, 10, 0, src
	le.PutUint32(b[4:], gsi)
	le.PutUint16(b[8:], flags)

	return b
}

func nmiSource(flags uint16, gsi uint32) []byte {
	b := make([]byte, 8)
	b[0], b[1] = MADT_NMI_SOURCE, 8
	le.PutUint16(b[2:], flags)
	le.PutUint32(b[4:], gsi)

	return b
}

func lapicNMI(uid uint8, flags uint16, lint uint8) []byte {
	b := []byte{MADT_LOCAL_APIC_NMI, 6, uid, 0, 0, lint}
	le.PutUint16(b[3:], flags)

	return b
}

func x2apicNMI(flags uint16, uid uint32, lint uint8) []byte {
	b := make([]byte, 12)
	b[0], b[1] = MADT_LOCAL_X2APIC_NMI, 12
	le.PutUint16(b[2:], flags)
	le.PutUint32(b[4:], uid)
	b[8] = lint

	return b
}

func lapicOverride(addr uint64) []byte {
	b := make([]byte, 12)
	b[0], b[1] = MADT_LOCAL_APIC_ADDRESS_OVERRIDE, 12
	le.PutUint64(b[4:], addr)

	return b
}

// madtTable builds a MADT of the given revision.
func madtTable(rev uint8, lapicAddr, flags uint32, entries ...[]byte) []byte {
	b := make([]byte, 8)
	le.PutUint32(b[0:], lapicAddr)
	le.PutUint32(b[4:], flags)

	for _, e := range entries {
		b = append(b, e...)
	}

	return sdt(SIG_MADT, rev, b)
}

// fadtTable builds a FADT of the given length and revision; set fills in
// fields (offsets as in the table, header included).
func fadtTable(length int, rev uint8, set func(b []byte)) []byte {
	b := make([]byte, length)
	if set != nil {
		set(b)
	}

	return sdt(SIG_FADT, rev, b[SDT_HEADER_LENGTH:])
}

// putGAS writes a Generic Address Structure at b[off:].
func putGAS(b []byte, off int, g GAS) {
	b[off], b[off+1], b[off+2], b[off+3] = g.SpaceID, g.BitWidth, g.BitOffset, g.AccessSize
	le.PutUint64(b[off+4:], g.Address)
}

// s5AML is Name(_S5, Package(){elements...}) with a 1-byte PkgLength; each
// element is already encoded.
func s5AML(count int, elements ...[]byte) []byte {
	var body []byte
	for _, e := range elements {
		body = append(body, e...)
	}

	pkg := append([]byte{byte(count)}, body...)

	return append([]byte{AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, byte(1 + len(pkg))}, pkg...)
}

// qemuS5 is QEMU's Name (_S5, Package (0x04) {Zero, Zero, Zero, Zero}).
var qemuS5 = s5AML(4, []byte{0}, []byte{0}, []byte{0}, []byte{0})

// unhex decodes a hex dump, ignoring white space.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}

	return b
}

// QEMU's own tables, as QEMU's test suite records them (tests/data/acpi,
// disassembled by iasl): the q35 MADT (one CPU), the q35 FADT (revision 3,
// 244 bytes) and the pc (i440FX/PIIX4) FADT (revision 1, 116 bytes). The
// FADTs' DSDT addresses are 0 there (QEMU's BIOS linker fills them in at
// boot); tests patch them and fix the checksum.
var (
	qemuQ35MADT = unhex(`
		41 50 49 43 78 00 00 00 01 ED 42 4F 43 48 53 20
		42 58 50 43 41 50 49 43 01 00 00 00 42 58 50 43
		01 00 00 00 00 00 E0 FE 01 00 00 00 00 08 00 00
		01 00 00 00 01 0C 00 00 00 00 C0 FE 00 00 00 00
		02 0A 00 00 02 00 00 00 00 00 02 0A 00 05 05 00
		00 00 0D 00 02 0A 00 09 09 00 00 00 0D 00 02 0A
		00 0A 0A 00 00 00 0D 00 02 0A 00 0B 0B 00 00 00
		0D 00 04 06 FF 00 00 01`)

	qemuQ35FADT = unhex(`
		46 41 43 50 F4 00 00 00 03 1F 42 4F 43 48 53 20
		42 58 50 43 46 41 43 50 01 00 00 00 42 58 50 43
		01 00 00 00 00 00 00 00 00 00 00 00 01 00 09 00
		B2 00 00 00 02 03 00 00 00 06 00 00 00 00 00 00
		04 06 00 00 00 00 00 00 00 00 00 00 08 06 00 00
		20 06 00 00 00 00 00 00 04 02 00 04 10 00 00 00
		FF 0F FF 0F 00 00 00 00 00 00 00 00 32 00 00 00
		A5 84 00 00 01 08 00 00 F9 0C 00 00 00 00 00 00
		0F 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 01 20 00 00 00 06 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00 00 00 00 01 10 00 00
		04 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		01 20 00 00 08 06 00 00 00 00 00 00 01 80 00 00
		20 06 00 00 00 00 00 00 00 00 00 00 00 00 00 00
		00 00 00 00`)

	qemuPCFADT = unhex(`
		46 41 43 50 74 00 00 00 01 A1 42 4F 43 48 53 20
		42 58 50 43 46 41 43 50 01 00 00 00 42 58 50 43
		01 00 00 00 00 00 00 00 00 00 00 00 01 00 09 00
		B2 00 00 00 F1 F0 00 00 00 06 00 00 00 00 00 00
		04 06 00 00 00 00 00 00 00 00 00 00 08 06 00 00
		E0 AF 00 00 00 00 00 00 04 02 00 04 04 00 00 00
		FF 0F FF 0F 00 00 00 00 00 00 00 00 32 00 00 00
		A5 80 00 00`)
)

// withDSDT returns a copy of a FADT with its DSDT (and, when long enough,
// X_DSDT) address set and the checksum fixed.
func withDSDT(fadt []byte, dsdt uint32, xdsdt uint64) []byte {
	b := append([]byte(nil), fadt...)
	le.PutUint32(b[FADT_OFF_DSDT:], dsdt)

	if len(b) >= FADT_OFF_X_DSDT+8 {
		le.PutUint64(b[FADT_OFF_X_DSDT:], xdsdt)
	}

	return fix(b, SDT_OFF_CHECKSUM)
}

// Physical layout of the test machines.
const (
	biosBase   = BIOS_AREA_START
	tablesBase = 0x7ffe0000
	ebdaBase   = 0x9fc00 // where SeaBIOS puts the EBDA
	lowBase    = 0x90000 // the low-memory segment holding it
	qemuRSDP   = 0xf5a00 // where SeaBIOS puts it
)

// machine is a test machine: page 0 with the EBDA pointer, low memory up
// to 640 KiB holding the EBDA, the BIOS area and a tables area, each a fake
// memory segment.
type machine struct {
	page0    []byte
	low      []byte
	bios     []byte
	tables   []byte
	tablesAt uint64 // physical address of tables[0]
}

func newMachine() *machine {
	m := &machine{
		page0: make([]byte, 0x1000),
		low:   make([]byte, 0xa0000-lowBase),
		bios:  make([]byte, BIOS_AREA_END-BIOS_AREA_START),

		tablesAt: tablesBase,
	}
	le.PutUint16(m.page0[EBDA_SEGMENT_PTR:], ebdaBase>>4)

	return m
}

// add places a table in the tables area and returns its address.
func (m *machine) Add(b []byte) uint64 {
	for len(m.tables)%16 != 0 {
		m.tables = append(m.tables, 0)
	}

	addr := m.tablesAt + uint64(len(m.tables))
	m.tables = append(m.tables, b...)

	return addr
}

// at returns the bytes at addr in the tables area, for patching.
func (m *machine) at(addr uint64) []byte {
	return m.tables[addr-m.tablesAt:]
}

// putRSDP places an RSDP in the BIOS area or low memory.
func (m *machine) putRSDP(addr uint64, b []byte) {
	if addr < biosBase {
		copy(m.low[addr-lowBase:], b)
		return
	}

	copy(m.bios[addr-biosBase:], b)
}

func (m *machine) mem() *fakeMem {
	return (&fakeMem{}).Add(0, m.page0).Add(lowBase, m.low).Add(biosBase, m.bios).Add(m.tablesAt, m.tables)
}

// q35 builds QEMU's q35 tables (RSDP v0 at 0xf5a00, RSDT, FADT, MADT,
// DSDT with \_S5) with ncpu CPUs in the MADT.
func q35() (*machine, uint64) {
	m := newMachine()
	dsdt := m.Add(sdt(SIG_DSDT, 1, append([]byte{0x10, 0x05, '\\', '_', 'S', 'B', '_'}, qemuS5...)))
	fadt := m.Add(withDSDT(qemuQ35FADT, uint32(dsdt), 0))
	madt := m.Add(qemuQ35MADT)
	rsdt := m.Add(rsdtTable(fadt, madt))
	m.putRSDP(qemuRSDP, rsdpV1(uint32(rsdt)))

	return m, dsdt
}

func hasWarning(ws []string, s string) bool {
	if s == "" {
		return true
	}

	for _, w := range ws {
		if strings.Contains(w, s) {
			return true
		}
	}

	return false
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()

	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}

	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

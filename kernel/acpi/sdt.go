package acpi

import (
	"errors"
	"fmt"
)

// System Description Table Header (ACPI 6.5, 5.2.6).
const (
	// SDT_HEADER_LENGTH is the size of the header that starts every
	// table except the RSDP and FACS.
	SDT_HEADER_LENGTH = 36

	SDT_OFF_SIGNATURE        = 0  // 4-byte Signature
	SDT_OFF_LENGTH           = 4  // u32 Length of the whole table
	SDT_OFF_REVISION         = 8  // u8 Revision
	SDT_OFF_CHECKSUM         = 9  // u8 Checksum: the table sums to 0
	SDT_OFF_OEMID            = 10 // 6-byte OEMID
	SDT_OFF_OEM_TABLE_ID     = 16 // 8-byte OEM Table ID
	SDT_OFF_OEM_REVISION     = 24 // u32 OEM Revision
	SDT_OFF_CREATOR_ID       = 28 // 4-byte Creator ID
	SDT_OFF_CREATOR_REVISION = 32 // u32 Creator Revision
)

// Table signatures (ACPI 6.5, 5.2.6, "DESCRIPTION_HEADER Signatures").
const (
	SIG_RSDT = "RSDT" // Root System Description Table (5.2.7)
	SIG_XSDT = "XSDT" // Extended System Description Table (5.2.8)
	SIG_FADT = "FACP" // Fixed ACPI Description Table (5.2.9)
	SIG_DSDT = "DSDT" // Differentiated System Description Table (5.2.11.1)
	SIG_SSDT = "SSDT" // Secondary System Description Table (5.2.11.2)
	SIG_MADT = "APIC" // Multiple APIC Description Table (5.2.12)
)

// Header is a decoded System Description Table Header, with the table's
// physical address.
type Header struct {
	// Signature identifies the table ("APIC", "FACP", ...).
	Signature string
	// Addr is the table's physical address (0 for a table parsed from a
	// byte slice).
	Addr uint64
	// Length is the length of the whole table, header included.
	Length uint32
	// Revision is the table's revision.
	Revision uint8
	// OEMID, OEMTableID and OEMRevision identify the firmware.
	OEMID       string
	OEMTableID  string // OEM Table ID
	OEMRevision uint32 // OEM Revision
	// CreatorID and CreatorRevision identify the tool that built the
	// table (the ASL compiler).
	CreatorID       string
	CreatorRevision uint32 // Creator Revision
}

// String formats the header as `APIC at 0x7ffe1234, 120 bytes, revision 1,
// OEM "BOCHS " "BXPCAPIC"`.
func (h Header) String() string {
	return fmt.Sprintf("%s at %#x, %d bytes, revision %d, OEM %q %q", printable(h.Signature), h.Addr, h.Length, h.Revision, h.OEMID, h.OEMTableID)
}

// printable quotes s if it holds anything but printable ASCII, so that a
// garbage signature cannot garble the console.
func printable(s string) string {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%q", s)
		}
	}

	return s
}

// checksum returns the 8-bit sum of b; a valid table sums to 0.
func checksum(b []byte) uint8 {
	var sum uint8

	for _, c := range b {
		sum += c
	}

	return sum
}

// parseHeader decodes and checks the header at the start of table b: its
// signature (when sig is not empty), that the length lies between the
// header's size and both MAX_TABLE_LENGTH and len(b), and the checksum over
// that length. It returns the table trimmed to its length.
func parseHeader(b []byte, sig string, addr uint64) (Header, []byte, error) {
	if len(b) < SDT_HEADER_LENGTH {
		return Header{}, nil, fmt.Errorf("acpi: table at %#x: %d bytes is shorter than the %d-byte header", addr, len(b), SDT_HEADER_LENGTH)
	}

	h := Header{
		Signature:       string(b[SDT_OFF_SIGNATURE : SDT_OFF_SIGNATURE+4]),
		Addr:            addr,
		Length:          le32(b, SDT_OFF_LENGTH),
		Revision:        b[SDT_OFF_REVISION],
		OEMID:           string(b[SDT_OFF_OEMID : SDT_OFF_OEMID+6]),
		OEMTableID:      string(b[SDT_OFF_OEM_TABLE_ID : SDT_OFF_OEM_TABLE_ID+8]),
		OEMRevision:     le32(b, SDT_OFF_OEM_REVISION),
		CreatorID:       string(b[SDT_OFF_CREATOR_ID : SDT_OFF_CREATOR_ID+4]),
		CreatorRevision: le32(b, SDT_OFF_CREATOR_REVISION),
	}

	name := printable(h.Signature)
	if sig != "" {
		name = sig
	}

	if sig != "" && h.Signature != sig {
		return h, nil, fmt.Errorf("acpi: %s table at %#x: signature is %s, want %s", sig, addr, printable(h.Signature), sig)
	}

	if h.Length < SDT_HEADER_LENGTH {
		return h, nil, fmt.Errorf("acpi: %s table at %#x: length %d is shorter than the %d-byte header", name, addr, h.Length, SDT_HEADER_LENGTH)
	}

	if h.Length > MAX_TABLE_LENGTH {
		return h, nil, fmt.Errorf("acpi: %s table at %#x: length %d, at most %d is accepted", name, addr, h.Length, MAX_TABLE_LENGTH)
	}

	if uint64(h.Length) > uint64(len(b)) {
		return h, nil, fmt.Errorf("acpi: %s table at %#x: length %d, but only %d bytes are there", name, addr, h.Length, len(b))
	}

	b = b[:h.Length]

	if sum := checksum(b); sum != 0 {
		return h, nil, fmt.Errorf("acpi: %s table at %#x: checksum mismatch: the %d bytes sum to %#02x, want 0 (checksum byte is %#02x)",
			name, addr, h.Length, sum, b[SDT_OFF_CHECKSUM])
	}

	return h, b, nil
}

// ReadTable reads the table at physical address addr, checks its signature
// (unless sig is empty), length and checksum, and returns its bytes (header
// included) and decoded header.
func ReadTable(mem Memory, addr uint64, sig string) ([]byte, Header, error) {
	budget := MAX_TABLE_LENGTH
	return readTableBudget(mem, addr, sig, &budget)
}

// errBudget is returned when a table would take Parse past MAX_TOTAL_READ.
var errBudget = errors.New("the tables read so far exhaust the limit of MAX_TOTAL_READ bytes")

// readTableBudget is ReadTable, charging the table's length to *budget.
func readTableBudget(mem Memory, addr uint64, sig string, budget *int) ([]byte, Header, error) {
	name := sig
	if name == "" {
		name = "ACPI"
	}

	var hdr [SDT_HEADER_LENGTH]byte

	if err := read(mem, hdr[:], addr); err != nil {
		return nil, Header{}, fmt.Errorf("acpi: %s table at %#x: cannot read its header: %w", name, addr, err)
	}

	// Check the header alone first, so that the length is known to be
	// sane before anything is allocated.
	length := le32(hdr[:], SDT_OFF_LENGTH)

	if length >= SDT_HEADER_LENGTH && length <= MAX_TABLE_LENGTH && (sig == "" || string(hdr[:4]) == sig) {
		if int(length) > *budget {
			return nil, Header{}, fmt.Errorf("acpi: %s table at %#x: %d bytes: %w", printable(string(hdr[:4])), addr, length, errBudget)
		}

		*budget -= int(length)

		b, err := readBytes(mem, addr, int(length))
		if err != nil {
			return nil, Header{}, fmt.Errorf("acpi: %s table at %#x: cannot read its %d bytes: %w", printable(string(hdr[:4])), addr, length, err)
		}

		h, b, err := parseHeader(b, sig, addr)

		return b, h, err
	}

	// parseHeader explains what is wrong with the header.
	h, _, err := parseHeader(hdr[:], sig, addr)

	return nil, h, err
}

// readChunk is the most readBytes asks of Memory at once, so that a bogus
// length makes it allocate only as much as could actually be read.
const readChunk = 64 << 10

// read is mem.ReadAt with the wrap-around check.
func read(mem Memory, p []byte, addr uint64) error {
	if len(p) > 0 && addr+uint64(len(p))-1 < addr {
		return fmt.Errorf("[%#x, +%d) wraps past 2^64", addr, len(p))
	}

	return mem.ReadAt(p, addr)
}

// readBytes reads n bytes of physical memory at addr, in chunks.
func readBytes(mem Memory, addr uint64, n int) ([]byte, error) {
	if n > 0 && addr+uint64(n)-1 < addr {
		return nil, fmt.Errorf("[%#x, +%d) wraps past 2^64", addr, n)
	}

	b := make([]byte, 0, min(n, readChunk))

	for done := 0; done < n; {
		c := min(n-done, readChunk)
		b = append(b, make([]byte, c)...)

		if err := mem.ReadAt(b[done:done+c], addr+uint64(done)); err != nil {
			return nil, err
		}

		done += c
	}

	return b, nil
}

// readRoot reads the XSDT (when the RSDP has one) or the RSDT and returns
// the table addresses it lists.
func (t *Tables) readRoot(mem Memory) ([]uint64, error) {
	r := t.RSDP

	if r.Revision >= 2 && r.XSDTAddr != 0 {
		b, h, err := ReadTable(mem, r.XSDTAddr, SIG_XSDT)
		if err == nil {
			t.Root = h
			return t.rootEntries(b, 8), nil
		}

		if r.RSDTAddr == 0 {
			return nil, fmt.Errorf("%w; the RSDP has no RSDT to fall back to", err)
		}

		t.warnf("%v; using the RSDT instead", err)
	}

	if r.RSDTAddr == 0 {
		return nil, fmt.Errorf("acpi: the RSDP (revision %d, %s) gives no RSDT address and no XSDT address", r.Revision, r.Source)
	}

	b, h, err := ReadTable(mem, uint64(r.RSDTAddr), SIG_RSDT)
	if err != nil {
		return nil, err
	}

	t.Root = h

	return t.rootEntries(b, 4), nil
}

// rootEntries decodes the root table's array of size-byte addresses.
func (t *Tables) rootEntries(b []byte, size int) []uint64 {
	body := b[SDT_HEADER_LENGTH:]
	n := len(body) / size

	if len(body)%size != 0 {
		t.warnf("acpi: %s at %#x has %d bytes after its %d entries; ignored", t.Root.Signature, t.Root.Addr, len(body)%size, n)
	}

	if n > MAX_ROOT_ENTRIES {
		t.warnf("acpi: %s at %#x lists %d tables; only the first %d are read", t.Root.Signature, t.Root.Addr, n, MAX_ROOT_ENTRIES)
		n = MAX_ROOT_ENTRIES
	}

	addrs := make([]uint64, n)

	for k := range addrs {
		if size == 8 {
			addrs[k] = le64(body, k*8)
		} else {
			addrs[k] = uint64(le32(body, k*4))
		}
	}

	return addrs
}

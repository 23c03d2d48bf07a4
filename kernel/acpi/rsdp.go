package acpi

import (
	"errors"
	"fmt"
	"strings"
)

// Root System Description Pointer (ACPI 6.5, 5.2.5.3) and where
// to look for it on IA-PC systems (5.2.5.1).
const (
	// RSDP_SIGNATURE starts the RSDP.
	RSDP_SIGNATURE = "RSD PTR "
	// RSDP_V1_LENGTH is the ACPI 1.0 RSDP, which the checksum covers.
	RSDP_V1_LENGTH = 20
	// RSDP_V2_LENGTH is the ACPI 2.0+ RSDP (revision 2), which the
	// extended checksum covers.
	RSDP_V2_LENGTH = 36
	// MAX_RSDP_LENGTH bounds the RSDP's Length field.
	MAX_RSDP_LENGTH = 4096

	RSDP_OFF_CHECKSUM          = 8  // u8 Checksum over the first 20 bytes
	RSDP_OFF_OEMID             = 9  // 6-byte OEMID
	RSDP_OFF_REVISION          = 15 // u8 Revision: 0 (ACPI 1.0) or 2
	RSDP_OFF_RSDT_ADDRESS      = 16 // u32 RsdtAddress
	RSDP_OFF_LENGTH            = 20 // u32 Length (revision 2)
	RSDP_OFF_XSDT_ADDRESS      = 24 // u64 XsdtAddress (revision 2)
	RSDP_OFF_EXTENDED_CHECKSUM = 32 // u8 Extended Checksum over Length bytes

	// EBDA_SEGMENT_PTR is the BIOS data area word (40:0Eh) holding the
	// real-mode segment of the Extended BIOS Data Area.
	EBDA_SEGMENT_PTR = 0x40E
	// EBDA_SCAN_LENGTH is how much of the EBDA is searched.
	EBDA_SCAN_LENGTH = 1024
	// BIOS_AREA_START and BIOS_AREA_END bound the BIOS read-only area
	// searched after the EBDA.
	BIOS_AREA_START = 0xE0000  // first byte searched
	BIOS_AREA_END   = 0x100000 // first byte not searched
	// RSDP_SCAN_ALIGN is the alignment of the RSDP in both areas.
	RSDP_SCAN_ALIGN = 16
)

// Where an RSDP came from (RSDP.Source).
const (
	SourceCopy     = "loader copy"    // the loader's copy (RSDPHint.Copy)
	SourceAddress  = "loader address" // the loader's address (RSDPHint.Addr)
	SourceEBDA     = "EBDA"           // found in the EBDA
	SourceBIOSArea = "BIOS area"      // found in 0xE0000-0xFFFFF
)

// RSDP is a validated Root System Description Pointer.
type RSDP struct {
	// Addr is the RSDP's physical address; 0 for a loader's copy.
	Addr uint64
	// Source says where it was found: SourceCopy, SourceAddress,
	// SourceEBDA or SourceBIOSArea.
	Source string
	// Revision is 0 for ACPI 1.0 and 2 for ACPI 2.0 and later.
	Revision uint8
	// OEMID identifies the firmware.
	OEMID string
	// RSDTAddr is the RSDT's physical address.
	RSDTAddr uint32
	// XSDTAddr is the XSDT's physical address (revision 2 and later).
	XSDTAddr uint64
	// Length is the length of the RSDP (revision 2 and later).
	Length uint32
}

// ParseRSDP validates and decodes an RSDP held in b (a loader's copy): the
// signature, the checksum over the first 20 bytes and, for revision 2 and
// later, the length and the extended checksum over that length.
func ParseRSDP(b []byte) (RSDP, error) {
	return parseRSDP(b, 0, SourceCopy)
}

func parseRSDP(b []byte, addr uint64, source string) (RSDP, error) {
	where := fmt.Sprintf("RSDP (%s)", source)
	if source != SourceCopy {
		where = fmt.Sprintf("RSDP at %#x (%s)", addr, source)
	}

	if len(b) < RSDP_V1_LENGTH {
		return RSDP{}, fmt.Errorf("acpi: %s: %d bytes, want at least %d", where, len(b), RSDP_V1_LENGTH)
	}

	if sig := string(b[:8]); sig != RSDP_SIGNATURE {
		return RSDP{}, fmt.Errorf("acpi: %s: signature is %q, want %q", where, sig, RSDP_SIGNATURE)
	}

	if sum := checksum(b[:RSDP_V1_LENGTH]); sum != 0 {
		return RSDP{}, fmt.Errorf("acpi: %s: checksum mismatch: the first %d bytes sum to %#02x, want 0", where, RSDP_V1_LENGTH, sum)
	}

	r := RSDP{
		Addr:     addr,
		Source:   source,
		Revision: b[RSDP_OFF_REVISION],
		OEMID:    string(b[RSDP_OFF_OEMID : RSDP_OFF_OEMID+6]),
		RSDTAddr: le32(b, RSDP_OFF_RSDT_ADDRESS),
	}

	if r.Revision < 2 {
		return r, nil
	}

	if len(b) < RSDP_V2_LENGTH {
		return RSDP{}, fmt.Errorf("acpi: %s: revision %d RSDP is %d bytes, want at least %d", where, r.Revision, len(b), RSDP_V2_LENGTH)
	}

	r.Length = le32(b, RSDP_OFF_LENGTH)
	r.XSDTAddr = le64(b, RSDP_OFF_XSDT_ADDRESS)

	if r.Length < RSDP_V2_LENGTH || r.Length > MAX_RSDP_LENGTH {
		return RSDP{}, fmt.Errorf("acpi: %s: revision %d RSDP has length %d, want %d to %d", where, r.Revision, r.Length, RSDP_V2_LENGTH, MAX_RSDP_LENGTH)
	}

	if uint64(r.Length) > uint64(len(b)) {
		return RSDP{}, fmt.Errorf("acpi: %s: length %d, but only %d bytes are there", where, r.Length, len(b))
	}

	if sum := checksum(b[:r.Length]); sum != 0 {
		return RSDP{}, fmt.Errorf("acpi: %s: extended checksum mismatch: the %d bytes sum to %#02x, want 0", where, r.Length, sum)
	}

	return r, nil
}

// ReadRSDP reads and validates the RSDP at physical address addr.
func ReadRSDP(mem Memory, addr uint64) (RSDP, error) {
	return readRSDP(mem, addr, SourceAddress)
}

func readRSDP(mem Memory, addr uint64, source string) (RSDP, error) {
	b := make([]byte, RSDP_V2_LENGTH)

	if err := read(mem, b[:RSDP_V1_LENGTH], addr); err != nil {
		return RSDP{}, fmt.Errorf("acpi: RSDP at %#x (%s): cannot read it: %w", addr, source, err)
	}

	if b[RSDP_OFF_REVISION] < 2 || string(b[:8]) != RSDP_SIGNATURE {
		return parseRSDP(b[:RSDP_V1_LENGTH], addr, source)
	}

	if err := read(mem, b[RSDP_V1_LENGTH:], addr+RSDP_V1_LENGTH); err != nil {
		return RSDP{}, fmt.Errorf("acpi: RSDP at %#x (%s): cannot read its revision %d fields: %w", addr, source, b[RSDP_OFF_REVISION], err)
	}

	if n := le32(b, RSDP_OFF_LENGTH); n > RSDP_V2_LENGTH && n <= MAX_RSDP_LENGTH {
		more := make([]byte, n-RSDP_V2_LENGTH)

		if err := read(mem, more, addr+RSDP_V2_LENGTH); err != nil {
			return RSDP{}, fmt.Errorf("acpi: RSDP at %#x (%s): cannot read its %d bytes: %w", addr, source, n, err)
		}

		b = append(b, more...)
	}

	return parseRSDP(b, addr, source)
}

// ScanRSDP looks for a valid RSDP where IA-PC firmware puts it (ACPI 6.5,
// 5.2.5.1): on a 16-byte boundary in the first KiB of the EBDA, whose
// segment is the word at physical 0x40E, then in the BIOS area
// 0xE0000-0xFFFFF. Candidates with a bad checksum are skipped. Unreadable
// memory (an unmapped page 0, a UEFI machine without these areas) is
// skipped, not an error, until nothing is left.
func ScanRSDP(mem Memory) (RSDP, error) {
	var (
		bad   []string
		areas []string
	)

	scan := func(base, length uint64, source string) (RSDP, bool) {
		const page = 4096

		for p := base; p < base+length; p = (p + page) &^ (page - 1) {
			n := min(base+length, (p+page)&^(page-1)) - p
			buf := make([]byte, n)

			if mem.ReadAt(buf, p) != nil {
				continue
			}

			for off := uint64(0); off+8 <= n; off += RSDP_SCAN_ALIGN {
				if string(buf[off:off+8]) != RSDP_SIGNATURE {
					continue
				}

				r, err := readRSDP(mem, p+off, source)
				if err == nil {
					return r, true
				}

				bad = append(bad, err.Error())
			}
		}

		return RSDP{}, false
	}

	var seg [2]byte

	if err := mem.ReadAt(seg[:], EBDA_SEGMENT_PTR); err != nil {
		areas = append(areas, fmt.Sprintf("EBDA pointer at %#x unreadable (%v)", EBDA_SEGMENT_PTR, err))
	} else if ebda := uint64(le16(seg[:], 0)) << 4; ebda > 0x400 && ebda < 0xA0000 {
		areas = append(areas, fmt.Sprintf("EBDA at %#x", ebda))

		if r, ok := scan(ebda&^(RSDP_SCAN_ALIGN-1), EBDA_SCAN_LENGTH, SourceEBDA); ok {
			return r, nil
		}
	} else {
		areas = append(areas, fmt.Sprintf("no EBDA (segment pointer %#x)", le16(seg[:], 0)))
	}

	areas = append(areas, fmt.Sprintf("BIOS area %#x-%#x", BIOS_AREA_START, BIOS_AREA_END-1))

	if r, ok := scan(BIOS_AREA_START, BIOS_AREA_END-BIOS_AREA_START, SourceBIOSArea); ok {
		return r, nil
	}

	msg := fmt.Sprintf("acpi: no valid RSDP found (searched: %s)", strings.Join(areas, ", "))
	if len(bad) > 0 {
		msg += "; rejected: " + strings.Join(bad, "; ")
	}

	return RSDP{}, errors.New(msg + "; on a UEFI machine the loader must pass the RSDP (multiboot2 ACPI tags)")
}

// FindRSDP returns the first valid RSDP among the physical addresses hints
// (zeros are skipped), else the one ScanRSDP finds.
func FindRSDP(mem Memory, hints ...uint64) (RSDP, error) {
	var errs []error

	for _, h := range hints {
		if h == 0 {
			continue
		}

		r, err := ReadRSDP(mem, h)
		if err == nil {
			return r, nil
		}

		errs = append(errs, err)
	}

	r, err := ScanRSDP(mem)
	if err != nil {
		return RSDP{}, errors.Join(append(errs, err)...)
	}

	return r, nil
}

// findRSDP is FindRSDP for Parse: the loader's copy, then its address,
// then the scan, with a warning for each hint that was bad.
func (t *Tables) findRSDP(mem Memory, hint RSDPHint) (RSDP, error) {
	var errs []error

	if hint.Copy != nil {
		r, err := ParseRSDP(hint.Copy)
		if err == nil {
			return r, nil
		}

		errs = append(errs, err)
	}

	if hint.Addr != 0 {
		r, err := ReadRSDP(mem, hint.Addr)
		if err == nil {
			for _, e := range errs {
				t.warnf("%v; used the loader's address instead", e)
			}

			return r, nil
		}

		errs = append(errs, err)
	}

	r, err := ScanRSDP(mem)
	if err != nil {
		return RSDP{}, errors.Join(append(errs, err)...)
	}

	for _, e := range errs {
		t.warnf("%v; found the RSDP by scanning instead", e)
	}

	return r, nil
}

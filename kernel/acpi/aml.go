package acpi

import (
	"bytes"
	"errors"
	"fmt"
)

// The few AML encodings needed to read \_S5 (ACPI 6.5, 20.2 "AML Grammar
// Definition").
const (
	AML_ZERO_OP         = 0x00   // ZeroOp (20.2.3)
	AML_ONE_OP          = 0x01   // OneOp
	AML_NAME_OP         = 0x08   // DefName := NameOp NameString DataRefObject (20.2.5.1)
	AML_BYTE_PREFIX     = 0x0A   // ByteConst := BytePrefix ByteData (20.2.3)
	AML_WORD_PREFIX     = 0x0B   // WordConst := WordPrefix WordData
	AML_DWORD_PREFIX    = 0x0C   // DWordConst := DWordPrefix DWordData
	AML_QWORD_PREFIX    = 0x0E   // QWordConst := QWordPrefix QWordData
	AML_PACKAGE_OP      = 0x12   // DefPackage := PackageOp PkgLength NumElements PackageElementList (20.2.5.4)
	AML_ONES_OP         = 0xFF   // OnesOp
	AML_ROOT_CHAR       = '\\'   // RootChar (20.2.2)
	AML_PKG_LENGTH_MAX  = 4      // PkgLength is 1 to 4 bytes (20.2.4)
	AML_S5_NAME         = "_S5_" // the NameSeg of \_S5
	AML_PKG_LENGTH_BITS = 0x30   // bits 5:4 of a multi-byte PkgLength's lead byte must be 0

	// PM1 control register bits (4.8 "ACPI Hardware Features", "PM1
	// Control Registers Fixed Hardware Feature Control Bits").
	SCI_EN        = 1 << 0               // SCI_EN: the machine is in ACPI mode
	SLP_TYP_SHIFT = 10                   // SLP_TYPx: bits 12:10
	SLP_TYP_MASK  = 0x7 << SLP_TYP_SHIFT // SLP_TYPx field
	SLP_EN        = 1 << 13              // SLP_EN: enter the sleep state
)

// ErrNoS5 is returned by FindS5 when the AML holds no \_S5 object at all.
var ErrNoS5 = errors.New("no Name(\\_S5, Package(){...}) object")

// SleepType holds the values to write to the SLP_TYPx fields of the PM1a and
// PM1b control registers to enter a sleep state (ACPI 6.5, 7.4.2 "\_Sx
// (System States)"): for \_S5, soft off.
type SleepType struct {
	// SlpTypA is SLP_TYPa, for PM1a_CNT.
	SlpTypA uint8
	// SlpTypB is SLP_TYPb, for PM1b_CNT.
	SlpTypB uint8
}

// SleepControl returns the PM1 control register value that enters the sleep
// state: current (the register's value as read) with SLP_TYPx set to slpTyp
// and SLP_EN set. For S5 on PM1a: SleepControl(inw(PM1a_CNT), s.SlpTypA),
// that is (current &^ SLP_TYP_MASK) | SlpTypA<<10 | SLP_EN.
func SleepControl(current uint16, slpTyp uint8) uint16 {
	return current&^(SLP_TYP_MASK|SLP_EN) | uint16(slpTyp)<<SLP_TYP_SHIFT&SLP_TYP_MASK | SLP_EN
}

// FindS5 finds the \_S5 object in AML (a DSDT's or SSDT's body, after the
// header) and returns its sleep type. It looks for the only form firmware
// uses, Name(_S5, Package(){a, b, ...}): NameOp, "_S5_" (optionally after
// the root prefix '\'), PackageOp, PkgLength, NumElements, then the first
// two elements as integer constants (ZeroOp, OneOp, BytePrefix, WordPrefix,
// DWordPrefix or QWordPrefix data). A one-element package holds SLP_TYPa in
// bits 7:0 and SLP_TYPb in bits 15:8 (old firmware). Each value must fit
// the 3-bit SLP_TYPx field.
//
// No AML is executed. A "_S5_" that does not parse (inside a string, a
// method, an object that is not a package) is skipped and the search goes
// on; the error reports the last such candidate when none parses, or
// ErrNoS5 when there was none.
func FindS5(aml []byte) (SleepType, error) {
	var last error

	for from := 0; from < len(aml); {
		k := bytes.Index(aml[from:], []byte(AML_S5_NAME))
		if k < 0 {
			break
		}

		pos := from + k
		from = pos + 1

		p := pos - 1
		if p >= 0 && aml[p] == AML_ROOT_CHAR {
			p--
		}

		if p < 0 || aml[p] != AML_NAME_OP {
			continue
		}

		s, err := parseS5Package(aml[pos+len(AML_S5_NAME):])
		if err == nil {
			return s, nil
		}

		last = fmt.Errorf("\\_S5 at AML offset %#x: %w", pos, err)
	}

	if last != nil {
		return SleepType{}, last
	}

	return SleepType{}, ErrNoS5
}

// parseS5Package decodes the package that follows "_S5_".
func parseS5Package(b []byte) (SleepType, error) {
	if len(b) == 0 {
		return SleepType{}, errors.New("the AML ends after the name")
	}

	if b[0] != AML_PACKAGE_OP {
		return SleepType{}, fmt.Errorf("the object is opcode %#02x, not a Package (%#02x)", b[0], AML_PACKAGE_OP)
	}

	length, n, err := pkgLength(b[1:])
	if err != nil {
		return SleepType{}, err
	}

	// PkgLength counts itself and what follows it, not the PackageOp.
	if length < n {
		return SleepType{}, fmt.Errorf("package length %d is shorter than its own %d-byte encoding", length, n)
	}

	end := 1 + length
	if end > len(b) {
		return SleepType{}, fmt.Errorf("package length %d runs past the end of the AML (%d bytes left)", length, len(b)-1)
	}

	pkg := b[1+n : end]

	if len(pkg) == 0 {
		return SleepType{}, errors.New("the package has no NumElements byte")
	}

	count, elems := int(pkg[0]), pkg[1:]

	if count == 0 {
		return SleepType{}, errors.New("the package is empty")
	}

	var vals [2]uint64

	want := min(count, 2)

	for k := 0; k < want; k++ {
		v, used, err := amlInteger(elems)
		if err != nil {
			return SleepType{}, fmt.Errorf("element %d: %w", k, err)
		}

		vals[k], elems = v, elems[used:]
	}

	if count == 1 {
		// Old firmware: one integer, SLP_TYPa in bits 7:0, SLP_TYPb in
		// bits 15:8.
		vals[0], vals[1] = vals[0]&0xFF, vals[0]>>8&0xFF
	}

	for k, name := range []string{"SLP_TYPa", "SLP_TYPb"} {
		if vals[k] > SLP_TYP_MASK>>SLP_TYP_SHIFT {
			return SleepType{}, fmt.Errorf("%s is %#x, which does not fit the 3-bit SLP_TYPx field", name, vals[k])
		}
	}

	return SleepType{SlpTypA: uint8(vals[0]), SlpTypB: uint8(vals[1])}, nil
}

// pkgLength decodes a PkgLength (20.2.4): the lead byte's bits 7:6 give
// the number of bytes that follow (0 to 3). With none, bits 5:0 are the
// length; otherwise bits 3:0 are its low nibble, bits 5:4 must be zero and
// each following byte adds 8 more bits. It returns the length and the
// number of bytes the encoding used.
func pkgLength(b []byte) (length, used int, err error) {
	if len(b) == 0 {
		return 0, 0, errors.New("the AML ends before the PkgLength")
	}

	lead := b[0]
	follow := int(lead >> 6)

	if follow == 0 {
		return int(lead & 0x3F), 1, nil
	}

	if lead&AML_PKG_LENGTH_BITS != 0 {
		return 0, 0, fmt.Errorf("multi-byte PkgLength lead byte %#02x has reserved bits 5:4 set", lead)
	}

	if 1+follow > len(b) {
		return 0, 0, fmt.Errorf("the AML ends inside a %d-byte PkgLength", 1+follow)
	}

	length = int(lead & 0x0F)

	for k := 1; k <= follow; k++ {
		length |= int(b[k]) << (4 + 8*(k-1))
	}

	return length, 1 + follow, nil
}

// amlInteger decodes an integer constant: ZeroOp, OneOp, OnesOp or a
// Byte/Word/DWord/QWord prefix and its data. It returns the value and the
// bytes used.
func amlInteger(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("the package ends before the element")
	}

	size := 0

	switch b[0] {
	case AML_ZERO_OP:
		return 0, 1, nil
	case AML_ONE_OP:
		return 1, 1, nil
	case AML_ONES_OP:
		return ^uint64(0), 1, nil
	case AML_BYTE_PREFIX:
		size = 1
	case AML_WORD_PREFIX:
		size = 2
	case AML_DWORD_PREFIX:
		size = 4
	case AML_QWORD_PREFIX:
		size = 8
	default:
		return 0, 0, fmt.Errorf("opcode %#02x is not an integer constant", b[0])
	}

	if 1+size > len(b) {
		return 0, 0, fmt.Errorf("the package ends inside a %d-byte integer", size)
	}

	var v uint64

	for k := size; k >= 1; k-- {
		v = v<<8 | uint64(b[k])
	}

	return v, 1 + size, nil
}

package acpitables

import (
	"fmt"
)

// The AML encodings the DSDT needs (ACPI 6.5, 20.2 "AML Grammar
// Definition"). Each encoder below returns the bytes of one term; nesting
// terms (Scope, Device, Package) prefix their contents with a PkgLength.
const (
	AML_ZERO_OP       = 0x00 // ZeroOp (20.2.3 "Data Objects Encoding")
	AML_ONE_OP        = 0x01 // OneOp
	AML_NAME_OP       = 0x08 // DefName := NameOp NameString DataRefObject (20.2.5.1)
	AML_BYTE_PREFIX   = 0x0A // ByteConst := BytePrefix ByteData (20.2.3)
	AML_WORD_PREFIX   = 0x0B // WordConst := WordPrefix WordData
	AML_DWORD_PREFIX  = 0x0C // DWordConst := DWordPrefix DWordData
	AML_STRING_PREFIX = 0x0D // String := StringPrefix AsciiCharList NullChar
	AML_QWORD_PREFIX  = 0x0E // QWordConst := QWordPrefix QWordData
	AML_SCOPE_OP      = 0x10 // DefScope := ScopeOp PkgLength NameString TermList (20.2.5.1)
	AML_PACKAGE_OP    = 0x12 // DefPackage := PackageOp PkgLength NumElements PackageElementList (20.2.5.4)
	AML_EXT_OP_PREFIX = 0x5B // ExtOpPrefix (20.2.5.2)
	AML_DEVICE_OP     = 0x82 // DefDevice := DeviceOp PkgLength NameString TermList; DeviceOp := ExtOpPrefix 0x82
	AML_ROOT_CHAR     = '\\' // RootChar (20.2.2 "Name Objects Encoding")

	// AML_NAME_SEG_LENGTH is the length of a NameSeg: a lead character
	// ('A'-'Z' or '_') and three name characters ('A'-'Z', '0'-'9' or
	// '_'); shorter ASL names are padded with '_'.
	AML_NAME_SEG_LENGTH = 4

	// AML_PKG_LENGTH_MAX is the largest PkgLength (20.2.4 "Package Length
	// Encoding"): 4 bytes, the lead byte giving 4 bits and each of the 3
	// following bytes 8.
	AML_PKG_LENGTH_MAX = 1<<28 - 1
)

// amlNameSeg returns the NameSeg for an ASL name of 1 to 4 characters,
// padded with '_' ("_S5" is "_S5_").
func amlNameSeg(name string) ([]byte, error) {
	if len(name) == 0 || len(name) > AML_NAME_SEG_LENGTH {
		return nil, fmt.Errorf("acpitables: AML name %q: a NameSeg has 1 to %d characters", name, AML_NAME_SEG_LENGTH)
	}

	seg := []byte("____")
	copy(seg, name)

	for k, c := range seg {
		lead := c >= 'A' && c <= 'Z' || c == '_'
		if !lead && (k == 0 || c < '0' || c > '9') {
			return nil, fmt.Errorf("acpitables: AML name %q: character %q at %d is not allowed (LeadNameChar is A-Z or _, NameChar adds 0-9)", name, c, k)
		}
	}

	return seg, nil
}

// amlNameString returns a NameString: an optional root prefix ('\') and one
// NameSeg. Paths of several segments are not needed here.
func amlNameString(path string) ([]byte, error) {
	if len(path) > 0 && path[0] == AML_ROOT_CHAR {
		seg, err := amlNameSeg(path[1:])
		if err != nil {
			return nil, err
		}

		return append([]byte{AML_ROOT_CHAR}, seg...), nil
	}

	return amlNameSeg(path)
}

// amlPkgLength returns the PkgLength encoding for a package whose contents
// after the PkgLength are n bytes long. The encoded value counts the
// PkgLength bytes themselves, so the encoding is the shortest of 1 to 4
// bytes whose range holds n plus its own size: one byte holds up to 63 in
// bits 5:0; with more bytes, bits 7:6 of the lead byte count the bytes that
// follow, its bits 3:0 are the low nibble (bits 5:4 stay 0) and each
// following byte adds 8 bits.
func amlPkgLength(n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("acpitables: AML package contents of %d bytes", n)
	}

	if n+1 <= 0x3F {
		return []byte{byte(n + 1)}, nil
	}

	for size := 2; size <= 4; size++ {
		total := n + size
		if total >= 1<<(4+8*(size-1)) {
			continue
		}

		b := make([]byte, size)
		b[0] = byte(size-1)<<6 | byte(total&0x0F)

		for k := 1; k < size; k++ {
			b[k] = byte(total >> (4 + 8*(k-1)))
		}

		return b, nil
	}

	return nil, fmt.Errorf("acpitables: AML package contents of %d bytes exceed the largest PkgLength (%d)", n, AML_PKG_LENGTH_MAX)
}

// amlPackaged returns op, the PkgLength of head+body, head and body: the
// shape of Scope, Device and Package.
func amlPackaged(op []byte, head, body []byte) ([]byte, error) {
	pl, err := amlPkgLength(len(head) + len(body))
	if err != nil {
		return nil, err
	}

	b := make([]byte, 0, len(op)+len(pl)+len(head)+len(body))
	b = append(b, op...)
	b = append(b, pl...)
	b = append(b, head...)

	return append(b, body...), nil
}

// amlInteger returns the shortest integer constant for v: ZeroOp, OneOp,
// or a Byte, Word, DWord or QWord prefix and the little-endian value.
func amlInteger(v uint64) []byte {
	switch {
	case v == 0:
		return []byte{AML_ZERO_OP}
	case v == 1:
		return []byte{AML_ONE_OP}
	case v <= 0xFF:
		return []byte{AML_BYTE_PREFIX, byte(v)}
	case v <= 0xFFFF:
		return []byte{AML_WORD_PREFIX, byte(v), byte(v >> 8)}
	case v <= 0xFFFFFFFF:
		return []byte{AML_DWORD_PREFIX, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	}

	b := []byte{AML_QWORD_PREFIX}
	for k := 0; k < 8; k++ {
		b = append(b, byte(v>>(8*k)))
	}

	return b
}

// amlString returns a String constant; s must be ASCII without NUL.
func amlString(s string) ([]byte, error) {
	for k := 0; k < len(s); k++ {
		if s[k] == 0 || s[k] > 0x7F {
			return nil, fmt.Errorf("acpitables: AML string %q: byte %#02x at %d is not a non-NUL ASCII character", s, s[k], k)
		}
	}

	b := append([]byte{AML_STRING_PREFIX}, s...)

	return append(b, 0), nil
}

// amlEISAID returns the DWordConst of EisaId("PNPxxxx") (ASL, 19.6.35
// "EISAID"): the three letters compressed to 5 bits each (letter - 0x40)
// into a big-endian 16-bit value, followed by the four hex digits as two
// bytes, the whole stored in that byte order.
func amlEISAID(id string) ([]byte, error) {
	if len(id) != 7 {
		return nil, fmt.Errorf("acpitables: EISA ID %q: want 3 letters and 4 hex digits", id)
	}

	var v uint16

	for k := 0; k < 3; k++ {
		c := id[k]
		if c < 'A' || c > 'Z' {
			return nil, fmt.Errorf("acpitables: EISA ID %q: %q is not an upper-case letter", id, c)
		}

		v = v<<5 | uint16(c-0x40)
	}

	var digits [2]byte

	for k := 3; k < 7; k++ {
		var d byte

		switch c := id[k]; {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return nil, fmt.Errorf("acpitables: EISA ID %q: %q is not an upper-case hex digit", id, c)
		}

		digits[(k-3)/2] = digits[(k-3)/2]<<4 | d
	}

	return []byte{AML_DWORD_PREFIX, byte(v >> 8), byte(v), digits[0], digits[1]}, nil
}

// amlName returns Name(path, object).
func amlName(path string, object []byte) ([]byte, error) {
	ns, err := amlNameString(path)
	if err != nil {
		return nil, err
	}

	b := append([]byte{AML_NAME_OP}, ns...)

	return append(b, object...), nil
}

// amlPackage returns Package(){elements...}; each element is an encoded
// data object.
func amlPackage(elements ...[]byte) ([]byte, error) {
	if len(elements) > 0xFF {
		return nil, fmt.Errorf("acpitables: AML package of %d elements; NumElements is one byte", len(elements))
	}

	var body []byte
	for _, e := range elements {
		body = append(body, e...)
	}

	return amlPackaged([]byte{AML_PACKAGE_OP}, []byte{byte(len(elements))}, body)
}

// amlScope returns Scope(path){terms}.
func amlScope(path string, terms []byte) ([]byte, error) {
	ns, err := amlNameString(path)
	if err != nil {
		return nil, err
	}

	return amlPackaged([]byte{AML_SCOPE_OP}, ns, terms)
}

// amlDevice returns Device(name){terms}.
func amlDevice(name string, terms []byte) ([]byte, error) {
	ns, err := amlNameString(name)
	if err != nil {
		return nil, err
	}

	return amlPackaged([]byte{AML_EXT_OP_PREFIX, AML_DEVICE_OP}, ns, terms)
}

// amlWriter collects terms and keeps the first error, so that a sequence
// of encoders reads as the ASL it stands for.
type amlWriter struct {
	b   []byte
	err error
}

// add appends a term, or records err.
func (w *amlWriter) add(term []byte, err error) {
	if w.err != nil {
		return
	}

	if err != nil {
		w.err = err
		return
	}

	w.b = append(w.b, term...)
}

// must returns b, recording err; it lets an encoder's result be used as an
// argument.
func (w *amlWriter) must(b []byte, err error) []byte {
	if err != nil && w.err == nil {
		w.err = err
	}

	return b
}

package acpitables

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/keel-hv/keel/kernel/acpi"
)

// decodePkgLength decodes a PkgLength as the specification describes it
// (20.2.4), independently of amlPkgLength.
func decodePkgLength(b []byte) (length, used int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("no PkgLength")
	}

	follow := int(b[0] >> 6)
	if follow == 0 {
		return int(b[0] & 0x3F), 1, nil
	}

	if b[0]&0x30 != 0 {
		return 0, 0, fmt.Errorf("lead byte %#x has bits 5:4 set", b[0])
	}

	if len(b) < 1+follow {
		return 0, 0, fmt.Errorf("PkgLength truncated")
	}

	length = int(b[0] & 0x0F)
	for k := 1; k <= follow; k++ {
		length += int(b[k]) << (4 + 8*(k-1))
	}

	return length, 1 + follow, nil
}

func TestAMLPkgLength(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x01}},
		{10, []byte{0x0B}},
		{62, []byte{0x3F}},               // the largest 1-byte encoding: 63
		{63, []byte{0x41, 0x04}},         // 65 = 0x041
		{4093, []byte{0x4F, 0xFF}},       // 4095 = 0xFFF, the largest 2-byte encoding
		{4094, []byte{0x81, 0x00, 0x01}}, // 4097 = 0x01001
		{0xFFFFC, []byte{0x8F, 0xFF, 0xFF}},
		{0xFFFFD, []byte{0xC1, 0x00, 0x00, 0x01}},
		{AML_PKG_LENGTH_MAX - 4, []byte{0xCF, 0xFF, 0xFF, 0xFF}},
	}

	for _, tt := range tests {
		got, err := amlPkgLength(tt.n)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("amlPkgLength(%d) = % x, %v; want % x", tt.n, got, err, tt.want)
		}
	}

	for _, n := range []int{-1, AML_PKG_LENGTH_MAX - 3, AML_PKG_LENGTH_MAX} {
		if got, err := amlPkgLength(n); err == nil {
			t.Errorf("amlPkgLength(%d) = % x, want an error", n, got)
		}
	}

	// Every length round-trips through the specification's decoding,
	// which counts the PkgLength bytes themselves, and takes the
	// shortest encoding.
	check := func(n int) {
		b, err := amlPkgLength(n)
		if err != nil {
			t.Fatalf("amlPkgLength(%d): %v", n, err)
		}

		length, used, err := decodePkgLength(b)
		if err != nil || used != len(b) || length != n+len(b) {
			t.Fatalf("amlPkgLength(%d) = % x decodes to %d (%d bytes, %v), want %d", n, b, length, used, err, n+len(b))
		}

		shortest := 1
		for _, lim := range []int{0x3F, 0xFFF, 0xFFFFF} {
			if n+shortest > lim {
				shortest++
			}
		}

		if len(b) != shortest {
			t.Fatalf("amlPkgLength(%d) uses %d bytes, want %d", n, len(b), shortest)
		}
	}

	for n := 0; n < 0x11000; n++ {
		check(n)
	}

	for n := 0xFFF00; n < 0x100100; n++ {
		check(n)
	}
}

func TestAMLNameSeg(t *testing.T) {
	good := map[string]string{"_S5": "_S5_", "PCI0": "PCI0", "_SB": "_SB_", "C": "C___", "C0FE": "C0FE", "_": "____"}
	for in, want := range good {
		got, err := amlNameSeg(in)
		if err != nil || string(got) != want {
			t.Errorf("amlNameSeg(%q) = %q, %v; want %q", in, got, err, want)
		}
	}

	for _, in := range []string{"", "PCI00", "pci0", "0ABC", "A-B", "A B"} {
		if got, err := amlNameSeg(in); err == nil {
			t.Errorf("amlNameSeg(%q) = %q, want an error", in, got)
		}
	}

	if got, err := amlNameString(`\_SB`); err != nil || string(got) != `\_SB_` {
		t.Errorf(`amlNameString("\_SB") = %q, %v`, got, err)
	}
}

func TestAMLConstants(t *testing.T) {
	ints := []struct {
		v    uint64
		want []byte
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{2, []byte{0x0A, 0x02}},
		{7, []byte{0x0A, 0x07}},
		{0xFF, []byte{0x0A, 0xFF}},
		{0x100, []byte{0x0B, 0x00, 0x01}},
		{0x12345678, []byte{0x0C, 0x78, 0x56, 0x34, 0x12}},
		{0x1_0000_0000, []byte{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}},
	}

	for _, tt := range ints {
		if got := amlInteger(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("amlInteger(%#x) = % x, want % x", tt.v, got, tt.want)
		}
	}

	// EisaId("PNP0A03") is 0x030AD041 (the value ACPI tools print).
	if got, err := amlEISAID("PNP0A03"); err != nil || !bytes.Equal(got, []byte{0x0C, 0x41, 0xD0, 0x0A, 0x03}) {
		t.Errorf("amlEISAID(PNP0A03) = % x, %v", got, err)
	}

	if got, err := amlEISAID("PNP0C0C"); err != nil || !bytes.Equal(got, []byte{0x0C, 0x41, 0xD0, 0x0C, 0x0C}) {
		t.Errorf("amlEISAID(PNP0C0C) = % x, %v", got, err)
	}

	for _, bad := range []string{"PNP0A0", "pnp0A03", "PNP0a03", "PNP0G03", "P1P0A03"} {
		if got, err := amlEISAID(bad); err == nil {
			t.Errorf("amlEISAID(%q) = % x, want an error", bad, got)
		}
	}

	if got, err := amlString("ACPI0007"); err != nil || !bytes.Equal(got, append(append([]byte{0x0D}, "ACPI0007"...), 0)) {
		t.Errorf("amlString = % x, %v", got, err)
	}

	for _, bad := range []string{"a\x00b", "caf\xe9"} {
		if _, err := amlString(bad); err == nil {
			t.Errorf("amlString(%q) succeeded", bad)
		}
	}

	if _, err := amlPackage(make([][]byte, 256)...); err == nil {
		t.Errorf("a package of 256 elements was accepted")
	}
}

// amlObjects walks a TermList of the terms the DSDT uses (Name, Scope,
// Device) and returns the named data objects by path, and the devices.
// It checks every PkgLength ends exactly where its contents do.
type amlObjects struct {
	names   map[string]any // integer (uint64), string, package ([]any)
	devices []string
}

func walkAML(b []byte) (*amlObjects, error) {
	o := &amlObjects{names: map[string]any{}}
	return o, o.terms(b, "")
}

func (o *amlObjects) nameString(b []byte, scope string) (string, int, error) {
	n := 0
	if len(b) > 0 && b[0] == '\\' {
		scope, n = "", 1
	}

	if len(b) < n+4 {
		return "", 0, fmt.Errorf("truncated NameSeg")
	}

	seg := string(b[n : n+4])
	for k, c := range []byte(seg) {
		if !(c >= 'A' && c <= 'Z' || c == '_' || k > 0 && c >= '0' && c <= '9') {
			return "", 0, fmt.Errorf("bad NameSeg %q", seg)
		}
	}

	return scope + `\` + seg, n + 4, nil
}

// pkg returns the contents of the package whose PkgLength starts b, and
// the bytes it takes in all.
func pkg(b []byte) ([]byte, int, error) {
	length, used, err := decodePkgLength(b)
	if err != nil {
		return nil, 0, err
	}

	if length < used || length > len(b) {
		return nil, 0, fmt.Errorf("PkgLength %d with %d bytes left", length, len(b))
	}

	return b[used:length], length, nil
}

func (o *amlObjects) terms(b []byte, scope string) error {
	for len(b) > 0 {
		switch {
		case b[0] == AML_NAME_OP:
			path, n, err := o.nameString(b[1:], scope)
			if err != nil {
				return err
			}

			v, m, err := dataObject(b[1+n:])
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}

			if _, dup := o.names[path]; dup {
				return fmt.Errorf("%s defined twice", path)
			}

			o.names[path] = v
			b = b[1+n+m:]

		case b[0] == AML_SCOPE_OP:
			body, m, err := pkg(b[1:])
			if err != nil {
				return err
			}

			path, n, err := o.nameString(body, scope)
			if err != nil {
				return err
			}

			if err := o.terms(body[n:], path); err != nil {
				return err
			}

			b = b[1+m:]

		case len(b) > 1 && b[0] == AML_EXT_OP_PREFIX && b[1] == AML_DEVICE_OP:
			body, m, err := pkg(b[2:])
			if err != nil {
				return err
			}

			path, n, err := o.nameString(body, scope)
			if err != nil {
				return err
			}

			o.devices = append(o.devices, path)

			if err := o.terms(body[n:], path); err != nil {
				return err
			}

			b = b[2+m:]

		default:
			return fmt.Errorf("unexpected opcode %#x", b[0])
		}
	}

	return nil
}

func dataObject(b []byte) (any, int, error) {
	if len(b) == 0 {
		return nil, 0, fmt.Errorf("missing data object")
	}

	size := map[byte]int{AML_BYTE_PREFIX: 1, AML_WORD_PREFIX: 2, AML_DWORD_PREFIX: 4, AML_QWORD_PREFIX: 8}

	switch op := b[0]; op {
	case AML_ZERO_OP:
		return uint64(0), 1, nil
	case AML_ONE_OP:
		return uint64(1), 1, nil
	case AML_BYTE_PREFIX, AML_WORD_PREFIX, AML_DWORD_PREFIX, AML_QWORD_PREFIX:
		n := size[op]
		if len(b) < 1+n {
			return nil, 0, fmt.Errorf("truncated integer")
		}

		var v uint64
		for k := n; k >= 1; k-- {
			v = v<<8 | uint64(b[k])
		}

		return v, 1 + n, nil
	case AML_STRING_PREFIX:
		end := bytes.IndexByte(b, 0)
		if end < 0 {
			return nil, 0, fmt.Errorf("unterminated string")
		}

		return string(b[1:end]), end + 1, nil
	case AML_PACKAGE_OP:
		body, m, err := pkg(b[1:])
		if err != nil {
			return nil, 0, err
		}

		if len(body) == 0 {
			return nil, 0, fmt.Errorf("package without NumElements")
		}

		count, rest := int(body[0]), body[1:]

		var elems []any

		for len(rest) > 0 {
			v, n, err := dataObject(rest)
			if err != nil {
				return nil, 0, err
			}

			elems, rest = append(elems, v), rest[n:]
		}

		if len(elems) != count {
			return nil, 0, fmt.Errorf("package of %d elements says %d", len(elems), count)
		}

		return elems, 1 + m, nil
	}

	return nil, 0, fmt.Errorf("unexpected data opcode %#x", b[0])
}

// checkDSDT walks the DSDT's AML and checks every object in it.
func checkDSDT(t testing.TB, c Config, dsdt []byte) {
	t.Helper()

	o, err := walkAML(dsdt[SDT_HEADER_LENGTH:])
	if err != nil {
		t.Fatalf("DSDT AML: %v", err)
	}

	slp := uint64(c.PM.SlpTypS5)
	want := map[string]any{
		`\_S5_`:           []any{slp, slp, uint64(0), uint64(0)},
		`\_SB_\PCI0\_HID`: uint64(0x030AD041),
		`\_SB_\PCI0\_UID`: uint64(0),
	}
	wantDevices := []string{`\_SB_\PCI0`}

	for k := 0; k < c.CPUs; k++ {
		dev := fmt.Sprintf(`\_SB_\C%03X`, k)
		want[dev+`\_HID`] = "ACPI0007"
		want[dev+`\_UID`] = uint64(k)
		wantDevices = append(wantDevices, dev)
	}

	if !reflect.DeepEqual(o.names, want) {
		var diff []string

		for p, v := range want {
			if !reflect.DeepEqual(o.names[p], v) {
				diff = append(diff, fmt.Sprintf("%s = %v, want %v", p, o.names[p], v))
			}
		}

		for p, v := range o.names {
			if _, ok := want[p]; !ok {
				diff = append(diff, fmt.Sprintf("unexpected %s = %v", p, v))
			}
		}

		t.Errorf("DSDT objects differ:\n%s", strings.Join(diff, "\n"))
	}

	if !reflect.DeepEqual(o.devices, wantDevices) {
		t.Errorf("DSDT devices %v, want %v", o.devices, wantDevices)
	}

	s5, err := acpi.FindS5(dsdt[SDT_HEADER_LENGTH:])
	if err != nil || s5.SlpTypA != c.PM.SlpTypS5 || s5.SlpTypB != c.PM.SlpTypS5 {
		t.Errorf("acpi.FindS5 = %+v, %v; want SLP_TYP %d", s5, err, c.PM.SlpTypS5)
	}
}

// TestDSDTLargeScope checks the 3-byte PkgLength of \_SB with many
// processors.
func TestDSDTLargeScope(t *testing.T) {
	c := DefaultConfig(MAX_CPUS, testPM)

	dsdt, err := buildDSDT(&c)
	if err != nil {
		t.Fatal(err)
	}

	if len(dsdt) < 0x1000 {
		t.Fatalf("DSDT for %d vCPUs is %d bytes, expected more than 4 KiB", MAX_CPUS, len(dsdt))
	}

	// ScopeOp, a 3-byte PkgLength, "_SB_".
	sb := bytes.Index(dsdt, []byte("_SB_"))
	if sb < 4 || dsdt[sb-4] != AML_SCOPE_OP {
		t.Fatalf("no ScopeOp with a 3-byte PkgLength before _SB_ at %d", sb)
	}

	if length, used, err := decodePkgLength(dsdt[sb-3:]); used != 3 || err != nil || sb-3+length != len(dsdt) {
		t.Errorf("\\_SB's PkgLength: %d in %d bytes (%v), want 3 bytes reaching the DSDT's end", length, used, err)
	}

	checkDSDT(t, c, dsdt)
}

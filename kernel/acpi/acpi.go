// Package acpi reads the firmware's ACPI tables (ACPI 6.5, chapter 5 "ACPI
// Software Programming Model") for what the kernel needs to bring up the
// machine and to turn it off:
//
//   - the RSDP, from the loader (a copy or an address) or found by scanning
//     the EBDA and the BIOS area (5.2.5);
//   - the XSDT, or the RSDT when there is no usable XSDT (5.2.7, 5.2.8);
//   - the MADT: local APICs and x2APICs (the CPUs), I/O APICs, interrupt
//     source overrides, NMI wiring (5.2.12);
//   - the FADT: PM timer, PM1 event and control blocks, reset register,
//     SCI and SMI command port, the DSDT's address (5.2.9);
//   - the \_S5 sleep type for soft-off, from the DSDT (or an SSDT)
//     without an AML interpreter (7.4.2, 20.2).
//
// # Trust
//
// Tables are firmware input and are treated as hostile: every pointer is a
// physical address read only through Memory, every length is bounded
// (MAX_TABLE_LENGTH, MAX_ROOT_ENTRIES, MAX_TOTAL_READ) before anything is
// allocated, every table's signature, length and checksum is checked before
// it is used, and no input makes the package panic. Errors name the table,
// its address and what failed. Parse fails only when it cannot find the
// RSDP or read the root table; a bad MADT, FADT or DSDT leaves that part of
// Tables nil and adds a warning.
//
// # Power off (S5)
//
// To turn the machine off, with Tables t:
//
//  1. If t.FADT.SMICmd != 0, t.FADT.ACPIEnable != 0 and SCI_EN is clear in
//     PM1a_CNT, the machine is in legacy mode: write ACPIEnable to the
//     SMI_CMD port and wait (up to a few seconds) for SCI_EN to read 1
//     (ACPI 6.5, 16.3 "Initialization", placing the system in ACPI mode).
//  2. Read PM1a_CNT (t.FADT.PM1aControl(), a 16-bit register, usually an
//     I/O port) and write SleepControl(value, t.S5.SlpTypA) back: SLP_TYPx
//     (bits 10-12) set to SLP_TYPa, SLP_EN (bit 13) set, other bits kept.
//     If PM1b_CNT exists, do the same there with SLP_TYPb.
//  3. The machine turns off; if it does not within a second, halt.
//
// On QEMU (pc and q35) \_S5 is Package {0, 0, 0, 0} and PM1a_CNT is port
// 0x604, so the write is 0x2000 (SLP_EN, SLP_TYP 0) to port 0x604.
//
// To reset, when t.FADT.ResetSupported(): write t.FADT.ResetValue to
// t.FADT.ResetReg (QEMU q35: 0x0F to I/O port 0xCF9).
//
// The package is pure Go and host-testable; the kernel implements Memory
// over its identity map.
package acpi

import (
	"errors"
	"fmt"
)

// Memory reads physical memory. The kernel implements it over its identity
// map; tests implement it over byte slices. It is the same interface as
// kernel/bootinfo's Memory, so one implementation serves both.
type Memory interface {
	// ReadAt copies len(p) bytes of physical memory starting at addr into
	// p. It returns an error, and must not panic, when any byte of
	// [addr, addr+len(p)) cannot be read (unmapped, outside RAM, or the
	// range wraps past 2^64).
	ReadAt(p []byte, addr uint64) error
}

// Limits on what firmware may claim. Anything larger is rejected before it
// is read.
const (
	// MAX_TABLE_LENGTH is the largest table accepted (large DSDTs are a
	// few hundred KiB).
	MAX_TABLE_LENGTH = 4 << 20
	// MAX_ROOT_ENTRIES is the most tables read from the XSDT or RSDT.
	MAX_ROOT_ENTRIES = 1024
	// MAX_TOTAL_READ is the most table bytes Parse reads in all; past it,
	// further tables are skipped with a warning.
	MAX_TOTAL_READ = 64 << 20
)

// RSDPHint is what the loader said about the RSDP (see kernel/bootinfo's
// Info.RSDP and Info.RSDPAddr).
type RSDPHint struct {
	// Addr is the RSDP's physical address (PVH rsdp_paddr), or 0.
	Addr uint64
	// Copy is a copy of the RSDP (multiboot2 ACPI old/new RSDP tags), or
	// nil.
	Copy []byte
}

// Tables is what Parse found.
type Tables struct {
	// RSDP is the Root System Description Pointer used.
	RSDP RSDP
	// Root is the header of the XSDT or RSDT whose entries were read.
	Root Header
	// Headers are the headers of every table that passed its checks, in
	// the root table's order, followed by the DSDT's.
	Headers []Header

	// MADT is the decoded MADT ("APIC"), nil if it is missing or bad.
	MADT *MADT
	// FADT is the decoded FADT ("FACP"), nil if it is missing or bad.
	FADT *FADT
	// S5 is the \_S5 sleep type, nil if it was not found.
	S5 *SleepType

	// Warnings describe every table that was skipped and why, and other
	// oddities that did not stop the parse.
	Warnings []string
}

func (t *Tables) warnf(format string, args ...any) {
	t.Warnings = append(t.Warnings, fmt.Sprintf(format, args...))
}

// Table returns the header of the first table with the given signature,
// and whether there is one. Read it with ReadTable(mem, h.Addr, sig).
func (t *Tables) Table(sig string) (Header, bool) {
	for _, h := range t.Headers {
		if h.Signature == sig {
			return h, true
		}
	}

	return Header{}, false
}

// Parse finds the RSDP (the loader's copy first, then its address, then a
// scan of the EBDA and BIOS area), reads the XSDT or RSDT, checks every
// table listed there and decodes the MADT, the FADT and \_S5 from the DSDT
// (or, failing that, from an SSDT).
//
// It returns an error only when no valid RSDP or root table is found; a
// missing or bad MADT, FADT or DSDT leaves MADT, FADT or S5 nil and is
// described in Warnings.
func Parse(mem Memory, hint RSDPHint) (*Tables, error) {
	t := &Tables{}

	rsdp, err := t.findRSDP(mem, hint)
	if err != nil {
		return nil, err
	}

	t.RSDP = rsdp

	entries, err := t.readRoot(mem)
	if err != nil {
		return nil, err
	}

	budget := MAX_TOTAL_READ
	seen := map[uint64]bool{}

	var ssdts []uint64

	for k, addr := range entries {
		where := fmt.Sprintf("%s entry %d", t.Root.Signature, k)

		if addr == 0 {
			t.warnf("acpi: %s is 0; skipped", where)
			continue
		}

		if seen[addr] {
			t.warnf("acpi: %s repeats table address %#x; skipped", where, addr)
			continue
		}

		seen[addr] = true

		b, h, err := readTableBudget(mem, addr, "", &budget)
		if err != nil {
			t.warnf("%v (%s); skipped", err, where)
			continue
		}

		t.Headers = append(t.Headers, h)

		switch h.Signature {
		case SIG_MADT:
			if t.MADT != nil {
				t.warnf("acpi: second MADT at %#x ignored", addr)
				break
			}

			m, err := decodeMADT(h, b, t.warnf)
			if err != nil {
				t.warnf("%v; no MADT", err)
				break
			}

			t.MADT = m

		case SIG_FADT:
			if t.FADT != nil {
				t.warnf("acpi: second FADT at %#x ignored", addr)
				break
			}

			f, err := decodeFADT(h, b)
			if err != nil {
				t.warnf("%v; no FADT", err)
				break
			}

			t.FADT = f

		case SIG_SSDT:
			ssdts = append(ssdts, addr)
		}
	}

	if t.MADT == nil {
		t.warnf("acpi: no usable MADT (%q): no CPU or interrupt controller information", SIG_MADT)
	} else {
		// Whether Online Capable is defined follows the ACPI version the
		// FADT declares, when there is one.
		t.MADT.applyOnlineCapable(onlineCapableDefined(t.FADT, t.MADT))
	}

	if t.FADT == nil {
		t.warnf("acpi: no usable FADT (%q): no PM timer, power-off or reset information", SIG_FADT)
		return t, nil
	}

	t.readS5(mem, ssdts, &budget)

	return t, nil
}

// readS5 reads the DSDT the FADT points to and looks for \_S5 there, then in
// the SSDTs.
func (t *Tables) readS5(mem Memory, ssdts []uint64, budget *int) {
	var addrs []uint64

	if x := t.FADT.XDSDT; x != 0 {
		addrs = append(addrs, x)
	}

	if d := uint64(t.FADT.DSDT); d != 0 && d != t.FADT.XDSDT {
		addrs = append(addrs, d)
	}

	if len(addrs) == 0 {
		t.warnf("acpi: FADT gives no DSDT address; no \\_S5")
	}

	var errs []error

	for k, addr := range addrs {
		b, h, err := readTableBudget(mem, addr, SIG_DSDT, budget)
		if err != nil {
			if k+1 < len(addrs) {
				t.warnf("%v; trying the FADT's other DSDT address", err)
			} else {
				t.warnf("%v; no DSDT", err)
			}

			continue
		}

		t.Headers = append(t.Headers, h)

		s5, err := FindS5(b[SDT_HEADER_LENGTH:])
		if err == nil {
			t.S5 = &s5
			return
		}

		errs = append(errs, fmt.Errorf("DSDT at %#x: %w", addr, err))

		break
	}

	for _, addr := range ssdts {
		b, _, err := readTableBudget(mem, addr, SIG_SSDT, budget)
		if err != nil {
			continue // already checked, and warned about, in Parse
		}

		s5, err := FindS5(b[SDT_HEADER_LENGTH:])
		if err == nil {
			t.S5 = &s5
			return
		}

		if !errors.Is(err, ErrNoS5) {
			errs = append(errs, fmt.Errorf("SSDT at %#x: %w", addr, err))
		}
	}

	if len(errs) > 0 {
		t.warnf("acpi: no usable \\_S5 sleep type, power-off through ACPI is not possible: %v", errors.Join(errs...))
	}
}

// onlineCapableDefined reports whether the MADT's Online Capable flag bit
// has meaning: it was added in ACPI 6.3, whose MADT is revision 5. The FADT's
// version (major revision, minor version) is the better witness, because
// ACPI 6.2 errata B tables carry MADT revision 45; without a FADT the MADT
// revision decides.
func onlineCapableDefined(f *FADT, m *MADT) bool {
	if f != nil {
		major, minor := f.Version()
		return major > 6 || (major == 6 && minor >= 3)
	}

	return m.Header.Revision >= MADT_REVISION_ONLINE_CAPABLE
}

func le16(b []byte, off int) uint16 {
	return uint16(b[off]) | uint16(b[off+1])<<8
}

func le32(b []byte, off int) uint32 {
	return uint32(le16(b, off)) | uint32(le16(b, off+2))<<16
}

func le64(b []byte, off int) uint64 {
	return uint64(le32(b, off)) | uint64(le32(b, off+4))<<32
}

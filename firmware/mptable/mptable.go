// Package mptable builds a guest's Intel MultiProcessor Specification
// tables (MP Specification 1.4, chapter 4 "MP Configuration Table"), for
// guests that look for processors and interrupt routing there rather than
// in ACPI (old kernels, Linux with acpi=off, small teaching kernels).
//
// From a Config it makes a byte image holding the MP Floating Pointer
// Structure (4.1) followed by the MP Configuration Table (4.2): one
// processor entry per vCPU (vCPU 0 the bootstrap processor), an ISA bus,
// the I/O APIC, one I/O interrupt assignment per ISA IRQ (with the
// configured overrides), and the local interrupts of every local APIC
// (ExtINT on LINT0, NMI on LINT1). Guests find the floating pointer by
// scanning 16-byte boundaries of the BIOS area 0xF0000-0xFFFFF, where the
// image must lie (DefaultConfig puts it at 0xF0000).
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package mptable

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
)

var le = binary.LittleEndian

// MP Floating Pointer Structure (MP Specification 1.4, 4.1, Table 4-1).
const (
	MPF_SIGNATURE    = "_MP_"
	MPF_LENGTH       = 16 // bytes; LENGTH counts 16-byte paragraphs
	MPF_ALIGN        = 16 // it lies on a 16-byte boundary
	MPF_OFF_PHYSPTR  = 4  // u32 PHYSICAL ADDRESS POINTER: the configuration table
	MPF_OFF_LENGTH   = 8  // u8 LENGTH, in paragraphs: 1
	MPF_OFF_SPEC_REV = 9  // u8 SPEC_REV
	MPF_OFF_CHECKSUM = 10 // u8 CHECKSUM over the 16 bytes
	MPF_OFF_FEATURE1 = 11 // u8 MP FEATURE INFORMATION BYTE 1: 0, a configuration table is present
	MPF_OFF_FEATURE2 = 12 // u8 MP FEATURE INFORMATION BYTE 2: bit 7 IMCRP

	// SPEC_REV_1_4 is the specification revision (1.4).
	SPEC_REV_1_4 = 4
)

// MP Configuration Table Header (4.2, Table 4-2).
const (
	PCMP_SIGNATURE       = "PCMP"
	PCMP_HEADER_LENGTH   = 44
	PCMP_OFF_LENGTH      = 4  // u16 BASE TABLE LENGTH
	PCMP_OFF_SPEC_REV    = 6  // u8 SPEC_REV
	PCMP_OFF_CHECKSUM    = 7  // u8 CHECKSUM over the base table
	PCMP_OFF_OEM_ID      = 8  // 8-byte OEM ID
	PCMP_OFF_PRODUCT_ID  = 16 // 12-byte PRODUCT ID
	PCMP_OFF_ENTRY_COUNT = 34 // u16 ENTRY COUNT
	PCMP_OFF_LAPIC_ADDR  = 36 // u32 ADDRESS OF LOCAL APIC

	// OEM_ID and PRODUCT_ID identify Keel, space-padded.
	OEM_ID     = "KEEL    "
	PRODUCT_ID = "KEELVM      "
)

// Base MP configuration table entries (4.3, Table 4-3).
const (
	ENTRY_PROCESSOR        = 0 // 4.3.1, 20 bytes
	ENTRY_BUS              = 1 // 4.3.2, 8 bytes
	ENTRY_IOAPIC           = 2 // 4.3.3, 8 bytes
	ENTRY_IO_INTERRUPT     = 3 // 4.3.4, 8 bytes
	ENTRY_LOCAL_INTERRUPT  = 4 // 4.3.5, 8 bytes
	PROCESSOR_ENTRY_LENGTH = 20
	OTHER_ENTRY_LENGTH     = 8

	// CPU FLAGS (Table 4-5).
	CPU_EN = 1 << 0 // usable
	CPU_BP = 1 << 1 // the bootstrap processor

	// I/O APIC FLAGS (Table 4-9).
	IOAPIC_EN = 1 << 0

	// BUS_TYPE_ISA is the bus type string of an ISA bus (Table 4-8),
	// space-padded to 6 bytes.
	BUS_TYPE_ISA = "ISA   "
	// ISA_BUS_ID is the ISA bus's ID.
	ISA_BUS_ID = 0

	// Interrupt types (Table 4-11).
	INT_TYPE_INT    = 0 // vectored interrupt, vector from the APIC redirection table
	INT_TYPE_NMI    = 1
	INT_TYPE_SMI    = 2
	INT_TYPE_EXTINT = 3 // vectored interrupt, vector from the 8259

	// I/O and local interrupt entry flags (Table 4-10): PO in bits 1:0,
	// EL in bits 3:2, with the same encoding as ACPI's MPS INTI flags.
	POLARITY_CONFORMS = 0x0
	POLARITY_HIGH     = 0x1
	POLARITY_RESERVED = 0x2
	POLARITY_LOW      = 0x3
	POLARITY_MASK     = 0x3
	TRIGGER_CONFORMS  = 0x0
	TRIGGER_EDGE      = 0x4
	TRIGGER_RESERVED  = 0x8
	TRIGGER_LEVEL     = 0xC
	TRIGGER_MASK      = 0xC

	// ALL_LOCAL_APICS as the destination of a local interrupt entry
	// means every local APIC.
	ALL_LOCAL_APICS = 0xFF
)

// Limits and defaults.
const (
	// MAX_CPUS is the most vCPUs: APIC IDs are 8 bits and 0xFF means
	// every local APIC.
	MAX_CPUS = 255
	// ISA_IRQS is the number of ISA IRQs; IRQ 2 (the 8259 cascade) gets
	// no entry.
	ISA_IRQS = 16
	// ISA_CASCADE_IRQ is the slave 8259's input on the master.
	ISA_CASCADE_IRQ = 2

	// BIOS_AREA_START and BIOS_AREA_END bound the area guests scan for
	// the floating pointer (4.0, "MP Floating Pointer Structure", the
	// BIOS ROM address space between 0xF0000 and 0xFFFFF).
	BIOS_AREA_START = 0xF0000
	BIOS_AREA_END   = 0x100000

	// DEFAULT_BASE and DEFAULT_SIZE are DefaultConfig's placement.
	DEFAULT_BASE = 0xF0000
	DEFAULT_SIZE = 0x10000

	// LAPIC_DEFAULT_VERSION is an integrated local APIC's version (0x1X);
	// IOAPIC_DEFAULT_VERSION the 82093AA I/O APIC's.
	LAPIC_DEFAULT_VERSION  = 0x14
	IOAPIC_DEFAULT_VERSION = 0x11
	// CPU_DEFAULT_SIGNATURE is family 6 (stepping 3:0, model 7:4, family
	// 11:8); CPU_DEFAULT_FEATURES are CPUID.1:EDX FPU (bit 0) and APIC
	// (bit 9).
	CPU_DEFAULT_SIGNATURE = 0x600
	CPU_DEFAULT_FEATURES  = 1<<0 | 1<<9
)

// IOAPIC describes the VM's I/O APIC.
type IOAPIC struct {
	// ID is its I/O APIC ID; Version its version register's low byte.
	ID      uint8
	Version uint8
	// Addr is the physical address of its registers.
	Addr uint32
	// GSIBase is the Global System Interrupt of its input 0, and Pins its
	// number of inputs; ISA IRQ n goes to input GSI(n)-GSIBase.
	GSIBase uint32
	Pins    uint32
}

// Override routes ISA IRQ IRQ to Global System Interrupt GSI with the
// given flags (POLARITY_* | TRIGGER_*), as an ACPI Interrupt Source
// Override does. IRQs without one go to the GSI of the same number with
// flags 0 (conforming to ISA: edge, active high).
type Override struct {
	IRQ   uint8
	GSI   uint32
	Flags uint16
}

// Range is a guest-physical range that the image must not overlap.
type Range struct {
	// Name says what is there, for error messages.
	Name string
	// Start is the first byte and Size the length.
	Start addr.GPA
	Size  uint64
}

// Config describes one VM's processors and interrupt wiring.
type Config struct {
	// CPUs is the number of vCPUs, 1 to MAX_CPUS; vCPU k has APIC ID k
	// and vCPU 0 is the bootstrap processor.
	CPUs int
	// LocalAPICAddr is the local APICs' physical address and
	// LocalAPICVersion their version.
	LocalAPICAddr    uint32
	LocalAPICVersion uint8
	// CPUSignature and CPUFeatures fill each processor entry (CPUID.1
	// EAX family/model/stepping and EDX).
	CPUSignature uint32
	CPUFeatures  uint32
	// IOAPIC is the VM's I/O APIC. On machines with an APIC bus (P6 and
	// older) its ID must differ from every local APIC ID; xAPIC guests
	// do not care.
	IOAPIC IOAPIC
	// Overrides route ISA IRQs elsewhere than identity; pass the same as
	// the ACPI tables' (the SCI's included) so both agree.
	Overrides []Override
	// Base is the guest-physical address of the image, 16-byte aligned
	// in the BIOS area, and Size the bytes reserved there.
	Base addr.GPA
	Size uint64
	// Reserved are other ranges (the ACPI tables...) the image must not
	// overlap.
	Reserved []Range
}

// DefaultConfig returns a PC-like configuration with cpus vCPUs: local
// APIC at 0xFEE00000, I/O APIC 0 at 0xFEC00000 with 24 inputs from GSI 0,
// IRQ 0 to GSI 2 and the SCI (IRQ 9) level-triggered active high, as
// acpitables.DefaultConfig has them; the image at 0xF0000-0xFFFFF.
func DefaultConfig(cpus int) Config {
	return Config{
		CPUs:             cpus,
		LocalAPICAddr:    0xFEE00000,
		LocalAPICVersion: LAPIC_DEFAULT_VERSION,
		CPUSignature:     CPU_DEFAULT_SIGNATURE,
		CPUFeatures:      CPU_DEFAULT_FEATURES,
		IOAPIC: IOAPIC{
			ID:      0,
			Version: IOAPIC_DEFAULT_VERSION,
			Addr:    0xFEC00000,
			GSIBase: 0,
			Pins:    24,
		},
		Overrides: []Override{
			{IRQ: 0, GSI: 2, Flags: POLARITY_HIGH | TRIGGER_EDGE},
			{IRQ: 9, GSI: 9, Flags: POLARITY_HIGH | TRIGGER_LEVEL},
		},
		Base: DEFAULT_BASE,
		Size: DEFAULT_SIZE,
	}
}

// Image is a VM's MP tables, ready to be copied into guest memory.
type Image struct {
	// Base is the guest-physical address of Bytes[0], where the floating
	// pointer is.
	Base addr.GPA
	// Bytes are the floating pointer and the configuration table.
	Bytes []byte
	// Table is the guest-physical address of the configuration table.
	Table addr.GPA
}

// GuestWriter writes guest memory; hv/mem's GuestMemory implements it.
type GuestWriter interface {
	// Write copies p to guest-physical address gpa.
	Write(gpa addr.GPA, p []byte) error
}

// Install copies the image into guest memory at im.Base.
func (im *Image) Install(mem GuestWriter) error {
	if err := mem.Write(im.Base, im.Bytes); err != nil {
		return fmt.Errorf("mptable: copying %d bytes of MP tables to %v: %w", len(im.Bytes), im.Base, err)
	}

	return nil
}

// route is one ISA IRQ's I/O APIC input and flags.
type route struct {
	irq   uint8
	pin   uint8
	flags uint16
}

// Build checks c and builds the VM's MP tables.
func Build(c Config) (*Image, error) {
	routes, err := c.check()
	if err != nil {
		return nil, err
	}

	const localInts = 2 // ExtINT on LINT0, NMI on LINT1

	entries := c.CPUs + 1 + 1 + len(routes) + localInts
	tableLen := PCMP_HEADER_LENGTH + c.CPUs*PROCESSOR_ENTRY_LENGTH + (entries-c.CPUs)*OTHER_ENTRY_LENGTH
	total := MPF_LENGTH + tableLen

	if uint64(total) > c.Size {
		return nil, fmt.Errorf("mptable: the MP tables for %d vCPUs need %d bytes, but the area at %v holds only %d (Config.Size); "+
			"give them a larger area or the VM fewer vCPUs", c.CPUs, total, c.Base, c.Size)
	}

	im := &Image{Base: c.Base, Bytes: make([]byte, total), Table: c.Base + MPF_LENGTH}

	t := im.Bytes[MPF_LENGTH:]
	off := PCMP_HEADER_LENGTH

	next := func(n int) []byte {
		e := t[off : off+n]
		off += n

		return e
	}

	for k := 0; k < c.CPUs; k++ {
		e := next(PROCESSOR_ENTRY_LENGTH)
		e[0] = ENTRY_PROCESSOR
		e[1] = byte(k)
		e[2] = c.LocalAPICVersion
		e[3] = CPU_EN
		if k == 0 {
			e[3] |= CPU_BP
		}
		le.PutUint32(e[4:], c.CPUSignature)
		le.PutUint32(e[8:], c.CPUFeatures)
	}

	e := next(OTHER_ENTRY_LENGTH)
	e[0], e[1] = ENTRY_BUS, ISA_BUS_ID
	copy(e[2:], BUS_TYPE_ISA)

	e = next(OTHER_ENTRY_LENGTH)
	e[0], e[1], e[2], e[3] = ENTRY_IOAPIC, c.IOAPIC.ID, c.IOAPIC.Version, IOAPIC_EN
	le.PutUint32(e[4:], c.IOAPIC.Addr)

	for _, r := range routes {
		e := next(OTHER_ENTRY_LENGTH)
		e[0], e[1] = ENTRY_IO_INTERRUPT, INT_TYPE_INT
		le.PutUint16(e[2:], r.flags)
		e[4], e[5], e[6], e[7] = ISA_BUS_ID, r.irq, c.IOAPIC.ID, r.pin
	}

	for lint, typ := range []byte{INT_TYPE_EXTINT, INT_TYPE_NMI} {
		e := next(OTHER_ENTRY_LENGTH)
		e[0], e[1] = ENTRY_LOCAL_INTERRUPT, typ
		e[4], e[5], e[6], e[7] = ISA_BUS_ID, 0, ALL_LOCAL_APICS, byte(lint)
	}

	copy(t, PCMP_SIGNATURE)
	le.PutUint16(t[PCMP_OFF_LENGTH:], uint16(tableLen))
	t[PCMP_OFF_SPEC_REV] = SPEC_REV_1_4
	copy(t[PCMP_OFF_OEM_ID:], OEM_ID)
	copy(t[PCMP_OFF_PRODUCT_ID:], PRODUCT_ID)
	le.PutUint16(t[PCMP_OFF_ENTRY_COUNT:], uint16(entries))
	le.PutUint32(t[PCMP_OFF_LAPIC_ADDR:], c.LocalAPICAddr)
	t[PCMP_OFF_CHECKSUM] = checksum(t)

	// Feature byte 2 stays 0: no IMCR, the machine starts in virtual
	// wire mode.
	f := im.Bytes[:MPF_LENGTH]
	copy(f, MPF_SIGNATURE)
	le.PutUint32(f[MPF_OFF_PHYSPTR:], uint32(im.Table))
	f[MPF_OFF_LENGTH] = MPF_LENGTH / 16
	f[MPF_OFF_SPEC_REV] = SPEC_REV_1_4
	f[MPF_OFF_CHECKSUM] = checksum(f)

	return im, nil
}

// checksum returns the byte that makes b sum to 0 when stored in a byte of
// b that is currently 0.
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}

	return -sum
}

// check validates c and returns the ISA IRQ routes.
func (c *Config) check() ([]route, error) {
	var errs []error

	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("mptable: "+format, args...))
	}

	switch {
	case c.CPUs < 1:
		bad("Config.CPUs is %d: a VM needs at least one vCPU", c.CPUs)
	case c.CPUs > MAX_CPUS:
		bad("Config.CPUs is %d: APIC IDs are 8 bits, so at most %d vCPUs are possible", c.CPUs, MAX_CPUS)
	}

	if c.LocalAPICAddr == 0 {
		bad("Config.LocalAPICAddr is 0: give the local APIC's address (usually 0xfee00000)")
	}

	io := c.IOAPIC
	if io.Addr == 0 {
		bad("Config.IOAPIC.Addr is 0: give the I/O APIC's address (usually 0xfec00000)")
	}

	if io.Pins == 0 || io.Pins > 0x100 {
		bad("Config.IOAPIC.Pins is %d: want 1 to 256 inputs (usually 24)", io.Pins)
	}

	var routes []route

	byIRQ := map[uint8]int{}
	for k, o := range c.Overrides {
		if o.IRQ >= ISA_IRQS {
			bad("Config.Overrides[%d] names IRQ %d: ISA IRQs are 0 to %d", k, o.IRQ, ISA_IRQS-1)
			continue
		}

		if j, dup := byIRQ[o.IRQ]; dup {
			bad("Config.Overrides[%d] and [%d] both name IRQ %d", j, k, o.IRQ)
		}

		if o.Flags&^(POLARITY_MASK|TRIGGER_MASK) != 0 || o.Flags&POLARITY_MASK == POLARITY_RESERVED || o.Flags&TRIGGER_MASK == TRIGGER_RESERVED {
			bad("Config.Overrides[%d] (IRQ %d) has flags %#x: want POLARITY_* | TRIGGER_*, without the reserved values", k, o.IRQ, o.Flags)
		}

		byIRQ[o.IRQ] = k
	}

	pins := map[uint32]uint8{}

	for irq := uint8(0); irq < ISA_IRQS; irq++ {
		if irq == ISA_CASCADE_IRQ {
			if _, ok := byIRQ[irq]; ok {
				bad("Config.Overrides names IRQ %d, the 8259 cascade, which carries no device interrupt", irq)
			}

			continue
		}

		gsi, flags := uint32(irq), uint16(0)
		if k, ok := byIRQ[irq]; ok {
			gsi, flags = c.Overrides[k].GSI, c.Overrides[k].Flags
		}

		if gsi < io.GSIBase || uint64(gsi)-uint64(io.GSIBase) >= uint64(io.Pins) {
			bad("IRQ %d goes to GSI %d, which the I/O APIC (GSI base %d, %d inputs) does not have; add or fix its override", irq, gsi, io.GSIBase, io.Pins)
			continue
		}

		if other, taken := pins[gsi]; taken {
			bad("IRQ %d and IRQ %d both go to GSI %d", other, irq, gsi)
		}

		pins[gsi] = irq
		routes = append(routes, route{irq: irq, pin: uint8(gsi - io.GSIBase), flags: flags})
	}

	if uint64(c.Base)%MPF_ALIGN != 0 {
		bad("Config.Base %v is not 16-byte aligned, as the floating pointer must be", c.Base)
	}

	end, ok := c.Base.Add(c.Size)

	switch {
	case c.Size == 0:
		bad("Config.Size is 0: reserve an area for the MP tables (usually %#x bytes at %#x)", DEFAULT_SIZE, DEFAULT_BASE)
	case c.Base < BIOS_AREA_START || !ok || end > BIOS_AREA_END:
		bad("the area %v, %#x bytes, is not within the BIOS area %#x-%#x, where guests look for the MP floating pointer", c.Base, c.Size, BIOS_AREA_START, BIOS_AREA_END-1)
	default:
		for _, r := range c.Reserved {
			rend, rok := r.Start.Add(r.Size)
			if r.Size != 0 && ((rok && r.Start < end && c.Base < rend) || (!rok && end > r.Start)) {
				bad("the area %v-%#x overlaps %s at %v-%#x; move Config.Base", c.Base, uint64(end)-1, r.Name, r.Start, uint64(r.Start)+r.Size-1)
			}
		}
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	return routes, nil
}

// Package acpitables builds a guest's ACPI tables (ACPI 6.5, chapter 5
// "ACPI Software Programming Model"): from a Config describing one VM it
// makes a byte image to copy into guest memory at Config.Base, holding
//
//   - the RSDP (5.2.5), revision 2, pointing at both the XSDT and the RSDT;
//   - the XSDT (5.2.8) and, for old guests, the RSDT (5.2.7), each listing
//     the FADT and the MADT;
//   - the FADT (5.2.9), revision 6.3, 276 bytes: the PM device's PM1a
//     event, PM1a control and PM timer blocks (legacy ports and X_ Generic
//     Address Structures), the SCI, the reset register, the fixed power
//     button, and the FACS and DSDT addresses;
//   - the FACS (5.2.10), which OSPM requires when the platform is not
//     hardware-reduced;
//   - the MADT (5.2.12): one enabled local APIC per vCPU, the I/O APIC, the
//     ISA interrupt source overrides (with one for the SCI, level-triggered
//     and active-high) and LINT1 of every processor wired to NMI;
//   - a DSDT written directly in AML (chapter 20): \_S5 for soft-off, and
//     under \_SB a PCI host bridge and one processor device per vCPU.
//
// The guest finds the tables through the RSDP: put Image.RSDP in the boot
// protocol (Linux boot_params.acpi_rsdp_addr, PVH rsdp_paddr), or place the
// image in the BIOS area 0xE0000-0xFFFFF (DefaultConfig does), where the
// guest scans 16-byte boundaries for the RSDP signature. The memory map
// given to the guest must not report the image's range as usable RAM
// (E820 type 2 reserved, or 3 ACPI and 4 NVS).
//
// The package is pure Go and host-testable: it runs under plain `go test`.
// Its tests check the tables with kernel/acpi, the parser Keel uses for
// the host's own tables.
package acpitables

import (
	"errors"
	"fmt"
	"sort"

	"github.com/keel-hv/keel/hv/addr"
)

// Limits and defaults. The addresses are the PC ones (Intel 82093AA I/O
// APIC datasheet, 3.0; Intel SDM Vol. 3A, 11.4.1 "The Local APIC Block
// Diagram").
const (
	// MAX_CPUS is the most vCPUs: the Processor Local APIC structure has
	// 8-bit APIC IDs and 0xFF is the broadcast ID.
	MAX_CPUS = 255

	// LAPIC_DEFAULT_ADDR and IOAPIC_DEFAULT_ADDR are the local and I/O
	// APIC register windows; IOAPIC_DEFAULT_PINS the I/O APIC's
	// redirection entries. APIC_WINDOW is the size reserved for each
	// window when checking the table area does not overlap it.
	LAPIC_DEFAULT_ADDR  = 0xFEE00000
	IOAPIC_DEFAULT_ADDR = 0xFEC00000
	IOAPIC_DEFAULT_PINS = 24
	APIC_WINDOW         = 0x1000

	// SCI_DEFAULT_IRQ is the ISA IRQ of the SCI on PCs.
	SCI_DEFAULT_IRQ = 9

	// RESET_DEFAULT_PORT and RESET_DEFAULT_VALUE are the PCI Reset
	// Control Register (port 0xCF9) and its hard reset value (SYS_RST and
	// RST_CPU).
	RESET_DEFAULT_PORT  = 0xCF9
	RESET_DEFAULT_VALUE = 0x06

	// TABLES_DEFAULT_BASE and TABLES_DEFAULT_SIZE are where DefaultConfig
	// puts the tables: the low half of the BIOS area, 0xE0000-0xEFFFF,
	// where guests scan for the RSDP; 0xF0000-0xFFFFF stays free for the
	// MP tables.
	TABLES_DEFAULT_BASE = 0xE0000
	TABLES_DEFAULT_SIZE = 0x10000

	// TABLES_ALIGN is the alignment required of Config.Base: the FACS's
	// 64 bytes (the RSDP needs 16).
	TABLES_ALIGN = FACS_ALIGN

	// MAX_SLP_TYP is the largest SLP_TYP value: the field has 3 bits
	// (4.8.3.2.1 "PM1 Control Registers").
	MAX_SLP_TYP = 7

	// MIN_PM1_EVT_LEN and MIN_PM1_CNT_LEN are the smallest PM1 event and
	// control blocks (5.2.9): the event block is a status and an enable
	// register of at least 16 bits each.
	MIN_PM1_EVT_LEN = 4
	MIN_PM1_CNT_LEN = 2
	// MAX_PM_BLOCK_LEN keeps a block's bit width within the Generic
	// Address Structure's 8-bit Register Bit Width.
	MAX_PM_BLOCK_LEN = 31

	// ISA_IRQS is the number of ISA IRQs that overrides may name, and
	// ISA_CASCADE_IRQ the master 8259's input from the slave, which no
	// device uses.
	ISA_IRQS        = 16
	ISA_CASCADE_IRQ = 2
)

// Offsets of the tables in the image. The fixed-size tables come first;
// the MADT and the DSDT, which grow with the number of vCPUs, follow.
const (
	OFF_RSDP = 0x000 // RSDP, 36 bytes
	OFF_FACS = 0x040 // FACS, 64 bytes, 64-byte aligned
	OFF_XSDT = 0x080 // XSDT, 52 bytes
	OFF_RSDT = 0x0C0 // RSDT, 44 bytes
	OFF_FADT = 0x100 // FADT, 276 bytes
	OFF_MADT = 0x220 // MADT, 44 + 8*CPUs + 12 + 10*overrides + 6 bytes
	// The DSDT follows the MADT at the next multiple of TABLE_ALIGN.

	// TABLE_ALIGN aligns the variable-size tables.
	TABLE_ALIGN = 16
)

// IOAPIC describes the VM's I/O APIC.
type IOAPIC struct {
	// ID is its I/O APIC ID.
	ID uint8
	// Addr is the physical address of its registers.
	Addr uint32
	// GSIBase is the first Global System Interrupt it handles (input 0).
	GSIBase uint32
	// Pins is its number of inputs (redirection entries).
	Pins uint32
}

// Override is an ISA Interrupt Source Override (ACPI 6.5, 5.2.12.5): ISA
// IRQ IRQ is wired to Global System Interrupt GSI, with the MPS INTI flags
// Flags (polarity and trigger mode; 0 conforms to ISA: edge, active high).
type Override struct {
	IRQ   uint8
	GSI   uint32
	Flags uint16
}

// PMDevice is what the ACPI PM device model exports: the I/O ports and
// lengths of its fixed hardware register blocks (ACPI 6.5, 4.8 "ACPI
// Hardware Features") and the SLP_TYP value that it takes for soft-off.
type PMDevice struct {
	// PM1aEvt is the PM1a event block (PM1_STS then PM1_EN), PM1EvtLen
	// bytes, at least 4 and even.
	PM1aEvt   uint16
	PM1EvtLen uint8
	// PM1aCnt is the PM1a control block (PM1_CNT), PM1CntLen bytes, at
	// least 2.
	PM1aCnt   uint16
	PM1CntLen uint8
	// PMTmr is the PM timer (PM_TMR), PMTmrLen bytes, which must be 4.
	PMTmr    uint16
	PMTmrLen uint8
	// TimerExt reports a 32-bit PM timer (FADT TMR_VAL_EXT); else it
	// counts 24 bits.
	TimerExt bool
	// SlpTypS5 is the SLP_TYP value that, written with SLP_EN to PM1_CNT,
	// turns the VM off; it goes into \_S5.
	SlpTypS5 uint8
}

// Range is a guest-physical range that the tables must not overlap.
type Range struct {
	// Name says what is there, for error messages ("kernel", "MP table").
	Name string
	// Start is the first byte.
	Start addr.GPA
	// Size is the length in bytes.
	Size uint64
}

// Config describes one VM's platform for its ACPI tables.
type Config struct {
	// CPUs is the number of vCPUs, 1 to MAX_CPUS; vCPU k has APIC ID and
	// ACPI Processor UID k.
	CPUs int
	// LocalAPICAddr is the local APICs' physical address.
	LocalAPICAddr uint32
	// IOAPIC is the VM's I/O APIC.
	IOAPIC IOAPIC
	// Overrides are the ISA interrupt source overrides. Unless one names
	// SCIIRQ, Build adds one for the SCI: SCIIRQ to the GSI of the same
	// number, level-triggered, active high.
	Overrides []Override
	// SCIIRQ is the ISA IRQ of the SCI (FADT SCI_INT).
	SCIIRQ uint8
	// PM is the ACPI PM device's register blocks.
	PM PMDevice
	// ResetPort and ResetValue are the FADT reset register: writing
	// ResetValue to I/O port ResetPort resets the VM.
	ResetPort  uint16
	ResetValue uint8
	// Base is the guest-physical address of the image, a multiple of
	// TABLES_ALIGN, and Size the bytes reserved for it there. The area
	// must lie below 4 GiB (the RSDT and FADT hold 32-bit addresses).
	Base addr.GPA
	Size uint64
	// Reserved are other ranges of the guest's memory map (kernel,
	// command line, MP tables...) that the table area must not overlap.
	Reserved []Range
}

// DefaultConfig returns the configuration of a PC-like VM with cpus vCPUs
// and the given PM device: local APIC at 0xFEE00000, I/O APIC 0 at
// 0xFEC00000 with GSI base 0 and 24 inputs, IRQ 0 (the PIT) to GSI 2, SCI
// on IRQ 9, reset through port 0xCF9, tables in 0xE0000-0xEFFFF.
func DefaultConfig(cpus int, pm PMDevice) Config {
	return Config{
		CPUs:          cpus,
		LocalAPICAddr: LAPIC_DEFAULT_ADDR,
		IOAPIC: IOAPIC{
			ID:      0,
			Addr:    IOAPIC_DEFAULT_ADDR,
			GSIBase: 0,
			Pins:    IOAPIC_DEFAULT_PINS,
		},
		Overrides: []Override{
			{IRQ: 0, GSI: 2, Flags: MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_EDGE},
		},
		SCIIRQ:     SCI_DEFAULT_IRQ,
		PM:         pm,
		ResetPort:  RESET_DEFAULT_PORT,
		ResetValue: RESET_DEFAULT_VALUE,
		Base:       TABLES_DEFAULT_BASE,
		Size:       TABLES_DEFAULT_SIZE,
	}
}

// Table is where one table lies in an Image.
type Table struct {
	// Signature is the table's signature ("RSD PTR " for the RSDP).
	Signature string
	// GPA is its guest-physical address.
	GPA addr.GPA
	// Offset is its offset in Image.Bytes.
	Offset int
	// Length is its length in bytes.
	Length int
}

// Image is a VM's ACPI tables, ready to be copied into guest memory.
type Image struct {
	// Base is the guest-physical address of Bytes[0].
	Base addr.GPA
	// Bytes are the tables; copy them to Base.
	Bytes []byte
	// RSDP is the guest-physical address of the RSDP, for the boot
	// protocol.
	RSDP addr.GPA
	// Tables lists every table in the image, in address order.
	Tables []Table
}

// Table returns the table with the given signature and whether there is
// one.
func (im *Image) Table(sig string) (Table, bool) {
	for _, t := range im.Tables {
		if t.Signature == sig {
			return t, true
		}
	}

	return Table{}, false
}

// TableBytes returns the bytes of the table with the given signature, nil if
// there is none.
func (im *Image) TableBytes(sig string) []byte {
	t, ok := im.Table(sig)
	if !ok {
		return nil
	}

	return im.Bytes[t.Offset : t.Offset+t.Length]
}

// GuestWriter writes guest memory; hv/mem's GuestMemory implements it.
type GuestWriter interface {
	// Write copies p to guest-physical address gpa.
	Write(gpa addr.GPA, p []byte) error
}

// Install copies the image into guest memory at im.Base.
func (im *Image) Install(mem GuestWriter) error {
	if err := mem.Write(im.Base, im.Bytes); err != nil {
		return fmt.Errorf("acpitables: copying %d bytes of ACPI tables to %v: %w", len(im.Bytes), im.Base, err)
	}

	return nil
}

// Build checks c and builds the VM's ACPI tables.
func Build(c Config) (*Image, error) {
	overrides, err := c.check()
	if err != nil {
		return nil, err
	}

	dsdt, err := buildDSDT(&c)
	if err != nil {
		return nil, err
	}

	const rootEntries = 2 // FADT, MADT

	madtLen := madtLength(c.CPUs, len(overrides))
	offDSDT := alignUp(OFF_MADT+madtLen, TABLE_ALIGN)
	total := offDSDT + len(dsdt)

	if uint64(total) > c.Size {
		return nil, fmt.Errorf("acpitables: the ACPI tables for %d vCPUs need %d bytes, but the table area at %v holds only %d (Config.Size); "+
			"give the tables a larger area or the VM fewer vCPUs", c.CPUs, total, c.Base, c.Size)
	}

	im := &Image{
		Base:  c.Base,
		Bytes: make([]byte, total),
		RSDP:  c.Base + OFF_RSDP,
	}

	add := func(sig string, off, length int) []byte {
		im.Tables = append(im.Tables, Table{Signature: sig, GPA: c.Base + addr.GPA(off), Offset: off, Length: length})
		return im.Bytes[off : off+length]
	}
	gpa := func(off int) uint64 { return uint64(c.Base) + uint64(off) }

	putFACS(add(SIG_FACS, OFF_FACS, FACS_LENGTH))
	copy(add(SIG_DSDT, offDSDT, len(dsdt)), dsdt)
	putMADT(add(SIG_MADT, OFF_MADT, madtLen), &c, overrides)
	putFADT(add(SIG_FADT, OFF_FADT, FADT_LENGTH), &c, gpa(OFF_FACS), gpa(offDSDT))

	entries := []uint64{gpa(OFF_FADT), gpa(OFF_MADT)}
	putXSDT(add(SIG_XSDT, OFF_XSDT, xsdtLength(rootEntries)), entries)
	putRSDT(add(SIG_RSDT, OFF_RSDT, rsdtLength(rootEntries)), entries)
	putRSDP(add(RSDP_SIGNATURE, OFF_RSDP, RSDP_LENGTH), uint32(gpa(OFF_RSDT)), gpa(OFF_XSDT))

	sort.Slice(im.Tables, func(i, j int) bool { return im.Tables[i].Offset < im.Tables[j].Offset })

	return im, nil
}

func alignUp(n, align int) int { return (n + align - 1) &^ (align - 1) }

// check validates c and returns the overrides to write: c's, plus the
// SCI's when c has none for it.
func (c *Config) check() ([]Override, error) {
	var errs []error

	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("acpitables: "+format, args...))
	}

	switch {
	case c.CPUs < 1:
		bad("Config.CPUs is %d: a VM needs at least one vCPU", c.CPUs)
	case c.CPUs > MAX_CPUS:
		bad("Config.CPUs is %d: local APIC structures hold 8-bit APIC IDs, so at most %d vCPUs are possible", c.CPUs, MAX_CPUS)
	}

	if c.LocalAPICAddr == 0 {
		bad("Config.LocalAPICAddr is 0: give the local APIC's address (usually %#x)", LAPIC_DEFAULT_ADDR)
	}

	io := c.IOAPIC
	if io.Addr == 0 {
		bad("Config.IOAPIC.Addr is 0: give the I/O APIC's address (usually %#x)", IOAPIC_DEFAULT_ADDR)
	}

	if io.Pins == 0 || uint64(io.GSIBase)+uint64(io.Pins) > 1<<32 {
		bad("Config.IOAPIC has GSI base %d and %d inputs: want 1 or more inputs (usually %d) within 32-bit GSIs", io.GSIBase, io.Pins, IOAPIC_DEFAULT_PINS)
	}

	c.checkPM(bad)
	overrides := c.checkInterrupts(bad)
	c.checkPlacement(bad)

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	return overrides, nil
}

// checkPM checks the PM device's blocks, the reset port and \_S5.
func (c *Config) checkPM(bad func(string, ...any)) {
	pm := c.PM

	if pm.PM1EvtLen < MIN_PM1_EVT_LEN || pm.PM1EvtLen%2 != 0 || pm.PM1EvtLen > MAX_PM_BLOCK_LEN {
		bad("Config.PM.PM1EvtLen is %d: the PM1 event block is a status and an enable register, want an even length from %d to %d",
			pm.PM1EvtLen, MIN_PM1_EVT_LEN, MAX_PM_BLOCK_LEN-1)
	}

	if pm.PM1CntLen < MIN_PM1_CNT_LEN || pm.PM1CntLen > MAX_PM_BLOCK_LEN {
		bad("Config.PM.PM1CntLen is %d: want %d to %d", pm.PM1CntLen, MIN_PM1_CNT_LEN, MAX_PM_BLOCK_LEN)
	}

	if pm.PMTmrLen != PM_TMR_LEN {
		bad("Config.PM.PMTmrLen is %d: the PM timer block is %d bytes", pm.PMTmrLen, PM_TMR_LEN)
	}

	if pm.SlpTypS5 > MAX_SLP_TYP {
		bad("Config.PM.SlpTypS5 is %d: SLP_TYP is a 3-bit field, want 0 to %d", pm.SlpTypS5, MAX_SLP_TYP)
	}

	type block struct {
		name string
		port uint16
		len  uint8
	}

	blocks := []block{
		{"Config.PM.PM1aEvt (PM1a event block)", pm.PM1aEvt, pm.PM1EvtLen},
		{"Config.PM.PM1aCnt (PM1a control block)", pm.PM1aCnt, pm.PM1CntLen},
		{"Config.PM.PMTmr (PM timer)", pm.PMTmr, pm.PMTmrLen},
		{"Config.ResetPort (reset register)", c.ResetPort, 1},
	}

	for k, b := range blocks {
		if b.port == 0 {
			bad("%s is port 0: give the port the device model decodes", b.name)
			continue
		}

		if int(b.port)+int(b.len) > 1<<16 {
			bad("%s at port %#x, %d bytes, runs past port 0xffff", b.name, b.port, b.len)
		}

		for _, o := range blocks[:k] {
			if o.port != 0 && int(b.port) < int(o.port)+int(o.len) && int(o.port) < int(b.port)+int(b.len) {
				bad("%s at ports %#x-%#x overlaps %s at %#x-%#x", b.name, b.port, int(b.port)+int(b.len)-1, o.name, o.port, int(o.port)+int(o.len)-1)
			}
		}
	}
}

// checkInterrupts checks the SCI and the overrides and returns the
// overrides with the SCI's.
func (c *Config) checkInterrupts(bad func(string, ...any)) []Override {
	io := c.IOAPIC
	inRange := func(gsi uint32) bool {
		return gsi >= io.GSIBase && uint64(gsi) < uint64(io.GSIBase)+uint64(io.Pins)
	}

	if c.SCIIRQ == 0 || c.SCIIRQ == ISA_CASCADE_IRQ || c.SCIIRQ >= ISA_IRQS {
		bad("Config.SCIIRQ is %d: want an ISA IRQ from 1 to 15 other than 2 (the cascade), usually %d", c.SCIIRQ, SCI_DEFAULT_IRQ)
	}

	overrides := append([]Override(nil), c.Overrides...)
	sci := -1

	for k, o := range overrides {
		if o.IRQ >= ISA_IRQS {
			bad("Config.Overrides[%d] names IRQ %d: ISA IRQs are 0 to %d", k, o.IRQ, ISA_IRQS-1)
		}

		if !inRange(o.GSI) {
			bad("Config.Overrides[%d] sends IRQ %d to GSI %d, which the I/O APIC (GSIs %d to %d) does not have", k, o.IRQ, o.GSI, io.GSIBase, uint64(io.GSIBase)+uint64(io.Pins)-1)
		}

		if o.Flags&^(MPS_INTI_POLARITY_MASK|MPS_INTI_TRIGGER_MASK) != 0 ||
			o.Flags&MPS_INTI_POLARITY_MASK == MPS_INTI_POLARITY_RESERVED ||
			o.Flags&MPS_INTI_TRIGGER_MASK == MPS_INTI_TRIGGER_RESERVED {
			bad("Config.Overrides[%d] (IRQ %d) has flags %#x: want MPS_INTI_POLARITY_* | MPS_INTI_TRIGGER_*, without the reserved values", k, o.IRQ, o.Flags)
		}

		for j, p := range overrides[:k] {
			if p.IRQ == o.IRQ {
				bad("Config.Overrides[%d] and [%d] both name IRQ %d", j, k, o.IRQ)
			}

			if p.GSI == o.GSI {
				bad("Config.Overrides[%d] (IRQ %d) and [%d] (IRQ %d) both go to GSI %d", j, p.IRQ, k, o.IRQ, o.GSI)
			}
		}

		if o.IRQ == c.SCIIRQ {
			sci = k
		}
	}

	if sci >= 0 {
		if overrides[sci].Flags&MPS_INTI_TRIGGER_MASK != MPS_INTI_TRIGGER_LEVEL {
			bad("Config.Overrides[%d] makes the SCI (IRQ %d) edge-triggered: the SCI is level-triggered, use MPS_INTI_TRIGGER_LEVEL", sci, c.SCIIRQ)
		}

		return overrides
	}

	gsi := uint32(c.SCIIRQ)
	if !inRange(gsi) {
		bad("the SCI (IRQ %d) goes to GSI %d, which the I/O APIC (GSIs %d to %d) does not have; add an override for it", c.SCIIRQ, gsi, io.GSIBase, uint64(io.GSIBase)+uint64(io.Pins)-1)
	}

	for k, o := range overrides {
		if o.GSI == gsi {
			bad("Config.Overrides[%d] (IRQ %d) goes to GSI %d, which the SCI (IRQ %d) uses; add an override for the SCI", k, o.IRQ, gsi, c.SCIIRQ)
		}
	}

	return append(overrides, Override{IRQ: c.SCIIRQ, GSI: gsi, Flags: MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL})
}

// checkPlacement checks the table area against 4 GiB, the APIC windows
// and c.Reserved.
func (c *Config) checkPlacement(bad func(string, ...any)) {
	if uint64(c.Base)%TABLES_ALIGN != 0 {
		bad("Config.Base %v is not a multiple of %d (the FACS must be %d-byte aligned)", c.Base, TABLES_ALIGN, FACS_ALIGN)
	}

	if c.Size == 0 {
		bad("Config.Size is 0: reserve an area for the tables (usually %#x bytes)", TABLES_DEFAULT_SIZE)
		return
	}

	end, ok := c.Base.Add(c.Size)
	if !ok || end > 1<<32 {
		bad("the table area %v, %#x bytes, does not end below 4 GiB: the RSDT and the FADT hold 32-bit addresses", c.Base, c.Size)
		return
	}

	others := []Range{
		{Name: "the local APIC", Start: addr.GPA(c.LocalAPICAddr), Size: APIC_WINDOW},
		{Name: "the I/O APIC", Start: addr.GPA(c.IOAPIC.Addr), Size: APIC_WINDOW},
	}
	others = append(others, c.Reserved...)

	for _, r := range others {
		if r.Size == 0 {
			continue
		}

		rend, ok := r.Start.Add(r.Size)
		if (ok && r.Start < end && c.Base < rend) || (!ok && end > r.Start) {
			bad("the table area %v-%#x overlaps %s at %v-%#x; move Config.Base", c.Base, uint64(end)-1, r.Name, r.Start, uint64(r.Start)+r.Size-1)
		}
	}
}

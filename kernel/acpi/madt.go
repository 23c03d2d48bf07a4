package acpi

import (
	"fmt"
)

// Multiple APIC Description Table (ACPI 6.5, 5.2.12).
const (
	// MADT_OFF_LOCAL_APIC_ADDRESS and MADT_OFF_FLAGS follow the header
	// (5.2.12); the interrupt controller structures start at
	// MADT_OFF_ENTRIES.
	MADT_OFF_LOCAL_APIC_ADDRESS = 36 // u32 Local Interrupt Controller Address
	MADT_OFF_FLAGS              = 40 // u32 Flags (Multiple APIC Flags)
	MADT_OFF_ENTRIES            = 44 // the first interrupt controller structure

	// PCAT_COMPAT (Multiple APIC Flags, bit 0): the system also has dual 8259
	// PICs, which must be masked before the APICs are used.
	PCAT_COMPAT = 1 << 0

	// MADT_REVISION_ONLINE_CAPABLE is the first MADT revision (ACPI 6.3)
	// that defines the Online Capable flag.
	MADT_REVISION_ONLINE_CAPABLE = 5

	// Interrupt controller structure types (5.2.12) and the length of
	// each (the smallest accepted; longer entries are allowed and the
	// extra bytes are ignored).
	MADT_PROCESSOR_LOCAL_APIC               = 0   // 5.2.12.2
	MADT_IO_APIC                            = 1   // 5.2.12.3
	MADT_INTERRUPT_SOURCE_OVERRIDE          = 2   // 5.2.12.5
	MADT_NMI_SOURCE                         = 3   // 5.2.12.6
	MADT_LOCAL_APIC_NMI                     = 4   // 5.2.12.7
	MADT_LOCAL_APIC_ADDRESS_OVERRIDE        = 5   // 5.2.12.8
	MADT_PROCESSOR_LOCAL_X2APIC             = 9   // 5.2.12.12
	MADT_LOCAL_X2APIC_NMI                   = 0xA // 5.2.12.13
	MADT_PROCESSOR_LOCAL_APIC_LENGTH        = 8   // Processor Local APIC
	MADT_IO_APIC_LENGTH                     = 12  // I/O APIC
	MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH   = 10  // Interrupt Source Override
	MADT_NMI_SOURCE_LENGTH                  = 8   // NMI Source
	MADT_LOCAL_APIC_NMI_LENGTH              = 6   // Local APIC NMI
	MADT_LOCAL_APIC_ADDRESS_OVERRIDE_LENGTH = 12  // Local APIC Address Override
	MADT_PROCESSOR_LOCAL_X2APIC_LENGTH      = 16  // Processor Local x2APIC
	MADT_LOCAL_X2APIC_NMI_LENGTH            = 12  // Local x2APIC NMI

	// Local APIC Flags (5.2.12.2), also used by the x2APIC structure.
	LAPIC_ENABLED        = 1 << 0 // Enabled: ready for use
	LAPIC_ONLINE_CAPABLE = 1 << 1 // Online Capable: can be enabled at run time

	// MPS INTI Flags (5.2.12.5): polarity in bits 1:0, trigger mode in
	// bits 3:2.
	MPS_INTI_POLARITY_MASK     = 0x3 // Polarity field
	MPS_INTI_POLARITY_CONFORMS = 0x0 // conforms to the bus (ISA: active high)
	MPS_INTI_POLARITY_HIGH     = 0x1 // active high
	MPS_INTI_POLARITY_LOW      = 0x3 // active low
	MPS_INTI_TRIGGER_MASK      = 0xC // Trigger Mode field
	MPS_INTI_TRIGGER_CONFORMS  = 0x0 // conforms to the bus (ISA: edge)
	MPS_INTI_TRIGGER_EDGE      = 0x4 // edge-triggered
	MPS_INTI_TRIGGER_LEVEL     = 0xC // level-triggered

	// ALL_PROCESSORS_UID8 and ALL_PROCESSORS_UID32 are the ACPI
	// Processor UIDs in Local APIC NMI and Local x2APIC NMI structures
	// that mean every processor.
	ALL_PROCESSORS_UID8  = 0xFF       // in a Local APIC NMI structure
	ALL_PROCESSORS_UID32 = 0xFFFFFFFF // in a Local x2APIC NMI structure
)

// MADT is the decoded Multiple APIC Description Table.
type MADT struct {
	// Header is the table's header.
	Header Header
	// LocalAPICAddr is the physical address of the local APICs: the
	// 64-bit Local APIC Address Override when there is one, else the
	// 32-bit Local Interrupt Controller Address.
	LocalAPICAddr uint64
	// Flags are the Multiple APIC Flags.
	Flags uint32
	// PCATCompat reports PCAT_COMPAT: 8259 PICs are present too.
	PCATCompat bool

	// CPUs are the processors, from Processor Local APIC and Processor
	// Local x2APIC structures, in table order, without duplicate APIC
	// IDs. It includes disabled processors; see CPU.Usable.
	CPUs []CPU
	// IOAPICs are the I/O APICs.
	IOAPICs []IOAPIC
	// Overrides are the Interrupt Source Overrides.
	Overrides []InterruptOverride
	// NMISources are the NMI Source structures (GSIs wired to NMI).
	NMISources []NMISource
	// LocalNMIs are the Local APIC NMI and Local x2APIC NMI structures
	// (which LINT pin of which processor is wired to NMI).
	LocalNMIs []LocalNMI
}

// CPU is one processor's local APIC.
type CPU struct {
	// UID is the ACPI Processor UID (8 bits in a Local APIC structure,
	// 32 in an x2APIC one), which matches a processor device in the
	// DSDT.
	UID uint32
	// APICID is the processor's local APIC ID (x2APIC ID); IDs need not
	// be contiguous.
	APICID uint32
	// X2APIC reports that the CPU came from a Processor Local x2APIC
	// structure.
	X2APIC bool
	// Flags are the raw Local APIC Flags.
	Flags uint32
	// Enabled reports that the processor is ready for use (bit 0).
	Enabled bool
	// OnlineCapable reports that the processor is not enabled but the
	// hardware supports enabling it at run time (bit 1). It is only set
	// when the tables are ACPI 6.3 or later (see Parse); before that the
	// bit was reserved.
	OnlineCapable bool
}

// Usable reports whether the processor may be used: Enabled ones are
// present and ready to start with INIT-SIPI-SIPI; OnlineCapable ones are
// present but disabled, and the platform supports bringing them up later
// (hot-add), so they count towards the possible CPUs but should not be
// started at boot. A processor with neither flag is unusable and must be
// ignored (ACPI 6.5, 5.2.12.2 "Local APIC Flags").
func (c CPU) Usable() bool {
	return c.Enabled || c.OnlineCapable
}

// IOAPIC is one I/O APIC.
type IOAPIC struct {
	// ID is the I/O APIC's ID.
	ID uint8
	// Addr is the physical address of its registers.
	Addr uint32
	// GSIBase is the first Global System Interrupt it handles.
	GSIBase uint32
}

// InterruptOverride is an Interrupt Source Override: ISA IRQ Source is
// delivered to Global System Interrupt GSI with the given MPS INTI flags.
type InterruptOverride struct {
	// Bus is 0 (ISA).
	Bus uint8
	// Source is the bus-relative interrupt (the ISA IRQ).
	Source uint8
	// GSI is the Global System Interrupt it is delivered to.
	GSI uint32
	// Flags are the MPS INTI flags (polarity, trigger mode).
	Flags uint16
}

// Polarity returns the MPS_INTI_POLARITY_* bits of the flags.
func (o InterruptOverride) Polarity() uint16 { return o.Flags & MPS_INTI_POLARITY_MASK }

// Trigger returns the MPS_INTI_TRIGGER_* bits of the flags.
func (o InterruptOverride) Trigger() uint16 { return o.Flags & MPS_INTI_TRIGGER_MASK }

// NMISource is a Global System Interrupt wired to NMI.
type NMISource struct {
	// Flags are the MPS INTI flags.
	Flags uint16
	// GSI is the Global System Interrupt.
	GSI uint32
}

// LocalNMI says which local APIC LINT pin is wired to NMI.
type LocalNMI struct {
	// UID is the ACPI Processor UID, or ALL_PROCESSORS_UID32 for every
	// processor (an 8-bit 0xFF is widened to it).
	UID uint32
	// Flags are the MPS INTI flags.
	Flags uint16
	// LINT is the local APIC interrupt input, 0 or 1.
	LINT uint8
}

// ISAIRQ returns the Global System Interrupt and MPS INTI flags of ISA IRQ
// irq: those of its Interrupt Source Override, or irq itself with flags 0
// (conforming to the ISA bus: edge-triggered, active high) when there is
// none.
func (m *MADT) ISAIRQ(irq uint8) (gsi uint32, flags uint16) {
	for _, o := range m.Overrides {
		if o.Bus == 0 && o.Source == irq {
			return o.GSI, o.Flags
		}
	}

	return uint32(irq), 0
}

// UsableCPUs returns the number of CPUs for which Usable is true.
func (m *MADT) UsableCPUs() int {
	n := 0

	for _, c := range m.CPUs {
		if c.Usable() {
			n++
		}
	}

	return n
}

// ParseMADT validates (signature, length, checksum) and decodes a MADT held
// in table, for example one built for a guest. Oddities that do not stop
// the decoding (unknown or short entries, duplicate APIC IDs) are returned
// as warnings. The Online Capable flag is interpreted by the MADT's
// revision.
func ParseMADT(table []byte) (*MADT, []string, error) {
	h, b, err := parseHeader(table, SIG_MADT, 0)
	if err != nil {
		return nil, nil, err
	}

	var warnings []string

	m, err := decodeMADT(h, b, func(format string, args ...any) {
		warnings = append(warnings, fmt.Sprintf(format, args...))
	})
	if err != nil {
		return nil, warnings, err
	}

	m.applyOnlineCapable(h.Revision >= MADT_REVISION_ONLINE_CAPABLE)

	return m, warnings, nil
}

// decodeMADT decodes a MADT whose header has been checked. Bad entries are
// reported through warn and skipped; a structure that breaks the walk
// (length 0 or 1, or past the end) ends it.
func decodeMADT(h Header, b []byte, warn func(format string, args ...any)) (*MADT, error) {
	if len(b) < MADT_OFF_ENTRIES {
		return nil, fmt.Errorf("acpi: MADT at %#x: length %d is shorter than its %d-byte fixed part", h.Addr, len(b), MADT_OFF_ENTRIES)
	}

	m := &MADT{
		Header:        h,
		LocalAPICAddr: uint64(le32(b, MADT_OFF_LOCAL_APIC_ADDRESS)),
		Flags:         le32(b, MADT_OFF_FLAGS),
	}
	m.PCATCompat = m.Flags&PCAT_COMPAT != 0

	seen := map[uint32]int{}
	override := false

	addCPU := func(c CPU, off int) {
		if k, dup := seen[c.APICID]; dup {
			warn("acpi: MADT entry at offset %d repeats APIC ID %#x of CPU UID %d; ignored", off, c.APICID, m.CPUs[k].UID)
			return
		}

		seen[c.APICID] = len(m.CPUs)
		m.CPUs = append(m.CPUs, c)
	}

	for off := MADT_OFF_ENTRIES; off < len(b); {
		if off+2 > len(b) {
			warn("acpi: MADT at %#x: 1 stray byte at offset %d after the last entry", h.Addr, off)
			break
		}

		typ, length := b[off], int(b[off+1])

		if length < 2 {
			warn("acpi: MADT at %#x: entry type %d at offset %d has length %d; the remaining entries are ignored", h.Addr, typ, off, length)
			break
		}

		if off+length > len(b) {
			warn("acpi: MADT at %#x: entry type %d at offset %d of length %d runs past the table's end at %d; ignored", h.Addr, typ, off, length, len(b))
			break
		}

		e := b[off : off+length]

		short := func(want int) bool {
			if length < want {
				warn("acpi: MADT at %#x: entry type %d at offset %d has length %d, want %d; ignored", h.Addr, typ, off, length, want)
				return true
			}

			return false
		}

		switch typ {
		case MADT_PROCESSOR_LOCAL_APIC:
			if short(MADT_PROCESSOR_LOCAL_APIC_LENGTH) {
				break
			}

			c := CPU{UID: uint32(e[2]), APICID: uint32(e[3]), Flags: le32(e, 4)}

			// 0xFF is the xAPIC broadcast ID, never a processor's.
			if c.APICID == 0xFF {
				warn("acpi: MADT at %#x: local APIC entry at offset %d has APIC ID 0xff (broadcast); ignored", h.Addr, off)
				break
			}

			addCPU(c, off)

		case MADT_PROCESSOR_LOCAL_X2APIC:
			if short(MADT_PROCESSOR_LOCAL_X2APIC_LENGTH) {
				break
			}

			c := CPU{APICID: le32(e, 4), Flags: le32(e, 8), UID: le32(e, 12), X2APIC: true}

			if c.APICID == 0xFFFFFFFF {
				warn("acpi: MADT at %#x: x2APIC entry at offset %d has x2APIC ID 0xffffffff (broadcast); ignored", h.Addr, off)
				break
			}

			addCPU(c, off)

		case MADT_IO_APIC:
			if short(MADT_IO_APIC_LENGTH) {
				break
			}

			m.IOAPICs = append(m.IOAPICs, IOAPIC{ID: e[2], Addr: le32(e, 4), GSIBase: le32(e, 8)})

		case MADT_INTERRUPT_SOURCE_OVERRIDE:
			if short(MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH) {
				break
			}

			m.Overrides = append(m.Overrides, InterruptOverride{Bus: e[2], Source: e[3], GSI: le32(e, 4), Flags: le16(e, 8)})

		case MADT_NMI_SOURCE:
			if short(MADT_NMI_SOURCE_LENGTH) {
				break
			}

			m.NMISources = append(m.NMISources, NMISource{Flags: le16(e, 2), GSI: le32(e, 4)})

		case MADT_LOCAL_APIC_NMI:
			if short(MADT_LOCAL_APIC_NMI_LENGTH) {
				break
			}

			uid := uint32(e[2])
			if uid == ALL_PROCESSORS_UID8 {
				uid = ALL_PROCESSORS_UID32
			}

			m.LocalNMIs = append(m.LocalNMIs, LocalNMI{UID: uid, Flags: le16(e, 3), LINT: e[5]})

		case MADT_LOCAL_X2APIC_NMI:
			if short(MADT_LOCAL_X2APIC_NMI_LENGTH) {
				break
			}

			m.LocalNMIs = append(m.LocalNMIs, LocalNMI{UID: le32(e, 4), Flags: le16(e, 2), LINT: e[8]})

		case MADT_LOCAL_APIC_ADDRESS_OVERRIDE:
			if short(MADT_LOCAL_APIC_ADDRESS_OVERRIDE_LENGTH) {
				break
			}

			if override {
				warn("acpi: MADT at %#x: second local APIC address override at offset %d; ignored", h.Addr, off)
				break
			}

			override = true
			m.LocalAPICAddr = le64(e, 4)

		default:
			// Other interrupt models (SAPIC, GIC, ...) and newer
			// structures: not ours to use.
		}

		off += length
	}

	return m, nil
}

// applyOnlineCapable sets Enabled and OnlineCapable from each CPU's flags;
// defined says whether the Online Capable bit has meaning.
func (m *MADT) applyOnlineCapable(defined bool) {
	for k := range m.CPUs {
		c := &m.CPUs[k]
		c.Enabled = c.Flags&LAPIC_ENABLED != 0
		c.OnlineCapable = defined && !c.Enabled && c.Flags&LAPIC_ONLINE_CAPABLE != 0
	}
}

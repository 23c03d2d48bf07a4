package acpitables

import (
	"encoding/binary"
)

var le = binary.LittleEndian

// Root System Description Pointer (ACPI 6.5, 5.2.5.3).
const (
	RSDP_SIGNATURE             = "RSD PTR "
	RSDP_REVISION              = 2  // ACPI 2.0 and later: XSDT address, extended checksum
	RSDP_V1_LENGTH             = 20 // what Checksum covers
	RSDP_LENGTH                = 36 // what Extended Checksum covers
	RSDP_OFF_CHECKSUM          = 8  // u8 Checksum
	RSDP_OFF_OEMID             = 9  // 6-byte OEMID
	RSDP_OFF_REVISION          = 15 // u8 Revision
	RSDP_OFF_RSDT_ADDRESS      = 16 // u32 RsdtAddress
	RSDP_OFF_LENGTH            = 20 // u32 Length
	RSDP_OFF_XSDT_ADDRESS      = 24 // u64 XsdtAddress
	RSDP_OFF_EXTENDED_CHECKSUM = 32 // u8 Extended Checksum
)

// System Description Table Header (ACPI 6.5, 5.2.6) and the signatures and
// revisions of the tables built here. The revisions are those of ACPI 6.3,
// which the FADT declares (major 6, minor 3).
const (
	SDT_HEADER_LENGTH        = 36
	SDT_OFF_SIGNATURE        = 0  // 4-byte Signature
	SDT_OFF_LENGTH           = 4  // u32 Length
	SDT_OFF_REVISION         = 8  // u8 Revision
	SDT_OFF_CHECKSUM         = 9  // u8 Checksum
	SDT_OFF_OEMID            = 10 // 6-byte OEMID
	SDT_OFF_OEM_TABLE_ID     = 16 // 8-byte OEM Table ID
	SDT_OFF_OEM_REVISION     = 24 // u32 OEM Revision
	SDT_OFF_CREATOR_ID       = 28 // 4-byte Creator ID
	SDT_OFF_CREATOR_REVISION = 32 // u32 Creator Revision

	SIG_RSDT = "RSDT" // 5.2.7
	SIG_XSDT = "XSDT" // 5.2.8
	SIG_FADT = "FACP" // 5.2.9
	SIG_FACS = "FACS" // 5.2.10
	SIG_DSDT = "DSDT" // 5.2.11.1
	SIG_MADT = "APIC" // 5.2.12

	RSDT_REVISION = 1
	XSDT_REVISION = 1
	FADT_REVISION = 6 // FADT Major Version: ACPI 6.x
	FADT_MINOR    = 3 // FADT Minor Version: ACPI 6.3, errata 0
	MADT_REVISION = 5 // ACPI 6.3
	// DSDT_REVISION 2 makes AML integers 64 bits wide (5.2.11.1).
	DSDT_REVISION = 2

	// OEM_ID, OEM_TABLE_ID and CREATOR_ID identify Keel in every header.
	OEM_ID           = "KEEL  "
	OEM_TABLE_ID     = "KEELVM  "
	OEM_REVISION     = 1
	CREATOR_ID       = "KEEL"
	CREATOR_REVISION = 1
)

// Firmware ACPI Control Structure (ACPI 6.5, 5.2.10).
const (
	FACS_LENGTH         = 64
	FACS_ALIGN          = 64 // the FACS must be 64-byte aligned
	FACS_VERSION        = 2
	FACS_OFF_LENGTH     = 4  // u32 Length
	FACS_OFF_HW_SIG     = 8  // u32 Hardware Signature
	FACS_OFF_WAKING_VEC = 12 // u32 Firmware Waking Vector
	FACS_OFF_GLOBAL_LCK = 16 // u32 Global Lock
	FACS_OFF_FLAGS      = 20 // u32 Flags
	FACS_OFF_X_WAKING   = 24 // u64 X_Firmware_Waking_Vector
	FACS_OFF_VERSION    = 32 // u8 Version
)

// Fixed ACPI Description Table (ACPI 6.5, 5.2.9, Table 5.9): offsets of
// the fields written (the others stay 0), flags and boot architecture
// flags.
const (
	FADT_LENGTH = 276 // ACPI 6.0 and later

	FADT_OFF_FIRMWARE_CTRL   = 36  // u32 FIRMWARE_CTRL
	FADT_OFF_DSDT            = 40  // u32 DSDT
	FADT_OFF_PREFERRED_PM    = 45  // u8 Preferred_PM_Profile
	FADT_OFF_SCI_INT         = 46  // u16 SCI_INT
	FADT_OFF_SMI_CMD         = 48  // u32 SMI_CMD
	FADT_OFF_ACPI_ENABLE     = 52  // u8 ACPI_ENABLE
	FADT_OFF_ACPI_DISABLE    = 53  // u8 ACPI_DISABLE
	FADT_OFF_PM1A_EVT_BLK    = 56  // u32 PM1a_EVT_BLK
	FADT_OFF_PM1A_CNT_BLK    = 64  // u32 PM1a_CNT_BLK
	FADT_OFF_PM_TMR_BLK      = 76  // u32 PM_TMR_BLK
	FADT_OFF_PM1_EVT_LEN     = 88  // u8 PM1_EVT_LEN
	FADT_OFF_PM1_CNT_LEN     = 89  // u8 PM1_CNT_LEN
	FADT_OFF_PM_TMR_LEN      = 91  // u8 PM_TMR_LEN
	FADT_OFF_P_LVL2_LAT      = 96  // u16 P_LVL2_LAT
	FADT_OFF_P_LVL3_LAT      = 98  // u16 P_LVL3_LAT
	FADT_OFF_IAPC_BOOT_ARCH  = 109 // u16 IAPC_BOOT_ARCH
	FADT_OFF_FLAGS           = 112 // u32 Flags
	FADT_OFF_RESET_REG       = 116 // GAS RESET_REG
	FADT_OFF_RESET_VALUE     = 128 // u8 RESET_VALUE
	FADT_OFF_MINOR_VERSION   = 131 // u8 FADT Minor Version
	FADT_OFF_X_FIRMWARE_CTRL = 132 // u64 X_FIRMWARE_CTRL
	FADT_OFF_X_DSDT          = 140 // u64 X_DSDT
	FADT_OFF_X_PM1A_EVT_BLK  = 148 // GAS X_PM1a_EVT_BLK
	FADT_OFF_X_PM1A_CNT_BLK  = 172 // GAS X_PM1a_CNT_BLK
	FADT_OFF_X_PM_TMR_BLK    = 208 // GAS X_PM_TMR_BLK
	FADT_OFF_HYPERVISOR_ID   = 268 // u64 Hypervisor Vendor Identity

	// P_LVL2_LAT above 100 and P_LVL3_LAT above 1000 say that C2 and C3
	// are not supported.
	P_LVL2_LAT_NONE = 101
	P_LVL3_LAT_NONE = 1001

	// PM_TMR_LEN is 4 whenever the PM timer is supported.
	PM_TMR_LEN = 4

	// Fixed feature flags (Table 5.10).
	WBINVD          = 1 << 0  // WBINVD works: caches are flushed and invalidated
	PROC_C1         = 1 << 2  // C1 is supported on all processors
	PWR_BUTTON      = 1 << 4  // set: the power button is a control method device (clear: fixed feature)
	SLP_BUTTON      = 1 << 5  // set: the sleep button is a control method device or absent
	TMR_VAL_EXT     = 1 << 8  // the PM timer counts 32 bits, not 24
	RESET_REG_SUP   = 1 << 10 // RESET_REG is supported
	HW_REDUCED_ACPI = 1 << 20 // no fixed hardware: never set here

	// IA-PC Boot Architecture Flags (Table 5.11).
	LEGACY_DEVICES = 1 << 0 // LPC or ISA devices the OS cannot enumerate (serial, RTC, PIT, ...)
	IAPC_8042      = 1 << 1 // an 8042 keyboard controller (or its emulation)

	// HYPERVISOR_VENDOR_ID is the Hypervisor Vendor Identity: "KEEL".
	HYPERVISOR_VENDOR_ID = 0x4C45454B
)

// Generic Address Structure (ACPI 6.5, 5.2.3.2).
const (
	GAS_LENGTH          = 12
	ADDRESS_SPACE_IO    = 0x01 // System I/O
	ACCESS_SIZE_BYTE    = 1
	ACCESS_SIZE_WORD    = 2
	ACCESS_SIZE_DWORD   = 3
	GAS_OFF_SPACE_ID    = 0 // u8 Address Space ID
	GAS_OFF_BIT_WIDTH   = 1 // u8 Register Bit Width
	GAS_OFF_BIT_OFFSET  = 2 // u8 Register Bit Offset
	GAS_OFF_ACCESS_SIZE = 3 // u8 Access Size
	GAS_OFF_ADDRESS     = 4 // u64 Address
)

// Multiple APIC Description Table (ACPI 6.5, 5.2.12).
const (
	MADT_OFF_LOCAL_APIC_ADDRESS = 36 // u32 Local Interrupt Controller Address
	MADT_OFF_FLAGS              = 40 // u32 Flags
	MADT_OFF_ENTRIES            = 44 // interrupt controller structures

	PCAT_COMPAT = 1 << 0 // dual 8259s are present too

	MADT_PROCESSOR_LOCAL_APIC             = 0 // 5.2.12.2
	MADT_IO_APIC                          = 1 // 5.2.12.3
	MADT_INTERRUPT_SOURCE_OVERRIDE        = 2 // 5.2.12.5
	MADT_LOCAL_APIC_NMI                   = 4 // 5.2.12.7
	MADT_PROCESSOR_LOCAL_APIC_LENGTH      = 8
	MADT_IO_APIC_LENGTH                   = 12
	MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH = 10
	MADT_LOCAL_APIC_NMI_LENGTH            = 6

	LAPIC_ENABLED = 1 << 0 // Local APIC Flags: Enabled

	// ALL_PROCESSORS_UID in a Local APIC NMI structure means every
	// processor.
	ALL_PROCESSORS_UID = 0xFF

	// MPS INTI Flags (5.2.12.5, Table 5.26): polarity in bits 1:0,
	// trigger mode in bits 3:2.
	MPS_INTI_POLARITY_CONFORMS = 0x0
	MPS_INTI_POLARITY_HIGH     = 0x1
	MPS_INTI_POLARITY_RESERVED = 0x2
	MPS_INTI_POLARITY_LOW      = 0x3
	MPS_INTI_POLARITY_MASK     = 0x3
	MPS_INTI_TRIGGER_CONFORMS  = 0x0
	MPS_INTI_TRIGGER_EDGE      = 0x4
	MPS_INTI_TRIGGER_RESERVED  = 0x8
	MPS_INTI_TRIGGER_LEVEL     = 0xC
	MPS_INTI_TRIGGER_MASK      = 0xC
)

// checksum returns the byte that makes b sum to 0 when stored in a byte of
// b that is currently 0.
func checksum(b []byte) byte {
	var sum byte
	for _, c := range b {
		sum += c
	}

	return -sum
}

// sdtHeader writes a System Description Table Header at the start of t
// (len(t) is the table's length) and sets its checksum. The body must be
// written before.
func sdtHeader(t []byte, sig string, revision uint8) {
	copy(t[SDT_OFF_SIGNATURE:], sig)
	le.PutUint32(t[SDT_OFF_LENGTH:], uint32(len(t)))
	t[SDT_OFF_REVISION] = revision
	t[SDT_OFF_CHECKSUM] = 0
	copy(t[SDT_OFF_OEMID:], OEM_ID)
	copy(t[SDT_OFF_OEM_TABLE_ID:], OEM_TABLE_ID)
	le.PutUint32(t[SDT_OFF_OEM_REVISION:], OEM_REVISION)
	copy(t[SDT_OFF_CREATOR_ID:], CREATOR_ID)
	le.PutUint32(t[SDT_OFF_CREATOR_REVISION:], CREATOR_REVISION)
	t[SDT_OFF_CHECKSUM] = checksum(t)
}

// putGAS writes a Generic Address Structure for an I/O port register.
func putGAS(b []byte, port uint16, bitWidth, accessSize uint8) {
	b[GAS_OFF_SPACE_ID] = ADDRESS_SPACE_IO
	b[GAS_OFF_BIT_WIDTH] = bitWidth
	b[GAS_OFF_BIT_OFFSET] = 0
	b[GAS_OFF_ACCESS_SIZE] = accessSize
	le.PutUint64(b[GAS_OFF_ADDRESS:], uint64(port))
}

// putRSDP writes the RSDP into b (RSDP_LENGTH bytes).
func putRSDP(b []byte, rsdt uint32, xsdt uint64) {
	copy(b, RSDP_SIGNATURE)
	copy(b[RSDP_OFF_OEMID:], OEM_ID)
	b[RSDP_OFF_REVISION] = RSDP_REVISION
	le.PutUint32(b[RSDP_OFF_RSDT_ADDRESS:], rsdt)
	le.PutUint32(b[RSDP_OFF_LENGTH:], RSDP_LENGTH)
	le.PutUint64(b[RSDP_OFF_XSDT_ADDRESS:], xsdt)
	b[RSDP_OFF_CHECKSUM] = 0
	b[RSDP_OFF_EXTENDED_CHECKSUM] = 0
	b[RSDP_OFF_CHECKSUM] = checksum(b[:RSDP_V1_LENGTH])
	b[RSDP_OFF_EXTENDED_CHECKSUM] = checksum(b[:RSDP_LENGTH])
}

// putFACS writes the FACS into b (FACS_LENGTH bytes). No waking vector, no
// global lock, no S4BIOS: the FACS exists because OSPM requires one when
// the machine is not hardware-reduced.
func putFACS(b []byte) {
	copy(b, SIG_FACS)
	le.PutUint32(b[FACS_OFF_LENGTH:], FACS_LENGTH)
	b[FACS_OFF_VERSION] = FACS_VERSION
}

// xsdtLength and rsdtLength are the root tables' lengths for n entries.
func xsdtLength(n int) int { return SDT_HEADER_LENGTH + 8*n }
func rsdtLength(n int) int { return SDT_HEADER_LENGTH + 4*n }

// putXSDT writes the XSDT listing addrs into b (xsdtLength bytes).
func putXSDT(b []byte, addrs []uint64) {
	for k, a := range addrs {
		le.PutUint64(b[SDT_HEADER_LENGTH+8*k:], a)
	}

	sdtHeader(b, SIG_XSDT, XSDT_REVISION)
}

// putRSDT writes the RSDT listing addrs into b (rsdtLength bytes).
func putRSDT(b []byte, addrs []uint64) {
	for k, a := range addrs {
		le.PutUint32(b[SDT_HEADER_LENGTH+4*k:], uint32(a))
	}

	sdtHeader(b, SIG_RSDT, RSDT_REVISION)
}

// putFADT writes the FADT into b (FADT_LENGTH bytes).
func putFADT(b []byte, c *Config, facs, dsdt uint64) {
	pm := c.PM

	// FIRMWARE_CTRL only: at most one of FIRMWARE_CTRL and
	// X_FIRMWARE_CTRL may be non-zero (5.2.9), and the FACS is below
	// 4 GiB.
	le.PutUint32(b[FADT_OFF_FIRMWARE_CTRL:], uint32(facs))
	le.PutUint32(b[FADT_OFF_DSDT:], uint32(dsdt))
	le.PutUint64(b[FADT_OFF_X_DSDT:], dsdt)

	le.PutUint16(b[FADT_OFF_SCI_INT:], uint16(c.SCIIRQ))
	// SMI_CMD, ACPI_ENABLE and ACPI_DISABLE stay 0: the machine starts
	// in ACPI mode (SCI_EN set) and has no SMM.

	le.PutUint32(b[FADT_OFF_PM1A_EVT_BLK:], uint32(pm.PM1aEvt))
	le.PutUint32(b[FADT_OFF_PM1A_CNT_BLK:], uint32(pm.PM1aCnt))
	le.PutUint32(b[FADT_OFF_PM_TMR_BLK:], uint32(pm.PMTmr))
	b[FADT_OFF_PM1_EVT_LEN] = pm.PM1EvtLen
	b[FADT_OFF_PM1_CNT_LEN] = pm.PM1CntLen
	b[FADT_OFF_PM_TMR_LEN] = pm.PMTmrLen

	putGAS(b[FADT_OFF_X_PM1A_EVT_BLK:], pm.PM1aEvt, 8*pm.PM1EvtLen, ACCESS_SIZE_WORD)
	putGAS(b[FADT_OFF_X_PM1A_CNT_BLK:], pm.PM1aCnt, 8*pm.PM1CntLen, ACCESS_SIZE_WORD)
	putGAS(b[FADT_OFF_X_PM_TMR_BLK:], pm.PMTmr, 8*pm.PMTmrLen, ACCESS_SIZE_DWORD)

	le.PutUint16(b[FADT_OFF_P_LVL2_LAT:], P_LVL2_LAT_NONE)
	le.PutUint16(b[FADT_OFF_P_LVL3_LAT:], P_LVL3_LAT_NONE)
	le.PutUint16(b[FADT_OFF_IAPC_BOOT_ARCH:], LEGACY_DEVICES|IAPC_8042)

	// PWR_BUTTON clear: the power button is the fixed feature one
	// (PWRBTN_STS in PM1 status), which "vm stop" presses.
	flags := uint32(WBINVD | PROC_C1 | SLP_BUTTON | RESET_REG_SUP)
	if pm.TimerExt {
		flags |= TMR_VAL_EXT
	}

	le.PutUint32(b[FADT_OFF_FLAGS:], flags)

	putGAS(b[FADT_OFF_RESET_REG:], c.ResetPort, 8, ACCESS_SIZE_BYTE)
	b[FADT_OFF_RESET_VALUE] = c.ResetValue
	b[FADT_OFF_MINOR_VERSION] = FADT_MINOR
	le.PutUint64(b[FADT_OFF_HYPERVISOR_ID:], HYPERVISOR_VENDOR_ID)

	sdtHeader(b, SIG_FADT, FADT_REVISION)
}

// madtLength is the MADT's length for the configuration.
func madtLength(cpus, overrides int) int {
	return MADT_OFF_ENTRIES +
		cpus*MADT_PROCESSOR_LOCAL_APIC_LENGTH +
		MADT_IO_APIC_LENGTH +
		overrides*MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH +
		MADT_LOCAL_APIC_NMI_LENGTH
}

// putMADT writes the MADT into b (madtLength bytes): one enabled Processor
// Local APIC per vCPU (UID and APIC ID k), the I/O APIC, the overrides and
// LINT1 of every processor wired to NMI.
func putMADT(b []byte, c *Config, overrides []Override) {
	le.PutUint32(b[MADT_OFF_LOCAL_APIC_ADDRESS:], c.LocalAPICAddr)
	le.PutUint32(b[MADT_OFF_FLAGS:], PCAT_COMPAT)

	off := MADT_OFF_ENTRIES

	for k := 0; k < c.CPUs; k++ {
		e := b[off : off+MADT_PROCESSOR_LOCAL_APIC_LENGTH]
		e[0], e[1] = MADT_PROCESSOR_LOCAL_APIC, MADT_PROCESSOR_LOCAL_APIC_LENGTH
		e[2] = byte(k) // ACPI Processor UID, the _UID of processor device C0xx
		e[3] = byte(k) // APIC ID
		le.PutUint32(e[4:], LAPIC_ENABLED)
		off += len(e)
	}

	e := b[off : off+MADT_IO_APIC_LENGTH]
	e[0], e[1] = MADT_IO_APIC, MADT_IO_APIC_LENGTH
	e[2] = c.IOAPIC.ID
	le.PutUint32(e[4:], c.IOAPIC.Addr)
	le.PutUint32(e[8:], c.IOAPIC.GSIBase)
	off += len(e)

	for _, o := range overrides {
		e := b[off : off+MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH]
		e[0], e[1] = MADT_INTERRUPT_SOURCE_OVERRIDE, MADT_INTERRUPT_SOURCE_OVERRIDE_LENGTH
		e[2] = 0 // Bus: ISA
		e[3] = o.IRQ
		le.PutUint32(e[4:], o.GSI)
		le.PutUint16(e[8:], o.Flags)
		off += len(e)
	}

	e = b[off : off+MADT_LOCAL_APIC_NMI_LENGTH]
	e[0], e[1] = MADT_LOCAL_APIC_NMI, MADT_LOCAL_APIC_NMI_LENGTH
	e[2] = ALL_PROCESSORS_UID
	le.PutUint16(e[3:], MPS_INTI_POLARITY_HIGH|MPS_INTI_TRIGGER_EDGE)
	e[5] = 1 // LINT1

	sdtHeader(b, SIG_MADT, MADT_REVISION)
}

package acpi

import (
	"fmt"
)

// Generic Address Structure (ACPI 6.5, 5.2.3.2).
const (
	// GAS_LENGTH is the size of a Generic Address Structure.
	GAS_LENGTH = 12

	// Address Space IDs.
	ADDRESS_SPACE_SYSTEM_MEMORY = 0x00 // System Memory space
	ADDRESS_SPACE_SYSTEM_IO     = 0x01 // System I/O (port) space
	ADDRESS_SPACE_PCI_CONFIG    = 0x02 // PCI Configuration space
	ADDRESS_SPACE_FFH           = 0x7F // Functional Fixed Hardware

	// Access sizes.
	ACCESS_SIZE_UNDEFINED = 0 // legacy: use the register's bit width
	ACCESS_SIZE_BYTE      = 1 // 8-bit accesses
	ACCESS_SIZE_WORD      = 2 // 16-bit accesses
	ACCESS_SIZE_DWORD     = 3 // 32-bit accesses
	ACCESS_SIZE_QWORD     = 4 // 64-bit accesses
)

// GAS is a Generic Address Structure: where a register is and how to access
// it.
type GAS struct {
	// SpaceID is the address space (ADDRESS_SPACE_*).
	SpaceID uint8
	// BitWidth is the register's size in bits.
	BitWidth uint8
	// BitOffset is the register's offset in bits from Address.
	BitOffset uint8
	// AccessSize is the access size (ACCESS_SIZE_*).
	AccessSize uint8
	// Address is the register's address in its space (a port number for
	// ADDRESS_SPACE_SYSTEM_IO).
	Address uint64
}

// IsIO reports whether the register is in the system I/O (port) space.
func (g GAS) IsIO() bool { return g.SpaceID == ADDRESS_SPACE_SYSTEM_IO }

// String formats the register as "io 0x604/16" or "mem 0xfed00000/32".
func (g GAS) String() string {
	space := fmt.Sprintf("space %d", g.SpaceID)

	switch g.SpaceID {
	case ADDRESS_SPACE_SYSTEM_MEMORY:
		space = "mem"
	case ADDRESS_SPACE_SYSTEM_IO:
		space = "io"
	case ADDRESS_SPACE_PCI_CONFIG:
		space = "pci"
	}

	return fmt.Sprintf("%s %#x/%d", space, g.Address, g.BitWidth)
}

func decodeGAS(b []byte) GAS {
	return GAS{SpaceID: b[0], BitWidth: b[1], BitOffset: b[2], AccessSize: b[3], Address: le64(b, 4)}
}

// Fixed ACPI Description Table (ACPI 6.5, 5.2.9): field offsets. A field is
// present only when the table's length covers it; ACPI 1.0 FADTs are 116
// bytes (up to Flags), ACPI 2.0 added RESET_REG and the X_ fields (244
// bytes), 5.0 the sleep registers (268) and 6.0 the hypervisor vendor
// identity (276).
const (
	FADT_OFF_FIRMWARE_CTRL     = 36  // u32 FIRMWARE_CTRL: the FACS
	FADT_OFF_DSDT              = 40  // u32 DSDT
	FADT_OFF_PREFERRED_PM      = 45  // u8 Preferred_PM_Profile
	FADT_OFF_SCI_INT           = 46  // u16 SCI_INT
	FADT_OFF_SMI_CMD           = 48  // u32 SMI_CMD port
	FADT_OFF_ACPI_ENABLE       = 52  // u8 ACPI_ENABLE
	FADT_OFF_ACPI_DISABLE      = 53  // u8 ACPI_DISABLE
	FADT_OFF_PM1A_EVT_BLK      = 56  // u32 PM1a_EVT_BLK port
	FADT_OFF_PM1B_EVT_BLK      = 60  // u32 PM1b_EVT_BLK port
	FADT_OFF_PM1A_CNT_BLK      = 64  // u32 PM1a_CNT_BLK port
	FADT_OFF_PM1B_CNT_BLK      = 68  // u32 PM1b_CNT_BLK port
	FADT_OFF_PM2_CNT_BLK       = 72  // u32 PM2_CNT_BLK port
	FADT_OFF_PM_TMR_BLK        = 76  // u32 PM_TMR_BLK port
	FADT_OFF_GPE0_BLK          = 80  // u32 GPE0_BLK port
	FADT_OFF_GPE1_BLK          = 84  // u32 GPE1_BLK port
	FADT_OFF_PM1_EVT_LEN       = 88  // u8 PM1_EVT_LEN
	FADT_OFF_PM1_CNT_LEN       = 89  // u8 PM1_CNT_LEN
	FADT_OFF_PM2_CNT_LEN       = 90  // u8 PM2_CNT_LEN
	FADT_OFF_PM_TMR_LEN        = 91  // u8 PM_TMR_LEN
	FADT_OFF_GPE0_BLK_LEN      = 92  // u8 GPE0_BLK_LEN
	FADT_OFF_GPE1_BLK_LEN      = 93  // u8 GPE1_BLK_LEN
	FADT_OFF_CENTURY           = 108 // u8 CENTURY (RTC CMOS index)
	FADT_OFF_IAPC_BOOT_ARCH    = 109 // u16 IAPC_BOOT_ARCH
	FADT_OFF_FLAGS             = 112 // u32 Flags
	FADT_OFF_RESET_REG         = 116 // GAS RESET_REG (ACPI 2.0)
	FADT_OFF_RESET_VALUE       = 128 // u8 RESET_VALUE
	FADT_OFF_MINOR_VERSION     = 131 // u8 FADT Minor Version
	FADT_OFF_X_FIRMWARE_CTRL   = 132 // u64 X_FIRMWARE_CTRL
	FADT_OFF_X_DSDT            = 140 // u64 X_DSDT
	FADT_OFF_X_PM1A_EVT_BLK    = 148 // GAS X_PM1a_EVT_BLK
	FADT_OFF_X_PM1B_EVT_BLK    = 160 // GAS X_PM1b_EVT_BLK
	FADT_OFF_X_PM1A_CNT_BLK    = 172 // GAS X_PM1a_CNT_BLK
	FADT_OFF_X_PM1B_CNT_BLK    = 184 // GAS X_PM1b_CNT_BLK
	FADT_OFF_X_PM2_CNT_BLK     = 196 // GAS X_PM2_CNT_BLK
	FADT_OFF_X_PM_TMR_BLK      = 208 // GAS X_PM_TMR_BLK
	FADT_OFF_X_GPE0_BLK        = 220 // GAS X_GPE0_BLK
	FADT_OFF_X_GPE1_BLK        = 232 // GAS X_GPE1_BLK
	FADT_OFF_SLEEP_CONTROL_REG = 244 // GAS SLEEP_CONTROL_REG (ACPI 5.0)
	FADT_OFF_SLEEP_STATUS_REG  = 256 // GAS SLEEP_STATUS_REG
	FADT_OFF_HYPERVISOR_VENDOR = 268 // u64 Hypervisor Vendor Identity (ACPI 6.0)

	// FADT_V1_LENGTH is the length of an ACPI 1.0 FADT.
	FADT_V1_LENGTH = 116

	// Fixed feature flags (FADT Flags).
	TMR_VAL_EXT     = 1 << 8  // the PM timer is 32 bits wide, not 24
	RESET_REG_SUP   = 1 << 10 // RESET_REG is supported
	HW_REDUCED_ACPI = 1 << 20 // no fixed hardware (no PM timer, PM1 blocks)

	// PM_TMR_FREQUENCY is the PM timer's rate in Hz (4.8 "ACPI Hardware
	// Features", Power Management Timer).
	PM_TMR_FREQUENCY = 3579545
)

// FADT is the decoded Fixed ACPI Description Table. Fields beyond the
// table's length are zero.
type FADT struct {
	// Header is the table's header; Header.Revision is the FADT major
	// version.
	Header Header

	FirmwareCtrl  uint32 // FIRMWARE_CTRL: 32-bit address of the FACS
	XFirmwareCtrl uint64 // X_FIRMWARE_CTRL: 64-bit address of the FACS
	DSDT          uint32 // DSDT: 32-bit address of the DSDT; see DSDTAddr
	XDSDT         uint64 // X_DSDT: 64-bit address of the DSDT; see DSDTAddr

	// PreferredPMProfile is the platform's power management profile.
	PreferredPMProfile uint8
	// SCIInt is the SCI interrupt (an ISA IRQ on PC-AT compatible
	// systems, subject to the MADT's overrides).
	SCIInt uint16
	// SMICmd is the SMI command port; ACPIEnable and ACPIDisable are
	// written there to switch the machine in and out of ACPI mode.
	SMICmd      uint32
	ACPIEnable  uint8 // ACPI_ENABLE: written to SMI_CMD to enter ACPI mode
	ACPIDisable uint8 // ACPI_DISABLE: written to SMI_CMD to leave ACPI mode

	// Legacy port addresses of the fixed register blocks and their
	// lengths in bytes; the X_ fields below supersede them.
	PM1aEvtBlk uint32 // PM1a_EVT_BLK: PM1a event registers (status, enable)
	PM1bEvtBlk uint32 // PM1b_EVT_BLK: PM1b event registers, 0 if none
	PM1aCntBlk uint32 // PM1a_CNT_BLK: PM1a control register
	PM1bCntBlk uint32 // PM1b_CNT_BLK: PM1b control register, 0 if none
	PM2CntBlk  uint32 // PM2_CNT_BLK: PM2 control register, 0 if none
	PMTmrBlk   uint32 // PM_TMR_BLK: PM timer, 0 if none
	GPE0Blk    uint32 // GPE0_BLK: general-purpose event block 0
	GPE1Blk    uint32 // GPE1_BLK: general-purpose event block 1
	PM1EvtLen  uint8  // PM1_EVT_LEN: bytes in PM1x_EVT_BLK
	PM1CntLen  uint8  // PM1_CNT_LEN: bytes in PM1x_CNT_BLK
	PM2CntLen  uint8  // PM2_CNT_LEN: bytes in PM2_CNT_BLK
	PMTmrLen   uint8  // PM_TMR_LEN: bytes in PM_TMR_BLK, 4 if supported
	GPE0BlkLen uint8  // GPE0_BLK_LEN: bytes in GPE0_BLK
	GPE1BlkLen uint8  // GPE1_BLK_LEN: bytes in GPE1_BLK

	// Century is the RTC CMOS index of the century, 0 if none.
	Century uint8
	// IAPCBootArch are the IA-PC Boot Architecture Flags (5.2.9.3).
	IAPCBootArch uint16
	// Flags are the fixed feature flags (TMR_VAL_EXT, RESET_REG_SUP,
	// HW_REDUCED_ACPI, ...).
	Flags uint32

	// ResetReg and ResetValue: writing ResetValue to ResetReg resets the
	// machine, when ResetSupported.
	ResetReg   GAS
	ResetValue uint8 // RESET_VALUE: the value to write to RESET_REG
	// MinorVersion is the FADT Minor Version byte (errata in bits 7:4).
	MinorVersion uint8

	// Extended (64-bit) register blocks; an X_ block with a non-zero
	// address supersedes the legacy field.
	XPM1aEvtBlk GAS // X_PM1a_EVT_BLK
	XPM1bEvtBlk GAS // X_PM1b_EVT_BLK
	XPM1aCntBlk GAS // X_PM1a_CNT_BLK
	XPM1bCntBlk GAS // X_PM1b_CNT_BLK
	XPM2CntBlk  GAS // X_PM2_CNT_BLK
	XPMTmrBlk   GAS // X_PM_TMR_BLK
	XGPE0Blk    GAS // X_GPE0_BLK
	XGPE1Blk    GAS // X_GPE1_BLK
	// SleepControlReg and SleepStatusReg are the hardware-reduced sleep
	// registers.
	SleepControlReg GAS // SLEEP_CONTROL_REG
	SleepStatusReg  GAS // SLEEP_STATUS_REG
	// HypervisorVendorIdentity identifies a hypervisor, 0 if none.
	HypervisorVendorIdentity uint64
}

// ParseFADT validates (signature, length, checksum) and decodes a FADT held
// in table.
func ParseFADT(table []byte) (*FADT, error) {
	h, b, err := parseHeader(table, SIG_FADT, 0)
	if err != nil {
		return nil, err
	}

	return decodeFADT(h, b)
}

// decodeFADT decodes a FADT whose header has been checked.
func decodeFADT(h Header, b []byte) (*FADT, error) {
	// Without the DSDT address the table is of no use; anything shorter
	// than that is not a FADT.
	if len(b) < FADT_OFF_DSDT+4 {
		return nil, fmt.Errorf("acpi: FADT at %#x: length %d is too short to hold the DSDT address (%d bytes)", h.Addr, len(b), FADT_OFF_DSDT+4)
	}

	u8 := func(off int) uint8 {
		if off+1 > len(b) {
			return 0
		}
		return b[off]
	}
	u16 := func(off int) uint16 {
		if off+2 > len(b) {
			return 0
		}
		return le16(b, off)
	}
	u32 := func(off int) uint32 {
		if off+4 > len(b) {
			return 0
		}
		return le32(b, off)
	}
	u64 := func(off int) uint64 {
		if off+8 > len(b) {
			return 0
		}
		return le64(b, off)
	}
	gas := func(off int) GAS {
		if off+GAS_LENGTH > len(b) {
			return GAS{}
		}
		return decodeGAS(b[off:])
	}

	return &FADT{
		Header:             h,
		FirmwareCtrl:       u32(FADT_OFF_FIRMWARE_CTRL),
		DSDT:               u32(FADT_OFF_DSDT),
		PreferredPMProfile: u8(FADT_OFF_PREFERRED_PM),
		SCIInt:             u16(FADT_OFF_SCI_INT),
		SMICmd:             u32(FADT_OFF_SMI_CMD),
		ACPIEnable:         u8(FADT_OFF_ACPI_ENABLE),
		ACPIDisable:        u8(FADT_OFF_ACPI_DISABLE),
		PM1aEvtBlk:         u32(FADT_OFF_PM1A_EVT_BLK),
		PM1bEvtBlk:         u32(FADT_OFF_PM1B_EVT_BLK),
		PM1aCntBlk:         u32(FADT_OFF_PM1A_CNT_BLK),
		PM1bCntBlk:         u32(FADT_OFF_PM1B_CNT_BLK),
		PM2CntBlk:          u32(FADT_OFF_PM2_CNT_BLK),
		PMTmrBlk:           u32(FADT_OFF_PM_TMR_BLK),
		GPE0Blk:            u32(FADT_OFF_GPE0_BLK),
		GPE1Blk:            u32(FADT_OFF_GPE1_BLK),
		PM1EvtLen:          u8(FADT_OFF_PM1_EVT_LEN),
		PM1CntLen:          u8(FADT_OFF_PM1_CNT_LEN),
		PM2CntLen:          u8(FADT_OFF_PM2_CNT_LEN),
		PMTmrLen:           u8(FADT_OFF_PM_TMR_LEN),
		GPE0BlkLen:         u8(FADT_OFF_GPE0_BLK_LEN),
		GPE1BlkLen:         u8(FADT_OFF_GPE1_BLK_LEN),
		Century:            u8(FADT_OFF_CENTURY),
		IAPCBootArch:       u16(FADT_OFF_IAPC_BOOT_ARCH),
		Flags:              u32(FADT_OFF_FLAGS),
		ResetReg:           gas(FADT_OFF_RESET_REG),
		ResetValue:         u8(FADT_OFF_RESET_VALUE),
		MinorVersion:       u8(FADT_OFF_MINOR_VERSION),
		XFirmwareCtrl:      u64(FADT_OFF_X_FIRMWARE_CTRL),
		XDSDT:              u64(FADT_OFF_X_DSDT),
		XPM1aEvtBlk:        gas(FADT_OFF_X_PM1A_EVT_BLK),
		XPM1bEvtBlk:        gas(FADT_OFF_X_PM1B_EVT_BLK),
		XPM1aCntBlk:        gas(FADT_OFF_X_PM1A_CNT_BLK),
		XPM1bCntBlk:        gas(FADT_OFF_X_PM1B_CNT_BLK),
		XPM2CntBlk:         gas(FADT_OFF_X_PM2_CNT_BLK),
		XPMTmrBlk:          gas(FADT_OFF_X_PM_TMR_BLK),
		XGPE0Blk:           gas(FADT_OFF_X_GPE0_BLK),
		XGPE1Blk:           gas(FADT_OFF_X_GPE1_BLK),
		SleepControlReg:    gas(FADT_OFF_SLEEP_CONTROL_REG),
		SleepStatusReg:     gas(FADT_OFF_SLEEP_STATUS_REG),

		HypervisorVendorIdentity: u64(FADT_OFF_HYPERVISOR_VENDOR),
	}, nil
}

// Version returns the ACPI version the FADT declares: its major revision
// (the header's) and minor version (bits 3:0 of FADT Minor Version).
func (f *FADT) Version() (major, minor uint8) {
	return f.Header.Revision, f.MinorVersion & 0xF
}

// DSDTAddr returns the DSDT's physical address: X_DSDT when it is not zero
// (the DSDT field must then be ignored), else DSDT.
func (f *FADT) DSDTAddr() uint64 {
	if f.XDSDT != 0 {
		return f.XDSDT
	}

	return uint64(f.DSDT)
}

// legacyOrX picks the X_ block when its address is not zero, else the
// legacy port with its length, as the FADT rules say.
func legacyOrX(x GAS, port uint32, length uint8) (GAS, bool) {
	if x.Address != 0 {
		return x, true
	}

	if port == 0 || length == 0 {
		return GAS{}, false
	}

	return GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: uint8(min(int(length)*8, 255)), Address: uint64(port)}, true
}

// PMTimer returns the PM timer register and whether there is one
// (X_PM_TMR_BLK, else PM_TMR_BLK with PM_TMR_LEN 4). It counts at
// PM_TMR_FREQUENCY and is 32 bits wide when PMTimer32Bit, else 24.
func (f *FADT) PMTimer() (GAS, bool) {
	if f.HardwareReduced() {
		return GAS{}, false
	}

	if f.XPMTmrBlk.Address != 0 {
		return f.XPMTmrBlk, true
	}

	// PM_TMR_LEN is 4 whenever the timer is supported.
	if f.PMTmrBlk == 0 || f.PMTmrLen < 4 {
		return GAS{}, false
	}

	return GAS{SpaceID: ADDRESS_SPACE_SYSTEM_IO, BitWidth: 32, Address: uint64(f.PMTmrBlk)}, true
}

// PMTimer32Bit reports TMR_VAL_EXT: the PM timer's counter is 32 bits wide
// (else 24).
func (f *FADT) PMTimer32Bit() bool { return f.Flags&TMR_VAL_EXT != 0 }

// PM1aControl returns the PM1a control register (X_PM1a_CNT_BLK, else
// PM1a_CNT_BLK) and whether there is one.
func (f *FADT) PM1aControl() (GAS, bool) {
	return legacyOrX(f.XPM1aCntBlk, f.PM1aCntBlk, f.PM1CntLen)
}

// PM1bControl returns the PM1b control register and whether there is one
// (most machines have none).
func (f *FADT) PM1bControl() (GAS, bool) {
	return legacyOrX(f.XPM1bCntBlk, f.PM1bCntBlk, f.PM1CntLen)
}

// PM1aEvent returns the PM1a event register block (status then enable
// registers, PM1_EVT_LEN bytes) and whether there is one.
func (f *FADT) PM1aEvent() (GAS, bool) {
	return legacyOrX(f.XPM1aEvtBlk, f.PM1aEvtBlk, f.PM1EvtLen)
}

// ResetSupported reports RESET_REG_SUP with a reset register the table
// actually holds (non-zero address).
func (f *FADT) ResetSupported() bool {
	return f.Flags&RESET_REG_SUP != 0 && f.ResetReg.Address != 0
}

// HardwareReduced reports HW_REDUCED_ACPI: no fixed hardware (PM timer,
// PM1 blocks); sleep goes through SleepControlReg instead.
func (f *FADT) HardwareReduced() bool { return f.Flags&HW_REDUCED_ACPI != 0 }

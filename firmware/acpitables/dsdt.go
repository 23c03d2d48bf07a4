package acpitables

import (
	"fmt"
)

// Plug and Play IDs used in the DSDT (ACPI 6.5, 5.6.7 "Device Class-Specific
// Objects" and 8.4 "Declaring Processors").
const (
	PNP_PCI_HOST_BRIDGE = "PNP0A03"  // PCI bus (host bridge)
	ACPI_PROCESSOR_HID  = "ACPI0007" // processor device
)

// buildDSDT returns the DSDT (header included) for the configuration, as
// this ASL would compile:
//
//	DefinitionBlock ("", "DSDT", 2, "KEEL  ", "KEELVM  ", 1)
//	{
//	    Name (_S5, Package (0x04) { SLP_TYP, SLP_TYP, Zero, Zero })
//	    Scope (_SB)
//	    {
//	        Device (PCI0)
//	        {
//	            Name (_HID, EisaId ("PNP0A03"))
//	            Name (_UID, Zero)
//	        }
//	        Device (C000) { Name (_HID, "ACPI0007") Name (_UID, Zero) }
//	        ... one per vCPU, C000 to C0FE (hex), _UID = the MADT's
//	        ACPI Processor UID
//	    }
//	}
//
// \_S5 gives SLP_TYPa and SLP_TYPb for soft-off (7.4.2); the two reserved
// elements are 0. PCI0 lets the guest enumerate the PCI bus behind the
// host bridge at configuration ports 0xCF8/0xCFC; it has no _ADR, because a
// device is named by _HID or by _ADR but not by both (6.1 "Device
// Identification Objects"); segment and bus number are the defaults 0. The
// power button is the fixed feature one (FADT PWR_BUTTON clear), so it
// needs no device here.
func buildDSDT(c *Config) ([]byte, error) {
	var w amlWriter

	slp := amlInteger(uint64(c.PM.SlpTypS5))
	w.add(amlName("_S5", w.must(amlPackage(slp, slp, amlInteger(0), amlInteger(0)))))

	var sb amlWriter

	var pci amlWriter
	pci.add(amlName("_HID", pci.must(amlEISAID(PNP_PCI_HOST_BRIDGE))))
	pci.add(amlName("_UID", amlInteger(0)))

	if pci.err != nil {
		return nil, pci.err
	}

	sb.add(amlDevice("PCI0", pci.b))

	for k := 0; k < c.CPUs; k++ {
		var cpu amlWriter
		cpu.add(amlName("_HID", cpu.must(amlString(ACPI_PROCESSOR_HID))))
		cpu.add(amlName("_UID", amlInteger(uint64(k))))

		if cpu.err != nil {
			return nil, cpu.err
		}

		sb.add(amlDevice(processorName(k), cpu.b))
	}

	if sb.err != nil {
		return nil, sb.err
	}

	w.add(amlScope("_SB", sb.b))

	if w.err != nil {
		return nil, fmt.Errorf("acpitables: DSDT: %w", w.err)
	}

	t := make([]byte, SDT_HEADER_LENGTH+len(w.b))
	copy(t[SDT_HEADER_LENGTH:], w.b)
	sdtHeader(t, SIG_DSDT, DSDT_REVISION)

	return t, nil
}

// processorName returns the name of vCPU k's processor device: "C" and
// three upper-case hex digits.
func processorName(k int) string {
	return fmt.Sprintf("C%03X", k)
}

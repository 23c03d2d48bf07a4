//go:build tamago

package pc

import (
	"strings"
	"time"

	"github.com/keel-hv/keel/kernel/acpi"
	"github.com/keel-hv/keel/kernel/bootinfo"
)

// tables are the ACPI tables Firmware read, nil if there are none.
var tables *acpi.Tables

// ACPI returns the firmware tables, nil when they were missing or unusable.
func ACPI() *acpi.Tables { return tables }

// Firmware reads the ACPI tables (the RSDP from the loader, else the BIOS
// area) and returns the APIC IDs of the processors to start: those the MADT
// marks enabled. Without usable tables Keel runs on the bootstrap
// processor alone, and says so.
func Firmware(info *bootinfo.Info, log Logf) (apicIDs []uint32) {
	var hint acpi.RSDPHint
	if info != nil {
		hint = acpi.RSDPHint{Addr: info.RSDPAddr, Copy: info.RSDP}
	}
	t, err := acpi.Parse(physMem{}, hint)
	if err != nil {
		log("ACPI tables unusable (%v): running on one CPU", err)
		return nil
	}
	tables = t
	for _, w := range t.Warnings {
		log("ACPI: %s", w)
	}
	if t.MADT == nil {
		log("ACPI: no usable MADT: running on one CPU")
		return nil
	}
	for _, c := range t.MADT.CPUs {
		if c.Enabled {
			apicIDs = append(apicIDs, c.APICID)
		}
	}
	return apicIDs
}

// emulated reports whether Keel runs under QEMU or Bochs, where the
// emulator's own exit ports may be used as a last resort: the ACPI tables'
// OEM ID is "BOCHS " (both emulators), or the hypervisor CPUID leaf
// 4000_0000h names QEMU's TCG or KVM.
func emulated() bool {
	if tables != nil && strings.HasPrefix(tables.RSDP.OEMID, "BOCHS") {
		return true
	}
	if _, _, ecx, _ := cpuidInsn(1, 0); ecx&(1<<31) == 0 {
		return false
	}
	_, b, c, d := cpuidInsn(0x40000000, 0)
	sig := string([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24), byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24), byte(d), byte(d >> 8), byte(d >> 16), byte(d >> 24)})
	return sig == "TCGTCGTCGTCG" || strings.HasPrefix(sig, "KVMKVMKVM")
}

// PowerOff turns the machine off: ACPI S5 (PM1a/PM1b control, SLP_TYP from
// \_S5, SLP_EN; ACPI 6.5, 7.4.2 and 4.8.4.2), then, on an emulator, Bochs'
// shutdown port and QEMU's isa-debug-exit. It returns only on failure.
func PowerOff() error {
	if tables != nil && tables.FADT != nil && tables.S5 != nil {
		enableACPI(tables.FADT)
		if reg, ok := tables.FADT.PM1aControl(); ok && reg.IsIO() {
			port := uint16(reg.Address)
			outw(port, acpi.SleepControl(inw(port), tables.S5.SlpTypA))
		}
		if reg, ok := tables.FADT.PM1bControl(); ok && reg.IsIO() {
			port := uint16(reg.Address)
			outw(port, acpi.SleepControl(inw(port), tables.S5.SlpTypB))
		}
		time.Sleep(time.Second)
	}
	if emulated() {
		// Bochs: the bytes "Shutdown" on port 0x8900 end the
		// simulation (bochs/iodev/unmapped.cc).
		for _, c := range []byte("Shutdown") {
			outb(BOCHS_SHUTDOWN_PORT, c)
		}
		outb(ISA_DEBUG_EXIT, 0)
		time.Sleep(100 * time.Millisecond)
	}
	return errPowerOff
}

// enableACPI switches the chipset to ACPI mode when the firmware left it in
// legacy mode (PM1a_CNT.SCI_EN clear): ACPI_ENABLE to SMI_CMD, then up to
// 300 ms for SCI_EN (ACPI 6.5, 4.8.2.5 and 16.3.1).
func enableACPI(f *acpi.FADT) {
	const SCI_EN = 1 << 0
	reg, ok := f.PM1aControl()
	if !ok || !reg.IsIO() || inw(uint16(reg.Address))&SCI_EN != 0 || f.SMICmd == 0 || f.ACPIEnable == 0 {
		return
	}
	outb(uint16(f.SMICmd), f.ACPIEnable)
	for i := 0; i < 300 && inw(uint16(reg.Address))&SCI_EN == 0; i++ {
		time.Sleep(time.Millisecond)
	}
}

// Reboot resets the machine: the ACPI reset register, then the PCI reset
// control register 0xCF9, then the keyboard controller's reset line, each
// given a moment to act. It returns only on failure.
func Reboot() error {
	if tables != nil && tables.FADT != nil && tables.FADT.ResetSupported() {
		reg := tables.FADT.ResetReg
		if reg.IsIO() {
			outb(uint16(reg.Address), tables.FADT.ResetValue)
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Reset Control Register (Intel PCH datasheets, "RST_CNT"): SYS_RST
	// (bit 1), then RST_CPU (bit 2) with it for a hard reset.
	outb(RST_CNT, RST_CNT_SYS_RST)
	outb(RST_CNT, RST_CNT_SYS_RST|RST_CNT_RST_CPU)
	time.Sleep(100 * time.Millisecond)
	// 8042 keyboard controller command 0xFE: pulse the reset line.
	outb(KBC_COMMAND, KBC_PULSE_RESET)
	time.Sleep(100 * time.Millisecond)
	return errReboot
}

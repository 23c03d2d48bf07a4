//go:build tamago

package pc

import "errors"

// ISA_DEBUG_EXIT is the port of QEMU's isa-debug-exit device when started
// with `-device isa-debug-exit,iobase=0xf4,iosize=0x04`
// (qemu/hw/misc/debugexit.c): writing v makes QEMU exit with status
// (v << 1) | 1. On other machines the port is unused and the write is
// ignored. The value is defined in cpuinit.go, shared with cpuinit.

// Exit ends Keel: under QEMU with isa-debug-exit the emulator exits with
// status (code&0xff)<<1 | 1; elsewhere the processor halts with interrupts
// disabled. It is runtime/goos.Exit once Hwinit1 has run.
//
//go:nosplit
func Exit(code int32) {
	// nosplit: the runtime calls goos.Exit from its nosplit exit path,
	// including while dying from a fatal error.
	outb(ISA_DEBUG_EXIT, uint8(code))
	haltForever()
}

// Reset and power ports.
const (
	// RST_CNT is the PCI reset control register at port 0xCF9.
	RST_CNT         = 0xcf9
	RST_CNT_SYS_RST = 1 << 1
	RST_CNT_RST_CPU = 1 << 2
	// KBC_COMMAND is the 8042 command port; KBC_PULSE_RESET pulses the
	// CPU reset line.
	KBC_COMMAND     = 0x64
	KBC_PULSE_RESET = 0xfe
	// BOCHS_SHUTDOWN_PORT takes the bytes "Shutdown" to end Bochs.
	BOCHS_SHUTDOWN_PORT = 0x8900
)

var (
	errPowerOff = errors.New("power off failed: no ACPI S5 and no emulator exit port worked")
	errReboot   = errors.New("reboot failed: the ACPI reset register, 0xCF9 and the keyboard controller did not reset the machine")
)

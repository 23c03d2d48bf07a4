//go:build tamago

// Package pc is Keel's board support for PC-compatible x86-64 machines
// (QEMU q35/pc, Bochs, real hardware) booted through PVH: the first code
// that runs (cpuinit), the runtime/goos hooks the library leaves to the
// board (RamSize, Printk, Nanotime, Hwinit1, Exit, Idle), the COM1 console,
// TSC calibration and the boot information.
//
// This package is GOOS=tamago only. The arithmetic it relies on lives in
// host-testable packages: pvh (boot information), tsc (clock) and cpuid
// (processor identification).
//
// The library's amd64 package supplies RamStackOffset, Hwinit0,
// InitRNG/GetRandomData and sse_enable; build with the linkcpuinit tag so
// that this package's cpuinit replaces the library's.
package pc

import (
	"sync"

	"github.com/usbarmory/tamago/amd64"

	"github.com/keel-hv/keel/kernel/bootinfo"
	"github.com/keel-hv/keel/kernel/pc/cpuid"
)

// bsp is the bootstrap processor, used only for the library's exception
// table (its Init is not called: it expects kvmclock).
var bsp = &amd64.CPU{}

func init() {
	// Exceptions print a vector and a Go traceback instead of triple
	// faulting. The library writes the gates at IDTR (IDT_BASE) and
	// executes STI, which is safe: cpuinit masked the 8259s and nothing
	// has programmed the IOAPIC or LAPIC timer.
	bsp.EnableExceptions()
	installGates()
}

var (
	bootOnce sync.Once
	boot     *bootinfo.Info
	bootErr  error

	cpuOnce sync.Once
	cpuInfo cpuid.Info
)

// Boot returns what the loader handed over. err describes a malformed
// handoff; the fields decoded so far are still returned.
func Boot() (*bootinfo.Info, error) {
	bootOnce.Do(func() {
		boot, bootErr = readBootInfo()
	})

	return boot, bootErr
}

// CPU identifies the bootstrap processor.
func CPU() cpuid.Info {
	cpuOnce.Do(func() {
		cpuInfo = cpuid.Identify(execCPUID)
	})

	return cpuInfo
}

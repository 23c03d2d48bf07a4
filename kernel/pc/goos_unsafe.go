//go:build tamago

package pc

import (
	"runtime/goos"
	_ "unsafe" // go:linkname
)

// The runtime/goos hooks this board defines. go:linkname pushes each
// definition into the runtime's goos package (the library's amd64 package
// defines RamStart, RamStackOffset, Hwinit0, InitRNG and GetRandomData the
// same way). They are gathered here because linkname is an unsafe
// mechanism: a wrong signature is not caught by the compiler.

// ramStart is runtime/goos.RamStart (build tag linkramstart removes the
// library's definition).
//
//go:linkname ramStart runtime/goos.RamStart
var ramStart uint = RAM_START

// ramSize is runtime/goos.RamSize: the runtime owns [RamStart,
// RamStart+RamSize), which cpuinit checks against the memory map.
//
//go:linkname ramSize runtime/goos.RamSize
var ramSize uint = RAM_SIZE

// printk is runtime/goos.Printk: the runtime's console output, one byte at
// a time, usable before Hwinit1 (QEMU's UART needs no programming; on real
// hardware the firmware has set it up).
//
//go:linkname printk runtime/goos.Printk
//go:nosplit
func printk(c byte) {
	// nosplit: the runtime prints panics and throws through here with
	// the world stopped or on g0 where morestack is not allowed.
	com1.putc(c)
}

// nanotime is runtime/goos.Nanotime: monotonic nanoseconds from the TSC,
// assuming 1 GHz until calibrateTSC (in Hwinit1) switches to the measured
// frequency without a step back. It does not allocate.
//
//go:linkname nanotime runtime/goos.Nanotime
//go:nosplit
func nanotime() int64 {
	// nosplit: runtime.nanotime is nosplit and is called by the
	// scheduler with locks held and before the runtime is set up.
	return clock.Now(rdtsc())
}

// hwinit1 is runtime/goos.Hwinit1, run early in runtime setup: it programs
// the console, calibrates the TSC and installs the exit and idle hooks. It
// does not allocate.
//
//go:linkname hwinit1 runtime/goos.Hwinit1
func hwinit1() {
	com1.Init()
	calibrateTSC()
	initBSP()

	goos.Exit = Exit
}

//go:build tamago

package pc

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

// PowerOff ends Keel normally (QEMU exit status 1).
func PowerOff() {
	Exit(0)
}

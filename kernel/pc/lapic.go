//go:build tamago

package pc

// Local APIC in xAPIC mode, memory mapped at LAPIC_BASE (Intel SDM Vol. 3A,
// 11.4.1 "The Local APIC Block Diagram", Table 11-1 "Local APIC Register
// Address Map"; AMD APM Vol. 2, 16.3 "Local APIC"). cpuinit maps 3-4 GiB
// uncached, which covers it.
const (
	LAPIC_BASE = 0xfee00000

	LAPIC_ID     = 0x020 // Local APIC ID, bits 31:24
	LAPIC_EOI    = 0x0b0 // End Of Interrupt
	LAPIC_SVR    = 0x0f0 // Spurious Interrupt Vector Register
	LAPIC_ICR_LO = 0x300 // Interrupt Command Register, bits 31:0
	LAPIC_ICR_HI = 0x310 // Interrupt Command Register, bits 63:32

	// SVR_APIC_ENABLE is SVR bit 8, APIC software enable.
	SVR_APIC_ENABLE = 1 << 8

	// ICR fields (Intel SDM Vol. 3A, 11.6.1 "Interrupt Command
	// Register").
	ICR_DELIVERY_FIXED   = 0 << 8
	ICR_DELIVERY_INIT    = 5 << 8
	ICR_DELIVERY_STARTUP = 6 << 8
	ICR_DELIVERY_STATUS  = 1 << 12 // send pending
	ICR_LEVEL_ASSERT     = 1 << 14
	ICR_DEST_SHIFT       = 24 // destination APIC ID in ICR_HI
)

// Interrupt vectors Keel uses. Vectors 0-31 are the processor's exceptions.
const (
	// VECTOR_WAKE is the IPI that wakes a processor halted in idle.
	VECTOR_WAKE = 0xfe
	// VECTOR_SPURIOUS is the local APIC's spurious vector (SVR).
	VECTOR_SPURIOUS = 0xff
)

// lapicRead and lapicWrite access local APIC register reg of the current
// processor (lapic_amd64.s).
func lapicRead(reg uint32) uint32
func lapicWrite(reg uint32, val uint32)

// lapicEnable software-enables the local APIC with the spurious vector.
func lapicEnable() {
	lapicWrite(LAPIC_SVR, SVR_APIC_ENABLE|VECTOR_SPURIOUS)
}

// apicID returns the local APIC ID of the current processor.
//
//go:nosplit
func apicID() uint32 {
	// nosplit: the runtime calls it through goos.ProcID from minit.
	return lapicRead(LAPIC_ID) >> 24
}

// sendIPI sends an interrupt command to the processor with APIC ID dest
// and waits until the local APIC has accepted it (or about a second).
//
//go:nosplit
func sendIPI(dest uint32, command uint32) {
	// nosplit: it runs from goos.Wake, which the runtime calls while
	// holding locks.
	lapicWrite(LAPIC_ICR_HI, dest<<ICR_DEST_SHIFT)
	lapicWrite(LAPIC_ICR_LO, command)
	for i := 0; i < 1<<20 && lapicRead(LAPIC_ICR_LO)&ICR_DELIVERY_STATUS != 0; i++ {
	}
}

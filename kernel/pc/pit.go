//go:build tamago

package pc

// Intel 8254 Programmable Interval Timer (8254 datasheet: "Control Word
// Format" Figure 7, "Mode 0: Interrupt on Terminal Count") and the PC's
// system control port B at 0x61, which drives counter 2's GATE and shows its
// OUT pin (IBM PC/AT Technical Reference, "System Control Port B").
const (
	PIT_COUNTER2 = 0x42 // counter 2 data
	PIT_CONTROL  = 0x43 // control word register

	PIT_SC_COUNTER2 = 2 << 6 // SC1 SC0: select counter 2
	PIT_RW_LSB_MSB  = 3 << 4 // RW1 RW0: low byte then high byte
	PIT_MODE_0      = 0 << 1 // M2 M1 M0: interrupt on terminal count
	PIT_BCD_BINARY  = 0      // 16-bit binary count

	PORT_B          = 0x61
	PORT_B_GATE2    = 1 << 0 // counter 2 GATE input
	PORT_B_SPEAKER  = 1 << 1 // speaker data enable (kept off)
	PORT_B_OUT2     = 1 << 5 // counter 2 OUT pin (read only)
	PIT_CAL_TICKS   = 11932  // ~10 ms at tsc.PIT_TICK_RATE
	PIT_CAL_POLLS   = 1 << 21
	PIT_CAL_SAMPLES = 3
)

// measurePIT returns the TSC cycles elapsed while PIT counter 2 counts down
// PIT_CAL_TICKS in mode 0, or 0 when OUT2 never rises (no PIT).
//
// Mode 0: writing the control word drives OUT low, the count is loaded on
// the next CLK after its high byte is written and counts down while GATE is
// high, and OUT goes high at terminal count. The datasheet's N+1 clocks
// (the load cycle) differ from QEMU's N; the error is 1/11932 (84 ppm) at
// most and ignored.
func measurePIT() uint64 {
	saved := inb(PORT_B)
	outb(PORT_B, saved&^PORT_B_SPEAKER|PORT_B_GATE2)

	outb(PIT_CONTROL, PIT_SC_COUNTER2|PIT_RW_LSB_MSB|PIT_MODE_0|PIT_BCD_BINARY)
	outb(PIT_COUNTER2, PIT_CAL_TICKS&0xff)
	outb(PIT_COUNTER2, PIT_CAL_TICKS>>8)
	start := rdtsc()

	var cycles uint64

	for range PIT_CAL_POLLS {
		if inb(PORT_B)&PORT_B_OUT2 != 0 {
			cycles = rdtsc() - start
			break
		}
	}

	outb(PORT_B, saved)

	return cycles
}

package lapic

// Register offsets in the xAPIC page (Intel SDM Vol. 3A, §11.4.1 "The
// Local APIC Block Diagram", Table 11-1 "Local APIC Register Address Map").
// Every register is 32 bits wide at a 16-byte-aligned offset. In x2APIC mode
// register offset r is MSR X2APIC_MSR_BASE + r>>4 (§11.12.1.2 "x2APIC
// Register Address Space", Table 11-6 "Local APIC Register Address Map
// Supported by x2APIC").
const (
	ID            = 0x020 // Local APIC ID Register
	VERSION       = 0x030 // Local APIC Version Register
	TPR           = 0x080 // Task Priority Register
	APR           = 0x090 // Arbitration Priority Register (xAPIC only)
	PPR           = 0x0a0 // Processor Priority Register
	EOI           = 0x0b0 // EOI Register (write only)
	RRD           = 0x0c0 // Remote Read Register (xAPIC only, reads 0)
	LDR           = 0x0d0 // Logical Destination Register
	DFR           = 0x0e0 // Destination Format Register (xAPIC only)
	SVR           = 0x0f0 // Spurious Interrupt Vector Register
	ISR           = 0x100 // In-Service Register, 8 words at 0x100-0x170
	TMR           = 0x180 // Trigger Mode Register, 8 words at 0x180-0x1f0
	IRR           = 0x200 // Interrupt Request Register, 8 words at 0x200-0x270
	ESR           = 0x280 // Error Status Register
	LVT_CMCI      = 0x2f0 // LVT Corrected Machine Check Interrupt Register
	ICR_LO        = 0x300 // Interrupt Command Register, bits 31:0
	ICR_HI        = 0x310 // Interrupt Command Register, bits 63:32 (xAPIC only)
	LVT_TIMER     = 0x320 // LVT Timer Register
	LVT_THERMAL   = 0x330 // LVT Thermal Sensor Register
	LVT_PERF      = 0x340 // LVT Performance Monitoring Counters Register
	LVT_LINT0     = 0x350 // LVT LINT0 Register
	LVT_LINT1     = 0x360 // LVT LINT1 Register
	LVT_ERROR     = 0x370 // LVT Error Register
	INITIAL_COUNT = 0x380 // Initial Count Register (for Timer)
	CURRENT_COUNT = 0x390 // Current Count Register (for Timer), read only
	DIVIDE_CONFIG = 0x3e0 // Divide Configuration Register (for Timer)
	SELF_IPI      = 0x3f0 // SELF IPI Register (x2APIC only, write only)

	// PAGE_SIZE is the size of the xAPIC register page the caller maps
	// at the APIC base (0xfee00000 after reset).
	PAGE_SIZE = 0x1000
)

// MSR numbers (Intel SDM Vol. 4, Table 2-2 "IA-32 Architectural MSRs";
// Vol. 3A, §11.12.1.2).
const (
	IA32_APIC_BASE    = 0x1b
	IA32_TSC_DEADLINE = 0x6e0
	// X2APIC_MSR_BASE and X2APIC_MSR_LAST bound the x2APIC register
	// MSRs.
	X2APIC_MSR_BASE = 0x800
	X2APIC_MSR_LAST = 0x8ff
	// X2APIC_ICR is the 64-bit Interrupt Command Register MSR.
	X2APIC_ICR = X2APIC_MSR_BASE + ICR_LO>>4
)

// VERSION register contents (Intel SDM Vol. 3A, §11.4.8 "Local APIC
// Version Register"): version 14h (integrated xAPIC, as on Pentium 4 and
// later) and Max LVT Entry 6 (seven LVT entries, with CMCI). Bit 24 (EOI
// broadcast suppression) is clear: the IOAPIC model is version 11h, which
// has no EOI register for directed EOIs.
const (
	APIC_VERSION  = 0x14
	MAX_LVT_ENTRY = 6
	VERSION_VALUE = APIC_VERSION | MAX_LVT_ENTRY<<16
)

// SVR fields (Intel SDM Vol. 3A, §11.9 "Spurious Interrupt", Figure 11-23).
const (
	SVR_VECTOR         = 0xff
	SVR_APIC_ENABLED   = 1 << 8 // APIC software enable
	SVR_FOCUS_DISABLED = 1 << 9 // focus processor checking (stored, no effect)
	// SVR_RESET is the value after power-up and INIT (§11.4.7.1).
	SVR_RESET   = 0xff
	svrWritable = SVR_VECTOR | SVR_APIC_ENABLED | SVR_FOCUS_DISABLED
)

// LVT fields (Intel SDM Vol. 3A, §11.5.1 "Local Vector Table", Figure
// 11-8).
const (
	LVT_VECTOR          = 0xff
	LVT_DELIVERY_MODE   = 7 << 8
	LVT_DELIVERY_STATUS = 1 << 12 // read only; always idle here
	LVT_POLARITY_LOW    = 1 << 13 // LINT0/LINT1: active low
	LVT_REMOTE_IRR      = 1 << 14 // LINT0/LINT1: read only
	LVT_TRIGGER_LEVEL   = 1 << 15 // LINT0/LINT1: level triggered
	LVT_MASKED          = 1 << 16
	LVT_TIMER_MODE      = 3 << 17
	// LVT timer modes (bits 18:17).
	TIMER_ONE_SHOT     = 0 << 17
	TIMER_PERIODIC     = 1 << 17
	TIMER_TSC_DEADLINE = 2 << 17
	// LVT_RESET is every LVT entry after power-up and INIT: masked, all
	// else zero (§11.4.7.1).
	LVT_RESET = LVT_MASKED
)

// DIVIDE_CONFIG uses bits 0, 1 and 3 (§11.5.4 "APIC Timer", Figure 11-10).
const DIVIDE_CONFIG_MASK = 0xb

// DFR fields (§11.6.2.2 "Logical Destination Mode", Figure 11-14): the
// model in bits 31:28, bits 27:0 reserved and reading as ones.
const (
	DFR_MODEL_FLAT    = 0xf << 28
	DFR_MODEL_CLUSTER = 0x0 << 28
	DFR_RESERVED_ONES = 0x0fffffff
	DFR_RESET         = 0xffffffff
)

// ESR bits (§11.5.3 "Error Handling", Figure 11-9).
const (
	ESR_SEND_ILLEGAL_VECTOR    = 1 << 5
	ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6
	ESR_ILLEGAL_REGISTER       = 1 << 7
)

// ICR fields (Intel SDM Vol. 3A, §11.6.1 "Interrupt Command Register
// (ICR)", Figure 11-12; x2APIC: §11.12.9, Figure 11-29).
const (
	ICR_VECTOR          = 0xff
	ICR_DELIVERY_MODE   = 7 << 8
	ICR_DEST_LOGICAL    = 1 << 11
	ICR_DELIVERY_STATUS = 1 << 12 // read only; always idle here
	ICR_LEVEL_ASSERT    = 1 << 14
	ICR_TRIGGER_LEVEL   = 1 << 15
	ICR_SHORTHAND       = 3 << 18
	ICR_SHORTHAND_SHIFT = 18
	// ICR_XAPIC_DEST_SHIFT is the position of the 8-bit destination in
	// ICR_HI (xAPIC); the x2APIC ICR has a 32-bit destination in bits
	// 63:32.
	ICR_XAPIC_DEST_SHIFT = 24
	icrLowWritable       = ICR_VECTOR | ICR_DELIVERY_MODE | ICR_DEST_LOGICAL |
		ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL | ICR_SHORTHAND
)

// DeliveryMode is the delivery mode of an interrupt message: ICR bits
// 10:8, LVT bits 10:8, IOAPIC redirection entry bits 10:8 and MSI data bits
// 10:8 share one encoding (Intel SDM Vol. 3A, §11.6.1, §11.11.2; 82093AA
// datasheet §3.2.4).
type DeliveryMode uint8

// Delivery modes.
const (
	DELIVERY_FIXED           DeliveryMode = 0
	DELIVERY_LOWEST_PRIORITY DeliveryMode = 1
	DELIVERY_SMI             DeliveryMode = 2
	DELIVERY_NMI             DeliveryMode = 4
	DELIVERY_INIT            DeliveryMode = 5
	DELIVERY_STARTUP         DeliveryMode = 6
	DELIVERY_EXTINT          DeliveryMode = 7
)

var deliveryNames = [8]string{"fixed", "lowest-priority", "smi", "reserved3", "nmi", "init", "startup", "extint"}

// String names the mode.
func (m DeliveryMode) String() string { return deliveryNames[m&7] }

// Shorthand is the ICR destination shorthand (bits 19:18).
type Shorthand uint8

// Destination shorthands.
const (
	SHORTHAND_NONE               Shorthand = 0
	SHORTHAND_SELF               Shorthand = 1
	SHORTHAND_ALL_INCLUDING_SELF Shorthand = 2
	SHORTHAND_ALL_EXCLUDING_SELF Shorthand = 3
)

// Broadcast destinations: an 8-bit destination (xAPIC ICR, IOAPIC, MSI)
// of FFh and a 32-bit x2APIC destination of FFFFFFFFh reach every local
// APIC in both physical and logical mode (§11.6.2.1, §11.6.2.2, §11.12.9).
const (
	XAPIC_BROADCAST  = 0xff
	X2APIC_BROADCAST = 0xffffffff
)

// FIRST_VALID_VECTOR is the lowest vector a fixed interrupt may use;
// 0-15 are reported as illegal in the ESR (§11.5.2 "Valid Interrupt
// Vectors").
const FIRST_VALID_VECTOR = 16

// Timer input clock defaults.
const (
	// TIMER_HZ_DEFAULT is the APIC timer's input clock before the divider
	// when Config.TimerHz is 0: 1 GHz, the bus clock KVM presents, so
	// one count at divide-by-1 is one nanosecond. Guests calibrate it
	// (Linux against the PIT, HPET or TSC).
	TIMER_HZ_DEFAULT = 1_000_000_000
	// MIN_TIMER_PERIOD_NS bounds how often a periodic timer arms a host
	// timer: expiries closer than this to the previous one are coalesced
	// into the next period boundary at least this far away, so a guest
	// programming a 1-count period cannot flood the host.
	MIN_TIMER_PERIOD_NS = 100_000
)

package lapic

import "github.com/keel-hv/keel/hv/arch"

// HandlesMSR reports whether index is an MSR ReadMSR and WriteMSR answer:
// IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC range 0x800-0x8ff.
// The core routes these to the vCPU's LAPIC instead of its MSR table.
func HandlesMSR(index uint32) bool {
	return index == IA32_APIC_BASE || index == IA32_TSC_DEADLINE ||
		index >= X2APIC_MSR_BASE && index <= X2APIC_MSR_LAST
}

// ReadMSR answers RDMSR of index. A non-nil error means #GP(0): an x2APIC
// register while not in x2APIC mode, a reserved or write-only register,
// IA32_TSC_DEADLINE without the TSC-deadline feature, or an MSR
// HandlesMSR rejects. It does not allocate.
func (l *LAPIC) ReadMSR(index uint32) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case index == IA32_APIC_BASE:
		return l.base, nil
	case index == IA32_TSC_DEADLINE:
		if !l.tscDeadline {
			return 0, ErrNoTSCDeadline
		}
		// Reads 0 outside TSC-deadline mode (§11.5.4.1).
		if l.lvt[lvtTimer]&LVT_TIMER_MODE != TIMER_TSC_DEADLINE {
			return 0, nil
		}
		return l.timer.deadline, nil
	case index >= X2APIC_MSR_BASE && index <= X2APIC_MSR_LAST:
		if l.mode != modeX2APIC {
			return 0, ErrNotX2APIC
		}
		return l.readRegLocked((index-X2APIC_MSR_BASE)<<4, true)
	}
	return 0, ErrNotLAPICMSR
}

// WriteMSR answers WRMSR of v to index. A non-nil error means #GP(0):
// besides ReadMSR's cases, read-only registers, bits 63:32 set in a 32-bit
// x2APIC register, a non-zero EOI or ESR write, and illegal
// IA32_APIC_BASE values (see SetAPICBase).
func (l *LAPIC) WriteMSR(index uint32, v uint64) error {
	var e effects
	l.mu.Lock()
	err := l.writeMSRLocked(index, v, &e)
	l.mu.Unlock()
	l.apply(&e)
	return err
}

func (l *LAPIC) writeMSRLocked(index uint32, v uint64, e *effects) error {
	switch {
	case index == IA32_APIC_BASE:
		return l.setAPICBaseLocked(v)
	case index == IA32_TSC_DEADLINE:
		if !l.tscDeadline {
			return ErrNoTSCDeadline
		}
		// Ignored outside TSC-deadline mode (§11.5.4.1).
		if l.lvt[lvtTimer]&LVT_TIMER_MODE == TIMER_TSC_DEADLINE {
			l.writeDeadlineLocked(v, e)
		}
		return nil
	case index >= X2APIC_MSR_BASE && index <= X2APIC_MSR_LAST:
		if l.mode != modeX2APIC {
			return ErrNotX2APIC
		}
		if index != X2APIC_ICR && v>>32 != 0 {
			return ErrReservedBits
		}
		return l.writeRegLocked((index-X2APIC_MSR_BASE)<<4, v, true, e)
	}
	return ErrNotLAPICMSR
}

// APICBase returns IA32_APIC_BASE.
func (l *LAPIC) APICBase() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base
}

// SetAPICBase writes IA32_APIC_BASE as WRMSR does (Intel SDM Vol. 3A,
// §11.4.4 "Local APIC Status and Location", §11.12.5 "x2APIC State
// Transitions"). It fails, changing nothing, for bits outside the base
// address (51:12), BSP, EN and EXTD (EXTD only if Config.X2APIC), and for
// the illegal transitions: EXTD without EN, x2APIC to xAPIC, disabled to
// x2APIC. BSP is read-only and keeps its value.
//
// Clearing EN disables the LAPIC: it leaves the Bus's reach, its LINT
// pins drive the processor directly, and its registers return to the
// power-up state (xAPIC ID from Config), which is what the guest finds
// when it sets EN again. Setting EXTD switches to x2APIC mode keeping the
// register state, with the ID register showing the x2APIC ID and the LDR
// derived from it. A new base address is recorded and reported by
// MMIOBase, not acted on: the core decides which address it routes to
// the LAPIC.
func (l *LAPIC) SetAPICBase(v uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setAPICBaseLocked(v)
}

func (l *LAPIC) setAPICBaseLocked(v uint64) error {
	allowed := uint64(APIC_BASE_ADDR_MASK | arch.APIC_BASE_EN | arch.APIC_BASE_BSP)
	if l.x2apicOK {
		allowed |= arch.APIC_BASE_EXTD
	}
	if v&^allowed != 0 {
		return ErrReservedBits
	}
	var mode apicMode
	switch v & (arch.APIC_BASE_EN | arch.APIC_BASE_EXTD) {
	case 0:
		mode = modeDisabled
	case arch.APIC_BASE_EN:
		mode = modeXAPIC
	case arch.APIC_BASE_EN | arch.APIC_BASE_EXTD:
		mode = modeX2APIC
	default:
		return ErrModeTransition
	}
	old := l.mode
	if old == modeX2APIC && mode == modeXAPIC || old == modeDisabled && mode == modeX2APIC {
		return ErrModeTransition
	}
	l.base = v&^arch.APIC_BASE_BSP | l.base&arch.APIC_BASE_BSP
	l.mode = mode
	if mode == modeDisabled && old != modeDisabled {
		l.xid = uint8(l.id)
		l.initResetLocked()
		return nil
	}
	// Entering x2APIC mode, the ID becomes the initial APIC ID whatever
	// the xAPIC ID register was set to (§11.12.5.1); publishLocked
	// routes by it from now on.
	l.publishLocked()
	return nil
}

// MMIOBase returns the guest-physical base of the xAPIC register page and
// whether the page is decoded (the LAPIC is in xAPIC mode). The xAPIC
// page is per vCPU while the MMIO bus is per VM, so the core routes
// accesses to [base, base+PAGE_SIZE) to the accessing vCPU's LAPIC.
func (l *LAPIC) MMIOBase() (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base & APIC_BASE_ADDR_MASK, l.mode == modeXAPIC && !l.closed
}

// X2APICMode reports whether the LAPIC is in x2APIC mode.
func (l *LAPIC) X2APICMode() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mode == modeX2APIC
}

package lapic

import "encoding/binary"

// lvtIndex maps an LVT register offset to its index.
func lvtIndex(reg uint32) (int, bool) {
	switch reg {
	case LVT_CMCI:
		return lvtCMCI, true
	case LVT_TIMER:
		return lvtTimer, true
	case LVT_THERMAL:
		return lvtThermal, true
	case LVT_PERF:
		return lvtPerf, true
	case LVT_LINT0:
		return lvtLINT0, true
	case LVT_LINT1:
		return lvtLINT1, true
	case LVT_ERROR:
		return lvtError, true
	}
	return 0, false
}

// lvtWritable is the set of bits software may write in each LVT entry
// (§11.5.1, Figure 11-8): the timer has no delivery mode (always fixed)
// but a timer mode; the error entry has only vector and mask; LINT0 and
// LINT1 have polarity and trigger mode; delivery status and remote IRR
// are read only.
func (l *LAPIC) lvtWritable(i int) uint32 {
	switch i {
	case lvtTimer:
		m := uint32(LVT_VECTOR | LVT_MASKED | TIMER_PERIODIC)
		if l.tscDeadline {
			m |= TIMER_TSC_DEADLINE
		}
		return m
	case lvtError:
		return LVT_VECTOR | LVT_MASKED
	case lvtLINT0, lvtLINT1:
		return LVT_VECTOR | LVT_DELIVERY_MODE | LVT_POLARITY_LOW | LVT_TRIGGER_LEVEL | LVT_MASKED
	}
	return LVT_VECTOR | LVT_DELIVERY_MODE | LVT_MASKED
}

// readRegLocked reads register reg (a 16-byte-aligned offset) in xAPIC
// (x2 false) or x2APIC (x2 true) form. Errors are ErrReserved and
// ErrWriteOnly.
func (l *LAPIC) readRegLocked(reg uint32, x2 bool) (uint64, error) {
	switch {
	case reg >= ISR && reg < ISR+0x80:
		return uint64(l.isr[(reg-ISR)>>4]), nil
	case reg >= TMR && reg < TMR+0x80:
		return uint64(l.tmr[(reg-TMR)>>4]), nil
	case reg >= IRR && reg < IRR+0x80:
		return uint64(l.irr[(reg-IRR)>>4]), nil
	}
	if i, ok := lvtIndex(reg); ok {
		return uint64(l.lvt[i]), nil
	}
	switch reg {
	case ID:
		if x2 {
			return uint64(l.id), nil
		}
		return uint64(l.xid) << 24, nil
	case VERSION:
		return VERSION_VALUE, nil
	case TPR:
		return uint64(l.tpr), nil
	case PPR:
		return uint64(l.pprLocked()), nil
	case LDR:
		return uint64(l.ldrLocked()), nil
	case SVR:
		return uint64(l.svr), nil
	case ESR:
		return uint64(l.esr), nil
	case ICR_LO:
		if x2 {
			return l.icr, nil
		}
		return l.icr & 0xffffffff, nil
	case INITIAL_COUNT:
		return uint64(l.timer.initial), nil
	case CURRENT_COUNT:
		return uint64(l.currentCountLocked(l.clock.Now())), nil
	case DIVIDE_CONFIG:
		return uint64(l.timer.divide), nil
	case EOI:
		if x2 {
			return 0, ErrWriteOnly
		}
		return 0, nil
	case SELF_IPI:
		if x2 {
			return 0, ErrWriteOnly
		}
	}
	if !x2 {
		switch reg {
		case APR:
			return uint64(l.aprLocked()), nil
		case RRD:
			return 0, nil
		case DFR:
			return uint64(l.dfr), nil
		case ICR_HI:
			return l.icr >> 32, nil
		}
	}
	return 0, ErrReserved
}

// writeRegLocked writes v to register reg in xAPIC (x2 false) or x2APIC
// (x2 true) form. Only the ICR takes 64 bits in x2APIC mode; the caller
// has refused larger values for the others. Errors are ErrReserved,
// ErrReadOnly and ErrReservedBits; in xAPIC mode writes to read-only
// registers are ignored.
func (l *LAPIC) writeRegLocked(reg uint32, v uint64, x2 bool, e *effects) error {
	if i, ok := lvtIndex(reg); ok {
		l.writeLVTLocked(i, uint32(v), e)
		return nil
	}
	v32 := uint32(v)
	switch reg {
	case ID:
		if x2 {
			return ErrReadOnly
		}
		// The xAPIC ID is writable on Pentium 4 and later
		// (§11.4.6 "Local APIC ID").
		l.xid = uint8(v32 >> 24)
		l.publishLocked()
		return nil
	case TPR:
		l.tpr = v32 & 0xff
		return nil
	case EOI:
		if x2 && v != 0 {
			return ErrReservedBits
		}
		l.eoiLocked(e)
		return nil
	case SVR:
		l.svr = v32 & svrWritable
		if l.svr&SVR_APIC_ENABLED == 0 {
			// Software disable masks every LVT entry (§11.4.7.2).
			for i := range l.lvt {
				l.lvt[i] |= LVT_MASKED
			}
		}
		l.publishLocked()
		return nil
	case ESR:
		if x2 && v != 0 {
			return ErrReservedBits
		}
		// A write latches the errors seen since the last one
		// (§11.5.3).
		l.esr, l.esrNew = l.esrNew, 0
		return nil
	case ICR_LO:
		if x2 {
			l.icr = v &^ (0xffffffff &^ icrLowWritable)
		} else {
			l.icr = l.icr&^0xffffffff | uint64(v32&icrLowWritable)
		}
		l.sendIPILocked(x2, e)
		return nil
	case INITIAL_COUNT:
		l.writeInitialCountLocked(v32, e)
		return nil
	case DIVIDE_CONFIG:
		l.writeDivideLocked(v32&DIVIDE_CONFIG_MASK, e)
		return nil
	case SELF_IPI:
		if !x2 {
			return ErrReserved
		}
		// §11.12.11: a fixed, edge-triggered interrupt to self.
		if l.enabledLocked() {
			l.requestLocked(uint8(v32), false, e)
		}
		return nil
	case VERSION, PPR, LDR, CURRENT_COUNT:
		if x2 {
			return ErrReadOnly
		}
		if reg == LDR {
			l.ldr = v32 & 0xff000000
			l.publishLocked()
		}
		return nil
	}
	if reg >= ISR && reg < IRR+0x80 {
		if x2 {
			return ErrReadOnly
		}
		return nil
	}
	if !x2 {
		switch reg {
		case APR, RRD:
			return nil
		case DFR:
			l.dfr = v32&DFR_MODEL_FLAT | DFR_RESERVED_ONES
			l.publishLocked()
			return nil
		case ICR_HI:
			l.icr = l.icr&0xffffffff | uint64(v32&0xff000000)<<32
			return nil
		}
	}
	return ErrReserved
}

// writeLVTLocked writes LVT entry i, keeping the read-only bits and, while
// the LAPIC is software-disabled, the mask (§11.4.7.2).
func (l *LAPIC) writeLVTLocked(i int, v uint32, e *effects) {
	w := l.lvtWritable(i)
	old := l.lvt[i]
	n := old&^w | v&w
	if l.svr&SVR_APIC_ENABLED == 0 {
		n |= LVT_MASKED
	}
	l.lvt[i] = n
	switch i {
	case lvtTimer:
		l.timerLVTChangedLocked(old, n, e)
	case lvtLINT0, lvtLINT1:
		pin := uint8(i - lvtLINT0)
		if l.lintLevelTriggered(pin, n) {
			l.evalLINTLocked(pin, e)
		}
	}
}

// sendIPILocked sends the IPI the ICR now describes (§11.6.1). An INIT
// level de-assert (INIT, level trigger, level 0) only synchronised
// arbitration IDs on old processors and is ignored; fixed and lowest-
// priority IPIs with vectors 0-15 raise a send-illegal-vector error;
// the self shorthand carries only fixed interrupts; SMI and the
// reserved modes are dropped.
func (l *LAPIC) sendIPILocked(x2 bool, e *effects) {
	lo := uint32(l.icr)
	mode := DeliveryMode(lo >> 8 & 7)
	sh := Shorthand(lo >> ICR_SHORTHAND_SHIFT & 3)
	m := Message{Vector: uint8(lo), Mode: mode, Logical: lo&ICR_DEST_LOGICAL != 0,
		Level: lo&ICR_TRIGGER_LEVEL != 0, Shorthand: sh, Source: l, X2APIC: x2}
	if x2 {
		m.Dest = uint32(l.icr >> 32)
	} else {
		m.Dest = uint32(l.icr>>(32+ICR_XAPIC_DEST_SHIFT)) & 0xff
	}
	switch mode {
	case DELIVERY_FIXED, DELIVERY_LOWEST_PRIORITY:
		if m.Vector < FIRST_VALID_VECTOR {
			l.errorLocked(ESR_SEND_ILLEGAL_VECTOR, e)
			return
		}
	case DELIVERY_INIT:
		if lo&ICR_LEVEL_ASSERT == 0 && m.Level {
			return
		}
		m.Level = false
	case DELIVERY_NMI, DELIVERY_STARTUP:
		m.Level = false
	default:
		return
	}
	if sh == SHORTHAND_SELF && mode != DELIVERY_FIXED {
		return
	}
	e.send, e.msg = true, m
}

// Read implements bus.Device for the xAPIC register page. A register is
// read as its 32-bit value at the start of its 16-byte slot: an access
// of any size returns the bytes of that value it covers and zero for the
// rest of the slot. Reserved registers read zero and set the ESR's
// illegal-register-address bit. In x2APIC mode and while hardware-
// disabled the page is not decoded and reads all ones (§11.12.1.2,
// §11.4.3).
func (l *LAPIC) Read(offset uint64, data []byte) {
	var e effects
	l.mu.Lock()
	if l.mode != modeXAPIC || l.closed {
		l.mu.Unlock()
		for i := range data {
			data[i] = 0xff
		}
		return
	}
	v, err := l.readRegLocked(uint32(offset&(PAGE_SIZE-1)&^0xf), false)
	if err != nil {
		l.errorLocked(ESR_ILLEGAL_REGISTER, &e)
	}
	l.mu.Unlock()
	l.apply(&e)
	for i := range data {
		b := offset&0xf + uint64(i)
		data[i] = 0
		if b < 4 {
			data[i] = byte(v >> (8 * b))
		}
	}
}

// Write implements bus.Device for the xAPIC register page. Only 32-bit
// stores at the start of a register's 16-byte slot take effect (an 8-byte
// store there writes its low half); the SDM leaves other accesses
// undefined and they are ignored. Writes to read-only registers are
// ignored; writes to reserved ones set the ESR's illegal-register-address
// bit. In x2APIC mode and while hardware-disabled writes are dropped.
func (l *LAPIC) Write(offset uint64, data []byte) {
	if len(data) < 4 || offset&0xf != 0 {
		return
	}
	v := binary.LittleEndian.Uint32(data)
	var e effects
	l.mu.Lock()
	if l.mode != modeXAPIC || l.closed {
		l.mu.Unlock()
		return
	}
	if err := l.writeRegLocked(uint32(offset&(PAGE_SIZE-1)), uint64(v), false, &e); err != nil {
		l.errorLocked(ESR_ILLEGAL_REGISTER, &e)
	}
	l.mu.Unlock()
	l.apply(&e)
}

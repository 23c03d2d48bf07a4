// Package lapic models a VM's local APICs (Intel SDM Vol. 3A, Chapter 11
// "Advanced Programmable Interrupt Controller (APIC)") and the APIC bus
// that connects them to each other, to I/O APICs and to MSIs.
//
// Each virtual processor has one LAPIC. The guest programs it through the
// xAPIC register page (LAPIC implements the bus.Device of that page) or,
// once IA32_APIC_BASE.EXTD is set, through the x2APIC MSRs (ReadMSR,
// WriteMSR). Interrupts reach it as Messages on the Bus (IPIs from the
// ICR, IOAPIC redirection entries, MSIs), from its own LVT sources (timer,
// LINT0, LINT1, error) or through Deliver. Fixed interrupts wait in the
// 256-bit IRR; PendingVector picks the highest one whose priority class
// beats the processor priority (PPR, from TPR and the highest in-service
// vector), the vCPU injects it and calls Accept (IRR to ISR), and the
// guest's EOI retires the highest ISR vector, broadcasting level-triggered
// EOIs to the Bus's EOI listeners (the IOAPIC). NMI, INIT and SIPI, which
// the processor core handles, leave through the CPU interface.
//
// # Hooking a vCPU
//
// Before each guest entry, after NMI, INIT and SIPI (which CPU raised on
// hv/irq.Lines), the core asks: if ExtINTPending() — or, with a polled
// 8259 model, AcceptsPICInterrupt() && pic.Pending() — and the guest can
// take an interrupt, it runs the PIC's acknowledge cycle, calls AckExtINT
// and injects the PIC's vector; otherwise if PendingVector() reports v, it
// calls Accept(v) and injects v when the guest can take it, or requests an
// interrupt window. A halted vCPU is runnable when RFLAGS.IF is set and
// either would deliver. The guest's EOI (xAPIC register, x2APIC MSR)
// needs nothing from the core. MSRs for which HandlesMSR is true go to
// ReadMSR and WriteMSR (an error is #GP(0)); MOV to and from CR8 to SetCR8
// and CR8; MMIO accesses in [MMIOBase(), +PAGE_SIZE) to the accessing
// vCPU's own LAPIC (Read, Write).
//
// # Locking
//
// Every LAPIC has a mutex, taken by its own vCPU (register accesses,
// PendingVector, Accept), by other vCPUs and devices delivering Messages,
// and by its timer callbacks. It is a leaf lock: while holding it a LAPIC
// calls only its vclock.Clock (Now, AfterFunc, Timer.Stop) and its TSC
// function. The side effects of a state change — IPIs to send, EOI
// broadcasts, CPU.Notify, NMI, INIT, SIPI — are collected under the lock
// and performed after it is released, so CPU implementations and EOI
// listeners may call back into any LAPIC (the IOAPIC re-delivers from its
// EOI listener). The Bus takes no lock to deliver: it reads an atomic
// snapshot of its LAPICs and lock-free copies of their routing registers.
// The lock order is therefore: ioapic.IOAPIC.mu and LAPIC.mu are never
// held together; LAPIC.mu may be held while taking the clock's own lock.
//
// The delivery paths (Bus.Deliver, Deliver, PendingVector, Accept, EOI)
// allocate nothing.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package lapic

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/arch"
)

// CPU is the processor core behind a LAPIC: what the LAPIC signals that
// is not a vector in its IRR. Every method may be called from any
// goroutine, must not block, and may call back into the LAPIC. LinesCPU
// adapts hv/irq.Lines: NMI, INIT and SIPI are its RaiseNMI, RaiseInit and
// RaiseSIPI, and Notify is its wake-and-kick.
type CPU interface {
	// Notify reports that PendingVector or ExtINTPending may have
	// changed: wake the vCPU if halted, kick it out of the guest if
	// running, so it re-evaluates before its next entry.
	Notify()
	// NMI signals a non-maskable interrupt.
	NMI()
	// INIT signals INIT: the LAPIC has already reset itself (INIT
	// state, §11.4.7.3); the core resets the processor and waits for
	// SIPI.
	INIT()
	// SIPI signals a start-up IPI with the given vector (the processor
	// starts at vector<<12 if it is waiting for SIPI, and ignores it
	// otherwise).
	SIPI(vector uint8)
}

// Config describes one LAPIC.
type Config struct {
	// ID is the initial APIC ID: the x2APIC ID, and in xAPIC mode its
	// low 8 bits are the ID register's reset value. Keel uses the vCPU
	// index. IDs above 254 need X2APIC (and a guest that switches to
	// x2APIC mode before using them).
	ID uint32
	// BSP sets IA32_APIC_BASE.BSP: this is the bootstrap processor.
	BSP bool
	// X2APIC lets the guest set IA32_APIC_BASE.EXTD (x2APIC mode); it
	// must match the CPUID policy.
	X2APIC bool
	// Clock runs the timer. Required.
	Clock vclock.Clock
	// TimerHz is the timer's input clock before the divider;
	// TIMER_HZ_DEFAULT (1 GHz) if 0. It is the rate the guest measures
	// when it calibrates the APIC timer.
	TimerHz uint64
	// TSCDeadline enables the TSC-deadline timer mode and the
	// IA32_TSC_DEADLINE MSR; it must match CPUID.01H:ECX[24]. TSC and
	// TSCHz are then required.
	TSCDeadline bool
	// TSC returns the guest's time-stamp counter now; TSCHz is its
	// rate. The TSC must advance with Clock (tests derive both from a
	// vclock.Fake). TSC is called with the LAPIC's lock held: it must
	// not call into the LAPIC.
	TSC   func() uint64
	TSCHz uint64
	// VirtualWire makes Reset leave the LAPIC as PC firmware does before
	// it boots an operating system: software-enabled, LINT0 as ExtINT
	// and LINT1 as NMI, so the 8259 PIC reaches the processor (virtual
	// wire mode, MultiProcessor Specification §3.6.2.2). Without it the
	// LAPIC comes up in the SDM's power-up state, with every LVT masked.
	// INIT always gives the SDM's state.
	VirtualWire bool
}

// Errors of ReadMSR and WriteMSR. Each means the guest's RDMSR or WRMSR
// raises #GP(0); they are preallocated so a guest probing MSRs costs no
// allocation.
var (
	ErrNotX2APIC = errors.New("lapic: x2APIC register MSR accessed while the local APIC is not in x2APIC mode " +
		"(IA32_APIC_BASE.EXTD clear); the guest gets #GP")
	ErrReserved = errors.New("lapic: the MSR is not an implemented x2APIC register " +
		"(APR, RRD, DFR and ICR bits 63:32 exist only in xAPIC mode); the guest gets #GP")
	ErrReadOnly     = errors.New("lapic: write to a read-only local APIC register; the guest gets #GP")
	ErrWriteOnly    = errors.New("lapic: read of a write-only local APIC register (EOI, SELF IPI); the guest gets #GP")
	ErrReservedBits = errors.New("lapic: write sets reserved bits (bits 63:32 of a 32-bit x2APIC register, " +
		"a non-zero EOI or ESR write, or IA32_APIC_BASE bits outside the base, BSP, EXTD and EN); the guest gets #GP")
	ErrModeTransition = errors.New("lapic: illegal IA32_APIC_BASE mode transition (EXTD without EN, x2APIC to " +
		"xAPIC, or disabled to x2APIC; SDM Vol. 3A §11.12.5); the guest gets #GP")
	ErrNoTSCDeadline = errors.New("lapic: IA32_TSC_DEADLINE accessed but the TSC-deadline timer is not exposed; the guest gets #GP")
	ErrNotLAPICMSR   = errors.New("lapic: not a local APIC MSR (IA32_APIC_BASE, IA32_TSC_DEADLINE or 0x800-0x8ff)")
)

// APIC_BASE_ADDR_MASK covers IA32_APIC_BASE bits 51:12, the base address
// field at the architectural maximum physical address width.
const APIC_BASE_ADDR_MASK = 0x000ffffffffff000

// apicMode is the state IA32_APIC_BASE.EN and EXTD select (§11.12.5).
type apicMode uint8

const (
	modeDisabled apicMode = iota
	modeXAPIC
	modeX2APIC
)

// Routing flags published for the Bus.
const (
	routeMode      = 3      // apicMode
	routeSWEnabled = 1 << 2 // SVR software enable
	routeFlat      = 1 << 3 // DFR flat model
)

// LVT indices.
const (
	lvtCMCI = iota
	lvtTimer
	lvtThermal
	lvtPerf
	lvtLINT0
	lvtLINT1
	lvtError
	numLVT
)

// vecs is a 256-bit vector bitmap laid out as the ISR, TMR and IRR
// registers: word i holds vectors 32i to 32i+31.
type vecs [8]uint32

func (v *vecs) set(n uint8)       { v[n>>5] |= 1 << (n & 31) }
func (v *vecs) clear(n uint8)     { v[n>>5] &^= 1 << (n & 31) }
func (v *vecs) test(n uint8) bool { return v[n>>5]&(1<<(n&31)) != 0 }

// highest returns the highest set vector.
func (v *vecs) highest() (uint8, bool) {
	for i := 7; i >= 0; i-- {
		if w := v[i]; w != 0 {
			return uint8(i*32 + 31 - bits.LeadingZeros32(w)), true
		}
	}
	return 0, false
}

// LAPIC is one local APIC. Create it with New.
type LAPIC struct {
	bus         *Bus
	cpu         atomic.Pointer[cpuBox]
	clock       vclock.Clock
	id          uint32
	bsp         bool
	x2apicOK    bool
	timerHz     uint64
	tscDeadline bool
	tsc         func() uint64
	tscHz       uint64
	virtualWire bool
	lint        [2]lintLine

	// Lock-free copies of the routing state for the Bus, written under
	// mu: the current APIC ID, the LDR and route* flags.
	rID, rLDR, rFlags atomic.Uint32

	mu     sync.Mutex
	closed bool
	base   uint64 // IA32_APIC_BASE
	mode   apicMode
	xid    uint8 // xAPIC ID register, bits 31:24
	tpr    uint32
	ldr    uint32 // xAPIC LDR (x2APIC mode derives it from the ID)
	dfr    uint32
	svr    uint32
	irr    vecs
	isr    vecs
	tmr    vecs
	esr    uint32 // latched at the last ESR write
	esrNew uint32 // errors since then
	lvt    [numLVT]uint32
	icr    uint64 // xAPIC: ICR_HI<<32 | ICR_LO
	pin    [2]bool
	extint bool // an ExtINT message waits for the core's INTA
	timer  timerState
}

// lintLine is LINT0 or LINT1 as an irqline.Line.
type lintLine struct {
	l   *LAPIC
	pin uint8
}

// SetLevel implements irqline.Line.
func (p *lintLine) SetLevel(high bool) { p.l.setLINT(p.pin, high) }

// New creates a LAPIC in its power-up state and attaches it to bus. It
// fails if the configuration is incomplete or another LAPIC on bus has
// the same ID.
func New(bus *Bus, cfg Config) (*LAPIC, error) {
	switch {
	case bus == nil:
		return nil, fmt.Errorf("lapic: LAPIC %d created without a Bus; create one per VM with NewBus", cfg.ID)
	case cfg.Clock == nil:
		return nil, fmt.Errorf("lapic: LAPIC %d has no Clock; pass vclock.NewReal() or a vclock.Fake", cfg.ID)
	case cfg.TSCDeadline && (cfg.TSC == nil || cfg.TSCHz == 0):
		return nil, fmt.Errorf("lapic: LAPIC %d has TSCDeadline without TSC and TSCHz; give the guest TSC and its rate", cfg.ID)
	case !cfg.X2APIC && cfg.ID > 0xfe:
		return nil, fmt.Errorf("lapic: LAPIC ID %d does not fit xAPIC's 8 bits (FFh is broadcast); enable X2APIC", cfg.ID)
	}
	l := &LAPIC{bus: bus, clock: cfg.Clock, id: cfg.ID, bsp: cfg.BSP, x2apicOK: cfg.X2APIC,
		timerHz: cfg.TimerHz, tscDeadline: cfg.TSCDeadline, tsc: cfg.TSC, tscHz: cfg.TSCHz,
		virtualWire: cfg.VirtualWire}
	l.cpu.Store(&cpuBox{nopCPU{}})
	if l.timerHz == 0 {
		l.timerHz = TIMER_HZ_DEFAULT
	}
	l.lint[0] = lintLine{l, 0}
	l.lint[1] = lintLine{l, 1}
	l.Reset()
	if err := bus.attach(l); err != nil {
		return nil, err
	}
	return l, nil
}

// SetCPU connects the processor core. Until it is called, NMI, INIT, SIPI
// and notifications go nowhere. Call it before the vCPU runs.
func (l *LAPIC) SetCPU(c CPU) {
	if c == nil {
		c = nopCPU{}
	}
	l.cpu.Store(&cpuBox{c})
}

// LinesCPU adapts the core's per-vCPU interrupt lines (hv/irq.Lines: its
// RaiseNMI, RaiseInit and RaiseSIPI) and a wake-and-kick function to CPU.
type LinesCPU struct {
	Lines interface {
		RaiseNMI()
		RaiseInit()
		RaiseSIPI(vector uint8)
	}
	// Wake wakes the vCPU if halted and kicks it out of the guest if
	// running; nil does nothing.
	Wake func()
}

// Notify implements CPU.
func (c LinesCPU) Notify() {
	if c.Wake != nil {
		c.Wake()
	}
}

// NMI implements CPU.
func (c LinesCPU) NMI() { c.Lines.RaiseNMI() }

// INIT implements CPU.
func (c LinesCPU) INIT() { c.Lines.RaiseInit() }

// SIPI implements CPU.
func (c LinesCPU) SIPI(vector uint8) { c.Lines.RaiseSIPI(vector) }

// cpuBox lets an interface value live in an atomic.Pointer.
type cpuBox struct{ CPU }

// nopCPU is the CPU of an unconnected LAPIC.
type nopCPU struct{}

func (nopCPU) Notify()    {}
func (nopCPU) NMI()       {}
func (nopCPU) INIT()      {}
func (nopCPU) SIPI(uint8) {}

// Close stops the timer and detaches the LAPIC from its Bus; it then
// accepts no more messages.
func (l *LAPIC) Close() {
	l.mu.Lock()
	l.closed = true
	l.stopHostLocked()
	l.publishLocked()
	l.mu.Unlock()
	l.bus.detach(l)
}

// InitialID returns the ID given at creation (the x2APIC ID).
func (l *LAPIC) InitialID() uint32 { return l.id }

// Reset puts the LAPIC in its power-up state (Intel SDM Vol. 3A,
// §11.4.7.1 "Local APIC State After Power-Up or Reset"): IA32_APIC_BASE
// 0xfee00000 with EN (and BSP if configured), xAPIC mode, ID from Config,
// IRR/ISR/TMR/ICR/LDR/TPR/timer counts and divide zero, DFR all ones, every
// LVT masked, SVR FFh (software disabled) — or, with Config.VirtualWire,
// the firmware's virtual wire setup.
func (l *LAPIC) Reset() {
	l.mu.Lock()
	l.base = arch.APIC_BASE_DEFAULT | arch.APIC_BASE_EN
	if l.bsp {
		l.base |= arch.APIC_BASE_BSP
	}
	l.mode = modeXAPIC
	l.xid = uint8(l.id)
	l.initResetLocked()
	if l.virtualWire {
		l.svr = SVR_RESET | SVR_APIC_ENABLED
		l.lvt[lvtLINT0] = uint32(DELIVERY_EXTINT) << 8
		l.lvt[lvtLINT1] = uint32(DELIVERY_NMI) << 8
		l.publishLocked()
	}
	l.mu.Unlock()
}

// InitReset applies INIT to the LAPIC (§11.4.7.3 "Local APIC State After
// an INIT Reset"): the power-up register state, except that the APIC ID,
// IA32_APIC_BASE and the x2APIC mode are kept. An INIT message does this
// itself before calling CPU.INIT; the core calls InitReset for INITs that
// do not come through the APIC.
func (l *LAPIC) InitReset() {
	l.mu.Lock()
	l.initResetLocked()
	l.mu.Unlock()
}

func (l *LAPIC) initResetLocked() {
	l.tpr, l.ldr, l.dfr, l.svr = 0, 0, DFR_RESET, SVR_RESET
	l.irr, l.isr, l.tmr = vecs{}, vecs{}, vecs{}
	l.esr, l.esrNew, l.icr = 0, 0, 0
	for i := range l.lvt {
		l.lvt[i] = LVT_RESET
	}
	l.extint = false
	l.resetTimerLocked()
	l.publishLocked()
}

// publishLocked copies the routing state for the Bus.
func (l *LAPIC) publishLocked() {
	f := uint32(l.mode)
	if l.closed {
		f = uint32(modeDisabled)
	}
	if l.svr&SVR_APIC_ENABLED != 0 {
		f |= routeSWEnabled
	}
	if l.dfr&DFR_MODEL_FLAT == DFR_MODEL_FLAT {
		f |= routeFlat
	}
	l.rID.Store(l.currentIDLocked())
	l.rLDR.Store(l.ldrLocked())
	l.rFlags.Store(f)
}

// currentIDLocked is the APIC ID destinations are matched against.
func (l *LAPIC) currentIDLocked() uint32 {
	if l.mode == modeX2APIC {
		return l.id
	}
	return uint32(l.xid)
}

// ldrLocked is the LDR as read by the guest. In x2APIC mode it is derived
// from the x2APIC ID: cluster ID[19:4] in bits 31:16, bit ID[3:0] set in
// bits 15:0 (§11.12.10.2 "Deriving Logical x2APIC ID from the Local x2APIC
// ID").
func (l *LAPIC) ldrLocked() uint32 {
	if l.mode == modeX2APIC {
		return (l.id>>4)<<16 | 1<<(l.id&0xf)
	}
	return l.ldr
}

// pprLocked computes the processor priority (§11.8.3.1 "Task and
// Processor Priorities"): TPR if its class is at least that of the
// highest in-service vector, otherwise that vector's class.
func (l *LAPIC) pprLocked() uint32 {
	isrv, _ := l.isr.highest()
	if l.tpr>>4 >= uint32(isrv)>>4 {
		return l.tpr
	}
	return uint32(isrv) & 0xf0
}

// aprLocked computes the arbitration priority (§11.8.3.1, Figure 11-15
// discussion): what lowest-priority arbitration would compare.
func (l *LAPIC) aprLocked() uint32 {
	isrv, _ := l.isr.highest()
	irrv, _ := l.irr.highest()
	t := l.tpr >> 4
	if t >= uint32(irrv)>>4 && t > uint32(isrv)>>4 {
		return l.tpr
	}
	return max(l.tpr&0xf0, uint32(isrv)&0xf0, uint32(irrv)&0xf0)
}

func (l *LAPIC) enabledLocked() bool {
	return l.mode != modeDisabled && !l.closed && l.svr&SVR_APIC_ENABLED != 0
}

// effects are the side effects of a change made under the lock,
// performed after it is released.
type effects struct {
	notify, nmi, init, sipi, eoi, send bool
	sipiVec, eoiVec                    uint8
	msg                                Message
}

func (l *LAPIC) apply(e *effects) {
	cpu := l.cpu.Load().CPU
	if e.init {
		cpu.INIT()
	}
	if e.sipi {
		cpu.SIPI(e.sipiVec)
	}
	if e.nmi {
		cpu.NMI()
	}
	if e.notify {
		cpu.Notify()
	}
	if e.eoi {
		l.bus.broadcastEOI(e.eoiVec)
	}
	if e.send {
		l.bus.Deliver(e.msg)
	}
}

// requestLocked puts fixed interrupt vector into the IRR, setting its TMR
// bit for level-triggered interrupts (§11.8.4 "Interrupt Acceptance for
// Fixed Interrupts"). Vectors 0-15 are refused with a receive-illegal-
// vector error (§11.5.2).
func (l *LAPIC) requestLocked(vector uint8, level bool, e *effects) bool {
	if vector < FIRST_VALID_VECTOR {
		l.errorLocked(ESR_RECEIVE_ILLEGAL_VECTOR, e)
		return false
	}
	l.irr.set(vector)
	if level {
		l.tmr.set(vector)
	} else {
		l.tmr.clear(vector)
	}
	e.notify = true
	return true
}

// errorLocked records an APIC error and raises the LVT error interrupt if
// it is unmasked (§11.5.3).
func (l *LAPIC) errorLocked(bit uint32, e *effects) {
	l.esrNew |= bit
	lvt := l.lvt[lvtError]
	if lvt&LVT_MASKED == 0 && uint8(lvt) >= FIRST_VALID_VECTOR && l.enabledLocked() {
		l.irr.set(uint8(lvt))
		l.tmr.clear(uint8(lvt))
		e.notify = true
	}
}

// receive accepts a message from the Bus; it reports whether the LAPIC
// took it. Fixed and lowest-priority interrupts are refused while the
// LAPIC is software-disabled (§11.4.7.2; KVM behaves the same); NMI, INIT
// and SIPI are still accepted. A hardware-disabled LAPIC takes nothing.
func (l *LAPIC) receive(m *Message) bool {
	var e effects
	l.mu.Lock()
	ok := l.receiveLocked(m, &e)
	l.mu.Unlock()
	l.apply(&e)
	return ok
}

func (l *LAPIC) receiveLocked(m *Message, e *effects) bool {
	if l.closed || l.mode == modeDisabled {
		return false
	}
	switch m.Mode {
	case DELIVERY_FIXED, DELIVERY_LOWEST_PRIORITY:
		if l.svr&SVR_APIC_ENABLED == 0 {
			return false
		}
		return l.requestLocked(m.Vector, m.Level, e)
	case DELIVERY_NMI:
		e.nmi = true
	case DELIVERY_INIT:
		l.initResetLocked()
		e.init = true
	case DELIVERY_STARTUP:
		e.sipi, e.sipiVec = true, m.Vector
	case DELIVERY_EXTINT:
		l.extint = true
		e.notify = true
	default: // SMI and the reserved encodings: not modelled
		return false
	}
	return true
}

// Deliver puts fixed interrupt vector in the IRR, as a fixed message
// addressed to this LAPIC would; level selects the level trigger mode
// (TMR set, EOI broadcast). It reports whether the LAPIC accepted it (not
// while disabled, not for vectors 0-15), and calls CPU.Notify if so. It
// does not allocate.
func (l *LAPIC) Deliver(vector uint8, level bool) bool {
	m := Message{Vector: vector, Mode: DELIVERY_FIXED, Level: level}
	return l.receive(&m)
}

// PendingVector returns the highest IRR vector whose priority class
// (vector bits 7:4) is above the processor priority's, which the vCPU
// should inject when the guest can take an interrupt. It returns false
// while the LAPIC is disabled. It does not change state or allocate.
func (l *LAPIC) PendingVector() (uint8, bool) {
	l.mu.Lock()
	v, ok := l.pendingLocked()
	l.mu.Unlock()
	return v, ok
}

func (l *LAPIC) pendingLocked() (uint8, bool) {
	if !l.enabledLocked() {
		return 0, false
	}
	v, ok := l.irr.highest()
	if !ok || uint32(v)>>4 <= l.pprLocked()>>4 {
		return 0, false
	}
	return v, true
}

// Accept records that the vCPU injected vector (the processor's interrupt
// acknowledge): it moves from the IRR to the ISR, raising the PPR. It
// reports false, changing nothing, if vector was not requested.
func (l *LAPIC) Accept(vector uint8) bool {
	l.mu.Lock()
	ok := l.irr.test(vector)
	if ok {
		l.irr.clear(vector)
		l.isr.set(vector)
	}
	l.mu.Unlock()
	return ok
}

// EOI retires the highest in-service vector, as a guest write to the EOI
// register does (§11.8.5 "Signaling Interrupt Servicing Completion"). If
// that vector was level-triggered (TMR set) its EOI is broadcast to the
// Bus's EOI listeners, and a level-triggered LINT input it came from is
// re-armed. With nothing in service it does nothing.
func (l *LAPIC) EOI() {
	var e effects
	l.mu.Lock()
	l.eoiLocked(&e)
	l.mu.Unlock()
	l.apply(&e)
}

func (l *LAPIC) eoiLocked(e *effects) {
	v, ok := l.isr.highest()
	if !ok {
		return
	}
	l.isr.clear(v)
	if !l.tmr.test(v) {
		return
	}
	e.eoi, e.eoiVec = true, v
	for pin := range l.pin {
		p := &l.lvt[lvtLINT0+pin]
		if *p&LVT_REMOTE_IRR != 0 && uint8(*p) == v {
			*p &^= LVT_REMOTE_IRR
			l.evalLINTLocked(uint8(pin), e)
		}
	}
}

// CR8 returns the task priority as MOV from CR8 sees it: TPR bits 7:4
// (Intel SDM Vol. 3A, §11.8.6 "Task Priority in IA-32e Mode").
func (l *LAPIC) CR8() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(l.tpr >> 4)
}

// SetCR8 sets the task priority as MOV to CR8 does: TPR = CR8[3:0]<<4.
// Raising it never needs a notification; lowering it can unblock a
// vector, which the vCPU sees at its next PendingVector.
func (l *LAPIC) SetCR8(v uint64) {
	l.mu.Lock()
	l.tpr = uint32(v&0xf) << 4
	l.mu.Unlock()
}

// LINT0 returns the LINT0 input pin. In a PC the 8259 PIC's INTR output
// drives it; programmed as ExtINT (virtual wire mode) it makes
// ExtINTPending true while high.
func (l *LAPIC) LINT0() irqline.Line { return &l.lint[0] }

// LINT1 returns the LINT1 input pin, normally wired to NMI sources and
// programmed as NMI.
func (l *LAPIC) LINT1() irqline.Line { return &l.lint[1] }

// setLINT drives LINT0 (pin 0) or LINT1 (pin 1). What an edge or level
// does depends on the LVT entry (§11.5.1); with the LAPIC hardware-
// disabled the pins reach the processor directly as INTR and NMI
// (§11.4.3 "Enabling or Disabling the Local APIC").
func (l *LAPIC) setLINT(pin uint8, high bool) {
	var e effects
	l.mu.Lock()
	old := l.pin[pin]
	l.pin[pin] = high
	if l.closed {
		l.mu.Unlock()
		return
	}
	if l.mode == modeDisabled {
		if high && !old {
			if pin == 0 {
				e.notify = true
			} else {
				e.nmi = true
			}
		}
	} else {
		lvt := l.lvt[lvtLINT0+pin]
		wasAsserted := old != (lvt&LVT_POLARITY_LOW != 0)
		if !wasAsserted || l.lintLevelTriggered(pin, lvt) {
			l.evalLINTLocked(pin, &e)
		}
	}
	l.mu.Unlock()
	l.apply(&e)
}

// lintLevelTriggered reports whether the LINT input is level-sensitive:
// fixed delivery with the trigger mode bit (LINT0 only: "level-sensitive
// interrupts are not supported for LINT1") and ExtINT, which is always
// level-sensitive (§11.5.1).
func (l *LAPIC) lintLevelTriggered(pin uint8, lvt uint32) bool {
	switch DeliveryMode(lvt >> 8 & 7) {
	case DELIVERY_FIXED:
		return pin == 0 && lvt&LVT_TRIGGER_LEVEL != 0
	case DELIVERY_EXTINT:
		return true
	}
	return false
}

// evalLINTLocked acts on an asserted LINT input: called on its rising
// edge, on any change of a level-sensitive input, when its LVT entry is
// written and when its level-triggered vector is EOIed.
func (l *LAPIC) evalLINTLocked(pin uint8, e *effects) {
	lvt := &l.lvt[lvtLINT0+pin]
	asserted := l.pin[pin] != (*lvt&LVT_POLARITY_LOW != 0)
	if !asserted || *lvt&LVT_MASKED != 0 || !l.enabledLocked() {
		return
	}
	switch DeliveryMode(*lvt >> 8 & 7) {
	case DELIVERY_FIXED:
		if l.lintLevelTriggered(pin, *lvt) {
			if *lvt&LVT_REMOTE_IRR == 0 && l.requestLocked(uint8(*lvt), true, e) {
				*lvt |= LVT_REMOTE_IRR
			}
		} else {
			l.requestLocked(uint8(*lvt), false, e)
		}
	case DELIVERY_NMI:
		e.nmi = true
	case DELIVERY_INIT:
		l.initResetLocked()
		e.init = true
	case DELIVERY_EXTINT:
		e.notify = true
	}
}

// ExtINTPending reports whether the processor should run an interrupt
// acknowledge cycle on the 8259 PIC: LINT0 is asserted and programmed as
// unmasked ExtINT (or the LAPIC is hardware-disabled and LINT0 is high),
// or an ExtINT message arrived and has not been acknowledged. ExtINT
// bypasses the IRR, ISR and priorities; the core injects the PIC's vector
// and calls AckExtINT.
func (l *LAPIC) ExtINTPending() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.extint {
		return true
	}
	if l.mode == modeDisabled {
		return l.pin[0]
	}
	lvt := l.lvt[lvtLINT0]
	return DeliveryMode(lvt>>8&7) == DELIVERY_EXTINT && lvt&LVT_MASKED == 0 &&
		l.svr&SVR_APIC_ENABLED != 0 && l.pin[0] != (lvt&LVT_POLARITY_LOW != 0)
}

// AcceptsPICInterrupt reports whether the 8259 PIC's INTR output, wired to
// LINT0, reaches the processor: LINT0 is programmed as unmasked ExtINT on
// a software-enabled LAPIC, or the LAPIC is hardware-disabled. It is for
// a PIC model that is polled (devices/pic: Pending, Acknowledge) instead
// of driving LINT0: the core checks AcceptsPICInterrupt() && pic.Pending()
// alongside ExtINTPending.
func (l *LAPIC) AcceptsPICInterrupt() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if l.mode == modeDisabled {
		return true
	}
	lvt := l.lvt[lvtLINT0]
	return DeliveryMode(lvt>>8&7) == DELIVERY_EXTINT && lvt&LVT_MASKED == 0 && l.svr&SVR_APIC_ENABLED != 0
}

// AckExtINT records that the core acknowledged an ExtINT (it injected
// the vector the PIC gave). A level on LINT0 stays pending until the PIC
// lowers it.
func (l *LAPIC) AckExtINT() {
	l.mu.Lock()
	l.extint = false
	l.mu.Unlock()
}

// Package ioapic models the Intel 82093AA I/O APIC: 24 interrupt inputs,
// each routed by a redirection table entry to local APICs as a message on
// the VM's lapic.Bus.
//
// The guest reaches the registers indirectly: it writes a register index
// to IOREGSEL and reads or writes the register through IOWIN (82093AA
// datasheet, §3.1 "Memory Mapped Registers", §3.2 "IOAPIC Registers").
// Devices drive the inputs through irqline.Line (Line). An edge-triggered
// entry sends its message on each rising edge of the (polarity-corrected)
// input while unmasked; edges on masked entries are lost. A level-
// triggered entry sends while the input is asserted and its Remote IRR is
// clear, then sets Remote IRR until a local APIC broadcasts the EOI of its
// vector (EOI, registered with the Bus by New); if the input is still
// asserted then, it sends again. Unmasking a level-triggered entry whose
// input is asserted sends too.
//
// Remote IRR applies to fixed and lowest-priority entries; NMI, INIT and
// ExtINT entries are edge-triggered whatever their trigger mode bit says
// (the datasheet requires edge for them) and SMI and the reserved modes
// reach no one. Delivery is synchronous, so Delivery Status always reads
// idle. A level-triggered message no local APIC accepts (all of its
// targets are disabled) leaves Remote IRR clear, so the next unmask, EOI
// or edge retries. Writing an entry as edge-triggered clears its Remote
// IRR: Linux relies on this to recover a stuck level interrupt on I/O
// APICs without an EOI register (version 11h).
//
// # Locking
//
// The IOAPIC's mutex is a leaf lock: messages are built under it and sent
// after releasing it, so a LAPIC's EOI broadcast may call EOI and the Bus
// may run while a device drives a line. Lines may be driven from any
// goroutine; Line, SetLevel and EOI do not allocate.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package ioapic

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/lapic"
)

// Memory-mapped registers (82093AA datasheet, §3.1, Table 1).
const (
	IOREGSEL = 0x00 // I/O Register Select (index), bits 7:0
	IOWIN    = 0x10 // I/O Window (data)
	// SIZE is the MMIO range the device decodes.
	SIZE = 0x20
	// BASE_DEFAULT is where PC firmware puts the first I/O APIC.
	BASE_DEFAULT = 0xfec00000
)

// Indirect registers selected by IOREGSEL (datasheet §3.2, Table 2).
const (
	IOAPICID  = 0x00 // IOAPIC Identification, ID in bits 27:24
	IOAPICVER = 0x01 // IOAPIC Version, read only
	IOAPICARB = 0x02 // IOAPIC Arbitration ID, bits 27:24, read only
	IOREDTBL  = 0x10 // Redirection Table: entry n is 0x10+2n (bits 31:0) and 0x11+2n (bits 63:32)
)

// Version register contents (§3.2.2): version 11h, maximum redirection
// entry 23 (24 inputs).
const (
	NUM_PINS        = 24
	VERSION         = 0x11
	IOAPICVER_VALUE = VERSION | (NUM_PINS-1)<<16
	// IOAPICID_MASK is the 4-bit ID field of IOAPICID and IOAPICARB.
	IOAPICID_MASK = 0x0f000000
)

// Redirection table entry fields (§3.2.4, Table 3).
const (
	REDIR_VECTOR          = 0xff
	REDIR_DELIVERY_MODE   = 7 << 8
	REDIR_DEST_LOGICAL    = 1 << 11
	REDIR_DELIVERY_STATUS = 1 << 12 // read only; always idle here
	REDIR_POLARITY_LOW    = 1 << 13
	REDIR_REMOTE_IRR      = 1 << 14 // read only
	REDIR_TRIGGER_LEVEL   = 1 << 15
	REDIR_MASKED          = 1 << 16
	REDIR_DEST_SHIFT      = 56 // destination field, bits 63:56
	// REDIR_RESET is an entry after reset: masked (the datasheet leaves
	// the other bits undefined; they read 0 here).
	REDIR_RESET   = REDIR_MASKED
	redirWritable = REDIR_VECTOR | REDIR_DELIVERY_MODE | REDIR_DEST_LOGICAL | REDIR_POLARITY_LOW |
		REDIR_TRIGGER_LEVEL | REDIR_MASKED | 0xff<<REDIR_DEST_SHIFT
)

// IOAPIC is one I/O APIC. Create it with New.
type IOAPIC struct {
	bus    *lapic.Bus
	initID uint32
	pins   [NUM_PINS]pin

	mu    sync.Mutex
	sel   uint32
	id    uint32 // IOAPICID register
	redir [NUM_PINS]uint64
	level [NUM_PINS]bool // input wire levels, before polarity
}

// pin is one input as an irqline.Line.
type pin struct {
	a *IOAPIC
	n uint8
}

// SetLevel implements irqline.Line.
func (p *pin) SetLevel(high bool) { p.a.setLevel(int(p.n), high) }

// New returns an I/O APIC with the 4-bit APIC ID id, in its reset state
// (every entry masked), delivering to the LAPICs of bus. It registers
// its EOI method as an EOI listener of bus.
func New(bus *lapic.Bus, id uint8) (*IOAPIC, error) {
	if bus == nil {
		return nil, fmt.Errorf("ioapic: no lapic.Bus; create the VM's bus with lapic.NewBus first")
	}
	if id > 0xf {
		return nil, fmt.Errorf("ioapic: ID %d does not fit the 82093AA's 4-bit ID field; use 0-15", id)
	}
	a := &IOAPIC{bus: bus, initID: uint32(id) << 24}
	for i := range a.pins {
		a.pins[i] = pin{a, uint8(i)}
	}
	a.Reset()
	bus.AddEOIListener(a.EOI)
	return a, nil
}

// Reset returns the registers to their reset state: IOREGSEL 0, the ID
// given to New, every entry masked. Input levels are kept (they are the
// devices').
func (a *IOAPIC) Reset() {
	a.mu.Lock()
	a.sel, a.id = 0, a.initID
	for i := range a.redir {
		a.redir[i] = REDIR_RESET
	}
	a.mu.Unlock()
}

// Line returns input pin as a Line for a device to drive, or irqline.None
// if pin is not 0-23.
func (a *IOAPIC) Line(pin int) irqline.Line {
	if pin < 0 || pin >= NUM_PINS {
		return irqline.None{}
	}
	return &a.pins[pin]
}

// Entry returns redirection table entry pin (0 if pin is out of range).
func (a *IOAPIC) Entry(pin int) uint64 {
	if pin < 0 || pin >= NUM_PINS {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.redir[pin]
}

// asserted reports whether input n is active after its entry's polarity.
func (a *IOAPIC) assertedLocked(n int) bool {
	return a.level[n] != (a.redir[n]&REDIR_POLARITY_LOW != 0)
}

// usesRemoteIRR reports whether entry e is level-triggered in the sense of
// Remote IRR: level trigger mode with fixed or lowest-priority delivery.
func usesRemoteIRR(e uint64) bool {
	if e&REDIR_TRIGGER_LEVEL == 0 {
		return false
	}
	m := lapic.DeliveryMode(e >> 8 & 7)
	return m == lapic.DELIVERY_FIXED || m == lapic.DELIVERY_LOWEST_PRIORITY
}

// message builds the APIC bus message of entry e.
func message(e uint64) lapic.Message {
	return lapic.Message{
		Vector:  uint8(e),
		Mode:    lapic.DeliveryMode(e >> 8 & 7),
		Logical: e&REDIR_DEST_LOGICAL != 0,
		Level:   usesRemoteIRR(e),
		Dest:    uint32(e >> REDIR_DEST_SHIFT),
	}
}

// armLocked decides whether entry n sends now: unmasked, input asserted,
// Remote IRR clear. For Remote IRR entries it sets Remote IRR; the caller
// sends the entry's message after unlocking.
func (a *IOAPIC) armLocked(n int) bool {
	e := a.redir[n]
	if e&REDIR_MASKED != 0 || !a.assertedLocked(n) || e&REDIR_REMOTE_IRR != 0 {
		return false
	}
	if usesRemoteIRR(e) {
		a.redir[n] |= REDIR_REMOTE_IRR
	}
	return true
}

// send delivers entry n's message m; if no LAPIC accepted a Remote IRR
// message, Remote IRR is cleared again.
func (a *IOAPIC) send(n int, m lapic.Message) {
	if a.bus.Deliver(m) > 0 || !m.Level {
		return
	}
	a.mu.Lock()
	if e := a.redir[n]; e&REDIR_REMOTE_IRR != 0 && uint8(e) == m.Vector {
		a.redir[n] = e &^ REDIR_REMOTE_IRR
	}
	a.mu.Unlock()
}

func (a *IOAPIC) setLevel(n int, high bool) {
	a.mu.Lock()
	old := a.level[n]
	a.level[n] = high
	e := a.redir[n]
	wasAsserted := old != (e&REDIR_POLARITY_LOW != 0)
	fire := false
	if usesRemoteIRR(e) || !wasAsserted {
		fire = a.armLocked(n)
	}
	m := message(e)
	a.mu.Unlock()
	if fire {
		a.send(n, m)
	}
}

// EOI handles a local APIC's EOI broadcast for vector: every entry with
// that vector and Remote IRR set has it cleared, and sends again if its
// input is still asserted and it is unmasked. It does not allocate.
func (a *IOAPIC) EOI(vector uint8) {
	var redo [NUM_PINS]uint8
	var msgs [NUM_PINS]lapic.Message
	k := 0
	a.mu.Lock()
	for n := range a.redir {
		e := a.redir[n]
		if e&REDIR_REMOTE_IRR == 0 || uint8(e) != vector {
			continue
		}
		a.redir[n] = e &^ REDIR_REMOTE_IRR
		if a.armLocked(n) {
			redo[k], msgs[k] = uint8(n), message(e)
			k++
		}
	}
	a.mu.Unlock()
	for i := 0; i < k; i++ {
		a.send(int(redo[i]), msgs[i])
	}
}

// readLocked returns indirect register idx; unimplemented ones read 0.
func (a *IOAPIC) readLocked(idx uint32) uint32 {
	switch {
	case idx == IOAPICID, idx == IOAPICARB:
		return a.id
	case idx == IOAPICVER:
		return IOAPICVER_VALUE
	case idx >= IOREDTBL && idx < IOREDTBL+2*NUM_PINS:
		e := a.redir[(idx-IOREDTBL)/2]
		if idx&1 != 0 {
			return uint32(e >> 32)
		}
		return uint32(e)
	}
	return 0
}

// writeLocked writes indirect register idx and reports whether entry n
// must send now (an unmasked level-triggered entry with its input
// asserted).
func (a *IOAPIC) writeLocked(idx, v uint32) (n int, fire bool) {
	switch {
	case idx == IOAPICID:
		a.id = v & IOAPICID_MASK
	case idx >= IOREDTBL && idx < IOREDTBL+2*NUM_PINS:
		n = int(idx-IOREDTBL) / 2
		old := a.redir[n]
		var nv uint64
		if idx&1 != 0 {
			nv = old&0xffffffff | uint64(v)<<32&redirWritable
		} else {
			nv = old&^0xffffffff | uint64(v)&redirWritable&0xffffffff | old&REDIR_REMOTE_IRR
		}
		if nv&REDIR_TRIGGER_LEVEL == 0 {
			nv &^= REDIR_REMOTE_IRR
		}
		a.redir[n] = nv
		if usesRemoteIRR(nv) {
			return n, a.armLocked(n)
		}
	}
	return 0, false
}

// Read implements bus.Device. IOREGSEL and IOWIN read as 32-bit values;
// an access of another size returns the bytes of that value it covers
// and zero beyond, and the rest of the range reads zero.
func (a *IOAPIC) Read(offset uint64, data []byte) {
	var v uint32
	a.mu.Lock()
	switch offset &^ 0xf {
	case IOREGSEL:
		v = a.sel
	case IOWIN:
		v = a.readLocked(a.sel)
	}
	a.mu.Unlock()
	for i := range data {
		b := offset&0xf + uint64(i)
		data[i] = 0
		if b < 4 {
			data[i] = byte(v >> (8 * b))
		}
	}
}

// Write implements bus.Device. A store of any size at IOREGSEL sets the
// index from its low byte; IOWIN takes 32-bit stores (an 8-byte store
// writes its low half); other stores are ignored.
func (a *IOAPIC) Write(offset uint64, data []byte) {
	switch {
	case offset == IOREGSEL && len(data) > 0:
		a.mu.Lock()
		a.sel = uint32(data[0])
		a.mu.Unlock()
	case offset == IOWIN && len(data) >= 4:
		a.mu.Lock()
		n, fire := a.writeLocked(a.sel, binary.LittleEndian.Uint32(data))
		m := message(a.redir[n])
		a.mu.Unlock()
		if fire {
			a.send(n, m)
		}
	}
}

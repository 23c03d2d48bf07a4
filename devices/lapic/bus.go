package lapic

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Message is an interrupt message on the APIC bus: an IPI from an ICR, an
// IOAPIC redirection entry or an MSI.
type Message struct {
	// Vector is the interrupt vector (fixed, lowest priority) or the
	// start-up vector (SIPI); other modes ignore it.
	Vector uint8
	// Mode is the delivery mode.
	Mode DeliveryMode
	// Logical selects logical destination mode; otherwise Dest is an
	// APIC ID.
	Logical bool
	// Level selects the level trigger mode for fixed and lowest-priority
	// interrupts: the receiver sets the vector's TMR bit and broadcasts
	// its EOI.
	Level bool
	// Dest is the destination: 8 bits (xAPIC ICR, IOAPIC, MSI; FFh is
	// broadcast) unless X2APIC is set.
	Dest uint32
	// X2APIC marks a 32-bit x2APIC destination (an ICR written in
	// x2APIC mode; FFFFFFFFh is broadcast; logical destinations are
	// cluster<<16 | bitmap).
	X2APIC bool
	// Shorthand, for IPIs, replaces Dest: self, all including self, all
	// excluding self. Source is the sending LAPIC.
	Shorthand Shorthand
	Source    *LAPIC
}

// MSI address and data fields (Intel SDM Vol. 3A, §11.11.1 "Message
// Address Register Format", §11.11.2 "Message Data Register Format").
const (
	MSI_ADDRESS_BASE       = 0xfee00000
	MSI_DEST_SHIFT         = 12
	MSI_DEST_MODE_LOGICAL  = 1 << 2
	MSI_REDIRECTION_HINT   = 1 << 3
	MSI_DATA_TRIGGER_LEVEL = 1 << 15
)

// MSI decodes a message-signalled interrupt: a device's write of data to
// address 0xFEExxxxx. The redirection hint is ignored (lowest priority
// comes from the delivery mode in data).
func MSI(address uint64, data uint32) Message {
	return Message{
		Vector:  uint8(data),
		Mode:    DeliveryMode(data >> 8 & 7),
		Logical: address&MSI_DEST_MODE_LOGICAL != 0,
		Level:   data&MSI_DATA_TRIGGER_LEVEL != 0,
		Dest:    uint32(address>>MSI_DEST_SHIFT) & 0xff,
	}
}

// Bus is a VM's APIC bus: its LAPICs (attached by New) and the listeners
// of EOI broadcasts. Deliver is lock-free and allocation-free; attaching
// and listeners copy small slices under a mutex and happen at VM setup.
type Bus struct {
	mu    sync.Mutex
	apics atomic.Pointer[[]*LAPIC]
	eoi   atomic.Pointer[[]func(vector uint8)]
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	b := &Bus{}
	b.apics.Store(&[]*LAPIC{})
	b.eoi.Store(&[]func(uint8){})
	return b
}

func (b *Bus) attach(l *LAPIC) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.apics.Load()
	for _, o := range old {
		if o.id == l.id {
			return fmt.Errorf("lapic: two LAPICs with ID %d on one bus; give each vCPU its own APIC ID", l.id)
		}
	}
	n := append(append(make([]*LAPIC, 0, len(old)+1), old...), l)
	b.apics.Store(&n)
	return nil
}

func (b *Bus) detach(l *LAPIC) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.apics.Load()
	n := make([]*LAPIC, 0, len(old))
	for _, o := range old {
		if o != l {
			n = append(n, o)
		}
	}
	b.apics.Store(&n)
}

// LAPICs returns the attached LAPICs in the order they were created.
func (b *Bus) LAPICs() []*LAPIC { return append([]*LAPIC(nil), *b.apics.Load()...) }

// LAPIC returns the LAPIC whose initial APIC ID is id, or nil.
func (b *Bus) LAPIC(id uint32) *LAPIC {
	for _, l := range *b.apics.Load() {
		if l.id == id {
			return l
		}
	}
	return nil
}

// AddEOIListener adds f to the functions a level-triggered EOI is
// broadcast to (the IOAPICs; ioapic.New adds itself). f runs on the
// goroutine of the vCPU that wrote the EOI, with no LAPIC lock held.
func (b *Bus) AddEOIListener(f func(vector uint8)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.eoi.Load()
	n := append(append(make([]func(uint8), 0, len(old)+1), old...), f)
	b.eoi.Store(&n)
}

func (b *Bus) broadcastEOI(v uint8) {
	for _, f := range *b.eoi.Load() {
		f(v)
	}
}

// Deliver sends m to the LAPICs it addresses and returns how many
// accepted it. Physical destinations match the APIC ID (the xAPIC ID
// register, or the x2APIC ID); logical ones match the LDR in the flat or
// cluster model the target's DFR selects, or x2APIC's cluster<<16 |
// bitmap (§11.6.2, §11.12.10). Lowest-priority messages go to the
// lowest-numbered software-enabled target only, without priority
// arbitration (§11.6.2.4 lets the chipset choose; Linux does not rely on
// it). It does not allocate.
func (b *Bus) Deliver(m Message) int {
	if m.Shorthand == SHORTHAND_SELF {
		if m.Source != nil && m.Source.receive(&m) {
			return 1
		}
		return 0
	}
	list := *b.apics.Load()
	if m.Mode == DELIVERY_LOWEST_PRIORITY {
		var best *LAPIC
		var bestID uint32
		for _, l := range list {
			if l.addressed(&m) && l.rFlags.Load()&routeSWEnabled != 0 {
				if id := l.rID.Load(); best == nil || id < bestID {
					best, bestID = l, id
				}
			}
		}
		if best != nil && best.receive(&m) {
			return 1
		}
		return 0
	}
	n := 0
	for _, l := range list {
		if l.addressed(&m) && l.receive(&m) {
			n++
		}
	}
	return n
}

// addressed reports whether m is for l, from the routing copies.
func (l *LAPIC) addressed(m *Message) bool {
	f := l.rFlags.Load()
	mode := apicMode(f & routeMode)
	if mode == modeDisabled {
		return false
	}
	switch m.Shorthand {
	case SHORTHAND_SELF:
		return l == m.Source
	case SHORTHAND_ALL_INCLUDING_SELF:
		return true
	case SHORTHAND_ALL_EXCLUDING_SELF:
		return l != m.Source
	}
	dest := m.Dest
	if m.X2APIC {
		if dest == X2APIC_BROADCAST {
			return true
		}
	} else {
		dest &= 0xff
		if dest == XAPIC_BROADCAST {
			return true
		}
	}
	if !m.Logical {
		return dest == l.rID.Load()
	}
	ldr := l.rLDR.Load()
	if mode == modeX2APIC {
		return dest>>16 == ldr>>16 && dest&ldr&0xffff != 0
	}
	mda, lid := uint8(dest), uint8(ldr>>24)
	if f&routeFlat != 0 {
		return mda&lid != 0
	}
	// Cluster model: cluster in bits 7:4 (Fh reaches every cluster),
	// one bit per member in bits 3:0.
	return (mda>>4 == lid>>4 || mda>>4 == 0xf) && mda&lid&0xf != 0
}

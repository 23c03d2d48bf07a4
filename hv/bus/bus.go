// Package bus routes a guest's port I/O and MMIO accesses to the devices
// that claim them.
//
// A device implements Device: Read and Write at an offset from the base it
// was registered at, with 1, 2, 4 or 8 bytes of little-endian data. PortBus
// (16-bit port numbers) and MMIOBus (guest-physical addresses) keep their
// devices in a sorted slice published through an atomic pointer, so lookups
// are lock-free binary searches that allocate nothing, while Register and
// Unregister (rare: boot, PCI BAR moves) copy the slice under a mutex.
// Overlapping or empty ranges are rejected at registration with errors
// naming both devices; an access that straddles a device's end is an error.
// Accesses no device claims follow the bus's Policy: by default reads
// return all-ones and writes are dropped, and both are counted.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package bus

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/addr"
)

// Device is something on a bus. offset is relative to the base the device
// was registered at; len(data) is 1, 2, 4 or 8 and data is little-endian.
// The bus guarantees that offset+len(data) lies within the registered size.
// A device must not keep data after returning, must not panic on any offset
// or value a guest can produce, and should not allocate.
type Device interface {
	// Read fills data with the value at offset.
	Read(offset uint64, data []byte)
	// Write stores data at offset.
	Write(offset uint64, data []byte)
}

// Policy decides what happens to accesses no device claims.
type Policy struct {
	// Strict makes unclaimed accesses errors (wrapping ErrUnclaimed)
	// instead of filling reads and dropping writes.
	Strict bool
	// ReadFill is the byte every unclaimed read returns when not Strict.
	ReadFill byte
}

// DefaultPolicy returns what PC hardware does: unclaimed reads float to
// all-ones, unclaimed writes vanish.
func DefaultPolicy() Policy { return Policy{ReadFill: 0xff} }

var (
	// ErrUnclaimed is wrapped by errors for accesses no device claims
	// under a Strict policy.
	ErrUnclaimed = errors.New("no device claims the address")
	// ErrStraddle is wrapped by errors for accesses that run past the
	// end of the device they start in.
	ErrStraddle = errors.New("access straddles the end of a device")
	// ErrSize is wrapped by errors for access sizes other than 1, 2, 4
	// and 8.
	ErrSize = errors.New("access size must be 1, 2, 4 or 8")
)

// AccessError describes a refused bus access.
type AccessError struct {
	// Bus is "port" or "mmio".
	Bus string
	// Addr and Size describe the access.
	Addr uint64
	Size int
	// Write is set for writes.
	Write bool
	// Device is the name of the device the access started in, if any.
	Device string
	// Err is ErrUnclaimed, ErrStraddle or ErrSize.
	Err error
}

// Error names the access, the device and the reason.
func (e *AccessError) Error() string {
	op := "read"
	if e.Write {
		op = "write"
	}
	where := fmt.Sprintf("%#x", e.Addr)
	if e.Bus == "mmio" {
		where = addr.GPA(e.Addr).String()
	}
	s := fmt.Sprintf("%s %s of %d bytes at %s", e.Bus, op, e.Size, where)
	if e.Device != "" {
		s += " (device " + e.Device + ")"
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *AccessError) Unwrap() error { return e.Err }

// Stats counts accesses on a bus.
type Stats struct {
	// Reads and Writes count accesses that reached a device.
	Reads, Writes uint64
	// UnclaimedReads and UnclaimedWrites count accesses no device
	// claimed.
	UnclaimedReads, UnclaimedWrites uint64
	// Errors counts refused accesses (bad size, straddling, strict
	// unclaimed).
	Errors uint64
}

// Entry describes one registered device, as listed by Devices.
type Entry struct {
	// Base and Size are the claimed range.
	Base, Size uint64
	// Name is the name given at registration.
	Name string
	// Device is the device.
	Device Device
}

// table is the implementation shared by PortBus and MMIOBus: devices over a
// 64-bit address space whose highest address is limit.
type table struct {
	kind  string
	limit uint64
	pol   Policy

	mu      sync.Mutex // serialises writers of entries
	entries atomic.Pointer[[]Entry]

	reads, writes, ureads, uwrites, errs atomic.Uint64
}

func (t *table) init(kind string, limit uint64, p Policy) {
	t.kind, t.limit, t.pol = kind, limit, p
	t.entries.Store(&[]Entry{})
}

// search returns the index of the entry with the highest base <= a, or -1.
func search(es []Entry, a uint64) int {
	lo, hi := 0, len(es)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if es[m].Base <= a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo - 1
}

func (t *table) register(base, size uint64, dev Device, name string) error {
	if dev == nil {
		return fmt.Errorf("%s bus: device %q registered at %#x without an implementation", t.kind, name, base)
	}
	if name == "" {
		return fmt.Errorf("%s bus: device at %#x registered without a name; name it for error messages and listings", t.kind, base)
	}
	if size == 0 {
		return fmt.Errorf("%s bus: device %q at %#x has size 0; give the number of addresses it decodes", t.kind, name, base)
	}
	if base > t.limit || size-1 > t.limit-base {
		return fmt.Errorf("%s bus: device %q at %#x+%#x runs past the end of the bus (%#x)", t.kind, name, base, size, t.limit)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.entries.Load()
	r := addr.Range{Base: base, Size: size}
	i := search(old, base)
	for _, j := range []int{i, i + 1} {
		if j >= 0 && j < len(old) {
			o := old[j]
			if r.Overlaps(addr.Range{Base: o.Base, Size: o.Size}) {
				return fmt.Errorf("%s bus: device %q at %s overlaps device %q at %s; move one of them",
					t.kind, name, r, o.Name, addr.Range{Base: o.Base, Size: o.Size})
			}
		}
	}
	es := make([]Entry, 0, len(old)+1)
	es = append(es, old[:i+1]...)
	es = append(es, Entry{Base: base, Size: size, Name: name, Device: dev})
	es = append(es, old[i+1:]...)
	t.entries.Store(&es)
	return nil
}

func (t *table) unregister(base uint64) (Device, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.entries.Load()
	i := search(old, base)
	if i < 0 || old[i].Base != base {
		return nil, fmt.Errorf("%s bus: no device registered at %#x", t.kind, base)
	}
	dev := old[i].Device
	es := make([]Entry, 0, len(old)-1)
	es = append(es, old[:i]...)
	es = append(es, old[i+1:]...)
	t.entries.Store(&es)
	return dev, nil
}

// lookup returns the entry containing a, or nil.
func (t *table) lookup(a uint64) *Entry {
	es := *t.entries.Load()
	i := search(es, a)
	if i >= 0 && a-es[i].Base < es[i].Size {
		return &es[i]
	}
	return nil
}

func (t *table) access(a uint64, data []byte, write bool) error {
	switch len(data) {
	case 1, 2, 4, 8:
	default:
		t.errs.Add(1)
		return &AccessError{Bus: t.kind, Addr: a, Size: len(data), Write: write, Err: ErrSize}
	}
	e := t.lookup(a)
	if e == nil {
		// An access starting in a gap but ending inside a device is
		// as wrong as one leaving a device.
		if next := t.lookup(a + uint64(len(data)) - 1); next != nil && a+uint64(len(data))-1 >= a {
			t.errs.Add(1)
			return &AccessError{Bus: t.kind, Addr: a, Size: len(data), Write: write, Device: next.Name, Err: ErrStraddle}
		}
		if t.pol.Strict {
			t.errs.Add(1)
			return &AccessError{Bus: t.kind, Addr: a, Size: len(data), Write: write, Err: ErrUnclaimed}
		}
		if write {
			t.uwrites.Add(1)
		} else {
			t.ureads.Add(1)
			for i := range data {
				data[i] = t.pol.ReadFill
			}
		}
		return nil
	}
	off := a - e.Base
	if uint64(len(data)) > e.Size-off {
		t.errs.Add(1)
		return &AccessError{Bus: t.kind, Addr: a, Size: len(data), Write: write, Device: e.Name, Err: ErrStraddle}
	}
	if write {
		t.writes.Add(1)
		e.Device.Write(off, data)
	} else {
		t.reads.Add(1)
		e.Device.Read(off, data)
	}
	return nil
}

func (t *table) stats() Stats {
	return Stats{Reads: t.reads.Load(), Writes: t.writes.Load(), UnclaimedReads: t.ureads.Load(), UnclaimedWrites: t.uwrites.Load(), Errors: t.errs.Load()}
}

func (t *table) devices() []Entry { return append([]Entry(nil), *t.entries.Load()...) }

// PORT_SPACE_SIZE is the size of the x86 I/O address space: ports 0-FFFFh
// (Intel SDM Vol. 1, §19.2 "I/O Port Addressing"; AMD64 APM Vol. 1, §3.8.1
// "I/O Addressing").
const PORT_SPACE_SIZE = 0x10000

// PortBus is a VM's port I/O space.
type PortBus struct{ t table }

// NewPortBus returns an empty port bus with the given unclaimed-access
// policy.
func NewPortBus(p Policy) *PortBus {
	b := &PortBus{}
	b.t.init("port", PORT_SPACE_SIZE-1, p)
	return b
}

// Register claims ports [base, base+size) for dev. It fails if size is 0,
// the range leaves the port space, or it overlaps a registered device.
func (b *PortBus) Register(base uint16, size uint32, dev Device, name string) error {
	return b.t.register(uint64(base), uint64(size), dev, name)
}

// Unregister removes the device registered at base and returns it.
func (b *PortBus) Unregister(base uint16) (Device, error) { return b.t.unregister(uint64(base)) }

// Read performs an IN of len(data) bytes from port.
func (b *PortBus) Read(port uint16, data []byte) error { return b.t.access(uint64(port), data, false) }

// Write performs an OUT of len(data) bytes to port.
func (b *PortBus) Write(port uint16, data []byte) error { return b.t.access(uint64(port), data, true) }

// Claimed reports whether a device claims port.
func (b *PortBus) Claimed(port uint16) bool { return b.t.lookup(uint64(port)) != nil }

// Stats returns the access counters.
func (b *PortBus) Stats() Stats { return b.t.stats() }

// Devices lists the registered devices by base.
func (b *PortBus) Devices() []Entry { return b.t.devices() }

// MMIOBus is a VM's memory-mapped device space, addressed by GPA.
type MMIOBus struct{ t table }

// NewMMIOBus returns an empty MMIO bus with the given unclaimed-access
// policy.
func NewMMIOBus(p Policy) *MMIOBus {
	b := &MMIOBus{}
	b.t.init("mmio", ^uint64(0), p)
	return b
}

// Register claims [base, base+size) for dev. It fails if size is 0, the
// range wraps around 2^64, or it overlaps a registered device.
func (b *MMIOBus) Register(base addr.GPA, size uint64, dev Device, name string) error {
	return b.t.register(uint64(base), size, dev, name)
}

// Unregister removes the device registered at base and returns it.
func (b *MMIOBus) Unregister(base addr.GPA) (Device, error) { return b.t.unregister(uint64(base)) }

// Read performs a load of len(data) bytes at gpa.
func (b *MMIOBus) Read(gpa addr.GPA, data []byte) error { return b.t.access(uint64(gpa), data, false) }

// Write performs a store of len(data) bytes at gpa.
func (b *MMIOBus) Write(gpa addr.GPA, data []byte) error { return b.t.access(uint64(gpa), data, true) }

// Claimed reports whether a device claims gpa.
func (b *MMIOBus) Claimed(gpa addr.GPA) bool { return b.t.lookup(uint64(gpa)) != nil }

// Stats returns the access counters.
func (b *MMIOBus) Stats() Stats { return b.t.stats() }

// Devices lists the registered devices by base.
func (b *MMIOBus) Devices() []Entry { return b.t.devices() }

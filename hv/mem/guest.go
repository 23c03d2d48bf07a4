package mem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/addr"
)

// ErrOutsideRAM is wrapped by access errors for addresses that are not
// guest RAM.
var ErrOutsideRAM = errors.New("outside guest RAM")

// ErrReleased is wrapped by access errors after Release.
var ErrReleased = errors.New("guest memory released")

// Layout says where a VM's RAM goes in guest-physical space: RAM fills the
// space from GPA 0 upwards, skipping the holes.
type Layout struct {
	// Holes are guest-physical ranges that never hold RAM: the PCI/MMIO
	// window below 4 GiB (LAPIC, IOAPIC, PCI BARs, firmware flash).
	Holes []addr.Range
}

// Default layout: RAM at [0, 3 GiB), the MMIO hole at [3 GiB, 4 GiB) (1 GiB
// aligned so that RAM below it can use 1 GiB pages), the rest of RAM from
// 4 GiB up.
const (
	// DEFAULT_HOLE_START is the start of the PCI hole below 4 GiB.
	DEFAULT_HOLE_START = 0xc0000000
	// DEFAULT_HOLE_END is its end: 4 GiB, where high RAM starts.
	DEFAULT_HOLE_END = 0x100000000
)

// DefaultLayout returns the layout with one hole, [DEFAULT_HOLE_START,
// DEFAULT_HOLE_END).
func DefaultLayout() Layout {
	return Layout{Holes: []addr.Range{{Base: DEFAULT_HOLE_START, Size: DEFAULT_HOLE_END - DEFAULT_HOLE_START}}}
}

// Region is a guest-physical range backed by one contiguous host range.
type Region struct {
	// GPA is the first guest-physical address.
	GPA addr.GPA
	// HPA is the host-physical address backing GPA.
	HPA addr.HPA
	// Size is the length in bytes (a multiple of 4 KiB).
	Size uint64
}

// String formats the region as "GPA [0x0-0xbfffffff] -> HPA 0x40000000".
func (r Region) String() string {
	return fmt.Sprintf("GPA %s -> %s", addr.Range{Base: uint64(r.GPA), Size: r.Size}, r.HPA)
}

// AccessError describes a refused guest-memory access.
type AccessError struct {
	// Owner is the VM.
	Owner Owner
	// Op is "read", "write" or "translate".
	Op string
	// GPA and Size describe the access.
	GPA  addr.GPA
	Size uint64
	// Err is ErrOutsideRAM or ErrReleased, or the host memory's error.
	Err error
}

// Error says which VM, which access, and why.
func (e *AccessError) Error() string {
	return fmt.Sprintf("%s: guest memory %s of %d bytes at %s: %v", e.Owner, e.Op, e.Size, e.GPA, e.Err)
}

// Unwrap returns the cause.
func (e *AccessError) Unwrap() error { return e.Err }

// GuestMemory is a VM's RAM: sorted, non-overlapping guest-physical regions
// backed by host frames. The region map is fixed at Allocate, so reads and
// writes from many vCPUs and devices need no lock; Release must only be
// called once nothing accesses the memory any more.
type GuestMemory struct {
	owner   Owner
	frames  *Frames
	host    HostMemory
	regions []Region
	chunks  []addr.HPA
	size    uint64
	gone    atomic.Bool
}

// Allocate builds the RAM of VM owner: size bytes (a multiple of 4 KiB)
// placed from GPA 0 upwards around layout's holes, backed by frames. Each
// guest-physical stretch uses 1 GiB chunks where it and the remaining size
// are 1 GiB aligned, then 2 MiB chunks, then 4 KiB pages, falling back to
// smaller chunks when the larger are exhausted. On failure everything
// allocated so far is returned.
func Allocate(frames *Frames, owner Owner, size uint64, layout Layout) (*GuestMemory, error) {
	if size == 0 || !addr.IsAligned(size, addr.PAGE_SIZE_4K) {
		return nil, fmt.Errorf("%s: guest memory size %#x must be a non-zero multiple of 4 KiB", owner, size)
	}
	holes := append([]addr.Range(nil), layout.Holes...)
	sort.Slice(holes, func(i, j int) bool { return holes[i].Base < holes[j].Base })
	for i, h := range holes {
		if h.Size == 0 || !addr.IsAligned(h.Base|h.Size, addr.PAGE_SIZE_4K) {
			return nil, fmt.Errorf("%s: layout hole %s must be non-empty and 4 KiB aligned", owner, h)
		}
		if _, ok := h.End(); !ok {
			return nil, fmt.Errorf("%s: layout hole %s wraps around 2^64", owner, h)
		}
		if i > 0 && holes[i-1].Overlaps(h) {
			return nil, fmt.Errorf("%s: layout holes %s and %s overlap", owner, holes[i-1], h)
		}
	}
	m := &GuestMemory{owner: owner, frames: frames, host: frames.Host(), size: size}
	var no1G, no2M bool
	gpa, left := uint64(0), size
	for left > 0 {
		// The RAM stretch starting at gpa ends at the next hole.
		end := ^uint64(0)
		for _, h := range holes {
			if h.Contains(gpa) {
				gpa, _ = h.End()
				end = 0
				break
			}
			if h.Base > gpa {
				end = h.Base
				break
			}
		}
		if end == 0 {
			continue
		}
		if gpa > ^uint64(0)-left {
			m.Release()
			return nil, fmt.Errorf("%s: %d MiB of RAM does not fit below 2^64 with holes %v", owner, size>>20, holes)
		}
		n := min(left, end-gpa)
		for n > 0 {
			var chunk uint64
			switch {
			case !no1G && n >= addr.PAGE_SIZE_1G && addr.IsAligned(gpa, addr.PAGE_SIZE_1G):
				chunk = addr.PAGE_SIZE_1G
			case !no2M && n >= addr.PAGE_SIZE_2M && addr.IsAligned(gpa, addr.PAGE_SIZE_2M):
				chunk = addr.PAGE_SIZE_2M
			default:
				chunk = addr.PAGE_SIZE_4K
			}
			hpa, err := frames.Alloc(owner, chunk)
			if errors.Is(err, ErrNoMemory) && chunk != addr.PAGE_SIZE_4K {
				if chunk == addr.PAGE_SIZE_1G {
					no1G = true
				} else {
					no2M = true
				}
				continue
			}
			if err != nil {
				m.Release()
				return nil, fmt.Errorf("%s: allocating %d MiB of guest RAM (%d MiB done): %w", owner, size>>20, (size-left)>>20, err)
			}
			m.chunks = append(m.chunks, hpa)
			m.add(Region{GPA: addr.GPA(gpa), HPA: hpa, Size: chunk})
			gpa += chunk
			n -= chunk
			left -= chunk
		}
	}
	return m, nil
}

// add appends r, merging it with the last region when both addresses
// continue it.
func (m *GuestMemory) add(r Region) {
	if k := len(m.regions); k > 0 {
		l := &m.regions[k-1]
		if uint64(l.GPA)+l.Size == uint64(r.GPA) && uint64(l.HPA)+l.Size == uint64(r.HPA) {
			l.Size += r.Size
			return
		}
	}
	m.regions = append(m.regions, r)
}

// Owner returns the VM the memory belongs to.
func (m *GuestMemory) Owner() Owner { return m.owner }

// Size returns the amount of RAM in bytes.
func (m *GuestMemory) Size() uint64 { return m.size }

// Regions returns a copy of the region map, sorted by GPA, for the backend
// to build its nested page tables.
func (m *GuestMemory) Regions() []Region { return append([]Region(nil), m.regions...) }

// find returns the index of the region containing gpa, or -1.
func (m *GuestMemory) find(gpa addr.GPA) int {
	lo, hi := 0, len(m.regions)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if m.regions[mid].GPA <= gpa {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if i := lo - 1; i >= 0 && uint64(gpa-m.regions[i].GPA) < m.regions[i].Size {
		return i
	}
	return -1
}

// Contains reports whether all of [gpa, gpa+n) is guest RAM.
func (m *GuestMemory) Contains(gpa addr.GPA, n uint64) bool {
	if m.gone.Load() {
		return false
	}
	if len(m.regions) > 0 && gpa >= m.regions[0].GPA && n <= m.regions[0].Size && uint64(gpa-m.regions[0].GPA) <= m.regions[0].Size-n {
		return true // the common case: low RAM
	}
	for n > 0 {
		i := m.find(gpa)
		if i < 0 {
			return false
		}
		r := &m.regions[i]
		k := min(n, r.Size-uint64(gpa-r.GPA))
		gpa += addr.GPA(k)
		n -= k
	}
	return true
}

func (m *GuestMemory) fail(op string, gpa addr.GPA, n uint64, err error) error {
	return &AccessError{Owner: m.owner, Op: op, GPA: gpa, Size: n, Err: err}
}

// access copies between p and guest memory at gpa.
func (m *GuestMemory) access(gpa addr.GPA, p []byte, write bool) error {
	op := "read"
	if write {
		op = "write"
	}
	n := uint64(len(p))
	if m.gone.Load() {
		return m.fail(op, gpa, n, ErrReleased)
	}
	// Fast path: the whole access in one region and one host page (a
	// page-table entry, an instruction, a device's operand).
	if i := m.find(gpa); i >= 0 && n > 0 {
		r := &m.regions[i]
		off := uint64(gpa - r.GPA)
		hpa := r.HPA + addr.HPA(off)
		if n <= r.Size-off && hpa.PageOffset()+n <= addr.PAGE_SIZE_4K {
			s, err := m.host.Slice(hpa, n)
			if err != nil {
				return m.fail(op, gpa, n, err)
			}
			if write {
				copy(s, p)
			} else {
				copy(p, s)
			}
			return nil
		}
	}
	if _, ok := gpa.Add(n); !ok {
		return m.fail(op, gpa, n, ErrOutsideRAM)
	}
	if !m.Contains(gpa, n) {
		return m.fail(op, gpa, n, ErrOutsideRAM)
	}
	at := gpa
	for len(p) > 0 {
		r := &m.regions[m.find(at)]
		hpa := r.HPA + addr.HPA(at-r.GPA)
		k := min(uint64(len(p)), addr.PAGE_SIZE_4K-hpa.PageOffset(), r.Size-uint64(at-r.GPA))
		s, err := m.host.Slice(hpa, k)
		if err != nil {
			return m.fail(op, gpa, n, err)
		}
		if write {
			copy(s, p[:k])
		} else {
			copy(p[:k], s)
		}
		p = p[k:]
		at += addr.GPA(k)
	}
	return nil
}

// Read copies len(p) bytes of guest RAM at gpa into p. It fails, copying
// nothing, unless the whole range is RAM.
func (m *GuestMemory) Read(gpa addr.GPA, p []byte) error { return m.access(gpa, p, false) }

// Write copies p into guest RAM at gpa. It fails, writing nothing, unless
// the whole range is RAM.
func (m *GuestMemory) Write(gpa addr.GPA, p []byte) error { return m.access(gpa, p, true) }

// Read8 reads a byte of guest RAM.
func (m *GuestMemory) Read8(gpa addr.GPA) (uint8, error) {
	var b [1]byte
	err := m.Read(gpa, b[:])
	return b[0], err
}

// Read16 reads a little-endian 16-bit value of guest RAM.
func (m *GuestMemory) Read16(gpa addr.GPA) (uint16, error) {
	var b [2]byte
	err := m.Read(gpa, b[:])
	return binary.LittleEndian.Uint16(b[:]), err
}

// Read32 reads a little-endian 32-bit value of guest RAM.
func (m *GuestMemory) Read32(gpa addr.GPA) (uint32, error) {
	var b [4]byte
	err := m.Read(gpa, b[:])
	return binary.LittleEndian.Uint32(b[:]), err
}

// Read64 reads a little-endian 64-bit value of guest RAM.
func (m *GuestMemory) Read64(gpa addr.GPA) (uint64, error) {
	var b [8]byte
	err := m.Read(gpa, b[:])
	return binary.LittleEndian.Uint64(b[:]), err
}

// Write8 writes a byte of guest RAM.
func (m *GuestMemory) Write8(gpa addr.GPA, v uint8) error {
	b := [1]byte{v}
	return m.Write(gpa, b[:])
}

// Write16 writes a little-endian 16-bit value to guest RAM.
func (m *GuestMemory) Write16(gpa addr.GPA, v uint16) error {
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], v)
	return m.Write(gpa, b[:])
}

// Write32 writes a little-endian 32-bit value to guest RAM.
func (m *GuestMemory) Write32(gpa addr.GPA, v uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return m.Write(gpa, b[:])
}

// Write64 writes a little-endian 64-bit value to guest RAM.
func (m *GuestMemory) Write64(gpa addr.GPA, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return m.Write(gpa, b[:])
}

// Translate returns the host-physical address of [gpa, gpa+n), which must
// lie in guest RAM backed by one contiguous host range (for example a DMA
// buffer or a ring inside one region). n may be 0 to translate one address.
func (m *GuestMemory) Translate(gpa addr.GPA, n uint64) (addr.HPA, error) {
	if m.gone.Load() {
		return 0, m.fail("translate", gpa, n, ErrReleased)
	}
	i := m.find(gpa)
	if i < 0 {
		return 0, m.fail("translate", gpa, n, ErrOutsideRAM)
	}
	r := &m.regions[i]
	off := uint64(gpa - r.GPA)
	if n > r.Size-off {
		if m.Contains(gpa, n) {
			return 0, m.fail("translate", gpa, n, fmt.Errorf("the range spans host chunks (region %s ends inside it); access it with Read/Write", r))
		}
		return 0, m.fail("translate", gpa, n, ErrOutsideRAM)
	}
	return r.HPA + addr.HPA(off), nil
}

// Release returns all frames to the allocator. Afterwards every access
// fails with ErrReleased; a second Release is an error.
func (m *GuestMemory) Release() error {
	if m.gone.Swap(true) {
		return fmt.Errorf("%s: guest memory released twice", m.owner)
	}
	var errs []error
	for _, c := range m.chunks {
		if err := m.frames.Free(c); err != nil {
			errs = append(errs, err)
		}
	}
	m.chunks = nil
	return errors.Join(errs...)
}

// Package loader holds what Keel's guest kernel loaders share: the view of
// guest memory they write through (Memory), the guest-physical memory map
// they describe to the guest (BuildMap and the E820 types), an allocator of
// guest-physical space that refuses overlaps and anything outside usable RAM
// (Space), flat segment descriptors (Descriptor, GDT), and the outcome of a
// load: the boot vCPU's registers and what went where (Result).
//
// The loaders are loader/linux (the Linux x86 boot protocol, 64-bit entry)
// and loader/multiboot (Multiboot v1). Their input comes from a boot bundle
// the user supplies, so every byte of it is hostile: they check every offset
// and size before use, return errors that say what is wrong and what was
// expected, and never panic. They plan the whole load first — every
// placement checked against usable RAM and against every other placement —
// and only then write, so a refused image leaves guest memory untouched and
// nothing is ever written outside the ranges the plan holds.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package loader

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// Memory is guest RAM as the loaders see it. *mem.GuestMemory implements
// it.
type Memory interface {
	// Write copies p into guest RAM at gpa; it fails, writing nothing,
	// unless the whole range is RAM.
	Write(gpa addr.GPA, p []byte) error
	// Regions returns the guest-physical RAM regions, in any order; the
	// loaders only use their GPA and Size.
	Regions() []mem.Region
}

// RAM returns the guest RAM ranges of m, sorted and with adjacent regions
// merged. It fails if m has no RAM or regions that overlap or wrap.
func RAM(m Memory) ([]addr.Range, error) {
	regions := m.Regions()
	rs := make([]addr.Range, 0, len(regions))
	for _, r := range regions {
		if r.Size == 0 {
			continue
		}
		rg := addr.Range{Base: uint64(r.GPA), Size: r.Size}
		if _, ok := rg.End(); !ok {
			return nil, fmt.Errorf("guest RAM region %s wraps around 2^64", rg)
		}
		rs = append(rs, rg)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("the VM has no guest RAM")
	}
	slices.SortFunc(rs, func(a, b addr.Range) int {
		switch {
		case a.Base < b.Base:
			return -1
		case a.Base > b.Base:
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		l := &out[len(out)-1]
		end, _ := l.End()
		switch {
		case r.Base < end:
			return nil, fmt.Errorf("guest RAM regions %s and %s overlap", *l, r)
		case r.Base == end:
			l.Size += r.Size
		default:
			out = append(out, r)
		}
	}
	return out, nil
}

// MemoryType is the type of a memory map entry. The values are the BIOS
// E820 / ACPI address range types (ACPI Specification 6.5, §15 "System
// Address Map Interfaces", "Address Range Types"; names from Linux's
// asm/e820/types.h). Multiboot's memory map uses the same values
// (MULTIBOOT_MEMORY_AVAILABLE = 1 ... MULTIBOOT_MEMORY_BADRAM = 5).
type MemoryType uint32

// Memory map entry types.
const (
	// E820_TYPE_RAM is RAM the operating system may use.
	E820_TYPE_RAM MemoryType = 1
	// E820_TYPE_RESERVED is in use or reserved by the platform.
	E820_TYPE_RESERVED MemoryType = 2
	// E820_TYPE_ACPI holds ACPI tables; reclaimable once they are read.
	E820_TYPE_ACPI MemoryType = 3
	// E820_TYPE_NVS is ACPI non-volatile storage, preserved across
	// sleep.
	E820_TYPE_NVS MemoryType = 4
	// E820_TYPE_UNUSABLE is memory with errors.
	E820_TYPE_UNUSABLE MemoryType = 5
)

// String names the type as Linux prints it in its e820 log.
func (t MemoryType) String() string {
	switch t {
	case E820_TYPE_RAM:
		return "usable"
	case E820_TYPE_RESERVED:
		return "reserved"
	case E820_TYPE_ACPI:
		return "ACPI data"
	case E820_TYPE_NVS:
		return "ACPI NVS"
	case E820_TYPE_UNUSABLE:
		return "unusable"
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// The legacy PC layout below 1 MiB that BuildMap describes (IBM PC/AT
// memory map; boot.rst "Memory Layout" calls the area from 0x9A000 up
// reserved for the BIOS). Keel has no BIOS, but guests expect these areas
// not to be RAM: Linux and Multiboot kernels look for firmware tables there
// and never use them for allocation.
const (
	// EBDA_START is the start of the extended BIOS data area: the last
	// KiB of conventional memory.
	EBDA_START = 0x9FC00
	// LOW_RAM_END is 640 KiB, the end of conventional memory; from here
	// to BIOS_START lie the VGA window and option ROMs, which the map
	// does not list.
	LOW_RAM_END = 0xA0000
	// BIOS_START is the start of the system BIOS ROM area.
	BIOS_START = 0xF0000
	// HIGH_MEMORY is 1 MiB, where extended memory starts.
	HIGH_MEMORY = 0x100000
)

// MAX_MAP_ENTRIES bounds the memory map: struct boot_params has room for
// E820_MAX_ENTRIES_ZEROPAGE = 128 entries, and the Multiboot loader uses
// the same bound.
const MAX_MAP_ENTRIES = 128

// MapEntry is one entry of the guest's physical memory map.
type MapEntry struct {
	// Range is the guest-physical range.
	Range addr.Range
	// Type says what the range is.
	Type MemoryType
}

// String formats the entry as "[0x0-0x9fbff] usable".
func (e MapEntry) String() string { return fmt.Sprintf("%s %s", e.Range, e.Type) }

// BuildMap returns the guest's physical memory map: ram (sorted, disjoint,
// as RAM returns it) as E820_TYPE_RAM, with the legacy areas below 1 MiB
// cut out — [EBDA_START, LOW_RAM_END) and [BIOS_START, HIGH_MEMORY)
// reserved, [LOW_RAM_END, BIOS_START) not listed — and the caller's
// reserved ranges on top, whatever lies under them (ACPI tables in RAM, or
// MMIO ranges in a hole). The entries are sorted, disjoint, and adjacent
// entries of one type are merged.
//
// reserved must not use E820_TYPE_RAM, its ranges must be non-empty, must
// not wrap and must not overlap each other; the map must not exceed
// MAX_MAP_ENTRIES.
func BuildMap(ram []addr.Range, reserved []MapEntry) ([]MapEntry, error) {
	if len(reserved) > MAX_MAP_ENTRIES {
		return nil, fmt.Errorf("%d reserved ranges, at most %d fit in the memory map", len(reserved), MAX_MAP_ENTRIES)
	}
	for i, r := range reserved {
		if r.Range.Size == 0 {
			return nil, fmt.Errorf("reserved range %d %s is empty", i, r.Range)
		}
		if _, ok := r.Range.End(); !ok {
			return nil, fmt.Errorf("reserved range %d %s wraps around 2^64", i, r.Range)
		}
		if r.Type == E820_TYPE_RAM || r.Type == 0 {
			return nil, fmt.Errorf("reserved range %d %s has type %d (%s): want reserved (2), ACPI (3), NVS (4) or unusable (5)", i, r.Range, uint32(r.Type), r.Type)
		}
		for j := range i {
			if reserved[j].Range.Overlaps(r.Range) {
				return nil, fmt.Errorf("reserved ranges %d %s and %d %s overlap", j, reserved[j].Range, i, r.Range)
			}
		}
	}
	for i, r := range ram {
		if _, ok := r.End(); !ok || r.Size == 0 {
			return nil, fmt.Errorf("RAM range %s is empty or wraps around 2^64", r)
		}
		if i > 0 && ram[i-1].Base+ram[i-1].Size > r.Base {
			return nil, fmt.Errorf("RAM ranges %s and %s are not sorted and disjoint", ram[i-1], r)
		}
	}

	// Layers, highest priority first; type 0 punches a hole.
	legacy := []MapEntry{
		{addr.Range{Base: EBDA_START, Size: LOW_RAM_END - EBDA_START}, E820_TYPE_RESERVED},
		{addr.Range{Base: LOW_RAM_END, Size: BIOS_START - LOW_RAM_END}, 0},
		{addr.Range{Base: BIOS_START, Size: HIGH_MEMORY - BIOS_START}, E820_TYPE_RESERVED},
	}
	classify := func(a uint64) (MemoryType, bool) {
		for _, r := range reserved {
			if r.Range.Contains(a) {
				return r.Type, true
			}
		}
		for _, r := range legacy {
			if r.Range.Contains(a) {
				return r.Type, r.Type != 0
			}
		}
		for _, r := range ram {
			if r.Contains(a) {
				return E820_TYPE_RAM, true
			}
		}
		return 0, false
	}

	// Split the address space at every boundary and classify each piece.
	var cuts []uint64
	add := func(r addr.Range) {
		end, _ := r.End()
		cuts = append(cuts, r.Base, end)
	}
	for _, r := range ram {
		add(r)
	}
	for _, r := range legacy {
		add(r.Range)
	}
	for _, r := range reserved {
		add(r.Range)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)

	var out []MapEntry
	for i := 0; i+1 < len(cuts); i++ {
		a, b := cuts[i], cuts[i+1]
		t, ok := classify(a)
		if !ok {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Type == t && out[n-1].Range.Base+out[n-1].Range.Size == a {
			out[n-1].Range.Size += b - a
			continue
		}
		out = append(out, MapEntry{addr.Range{Base: a, Size: b - a}, t})
	}
	if len(out) > MAX_MAP_ENTRIES {
		return nil, fmt.Errorf("the memory map has %d entries, at most %d fit: pass fewer reserved ranges", len(out), MAX_MAP_ENTRIES)
	}
	return out, nil
}

// Placement is one thing a loader put (or set aside) in guest memory.
type Placement struct {
	// Name says what it is: "kernel", "zero page", "module 0", ...
	Name string
	// Range is where it lies.
	Range addr.Range
}

// String formats the placement as "kernel [0x1000000-0x1ffffff] (16 MiB)".
func (p Placement) String() string {
	return fmt.Sprintf("%-12s %s (%s)", p.Name, p.Range, size(p.Range.Size))
}

// size formats n bytes for logs.
func size(n uint64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Result is what a successful load returns.
type Result struct {
	// Regs and Sregs are the boot vCPU's initial state, complete: the
	// caller sets them as they are. Sregs.APICBase is the reset value
	// for the bootstrap processor.
	Regs  arch.Regs
	Sregs arch.Sregs
	// Placed lists what the loader put where, sorted by address.
	Placed []Placement
	// Map is the memory map the loader gave the guest.
	Map []MapEntry
}

// String describes the load for the log: placements, then the memory map,
// then the entry state in one line.
func (r *Result) String() string {
	var b strings.Builder
	for _, p := range r.Placed {
		fmt.Fprintf(&b, "%s\n", p)
	}
	for _, e := range r.Map {
		fmt.Fprintf(&b, "map %s\n", e)
	}
	fmt.Fprintf(&b, "entry %s rip=%#x", arch.ModeOf(&r.Sregs, r.Regs.RFLAGS), r.Regs.RIP)
	for _, i := range []int{arch.RAX, arch.RBX, arch.RSI, arch.RSP} {
		if v := r.Regs.GPR[i]; v != 0 {
			fmt.Fprintf(&b, " %s=%#x", arch.GPRName(i), v)
		}
	}
	if r.Sregs.CR3 != 0 {
		fmt.Fprintf(&b, " cr3=%#x", r.Sregs.CR3)
	}
	return b.String()
}

// Space is the usable guest RAM of a load with what has been placed in it.
// Every placement must lie in one stretch of usable RAM and overlap no
// other; Write and Zero only touch placed ranges, so a loader cannot write
// anywhere it did not plan to.
type Space struct {
	free   []addr.Range // sorted, disjoint, not adjacent
	placed []Placement
}

// NewSpace returns a Space over the E820_TYPE_RAM entries of memMap, a map
// as BuildMap returns it.
func NewSpace(memMap []MapEntry) *Space {
	s := &Space{}
	for _, e := range memMap {
		if e.Type == E820_TYPE_RAM && e.Range.Size > 0 {
			s.free = append(s.free, e.Range)
		}
	}
	return s
}

// Placed returns the placements so far, sorted by address.
func (s *Space) Placed() []Placement {
	p := slices.Clone(s.placed)
	slices.SortStableFunc(p, func(a, b Placement) int {
		switch {
		case a.Range.Base < b.Range.Base:
			return -1
		case a.Range.Base > b.Range.Base:
			return 1
		}
		return 0
	})
	return p
}

// Fits reports whether r lies entirely in free usable RAM.
func (s *Space) Fits(r addr.Range) bool {
	if r.Size == 0 {
		return false
	}
	if _, ok := r.End(); !ok {
		return false
	}
	for _, f := range s.free {
		if f.Contains(r.Base) {
			return r.Size <= f.Size-(r.Base-f.Base)
		}
	}
	return false
}

// Take places name at r. It fails, saying why, if r is empty or wraps,
// overlaps an earlier placement, or is not entirely usable RAM.
func (s *Space) Take(name string, r addr.Range) error {
	if r.Size == 0 {
		return fmt.Errorf("%s at %#x is empty", name, r.Base)
	}
	if _, ok := r.End(); !ok {
		return fmt.Errorf("%s at %#x (%#x bytes) wraps around 2^64", name, r.Base, r.Size)
	}
	for _, p := range s.placed {
		if p.Range.Overlaps(r) {
			return fmt.Errorf("%s %s overlaps the %s %s", name, r, p.Name, p.Range)
		}
	}
	for i, f := range s.free {
		if !f.Contains(r.Base) {
			continue
		}
		if r.Size > f.Size-(r.Base-f.Base) {
			break
		}
		var pieces []addr.Range
		if r.Base > f.Base {
			pieces = append(pieces, addr.Range{Base: f.Base, Size: r.Base - f.Base})
		}
		if tail := f.Size - (r.Base - f.Base) - r.Size; tail > 0 {
			pieces = append(pieces, addr.Range{Base: r.Base + r.Size, Size: tail})
		}
		s.free = slices.Replace(s.free, i, i+1, pieces...)
		s.placed = append(s.placed, Placement{Name: name, Range: r})
		return nil
	}
	return fmt.Errorf("%s %s is not in usable guest RAM (usable and free: %s)", name, r, s.describeFree())
}

// describeFree lists the free ranges for error messages, at most 8.
func (s *Space) describeFree() string {
	if len(s.free) == 0 {
		return "none"
	}
	var parts []string
	for i, f := range s.free {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("and %d more", len(s.free)-i))
			break
		}
		parts = append(parts, f.String())
	}
	return strings.Join(parts, " ")
}

// Lowest returns the lowest base, a multiple of align (a power of two), at
// or above from, such that [base, base+size) is free usable RAM ending at
// or below limit. ok is false if there is none or size is 0.
func (s *Space) Lowest(size, align, from, limit uint64) (base uint64, ok bool) {
	if size == 0 || !addr.IsPow2(align) {
		return 0, false
	}
	for _, f := range s.free {
		fend := f.Base + f.Size
		b, ok := addr.AlignUp(max(f.Base, from), align)
		if !ok || b < f.Base || b >= fend || size > fend-b {
			continue
		}
		if b > limit || size > limit-b {
			return 0, false // ranges are sorted: later ones are higher still
		}
		return b, true
	}
	return 0, false
}

// Highest returns the highest base, a multiple of align (a power of two),
// at or above from, such that [base, base+size) is free usable RAM ending
// at or below limit. ok is false if there is none or size is 0.
func (s *Space) Highest(size, align, from, limit uint64) (base uint64, ok bool) {
	if size == 0 || !addr.IsPow2(align) {
		return 0, false
	}
	for i := len(s.free) - 1; i >= 0; i-- {
		f := s.free[i]
		end := min(f.Base+f.Size, limit)
		if end < f.Base || end-f.Base < size {
			continue
		}
		b := addr.AlignDown(end-size, align)
		if b < from {
			return 0, false // ranges are sorted: earlier ones are lower still
		}
		if b >= f.Base {
			return b, true
		}
	}
	return 0, false
}

// LargestBelow returns the size of the largest free stretch of usable RAM
// below limit, for error messages.
func (s *Space) LargestBelow(limit uint64) uint64 {
	var n uint64
	for _, f := range s.free {
		if f.Base >= limit {
			break
		}
		n = max(n, min(f.Base+f.Size, limit)-f.Base)
	}
	return n
}

// covered reports whether [gpa, gpa+n) lies inside one placement.
func (s *Space) covered(gpa addr.GPA, n uint64) bool {
	for _, p := range s.placed {
		if p.Range.Contains(uint64(gpa)) && n <= p.Range.Size-(uint64(gpa)-p.Range.Base) {
			return true
		}
	}
	return false
}

// Write copies p to m at gpa, which must lie inside one placement.
func (s *Space) Write(m Memory, gpa addr.GPA, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if !s.covered(gpa, uint64(len(p))) {
		return fmt.Errorf("internal error: write of %d bytes at %s outside every placement", len(p), gpa)
	}
	return m.Write(gpa, p)
}

// zeros is the source of Zero's writes.
var zeros [64 << 10]byte

// Zero clears r in m, which must lie inside one placement.
func (s *Space) Zero(m Memory, r addr.Range) error {
	if r.Size == 0 {
		return nil
	}
	if !s.covered(addr.GPA(r.Base), r.Size) {
		return fmt.Errorf("internal error: clearing %s outside every placement", r)
	}
	for a, left := r.Base, r.Size; left > 0; {
		n := min(left, uint64(len(zeros)))
		if err := m.Write(addr.GPA(a), zeros[:n]); err != nil {
			return err
		}
		a += n
		left -= n
	}
	return nil
}

// Flat segments. Limits are 4 GiB with G set; types are the accessed
// variants so that the processor never writes the descriptor's A bit
// (Intel SDM Vol. 3A, §3.4.5.1 "Code- and Data-Segment Descriptor Types").
const (
	// SEG_TYPE_CODE is execute/read, accessed.
	SEG_TYPE_CODE = 0xB
	// SEG_TYPE_DATA is read/write, accessed.
	SEG_TYPE_DATA = 0x3
	// FLAT_LIMIT is the limit of a flat 4 GiB segment, in bytes.
	FLAT_LIMIT = 0xFFFFFFFF
)

// CodeSegment64 returns a flat 64-bit code segment (L=1, D=0) with
// selector sel.
func CodeSegment64(sel uint16) arch.Segment {
	return arch.Segment{Selector: sel, Limit: FLAT_LIMIT, Type: SEG_TYPE_CODE, S: true, Present: true, L: true, G: true}
}

// CodeSegment32 returns a flat 32-bit code segment with selector sel.
func CodeSegment32(sel uint16) arch.Segment {
	return arch.Segment{Selector: sel, Limit: FLAT_LIMIT, Type: SEG_TYPE_CODE, S: true, Present: true, DB: true, G: true}
}

// DataSegment returns a flat 32-bit read/write data segment with selector
// sel.
func DataSegment(sel uint16) arch.Segment {
	return arch.Segment{Selector: sel, Limit: FLAT_LIMIT, Type: SEG_TYPE_DATA, S: true, Present: true, DB: true, G: true}
}

// Descriptor encodes s as an 8-byte segment descriptor (Intel SDM Vol. 3A,
// §3.4.5 "Segment Descriptors"; AMD64 APM Vol. 2, §4.7 "Legacy Segment
// Descriptors"). The base must fit in 32 bits; with G set the limit is
// stored in 4 KiB units.
func Descriptor(s arch.Segment) uint64 {
	limit := uint64(s.Limit)
	if s.G {
		limit >>= 12
	}
	base := s.Base & 0xFFFFFFFF
	d := limit&0xFFFF | (base&0xFFFFFF)<<16 | (base>>24)<<56 | (limit>>16&0xF)<<48
	d |= uint64(s.Type&0xF) << 40
	bit := func(on bool, n uint) uint64 {
		if on {
			return 1 << n
		}
		return 0
	}
	d |= bit(s.S, 44) | uint64(s.DPL&3)<<45 | bit(s.Present, 47)
	d |= bit(s.AVL, 52) | bit(s.L, 53) | bit(s.DB, 54) | bit(s.G, 55)
	return d
}

// GDT returns a global descriptor table holding each segment at the slot
// its selector names (selector >> 3), with null descriptors elsewhere.
func GDT(segs ...arch.Segment) []byte {
	n := 1
	for _, s := range segs {
		n = max(n, int(s.Selector>>3)+1)
	}
	b := make([]byte, 8*n)
	for _, s := range segs {
		binary.LittleEndian.PutUint64(b[8*int(s.Selector>>3):], Descriptor(s))
	}
	return b
}

// Package bootinfo decodes what the loader handed to the kernel at entry,
// from any of the three boot protocols Keel supports, into one Info:
//
//   - PVH (QEMU -kernel, Xen, Cloud Hypervisor): EBX holds the physical
//     address of a struct hvm_start_info (Xen public/arch-x86/hvm/start_info.h,
//     docs/misc/pvh.pandoc); see ParsePVH.
//   - Multiboot2 (GRUB multiboot2): EAX = MULTIBOOT2_BOOTLOADER_MAGIC, EBX
//     holds the physical address of the boot information (Multiboot2
//     specification 2.0, 3.6); see ParseMultiboot2.
//   - Multiboot (GRUB multiboot, iPXE, QEMU -kernel with a multiboot image):
//     EAX = MULTIBOOT_BOOTLOADER_MAGIC, EBX holds the physical address of the
//     multiboot_info structure (Multiboot specification 0.6.96, 3.3); see
//     ParseMultiboot1.
//
// Parse picks the protocol from the entry registers.
//
// Every structure the loader provides is hostile input: all pointers are
// physical addresses that are followed only through the Memory interface,
// every count and length is checked against a fixed limit (MAX_CMDLINE,
// MAX_MODULES, MAX_MEMORY_ENTRIES, MAX_INFO_SIZE) before anything is read or
// allocated, and malformed input yields an error naming the structure, its
// address and what was wrong; nothing here panics on bad input.
//
// The package is pure Go and host-testable: the kernel implements Memory
// over identity-mapped RAM, tests use a fake.
package bootinfo

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Memory reads physical memory. The kernel implements it over its identity
// map; tests implement it over byte slices.
type Memory interface {
	// ReadAt copies len(p) bytes of physical memory starting at addr into
	// p. It returns an error, and must not panic, when any byte of
	// [addr, addr+len(p)) cannot be read (unmapped, outside RAM, or the
	// range wraps past 2^64).
	ReadAt(p []byte, addr uint64) error
}

// Limits on what a loader may hand over. Anything larger is rejected with an
// error rather than read: a correct loader never comes close.
const (
	// MAX_CMDLINE is the longest command line or module string accepted,
	// in bytes, not counting the terminating NUL.
	MAX_CMDLINE = 4096
	// MAX_MODULES is the largest number of boot modules accepted.
	MAX_MODULES = 256
	// MAX_MEMORY_ENTRIES is the largest number of memory map entries
	// accepted.
	MAX_MEMORY_ENTRIES = 1024
	// MAX_INFO_SIZE is the largest boot information block accepted (the
	// multiboot2 total_size, the multiboot mmap_length).
	MAX_INFO_SIZE = 64 << 10
)

// Protocol names, as stored in Info.Protocol.
const (
	// ProtocolPVH is the Xen PVH boot ABI (hvm_start_info).
	ProtocolPVH = "pvh"
	// ProtocolMultiboot2 is Multiboot2.
	ProtocolMultiboot2 = "multiboot2"
	// ProtocolMultiboot is Multiboot (version 1, 0.6.96).
	ProtocolMultiboot = "multiboot"
)

// RegionType is the type of a memory map range. The values are the E820
// address range types (ACPI 6.5, 15 "System Address Map Interfaces",
// Table 15.1 "Address Range Types"), which PVH (XEN_HVM_MEMMAP_TYPE_*),
// multiboot (MULTIBOOT_MEMORY_*) and multiboot2 all use; values not named
// here are kept as they are and treated as reserved.
type RegionType uint32

// Address range types (ACPI 6.5, Table 15.1).
const (
	// RAM is AddressRangeMemory: RAM usable by the operating system.
	RAM RegionType = 1
	// Reserved is AddressRangeReserved: in use or reserved by the system.
	Reserved RegionType = 2
	// ACPIReclaim is AddressRangeACPI: RAM holding ACPI tables, usable
	// once they have been read.
	ACPIReclaim RegionType = 3
	// ACPINVS is AddressRangeNVS: reserved by the firmware, to be saved
	// across S4.
	ACPINVS RegionType = 4
	// Unusable is AddressRangeUnusable: RAM with detected errors.
	Unusable RegionType = 5
	// Disabled is AddressRangeDisabled: memory not enabled.
	Disabled RegionType = 6
	// Persistent is AddressRangePersistentMemory: non-volatile memory.
	Persistent RegionType = 7
)

// String returns a short human-readable name of the type.
func (t RegionType) String() string {
	switch t {
	case RAM:
		return "RAM"
	case Reserved:
		return "reserved"
	case ACPIReclaim:
		return "ACPI reclaimable"
	case ACPINVS:
		return "ACPI NVS"
	case Unusable:
		return "unusable"
	case Disabled:
		return "disabled"
	case Persistent:
		return "persistent"
	}

	return fmt.Sprintf("type %d", uint32(t))
}

// rank orders types from least to most restrictive: where ranges overlap,
// the one with the highest rank wins. Unknown types rank just below
// Reserved (they must not be used, and a Reserved claim on the same bytes
// says the same thing more plainly).
func (t RegionType) rank() int {
	switch t {
	case RAM:
		return 0
	case ACPIReclaim:
		return 1
	case Persistent:
		return 2
	case ACPINVS:
		return 3
	case Reserved:
		return 5
	case Unusable:
		return 6
	case Disabled:
		return 7
	}

	return 4
}

// Region is one range of the physical address space.
type Region struct {
	// Base is the first physical address of the range.
	Base uint64
	// Size is the length of the range in bytes.
	Size uint64
	// Type says what the range may be used for.
	Type RegionType
}

// End returns the first address after the range, saturating at 2^64-1 when
// Base+Size would overflow.
func (r Region) End() uint64 {
	if end := r.Base + r.Size; end >= r.Base {
		return end
	}

	return math.MaxUint64
}

// String formats the range as "[base-end) type".
func (r Region) String() string {
	return fmt.Sprintf("[%#x-%#x) %v", r.Base, r.End(), r.Type)
}

// Module is one boot module (an image the loader placed in memory).
type Module struct {
	// Base is the physical address of the first byte of the module.
	Base uint64
	// Size is the length of the module in bytes.
	Size uint64
	// Cmdline is the module's string as the loader gave it; GRUB puts the
	// file name first, followed by any arguments from the module2 line.
	Cmdline string
}

// End returns the first address after the module, saturating at 2^64-1.
func (m Module) End() uint64 {
	return Region{Base: m.Base, Size: m.Size}.End()
}

// Info is what the loader handed over, whatever the protocol.
type Info struct {
	// Protocol is ProtocolPVH, ProtocolMultiboot2 or ProtocolMultiboot.
	Protocol string
	// Loader is the boot loader's name (multiboot2 tag 2, multiboot
	// boot_loader_name); empty when the loader gave none.
	Loader string
	// Cmdline is the kernel command line; see ParseCmdline.
	Cmdline string

	// Memory is the sanitized memory map (see Sanitize): sorted, without
	// overlaps or empty ranges, adjacent ranges of one type merged.
	Memory []Region
	// RawMemory is the memory map exactly as the loader gave it.
	RawMemory []Region
	// MemLowerKiB and MemUpperKiB are the multiboot basic memory
	// information (KiB of RAM from 0 and from 1 MiB), zero when absent.
	// When the loader gave no memory map, Memory is built from them.
	MemLowerKiB, MemUpperKiB uint32

	// Modules are the boot modules in the loader's order.
	Modules []Module

	// RSDP is a copy of the ACPI RSDP when the loader supplied one
	// (multiboot2 tag 15, or tag 14 when there is no tag 15), else nil.
	// It is not validated here; kernel/acpi does that.
	RSDP []byte
	// RSDPAddr is the physical address of the RSDP when the loader gave
	// one (PVH rsdp_paddr), else 0.
	RSDPAddr uint64
	// EFI64SystemTable is the physical address of the UEFI system table
	// (multiboot2 tag 12), else 0. Its presence means a UEFI boot, where
	// there is no BIOS area to scan for the RSDP.
	EFI64SystemTable uint64

	// Warnings describe oddities that did not stop the parse (an
	// overlapping memory map, duplicate tags, a missing end tag).
	Warnings []string
}

// RAM returns the number of bytes of usable RAM in the memory map.
func (i *Info) RAM() uint64 {
	var total uint64

	for _, r := range i.Memory {
		if r.Type == RAM {
			total += r.End() - r.Base
		}
	}

	return total
}

// MaxAddr returns the end of the highest RAM range, 0 when there is none.
func (i *Info) MaxAddr() uint64 {
	var max uint64

	for _, r := range i.Memory {
		if r.Type == RAM && r.End() > max {
			max = r.End()
		}
	}

	return max
}

// Covers reports whether all of [base, end) is RAM. It is false for an empty
// or inverted range.
func (i *Info) Covers(base, end uint64) bool {
	if end <= base {
		return false
	}

	// Memory is sorted and merged, so one range must hold it all.
	for _, r := range i.Memory {
		if r.Type == RAM && r.Base <= base && end <= r.End() {
			return true
		}
	}

	return false
}

func (i *Info) warnf(format string, args ...any) {
	i.Warnings = append(i.Warnings, fmt.Sprintf(format, args...))
}

// setMemory records the loader's map and its sanitized form, warning about
// overlaps and wrapping ranges.
func (i *Info) setMemory(raw []Region) {
	i.RawMemory = raw

	for _, r := range raw {
		if r.Size != 0 && r.Base+r.Size < r.Base {
			i.warnf("memory map range at %#x of size %#x wraps past 2^64; cut at 2^64-1", r.Base, r.Size)
		}
	}

	if overlaps(raw) {
		i.warnf("memory map has overlapping ranges; the most restrictive type wins")
	}

	i.Memory = Sanitize(raw)
}

// setBasicMemory builds Memory from the multiboot mem_lower/mem_upper values
// when the loader gave no memory map.
func (i *Info) setBasicMemory(lowerKiB, upperKiB uint32) {
	i.MemLowerKiB, i.MemUpperKiB = lowerKiB, upperKiB

	if i.RawMemory != nil {
		return
	}

	i.warnf("no memory map; using basic memory information (%d KiB low, %d KiB from 1 MiB)", lowerKiB, upperKiB)
	i.setMemory([]Region{
		{Base: 0, Size: uint64(lowerKiB) << 10, Type: RAM},
		{Base: 1 << 20, Size: uint64(upperKiB) << 10, Type: RAM},
	})
}

// overlaps reports whether any two non-empty ranges in rs overlap.
func overlaps(rs []Region) bool {
	s := make([]Region, 0, len(rs))

	for _, r := range rs {
		if r.Size != 0 {
			s = append(s, r)
		}
	}

	sort.Slice(s, func(a, b int) bool { return s[a].Base < s[b].Base })

	for k := 1; k < len(s); k++ {
		if s[k].Base < s[k-1].End() {
			return true
		}
	}

	return false
}

// Sanitize returns the memory map in canonical form: ranges sorted by base,
// empty ranges dropped, overlaps resolved in favour of the most restrictive
// type, and adjacent ranges of the same type merged. A range whose end would
// pass 2^64 is cut at 2^64-1.
//
// From least to most restrictive: RAM, ACPIReclaim, Persistent, ACPINVS,
// types not named in this package, Reserved, Unusable, Disabled. So RAM
// never wins an overlap, and RAM that overlaps anything else loses the
// overlapping part.
func Sanitize(in []Region) []Region {
	type event struct {
		addr  uint64
		delta int
		typ   RegionType
	}

	events := make([]event, 0, 2*len(in))

	for _, r := range in {
		if r.Size == 0 || r.End() == r.Base {
			continue
		}

		events = append(events, event{r.Base, +1, r.Type}, event{r.End(), -1, r.Type})
	}

	sort.Slice(events, func(a, b int) bool { return events[a].addr < events[b].addr })

	// active counts, per type, the ranges covering the current address.
	active := map[RegionType]int{}
	winner := func() (RegionType, bool) {
		var best RegionType
		found := false

		for t, n := range active {
			if n == 0 {
				continue
			}

			if !found || t.rank() > best.rank() || (t.rank() == best.rank() && t > best) {
				best, found = t, true
			}
		}

		return best, found
	}

	var out []Region

	for k := 0; k < len(events); {
		addr := events[k].addr

		for ; k < len(events) && events[k].addr == addr; k++ {
			active[events[k].typ] += events[k].delta
		}

		t, ok := winner()
		if !ok || k == len(events) {
			continue
		}

		next := events[k].addr

		if n := len(out); n > 0 && out[n-1].Type == t && out[n-1].Base+out[n-1].Size == addr {
			out[n-1].Size += next - addr
		} else {
			out = append(out, Region{Base: addr, Size: next - addr, Type: t})
		}
	}

	return out
}

// Parse decodes the boot information from the registers the kernel was
// entered with: EAX = MULTIBOOT2_BOOTLOADER_MAGIC selects multiboot2,
// EAX = MULTIBOOT_BOOTLOADER_MAGIC selects multiboot, and otherwise EBX must
// point at a PVH hvm_start_info (which starts with
// XEN_HVM_START_MAGIC_VALUE).
func Parse(mem Memory, eax, ebx uint32) (*Info, error) {
	switch eax {
	case MULTIBOOT2_BOOTLOADER_MAGIC:
		return ParseMultiboot2(mem, uint64(ebx))
	case MULTIBOOT_BOOTLOADER_MAGIC:
		return ParseMultiboot1(mem, uint64(ebx))
	}

	var b [4]byte

	if err := mem.ReadAt(b[:], uint64(ebx)); err != nil {
		return nil, fmt.Errorf("bootinfo: unknown boot protocol: EAX %#x is neither the multiboot2 magic %#x nor the multiboot magic %#x, and EBX %#x cannot be read as a PVH start info: %w",
			eax, MULTIBOOT2_BOOTLOADER_MAGIC, MULTIBOOT_BOOTLOADER_MAGIC, ebx, err)
	}

	if magic := le32(b[:], 0); magic != XEN_HVM_START_MAGIC_VALUE {
		return nil, fmt.Errorf("bootinfo: unknown boot protocol: EAX %#x is neither the multiboot2 magic %#x nor the multiboot magic %#x, and EBX %#x points at %#x, not the PVH start info magic %#x; boot Keel with a PVH, multiboot2 or multiboot loader",
			eax, MULTIBOOT2_BOOTLOADER_MAGIC, MULTIBOOT_BOOTLOADER_MAGIC, ebx, magic, XEN_HVM_START_MAGIC_VALUE)
	}

	return ParsePVH(mem, uint64(ebx))
}

// errWraps is returned for a range that passes the end of the address space.
var errWraps = errors.New("range wraps past 2^64")

// readChunk is the most readBytes asks of Memory at once, so that a hostile
// length can make it allocate only as much as it could actually read.
const readChunk = 64 << 10

// readBytes reads n bytes of physical memory at addr.
func readBytes(mem Memory, addr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("negative length %d", n)
	}

	if n > 0 && addr+uint64(n)-1 < addr {
		return nil, errWraps
	}

	var b []byte

	for done := 0; done < n; {
		c := min(n-done, readChunk)
		b = append(b, make([]byte, c)...)

		if err := mem.ReadAt(b[done:done+c], addr+uint64(done)); err != nil {
			return nil, err
		}

		done += c
	}

	if b == nil {
		b = []byte{}
	}

	return b, nil
}

// readString reads a NUL-terminated string of at most max bytes (not
// counting the NUL) at addr.
func readString(mem Memory, addr uint64, max int) (string, error) {
	const chunk = 64

	var s []byte

	for len(s) <= max {
		// Read up to the next chunk boundary, so that a string ending
		// just before the end of readable memory is still read whole.
		p := addr + uint64(len(s))
		if p < addr {
			return "", errWraps
		}

		// Never look at more than max+1 bytes.
		b := make([]byte, min(chunk-int(p%chunk), max+1-len(s)))

		if err := mem.ReadAt(b, p); err != nil {
			// Read single bytes, up to the NUL or the failing byte.
			for k := range b {
				if err := mem.ReadAt(b[k:k+1], p+uint64(k)); err != nil {
					return "", err
				}

				if b[k] == 0 {
					break
				}
			}
		}

		if str, ok := cstring(b); ok {
			s = append(s, str...)
			break
		}

		s = append(s, b...)
	}

	if len(s) > max {
		return "", fmt.Errorf("no NUL within %d bytes", max+1)
	}

	return string(s), nil
}

// cstring returns b up to its first NUL, and whether there was one.
func cstring(b []byte) (string, bool) {
	for k, c := range b {
		if c == 0 {
			return string(b[:k]), true
		}
	}

	return string(b), false
}

func le16(b []byte, off int) uint16 {
	return uint16(b[off]) | uint16(b[off+1])<<8
}

func le32(b []byte, off int) uint32 {
	return uint32(le16(b, off)) | uint32(le16(b, off+2))<<16
}

func le64(b []byte, off int) uint64 {
	return uint64(le32(b, off)) | uint64(le32(b, off+4))<<32
}

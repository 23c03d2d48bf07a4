// Package pvh decodes the boot information that a PVH loader (QEMU -kernel,
// Xen, Cloud Hypervisor) hands to the kernel: struct hvm_start_info and its
// memory map.
//
// The layouts mirror xen/include/public/arch-x86/hvm/start_info.h (the "PVH
// boot ABI", Xen docs/misc/pvh.pandoc). The package is pure Go, takes byte
// slices and is host-testable; reading physical memory is the board's job
// (kernel/pc).
package pvh

import (
	"encoding/binary"
	"fmt"
)

// struct hvm_start_info (start_info.h).
const (
	// XEN_HVM_START_MAGIC_VALUE is hvm_start_info.magic ("xEn3" with the
	// high bit of the 'x' set).
	XEN_HVM_START_MAGIC_VALUE = 0x336ec578

	// START_INFO_SIZE_V0 is sizeof(struct hvm_start_info) for version 0
	// (no memory map fields).
	START_INFO_SIZE_V0 = 40
	// START_INFO_SIZE_V1 is sizeof(struct hvm_start_info) for version 1,
	// which adds memmap_paddr, memmap_entries and a reserved word.
	START_INFO_SIZE_V1 = 56

	// Field offsets.
	OFF_MAGIC          = 0
	OFF_VERSION        = 4
	OFF_FLAGS          = 8
	OFF_NR_MODULES     = 12
	OFF_MODLIST_PADDR  = 16
	OFF_CMDLINE_PADDR  = 24
	OFF_RSDP_PADDR     = 32
	OFF_MEMMAP_PADDR   = 40
	OFF_MEMMAP_ENTRIES = 48
)

// struct hvm_memmap_table_entry (start_info.h); the types are the E820 ones
// (ACPI 6.5, 15.1 "INT 15H, E820H - Query System Address Map", Table 15.1).
const (
	// MEMMAP_ENTRY_SIZE is sizeof(struct hvm_memmap_table_entry):
	// u64 addr, u64 size, u32 type, u32 reserved.
	MEMMAP_ENTRY_SIZE = 24

	XEN_HVM_MEMMAP_TYPE_RAM      = 1
	XEN_HVM_MEMMAP_TYPE_RESERVED = 2
	XEN_HVM_MEMMAP_TYPE_ACPI     = 3
	XEN_HVM_MEMMAP_TYPE_NVS      = 4
	XEN_HVM_MEMMAP_TYPE_UNUSABLE = 5
	XEN_HVM_MEMMAP_TYPE_DISABLED = 6
	XEN_HVM_MEMMAP_TYPE_PMEM     = 7
)

// StartInfo is the decoded struct hvm_start_info.
type StartInfo struct {
	// Version of the structure; 1 or later carries a memory map.
	Version uint32
	// Flags holds the SIF_* flags.
	Flags uint32
	// NrModules is the number of entries at ModlistPaddr.
	NrModules uint32
	// ModlistPaddr is the physical address of the module list.
	ModlistPaddr uint64
	// CmdlinePaddr is the physical address of the NUL-terminated command
	// line, or 0.
	CmdlinePaddr uint64
	// RsdpPaddr is the physical address of the ACPI RSDP, or 0.
	RsdpPaddr uint64
	// MemmapPaddr is the physical address of the memory map (version >= 1).
	MemmapPaddr uint64
	// MemmapEntries is the number of memory map entries (version >= 1).
	MemmapEntries uint32
}

// HasMemmap reports whether the start info carries a memory map.
func (s StartInfo) HasMemmap() bool {
	return s.Version >= 1 && s.MemmapEntries != 0
}

// ParseStartInfo decodes an hvm_start_info from b, which must hold at least
// START_INFO_SIZE_V0 bytes (START_INFO_SIZE_V1 when the version is 1 or
// later).
func ParseStartInfo(b []byte) (StartInfo, error) {
	var s StartInfo

	if len(b) < START_INFO_SIZE_V0 {
		return s, fmt.Errorf("pvh: start info is %d bytes, want at least %d", len(b), START_INFO_SIZE_V0)
	}

	le := binary.LittleEndian

	if magic := le.Uint32(b[OFF_MAGIC:]); magic != XEN_HVM_START_MAGIC_VALUE {
		return s, fmt.Errorf("pvh: start info magic is %#x, want %#x (not booted through PVH?)", magic, XEN_HVM_START_MAGIC_VALUE)
	}

	s.Version = le.Uint32(b[OFF_VERSION:])
	s.Flags = le.Uint32(b[OFF_FLAGS:])
	s.NrModules = le.Uint32(b[OFF_NR_MODULES:])
	s.ModlistPaddr = le.Uint64(b[OFF_MODLIST_PADDR:])
	s.CmdlinePaddr = le.Uint64(b[OFF_CMDLINE_PADDR:])
	s.RsdpPaddr = le.Uint64(b[OFF_RSDP_PADDR:])

	if s.Version == 0 {
		return s, nil
	}

	if len(b) < START_INFO_SIZE_V1 {
		return s, fmt.Errorf("pvh: version %d start info is %d bytes, want at least %d", s.Version, len(b), START_INFO_SIZE_V1)
	}

	s.MemmapPaddr = le.Uint64(b[OFF_MEMMAP_PADDR:])
	s.MemmapEntries = le.Uint32(b[OFF_MEMMAP_ENTRIES:])

	return s, nil
}

// MemmapEntry is one decoded struct hvm_memmap_table_entry.
type MemmapEntry struct {
	// Addr is the physical start address of the range.
	Addr uint64
	// Size is the length of the range in bytes.
	Size uint64
	// Type is one of the XEN_HVM_MEMMAP_TYPE_* values.
	Type uint32
}

// End returns the first address after the range, saturating at 2^64-1 when
// Addr+Size would overflow.
func (e MemmapEntry) End() uint64 {
	if end := e.Addr + e.Size; end >= e.Addr {
		return end
	}

	return ^uint64(0)
}

// IsRAM reports whether the range is usable RAM.
func (e MemmapEntry) IsRAM() bool {
	return e.Type == XEN_HVM_MEMMAP_TYPE_RAM
}

// ParseMemmap decodes n consecutive memory map entries from b.
func ParseMemmap(b []byte, n int) ([]MemmapEntry, error) {
	if n < 0 {
		return nil, fmt.Errorf("pvh: negative memory map entry count %d", n)
	}

	if need := n * MEMMAP_ENTRY_SIZE; len(b) < need {
		return nil, fmt.Errorf("pvh: memory map of %d entries needs %d bytes, have %d", n, need, len(b))
	}

	le := binary.LittleEndian
	m := make([]MemmapEntry, n)

	for i := range m {
		e := b[i*MEMMAP_ENTRY_SIZE:]
		m[i] = MemmapEntry{
			Addr: le.Uint64(e[0:]),
			Size: le.Uint64(e[8:]),
			Type: le.Uint32(e[16:]),
		}
	}

	return m, nil
}

// TotalRAM returns the number of bytes in RAM entries. Overlapping RAM
// entries, which a correct loader never produces, are counted twice.
func TotalRAM(m []MemmapEntry) (total uint64) {
	for _, e := range m {
		if e.IsRAM() {
			total += e.Size
		}
	}

	return
}

// Covers reports whether a single RAM entry contains all of [start, end).
func Covers(m []MemmapEntry, start, end uint64) bool {
	for _, e := range m {
		if e.IsRAM() && e.Addr <= start && e.End() >= end {
			return true
		}
	}

	return false
}

package bootinfo

import (
	"fmt"
)

// Multiboot (Multiboot specification 0.6.96, 3.2 "Machine state" and 3.3
// "Boot information format"; names from its multiboot.h).
const (
	// MULTIBOOT_BOOTLOADER_MAGIC is the value of EAX at entry from a
	// multiboot loader (3.2).
	MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002

	// multiboot_info.flags bits (3.3): which fields are valid.
	MULTIBOOT_INFO_MEMORY           = 1 << 0 // mem_lower, mem_upper
	MULTIBOOT_INFO_CMDLINE          = 1 << 2 // cmdline
	MULTIBOOT_INFO_MODS             = 1 << 3 // mods_count, mods_addr
	MULTIBOOT_INFO_MEM_MAP          = 1 << 6 // mmap_length, mmap_addr
	MULTIBOOT_INFO_BOOT_LOADER_NAME = 1 << 9 // boot_loader_name

	// Offsets of the multiboot_info fields used here (3.3).
	MULTIBOOT_OFF_FLAGS            = 0  // u32 flags
	MULTIBOOT_OFF_MEM_LOWER        = 4  // u32 mem_lower: KiB of RAM from 0
	MULTIBOOT_OFF_MEM_UPPER        = 8  // u32 mem_upper: KiB of RAM from 1 MiB
	MULTIBOOT_OFF_CMDLINE          = 16 // u32 cmdline: address of a C string
	MULTIBOOT_OFF_MODS_COUNT       = 20 // u32 mods_count
	MULTIBOOT_OFF_MODS_ADDR        = 24 // u32 mods_addr: the module list
	MULTIBOOT_OFF_MMAP_LENGTH      = 44 // u32 mmap_length: bytes of memory map
	MULTIBOOT_OFF_MMAP_ADDR        = 48 // u32 mmap_addr: the memory map
	MULTIBOOT_OFF_BOOT_LOADER_NAME = 64 // u32 boot_loader_name: a C string

	// MULTIBOOT_MOD_LIST_SIZE is sizeof(struct multiboot_mod_list):
	// u32 mod_start, u32 mod_end, u32 string, u32 reserved (3.3).
	MULTIBOOT_MOD_LIST_SIZE = 16
	// MULTIBOOT_MMAP_MIN_SIZE is the smallest memory map entry size field:
	// the size field does not count itself, and the entry holds at least
	// u64 base_addr, u64 length, u32 type (3.3).
	MULTIBOOT_MMAP_MIN_SIZE = 20
)

// ParseMultiboot1 decodes the multiboot_info structure at physical address
// addr and everything it points to, for the fields its flags mark valid:
// basic memory information (bit 0), command line (bit 2), modules (bit 3),
// memory map (bit 6) and boot loader name (bit 9).
func ParseMultiboot1(mem Memory, addr uint64) (*Info, error) {
	var fl [4]byte

	if err := mem.ReadAt(fl[:], addr); err != nil {
		return nil, fmt.Errorf("bootinfo: multiboot: cannot read the boot information at %#x: %w", addr, err)
	}

	flags := le32(fl[:], MULTIBOOT_OFF_FLAGS)

	// Read only as far as the last field that flags make valid.
	need := 4

	for _, f := range []struct {
		bit uint32
		end int
	}{
		{MULTIBOOT_INFO_MEMORY, MULTIBOOT_OFF_MEM_UPPER + 4},
		{MULTIBOOT_INFO_CMDLINE, MULTIBOOT_OFF_CMDLINE + 4},
		{MULTIBOOT_INFO_MODS, MULTIBOOT_OFF_MODS_ADDR + 4},
		{MULTIBOOT_INFO_MEM_MAP, MULTIBOOT_OFF_MMAP_ADDR + 4},
		{MULTIBOOT_INFO_BOOT_LOADER_NAME, MULTIBOOT_OFF_BOOT_LOADER_NAME + 4},
	} {
		if flags&f.bit != 0 {
			need = max(need, f.end)
		}
	}

	b, err := readBytes(mem, addr, need)
	if err != nil {
		return nil, fmt.Errorf("bootinfo: multiboot: cannot read %d bytes of boot information at %#x (flags %#x): %w", need, addr, flags, err)
	}

	info := &Info{Protocol: ProtocolMultiboot}

	if flags&MULTIBOOT_INFO_CMDLINE != 0 {
		p := uint64(le32(b, MULTIBOOT_OFF_CMDLINE))

		if info.Cmdline, err = readString(mem, p, MAX_CMDLINE); err != nil {
			return nil, fmt.Errorf("bootinfo: multiboot: command line at %#x: %w", p, err)
		}
	}

	if flags&MULTIBOOT_INFO_BOOT_LOADER_NAME != 0 {
		p := uint64(le32(b, MULTIBOOT_OFF_BOOT_LOADER_NAME))

		if info.Loader, err = readString(mem, p, MAX_CMDLINE); err != nil {
			return nil, fmt.Errorf("bootinfo: multiboot: boot loader name at %#x: %w", p, err)
		}
	}

	if flags&MULTIBOOT_INFO_MODS != 0 {
		if err := info.mb1Modules(mem, le32(b, MULTIBOOT_OFF_MODS_COUNT), le32(b, MULTIBOOT_OFF_MODS_ADDR)); err != nil {
			return nil, err
		}
	}

	if flags&MULTIBOOT_INFO_MEM_MAP != 0 {
		if err := info.mb1Memmap(mem, le32(b, MULTIBOOT_OFF_MMAP_LENGTH), le32(b, MULTIBOOT_OFF_MMAP_ADDR)); err != nil {
			return nil, err
		}
	}

	switch {
	case flags&MULTIBOOT_INFO_MEMORY != 0:
		info.setBasicMemory(le32(b, MULTIBOOT_OFF_MEM_LOWER), le32(b, MULTIBOOT_OFF_MEM_UPPER))
	case info.RawMemory == nil:
		info.warnf("multiboot: no memory map and no basic memory information (flags %#x)", flags)
	}

	return info, nil
}

// mb1Modules reads the multiboot_mod_list array.
func (info *Info) mb1Modules(mem Memory, count, addr uint32) error {
	if count == 0 {
		return nil
	}

	if count > MAX_MODULES {
		return fmt.Errorf("bootinfo: multiboot: mods_count is %d, at most %d modules are accepted", count, MAX_MODULES)
	}

	b, err := readBytes(mem, uint64(addr), int(count)*MULTIBOOT_MOD_LIST_SIZE)
	if err != nil {
		return fmt.Errorf("bootinfo: multiboot: cannot read the %d-entry module list at %#x: %w", count, addr, err)
	}

	for k := 0; k < int(count); k++ {
		e := b[k*MULTIBOOT_MOD_LIST_SIZE:]
		start, end, str := le32(e, 0), le32(e, 4), le32(e, 8)

		if end < start {
			return fmt.Errorf("bootinfo: multiboot: module %d has mod_end %#x before mod_start %#x", k, end, start)
		}

		m := Module{Base: uint64(start), Size: uint64(end - start)}

		if str != 0 {
			if m.Cmdline, err = readString(mem, uint64(str), MAX_CMDLINE); err != nil {
				return fmt.Errorf("bootinfo: multiboot: module %d string at %#x: %w", k, str, err)
			}
		}

		info.Modules = append(info.Modules, m)
	}

	return nil
}

// mb1Memmap reads the memory map buffer: entries of a u32 size (not counting
// itself) followed by size bytes, the first 20 of them base_addr, length and
// type.
func (info *Info) mb1Memmap(mem Memory, length, addr uint32) error {
	if length > MAX_INFO_SIZE {
		return fmt.Errorf("bootinfo: multiboot: mmap_length is %d, at most %d is accepted", length, MAX_INFO_SIZE)
	}

	b, err := readBytes(mem, uint64(addr), int(length))
	if err != nil {
		return fmt.Errorf("bootinfo: multiboot: cannot read the %d-byte memory map at %#x: %w", length, addr, err)
	}

	var regions []Region

	for off := 0; off < len(b); {
		where := uint64(addr) + uint64(off)

		if off+4 > len(b) {
			return fmt.Errorf("bootinfo: multiboot: memory map entry at %#x is cut off by mmap_length %d", where, length)
		}

		size := le32(b, off)

		if size < MULTIBOOT_MMAP_MIN_SIZE {
			return fmt.Errorf("bootinfo: multiboot: memory map entry at %#x has size %d, want at least %d",
				where, size, MULTIBOOT_MMAP_MIN_SIZE)
		}

		if uint64(off)+4+uint64(size) > uint64(len(b)) {
			return fmt.Errorf("bootinfo: multiboot: memory map entry at %#x of size %d runs past mmap_length %d", where, size, length)
		}

		if len(regions) == MAX_MEMORY_ENTRIES {
			return fmt.Errorf("bootinfo: multiboot: memory map at %#x has more than %d entries", addr, MAX_MEMORY_ENTRIES)
		}

		e := b[off+4:]
		regions = append(regions, Region{Base: le64(e, 0), Size: le64(e, 8), Type: RegionType(le32(e, 16))})

		off += 4 + int(size)
	}

	if len(regions) == 0 {
		info.warnf("multiboot: memory map at %#x is empty", addr)
		return nil
	}

	info.setMemory(regions)

	return nil
}

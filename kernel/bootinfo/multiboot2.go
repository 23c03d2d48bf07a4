package bootinfo

import (
	"fmt"
)

// Multiboot2 (Multiboot2 specification 2.0, 3.2 "Machine state" and 3.6
// "Boot information format"; names from its multiboot2.h).
const (
	// MULTIBOOT2_BOOTLOADER_MAGIC is the value of EAX at entry from a
	// multiboot2 loader (3.2).
	MULTIBOOT2_BOOTLOADER_MAGIC = 0x36d76289

	// MULTIBOOT_INFO_ALIGN is the alignment of the boot information and of
	// each tag in it (3.6.1).
	MULTIBOOT_INFO_ALIGN = 8
	// MULTIBOOT2_FIXED_PART is the size of the fixed part of the boot
	// information: u32 total_size, u32 reserved (3.6.1).
	MULTIBOOT2_FIXED_PART = 8
	// MULTIBOOT_TAG_HEADER is the size of every tag's header: u32 type,
	// u32 size (3.6.2).
	MULTIBOOT_TAG_HEADER = 8

	// Tag types (3.6.2 - 3.6.16).
	MULTIBOOT_TAG_TYPE_END              = 0  // end of the tag list
	MULTIBOOT_TAG_TYPE_CMDLINE          = 1  // boot command line
	MULTIBOOT_TAG_TYPE_BOOT_LOADER_NAME = 2  // boot loader name
	MULTIBOOT_TAG_TYPE_MODULE           = 3  // one module
	MULTIBOOT_TAG_TYPE_BASIC_MEMINFO    = 4  // basic memory information
	MULTIBOOT_TAG_TYPE_MMAP             = 6  // memory map
	MULTIBOOT_TAG_TYPE_EFI64            = 12 // EFI 64-bit system table pointer
	MULTIBOOT_TAG_TYPE_ACPI_OLD         = 14 // copy of the ACPI 1.0 RSDP
	MULTIBOOT_TAG_TYPE_ACPI_NEW         = 15 // copy of the ACPI 2.0+ RSDP

	// MULTIBOOT_TAG_MODULE_SIZE is the module tag without its string:
	// header, u32 mod_start, u32 mod_end (3.6.6).
	MULTIBOOT_TAG_MODULE_SIZE = 16
	// MULTIBOOT_TAG_BASIC_MEMINFO_SIZE is the basic memory information
	// tag: header, u32 mem_lower, u32 mem_upper (3.6.3).
	MULTIBOOT_TAG_BASIC_MEMINFO_SIZE = 16
	// MULTIBOOT_TAG_MMAP_SIZE is the memory map tag without its entries:
	// header, u32 entry_size, u32 entry_version (3.6.8).
	MULTIBOOT_TAG_MMAP_SIZE = 16
	// MULTIBOOT_MMAP_ENTRY_SIZE is the smallest memory map entry: u64
	// base_addr, u64 length, u32 type, u32 reserved (3.6.8). Larger
	// entry_size values are allowed; the extra bytes are skipped.
	MULTIBOOT_MMAP_ENTRY_SIZE = 24
	// MULTIBOOT_TAG_EFI64_SIZE is the EFI 64-bit system table pointer
	// tag: header, u64 pointer (3.6.12).
	MULTIBOOT_TAG_EFI64_SIZE = 16
	// ACPI_RSDP_V1_SIZE and ACPI_RSDP_V2_SIZE are the sizes of the RSDP
	// copies in the ACPI old and new RSDP tags (3.6.13, 3.6.14; ACPI 6.5,
	// 5.2.5.3).
	ACPI_RSDP_V1_SIZE = 20 // ACPI 1.0 RSDP
	ACPI_RSDP_V2_SIZE = 36 // ACPI 2.0+ RSDP
)

// ParseMultiboot2 decodes the multiboot2 boot information at physical
// address addr: command line (tag 1), boot loader name (2), modules (3),
// basic memory information (4), memory map (6), EFI 64-bit system table
// pointer (12) and the ACPI RSDP copies (14, 15). Other tags are skipped.
//
// The whole block, at most MAX_INFO_SIZE bytes, is copied first and decoded
// from the copy; tags must lie within total_size and the list must be
// walkable (each tag at least 8 bytes, the next one at the following 8-byte
// boundary).
func ParseMultiboot2(mem Memory, addr uint64) (*Info, error) {
	var hdr [MULTIBOOT2_FIXED_PART]byte

	if err := mem.ReadAt(hdr[:], addr); err != nil {
		return nil, fmt.Errorf("bootinfo: multiboot2: cannot read the boot information at %#x: %w", addr, err)
	}

	total := le32(hdr[:], 0)

	if total < MULTIBOOT2_FIXED_PART+MULTIBOOT_TAG_HEADER {
		return nil, fmt.Errorf("bootinfo: multiboot2: boot information at %#x has total_size %d, want at least %d (fixed part and end tag)",
			addr, total, MULTIBOOT2_FIXED_PART+MULTIBOOT_TAG_HEADER)
	}

	if total > MAX_INFO_SIZE {
		return nil, fmt.Errorf("bootinfo: multiboot2: boot information at %#x has total_size %d, at most %d is accepted",
			addr, total, MAX_INFO_SIZE)
	}

	b, err := readBytes(mem, addr, int(total))
	if err != nil {
		return nil, fmt.Errorf("bootinfo: multiboot2: cannot read the %d-byte boot information at %#x: %w", total, addr, err)
	}

	info := &Info{Protocol: ProtocolMultiboot2}

	if addr%MULTIBOOT_INFO_ALIGN != 0 {
		info.warnf("multiboot2: boot information at %#x is not %d-byte aligned", addr, MULTIBOOT_INFO_ALIGN)
	}

	var (
		seen               = map[uint32]int{}
		haveMeminfo        bool
		memLower, memUpper uint32
		rsdpOld, rsdpNew   []byte
		ended              bool
	)

	off := MULTIBOOT2_FIXED_PART

	for off+MULTIBOOT_TAG_HEADER <= len(b) {
		typ, size := le32(b, off), le32(b, off+4)
		where := addr + uint64(off)

		if size < MULTIBOOT_TAG_HEADER {
			return nil, fmt.Errorf("bootinfo: multiboot2: tag type %d at %#x (offset %d) has size %d, want at least %d",
				typ, where, off, size, MULTIBOOT_TAG_HEADER)
		}

		if uint64(off)+uint64(size) > uint64(len(b)) {
			return nil, fmt.Errorf("bootinfo: multiboot2: tag type %d at %#x (offset %d) has size %d, past total_size %d",
				typ, where, off, size, total)
		}

		if typ == MULTIBOOT_TAG_TYPE_END {
			ended = true
			break
		}

		tag := b[off : off+int(size)]
		payload := tag[MULTIBOOT_TAG_HEADER:]

		seen[typ]++
		dup := seen[typ] > 1 && typ != MULTIBOOT_TAG_TYPE_MODULE

		if dup {
			info.warnf("multiboot2: duplicate tag type %d at %#x ignored", typ, where)
		}

		switch {
		case dup:

		case typ == MULTIBOOT_TAG_TYPE_CMDLINE:
			s, ok := cstring(payload)
			if !ok {
				info.warnf("multiboot2: command line tag at %#x is not NUL-terminated", where)
			}

			if len(s) > MAX_CMDLINE {
				return nil, fmt.Errorf("bootinfo: multiboot2: command line at %#x is %d bytes, at most %d are accepted",
					where, len(s), MAX_CMDLINE)
			}

			info.Cmdline = s

		case typ == MULTIBOOT_TAG_TYPE_BOOT_LOADER_NAME:
			s, ok := cstring(payload)
			if !ok {
				info.warnf("multiboot2: boot loader name tag at %#x is not NUL-terminated", where)
			}

			if len(s) > MAX_CMDLINE {
				return nil, fmt.Errorf("bootinfo: multiboot2: boot loader name at %#x is %d bytes, at most %d are accepted",
					where, len(s), MAX_CMDLINE)
			}

			info.Loader = s

		case typ == MULTIBOOT_TAG_TYPE_MODULE:
			if err := info.mb2Module(tag, where); err != nil {
				return nil, err
			}

		case typ == MULTIBOOT_TAG_TYPE_BASIC_MEMINFO:
			if len(tag) < MULTIBOOT_TAG_BASIC_MEMINFO_SIZE {
				return nil, fmt.Errorf("bootinfo: multiboot2: basic memory information tag at %#x has size %d, want %d",
					where, size, MULTIBOOT_TAG_BASIC_MEMINFO_SIZE)
			}

			haveMeminfo = true
			memLower, memUpper = le32(tag, 8), le32(tag, 12)

		case typ == MULTIBOOT_TAG_TYPE_MMAP:
			if err := info.mb2Memmap(tag, where); err != nil {
				return nil, err
			}

		case typ == MULTIBOOT_TAG_TYPE_EFI64:
			if len(tag) < MULTIBOOT_TAG_EFI64_SIZE {
				return nil, fmt.Errorf("bootinfo: multiboot2: EFI64 system table tag at %#x has size %d, want %d",
					where, size, MULTIBOOT_TAG_EFI64_SIZE)
			}

			info.EFI64SystemTable = le64(tag, 8)

		case typ == MULTIBOOT_TAG_TYPE_ACPI_OLD:
			if len(payload) < ACPI_RSDP_V1_SIZE {
				info.warnf("multiboot2: ACPI old RSDP tag at %#x holds %d bytes, want %d; ignored", where, len(payload), ACPI_RSDP_V1_SIZE)
				break
			}

			rsdpOld = append([]byte(nil), payload...)

		case typ == MULTIBOOT_TAG_TYPE_ACPI_NEW:
			if len(payload) < ACPI_RSDP_V2_SIZE {
				info.warnf("multiboot2: ACPI new RSDP tag at %#x holds %d bytes, want %d; ignored", where, len(payload), ACPI_RSDP_V2_SIZE)
				break
			}

			rsdpNew = append([]byte(nil), payload...)
		}

		// The next tag starts at the next 8-byte boundary; size <= 64 KiB
		// so this cannot overflow.
		off += (int(size) + MULTIBOOT_INFO_ALIGN - 1) &^ (MULTIBOOT_INFO_ALIGN - 1)
	}

	if !ended {
		info.warnf("multiboot2: no end tag within total_size %d", total)
	}

	switch {
	case rsdpNew != nil:
		info.RSDP = rsdpNew
	case rsdpOld != nil:
		info.RSDP = rsdpOld
	}

	if haveMeminfo {
		info.setBasicMemory(memLower, memUpper)
	} else if info.RawMemory == nil {
		info.warnf("multiboot2: no memory map and no basic memory information")
	}

	return info, nil
}

// mb2Module decodes a module tag.
func (info *Info) mb2Module(tag []byte, where uint64) error {
	if len(tag) < MULTIBOOT_TAG_MODULE_SIZE {
		return fmt.Errorf("bootinfo: multiboot2: module tag at %#x has size %d, want at least %d",
			where, len(tag), MULTIBOOT_TAG_MODULE_SIZE)
	}

	if len(info.Modules) == MAX_MODULES {
		return fmt.Errorf("bootinfo: multiboot2: module tag at %#x is past the limit of %d modules", where, MAX_MODULES)
	}

	start, end := le32(tag, 8), le32(tag, 12)

	if end < start {
		return fmt.Errorf("bootinfo: multiboot2: module tag at %#x has mod_end %#x before mod_start %#x", where, end, start)
	}

	s, ok := cstring(tag[MULTIBOOT_TAG_MODULE_SIZE:])
	if !ok {
		info.warnf("multiboot2: module string at %#x is not NUL-terminated", where)
	}

	if len(s) > MAX_CMDLINE {
		return fmt.Errorf("bootinfo: multiboot2: module string at %#x is %d bytes, at most %d are accepted", where, len(s), MAX_CMDLINE)
	}

	info.Modules = append(info.Modules, Module{Base: uint64(start), Size: uint64(end - start), Cmdline: s})

	return nil
}

// mb2Memmap decodes a memory map tag.
func (info *Info) mb2Memmap(tag []byte, where uint64) error {
	if len(tag) < MULTIBOOT_TAG_MMAP_SIZE {
		return fmt.Errorf("bootinfo: multiboot2: memory map tag at %#x has size %d, want at least %d",
			where, len(tag), MULTIBOOT_TAG_MMAP_SIZE)
	}

	entrySize, version := le32(tag, 8), le32(tag, 12)

	if entrySize < MULTIBOOT_MMAP_ENTRY_SIZE || entrySize%MULTIBOOT_INFO_ALIGN != 0 || entrySize > MAX_INFO_SIZE {
		return fmt.Errorf("bootinfo: multiboot2: memory map tag at %#x has entry_size %d, want a multiple of %d, at least %d",
			where, entrySize, MULTIBOOT_INFO_ALIGN, MULTIBOOT_MMAP_ENTRY_SIZE)
	}

	if version != 0 {
		info.warnf("multiboot2: memory map tag at %#x has entry_version %d, decoded as version 0", where, version)
	}

	body := tag[MULTIBOOT_TAG_MMAP_SIZE:]
	n := len(body) / int(entrySize)

	if n > MAX_MEMORY_ENTRIES {
		return fmt.Errorf("bootinfo: multiboot2: memory map tag at %#x has %d entries, at most %d are accepted",
			where, n, MAX_MEMORY_ENTRIES)
	}

	if len(body)%int(entrySize) != 0 {
		info.warnf("multiboot2: memory map tag at %#x has %d trailing bytes after %d entries", where, len(body)%int(entrySize), n)
	}

	if n == 0 {
		info.warnf("multiboot2: memory map tag at %#x has no entries", where)
		return nil
	}

	regions := make([]Region, n)

	for k := range regions {
		e := body[k*int(entrySize):]
		regions[k] = Region{Base: le64(e, 0), Size: le64(e, 8), Type: RegionType(le32(e, 16))}
	}

	info.setMemory(regions)

	return nil
}

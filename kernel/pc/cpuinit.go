//go:build tamago

package pc

// cpuinit (cpuinit_amd64.s) is the first code Keel runs. The runtime's
// _rt0_amd64_tamago jumps to runtime/goos.CPUInit, which the library turns
// into a jump to the global symbol cpuinit (build tag linkcpuinit replaces
// the library's own). A PVH loader (QEMU -kernel) enters it in 32-bit
// protected mode with paging off and EBX = physical address of struct
// hvm_start_info. cpuinit saves the loader's registers, masks the 8259
// PICs, checks that RAM covers [RAM_START, RAM_START+RAM_SIZE), builds the
// page tables, enters long mode and jumps to _rt0_tamago_start.
//
// Limits: entry in long mode (UEFI) is not handled yet. The memory check
// can only speak when the image itself was loaded: loaders drop ELF
// segments that fall outside RAM. The image is linked at RAM_START+64 KiB
// (64 MiB) so that every machine too small for the runtime's region but
// larger than the image still gets the message.
//
// The constants below are the low-memory layout it owns (physical
// addresses, identity mapped). cpuinit_amd64.s reads them via go_asm.h, so
// they are the single definition.

// Low-memory layout.
const (
	// PAGE0_SHADOW is a copy of physical page 0 taken at entry, read
	// in place of page 0 (unmapped) by the boot information reader.
	PAGE0_SHADOW = 0x3000

	// LOW_SHADOW_START-LOW_SHADOW_END (the page tables' area) is copied
	// to LOW_SHADOW at a Multiboot entry, before the tables overwrite
	// it: QEMU's Multiboot loader leaves its information there.
	// LOW_SHADOW is the unused start of the runtime's region, below the
	// image at RAM_START+0xf000.
	LOW_SHADOW_START = 0x9000
	LOW_SHADOW_END   = 0x10000
	LOW_SHADOW       = RAM_START

	// IDT_BASE is a zeroed 4 KiB page for the 256 long-mode interrupt
	// gates; IDTR points here and the library's EnableExceptions fills
	// it (it writes gates wherever IDTR points).
	IDT_BASE = 0x7000
	// IDT_LIMIT is the IDTR limit: 256 gates of 16 bytes, minus one.
	IDT_LIMIT = 256*16 - 1

	// HANDOFF_BASE is the boot handoff page: what the loader passed,
	// copied where the Go side can find it, plus the GDT and the 32-bit
	// boot stack. Offsets are HANDOFF_*.
	HANDOFF_BASE = 0x8000

	// PML4_BASE, PDPT_BASE, PD_BASE and PT_BASE are the page tables:
	// one PML4, one PDPT, four page directories of 2 MiB pages mapping
	// 0-4 GiB, and one page table of 4 KiB pages for 0-2 MiB whose entry
	// 0 is not present, so that nil dereferences fault.
	PML4_BASE        = 0x9000
	PDPT_BASE        = 0xa000
	PD_BASE          = 0xb000
	PD_COUNT         = 4
	PT_BASE          = 0xf000
	PAGE_TABLES_END  = 0x10000
	UNCACHED_START   = 0xc0000000 // 3-4 GiB: PCI MMIO, IOAPIC, LAPIC, flash
	IDENTITY_MAP_END = 1 << 32
)

// Offsets in the handoff page.
const (
	// HANDOFF_EAX holds EAX at entry (u32): the boot protocol magic for
	// Multiboot, undefined for PVH.
	HANDOFF_EAX = 0x00
	// HANDOFF_EBX holds EBX at entry (u32): the physical address of the
	// boot information (struct hvm_start_info for PVH).
	HANDOFF_EBX = 0x04
	// HANDOFF_FLAGS holds HANDOFF_FLAG_* bits (u32) set by cpuinit.
	HANDOFF_FLAGS = 0x08
	// HANDOFF_MEMMAP_COUNT is the number of memory map entries copied to
	// HANDOFF_MEMMAP (u32).
	HANDOFF_MEMMAP_COUNT = 0x0c
	// HANDOFF_STACK_TOP is the top of the 32-bit boot stack, which grows
	// down to 0x10.
	HANDOFF_STACK_TOP = 0x40
	// HANDOFF_START_INFO holds a copy of hvm_start_info (56 bytes).
	HANDOFF_START_INFO = 0x40
	// HANDOFF_START_INFO_SIZE is the copied size: pvh.START_INFO_SIZE_V1.
	HANDOFF_START_INFO_SIZE = 56
	// HANDOFF_GDT is the GDT: null, 64-bit code (selector 0x08), data
	// (selector 0x10).
	HANDOFF_GDT = 0x80
	// HANDOFF_GDTR and HANDOFF_IDTR are the LGDT/LIDT pseudo-descriptors
	// (16-bit limit, then base).
	HANDOFF_GDTR = 0xa0
	HANDOFF_IDTR = 0xb0
	// HANDOFF_TSC holds the TSC read by cpuinit's first instructions
	// (u64).
	HANDOFF_TSC = 0xc0
	// HANDOFF_SCAN_END and HANDOFF_SCAN_STRIDE are cpuinit's memory map
	// scan state (u32 each): end of the entries and the entry size (0:
	// Multiboot entries, which carry their own size).
	HANDOFF_SCAN_END    = 0xc8
	HANDOFF_SCAN_STRIDE = 0xcc
	// HANDOFF_MEMMAP holds a copy of the PVH memory map, at most
	// HANDOFF_MEMMAP_MAX entries of 24 bytes.
	HANDOFF_MEMMAP     = 0x100
	HANDOFF_MEMMAP_MAX = (0x1000 - HANDOFF_MEMMAP) / MEMMAP_ENTRY_SIZE

	// MEMMAP_ENTRY_SIZE is sizeof(struct hvm_memmap_table_entry), see
	// package pvh.
	MEMMAP_ENTRY_SIZE = 24

	// HANDOFF_FLAG_PVH: EBX pointed at an hvm_start_info (magic
	// matched) and it was copied to HANDOFF_START_INFO.
	HANDOFF_FLAG_PVH = 1 << 0
	// HANDOFF_FLAG_MEMMAP: the memory map was copied to HANDOFF_MEMMAP.
	HANDOFF_FLAG_MEMMAP = 1 << 1
	// HANDOFF_FLAG_MEMMAP_TRUNCATED: the loader's map had more than
	// HANDOFF_MEMMAP_MAX entries; the rest were dropped.
	HANDOFF_FLAG_MEMMAP_TRUNCATED = 1 << 2
	// HANDOFF_FLAG_LOW_SHADOW: LOW_SHADOW holds the copy of the page
	// tables' area.
	HANDOFF_FLAG_LOW_SHADOW = 1 << 3
)

// Memory the runtime needs: RamStart plus RamSize. cpuinit refuses to start
// when one RAM range does not cover it. The Makefile links the text at
// RAM_START+0x10000 (-T) and builds with the linkramstart tag.
const (
	// RAM_START is runtime/goos.RamStart (the library's default, 256 MiB,
	// is replaced with the linkramstart build tag).
	RAM_START = 0x04000000
	// RAM_SIZE is runtime/goos.RamSize: 512 MiB for code, heap and the
	// initial stack.
	RAM_SIZE = 0x20000000
	// RAM_END is the first address the runtime does not use.
	RAM_END = RAM_START + RAM_SIZE
)

// Hardware constants used by cpuinit.
const (
	// XEN_HVM_START_MAGIC_VALUE is hvm_start_info.magic (Xen
	// start_info.h; see package pvh).
	XEN_HVM_START_MAGIC_VALUE = 0x336ec578
	// START_INFO_VERSION, START_INFO_MEMMAP_PADDR and
	// START_INFO_MEMMAP_ENTRIES are hvm_start_info field offsets.
	START_INFO_VERSION        = 4
	START_INFO_MEMMAP_PADDR   = 40
	START_INFO_MEMMAP_ENTRIES = 48
	// XEN_HVM_MEMMAP_TYPE_RAM is the memory map type of usable RAM
	// (also Multiboot's MULTIBOOT_MEMORY_AVAILABLE).
	XEN_HVM_MEMMAP_TYPE_RAM = 1

	// MULTIBOOT2_BOOTLOADER_MAGIC is EAX at a Multiboot2 entry and
	// MULTIBOOT_TAG_TYPE_MMAP the memory map tag (Multiboot2 spec 3.2,
	// 3.6.8).
	MULTIBOOT2_BOOTLOADER_MAGIC = 0x36d76289
	MULTIBOOT_TAG_TYPE_MMAP     = 6
	// MULTIBOOT_BOOTLOADER_MAGIC is EAX at a Multiboot entry and
	// MULTIBOOT_INFO_MEM_MAP the flags bit saying the memory map fields
	// are valid (Multiboot 0.6.96, 3.2, 3.3).
	MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002
	MULTIBOOT_INFO_MEM_MAP     = 1 << 6
	// MULTIBOOT_INFO_MODS and MULTIBOOT_INFO_MMAP_ADDR are the flags bits
	// for the module list and the memory map; MULTIBOOT_TAG_TYPE_MODULE
	// is the Multiboot2 module tag (Multiboot2 spec 3.6.6).
	MULTIBOOT_INFO_CMDLINE    = 1 << 2
	MULTIBOOT_INFO_MODS       = 1 << 3
	MULTIBOOT_INFO_MMAP_ADDR  = 1 << 6
	MULTIBOOT_TAG_TYPE_MODULE = 3

	// MAX_CMDLINE is the longest command line or module string kept
	// (kernel/bootinfo's limit).
	MAX_CMDLINE = 4096
	// MAX_BOOT_MODULES bounds the module lists cpuinit walks.
	MAX_BOOT_MODULES = 256
	// BOOT_STACKS_SIZE is kept free below the initial stack pointer for
	// the runtime's g0 stack: boot modules there cannot be protected.
	BOOT_STACKS_SIZE = 0x10000

	// PIC1_DATA and PIC2_DATA are the 8259A interrupt mask registers
	// (Intel 8259A datasheet, "Operation Command Word 1"): writing 0xff
	// masks all eight lines of the master and the slave.
	PIC1_DATA = 0x21
	PIC2_DATA = 0xa1

	// Page table entry bits (AMD APM Vol. 2, 5.4.1 "Field Definitions";
	// Intel SDM Vol. 3A, 4.5 Tables 4-15 to 4-19).
	PTE_P   = 1 << 0 // present
	PTE_RW  = 1 << 1 // writable
	PTE_PWT = 1 << 3 // write-through
	PTE_PCD = 1 << 4 // cache disable (with PWT: UC under the default PAT)
	PTE_PS  = 1 << 7 // 2 MiB page in a PD entry

	// CR0, CR4 and EFER bits (AMD APM Vol. 2, 3.1.1 "CR0 Register",
	// 3.1.3 "CR4 Register", 3.1.7 "Extended Feature Enable Register").
	CR0_PE   = 1 << 0
	CR0_PG   = 1 << 31
	CR4_PAE  = 1 << 5
	CR4_PGE  = 1 << 7
	MSR_EFER = 0xc0000080
	EFER_LME = 1 << 8

	// GDT descriptors (AMD APM Vol. 2, 4.8.1 "Code-Segment Descriptors",
	// 4.8.2 "Data-Segment Descriptors"): base 0, limit 4 GiB; code has
	// L=1, D=0 (64-bit), data is read/write.
	GDT_CODE64     = 0x00af9a000000ffff
	GDT_DATA       = 0x00cf92000000ffff
	GDT_LIMIT      = 3*8 - 1
	SEL_CODE64     = 0x08
	SEL_DATA       = 0x10
	ISA_DEBUG_EXIT = 0xf4 // QEMU isa-debug-exit port, see power.go
)

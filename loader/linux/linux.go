// Package linux loads a Linux x86-64 kernel (a bzImage) into guest memory
// and prepares the boot vCPU to enter it through the 64-bit boot protocol
// (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol").
//
// Load parses and checks the setup header (Parse), places the
// protected-mode kernel at pref_address (16 MiB on current kernels) or, for
// a relocatable kernel that does not fit there, at the lowest higher
// address aligned to kernel_alignment with init_size bytes of usable RAM
// below 4 GiB — never below 1 MiB, which holds Keel's boot structures. It
// then fills in the zero page (struct boot_params: the setup header copied
// from the image, the E820 map, the command line and initrd pointers, the
// ACPI RSDP address), writes identity-mapped page tables for the first
// 4 GiB and a GDT with __BOOT_CS and __BOOT_DS, and returns the vCPU state
// of the 64-bit entry: long mode, RIP at the kernel plus 0x200, RSI at the
// zero page, interrupts off.
//
// Guest-physical memory map of a Linux boot (all below 1 MiB fixed):
//
//	0x1000           GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18)
//	0x6000-0x6fff    boot stack (RSP = 0x7000)
//	0x7000-0x7fff    zero page (struct boot_params)
//	0x9000           PML4
//	0xa000           PDPT
//	0xb000-0xefff    4 page directories, 2 MiB pages, identity map of 0-4 GiB
//	0x20000          command line (at most CMDLINE_MAX bytes with its NUL)
//	0x9fc00-0xfffff  not RAM in the E820 map (EBDA, VGA hole, BIOS)
//	pref_address     kernel (16 MiB for current kernels), init_size bytes
//	high             initrd: page aligned, as high as possible below
//	                 min(initrd_addr_max + 1, 4 GiB) in usable RAM
//
// type_of_loader is 0xFF: Keel has no boot loader ID assigned in boot.rst.
// The initrd, command line and zero page always lie below 4 GiB, even for
// kernels with XLF_CAN_BE_LOADED_ABOVE_4G, so the ext_* fields stay zero.
// No setup_data list is passed.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package linux

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader"
)

// struct boot_params, the zero page: fields other than the setup header
// (Documentation/arch/x86/zero-page.rst; arch/x86/include/uapi/asm/
// bootparam.h).
const (
	// BOOT_PARAMS_SIZE is the size of struct boot_params: one page.
	BOOT_PARAMS_SIZE = 0x1000
	// BP_ACPI_RSDP_ADDR is acpi_rsdp_addr, u64: the physical address of
	// the ACPI RSDP (read by Linux 5.0 and later).
	BP_ACPI_RSDP_ADDR = 0x070
	// BP_EXT_RAMDISK_IMAGE, BP_EXT_RAMDISK_SIZE and BP_EXT_CMD_LINE_PTR
	// are the upper 32 bits of ramdisk_image, ramdisk_size and
	// cmd_line_ptr, u32 each.
	BP_EXT_RAMDISK_IMAGE = 0x0C0
	BP_EXT_RAMDISK_SIZE  = 0x0C4
	BP_EXT_CMD_LINE_PTR  = 0x0C8
	// BP_E820_ENTRIES is e820_entries, u8: how many e820_table entries
	// are valid.
	BP_E820_ENTRIES = 0x1E8
	// BP_SENTINEL is sentinel, u8: nonzero tells the kernel the loader
	// copied stale data into boot_params. Keel leaves it zero.
	BP_SENTINEL = 0x1EF
	// BP_HDR is hdr, the copy of the setup header.
	BP_HDR = 0x1F1
	// BP_EDD_MBR_SIG_BUFFER is edd_mbr_sig_buffer, the first field after
	// the room for hdr: the setup header copy stops here.
	BP_EDD_MBR_SIG_BUFFER = 0x290
	// BP_E820_TABLE is e820_table: E820_MAX_ENTRIES_ZEROPAGE entries of
	// struct boot_e820_entry {u64 addr; u64 size; u32 type}.
	BP_E820_TABLE = 0x2D0
	// E820_MAX_ENTRIES_ZEROPAGE is the number of e820_table entries.
	E820_MAX_ENTRIES_ZEROPAGE = 128
	// E820_ENTRY_SIZE is sizeof(struct boot_e820_entry).
	E820_ENTRY_SIZE = 20
)

// Segment selectors the 64-bit boot protocol requires (boot.rst: "A GDT
// must be loaded with the descriptors for selectors __BOOT_CS(0x10) and
// __BOOT_DS(0x18); both descriptors must be 4G flat segment").
const (
	BOOT_CS = 0x10
	BOOT_DS = 0x18
)

// Where Keel puts the boot structures in guest-physical memory. All lie in
// conventional memory below EBDA_START.
const (
	// BOOT_GDT_ADDR is the GDT.
	BOOT_GDT_ADDR = 0x1000
	// BOOT_STACK_ADDR is a page for the entry stack; RSP starts at its
	// top. The protocol needs none, but a valid one costs nothing.
	BOOT_STACK_ADDR = 0x6000
	BOOT_STACK_SIZE = 0x1000
	// ZERO_PAGE_ADDR is struct boot_params, passed in RSI.
	ZERO_PAGE_ADDR = 0x7000
	// BOOT_PML4_ADDR, BOOT_PDPT_ADDR and BOOT_PD_ADDR are the identity
	// map: one PML4, one PDPT and BOOT_PD_COUNT page directories of
	// 2 MiB pages.
	BOOT_PML4_ADDR = 0x9000
	BOOT_PDPT_ADDR = 0xA000
	BOOT_PD_ADDR   = 0xB000
	BOOT_PD_COUNT  = 4
	// BOOT_PAGE_TABLES_SIZE is the size of the three, which lie back to
	// back.
	BOOT_PAGE_TABLES_SIZE = BOOT_PD_ADDR + BOOT_PD_COUNT*addr.PAGE_SIZE_4K - BOOT_PML4_ADDR
	// CMDLINE_ADDR is the command line.
	CMDLINE_ADDR = 0x20000
	// CMDLINE_MAX is the most bytes the command line may take, with its
	// NUL; the kernel's cmdline_size may lower it.
	CMDLINE_MAX = 0x10000
	// KERNEL_ADDR_DEFAULT is where the kernel goes when pref_address is
	// 0: 16 MiB, the default CONFIG_PHYSICAL_START.
	KERNEL_ADDR_DEFAULT = 0x1000000
	// IDENTITY_MAP_SIZE is how much the boot page tables map: 4 GiB.
	// The kernel, zero page, command line and initrd all lie below it.
	IDENTITY_MAP_SIZE = BOOT_PD_COUNT * addr.PAGE_SIZE_1G
)

// Paging structure entry bits (Intel SDM Vol. 3A, §4.5.4 "Linear-Address
// Translation with 4-Level Paging", Tables 4-15 to 4-18; AMD64 APM Vol. 2,
// §5.4.1 "Field Definitions").
const (
	PTE_P  = 1 << 0 // present
	PTE_RW = 1 << 1 // writable
	PTE_PS = 1 << 7 // page size: a PDE maps a 2 MiB page
)

// Config is what to boot.
type Config struct {
	// Kernel is the bzImage.
	Kernel []byte
	// Initrd is the initial ramdisk; empty for none.
	Initrd []byte
	// Cmdline is the kernel command line, without a NUL.
	Cmdline string
	// Reserved are ranges the E820 map marks as not RAM (ACPI tables,
	// MMIO); Keel places nothing in them.
	Reserved []loader.MapEntry
	// ACPIRSDP is the guest-physical address of the ACPI RSDP for
	// boot_params.acpi_rsdp_addr, or 0 for none (the kernel then scans
	// the EBDA and 0xE0000-0xFFFFF).
	ACPIRSDP addr.GPA
}

// Load loads cfg into m and returns the boot vCPU's state and what was
// placed where. Nothing is written unless the whole plan fits; an error
// says what is wrong and what was expected.
func Load(m loader.Memory, cfg Config) (*loader.Result, error) {
	h, err := Parse(cfg.Kernel)
	if err != nil {
		return nil, err
	}
	limit := min(uint64(h.CmdlineSize), CMDLINE_MAX-1)
	if i := bytes.IndexByte([]byte(cfg.Cmdline), 0); i >= 0 {
		return nil, fmt.Errorf("linux: the command line has a NUL byte at offset %d: it must be plain text", i)
	}
	if uint64(len(cfg.Cmdline)) > limit {
		return nil, fmt.Errorf("linux: the command line is %d bytes, the kernel accepts at most %d (cmdline_size %d, Keel's limit %d): shorten it", len(cfg.Cmdline), limit, h.CmdlineSize, CMDLINE_MAX-1)
	}

	ram, err := loader.RAM(m)
	if err != nil {
		return nil, fmt.Errorf("linux: %w", err)
	}
	memMap, err := loader.BuildMap(ram, cfg.Reserved)
	if err != nil {
		return nil, fmt.Errorf("linux: memory map: %w", err)
	}
	sp := loader.NewSpace(memMap)

	gdt := loader.GDT(loader.CodeSegment64(BOOT_CS), loader.DataSegment(BOOT_DS))
	for _, p := range []struct {
		name       string
		base, size uint64
	}{
		{"GDT", BOOT_GDT_ADDR, uint64(len(gdt))},
		{"boot stack", BOOT_STACK_ADDR, BOOT_STACK_SIZE},
		{"zero page", ZERO_PAGE_ADDR, BOOT_PARAMS_SIZE},
		{"page tables", BOOT_PML4_ADDR, BOOT_PAGE_TABLES_SIZE},
		{"cmdline", CMDLINE_ADDR, uint64(len(cfg.Cmdline)) + 1},
	} {
		if err := sp.Take(p.name, addr.Range{Base: p.base, Size: p.size}); err != nil {
			return nil, fmt.Errorf("linux: %w: Keel's boot structures need usable RAM below %#x", err, loader.EBDA_START)
		}
	}

	load, err := placeKernel(sp, h)
	if err != nil {
		return nil, err
	}

	var initrd uint64
	if n := uint64(len(cfg.Initrd)); n > 0 {
		if initrd, err = placeInitrd(sp, h, n); err != nil {
			return nil, err
		}
	}

	// Everything fits: build and write.
	zp := zeroPage(cfg, h, memMap, initrd)
	writes := []struct {
		gpa uint64
		p   []byte
	}{
		{BOOT_GDT_ADDR, gdt},
		{ZERO_PAGE_ADDR, zp},
		{BOOT_PML4_ADDR, pageTables()},
		{CMDLINE_ADDR, append([]byte(cfg.Cmdline), 0)},
		{load, cfg.Kernel[h.KernelOffset:]},
		{initrd, cfg.Initrd},
	}
	for _, w := range writes {
		if err := sp.Write(m, addr.GPA(w.gpa), w.p); err != nil {
			return nil, fmt.Errorf("linux: %w", err)
		}
	}

	r := &loader.Result{Placed: sp.Placed(), Map: memMap}
	r.Regs, r.Sregs = entryState(load, len(gdt))
	return r, nil
}

// placeKernel chooses the kernel's load address and takes the init_size
// bytes (at least the image's) it needs from there.
func placeKernel(sp *loader.Space, h *Header) (uint64, error) {
	need, _ := addr.AlignUp(max(uint64(h.InitSize), uint64(h.KernelSize)), addr.PAGE_SIZE_4K)
	base := h.PrefAddress
	if base == 0 {
		base = KERNEL_ADDR_DEFAULT
	}
	if !h.Relocatable {
		if base < loader.HIGH_MEMORY {
			return 0, fmt.Errorf("linux: the kernel is not relocatable and wants pref_address %#x, below 1 MiB, where Keel keeps the boot structures: the image is corrupt", base)
		}
		if !addr.IsAligned(base, addr.PAGE_SIZE_4K) {
			return 0, fmt.Errorf("linux: the kernel is not relocatable and wants pref_address %#x, which is not 4 KiB aligned: the image is corrupt", base)
		}
		if base >= IDENTITY_MAP_SIZE || need > IDENTITY_MAP_SIZE-base {
			return 0, fmt.Errorf("linux: the kernel is not relocatable and needs [%#x, %#x+%#x), beyond the 4 GiB the boot page tables map", base, base, need)
		}
		if err := sp.Take("kernel", addr.Range{Base: base, Size: need}); err != nil {
			return 0, fmt.Errorf("linux: the kernel is not relocatable and must load at pref_address %#x with init_size %#x: %w: give the VM more memory", base, h.InitSize, err)
		}
		return base, nil
	}
	// Not below 1 MiB, Keel's: the decompressor would move itself to
	// pref_address (LOAD_PHYSICAL_ADDR) anyway.
	base = max(base, loader.HIGH_MEMORY)
	align := uint64(h.KernelAlignment)
	load, ok := sp.Lowest(need, align, base, IDENTITY_MAP_SIZE)
	if !ok {
		return 0, fmt.Errorf("linux: the kernel needs %#x bytes (init_size %#x) of usable RAM at or above %#x, aligned to %#x (kernel_alignment), below 4 GiB; the largest free stretch below 4 GiB is %#x bytes: give the VM more memory",
			need, h.InitSize, base, align, sp.LargestBelow(IDENTITY_MAP_SIZE))
	}
	if err := sp.Take("kernel", addr.Range{Base: load, Size: need}); err != nil {
		return 0, fmt.Errorf("linux: %w", err)
	}
	return load, nil
}

// placeInitrd puts an n-byte initrd, page aligned, as high as it can go
// below initrd_addr_max and 4 GiB.
func placeInitrd(sp *loader.Space, h *Header, n uint64) (uint64, error) {
	limit := min(uint64(h.InitrdAddrMax)+1, 1<<32)
	size, ok := addr.AlignUp(n, addr.PAGE_SIZE_4K)
	var at uint64
	if ok {
		at, ok = sp.Highest(size, addr.PAGE_SIZE_4K, loader.HIGH_MEMORY, limit)
	}
	if !ok {
		return 0, fmt.Errorf("linux: the initrd is %d bytes, which does not fit in usable RAM between 1 MiB and %#x (initrd_addr_max %#x, and 4 GiB); the largest free stretch below %#x is %d bytes: use a smaller initrd or give the VM more memory",
			n, limit, h.InitrdAddrMax, limit, sp.LargestBelow(limit))
	}
	if err := sp.Take("initrd", addr.Range{Base: at, Size: size}); err != nil {
		return 0, fmt.Errorf("linux: %w", err)
	}
	return at, nil
}

// zeroPage builds struct boot_params: zeroed, the setup header copied from
// the image, and the fields the loader fills in.
func zeroPage(cfg Config, h *Header, memMap []loader.MapEntry, initrd uint64) []byte {
	le := binary.LittleEndian
	zp := make([]byte, BOOT_PARAMS_SIZE)
	end := min(h.HeaderEnd, BP_EDD_MBR_SIG_BUFFER)
	copy(zp[BP_HDR:end], cfg.Kernel[BP_HDR:end])

	zp[HDR_TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED
	zp[HDR_EXT_LOADER_VER] = 0
	zp[HDR_EXT_LOADER_TYPE] = 0
	le.PutUint32(zp[HDR_CMD_LINE_PTR:], CMDLINE_ADDR)
	le.PutUint32(zp[HDR_RAMDISK_IMAGE:], uint32(initrd))
	le.PutUint32(zp[HDR_RAMDISK_SIZE:], uint32(len(cfg.Initrd)))
	le.PutUint32(zp[HDR_HARDWARE_SUBARCH:], 0) // X86_SUBARCH_PC
	le.PutUint64(zp[HDR_HARDWARE_SUBARCH_DATA:], 0)
	le.PutUint64(zp[HDR_SETUP_DATA:], 0)

	le.PutUint64(zp[BP_ACPI_RSDP_ADDR:], uint64(cfg.ACPIRSDP))
	// The initrd and command line lie below 4 GiB: the ext_* fields,
	// which hold their upper halves, stay zero.

	zp[BP_E820_ENTRIES] = uint8(len(memMap)) // BuildMap allows at most 128
	for i, e := range memMap {
		p := zp[BP_E820_TABLE+i*E820_ENTRY_SIZE:]
		le.PutUint64(p[0:], e.Range.Base)
		le.PutUint64(p[8:], e.Range.Size)
		le.PutUint32(p[16:], uint32(e.Type))
	}
	return zp
}

// pageTables returns the PML4, the PDPT and the page directories, laid out
// from BOOT_PML4_ADDR as the constants place them, identity-mapping
// [0, IDENTITY_MAP_SIZE) with 2 MiB pages.
func pageTables() []byte {
	le := binary.LittleEndian
	b := make([]byte, BOOT_PAGE_TABLES_SIZE)
	le.PutUint64(b[0:], BOOT_PDPT_ADDR|PTE_P|PTE_RW)
	pdpt := b[BOOT_PDPT_ADDR-BOOT_PML4_ADDR:]
	for i := range BOOT_PD_COUNT {
		le.PutUint64(pdpt[8*i:], uint64(BOOT_PD_ADDR+i*addr.PAGE_SIZE_4K)|PTE_P|PTE_RW)
	}
	pd := b[BOOT_PD_ADDR-BOOT_PML4_ADDR:]
	for i := range BOOT_PD_COUNT * 512 {
		le.PutUint64(pd[8*i:], uint64(i)*addr.PAGE_SIZE_2M|PTE_P|PTE_RW|PTE_PS)
	}
	return b
}

// entryState is the vCPU state of the 64-bit entry (boot.rst, "64-bit Boot
// Protocol"): 64-bit mode with paging on, CS = __BOOT_CS, DS = ES = SS =
// __BOOT_DS, interrupts disabled, RSI = the zero page.
func entryState(load uint64, gdtLen int) (arch.Regs, arch.Sregs) {
	_, s := arch.ResetState(true)
	data := loader.DataSegment(BOOT_DS)
	s.CS = loader.CodeSegment64(BOOT_CS)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.GDTR = arch.DescriptorTable{Base: BOOT_GDT_ADDR, Limit: uint16(gdtLen - 1)}
	s.IDTR = arch.DescriptorTable{} // any interrupt before the kernel's IDT shuts the VM down
	s.CR0 = arch.CR0_PE | arch.CR0_ET | arch.CR0_PG
	s.CR3 = BOOT_PML4_ADDR
	s.CR4 = arch.CR4_PAE
	s.EFER = arch.EFER_LME | arch.EFER_LMA

	r := arch.Regs{RIP: load + STARTUP_64_OFFSET, RFLAGS: arch.RFLAGS_FIXED}
	r.GPR[arch.RSI] = ZERO_PAGE_ADDR
	r.GPR[arch.RSP] = BOOT_STACK_ADDR + BOOT_STACK_SIZE
	return r, s
}

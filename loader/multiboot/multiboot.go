// Package multiboot loads a Multiboot v1 kernel (Multiboot Specification
// 0.6.96) into guest memory and prepares the boot vCPU to enter it.
//
// Load finds the header in the first 8 KiB of the image (FindHeader), loads
// the kernel — by the a.out kludge address fields when header flag 16 is
// set, otherwise the PT_LOAD segments of an ELF32 or ELF64 executable at
// their physical addresses, bss zeroed — puts the boot modules page aligned
// above the kernel, builds the multiboot_info structure with the memory
// map, command line, modules and boot loader name "keel", and returns the
// machine state of §3.2: 32-bit protected mode with flat 4 GiB code and
// data segments, paging off, interrupts off, EAX = 0x2BADB002, EBX = the
// multiboot_info address.
//
// Header flags: bit 0 (page-aligned modules) and bit 1 (memory
// information) are always honoured — modules are page aligned and the
// memory fields and map are always passed. Bit 2 (video mode) is refused:
// Keel's VMs have no display to set a mode on or describe. Any other
// requirement bit (3-15) is refused as §3.1.2 asks; optional bits other
// than 16 are ignored.
//
// Placement: the kernel goes where its headers say, which must be usable
// RAM. A GDT matching the segment registers (null, code 0x08, data 0x10)
// and the multiboot_info block (the structure, then the memory map, the
// module list and the strings) go at the lowest free addresses from
// MB_LOW_START — 0x1000 and 0x2000 for a kernel at 1 MiB — and each module
// at the lowest free page-aligned address above the kernel's end. All
// addresses stay below 4 GiB, as the 32-bit fields require.
//
// Not provided: boot_device, a.out symbols or ELF section headers (info
// bits 4 and 5), drives, the config table, APM and VBE/framebuffer
// information. A20 needs no action: a Keel VM has no A20 gate.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package multiboot

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader"
)

// Machine state and boot information (Multiboot Specification 0.6.96, §3.2
// "Machine state" and §3.3 "Boot information format"; names from its
// multiboot.h).
const (
	// MULTIBOOT_BOOTLOADER_MAGIC is EAX at entry.
	MULTIBOOT_BOOTLOADER_MAGIC = 0x2BADB002

	// multiboot_info.flags bits: which fields are valid.
	MULTIBOOT_INFO_MEMORY           = 1 << 0 // mem_lower, mem_upper
	MULTIBOOT_INFO_BOOTDEV          = 1 << 1 // boot_device
	MULTIBOOT_INFO_CMDLINE          = 1 << 2 // cmdline
	MULTIBOOT_INFO_MODS             = 1 << 3 // mods_count, mods_addr
	MULTIBOOT_INFO_AOUT_SYMS        = 1 << 4 // a.out symbol table
	MULTIBOOT_INFO_ELF_SHDR         = 1 << 5 // ELF section headers
	MULTIBOOT_INFO_MEM_MAP          = 1 << 6 // mmap_length, mmap_addr
	MULTIBOOT_INFO_DRIVE_INFO       = 1 << 7 // drives_length, drives_addr
	MULTIBOOT_INFO_CONFIG_TABLE     = 1 << 8 // config_table
	MULTIBOOT_INFO_BOOT_LOADER_NAME = 1 << 9 // boot_loader_name

	// Offsets of the multiboot_info fields, all u32.
	MULTIBOOT_OFF_FLAGS            = 0
	MULTIBOOT_OFF_MEM_LOWER        = 4  // KiB of RAM from 0, at most 640
	MULTIBOOT_OFF_MEM_UPPER        = 8  // KiB of RAM from 1 MiB to the first hole
	MULTIBOOT_OFF_BOOT_DEVICE      = 12 // not provided
	MULTIBOOT_OFF_CMDLINE          = 16 // address of a C string
	MULTIBOOT_OFF_MODS_COUNT       = 20
	MULTIBOOT_OFF_MODS_ADDR        = 24 // address of the module list
	MULTIBOOT_OFF_MMAP_LENGTH      = 44 // bytes of memory map
	MULTIBOOT_OFF_MMAP_ADDR        = 48 // address of the first entry's size field
	MULTIBOOT_OFF_BOOT_LOADER_NAME = 64 // address of a C string
	// MULTIBOOT_INFO_SIZE is the size of multiboot_info in 0.6.96, up
	// to and including vbe_interface_len.
	MULTIBOOT_INFO_SIZE = 88

	// MULTIBOOT_MOD_LIST_SIZE is sizeof(struct multiboot_mod_list):
	// u32 mod_start, u32 mod_end (exclusive), u32 string, u32 reserved.
	MULTIBOOT_MOD_LIST_SIZE = 16
	// MULTIBOOT_MMAP_ENTRY_SIZE is the size field of a memory map entry
	// (which does not count itself): u64 base_addr, u64 length, u32 type.
	MULTIBOOT_MMAP_ENTRY_SIZE = 20
	// mmapStride is an entry with its size field.
	mmapStride = 4 + MULTIBOOT_MMAP_ENTRY_SIZE

	// MODULE_ALIGN is the alignment of boot modules.
	MODULE_ALIGN = addr.PAGE_SIZE_4K
)

// BOOT_LOADER_NAME is multiboot_info.boot_loader_name.
const BOOT_LOADER_NAME = "keel"

// Segment selectors of the GDT Keel writes. The specification leaves the
// selector values undefined; these index real descriptors so that a kernel
// reloading a segment register before its own lgdt still works.
const (
	MB_CS = 0x08
	MB_DS = 0x10
)

// Where the boot information goes and limits on its size.
const (
	// MB_LOW_START is the lowest address the GDT and multiboot_info
	// may take: page 0 (the real-mode IVT and BDA) stays untouched.
	MB_LOW_START = 0x1000
	// MB_ADDR_LIMIT is 4 GiB: every address in multiboot_info is 32
	// bits.
	MB_ADDR_LIMIT = 1 << 32
	// MAX_MODULES bounds the boot modules.
	MAX_MODULES = 256
	// MAX_STRING bounds the command line and each module string,
	// without the NUL.
	MAX_STRING = 0x10000
)

// Module is a boot module.
type Module struct {
	// Data is the module's contents.
	Data []byte
	// Cmdline is the module's string: typically a name or a command
	// line. It must not contain a NUL.
	Cmdline string
}

// Config is what to boot.
type Config struct {
	// Kernel is the Multiboot kernel image.
	Kernel []byte
	// Cmdline is the kernel command line, without a NUL.
	Cmdline string
	// Modules are the boot modules, in order.
	Modules []Module
	// Reserved are ranges the memory map marks as not RAM (ACPI tables,
	// MMIO); Keel places nothing in them.
	Reserved []loader.MapEntry
}

// Load loads cfg into m and returns the boot vCPU's state and what was
// placed where. Nothing is written unless the whole plan fits; an error
// says what is wrong and what was expected.
func Load(m loader.Memory, cfg Config) (*loader.Result, error) {
	h, err := FindHeader(cfg.Kernel)
	if err != nil {
		return nil, err
	}
	k, err := layoutOf(cfg.Kernel, h)
	if err != nil {
		return nil, err
	}
	if err := checkStrings(cfg); err != nil {
		return nil, err
	}

	ram, err := loader.RAM(m)
	if err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	memMap, err := loader.BuildMap(ram, cfg.Reserved)
	if err != nil {
		return nil, fmt.Errorf("multiboot: memory map: %w", err)
	}
	sp := loader.NewSpace(memMap)

	var kernelEnd uint64
	for _, s := range k.segs {
		if err := sp.Take(s.name, addr.Range{Base: s.paddr, Size: s.memsz}); err != nil {
			return nil, fmt.Errorf("multiboot: the kernel's %w", err)
		}
		kernelEnd = max(kernelEnd, s.paddr+s.memsz)
	}

	gdt := loader.GDT(loader.CodeSegment32(MB_CS), loader.DataSegment(MB_DS))
	gdtAddr, err := takeLow(sp, "GDT", uint64(len(gdt)), 16)
	if err != nil {
		return nil, err
	}
	info := newInfo(cfg, memMap)
	infoAddr, err := takeLow(sp, "boot info", uint64(len(info.b)), addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, err
	}

	mods := make([]uint64, len(cfg.Modules))
	for i, mod := range cfg.Modules {
		size, _ := addr.AlignUp(max(uint64(len(mod.Data)), 1), MODULE_ALIGN)
		// Below 4 GiB - 1, not 4 GiB: mod_end, the address after the
		// module, must fit in 32 bits.
		at, ok := sp.Lowest(size, MODULE_ALIGN, kernelEnd, MB_ADDR_LIMIT-1)
		if !ok {
			return nil, fmt.Errorf("multiboot: module %d (%q) is %d bytes, which do not fit in usable RAM between the kernel's end %#x and 4 GiB (largest free stretch below 4 GiB: %d bytes): give the VM more memory",
				i, mod.Cmdline, len(mod.Data), kernelEnd, sp.LargestBelow(MB_ADDR_LIMIT))
		}
		if err := sp.Take(fmt.Sprintf("module %d", i), addr.Range{Base: at, Size: size}); err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
		mods[i] = at
	}
	info.finish(uint32(infoAddr), cfg, mods)

	// Everything fits: write.
	for _, s := range k.segs {
		if err := sp.Write(m, addr.GPA(s.paddr), cfg.Kernel[s.off:s.off+s.filesz]); err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
		if err := sp.Zero(m, addr.Range{Base: s.paddr + s.filesz, Size: s.memsz - s.filesz}); err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
	}
	if err := sp.Write(m, addr.GPA(gdtAddr), gdt); err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	if err := sp.Write(m, addr.GPA(infoAddr), info.b); err != nil {
		return nil, fmt.Errorf("multiboot: %w", err)
	}
	for i, mod := range cfg.Modules {
		if err := sp.Write(m, addr.GPA(mods[i]), mod.Data); err != nil {
			return nil, fmt.Errorf("multiboot: %w", err)
		}
	}

	r := &loader.Result{Placed: sp.Placed(), Map: memMap}
	r.Regs, r.Sregs = entryState(k.entry, uint32(infoAddr), gdtAddr, len(gdt))
	return r, nil
}

// checkStrings refuses strings that cannot be passed as C strings or are
// too long, and too many modules.
func checkStrings(cfg Config) error {
	if len(cfg.Modules) > MAX_MODULES {
		return fmt.Errorf("multiboot: %d boot modules, at most %d", len(cfg.Modules), MAX_MODULES)
	}
	check := func(what, s string) error {
		if i := bytes.IndexByte([]byte(s), 0); i >= 0 {
			return fmt.Errorf("multiboot: the %s has a NUL byte at offset %d: it must be plain text", what, i)
		}
		if len(s) > MAX_STRING {
			return fmt.Errorf("multiboot: the %s is %d bytes, at most %d: shorten it", what, len(s), MAX_STRING)
		}
		return nil
	}
	if err := check("command line", cfg.Cmdline); err != nil {
		return err
	}
	for i, mod := range cfg.Modules {
		if err := check(fmt.Sprintf("string of module %d", i), mod.Cmdline); err != nil {
			return err
		}
	}
	return nil
}

// takeLow places size bytes at the lowest free address from MB_LOW_START
// below 4 GiB.
func takeLow(sp *loader.Space, name string, size, align uint64) (uint64, error) {
	at, ok := sp.Lowest(size, align, MB_LOW_START, MB_ADDR_LIMIT)
	if !ok {
		return 0, fmt.Errorf("multiboot: no %d bytes of usable RAM below 4 GiB left for the %s", size, name)
	}
	if err := sp.Take(name, addr.Range{Base: at, Size: size}); err != nil {
		return 0, fmt.Errorf("multiboot: %w", err)
	}
	return at, nil
}

// info is the multiboot_info block being built: the structure, the memory
// map, the module list, then the strings. Offsets within it are fixed
// before its address is known; finish turns them into addresses.
type info struct {
	b                        []byte
	mmapOff, modsOff, strOff int
}

// newInfo sizes the block and fills in what does not depend on its
// address.
func newInfo(cfg Config, memMap []loader.MapEntry) *info {
	in := &info{mmapOff: MULTIBOOT_INFO_SIZE}
	in.modsOff = in.mmapOff + mmapStride*len(memMap)
	in.strOff = in.modsOff + MULTIBOOT_MOD_LIST_SIZE*len(cfg.Modules)
	n := in.strOff + len(cfg.Cmdline) + 1 + len(BOOT_LOADER_NAME) + 1
	for _, mod := range cfg.Modules {
		n += len(mod.Cmdline) + 1
	}
	in.b = make([]byte, n)

	le := binary.LittleEndian
	var lower, upper uint64
	for _, e := range memMap {
		if e.Type != loader.E820_TYPE_RAM {
			continue
		}
		end := e.Range.Base + e.Range.Size
		if e.Range.Base == 0 {
			lower = min(end, loader.LOW_RAM_END) >> 10
		}
		if e.Range.Base <= loader.HIGH_MEMORY && end > loader.HIGH_MEMORY {
			upper = min((end-loader.HIGH_MEMORY)>>10, 0xFFFFFFFF)
		}
	}
	le.PutUint32(in.b[MULTIBOOT_OFF_FLAGS:], MULTIBOOT_INFO_MEMORY|MULTIBOOT_INFO_CMDLINE|MULTIBOOT_INFO_MODS|MULTIBOOT_INFO_MEM_MAP|MULTIBOOT_INFO_BOOT_LOADER_NAME)
	le.PutUint32(in.b[MULTIBOOT_OFF_MEM_LOWER:], uint32(lower))
	le.PutUint32(in.b[MULTIBOOT_OFF_MEM_UPPER:], uint32(upper))
	le.PutUint32(in.b[MULTIBOOT_OFF_MODS_COUNT:], uint32(len(cfg.Modules)))
	le.PutUint32(in.b[MULTIBOOT_OFF_MMAP_LENGTH:], uint32(mmapStride*len(memMap)))
	for i, e := range memMap {
		p := in.b[in.mmapOff+mmapStride*i:]
		le.PutUint32(p[0:], MULTIBOOT_MMAP_ENTRY_SIZE)
		le.PutUint64(p[4:], e.Range.Base)
		le.PutUint64(p[12:], e.Range.Size)
		le.PutUint32(p[20:], uint32(e.Type))
	}
	return in
}

// finish writes the strings and every pointer, now that the block lies at
// base and module i at mods[i].
func (in *info) finish(base uint32, cfg Config, mods []uint64) {
	le := binary.LittleEndian
	at := in.strOff
	str := func(s string) uint32 {
		a := base + uint32(at)
		at += copy(in.b[at:], s) + 1 // the block is zeroed: the NUL is there
		return a
	}
	le.PutUint32(in.b[MULTIBOOT_OFF_CMDLINE:], str(cfg.Cmdline))
	le.PutUint32(in.b[MULTIBOOT_OFF_BOOT_LOADER_NAME:], str(BOOT_LOADER_NAME))
	le.PutUint32(in.b[MULTIBOOT_OFF_MMAP_ADDR:], base+uint32(in.mmapOff))
	le.PutUint32(in.b[MULTIBOOT_OFF_MODS_ADDR:], base+uint32(in.modsOff))
	for i, mod := range cfg.Modules {
		p := in.b[in.modsOff+MULTIBOOT_MOD_LIST_SIZE*i:]
		le.PutUint32(p[0:], uint32(mods[i]))
		le.PutUint32(p[4:], uint32(mods[i])+uint32(len(mod.Data)))
		le.PutUint32(p[8:], str(mod.Cmdline))
	}
}

// entryState is the machine state of §3.2: flat 32-bit protected mode,
// paging off, interrupts off, EAX = the boot loader magic, EBX = the
// multiboot_info address.
func entryState(entry, infoAddr uint32, gdtAddr uint64, gdtLen int) (arch.Regs, arch.Sregs) {
	_, s := arch.ResetState(true)
	data := loader.DataSegment(MB_DS)
	s.CS = loader.CodeSegment32(MB_CS)
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.GDTR = arch.DescriptorTable{Base: gdtAddr, Limit: uint16(gdtLen - 1)}
	s.IDTR = arch.DescriptorTable{} // any interrupt before the kernel's IDT shuts the VM down
	s.CR0 = arch.CR0_PE | arch.CR0_ET
	s.CR3, s.CR4, s.EFER = 0, 0, 0

	r := arch.Regs{RIP: uint64(entry), RFLAGS: arch.RFLAGS_FIXED}
	r.GPR[arch.RAX] = MULTIBOOT_BOOTLOADER_MAGIC
	r.GPR[arch.RBX] = uint64(infoAddr)
	return r, s
}

//go:build tamago

// cpuinit: from the loader's 32-bit protected mode to the Go runtime in long
// mode. The layout constants (const_*) come from cpuinit.go, pvh layout and
// UART registers from uart.go, via go_asm.h.
//
// Everything up to the far return runs in 32-bit protected mode (or, after
// CR0.PG, compatibility mode) but is assembled by the amd64 assembler. Only
// instructions that decode the same in both modes are used: 32-bit
// operations on AX..DI without REX prefixes, register-indirect memory
// operands with fixed low addresses (never sym(SB), which amd64 encodes
// RIP-relative), and relative CALL/JMP. `PUSHQ $imm`/`PUSHQ AX`/`POPQ AX`
// encode as 6A/50/58, which push and pop 32 bits in 32-bit mode.

#include "go_asm.h"
#include "textflag.h"

// PUTC prints one character on COM1 from 32-bit code (clobbers AX, CX, DX).
#define PUTC(c) MOVB $(c), AL; CALL ·putc32<>(SB)

// SHADOW(r) points r into the low shadow when it addresses
// [LOW_SHADOW_START, LOW_SHADOW_END) (64-bit code, Multiboot only).
#define SHADOW(r) \
	CMPQ	r, $const_LOW_SHADOW_START; \
	JB	4(PC); \
	CMPQ	r, $const_LOW_SHADOW_END; \
	JAE	2(PC); \
	ADDQ	$(const_LOW_SHADOW-const_LOW_SHADOW_START), r

// PROTECT records loader data at [AX, DX) (64-bit code): if it overlaps
// the heap's range [R8, R9), R10 = max(R10, DX). An empty or inverted
// range is ignored. The n(PC) offsets count instructions: all jumps land
// after the MOVQ.
#define PROTECT \
	CMPQ	DX, AX; \
	JBE	8(PC); \
	CMPQ	DX, R8; \
	JBE	6(PC); \
	CMPQ	AX, R9; \
	JAE	4(PC); \
	CMPQ	DX, R10; \
	JBE	2(PC); \
	MOVQ	DX, R10

// TEXT cpuinit(SB): no Go prototype; reached by JMP from runtime/goos.CPUInit.
//
// In: 32-bit protected mode, paging off, flat CS/DS, interrupts state
// unknown, and one of: PVH (EBX = physical address of struct
// hvm_start_info), Multiboot2 (EAX = 0x36d76289, EBX = the information) or
// Multiboot (EAX = 0x2badb002, EBX = the information).
// Out: long mode, CS = 0x08, SS/DS/ES/FS/GS = 0x10, paging on with the
// identity map below, IDTR = IDT_BASE (empty), SSE enabled, interrupts
// disabled, SP = RamStart+RamSize-RamStackOffset; jumps to
// _rt0_tamago_start. Clobbers every general register.
TEXT cpuinit(SB),NOSPLIT|NOFRAME,$0
	CLI
	CLD
	MOVL	$(const_HANDOFF_BASE+const_HANDOFF_STACK_TOP), SP

	// Save the loader's registers in the handoff page.
	MOVL	$const_HANDOFF_BASE, DI
	MOVL	AX, const_HANDOFF_EAX(DI)
	MOVL	BX, const_HANDOFF_EBX(DI)
	MOVL	$0, const_HANDOFF_FLAGS(DI)
	MOVL	$0, const_HANDOFF_MEMMAP_COUNT(DI)

	// Keep a copy of page 0, which the page tables leave unmapped to
	// catch nil dereferences: loaders put boot information there (QEMU's
	// PVH memory map) and the Go side reads it from the copy.
	XORL	SI, SI
	MOVL	$const_PAGE0_SHADOW, DI
	MOVL	$(0x1000/4), CX
	REP;	MOVSL
	MOVL	$const_HANDOFF_BASE, DI

	// The TSC at Keel's first instruction, for the boot-time figures
	// (the TSC counts from 0 at machine reset under QEMU TCG).
	RDTSC
	MOVL	AX, const_HANDOFF_TSC(DI)
	MOVL	DX, const_HANDOFF_TSC+4(DI)

	// Mask every 8259A line (OCW1 = 0xff) so that a later STI cannot
	// deliver the PIT's IRQ0 (left running by the BIOS) before an IDT
	// handles it.
	MOVB	$0xff, AL
	MOVL	$const_PIC1_DATA, DX
	OUTB
	MOVL	$const_PIC2_DATA, DX
	OUTB

	// Which loader? Multiboot2 and Multiboot put their magic in EAX;
	// PVH puts its magic in the first word of the start info at EBX.
	// Another loader: skip the memory check.
	MOVL	$const_HANDOFF_BASE, DI
	MOVL	const_HANDOFF_EAX(DI), AX
	CMPL	AX, $const_MULTIBOOT2_BOOTLOADER_MAGIC
	JEQ	mb2
	CMPL	AX, $const_MULTIBOOT_BOOTLOADER_MAGIC
	JEQ	mb1
	CMPL	(BX), $const_XEN_HVM_START_MAGIC_VALUE
	JNE	paging

	// Copy hvm_start_info into the handoff page: the loader's copy
	// lives in low memory that nobody reserves (QEMU 7.2 puts it at
	// 0x21e0 and the memory map at 0x5a8, inside page 0).
	MOVL	BX, SI
	MOVL	$(const_HANDOFF_BASE+const_HANDOFF_START_INFO), DI
	MOVL	$const_HANDOFF_START_INFO_SIZE, CX
	REP;	MOVSB
	MOVL	$const_HANDOFF_BASE, DI
	ORL	$const_HANDOFF_FLAG_PVH, const_HANDOFF_FLAGS(DI)

	// Version 0 has no memory map; a map above 4 GiB is unreachable
	// here. Both skip the check.
	CMPL	const_START_INFO_VERSION(BX), $1
	JB	paging
	CMPL	const_START_INFO_MEMMAP_PADDR+4(BX), $0
	JNE	paging

	// Copy at most HANDOFF_MEMMAP_MAX entries.
	MOVL	const_START_INFO_MEMMAP_ENTRIES(BX), CX
	CMPL	CX, $const_HANDOFF_MEMMAP_MAX
	JBE	copy_memmap
	ORL	$const_HANDOFF_FLAG_MEMMAP_TRUNCATED, const_HANDOFF_FLAGS(DI)
	MOVL	$const_HANDOFF_MEMMAP_MAX, CX
copy_memmap:
	MOVL	CX, const_HANDOFF_MEMMAP_COUNT(DI)
	ORL	$const_HANDOFF_FLAG_MEMMAP, const_HANDOFF_FLAGS(DI)
	MOVL	const_START_INFO_MEMMAP_PADDR(BX), SI
	MOVL	$(const_HANDOFF_BASE+const_HANDOFF_MEMMAP), DI
	LEAL	(CX)(CX*2), CX		// CX = entries * 3
	SHLL	$3, CX			// CX = entries * 24 bytes
	REP;	MOVSB

	// Scan the copy: entries of MEMMAP_ENTRY_SIZE bytes.
	MOVL	$const_HANDOFF_BASE, DI
	MOVL	const_HANDOFF_MEMMAP_COUNT(DI), CX
	MOVL	$(const_HANDOFF_BASE+const_HANDOFF_MEMMAP), SI
	MOVL	$const_MEMMAP_ENTRY_SIZE, const_HANDOFF_SCAN_STRIDE(DI)
	LEAL	(CX)(CX*2), CX
	LEAL	(SI)(CX*8), AX
	MOVL	AX, const_HANDOFF_SCAN_END(DI)
	JMP	scan_entry

mb2:
	// Multiboot2 information (Multiboot2 spec 3.6): u32 total_size,
	// u32 reserved, then 8-byte aligned tags {u32 type, u32 size, ...}
	// up to an end tag (type 0). A malformed or map-less information
	// skips the check.
	MOVL	BX, SI
	MOVL	(SI), DX
	CMPL	DX, $16
	JB	paging
	ADDL	SI, DX			// DX = end of the information
	ADDL	$8, SI
mb2_tag:
	LEAL	8(SI), AX
	CMPL	AX, DX
	JA	paging
	MOVL	(SI), AX		// type
	TESTL	AX, AX
	JZ	paging
	MOVL	4(SI), CX		// size, header included
	CMPL	CX, $8
	JB	paging
	CMPL	AX, $const_MULTIBOOT_TAG_TYPE_MMAP
	JEQ	mb2_mmap
	ADDL	$7, CX
	ANDL	$~7, CX
	ADDL	CX, SI
	JMP	mb2_tag
mb2_mmap:
	// Memory map tag: u32 type, u32 size, u32 entry_size,
	// u32 entry_version, then entries {u64 base_addr, u64 length,
	// u32 type, u32 reserved} of entry_size bytes.
	MOVL	8(SI), AX
	CMPL	AX, $const_MEMMAP_ENTRY_SIZE
	JB	paging
	MOVL	AX, const_HANDOFF_SCAN_STRIDE(DI)
	LEAL	(SI)(CX*1), AX
	MOVL	AX, const_HANDOFF_SCAN_END(DI)
	ADDL	$16, SI
	JMP	scan_entry

mb1:
	// Multiboot information (Multiboot 0.6.96, 3.3): flags bit 6 says
	// mmap_length (offset 44) and mmap_addr (offset 48) are valid;
	// entries are {u32 size, u64 base_addr, u64 length, u32 type} where
	// size does not count itself. Stride 0 tells the scan so.
	TESTL	$const_MULTIBOOT_INFO_MEM_MAP, (BX)
	JZ	paging
	MOVL	48(BX), SI
	MOVL	44(BX), AX
	ADDL	SI, AX
	MOVL	AX, const_HANDOFF_SCAN_END(DI)
	MOVL	$0, const_HANDOFF_SCAN_STRIDE(DI)

	// Look for one RAM entry {u64 addr, u64 size, u32 type} with
	// addr <= RAM_START and addr+size >= RAM_END, from SI up to
	// HANDOFF_SCAN_END. Type 1 is RAM in all three protocols.
scan_entry:
	MOVL	$const_HANDOFF_BASE, DI
	CMPL	SI, const_HANDOFF_SCAN_END(DI)
	JAE	no_memory
	MOVL	const_HANDOFF_SCAN_STRIDE(DI), CX
	MOVL	SI, DI
	TESTL	CX, CX
	JNZ	scan_fields
	ADDL	$4, DI			// Multiboot: fields follow the size word
scan_fields:
	CMPL	16(DI), $const_XEN_HVM_MEMMAP_TYPE_RAM
	JNE	scan_next
	CMPL	4(DI), $0		// addr >= 4 GiB
	JNE	scan_next
	CMPL	(DI), $const_RAM_START
	JA	scan_next
	MOVL	(DI), AX		// DX:AX = addr + size
	MOVL	4(DI), DX
	ADDL	8(DI), AX
	ADCL	12(DI), DX
	JC	paging			// end beyond 2^64: covers
	TESTL	DX, DX
	JNZ	paging			// end beyond 4 GiB: covers
	CMPL	AX, $const_RAM_END
	JAE	paging
scan_next:
	TESTL	CX, CX
	JNZ	scan_advance
	MOVL	(SI), CX		// Multiboot: size of the rest, plus 4
	ADDL	$4, CX
scan_advance:
	ADDL	CX, SI
	JMP	scan_entry

no_memory:
	// The text must match RAM_END (0x24000000 = 576 MiB).
	PUTC('k'); PUTC('e'); PUTC('e'); PUTC('l'); PUTC(':'); PUTC(' ')
	PUTC('n'); PUTC('o'); PUTC('t'); PUTC(' ')
	PUTC('e'); PUTC('n'); PUTC('o'); PUTC('u'); PUTC('g'); PUTC('h'); PUTC(' ')
	PUTC('m'); PUTC('e'); PUTC('m'); PUTC('o'); PUTC('r'); PUTC('y'); PUTC(':'); PUTC(' ')
	PUTC('t'); PUTC('h'); PUTC('e'); PUTC(' ')
	PUTC('k'); PUTC('e'); PUTC('r'); PUTC('n'); PUTC('e'); PUTC('l'); PUTC(' ')
	PUTC('n'); PUTC('e'); PUTC('e'); PUTC('d'); PUTC('s'); PUTC(' ')
	PUTC('R'); PUTC('A'); PUTC('M'); PUTC(' ')
	PUTC('u'); PUTC('p'); PUTC(' '); PUTC('t'); PUTC('o'); PUTC(' ')
	PUTC('0'); PUTC('x'); PUTC('2'); PUTC('4'); PUTC('0'); PUTC('0'); PUTC('0'); PUTC('0'); PUTC('0'); PUTC('0'); PUTC(' ')
	PUTC(0x28); PUTC('5'); PUTC('7'); PUTC('6'); PUTC(' '); PUTC('M'); PUTC('i'); PUTC('B'); PUTC(0x29); PUTC(0x3b); PUTC(' ')
	PUTC('g'); PUTC('i'); PUTC('v'); PUTC('e'); PUTC(' ')
	PUTC('t'); PUTC('h'); PUTC('e'); PUTC(' ')
	PUTC('m'); PUTC('a'); PUTC('c'); PUTC('h'); PUTC('i'); PUTC('n'); PUTC('e'); PUTC(' ')
	PUTC('a'); PUTC('t'); PUTC(' ')
	PUTC('l'); PUTC('e'); PUTC('a'); PUTC('s'); PUTC('t'); PUTC(' ')
	PUTC('1'); PUTC(' '); PUTC('G'); PUTC('i'); PUTC('B'); PUTC(0x0d); PUTC(0x0a)

	// isa-debug-exit: QEMU exits with status (1<<1)|1 = 3. Elsewhere the
	// write is ignored and we halt.
	MOVB	$1, AL
	MOVL	$const_ISA_DEBUG_EXIT, DX
	OUTB
die:
	HLT
	JMP	die

paging:
	// QEMU's Multiboot loader puts its information at 0x9000-0x9fff,
	// where the page tables go: under Multiboot, keep a copy of
	// [LOW_SHADOW_START, LOW_SHADOW_END) in the unused start of the
	// runtime's region; readers (physMem, the module scan below) use it.
	MOVL	$const_HANDOFF_BASE, DI
	CMPL	const_HANDOFF_EAX(DI), $const_MULTIBOOT_BOOTLOADER_MAGIC
	JNE	no_low_shadow
	ORL	$const_HANDOFF_FLAG_LOW_SHADOW, const_HANDOFF_FLAGS(DI)
	MOVL	$const_LOW_SHADOW_START, SI
	MOVL	$const_LOW_SHADOW, DI
	MOVL	$((const_LOW_SHADOW_END-const_LOW_SHADOW_START)/4), CX
	REP;	MOVSL
no_low_shadow:

	// Long-mode 4-level paging (AMD APM Vol. 2, 5.3 "Long-Mode Page
	// Translation"; Intel SDM Vol. 3A, 4.5 "4-Level Paging").

	// Zero the IDT page, then the page tables.
	XORL	AX, AX
	MOVL	$const_IDT_BASE, DI
	MOVL	$((const_IDT_LIMIT+1)/4), CX
	REP;	STOSL
	MOVL	$const_PML4_BASE, DI
	MOVL	$((const_PAGE_TABLES_END-const_PML4_BASE)/4), CX
	REP;	STOSL

	// PML4[0] -> PDPT (512 GiB). Entries are 64-bit; the zeroed high
	// dwords stay zero since everything lives below 4 GiB.
	MOVL	$const_PML4_BASE, DI
	MOVL	$(const_PDPT_BASE|const_PTE_RW|const_PTE_P), (DI)

	// PDPT[0..3] -> PD0..PD3 (1 GiB each).
	MOVL	$const_PDPT_BASE, DI
	MOVL	$(const_PD_BASE|const_PTE_RW|const_PTE_P), AX
pdpt_entry:
	MOVL	AX, (DI)
	ADDL	$0x1000, AX
	ADDL	$8, DI
	CMPL	DI, $(const_PDPT_BASE+const_PD_COUNT*8)
	JB	pdpt_entry

	// PD entries: 2048 pages of 2 MiB identity-mapping 0-4 GiB; from
	// UNCACHED_START on they are PCD|PWT (uncached device memory).
	MOVL	$const_PD_BASE, DI
	MOVL	$(const_PTE_PS|const_PTE_RW|const_PTE_P), AX
pd_entry:
	CMPL	AX, $const_UNCACHED_START
	JB	pd_store
	ORL	$(const_PTE_PCD|const_PTE_PWT), AX
pd_store:
	MOVL	AX, (DI)
	ADDL	$(2<<20), AX
	ADDL	$8, DI
	CMPL	DI, $(const_PD_BASE+const_PD_COUNT*0x1000)
	JB	pd_entry

	// PD0[0] -> PT: 0-2 MiB in 4 KiB pages, PT[0] (page 0) not present.
	MOVL	$const_PD_BASE, DI
	MOVL	$(const_PT_BASE|const_PTE_RW|const_PTE_P), (DI)
	MOVL	$(const_PT_BASE+8), DI
	MOVL	$(0x1000|const_PTE_RW|const_PTE_P), AX
pt_entry:
	MOVL	AX, (DI)
	ADDL	$0x1000, AX
	ADDL	$8, DI
	CMPL	DI, $(const_PT_BASE+0x1000)
	JB	pt_entry

	// GDT and the GDTR/IDTR pseudo-descriptors (limit, then base; the
	// base's high dword is zero).
	MOVL	$const_HANDOFF_BASE, DI
	MOVL	$0, const_HANDOFF_GDT+0(DI)
	MOVL	$0, const_HANDOFF_GDT+4(DI)
	MOVL	$(const_GDT_CODE64&0xffffffff), const_HANDOFF_GDT+8(DI)
	MOVL	$(const_GDT_CODE64>>32), const_HANDOFF_GDT+12(DI)
	MOVL	$(const_GDT_DATA&0xffffffff), const_HANDOFF_GDT+16(DI)
	MOVL	$(const_GDT_DATA>>32), const_HANDOFF_GDT+20(DI)
	MOVW	$const_GDT_LIMIT, const_HANDOFF_GDTR(DI)
	MOVL	$(const_HANDOFF_BASE+const_HANDOFF_GDT), const_HANDOFF_GDTR+2(DI)
	MOVL	$0, const_HANDOFF_GDTR+6(DI)
	MOVW	$const_IDT_LIMIT, const_HANDOFF_IDTR(DI)
	MOVL	$const_IDT_BASE, const_HANDOFF_IDTR+2(DI)
	MOVL	$0, const_HANDOFF_IDTR+6(DI)
	LGDT	const_HANDOFF_GDTR(DI)
	LIDT	const_HANDOFF_IDTR(DI)

	// Enter long mode (AMD APM Vol. 2, 14.6.1 "Activating Long Mode";
	// Intel SDM Vol. 3A, 10.8.5 "Initializing IA-32e Mode"): CR4.PAE,
	// CR3, EFER.LME, then CR0.PG. The CPU is then in compatibility mode
	// until CS is loaded with a 64-bit descriptor.
	MOVL	CR4, AX
	ORL	$(const_CR4_PAE|const_CR4_PGE), AX
	MOVL	AX, CR4
	MOVL	$const_PML4_BASE, AX
	MOVL	AX, CR3
	MOVL	$const_MSR_EFER, CX
	RDMSR
	ORL	$const_EFER_LME, AX
	WRMSR
	MOVL	CR0, AX
	ORL	$(const_CR0_PG|const_CR0_PE), AX
	MOVL	AX, CR0

	// Far return to the instruction after the RETF with CS = SEL_CODE64.
	// Its address is X+8 where X is the address the CALL pushes; the byte
	// counts (verified with objdump; re-check after any edit here) are:
	// POPQ AX 1, ADDL $8,AX 3, PUSHQ $8 2, PUSHQ AX 1, RETF 1.
	BYTE	$0xe8; LONG $0		// CALL rel32 0: push X, fall through to X
	POPQ	AX			// X:   58        AX = X
	ADDL	$8, AX			// X+1: 83 c0 08  AX = X+8
	PUSHQ	$const_SEL_CODE64	// X+4: 6a 08     push CS
	PUSHQ	AX			// X+6: 50        push EIP
	BYTE	$0xcb			// X+7: cb        RETF (32-bit operands)

	// X+8: 64-bit mode.
	MOVL	$const_SEL_DATA, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	MOVW	AX, FS
	MOVW	AX, GS

	// Loaders place boot modules and their information where they like,
	// often right after the kernel image: inside the runtime's region,
	// where the Go heap grows. Find the highest end of everything the
	// loader placed in [end of image, bottom of the boot stacks) and
	// start the heap above it (goos.Bloc). R8/R9 bound the heap's
	// range, R10 is the highest end seen.
	MOVQ	$runtime·end(SB), R8
	MOVQ	runtime∕goos·RamStart(SB), R9
	ADDQ	runtime∕goos·RamSize(SB), R9
	SUBQ	runtime∕goos·RamStackOffset(SB), R9
	SUBQ	$const_BOOT_STACKS_SIZE, R9
	XORQ	R10, R10
	MOVL	$const_HANDOFF_BASE, DI
	MOVL	const_HANDOFF_EBX(DI), BX	// zero-extends
	MOVL	const_HANDOFF_EAX(DI), AX
	CMPL	AX, $const_MULTIBOOT2_BOOTLOADER_MAGIC
	JEQ	keep_mb2
	CMPL	AX, $const_MULTIBOOT_BOOTLOADER_MAGIC
	JEQ	keep_mb1
	MOVL	const_HANDOFF_FLAGS(DI), AX
	TESTL	$const_HANDOFF_FLAG_PVH, AX
	JZ	keep_done

	// PVH: hvm_modlist_entry {u64 paddr, u64 size, u64 cmdline, u64}
	// at modlist_paddr, nr_modules of them (Xen start_info.h).
	MOVL	(const_HANDOFF_START_INFO+12)(DI), CX	// nr_modules
	MOVQ	(const_HANDOFF_START_INFO+16)(DI), SI	// modlist_paddr
	CMPL	CX, $const_MAX_BOOT_MODULES
	JA	keep_done
keep_pvh:
	TESTL	CX, CX
	JZ	keep_done
	MOVQ	(SI), AX
	MOVQ	8(SI), DX
	ADDQ	AX, DX
	PROTECT
	ADDQ	$32, SI
	DECL	CX
	JMP	keep_pvh

keep_mb2:
	// The information itself, then each module tag (type 3:
	// {u32 type, u32 size, u32 mod_start, u32 mod_end, string}).
	MOVQ	BX, AX
	MOVL	(BX), DX
	ADDQ	BX, DX
	MOVQ	DX, R11				// R11 = end of the information
	PROTECT
	LEAQ	8(BX), SI
keep_mb2_tag:
	LEAQ	16(SI), AX
	CMPQ	AX, R11
	JA	keep_done
	MOVL	(SI), AX
	TESTL	AX, AX
	JZ	keep_done
	MOVL	4(SI), CX
	CMPL	CX, $8
	JB	keep_done
	CMPL	AX, $const_MULTIBOOT_TAG_TYPE_MODULE
	JNE	keep_mb2_next
	MOVL	8(SI), AX
	MOVL	12(SI), DX
	PROTECT
keep_mb2_next:
	ADDL	$7, CX
	ANDL	$~7, CX
	ADDQ	CX, SI
	JMP	keep_mb2_tag

keep_mb1:
	// The information (Multiboot 0.6.96, 3.3: 120 bytes), the module
	// list (flags bit 3: mods_count at 20, mods_addr at 24, entries
	// {u32 mod_start, u32 mod_end, u32 string, u32 reserved}), the
	// modules, and the memory map (flags bit 6). Structures in the page
	// table area are read from the low shadow.
	MOVQ	BX, AX
	LEAQ	120(BX), DX
	PROTECT
	SHADOW(BX)
	// The command line (flags bit 2, offset 16): QEMU puts it after the
	// image's bss. Up to MAX_CMDLINE bytes are kept.
	TESTL	$const_MULTIBOOT_INFO_CMDLINE, (BX)
	JZ	keep_mb1_mmap
	MOVL	16(BX), AX
	LEAQ	const_MAX_CMDLINE(AX), DX
	PROTECT
keep_mb1_mmap:
	TESTL	$const_MULTIBOOT_INFO_MMAP_ADDR, (BX)
	JZ	keep_mb1_mods
	MOVL	48(BX), AX
	MOVL	44(BX), DX
	ADDQ	AX, DX
	PROTECT
keep_mb1_mods:
	TESTL	$const_MULTIBOOT_INFO_MODS, (BX)
	JZ	keep_done
	MOVL	20(BX), CX
	MOVL	24(BX), SI
	CMPL	CX, $const_MAX_BOOT_MODULES
	JA	keep_done
	MOVQ	SI, AX
	MOVQ	CX, DX
	SHLQ	$4, DX
	ADDQ	SI, DX
	PROTECT
	SHADOW(SI)
keep_mb1_mod:
	TESTL	CX, CX
	JZ	keep_done
	MOVL	(SI), AX
	MOVL	4(SI), DX
	PROTECT
	MOVL	8(SI), AX		// the module's string
	LEAQ	const_MAX_CMDLINE(AX), DX
	PROTECT
	ADDQ	$16, SI
	DECL	CX
	JMP	keep_mb1_mod

keep_done:
	TESTQ	R10, R10
	JZ	stack
	CMPQ	R10, R9
	JA	modules_overlap
	ADDQ	$0xfff, R10
	ANDQ	$~0xfff, R10
	MOVQ	R10, runtime∕goos·Bloc(SB)
	JMP	stack

modules_overlap:
	PUTC('k'); PUTC('e'); PUTC('e'); PUTC('l'); PUTC(':'); PUTC(' ')
	PUTC('b'); PUTC('o'); PUTC('o'); PUTC('t'); PUTC(' ')
	PUTC('m'); PUTC('o'); PUTC('d'); PUTC('u'); PUTC('l'); PUTC('e'); PUTC('s'); PUTC(' ')
	PUTC('f'); PUTC('i'); PUTC('l'); PUTC('l'); PUTC(' ')
	PUTC('t'); PUTC('h'); PUTC('e'); PUTC(' ')
	PUTC('k'); PUTC('e'); PUTC('r'); PUTC('n'); PUTC('e'); PUTC('l'); PUTC(0x27); PUTC('s'); PUTC(' ')
	PUTC('m'); PUTC('e'); PUTC('m'); PUTC('o'); PUTC('r'); PUTC('y'); PUTC(':'); PUTC(' ')
	PUTC('u'); PUTC('s'); PUTC('e'); PUTC(' ')
	PUTC('s'); PUTC('m'); PUTC('a'); PUTC('l'); PUTC('l'); PUTC('e'); PUTC('r'); PUTC(' ')
	PUTC('m'); PUTC('o'); PUTC('d'); PUTC('u'); PUTC('l'); PUTC('e'); PUTC('s'); PUTC(0x0d); PUTC(0x0a)
	MOVB	$1, AL
	MOVL	$const_ISA_DEBUG_EXIT, DX
	OUTB
	JMP	die

stack:
	// Initial stack: RamStart + RamSize - RamStackOffset, as the
	// runtime's rt0 expects.
	MOVQ	runtime∕goos·RamStart(SB), SP
	ADDQ	runtime∕goos·RamSize(SB), SP
	SUBQ	runtime∕goos·RamStackOffset(SB), SP

	// CR0.EM=0, CR0.MP=1, CR4.OSFXSR, CR4.OSXMMEXCPT (library,
	// amd64/features.s). Clobbers AX, BX.
	CALL	sse_enable(SB)

	JMP	_rt0_tamago_start(SB)

// TEXT ·putc32<>(SB): no Go prototype; 32-bit code called by PUTC.
//
// In: AL = character. Waits for LSR.THRE on COM1 (PC16550D datasheet,
// 8.4 "Line Status Register", bit 5) then writes THR. Clobbers AX, CX,
// DX. Uses the 4-byte return address a 32-bit CALL pushes.
TEXT ·putc32<>(SB),NOSPLIT|NOFRAME,$0
	MOVB	AL, CL
putc_wait:
	MOVL	$(const_COM1_BASE+const_UART_LSR), DX
	INB
	TESTB	$const_LSR_THRE, AL
	JZ	putc_wait
	MOVL	$(const_COM1_BASE+const_UART_THR), DX
	MOVB	CL, AL
	OUTB
	RET

/*
 * Keel application processor (AP) start-up trampoline.
 *
 * The bootstrap processor copies this code to TRAMPOLINE_BASE (0x4000) and
 * sends INIT-SIPI-SIPI with vector 0x04 (Intel SDM Vol. 3A, 9.4.4.1 "Typical
 * BSP Initialization Sequence"; AMD APM Vol. 2, 15.27.8). The AP starts in
 * real mode at CS:IP = 0x0400:0000, i.e. at offset 0 of this code. It
 * switches to 32-bit protected mode with a temporary GDT, enables PAE,
 * loads the shared page tables (CR3 from the data area), sets EFER.LME and
 * CR0.PG, enters 64-bit mode and jumps to the 64-bit entry given in the
 * data area with RSP = the given stack and RDI = the given argument.
 *
 * Everything is position dependent on TRAMPOLINE_BASE: addresses below are
 * absolute (BASE + label). The data area at DATA (offset 0xf00) is filled
 * by the BSP before each SIPI:
 *
 *   DATA+0x00  u32  CR3
 *   DATA+0x08  u64  64-bit entry point
 *   DATA+0x10  u64  initial RSP
 *   DATA+0x18  u64  argument (RDI)
 *
 * Assemble: as --64 -o t.o trampoline.S && objcopy -O binary -j .text t.o t.bin
 * (trampoline.go holds the bytes; trampoline_test.go checks them against
 * this source when GNU as is installed.)
 */

	.set	BASE, 0x4000
	.set	DATA, 0xf00

	.text
	.code16
start:
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ds
	lgdtl	BASE + gdtr
	movl	%cr0, %eax
	orl	$1, %eax			/* CR0.PE */
	movl	%eax, %cr0
	ljmpl	$0x18, $(BASE + pm32)

	.code32
pm32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	%cr4, %eax
	orl	$0xa0, %eax			/* CR4.PAE | CR4.PGE */
	movl	%eax, %cr4
	movl	BASE + DATA, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx		/* EFER */
	rdmsr
	orl	$0x100, %eax			/* EFER.LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax		/* CR0.PG | CR0.PE */
	movl	%eax, %cr0
	ljmpl	$0x08, $(BASE + lm64)

	.code64
lm64:
	movq	BASE + DATA + 0x10, %rsp
	movq	BASE + DATA + 0x18, %rdi
	jmpq	*(BASE + DATA + 0x08)

	.p2align 3
gdt:
	.quad	0x0000000000000000		/* null */
	.quad	0x00af9a000000ffff		/* 0x08: 64-bit code */
	.quad	0x00cf92000000ffff		/* 0x10: data */
	.quad	0x00cf9a000000ffff		/* 0x18: 32-bit code */
gdtr:
	.word	gdtr - gdt - 1
	.long	BASE + gdt

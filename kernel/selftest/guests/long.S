/* Test guest: starts in real mode at 0000:1000, switches to 32-bit
 * protected mode (prints), then to 64-bit long mode with identity-mapped
 * 2 MiB pages for the first 1 GiB (prints), checks the hypervisor CPUID
 * leaf and the version hypercall from 64-bit code, and powers off. Page
 * tables at 0x10000-0x12fff, stack below 0x1000. */
	.include "common.h"
	.set	BASE, 0x1000
	.set	PML4, 0x10000
	.set	PDPT, 0x11000
	.set	PD, 0x12000
	.code16
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x1000, %sp
	VENDOR
	lgdtl	gdtr
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$0x18, $pm32

	.code32
pm32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$0x1000, %esp
	movl	$hello32, %esi
	call	puts32
	/* page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD: 512 x 2 MiB */
	movl	$PML4, %edi
	xorl	%eax, %eax
	movl	$(3*4096/4), %ecx
	rep stosl
	movl	$(PDPT | 3), PML4
	movl	$(PD | 3), PDPT
	movl	$PD, %edi
	movl	$0x83, %eax
1:	movl	%eax, (%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	cmpl	$(PD + 4096), %edi
	jb	1b
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$PML4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* EFER.LME */
	rdmsr
	orl	$0x100, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000000, %eax	/* PG */
	movl	%eax, %cr0
	ljmpl	$0x08, $lm64

	.code64
lm64:
	movl	$hello64, %esi
	call	puts64
	movl	$0x40000000, %eax
	cpuid
	cmpl	$KEEL_SIG, %ebx
	jne	fail64
	movl	$HC_VERSION, %eax
	HYPERCALL
	cmpq	$ABI_VERSION, %rax
	jne	fail64
	movl	$HC_POWEROFF, %eax
	xorl	%ebx, %ebx
	HYPERCALL
	hlt
fail64:
	movl	$bad, %esi
	call	puts64
	movl	$HC_POWEROFF, %eax
	movl	$1, %ebx
	HYPERCALL
	hlt
puts64:
	lodsb
	testb	%al, %al
	jz	1f
	movw	$CONSOLE, %dx
	outb	%al, %dx
	jmp	puts64
1:	ret

	.code32
puts32:
	lodsb
	testb	%al, %al
	jz	1f
	movw	$CONSOLE, %dx
	outb	%al, %dx
	jmp	puts32
1:	ret

	.p2align 3
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x10 data */
	.quad	0x00cf9a000000ffff	/* 0x18 32-bit code */
gdtr:
	.word	gdtr - gdt - 1
	.long	gdt
hello32: .asciz	"hello from protected mode\n"
hello64: .asciz	"hello from long mode\n"
bad:	.asciz	"long mode check failed\n"
is_amd:	.byte	0

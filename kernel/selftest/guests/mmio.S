/* Test guest: like long.S to 64-bit mode, then exercises device memory at
 * 0x20000000 (outside RAM, the selftest's register device) with every
 * instruction form the MMIO emulator supports, checking each result, and
 * powers off with status 0 (1 on a wrong result). */
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
	.set	DEV, 0x20000000		/* the test device, outside RAM */
	movq	$DEV, %rbx
	movl	$0x12345678, %eax
	movl	%eax, (%rbx)			/* MOV r/m32, r32 */
	movl	(%rbx), %ecx			/* MOV r32, r/m32 */
	cmpl	%eax, %ecx
	jne	fail64
	movb	$0xab, 4(%rbx)			/* MOV r/m8, imm8 */
	movzbl	4(%rbx), %ecx			/* MOVZX */
	cmpl	$0xab, %ecx
	jne	fail64
	movsbl	4(%rbx), %ecx			/* MOVSX */
	cmpl	$0xffffffab, %ecx
	jne	fail64
	movw	$0x8001, 6(%rbx)		/* MOV r/m16, imm16 */
	movswq	6(%rbx), %rcx
	cmpq	$-0x7fff, %rcx
	jne	fail64
	movq	$-2, %rax
	movq	%rax, 8(%rbx)			/* 64-bit MOV */
	movq	8(%rbx), %rdx
	cmpq	%rax, %rdx
	jne	fail64
	movabsq	DEV+8, %rax			/* MOV moffs */
	cmpq	%rdx, %rax
	jne	fail64
	orl	$0x80000000, (%rbx)		/* OR */
	cmpl	$0x92345678, (%rbx)		/* CMP */
	jne	fail64
	andl	$0xff, (%rbx)			/* AND */
	xorl	$0xf0, (%rbx)			/* XOR: 0x88 */
	addl	$8, (%rbx)			/* ADD: 0x90 */
	subl	$0x10, (%rbx)			/* SUB: 0x80 */
	cmpl	$0x80, (%rbx)
	jne	fail64
	testl	$0x80, (%rbx)			/* TEST */
	jz	fail64
	movl	$5, %ecx
	xchgl	%ecx, (%rbx)			/* XCHG */
	cmpl	$0x80, %ecx
	jne	fail64
	btl	$2, (%rbx)			/* BT: 5 has bit 2 */
	jnc	fail64
	btsl	$1, (%rbx)			/* BTS: 7 */
	cmpl	$7, (%rbx)
	jne	fail64
	cld
	movq	%rbx, %rdi			/* REP STOSL into the device */
	movl	$0x11223344, %eax
	movl	$4, %ecx
	rep stosl
	cmpl	$0x11223344, 12(%rbx)
	jne	fail64
	movq	%rbx, %rsi			/* REP MOVSB device -> RAM */
	movq	$0x8000, %rdi
	movl	$16, %ecx
	rep movsb
	cmpl	$0x11223344, 0x8008
	jne	fail64
	movl	$mmiook, %esi
	call	puts64
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
mmiook:	.asciz	"mmio ok: mov movzx movsx moffs or and xor add sub cmp test xchg bt bts stos movs\n"
bad:	.asciz	"mmio check failed\n"
is_amd:	.byte	0

/* Test guest: like long.S to 64-bit mode, then exercises device memory at
 * 0x20000000 (outside RAM, the selftest's register device) with every
 * instruction form the MMIO emulator supports, checking each result, and
 * powers off with status 0 (1 on a wrong result). */
	.include "common.h"
	.include "modes.h"
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
mmiook:	.asciz	"mmio ok: mov movzx movsx moffs or and xor add sub cmp test xchg bt bts stos movs\n"
bad:	.asciz	"mmio check failed\n"

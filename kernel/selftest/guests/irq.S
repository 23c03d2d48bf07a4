/* Test guest: real mode. Installs a handler for vector 0x30 in the
 * interrupt vector table, says it is waiting, and halts with interrupts
 * enabled until the host injects the interrupt; the handler records it,
 * the guest prints and powers off with status 0. */
	.include "common.h"
	.set	VECTOR, 0x30
	.code16
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x1000, %sp
	VENDOR
	movw	$handler, VECTOR*4
	movw	$0, VECTOR*4+2
	movw	$waiting, %si
	call	puts
	sti
1:	hlt
	cmpb	$1, got
	jne	1b
	cli
	movw	$handled, %si
	call	puts
	movl	$HC_POWEROFF, %eax
	xorl	%ebx, %ebx
	HYPERCALL
	hlt
handler:
	movb	$1, got
	iret
	.include "puts16.h"
waiting: .asciz	"halted, waiting for interrupt 0x30\n"
handled: .asciz	"interrupt 0x30 handled after HLT\n"
got:	.byte	0
is_amd:	.byte	0

/* Test guest: 16-bit real mode, loaded at 0x1000, entered at 0000:1000.
 * Prints a line on the console port, checks the hypervisor CPUID leaf and
 * the version hypercall, then powers off with status 0 (1 on failure). */
	.include "common.h"
	.code16
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %ss
	movw	$0x1000, %sp
	VENDOR
	movw	$hello, %si
	call	puts
	movl	$0x40000000, %eax
	cpuid
	cmpl	$KEEL_SIG, %ebx
	jne	fail
	movl	$HC_VERSION, %eax
	HYPERCALL
	cmpl	$ABI_VERSION, %eax
	jne	fail
	movl	$HC_POWEROFF, %eax
	xorl	%ebx, %ebx
	HYPERCALL
	hlt
fail:
	movw	$bad, %si
	call	puts
	movl	$HC_POWEROFF, %eax
	movl	$1, %ebx
	HYPERCALL
	hlt
	.include "puts16.h"
hello:	.asciz	"hello from real mode\n"
bad:	.asciz	"real mode check failed\n"
is_amd:	.byte	0

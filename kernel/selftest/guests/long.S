/* Test guest: starts in real mode at 0000:1000, switches to 32-bit
 * protected mode (prints), then to 64-bit long mode with identity-mapped
 * 2 MiB pages for the first 1 GiB (prints), checks the hypervisor CPUID
 * leaf and the version hypercall from 64-bit code, and powers off. Page
 * tables at 0x10000-0x12fff, stack below 0x1000. */
	.include "common.h"
	.include "modes.h"
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
bad:	.asciz	"long mode check failed\n"

/* Test guest: loads an empty IDT and raises an exception, so the
 * processor shuts down (triple fault). Keel must mark the VM crashed. */
	.code16
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	lidtl	idtr
	int3
	hlt
idtr:	.word	0
	.long	0

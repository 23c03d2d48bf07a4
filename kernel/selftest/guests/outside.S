/* Test guest: reads guest-physical 0x40000000, beyond its RAM and every
 * device. Keel must stop the VM with a report naming the address. */
	.code16
	.globl	_start
_start:
	cli
	/* unreal-mode is not needed: a 32-bit address through FS with a 4 GiB
	 * limit needs protected mode; use a flat 32-bit data segment. */
	xorw	%ax, %ax
	movw	%ax, %ds
	lgdtl	gdtr
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$0x08, $pm32
	.code32
pm32:
	movw	$0x10, %ax
	movw	%ax, %ds
	movl	0x40000000, %eax
	hlt
	.p2align 3
gdt:	.quad	0
	.quad	0x00cf9a000000ffff
	.quad	0x00cf92000000ffff
gdtr:	.word	gdtr - gdt - 1
	.long	gdt

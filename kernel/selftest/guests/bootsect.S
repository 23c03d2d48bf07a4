/* Boot sector for running a guest image directly on QEMU's BIOS (the
 * bench's reference run): the BIOS loads this sector at 0000:7C00; it reads
 * the next SECTORS sectors of the boot disk to 0000:1000 with INT 13h
 * AH=42h (extended read) and enters the image in real mode at 0000:1000,
 * as Keel does. Linked at 0x1000 like every guest, so it runs with
 * CS = DS = 0x06C0, where offset 0x1000+x is physical 0x7C00+x. */
	.set	SECTORS, 32
	.code16
	.globl	_start
_start:
	ljmp	$0x06c0, $1f
1:	cli
	movw	%cs, %ax
	movw	%ax, %ds
	xorw	%ax, %ax
	movw	%ax, %ss
	movw	$0x7c00, %sp
	sti
	movb	$0x42, %ah		/* DL: the boot drive, from the BIOS */
	movw	$dap, %si
	int	$0x13
	jc	2f
	ljmp	$0, $0x1000
2:	movw	$0xf4, %dx		/* isa-debug-exit: status 3 = load failed */
	movb	$1, %al
	outb	%al, %dx
3:	hlt
	jmp	3b
	.p2align 2
dap:	.byte	0x10, 0			/* INT 13h disk address packet */
	.word	SECTORS
	.word	0x1000, 0		/* buffer offset, segment */
	.quad	1			/* first LBA */
	.org	510
	.word	0xaa55

/* A Multiboot (v1) test kernel that resets the machine at once through the
 * reset control register (port 0xCF9: SYS_RST then RST_CPU, Intel ICH/PIIX
 * datasheets), as an operating system's `reboot` may: Keel restarts the VM,
 * up to its limit of restarts in a row. */
	.set	MB_MAGIC, 0x1badb002
	.set	MB_FLAGS, 0x00000003
	.set	COM1, 0x3f8
	.set	RST_CNT, 0xcf9

	.section .multiboot, "a"
	.p2align 2
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

	.text
	.code32
	.globl	_start
_start:
	cli
	movl	$msg, %esi
	movw	$COM1, %dx
1:	lodsb
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	movw	$RST_CNT, %dx
	movb	$0x02, %al		/* SYS_RST: a full reset */
	outb	%al, %dx
	movb	$0x06, %al		/* SYS_RST | RST_CPU: do it */
	outb	%al, %dx
3:	hlt
	jmp	3b

	.section .rodata
msg:	.asciz	"mbreset: resetting the machine\n"

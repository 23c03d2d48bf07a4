/* A Multiboot (v1) test kernel that waits for the ACPI power button: it
 * enables the button's event (PM1_EN.PWRBTN_EN), prints that it waits, polls
 * PM1_STS.PWRBTN_STS, then puts the machine in S5 (PM1_CNT: SLP_TYP 5 with
 * SLP_EN) as an operating system's shutdown would. ACPI 6.x, 4.8.3.1
 * (PM1 event registers) and 4.8.3.2 (PM1 control registers); the ports are
 * Keel's (machine.PM_PORT, pmtimer.BLOCK_*), which its FADT announces. */
	.set	MB_MAGIC, 0x1badb002
	.set	MB_FLAGS, 0x00000003
	.set	COM1, 0x3f8
	.set	PM1_STS, 0x600
	.set	PM1_EN, 0x602
	.set	PM1_CNT, 0x604
	.set	PWRBTN, 1 << 8
	.set	SLP_S5, (5 << 10) | (1 << 13)

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
	movl	$stack_top, %esp
	movw	$PM1_EN, %dx
	movw	$PWRBTN, %ax
	outw	%ax, %dx
	movl	$waiting, %esi
	call	puts
	movw	$PM1_STS, %dx
1:	inw	%dx, %ax
	testw	$PWRBTN, %ax
	jz	1b
	movw	$PWRBTN, %ax			/* write 1 to clear */
	outw	%ax, %dx
	movl	$pressed, %esi
	call	puts
	movw	$PM1_CNT, %dx
	movw	$SLP_S5, %ax
	outw	%ax, %dx
2:	hlt
	jmp	2b

puts:
	movw	$COM1, %dx
1:	lodsb
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	ret

	.section .rodata
waiting:	.asciz	"mbpower: waiting for the power button\n"
pressed:	.asciz	"mbpower: power button pressed, entering S5\n"

	.bss
	.p2align 4
	.skip	4096
stack_top:

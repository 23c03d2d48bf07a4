/* Shared by the guests that run in long mode: starting in real mode at
 * 0000:1000, print on the console from protected mode, build identity-mapped
 * 2 MiB pages for the first 1 GiB at 0x10000-0x12fff, enter 64-bit mode
 * and continue at the including guest's label lm64 (printing there is up
 * to it: puts64 takes the string in ESI). Stack below 0x1000. */
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
	.code64
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
is_amd:	.byte	0
	.code64

/* A Multiboot (v1) test kernel for Keel's loader and devices: it prints
 * its command line and its first module's string and contents on COM1,
 * then writes to the debug-exit port 0xf4 the number of modules plus
 * 0x20, so a run with one module ends with status (0x21 << 1) | 1 = 67.
 * Built with GNU as and ld as an ELF32 loaded at 1 MiB. */
	.set	MB_MAGIC, 0x1badb002
	.set	MB_FLAGS, 0x00000003		/* page-align modules, memory info */
	.set	COM1, 0x3f8
	.set	DEBUG_EXIT, 0xf4
	.set	MBI_FLAG_CMDLINE, 1 << 2
	.set	MBI_FLAG_MODS, 1 << 3

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
	cmpl	$0x2badb002, %eax
	jne	bad
	movl	%ebx, %ebp			/* multiboot_info */
	movl	$hello, %esi
	call	puts
	testl	$MBI_FLAG_CMDLINE, (%ebp)
	jz	1f
	movl	$cmdline, %esi
	call	puts
	movl	16(%ebp), %esi			/* cmdline */
	call	puts
	call	newline
1:	xorl	%edi, %edi			/* modules seen */
	testl	$MBI_FLAG_MODS, (%ebp)
	jz	done
	movl	20(%ebp), %edi			/* mods_count */
	testl	%edi, %edi
	jz	done
	movl	24(%ebp), %ebx			/* mods_addr: first module */
	movl	$module, %esi
	call	puts
	movl	8(%ebx), %esi			/* its string */
	call	puts
	movl	$contents, %esi
	call	puts
	movl	(%ebx), %esi			/* mod_start */
	movl	4(%ebx), %ecx			/* mod_end */
	subl	%esi, %ecx
	cmpl	$16, %ecx
	jbe	2f
	movl	$16, %ecx
2:	jecxz	3f
	lodsb
	movw	$COM1, %dx
	outb	%al, %dx
	loop	2b
3:	call	newline
done:
	movl	%edi, %eax
	addl	$0x20, %eax
	movw	$DEBUG_EXIT, %dx
	outb	%al, %dx
4:	hlt
	jmp	4b
bad:
	movl	$badmagic, %esi
	call	puts
	movb	$0x7f, %al
	movw	$DEBUG_EXIT, %dx
	outb	%al, %dx
	jmp	4b

/* puts: print the NUL-terminated string at ESI. */
puts:
	movw	$COM1, %dx
1:	lodsb
	testb	%al, %al
	jz	2f
	outb	%al, %dx
	jmp	1b
2:	ret

newline:
	movb	$'\n', %al
	movw	$COM1, %dx
	outb	%al, %dx
	ret

	.section .rodata
hello:		.asciz	"mbtest: hello from a Multiboot kernel\n"
cmdline:	.asciz	"mbtest: cmdline: "
module:		.asciz	"mbtest: module: "
contents:	.asciz	" contents: "
badmagic:	.asciz	"mbtest: bad Multiboot magic\n"

	.bss
	.p2align 4
	.skip	4096
stack_top:

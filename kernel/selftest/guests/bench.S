/* Bench guest: measures, with RDTSC, the round-trip cost of the exits
 * Keel handles: CPUID, a port write to a no-op device (port 0x80), an MMIO
 * read through the instruction emulator (BENCH_MMIO, outside RAM) and a
 * hypercall (version). Each loop runs `iterations` times; the line
 *     bench: NAME n=N tsc=T
 * gives the total TSC units T for N iterations; `loop` is the empty loop,
 * to subtract. The same image boots directly on QEMU (bootsect.S loads it
 * at 0x1000): there the hypercall raises #UD, which the handler below
 * skips, and the guest exits through isa-debug-exit at port 0xf4 instead
 * of the poweroff hypercall.
 *
 * The host patches the parameter block, found by its "KEELBNCH" marker:
 * iterations (8 bytes) and the mask of loops to run (8 bytes; bit 0 loop,
 * 1 cpuid, 2 port, 3 mmio, 4 hypercall). */
	.include "common.h"
	.include "modes.h"
	.set	BENCH_MMIO, 0x20000000	/* the bench device, outside RAM */
	.set	NOOP_PORT, 0x80
	.set	DEBUG_EXIT, 0xf4
lm64:
	lidt	idtr
	/* IDT gate 6 (#UD) -> ud_handler, 64-bit interrupt gate */
	movl	$ud_handler, %eax
	movw	%ax, idt + 6*16
	movw	$0x08, idt + 6*16 + 2
	movw	$0x8e00, idt + 6*16 + 4
	shrl	$16, %eax
	movw	%ax, idt + 6*16 + 6
	movl	$0x40000000, %eax
	cpuid
	cmpl	$KEEL_SIG, %ebx
	sete	under_keel
	call	uart_init
	movq	mask, %r15

	btq	$0, %r15
	jnc	8f
	movl	$name_loop, %esi
	movq	iterations, %r12
	call	start
9:	decq	%r12
	jnz	9b
	call	stop
8:
	btq	$1, %r15
	jnc	8f
	movl	$name_cpuid, %esi
	movq	iterations, %r12
	call	start
9:	xorl	%eax, %eax
	cpuid
	decq	%r12
	jnz	9b
	call	stop
8:
	btq	$2, %r15
	jnc	8f
	movl	$name_port, %esi
	movq	iterations, %r12
	call	start
9:	outb	%al, $NOOP_PORT
	decq	%r12
	jnz	9b
	call	stop
8:
	btq	$3, %r15
	jnc	8f
	movl	$name_mmio, %esi
	movq	iterations, %r12
	call	start
	movl	$BENCH_MMIO, %ebx
9:	movl	(%rbx), %eax
	decq	%r12
	jnz	9b
	call	stop
8:
	btq	$4, %r15
	jnc	8f
	movl	$name_hypercall, %esi
	movq	iterations, %r12
	call	start
9:	movl	$HC_VERSION, %eax
	HYPERCALL
	decq	%r12
	jnz	9b
	call	stop
8:
	cmpb	$0, under_keel
	je	3f
	movl	$HC_POWEROFF, %eax
	xorl	%ebx, %ebx
	HYPERCALL
3:	movb	$0, %al
	outb	%al, $DEBUG_EXIT
4:	hlt
	jmp	4b

/* start: remember the loop name (ESI) and read the TSC into R13. */
start:
	movq	%rsi, %r14
	rdtsc
	shlq	$32, %rdx
	orq	%rdx, %rax
	movq	%rax, %r13
	ret

/* stop: read the TSC and print "bench: NAME n=N tsc=T". */
stop:
	rdtsc
	shlq	$32, %rdx
	orq	%rdx, %rax
	subq	%r13, %rax
	movq	%rax, %rbp
	movl	$prefix, %esi
	call	bputs
	movq	%r14, %rsi
	call	bputs
	movl	$n_eq, %esi
	call	bputs
	movq	iterations, %rax
	call	putdec
	movl	$tsc_eq, %esi
	call	bputs
	movq	%rbp, %rax
	call	putdec
	movl	$newline, %esi
	call	bputs
	ret

/* putdec: print RAX in decimal. */
putdec:
	movl	$(decbuf + 20), %edi
	movb	$0, (%rdi)
	movq	$10, %rcx
1:	xorl	%edx, %edx
	divq	%rcx
	addb	$'0', %dl
	decq	%rdi
	movb	%dl, (%rdi)
	testq	%rax, %rax
	jnz	1b
	movq	%rdi, %rsi
	jmp	bputs

/* uart_init: directly on a BIOS machine, program the UART for 8 data
 * bits, no parity, 1 stop bit at 115200 baud (Bochs' BIOS leaves 5 data
 * bits, which Bochs honours). Under Keel the console port needs none. */
uart_init:
	cmpb	$0, under_keel
	jne	1f
	movw	$(CONSOLE + 3), %dx	/* LCR: DLAB */
	movb	$0x80, %al
	outb	%al, %dx
	movw	$CONSOLE, %dx		/* divisor 1 */
	movb	$1, %al
	outb	%al, %dx
	movw	$(CONSOLE + 1), %dx
	xorb	%al, %al
	outb	%al, %dx
	movw	$(CONSOLE + 3), %dx	/* LCR: 8N1 */
	movb	$0x03, %al
	outb	%al, %dx
1:	ret

/* bputs: puts64, but directly on a BIOS machine (not under Keel) it waits
 * for the UART's transmit holding register to empty (LSR bit 5) before
 * each byte: Bochs' UART drops bytes written while it is busy. Only the
 * printing of results, outside the timed loops. */
bputs:
	cmpb	$0, under_keel
	jne	puts64
1:	lodsb
	testb	%al, %al
	jz	3f
	movb	%al, %ah
	movw	$(CONSOLE + 5), %dx
2:	inb	%dx, %al
	testb	$0x20, %al
	jz	2b
	movb	%ah, %al
	movw	$CONSOLE, %dx
	outb	%al, %dx
	jmp	1b
3:	ret

/* ud_handler skips a 3-byte VMMCALL/VMCALL that raised #UD (no hypervisor). */
ud_handler:
	addq	$3, (%rsp)
	iretq

	.p2align 3
	.ascii	"KEELBNCH"
iterations:	.quad	1000
mask:		.quad	0x1f
idtr:	.word	16*256 - 1
	.quad	idt
under_keel:	.byte	0
prefix:	.asciz	"bench: "
name_loop:	.asciz	"loop"
name_cpuid:	.asciz	"cpuid"
name_port:	.asciz	"port"
name_mmio:	.asciz	"mmio"
name_hypercall:	.asciz	"hypercall"
n_eq:	.asciz	" n="
tsc_eq:	.asciz	" tsc="
newline:	.asciz	"\n"
decbuf:	.skip	24
	.p2align 4
idt:	.skip	16*256

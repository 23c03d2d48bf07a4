/* Shared definitions of Keel's test guests (GNU as, included by each). */

	.set	CONSOLE, 0x3f8		/* console port: writes print, LSR reads ready */
	.set	HC_VERSION, 0		/* hv/hypercall numbers */
	.set	ABI_VERSION, 0x00010000	/* what HC_VERSION returns (1.0) */
	.set	HC_POWEROFF, 4
	.set	KEEL_SIG, 0x6c65654b	/* "Keel", CPUID 4000_0000h EBX */
	.set	AMD_SIG, 0x68747541	/* "Auth", CPUID 0 EBX on AMD */

/* VENDOR: records in is_amd whether the processor is AMD (call once, in
 * any mode, before HYPERCALL; clobbers EAX-EDX). */
	.macro VENDOR
	xorl	%eax, %eax
	cpuid
	cmpl	$AMD_SIG, %ebx
	sete	is_amd
	.endm

/* HYPERCALL (uses local labels 1 and 2): call number in EAX, arguments in EBX, ECX, EDX, ESI: VMMCALL
 * on AMD, VMCALL on Intel. */
	.macro HYPERCALL
	cmpb	$0, is_amd
	je	1f
	.byte	0x0f, 0x01, 0xd9	/* vmmcall */
	jmp	2f
1:	.byte	0x0f, 0x01, 0xc1	/* vmcall */
2:
	.endm

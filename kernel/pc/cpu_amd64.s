//go:build tamago

#include "textflag.h"

// func cpuidInsn(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
//
// Intel SDM Vol. 2A, CPUID. In: AX = leaf, CX = subleaf.
// Out: AX, BX, CX, DX stored to the results. Clobbers AX, BX, CX, DX.
TEXT ·cpuidInsn(SB),NOSPLIT,$0-24
	MOVL	leaf+0(FP), AX
	MOVL	subleaf+4(FP), CX
	CPUID
	MOVL	AX, eax+8(FP)
	MOVL	BX, ebx+12(FP)
	MOVL	CX, ecx+16(FP)
	MOVL	DX, edx+20(FP)
	RET

// func rdtsc() uint64
//
// Intel SDM Vol. 2B, RDTSC: EDX:EAX = TSC. Clobbers AX, DX.
TEXT ·rdtsc(SB),NOSPLIT,$0-8
	RDTSC
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+0(FP)
	RET

// func inb(port uint16) uint8
//
// IN AL, DX with DX = port. Clobbers AX, DX.
TEXT ·inb(SB),NOSPLIT,$0-9
	MOVW	port+0(FP), DX
	INB
	MOVB	AL, ret+8(FP)
	RET

// func outb(port uint16, val uint8)
//
// OUT DX, AL with DX = port, AL = val. Clobbers AX, DX.
TEXT ·outb(SB),NOSPLIT,$0-3
	MOVW	port+0(FP), DX
	MOVB	val+2(FP), AL
	OUTB
	RET

// func haltForever()
//
// CLI then HLT in a loop (an NMI or SMI resumes after HLT). Uses no
// registers; never returns.
TEXT ·haltForever(SB),NOSPLIT|NOFRAME,$0-0
	CLI
halt:
	HLT
	JMP	halt

// func reloadCR3()
// Writes CR3 with its own value, flushing non-global TLB entries of this
// processor. Clobbers AX.
TEXT ·reloadCR3(SB),NOSPLIT,$0-0
	MOVQ	CR3, AX
	MOVQ	AX, CR3
	RET

// func inw(port uint16) uint16
TEXT ·inw(SB),NOSPLIT,$0-10
	MOVW	port+0(FP), DX
	INW
	MOVW	AX, ret+8(FP)
	RET

// func outw(port uint16, val uint16)
TEXT ·outw(SB),NOSPLIT,$0-4
	MOVW	port+0(FP), DX
	MOVW	val+2(FP), AX
	OUTW
	RET

// func rdmsr(msr uint32) uint64
TEXT ·rdmsr(SB),NOSPLIT,$0-16
	MOVL	msr+0(FP), CX
	RDMSR
	SHLQ	$32, DX
	ORQ	DX, AX
	MOVQ	AX, ret+8(FP)
	RET

//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// func lapicRead(reg uint32) uint32
// Reads the 32-bit local APIC register at LAPIC_BASE+reg. Clobbers AX, BX.
TEXT ·lapicRead(SB),NOSPLIT,$0-12
	MOVL	reg+0(FP), BX
	MOVL	$const_LAPIC_BASE, AX	// zero-extended: not ADDQ $imm32
	ADDQ	AX, BX
	MOVL	(BX), AX
	MOVL	AX, ret+8(FP)
	RET

// func lapicWrite(reg uint32, val uint32)
// Writes the 32-bit local APIC register at LAPIC_BASE+reg. Clobbers AX, BX.
TEXT ·lapicWrite(SB),NOSPLIT,$0-8
	MOVL	reg+0(FP), BX
	MOVL	$const_LAPIC_BASE, AX	// zero-extended: not ADDQ $imm32
	ADDQ	AX, BX
	MOVL	val+4(FP), AX
	MOVL	AX, (BX)
	RET

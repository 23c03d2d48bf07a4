//go:build amd64

#include "textflag.h"

// Every function below has the Go signature (see hostalu_amd64.go)
//
//	func name(a, b, fl uint64) (r, f uint64)
//
// and the same shape: a is loaded into AX and b into BX; fl goes to RFLAGS
// through the stack (PUSHQ/POPFQ; user mode may set the status flags); one
// instruction runs on AX (and BX); AX is returned in r and RFLAGS (PUSHFQ) in
// f. CX is scratch. Operand order is Go assembly's: "SUBL BX, AX" is
// AX -= BX, and CMP takes Intel order ("CMPL AX, BX" sets the flags of
// AX - BX).

// func add8(a, b, fl uint64) (r, f uint64)
TEXT ·add8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADDB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func add16(a, b, fl uint64) (r, f uint64)
TEXT ·add16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADDW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func add32(a, b, fl uint64) (r, f uint64)
TEXT ·add32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADDL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func add64(a, b, fl uint64) (r, f uint64)
TEXT ·add64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADDQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func adc8(a, b, fl uint64) (r, f uint64)
TEXT ·adc8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADCB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func adc16(a, b, fl uint64) (r, f uint64)
TEXT ·adc16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADCW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func adc32(a, b, fl uint64) (r, f uint64)
TEXT ·adc32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADCL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func adc64(a, b, fl uint64) (r, f uint64)
TEXT ·adc64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ADCQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sub8(a, b, fl uint64) (r, f uint64)
TEXT ·sub8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SUBB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sub16(a, b, fl uint64) (r, f uint64)
TEXT ·sub16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SUBW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sub32(a, b, fl uint64) (r, f uint64)
TEXT ·sub32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SUBL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sub64(a, b, fl uint64) (r, f uint64)
TEXT ·sub64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SUBQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sbb8(a, b, fl uint64) (r, f uint64)
TEXT ·sbb8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SBBB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sbb16(a, b, fl uint64) (r, f uint64)
TEXT ·sbb16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SBBW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sbb32(a, b, fl uint64) (r, f uint64)
TEXT ·sbb32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SBBL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func sbb64(a, b, fl uint64) (r, f uint64)
TEXT ·sbb64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	SBBQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func and8(a, b, fl uint64) (r, f uint64)
TEXT ·and8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ANDB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func and16(a, b, fl uint64) (r, f uint64)
TEXT ·and16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ANDW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func and32(a, b, fl uint64) (r, f uint64)
TEXT ·and32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ANDL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func and64(a, b, fl uint64) (r, f uint64)
TEXT ·and64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ANDQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func or8(a, b, fl uint64) (r, f uint64)
TEXT ·or8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ORB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func or16(a, b, fl uint64) (r, f uint64)
TEXT ·or16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ORW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func or32(a, b, fl uint64) (r, f uint64)
TEXT ·or32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ORL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func or64(a, b, fl uint64) (r, f uint64)
TEXT ·or64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	ORQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func xor8(a, b, fl uint64) (r, f uint64)
TEXT ·xor8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	XORB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func xor16(a, b, fl uint64) (r, f uint64)
TEXT ·xor16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	XORW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func xor32(a, b, fl uint64) (r, f uint64)
TEXT ·xor32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	XORL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func xor64(a, b, fl uint64) (r, f uint64)
TEXT ·xor64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	XORQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func test8(a, b, fl uint64) (r, f uint64)
TEXT ·test8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	TESTB BL, AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func test16(a, b, fl uint64) (r, f uint64)
TEXT ·test16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	TESTW BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func test32(a, b, fl uint64) (r, f uint64)
TEXT ·test32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	TESTL BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func test64(a, b, fl uint64) (r, f uint64)
TEXT ·test64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	TESTQ BX, AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func cmp8(a, b, fl uint64) (r, f uint64)
TEXT ·cmp8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	CMPB AL, BL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func cmp16(a, b, fl uint64) (r, f uint64)
TEXT ·cmp16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	CMPW AX, BX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func cmp32(a, b, fl uint64) (r, f uint64)
TEXT ·cmp32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	CMPL AX, BX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func cmp64(a, b, fl uint64) (r, f uint64)
TEXT ·cmp64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	CMPQ AX, BX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func inc8(a, b, fl uint64) (r, f uint64)
TEXT ·inc8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	INCB AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func inc16(a, b, fl uint64) (r, f uint64)
TEXT ·inc16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	INCW AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func inc32(a, b, fl uint64) (r, f uint64)
TEXT ·inc32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	INCL AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func inc64(a, b, fl uint64) (r, f uint64)
TEXT ·inc64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	INCQ AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func dec8(a, b, fl uint64) (r, f uint64)
TEXT ·dec8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	DECB AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func dec16(a, b, fl uint64) (r, f uint64)
TEXT ·dec16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	DECW AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func dec32(a, b, fl uint64) (r, f uint64)
TEXT ·dec32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	DECL AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func dec64(a, b, fl uint64) (r, f uint64)
TEXT ·dec64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	DECQ AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func neg8(a, b, fl uint64) (r, f uint64)
TEXT ·neg8(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	NEGB AL
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func neg16(a, b, fl uint64) (r, f uint64)
TEXT ·neg16(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	NEGW AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func neg32(a, b, fl uint64) (r, f uint64)
TEXT ·neg32(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	NEGL AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

// func neg64(a, b, fl uint64) (r, f uint64)
TEXT ·neg64(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ fl+16(FP), CX
	PUSHQ CX
	POPFQ
	NEGQ AX
	PUSHFQ
	POPQ CX
	MOVQ AX, r+24(FP)
	MOVQ CX, f+32(FP)
	RET

//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// SVM instructions (AMD APM Vol. 3, "VMRUN", "VMLOAD", "VMSAVE", "STGI",
// "CLGI"); rAX holds the VMCB physical address for the first three.
#define VMRUN  BYTE $0x0f; BYTE $0x01; BYTE $0xd8
#define VMLOAD BYTE $0x0f; BYTE $0x01; BYTE $0xda
#define VMSAVE BYTE $0x0f; BYTE $0x01; BYTE $0xdb
#define STGI   BYTE $0x0f; BYTE $0x01; BYTE $0xdc
#define CLGI   BYTE $0x0f; BYTE $0x01; BYTE $0xdd

#define MSR_VM_HSAVE_PA 0xc0010117
#define MSR_EFER        0xc0000080
#define LAPIC_ID_REG    0xfee00020

// func vmrun(vmcbPA uint64, vmcbVA uintptr, gprs *[16]uint64, lastCPU *uint32, flush uint32, running *uint32, kicked *uint32, fx uintptr) (status uint32)
//
// Runs the guest once. It sets EFER.SVME, then with the global interrupt
// flag clear (no host interrupt or NMI until STGI) finds this processor's
// APIC ID, points VM_HSAVE_PA at its host save area, publishes
// *running = APIC ID + 1 and returns ENTER_KICKED if *kicked is set (a kick
// after that sends an IPI that stays pending and exits the guest at once),
// asks for a TLB flush if the vCPU last ran on another processor or flush
// is set, saves the host's VMLOAD state, loads the guest's FPU/SSE state,
// VMLOAD state and general registers (RAX and RSP come from the VMCB),
// VMRUNs, and after #VMEXIT stores the guest's registers and state back,
// restores the host's and sets STGI. Locals: 0(SP) the gprs pointer, then
// the guest R15 across the exit; 8(SP) the host save area. Clobbers every
// general register (the ABI wrapper restores g) and the vector registers.
TEXT ·vmrun(SB),NOSPLIT,$16-68
	// EFER.SVME first: CLGI and the other SVM instructions are #UD
	// without it. An assembly function is never moved to another
	// processor part-way.
	MOVL	$MSR_EFER, CX
	RDMSR
	BTL	$12, AX
	JCS	svme
	ORL	$(1<<12), AX
	WRMSR
svme:
	CLGI

	MOVL	$LAPIC_ID_REG, AX
	MOVL	(AX), BX
	SHRL	$24, BX

	LEAQ	·hsaveTable(SB), SI
	MOVQ	(SI)(BX*8), AX
	TESTQ	AX, AX
	JZ	nohsave
	MOVQ	AX, DX
	SHRQ	$32, DX
	MOVL	$MSR_VM_HSAVE_PA, CX
	WRMSR
	MOVQ	running+40(FP), SI
	LEAL	1(BX), AX
	XCHGL	AX, (SI)
	MOVQ	kicked+48(FP), SI
	CMPL	(SI), $0
	JNE	kickedout

	MOVQ	vmcbVA+8(FP), DI
	MOVQ	lastCPU+24(FP), SI
	MOVL	flush+32(FP), AX
	CMPL	(SI), BX
	JEQ	2(PC)
	MOVL	$1, AX
	MOVL	BX, (SI)
	MOVB	AX, const_VMCB_TLB_CONTROL(DI)

	LEAQ	·hostSaveTable(SB), SI
	MOVQ	(SI)(BX*8), AX
	MOVQ	AX, 8(SP)
	VMSAVE

	MOVQ	fx+56(FP), SI
	FXRSTOR64	(SI)

	MOVQ	gprs+16(FP), R15
	MOVQ	R15, 0(SP)
	MOVQ	vmcbPA+0(FP), AX
	VMLOAD
	MOVQ	8(R15), CX
	MOVQ	16(R15), DX
	MOVQ	24(R15), BX
	MOVQ	40(R15), BP
	MOVQ	48(R15), SI
	MOVQ	56(R15), DI
	MOVQ	64(R15), R8
	MOVQ	72(R15), R9
	MOVQ	80(R15), R10
	MOVQ	88(R15), R11
	MOVQ	96(R15), R12
	MOVQ	104(R15), R13
	MOVQ	112(R15), R14
	MOVQ	120(R15), R15
	VMRUN

	// #VMEXIT: GIF = 0, RAX = vmcbPA and RSP restored from the host
	// save area; the other registers hold the guest's.
	XCHGQ	R15, 0(SP)
	MOVQ	CX, 8(R15)
	MOVQ	DX, 16(R15)
	MOVQ	BX, 24(R15)
	MOVQ	BP, 40(R15)
	MOVQ	SI, 48(R15)
	MOVQ	DI, 56(R15)
	MOVQ	R8, 64(R15)
	MOVQ	R9, 72(R15)
	MOVQ	R10, 80(R15)
	MOVQ	R11, 88(R15)
	MOVQ	R12, 96(R15)
	MOVQ	R13, 104(R15)
	MOVQ	R14, 112(R15)
	MOVQ	0(SP), CX
	MOVQ	CX, 120(R15)
	VMSAVE

	MOVQ	fx+56(FP), SI
	FXSAVE64	(SI)
	LDMXCSR	·mxcsrDefault(SB)

	MOVQ	8(SP), AX
	VMLOAD
	MOVQ	running+40(FP), SI
	MOVL	$0, (SI)
	STGI
	MOVL	$const_ENTER_EXITED, status+64(FP)
	RET

kickedout:
	MOVQ	running+40(FP), SI
	MOVL	$0, (SI)
	STGI
	MOVL	$const_ENTER_KICKED, status+64(FP)
	RET

nohsave:
	STGI
	MOVL	$const_ENTER_NO_HSAVE, status+64(FP)
	RET

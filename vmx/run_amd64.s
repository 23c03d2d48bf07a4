//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// VMX instructions (SDM Vol. 3C, 31.3 "VMX Instructions"), encoded by hand
// with fixed operands:
//   VMXON, VMPTRLD, VMCLEAR m64: the 64-bit physical address at (RAX).
//   VMREAD: field encoding in RAX, value to RBX (0F 78, ModRM C3).
//   VMWRITE: field encoding in RAX, value from RBX (0F 79, ModRM C3).
//   INVEPT, INVVPID: type in RAX, 128-bit descriptor at (RBX).
// Each sets CF on VMfailInvalid and ZF on VMfailValid.
#define VMXON_RAX     BYTE $0xf3; BYTE $0x0f; BYTE $0xc7; BYTE $0x30
#define VMPTRLD_RAX   BYTE $0x0f; BYTE $0xc7; BYTE $0x30
#define VMCLEAR_RAX   BYTE $0x66; BYTE $0x0f; BYTE $0xc7; BYTE $0x30
#define VMLAUNCH      BYTE $0x0f; BYTE $0x01; BYTE $0xc2
#define VMREAD_AX_BX  BYTE $0x0f; BYTE $0x78; BYTE $0xc3
#define VMWRITE_AX_BX BYTE $0x0f; BYTE $0x79; BYTE $0xc3
#define INVEPT_AX_BX  BYTE $0x66; BYTE $0x0f; BYTE $0x38; BYTE $0x80; BYTE $0x03
#define INVVPID_AX_BX BYTE $0x66; BYTE $0x0f; BYTE $0x38; BYTE $0x81; BYTE $0x03

#define IA32_FEATURE_CONTROL 0x3a
#define IA32_PAT             0x277
#define IA32_EFER            0xc0000080
#define IA32_FS_BASE         0xc0000100
#define IA32_GS_BASE         0xc0000101
#define LAPIC_ID_REG         0xfee00020

// HOSTWRITE writes the value in BX to the host-state field f (clobbers AX).
#define HOSTWRITE(f) MOVQ $f, AX; VMWRITE_AX_BX

// RDMSR64 reads MSR m into BX (clobbers AX, CX, DX).
#define RDMSR64(m) MOVL $m, CX; RDMSR; SHLQ $32, DX; ORQ DX, AX; MOVQ AX, BX

// RESTORE_FLAGS restores the RFLAGS vmxrun saved (interrupts back on).
#define RESTORE_FLAGS MOVQ 8(SP), AX; PUSHQ AX; POPFQ

// func vmxrun(h *hwState) (status uint32)
//
// Runs the guest once with interrupts disabled throughout. Finds this
// processor's APIC ID (R12), enters VMX operation on it the first time
// (IA32_FEATURE_CONTROL, CR0/CR4 fixed bits, VMXON on its region from
// vmxonTable), publishes h.running = APIC ID + 1 and returns ENTER_KICKED
// if h.kicked is set (a kick after that sends an IPI that stays pending and
// makes the guest exit at once: external-interrupt exiting). Then loads the
// VMCS (VMCLEAR first when fresh, VMPTRLD), writes h.writes and the host
// state of this processor (control registers, FS/GS/TR/GDTR/IDTR bases,
// EFER, PAT), invalidates the VM's EPT and VPID mappings when the vCPU last
// ran elsewhere or h.flush is set, loads the guest's CR2 and FPU/SSE
// state, and calls vmxEnter. After the exit (or a failed VMLAUNCH) it saves
// the guest's FPU/SSE state and CR2, reads exitReads (or, on failure, the
// VM-instruction error and failReads) into h.v, and VMCLEARs the VMCS so
// that it is active on no processor when Go runs again.
// Locals: 0(SP) h, for vmxEnter/vmxExit; 8(SP) the caller's RFLAGS;
// 16(SP) SGDT/SIDT scratch. Clobbers every general register (the ABI
// wrapper restores g) and the vector registers.
TEXT ·vmxrun(SB),NOSPLIT,$32-12
	MOVQ	h+0(FP), DI
	MOVQ	DI, 0(SP)
	PUSHFQ
	POPQ	AX
	MOVQ	AX, 8(SP)
	CLI

	MOVL	$LAPIC_ID_REG, AX
	MOVL	(AX), R12
	SHRL	$24, R12

	// VMX operation on this processor, once.
	LEAQ	·vmxonDone(SB), SI
	CMPL	(SI)(R12*4), $0
	JNE	vmxon_ok
	LEAQ	·vmxonTable(SB), SI
	CMPQ	(SI)(R12*8), $0
	JEQ	no_vmxon
	MOVL	$IA32_FEATURE_CONTROL, CX
	RDMSR
	TESTL	$1, AX
	JNZ	fc_locked
	ORL	$5, AX			// lock, VMX outside SMX
	WRMSR
fc_locked:
	MOVQ	CR0, AX
	ORQ	·cr0Fixed0(SB), AX
	ANDQ	·cr0Fixed1(SB), AX
	MOVQ	AX, CR0
	MOVQ	CR4, AX
	ORQ	·cr4Fixed0(SB), AX
	ANDQ	·cr4Fixed1(SB), AX
	MOVQ	AX, CR4
	LEAQ	(SI)(R12*8), AX
	VMXON_RAX
	JCS	vmxon_fail
	JEQ	vmxon_fail
	LEAQ	·vmxonDone(SB), SI
	MOVL	$1, (SI)(R12*4)
vmxon_ok:

	// Publish the processor, then look for a kick.
	LEAL	1(R12), AX
	XCHGL	AX, hwState_running(DI)
	CMPL	hwState_kicked(DI), $0
	JNE	kicked

	CMPL	hwState_fresh(DI), $0
	JEQ	load
	LEAQ	hwState_vmcsPA(DI), AX
	VMCLEAR_RAX
	JCS	ptr_fail
	JEQ	ptr_fail
	MOVL	$0, hwState_fresh(DI)
load:
	LEAQ	hwState_vmcsPA(DI), AX
	VMPTRLD_RAX
	JCS	ptr_fail
	JEQ	ptr_fail

	// The fields Go changed.
	MOVQ	hwState_nwrites(DI), CX
	LEAQ	hwState_writes(DI), SI
	TESTQ	CX, CX
	JEQ	writes_done
write_loop:
	MOVQ	0(SI), AX
	MOVQ	8(SI), BX
	VMWRITE_AX_BX
	JCS	write_fail
	JEQ	write_fail
	ADDQ	$16, SI
	DECQ	CX
	JNZ	write_loop
writes_done:

	// This processor's host state.
	MOVQ	CR0, BX
	HOSTWRITE(const_HOST_CR0)
	MOVQ	CR3, BX
	HOSTWRITE(const_HOST_CR3)
	MOVQ	CR4, BX
	HOSTWRITE(const_HOST_CR4)
	RDMSR64(IA32_FS_BASE)
	HOSTWRITE(const_HOST_FS_BASE)
	RDMSR64(IA32_GS_BASE)
	HOSTWRITE(const_HOST_GS_BASE)
	RDMSR64(IA32_EFER)
	HOSTWRITE(const_HOST_IA32_EFER)
	RDMSR64(IA32_PAT)
	HOSTWRITE(const_HOST_IA32_PAT)
	MOVQ	$·hostTSS(SB), BX
	HOSTWRITE(const_HOST_TR_BASE)
	SGDT	16(SP)
	MOVQ	18(SP), BX
	HOSTWRITE(const_HOST_GDTR_BASE)
	SIDT	16(SP)
	MOVQ	18(SP), BX
	HOSTWRITE(const_HOST_IDTR_BASE)

	// Stale translations: the vCPU ran elsewhere last, or Go asked.
	MOVL	hwState_flush(DI), AX
	CMPL	hwState_lastCPU(DI), R12
	JEQ	2(PC)
	MOVL	$1, AX
	MOVL	R12, hwState_lastCPU(DI)
	TESTL	AX, AX
	JEQ	noflush
	MOVL	hwState_invept(DI), AX
	LEAQ	hwState_eptDesc(DI), BX
	INVEPT_AX_BX
	JCS	inv_fail
	JEQ	inv_fail
	MOVL	hwState_invvpid(DI), AX
	TESTL	AX, AX
	JEQ	noflush
	LEAQ	hwState_vpidDesc(DI), BX
	INVVPID_AX_BX
	JCS	inv_fail
	JEQ	inv_fail
noflush:

	MOVQ	hwState_cr2(DI), AX
	MOVQ	AX, CR2
	LEAQ	(hwState_fx+15)(DI), SI
	ANDQ	$~15, SI
	FXRSTOR64	(SI)

	CALL	·vmxEnter(SB)

	MOVQ	0(SP), DI
	CMPL	hwState_failed(DI), $0
	JNE	launch_fail
	LEAQ	(hwState_fx+15)(DI), SI
	ANDQ	$~15, SI
	FXSAVE64	(SI)
	LDMXCSR	·mxcsrDefault(SB)
	MOVQ	CR2, AX
	MOVQ	AX, hwState_cr2(DI)

	LEAQ	·exitReads(SB), SI
	MOVQ	$const_NUM_EXIT_READS, CX
read_loop:
	MOVQ	0(SI), AX
	VMREAD_AX_BX
	MOVQ	8(SI), DX
	MOVQ	BX, hwState_v(DI)(DX*8)
	ADDQ	$16, SI
	DECQ	CX
	JNZ	read_loop

	LEAQ	hwState_vmcsPA(DI), AX
	VMCLEAR_RAX
	MOVL	$0, hwState_running(DI)
	RESTORE_FLAGS
	MOVL	$const_ENTER_EXITED, status+8(FP)
	RET

launch_fail:
	LDMXCSR	·mxcsrDefault(SB)
	MOVQ	$const_VM_INSTRUCTION_ERROR, AX
	VMREAD_AX_BX
	MOVL	BX, hwState_insnErr(DI)
	LEAQ	·failReads(SB), SI
	MOVQ	$const_NUM_FAIL_READS, CX
fail_read_loop:
	MOVQ	0(SI), AX
	VMREAD_AX_BX
	MOVQ	8(SI), DX
	MOVQ	BX, hwState_v(DI)(DX*8)
	ADDQ	$16, SI
	DECQ	CX
	JNZ	fail_read_loop
	LEAQ	hwState_vmcsPA(DI), AX
	VMCLEAR_RAX
	MOVL	$0, hwState_running(DI)
	RESTORE_FLAGS
	MOVL	$const_ENTER_LAUNCH_FAILED, status+8(FP)
	RET

write_fail:
	MOVL	AX, hwState_failField(DI)
	MOVL	$const_ENTER_VMWRITE_FAILED, R13
	JMP	fail_clear

inv_fail:
	MOVL	$const_ENTER_INVEPT_FAILED, R13

fail_clear:
	MOVQ	$const_VM_INSTRUCTION_ERROR, AX
	VMREAD_AX_BX
	MOVL	BX, hwState_insnErr(DI)
	LEAQ	hwState_vmcsPA(DI), AX
	VMCLEAR_RAX
	MOVL	$0, hwState_running(DI)
	RESTORE_FLAGS
	MOVL	R13, status+8(FP)
	RET

ptr_fail:
	MOVL	$0, hwState_insnErr(DI)
	JNE	2(PC)			// ZF: VMfailValid, an error number exists
	CALL	·vmxReadError(SB)
	MOVL	$0, hwState_running(DI)
	RESTORE_FLAGS
	MOVL	$const_ENTER_VMPTRLD_FAILED, status+8(FP)
	RET

kicked:
	MOVL	$0, hwState_running(DI)
	RESTORE_FLAGS
	MOVL	$const_ENTER_KICKED, status+8(FP)
	RET

no_vmxon:
	RESTORE_FLAGS
	MOVL	$const_ENTER_NO_VMXON, status+8(FP)
	RET

vmxon_fail:
	RESTORE_FLAGS
	MOVL	$const_ENTER_VMXON_FAILED, status+8(FP)
	RET

// TEXT ·vmxReadError(SB): no Go prototype; vmxrun CALLs it with DI = h.
// Stores the VM-instruction error of the current VMCS in h.insnErr.
// Clobbers AX, BX.
TEXT ·vmxReadError(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$const_VM_INSTRUCTION_ERROR, AX
	VMREAD_AX_BX
	MOVL	BX, hwState_insnErr(DI)
	RET

// TEXT ·vmxEnter(SB): no Go prototype; vmxrun CALLs it with the current
// VMCS loaded and its h at 8(SP) (vmxrun's 0(SP)).
//
// Points HOST_RSP at its own return address and HOST_RIP at vmxExit, so
// that a VM exit "returns" from this call through vmxExit; loads the
// guest's general registers from h.gprs (RSP comes from the VMCS) and
// executes VMLAUNCH. If VMLAUNCH falls through (VMfailValid or
// VMfailInvalid), it sets h.failed and returns. Clobbers every general
// register.
TEXT ·vmxEnter(SB),NOSPLIT|NOFRAME,$0
	MOVQ	8(SP), R15
	MOVQ	$const_HOST_RSP, AX
	MOVQ	SP, BX
	VMWRITE_AX_BX
	MOVQ	$const_HOST_RIP, AX
	MOVQ	$·vmxExit(SB), BX
	VMWRITE_AX_BX
	MOVQ	(hwState_gprs+8)(R15), CX
	MOVQ	(hwState_gprs+16)(R15), DX
	MOVQ	(hwState_gprs+24)(R15), BX
	MOVQ	(hwState_gprs+40)(R15), BP
	MOVQ	(hwState_gprs+48)(R15), SI
	MOVQ	(hwState_gprs+56)(R15), DI
	MOVQ	(hwState_gprs+64)(R15), R8
	MOVQ	(hwState_gprs+72)(R15), R9
	MOVQ	(hwState_gprs+80)(R15), R10
	MOVQ	(hwState_gprs+88)(R15), R11
	MOVQ	(hwState_gprs+96)(R15), R12
	MOVQ	(hwState_gprs+104)(R15), R13
	MOVQ	(hwState_gprs+112)(R15), R14
	MOVQ	(hwState_gprs+0)(R15), AX
	MOVQ	(hwState_gprs+120)(R15), R15
	VMLAUNCH
	MOVQ	8(SP), DI
	MOVL	$1, hwState_failed(DI)
	RET

// TEXT ·vmxExit(SB): no Go prototype; the processor jumps here at VM exit
// (HOST_RIP) with RSP = HOST_RSP, which points at vmxEnter's return
// address into vmxrun, interrupts disabled, and the guest's general
// registers (but RSP) still in the registers.
//
// Saves them to h.gprs (h is vmxrun's 0(SP), 8 bytes above the return
// address; R15 goes through the stack), clears h.failed and returns into
// vmxrun.
TEXT ·vmxExit(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	R15
	MOVQ	16(SP), R15
	MOVQ	AX, (hwState_gprs+0)(R15)
	MOVQ	CX, (hwState_gprs+8)(R15)
	MOVQ	DX, (hwState_gprs+16)(R15)
	MOVQ	BX, (hwState_gprs+24)(R15)
	MOVQ	BP, (hwState_gprs+40)(R15)
	MOVQ	SI, (hwState_gprs+48)(R15)
	MOVQ	DI, (hwState_gprs+56)(R15)
	MOVQ	R8, (hwState_gprs+64)(R15)
	MOVQ	R9, (hwState_gprs+72)(R15)
	MOVQ	R10, (hwState_gprs+80)(R15)
	MOVQ	R11, (hwState_gprs+88)(R15)
	MOVQ	R12, (hwState_gprs+96)(R15)
	MOVQ	R13, (hwState_gprs+104)(R15)
	MOVQ	R14, (hwState_gprs+112)(R15)
	POPQ	AX
	MOVQ	AX, (hwState_gprs+120)(R15)
	MOVL	$0, hwState_failed(R15)
	RET

//go:build tamago

#include "go_asm.h"
#include "textflag.h"

// TEXT ·apEntry(SB): no Go prototype; the trampoline jumps here.
//
// In: 64-bit mode on the trampoline's GDT, paging on the shared tables,
// interrupts disabled, RSP = top of this AP's boot stack, RDI = &cpuSlots[i].
// Loads the BSP's GDT and IDT, enables SSE and the local APIC, records its
// identity in the slot, publishes started = 1, then waits (HLT, woken by
// VECTOR_WAKE) until goos.Task posts a task, and jumps to it with RSP and
// R14 (g) from the slot. Never returns. Uses AX, BX, CX, DX, R12.
TEXT ·apEntry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	DI, R12

	MOVQ	$(const_HANDOFF_BASE+const_HANDOFF_GDTR), AX
	LGDT	(AX)
	MOVQ	$(const_HANDOFF_BASE+const_HANDOFF_IDTR), AX
	LIDT	(AX)
	MOVL	$const_SEL_DATA, AX
	MOVW	AX, DS
	MOVW	AX, ES
	MOVW	AX, SS
	MOVW	AX, FS
	MOVW	AX, GS

	// CR0.EM=0, CR0.MP=1, CR4.OSFXSR|OSXMMEXCPT (library,
	// amd64/features.s). Clobbers AX, BX.
	CALL	sse_enable(SB)

	// Local APIC software enable (SVR), then our identity.
	MOVL	$const_LAPIC_BASE, BX
	MOVL	$(const_SVR_APIC_ENABLE|const_VECTOR_SPURIOUS), AX
	MOVL	AX, const_LAPIC_SVR(BX)
	MOVL	const_LAPIC_ID(BX), AX
	SHRL	$24, AX
	MOVL	AX, cpuSlot_apicID(R12)
	MOVL	$1, AX
	MOVL	$0, CX
	CPUID
	MOVL	CX, cpuSlot_cpuid1ECX(R12)
	MOVL	DX, cpuSlot_cpuid1EDX(R12)
	MOVL	$0x80000001, AX
	MOVL	$0, CX
	CPUID
	MOVL	CX, cpuSlot_cpuidExtECX(R12)

	// The time-slice timer, if the BSP started one (timer.go).
	MOVL	·sliceCount(SB), AX
	TESTL	AX, AX
	JZ	notimer
	MOVL	$const_LAPIC_BASE, BX
	MOVL	$const_TIMER_DIVIDE_16, CX
	MOVL	CX, const_LAPIC_TIMER_DIVIDE(BX)
	MOVL	$(const_LVT_TIMER_PERIODIC|const_VECTOR_WAKE), CX
	MOVL	CX, const_LAPIC_LVT_TIMER(BX)
	MOVL	AX, const_LAPIC_TIMER_INITIAL(BX)
notimer:

	// Stores are not reordered with older stores (Intel SDM Vol. 3A,
	// 9.2.2): the BSP sees the fields above once it sees started.
	MOVL	$1, cpuSlot_started(R12)

wait:
	CLI
	MOVQ	cpuSlot_taskFn(R12), AX
	TESTQ	AX, AX
	JNZ	run
	// STI's interrupt shadow makes STI;HLT atomic: a wake IPI sent
	// after the check above ends the HLT.
	STI
	HLT
	JMP	wait
run:
	MOVQ	cpuSlot_taskSP(R12), SP
	MOVQ	cpuSlot_taskG(R12), R14
	STI
	JMP	AX

// func apEntryPC() uintptr
// Returns the address of apEntry for the trampoline's data area.
TEXT ·apEntryPC(SB),NOSPLIT,$0-8
	MOVQ	$·apEntry(SB), AX
	MOVQ	AX, ret+0(FP)
	RET

// func haltUntilWoken(wake *uint32)
// Halts until an interrupt arrives, unless *wake is already set; clears
// *wake. Interrupts are disabled during the check, so a wake IPI sent
// after it ends the HLT (STI's interrupt shadow covers the HLT).
TEXT ·haltUntilWoken(SB),NOSPLIT,$0-8
	MOVQ	wake+0(FP), BX
	CLI
	CMPL	(BX), $0
	JNE	woken
	STI
	HLT
woken:
	MOVL	$0, (BX)
	STI
	RET

// TEXT ·wakeHandler(SB): interrupt gate for VECTOR_WAKE (and any other
// vector Keel does not use yet): signals end of interrupt to the local APIC
// and returns. The IPI has done its work by ending a HLT.
TEXT ·wakeHandler(SB),NOSPLIT|NOFRAME,$0
	PUSHQ	AX
	MOVL	$(const_LAPIC_BASE+const_LAPIC_EOI), AX
	MOVL	$0, (AX)
	POPQ	AX
	IRETQ

// TEXT ·spuriousHandler(SB): interrupt gate for VECTOR_SPURIOUS; a
// spurious interrupt takes no EOI (Intel SDM Vol. 3A, 11.9).
TEXT ·spuriousHandler(SB),NOSPLIT|NOFRAME,$0
	IRETQ

// func handlerPCs() (wake, spurious uintptr)
TEXT ·handlerPCs(SB),NOSPLIT,$0-16
	MOVQ	$·wakeHandler(SB), AX
	MOVQ	AX, wake+0(FP)
	MOVQ	$·spuriousHandler(SB), AX
	MOVQ	AX, spurious+8(FP)
	RET

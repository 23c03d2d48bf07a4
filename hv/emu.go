package hv

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

// InstructionEmulator emulates the guest instructions of one vCPU that
// touch device memory. The core creates one per vCPU through the VM's
// NewEmulatorFunc, bound to that vCPU's EmuCPU, and calls it when a guest
// access to a guest-physical address outside RAM exits (ExitPageFault, or
// ExitMMIO with NeedsDecode):
// the emulator decodes the instruction at CS:RIP (translating through the
// guest's page tables, or using EmuCPU.Insn when the hardware supplied the
// bytes), performs its memory accesses through EmuCPU (device accesses on
// the faulting page through MMIO, others through ReadPhys/WritePhys),
// updates the registers and RFLAGS in *EmuCPU.Regs, and advances RIP.
//
// hv/x86emu implements it (through a small adapter from its own Platform
// interface onto EmuCPU); tests use a fake. Methods are called on the
// vCPU's goroutine only (an emulator may keep per-vCPU caches without
// locks) and must not allocate on the common paths.
//
// Error contract, for both methods: nil means done (the core writes Regs
// back and resumes the guest); a *GuestException means "deliver this
// exception" (the core writes Regs back as left — RIP at the faulting
// instruction, string registers at the faulting iteration — and injects
// the event); any other error stops the VM with the error in its report
// (say what instruction and why: the operator reads it).
type InstructionEmulator interface {
	// EmulateMMIO emulates the instruction at the guest's RIP, whose
	// memory operand caused an exit at gpa.
	EmulateMMIO(gpa addr.GPA) error
	// InsnLength decodes the instruction at the guest's RIP and returns
	// its length, prefixes included. The core calls it to complete an
	// intercepted instruction when the backend could not report the next
	// RIP (Exit.NextRIP 0: SVM without NRIP-save).
	InsnLength() (int, error)
	// TranslateGVA translates the guest linear address gva for an access
	// of kind acc through the guest's current paging mode (CR0.PG=0:
	// identity; 32-bit, PAE, 4- and 5-level paging), checking the
	// permissions a CPL-arch.CPL access needs. The core uses it for
	// INS/OUTS buffers. A page fault comes back as a *GuestException
	// carrying the #PF event (with FaultAddr set).
	TranslateGVA(gva addr.GVA, acc arch.Access) (addr.GPA, error)
}

// NewEmulatorFunc creates the instruction emulator of one vCPU, bound to
// cpu for its whole life. The core calls it once per vCPU in NewVM.
type NewEmulatorFunc func(cpu EmuCPU) InstructionEmulator

// EmuCPU is the vCPU as its instruction emulator sees it. Its methods may
// only be called during EmulateMMIO or TranslateGVA, and what they return
// is valid only until that call returns; none of them allocates.
type EmuCPU interface {
	// Regs returns the vCPU's general registers, RIP and RFLAGS, loaded
	// at the exit. The emulator reads and modifies them in place.
	Regs() *arch.Regs
	// Sregs returns the system registers (segments, CR0/CR3/CR4, EFER,
	// PDPTEs), read on first use. They are read-only for the emulator.
	Sregs() *arch.Sregs
	// Insn returns the instruction bytes the hardware supplied with the
	// exit (AMD decode assists), or an empty slice: then the emulator
	// fetches them at CS:RIP itself.
	Insn() []byte
	// MaxPhysAddr returns the guest's physical-address width in bits
	// (CPUID 8000_0008h EAX[7:0]): paging-entry bits at or above it are
	// reserved.
	MaxPhysAddr() uint8
	// ReadPhys reads guest-physical memory at gpa: guest RAM, or else the
	// MMIO bus (len(p) must then be 1, 2, 4 or 8). It never panics and
	// returns an error naming the address when neither can serve it.
	ReadPhys(gpa addr.GPA, p []byte) error
	// WritePhys writes guest-physical memory at gpa, like ReadPhys.
	WritePhys(gpa addr.GPA, p []byte) error
	// MMIO performs a device access of len(data) bytes (1, 2, 4 or 8),
	// little-endian, on the VM's MMIO bus: a read fills data, a write
	// sends it.
	MMIO(gpa addr.GPA, data []byte, write bool) error
}

// GuestException is an error that asks the core to deliver an exception to
// the guest instead of stopping the VM.
type GuestException struct {
	// Event is the exception to inject (arch.Exception, arch.PageFault).
	Event arch.Event
	// Reason says why, for logs.
	Reason string
}

// Error describes the exception.
func (e *GuestException) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("guest exception %s", e.Event)
	}
	return fmt.Sprintf("guest exception %s: %s", e.Event, e.Reason)
}

package hv

import (
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// Backend is a hardware virtualization backend: svm/ (AMD-V) or vmx/
// (Intel VT-x). The kernel picks one at boot from CPUID and passes it to
// every NewVM; nothing above the backend names VMCB or VMCS fields.
//
// Threading rules, for every Backend, BackendVM and BackendVCPU:
//
//   - Backend.NewVM, BackendVM.MapMemory, BackendVM.NewVCPU and the Destroy
//     methods are called by the VM's owner (never concurrently for one VM),
//     and Destroy only once no vCPU is inside Run.
//   - BackendVCPU.Run, GetRegs, SetRegs, GetSregs, SetSregs, Inject and
//     RequestInterruptWindow are called from one goroutine at a time: the
//     vCPU's goroutine while it runs, or the VM's owner while the vCPU is
//     quiescent (VM created, paused, stopped). Never concurrently with Run.
//   - BackendVCPU.Kick may be called from any goroutine at any time,
//     including concurrently with Run and after Destroy; it must not block
//     or allocate.
//   - Run may be called on a different host CPU than the previous Run: the
//     Go scheduler moves a goroutine between CPUs at any point where it can
//     be preempted. The backend detects the move inside the non-preemptible
//     section that enters the guest (with interrupts disabled) and makes
//     its per-CPU state valid there — SVM: this CPU's host save area and a
//     TLB flush for the ASID; VMX: this CPU's host-state fields, a flush
//     of the VPID and EPT translations, and a VMCS that is active on no
//     other CPU (Keel's vmx/ clears it with VMCLEAR before every Run
//     returns, so it never stays active anywhere; a backend that keeps it
//     loaded must VMCLEAR it on the CPU it was last active on, e.g. by
//     IPI, before VMPTRLD here).
//   - A guest that never exits must still give its CPU back: the backend
//     arranges a host timer interrupt (or the VMX preemption timer) to
//     force an exit, reported as ExitInterrupt, at the end of each slice.
type Backend interface {
	// Name returns the backend's short name, "svm" or "vmx", shown in
	// the banner and `vm list`.
	Name() string
	// NewVM creates the backend's state for one VM: nested page tables
	// (empty until MapMemory), an ASID/VPID, intercept bitmaps.
	NewVM(cfg BackendVMConfig) (BackendVM, error)
}

// BackendVMConfig is what a backend needs to create a VM.
type BackendVMConfig struct {
	// Name is the VM's name, for error messages.
	Name string
	// VCPUs is the number of vCPUs NewVCPU will be asked for.
	VCPUs int
	// Frames is the allocator for hardware structures (VMCB/VMCS, NPT/EPT
	// tables, permission maps). The backend allocates with Owner, so
	// that they count against the VM, and frees everything in Destroy.
	Frames *mem.Frames
	// Owner is the accounting owner for the VM's hardware structures.
	Owner mem.Owner
	// PassthroughMSRs are the MSRs the guest may access without exits
	// (the MSR policy's ActionPassthrough entries). The backend switches
	// them with the guest state and intercepts every other MSR.
	PassthroughMSRs []uint32
}

// BackendVM is a backend's per-VM state.
type BackendVM interface {
	// MapMemory makes the guest RAM regions visible to the guest: it
	// builds the nested page tables (NPT/EPT) mapping each region's GPA
	// range to its HPA range, read/write/execute, write-back, with the
	// largest pages both addresses' alignment allows. Everything else
	// stays unmapped, so guest accesses there exit as ExitPageFault.
	// Calling it again replaces the previous map.
	MapMemory(regions []mem.Region) error
	// NewVCPU creates vCPU id (0 to VCPUs-1; 0 is the bootstrap
	// processor). Its register state is undefined until the core sets it.
	NewVCPU(id int) (BackendVCPU, error)
	// Destroy frees the VM's hardware state. All vCPUs have been
	// destroyed before.
	Destroy() error
}

// BackendVCPU is a backend's per-vCPU state (one VMCB or VMCS).
//
// Intercepts are fixed by the backend: CPUID, HLT, VMMCALL/VMCALL, all
// port I/O, every MSR except the passthrough list, INIT, SHUTDOWN/triple
// fault, the virtualization instructions (refused to the guest with #UD),
// external interrupts and NMIs (handed to the host, reported as
// ExitInterrupt / ExitNMI), and nested page faults.
type BackendVCPU interface {
	// Run enters the guest and returns at the next exit the backend does
	// not handle itself, described as an arch.Exit. It does not advance
	// RIP past intercepted instructions: the core does that through
	// SetRegs using Exit.NextRIP. Before entering it delivers the event
	// passed to Inject, if any, and re-delivers an event whose delivery an
	// exit interrupted. An error means the backend itself failed (not the
	// guest); the core marks the VM crashed.
	Run() (arch.Exit, error)
	// GetRegs stores the general registers, RIP and RFLAGS in r.
	GetRegs(r *arch.Regs) error
	// SetRegs loads the general registers, RIP and RFLAGS from r. A RIP
	// different from the last exit's means the core completed the
	// intercepted instruction: the backend drops the interrupt shadow
	// (blocking by STI or MOV SS) that covered it.
	SetRegs(r *arch.Regs) error
	// GetSregs stores the segment, descriptor-table and control registers,
	// EFER and APIC base in s.
	GetSregs(s *arch.Sregs) error
	// SetSregs loads them from s. The backend keeps its own bits (EFER.SVME
	// on AMD, the CR0/CR4 fixed bits on Intel) out of the guest's view and
	// derives EFER.LMA from CR0.PG and EFER.LME as the hardware would.
	SetSregs(s *arch.Sregs) error
	// Inject queues ev for delivery on the next Run. One event per entry:
	// it fails if an event is already queued or being re-delivered.
	Inject(ev arch.Event) error
	// RequestInterruptWindow asks (on=true) that Run return
	// ExitInterruptWindow as soon as the guest can take an external
	// interrupt (RFLAGS.IF=1, no interrupt shadow) or, if an NMI is
	// blocked, an NMI (after its IRET). on=false cancels the request.
	RequestInterruptWindow(on bool)
	// Kick makes the current Run return ExitInterrupt promptly, or, if no
	// Run is in progress, makes the next Run return ExitInterrupt
	// immediately (the kick is sticky until consumed). Any goroutine may
	// call it; it never blocks or allocates.
	Kick()
	// Destroy frees the vCPU's hardware state.
	Destroy() error
}

// Package hv is Keel's arch-neutral hypervisor core: VM and vCPU objects
// with their lifecycle, the vCPU run loop and its single exit-dispatch
// function, and the two interfaces that plug hardware and instruction
// emulation in — Backend (backend.go), implemented by svm/ and vmx/, and
// InstructionEmulator (emu.go), implemented by hv/x86emu.
//
// A VM owns its guest memory (hv/mem), port and MMIO buses (hv/bus), CPUID
// and MSR policies (hv/cpuid, hv/msr), a hypercall table (hv/hypercall) and
// its vCPUs, each with an interrupt model (hv/irq). Its lifecycle:
//
//	created --Start--> running <--Pause/Resume--> paused
//	created, running, paused --Stop--> stopped
//	running, paused --(guest or backend failure)--> crashed
//
// stopped and crashed are final; Destroy then returns every frame. A crash
// records a Report with the reason, the exit and the vCPU's registers.
//
// Each vCPU runs on its own goroutine (VM.Start, or VCPU.Run): deliver a
// pending interrupt or request an interrupt window, enter the guest through
// the backend, count the exit, dispatch it in VCPU.handleExit — CPUID and
// MSR to their policies, port I/O to the port bus (string I/O through guest
// memory), MMIO through the instruction emulator to the MMIO bus, HLT to a
// park until an interrupt is pending, hypercalls to the table, triple
// faults to a crash, accesses outside RAM and every device to the VM's
// OutsideRAM policy, host interrupts to runtime.Gosched. The hot paths
// (CPUID, MSR, port I/O, MMIO dispatch, hypercalls) allocate nothing.
//
// The package is pure Go without unsafe and host-testable: it runs under
// plain `go test`, with a fake backend.
package hv

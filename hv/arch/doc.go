// Package arch is the vocabulary the arch-neutral hypervisor core shares
// with the hardware backends (svm/, vmx/): the one common exit type, guest
// register state, events to inject, and the x86-64 architectural constants
// (control-register, EFER and RFLAGS bits, exception vectors) both sides
// need.
//
// A backend decodes its hardware exit (an SVM EXITCODE with EXITINFO1/2, a
// VMX basic exit reason with its qualification) into an Exit and converts
// its saved guest state to and from Regs and Sregs. Nothing in this package
// names a VMCB or VMCS field; vendor-only details stay in the backend and
// reach the core at most as Exit.Code and Exit.Message for diagnostics.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package arch

package x86emu

import (
	"fmt"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Fault is an architectural exception the instruction raised while being
// emulated: a page fault on a guest page-table walk, or #GP/#SS for a
// non-canonical address. Registers are left as the processor would leave
// them (RIP at the instruction, string registers at the faulting
// iteration), so the core can inject the exception and resume the guest.
type Fault struct {
	// Vector is the exception vector (EXC_PF, EXC_GP, EXC_SS).
	Vector uint8
	// ErrorCode is the error code to push (PF_* bits for #PF, 0 otherwise).
	ErrorCode uint32
	// Addr is the faulting linear address for #PF (the value for CR2).
	Addr uint64
	// Access is the kind of access that faulted.
	Access Access
}

// Error describes the exception.
func (f *Fault) Error() string {
	switch f.Vector {
	case EXC_PF:
		return fmt.Sprintf("x86emu: guest page fault (#PF) on %s at linear %#x, error code %#x (%s)",
			f.Access, f.Addr, f.ErrorCode, pfCodeString(f.ErrorCode))
	case EXC_GP:
		return fmt.Sprintf("x86emu: general protection fault (#GP(%#x)) on %s at linear %#x: address is not canonical",
			f.ErrorCode, f.Access, f.Addr)
	case EXC_SS:
		return fmt.Sprintf("x86emu: stack fault (#SS(%#x)) on %s at linear %#x: address is not canonical",
			f.ErrorCode, f.Access, f.Addr)
	}
	return fmt.Sprintf("x86emu: exception %d (error code %#x) on %s at %#x", f.Vector, f.ErrorCode, f.Access, f.Addr)
}

func pfCodeString(c uint32) string {
	var parts []string
	if c&PF_P != 0 {
		parts = append(parts, "protection")
	} else {
		parts = append(parts, "not present")
	}
	if c&PF_WR != 0 {
		parts = append(parts, "write")
	}
	if c&PF_US != 0 {
		parts = append(parts, "user")
	}
	if c&PF_RSVD != 0 {
		parts = append(parts, "reserved bit")
	}
	if c&PF_ID != 0 {
		parts = append(parts, "fetch")
	}
	return strings.Join(parts, ", ")
}

// UnsupportedError reports an instruction the emulator cannot decode or does
// not emulate. The core should stop the VM and print it: it names the
// mnemonic and the bytes so the missing case can be added.
type UnsupportedError struct {
	// RIP is the guest instruction pointer of the instruction.
	RIP uint64
	// Mode is the decoding mode in bits (16, 32 or 64).
	Mode int
	// Op is the decoded mnemonic, or 0 when the bytes did not decode (or
	// are VEX-encoded, which x86asm cannot name).
	Op x86asm.Op
	// Bytes holds the instruction bytes; N of them are valid (the decoded
	// length, or every fetched byte when decoding failed).
	Bytes [15]byte
	N     int
	// Reason says what is missing.
	Reason string
}

// Error names the instruction, its bytes and the reason.
func (u *UnsupportedError) Error() string {
	name := "instruction"
	if u.Op != 0 {
		name = u.Op.String()
	}
	n := u.N
	if n < 0 || n > len(u.Bytes) {
		n = len(u.Bytes)
	}
	return fmt.Sprintf("x86emu: cannot emulate %s at rip %#x (%d-bit mode, bytes % x): %s; add it to hv/x86emu or keep the guest from touching MMIO with it",
		name, u.RIP, u.Mode, u.Bytes[:n], u.Reason)
}

// MismatchError reports that the decoded instruction does not access the
// faulting guest-physical address: the instruction bytes changed after the
// exit (another vCPU rewrote them), the exit was not caused by the
// instruction's data access (event delivery, a page-table walk touching
// MMIO, a fetch from MMIO), or the guest tables changed. The core should
// stop the VM with the report, or retry once after re-entering the guest.
type MismatchError struct {
	// GPA is the faulting guest-physical address the caller passed.
	GPA uint64
	// Got is the guest-physical address the operand translated to.
	Got uint64
	// Linear is the operand's linear address.
	Linear uint64
	// Op is the decoded mnemonic and RIP the instruction pointer.
	Op  x86asm.Op
	RIP uint64
}

// Error explains the mismatch.
func (m *MismatchError) Error() string {
	return fmt.Sprintf("x86emu: %s at rip %#x accesses linear %#x = guest physical %#x, not the faulting address %#x; the exit was not caused by this instruction's memory operand",
		m.Op, m.RIP, m.Linear, m.Got, m.GPA)
}

// unsupported builds an UnsupportedError for the current instruction.
func (e *Emulator) unsupported(reason string) error {
	u := &UnsupportedError{RIP: e.rip, Mode: e.mode, Reason: reason, N: e.codeLen}
	copy(u.Bytes[:], e.code[:e.codeLen])
	if e.inst != nil {
		u.Op = e.inst.Op
		if e.inst.Len > 0 && e.inst.Len <= e.codeLen {
			u.N = e.inst.Len
		}
	}
	return u
}

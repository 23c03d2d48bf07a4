//go:build tamago

package pc

import (
	"github.com/keel-hv/keel/kernel/pc/cpuid"
)

// Instructions without a Go equivalent, defined in cpu_amd64.s. All are
// leaf functions that never grow the stack, so the nosplit console, clock
// and exit paths can call them.

// cpuidInsn executes CPUID with EAX = leaf and ECX = subleaf.
func cpuidInsn(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// rdtsc returns the time-stamp counter.
func rdtsc() uint64

// inb reads a byte from an I/O port.
func inb(port uint16) uint8

// outb writes a byte to an I/O port.
func outb(port uint16, val uint8)

// haltForever disables interrupts and halts the processor; it does not
// return.
func haltForever()

// execCPUID adapts the CPUID instruction to cpuid.Func.
func execCPUID(leaf, subleaf uint32) cpuid.Regs {
	a, b, c, d := cpuidInsn(leaf, subleaf)
	return cpuid.Regs{EAX: a, EBX: b, ECX: c, EDX: d}
}

// inw and outw access 16-bit I/O ports (cpu_amd64.s).
func inw(port uint16) uint16
func outw(port uint16, val uint16)

// rdmsr reads a model-specific register of this processor (cpu_amd64.s).
func rdmsr(msr uint32) uint64

// ReadMSR reads a model-specific register of the processor running the
// caller.
func ReadMSR(msr uint32) uint64 { return rdmsr(msr) }

// CPUID executes CPUID on the processor running the caller.
func CPUID(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32) { return cpuidInsn(leaf, subleaf) }

// Kick sends the wake IPI to the processor with APIC ID id: a guest
// running there exits.
func Kick(id uint32) { sendIPI(id, ICR_DELIVERY_FIXED|VECTOR_WAKE) }

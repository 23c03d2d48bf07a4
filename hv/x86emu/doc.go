// Package x86emu emulates the x86 instructions that guests execute on device
// memory (MMIO): when a guest access to a guest-physical page that is not
// backed by RAM exits to Keel (AMD nested page fault, Intel EPT violation),
// the core hands the faulting guest-physical address to Emulate, which
//
//  1. picks the decoding mode (16/32/64-bit) from CR0.PE, EFER.LMA, CS.L,
//     CS.D and RFLAGS.VM;
//  2. fetches up to 15 instruction bytes at CS:RIP, translating the linear
//     address through the guest's own page tables (no paging, 32-bit paging
//     with 4 KiB and 4 MiB pages, PAE, 4-level and 5-level paging), across a
//     page boundary when the instruction straddles one;
//  3. decodes them with golang.org/x/arch/x86/x86asm (with a small per-vCPU
//     decode cache so that the hot MOV path allocates nothing);
//  4. computes the memory operand's effective and linear address, walks the
//     guest page tables and checks that it lands on the faulting address;
//  5. performs the access through Platform.MMIO, with the register, RFLAGS
//     and RIP updates the instruction architecturally makes.
//
// The emulated instructions are MOV (all forms, including A0-A3 moffs),
// MOVZX, MOVSX, MOVSXD, STOS, LODS and MOVS with or without REP, ADD, OR,
// ADC, SBB, AND, SUB, XOR, CMP, TEST, INC, DEC, NEG, NOT, XCHG and BT, BTS,
// BTR, BTC. Anything else returns an *UnsupportedError naming the mnemonic
// and the instruction bytes; guest page faults and other architectural
// exceptions come back as *Fault so that the core can inject them.
//
// Everything here is guest-controlled input: the package never panics on
// it, bounds its work (at most MaxRepIterations string iterations per call)
// and answers with errors that say what was wrong.
//
// The package is pure Go without unsafe and host-testable: it runs under
// plain `go test` on the host and has a fuzz target (FuzzEmulate). It knows
// nothing of SVM or VMX; a backend reaches it through the small Platform
// interface (see platform.go), usually by a thin adapter in the core.
package x86emu

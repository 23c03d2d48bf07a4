package x86emu

// Platform is what the emulator needs from a vCPU and its VM. The core wraps
// its vCPU in a thin adapter that implements it; tests use a fake. Every
// method is called on the vCPU's own goroutine during Emulate, and none of
// them is expected to allocate.
//
// Registers are read on demand and written only when the instruction
// architecturally writes them, so an adapter may read and write the backend's
// state (VMCB, VMCS, saved GPRs) directly.
type Platform interface {
	// GPR returns general-purpose register n, where n is the register's
	// number in the instruction encoding (RAX=0, RCX=1, RDX=2, RBX=3, RSP=4,
	// RBP=5, RSI=6, RDI=7, R8..R15=8..15; see the RAX..R15 constants).
	GPR(n int) uint64
	// SetGPR sets general-purpose register n to the full 64-bit value v; the
	// emulator has already merged partial-width writes.
	SetGPR(n int, v uint64)
	// RIP returns the guest's instruction pointer (the offset within CS).
	RIP() uint64
	// SetRIP sets the guest's instruction pointer.
	SetRIP(v uint64)
	// RFLAGS returns the guest's RFLAGS.
	RFLAGS() uint64
	// SetRFLAGS sets the guest's RFLAGS; the emulator changes only the
	// status flags (RFLAGS_ARITH) of the value RFLAGS returned.
	SetRFLAGS(v uint64)
	// Segment returns the hidden (cached) state of segment register s.
	// In 64-bit mode only the FS and GS bases are used; the adapter fills
	// them from the FS.base and GS.base the backend keeps.
	Segment(s SegReg) Segment
	// SysRegs returns the control state that selects the decoding mode and
	// the paging mode.
	SysRegs() SysRegs

	// ReadPhys reads len(data) bytes of guest physical memory at gpa. It
	// must bounds-check and return an error (never panic) when the range is
	// not guest RAM. The emulator uses it for page-table entries, for
	// instruction bytes and for the operand of a string instruction that is
	// not on the faulting page (the RAM side of MOVS between RAM and MMIO).
	// An adapter may route a range that is not RAM to its MMIO bus instead.
	ReadPhys(gpa uint64, data []byte) error
	// WritePhys writes data to guest physical memory at gpa, with the same
	// rules as ReadPhys (the RAM side of MOVS from MMIO to RAM).
	WritePhys(gpa uint64, data []byte) error
	// MMIO performs a device access of len(data) bytes (1 to 8) at gpa:
	// a read fills data, a write sends it. Every access the instruction
	// makes to the faulting 4 KiB page goes here. Values are little endian.
	MMIO(gpa uint64, data []byte, write bool) error
}

// AtomicPhys is an optional Platform extension. When the Platform also
// implements it, the emulator sets the accessed and dirty flags of the guest
// paging-structure entries it walks for data accesses (as the processor does,
// Intel SDM Vol. 3A, 4.8 "Accessed and Dirty Flags"), atomically so that a
// concurrent change by another vCPU is never overwritten. Without it, the
// flags are left as they are; see the package README for when that matters.
type AtomicPhys interface {
	// CompareAndSwapPhys atomically replaces the size-byte (4 or 8) little
	// endian value at gpa with new if it equals old, and reports whether it
	// did. It returns an error if gpa is not guest RAM.
	CompareAndSwapPhys(gpa uint64, size int, old, new uint64) (bool, error)
}

// InsnSource is an optional Platform extension for hardware that hands the
// instruction bytes over with the exit (AMD decode assists: the VMCB's
// "guest instruction bytes", AMD APM Vol. 2, 15.8.4 "Nested and intercepted
// #PF"). When Insn returns bytes, the emulator decodes them instead of
// fetching at CS:RIP; if they are too few for the instruction it fetches
// after all.
type InsnSource interface {
	// Insn returns the bytes at CS:RIP the hardware fetched, or nil.
	Insn() []byte
}

// General-purpose register numbers as encoded in ModRM/SIB/REX (Intel SDM
// Vol. 2A, 2.1.5 Table 2-2 and 2.2.1.2 "More on REX Prefix Fields").
const (
	RAX = iota // accumulator
	RCX        // count register (REP count)
	RDX        // data register
	RBX        // base register
	RSP        // stack pointer
	RBP        // frame pointer
	RSI        // string source index
	RDI        // string destination index
	R8         // extended register 8
	R9         // extended register 9
	R10        // extended register 10
	R11        // extended register 11
	R12        // extended register 12
	R13        // extended register 13
	R14        // extended register 14
	R15        // extended register 15

	// NumGPR is the number of general-purpose registers in 64-bit mode.
	NumGPR
)

// SegReg names a segment register, numbered as in the Sreg field of the
// instruction encoding (Intel SDM Vol. 2A, 3.1.1.1, "Sreg").
type SegReg uint8

// Segment registers.
const (
	SegES SegReg = iota // ES: destination of string instructions
	SegCS               // CS: code segment
	SegSS               // SS: stack segment, default for rSP/rBP-based addresses
	SegDS               // DS: default data segment
	SegFS               // FS
	SegGS               // GS

	// NumSegReg is the number of segment registers.
	NumSegReg
)

// String returns the register's assembler name.
func (s SegReg) String() string {
	switch s {
	case SegES:
		return "ES"
	case SegCS:
		return "CS"
	case SegSS:
		return "SS"
	case SegDS:
		return "DS"
	case SegFS:
		return "FS"
	case SegGS:
		return "GS"
	}
	return "Seg?"
}

// Segment is the hidden part of a segment register.
type Segment struct {
	// Base is the segment base. In real mode it is normally Selector*16;
	// the emulator uses Base as given, so "unreal mode" bases work.
	Base uint64
	// Limit is the segment limit in bytes (already scaled by G). The
	// emulator does not check limits (see the package README).
	Limit uint32
	// Selector is the visible selector.
	Selector uint16
	// Attr holds the descriptor attributes in the VMCB layout (SEG_ATTR_*).
	Attr uint16
}

// L reports the CS.L bit (64-bit code segment).
func (s Segment) L() bool { return s.Attr&SEG_ATTR_L != 0 }

// DB reports the D/B bit: CS.D (32-bit default operand and address size) or
// SS.B (32-bit stack pointer).
func (s Segment) DB() bool { return s.Attr&SEG_ATTR_DB != 0 }

// DPL returns the descriptor privilege level.
func (s Segment) DPL() uint8 { return uint8(s.Attr&SEG_ATTR_DPL) >> SEG_ATTR_DPL_SHIFT }

// SysRegs is the guest control state the emulator needs to choose the
// decoding mode and to walk the guest's page tables.
type SysRegs struct {
	// CR0, CR3 and CR4 are the guest's control registers (CR0.PE/PG/WP,
	// the page-table root, CR4.PSE/PAE/LA57/SMEP/SMAP are used).
	CR0, CR3, CR4 uint64
	// EFER is the guest's EFER MSR (LMA, NXE are used).
	EFER uint64
	// CPL is the current privilege level (the VMCB CPL field, or SS.DPL
	// under VMX). It selects user or supervisor page permissions.
	CPL uint8
	// MaxPhysAddr is the guest's physical address width (CPUID
	// 0x80000008 EAX[7:0]); bits of paging entries at or above it are
	// reserved. Zero means 52, the architectural maximum.
	MaxPhysAddr uint8
	// PDPTEValid says PDPTE holds the four PAE page-directory-pointer
	// entries the processor has loaded (Intel VMCS GUEST_PDPTE0-3 with
	// EPT; Intel SDM Vol. 3A, 4.4.1 "PDPTE Registers"). When false, the
	// emulator reads them from guest memory at CR3 (bits 4:0 ignored);
	// the VMCB has no PDPTE fields, so an SVM adapter leaves it false.
	PDPTEValid bool
	// PDPTE are the cached PAE PDPTEs, used when PDPTEValid is set.
	PDPTE [4]uint64
	// A20Masked emulates a disabled A20 gate: in real and virtual-8086
	// mode bit 20 of each linear address is forced to 0, giving the 8086
	// wrap at 1 MiB. Keep it false (A20 enabled) unless the VM models the
	// gate.
	A20Masked bool
}

// Access is the kind of memory access a translation is for.
type Access uint8

// Access kinds.
const (
	AccessRead  Access = iota // data read
	AccessWrite               // data write (also read-modify-write)
	AccessFetch               // instruction fetch
)

// String names the access kind.
func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessWrite:
		return "write"
	case AccessFetch:
		return "fetch"
	}
	return "access?"
}

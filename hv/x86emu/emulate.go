package x86emu

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// Emulator emulates MMIO instructions for one vCPU. It is not safe for
// concurrent use; give each vCPU its own (it carries a small decode cache
// and scratch buffers so that the common path allocates nothing).
type Emulator struct {
	p      Platform
	atomic AtomicPhys
	insn   InsnSource

	// State of the current call, loaded by begin.
	sys      SysRegs
	paging   pagingMode
	mode     int
	cpl      uint8
	rflags   uint64
	rip      uint64
	nextRIP  uint64
	gpa      uint64
	segs     [NumSegReg]Segment
	segValid uint8
	inst     *x86asm.Inst
	tlb      [2]tlbEntry
	tlbNext  uint8

	code     [15]byte
	codeLen  int
	fetchErr error

	// Scratch buffers handed to the Platform (fields, so that passing
	// them through the interface does not move them to the heap).
	pte  [8]byte
	data [8]byte

	cache [decodeCacheSize]cacheEntry
	stats Stats
}

// Stats counts what an Emulator did, for exit statistics and benchmarks.
type Stats struct {
	// Emulated counts instructions that completed (RIP advanced).
	Emulated uint64
	// RepRestarts counts REP string instructions left for the guest to
	// re-execute (MaxRepIterations reached, or the MMIO side left the
	// faulting page).
	RepRestarts uint64
	// Failed counts calls that returned an error.
	Failed uint64
	// DecodeHits and DecodeMisses count the decode cache's hits and misses.
	DecodeHits, DecodeMisses uint64
	// ExitGPA counts memory operands resolved to the exit's guest
	// physical address without a page walk (resolveFromExit).
	ExitGPA uint64
}

// New returns an Emulator that reaches the vCPU through p. If p also
// implements AtomicPhys, page walks set accessed and dirty flags; if it
// implements InsnSource, hardware-supplied instruction bytes are used.
func New(p Platform) *Emulator {
	e := &Emulator{p: p}
	if a, ok := p.(AtomicPhys); ok {
		e.atomic = a
	}
	if s, ok := p.(InsnSource); ok {
		e.insn = s
	}
	return e
}

// Stats returns the counters accumulated since New.
func (e *Emulator) Stats() Stats { return e.stats }

// CPUMode returns the decoding mode in bits (16, 32 or 64) for the given
// state (Intel SDM Vol. 3A, 2.2 "Modes of Operation" and 5.2.1 "Code-Segment
// Descriptor in 64-bit Mode"; AMD APM Vol. 2, 1.2 "Modes of Operation"):
// real and virtual-8086 mode are 16-bit; with EFER.LMA, CS.L selects 64-bit
// mode, otherwise (compatibility and legacy protected mode) CS.D selects 32-
// or 16-bit.
func CPUMode(sys SysRegs, cs Segment, rflags uint64) int {
	if sys.CR0&CR0_PE == 0 || rflags&RFLAGS_VM != 0 {
		return 16
	}
	if sys.EFER&EFER_LMA != 0 && cs.L() {
		return 64
	}
	if cs.DB() {
		return 32
	}
	return 16
}

// begin loads the state every entry point needs.
func (e *Emulator) begin() {
	e.sys = e.p.SysRegs()
	e.paging = pagingModeOf(&e.sys)
	e.rflags = e.p.RFLAGS()
	e.rip = e.p.RIP()
	e.segValid = 0
	e.inst = nil
	e.codeLen = 0
	e.fetchErr = nil
	e.mode = CPUMode(e.sys, *e.seg(SegCS), e.rflags)
	switch {
	case e.sys.CR0&CR0_PE == 0:
		e.cpl = 0
	case e.rflags&RFLAGS_VM != 0:
		e.cpl = 3
	default:
		e.cpl = e.sys.CPL & 3
	}
	e.flushTLB()
}

// seg returns the cached state of segment register s, loading it once per
// call.
func (e *Emulator) seg(s SegReg) *Segment {
	if s >= NumSegReg {
		s = SegDS
	}
	if e.segValid&(1<<s) == 0 {
		e.segs[s] = e.p.Segment(s)
		e.segValid |= 1 << s
	}
	return &e.segs[s]
}

// Emulate emulates the instruction at the guest's CS:RIP, whose memory
// access exited to the host at guest physical address gpa (the NPF/EPT
// violation address). On success the instruction's effects are applied and
// RIP is advanced (or, for a REP string instruction cut short, left so the
// guest re-executes it). On error, the guest state is unchanged except for
// string registers of completed iterations; the error is a *Fault to inject
// into the guest, an *UnsupportedError or *MismatchError to report, or a
// wrapped Platform error.
func (e *Emulator) Emulate(gpa uint64) error {
	e.begin()
	e.gpa = gpa
	err := e.fetchDecode()
	if err == nil {
		err = e.execute()
	}
	if err != nil {
		e.stats.Failed++
	}
	return err
}

// Decode fetches and decodes the instruction at the guest's CS:RIP without
// executing it: for a backend that needs the next RIP and has no hardware
// help (SVM without NRIP-save), or for a report.
func (e *Emulator) Decode() (x86asm.Inst, error) {
	e.begin()
	if err := e.fetchDecode(); err != nil {
		return x86asm.Inst{}, err
	}
	return *e.inst, nil
}

// InsnLen fetches and decodes the instruction at the guest's CS:RIP and
// returns its length in bytes, prefixes included: the next RIP of an
// intercepted instruction for a backend without hardware help (SVM without
// NRIP-save). Like Decode it goes through the decode cache.
func (e *Emulator) InsnLen() (int, error) {
	e.begin()
	ip := e.rip
	if e.mode != 64 {
		ip &= 0xffffffff
	}
	la, err := e.linear(SegCS, ip, AccessFetch)
	if err != nil {
		return 0, err
	}
	if err := e.fetch(la); err != nil {
		return 0, err
	}
	if n := e.svmVMXLen(); n > 0 {
		return n, nil
	}
	if !e.decode(la) {
		if e.fetchErr != nil {
			return 0, e.fetchErr
		}
		return 0, e.unsupported("the bytes do not decode as an x86 instruction")
	}
	return e.inst.Len, nil
}

// svmVMXLen returns the length of the fetched bytes if they hold a
// hypercall instruction x86asm does not know, VMMCALL (0F 01 D9) or VMCALL
// (0F 01 C1), after any legacy prefixes and a REX prefix in 64-bit mode;
// otherwise 0.
func (e *Emulator) svmVMXLen() int {
	b := e.code[:e.codeLen]
	i := 0
	for i < len(b) && isLegacyPrefix(b[i]) {
		i++
	}
	if e.mode == 64 && i < len(b) && b[i]&0xf0 == 0x40 {
		i++
	}
	if i+3 <= len(b) && b[i] == 0x0f && b[i+1] == 0x01 && (b[i+2] == 0xd9 || b[i+2] == 0xc1) {
		return i + 3
	}
	return 0
}

// isLegacyPrefix reports whether c is a legacy instruction prefix (Intel
// SDM Vol. 2A, 2.1.1 "Instruction Prefixes").
func isLegacyPrefix(c byte) bool {
	switch c {
	case 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67:
		return true
	}
	return false
}

// Translate maps linear address la to a guest physical address through the
// guest's current paging mode and page tables, checking the access rights of
// an access of kind acc at the current CPL. With 4- or 5-level paging la must
// be canonical (else #GP); otherwise it is truncated to 32 bits. Page faults
// come back as *Fault.
func (e *Emulator) Translate(la uint64, acc Access) (uint64, error) {
	e.begin()
	switch e.paging {
	case paging4, paging5:
		if !e.canonical(la) {
			return 0, &Fault{Vector: EXC_GP, Addr: la, Access: acc}
		}
	default:
		la &= 0xffffffff // the linear address space outside long mode
	}
	return e.translate(la, acc)
}

// canonical reports whether la is canonical for the current paging mode
// (Intel SDM Vol. 1, 3.3.7.1 "Canonical Addressing").
func (e *Emulator) canonical(la uint64) bool {
	shift := uint(16) // 48-bit linear addresses
	if e.paging == paging5 {
		shift = 7 // 57-bit
	}
	return uint64(int64(la<<shift)>>shift) == la
}

// linear computes the linear address of offset off in segment s (Intel SDM
// Vol. 3A, 3.4 "Logical and Linear Addresses"). In 64-bit mode the bases of
// ES, CS, SS and DS are treated as 0 and the result must be canonical
// (#GP(0), or #SS(0) for SS). Outside 64-bit mode the linear address is
// base+offset truncated to 32 bits; in real mode this is the 8086
// segment*16+offset (with the base as cached, so unreal mode works), which
// reaches up to 0x10FFEF (21 bits) unless SysRegs.A20Masked wraps it at
// 1 MiB. Segment limits are not checked.
func (e *Emulator) linear(s SegReg, off uint64, acc Access) (uint64, error) {
	if e.mode == 64 {
		la := off
		if s == SegFS || s == SegGS {
			la += e.seg(s).Base
		}
		if !e.canonical(la) {
			vec := uint8(EXC_GP)
			if s == SegSS {
				vec = EXC_SS
			}
			return 0, &Fault{Vector: vec, Addr: la, Access: acc}
		}
		return la, nil
	}
	la := (e.seg(s).Base + off) & 0xffffffff
	if e.sys.A20Masked && (e.sys.CR0&CR0_PE == 0 || e.rflags&RFLAGS_VM != 0) {
		la &^= 1 << 20
	}
	return la, nil
}

// finish completes the instruction: RIP moves past it, wrapping at the code
// segment's width.
func (e *Emulator) finish() {
	e.p.SetRIP(e.nextRIP)
	e.stats.Emulated++
}

// setFlags stores new status flags, touching RFLAGS only if they changed.
func (e *Emulator) setFlags(f uint64) {
	nf := e.rflags&^RFLAGS_ARITH | f&RFLAGS_ARITH
	if nf != e.rflags {
		e.rflags = nf
		e.p.SetRFLAGS(nf)
	}
}

// execute dispatches on the decoded instruction.
func (e *Emulator) execute() error {
	inst := e.inst
	if inst.Prefix[0]&0xff == x86asm.PrefixVEX2Bytes || inst.Prefix[0]&0xff == x86asm.PrefixVEX3Bytes {
		err := e.unsupported("VEX-encoded (AVX) instructions are not emulated")
		err.(*UnsupportedError).Op = 0 // x86asm misnames them
		return err
	}
	switch inst.Op {
	case x86asm.MOV:
		return e.emulateMOV()
	case x86asm.MOVZX, x86asm.MOVSX, x86asm.MOVSXD:
		return e.emulateMOVX()
	case x86asm.ADD, x86asm.OR, x86asm.ADC, x86asm.SBB, x86asm.AND, x86asm.SUB,
		x86asm.XOR, x86asm.CMP, x86asm.TEST:
		return e.emulateALU2()
	case x86asm.INC, x86asm.DEC, x86asm.NEG, x86asm.NOT:
		return e.emulateALU1()
	case x86asm.XCHG:
		return e.emulateXCHG()
	case x86asm.BT, x86asm.BTS, x86asm.BTR, x86asm.BTC:
		return e.emulateBT()
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ:
		return e.emulateString(strSTOS, stringSize(inst.Op))
	case x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ:
		return e.emulateString(strLODS, stringSize(inst.Op))
	case x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		return e.emulateString(strMOVS, stringSize(inst.Op))
	}
	return e.unsupported("this instruction is not emulated on MMIO")
}

// validSize reports whether size is an operand size the emulator handles.
func validSize(size int) bool {
	return size == 1 || size == 2 || size == 4 || size == 8
}

// errNoMemOperand is the reason given for forms that cannot touch memory.
const errNoMemOperand = "this form has no memory operand, so it cannot have caused an MMIO exit"

// sizeError reports an operand size the emulator does not handle.
func (e *Emulator) sizeError(size int) error {
	return e.unsupported(fmt.Sprintf("%d-byte memory operands are not emulated", size))
}

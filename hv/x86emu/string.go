package x86emu

import "golang.org/x/arch/x86/x86asm"

// strKind selects a string instruction.
type strKind uint8

const (
	strSTOS strKind = iota // ES:[rDI] <- rAX
	strLODS                // rAX <- seg:[rSI]
	strMOVS                // ES:[rDI] <- seg:[rSI]
)

// stringSize returns the element size of a string instruction.
func stringSize(op x86asm.Op) int {
	switch op {
	case x86asm.STOSB, x86asm.LODSB, x86asm.MOVSB:
		return 1
	case x86asm.STOSW, x86asm.LODSW, x86asm.MOVSW:
		return 2
	case x86asm.STOSD, x86asm.LODSD, x86asm.MOVSD:
		return 4
	}
	return 8
}

// emulateString handles STOS, LODS and MOVS, with or without a REP prefix
// (Intel SDM Vol. 2B, "MOVS/MOVSB/MOVSW/MOVSD/MOVSQ", "STOS", "LODS", "REP/
// REPE/REPZ/REPNE/REPNZ"; Vol. 1, 7.3.9 "String Operations").
//
// The address size picks rSI/rDI/rCX as SI/DI/CX, ESI/EDI/ECX or RSI/RDI/RCX
// (16-bit updates keep the upper bits, 32-bit ones zero-extend); DF selects
// decrement; the destination is always ES (base 0 in 64-bit mode) and the
// source segment DS unless overridden. Either side may be the MMIO one: the
// first iteration must touch the faulting address, and afterwards every
// access to the faulting 4 KiB page goes to MMIO and every other to
// ReadPhys/WritePhys.
//
// Work is bounded: one call performs at most MaxRepIterations iterations, and
// stops early when the side that faulted leaves the faulting page (the next
// page may be RAM, which the guest should then access natively, or another
// device). Either way RCX, RSI and RDI describe the iterations done and RIP
// stays at the instruction, so the guest re-executes it for the rest — the
// architectural behaviour of an interrupted REP string instruction. When the
// count reaches zero RIP advances. A fault in iteration k leaves the
// registers after k-1 iterations, as the processor does.
func (e *Emulator) emulateString(kind strKind, size int) error {
	inst := e.inst
	asz := inst.AddrSize
	am := addrMask(asz)
	rep := hasRep(inst)

	count := uint64(1)
	var rcx uint64
	if rep {
		rcx = e.p.GPR(RCX)
		count = rcx & am
		if count == 0 {
			e.finish()
			return nil
		}
	}
	limit := count
	if limit > MaxRepIterations {
		limit = MaxRepIterations
	}
	step := uint64(size)
	if e.rflags&RFLAGS_DF != 0 {
		step = -step
	}

	srcSeg := SegDS
	if kind != strSTOS {
		m, ok := inst.Args[1].(x86asm.Mem)
		if !ok {
			return e.unsupported("string instruction without a source operand")
		}
		srcSeg = segOf(m)
	}
	var rax uint64
	if kind == strSTOS {
		rax = e.p.GPR(RAX)
	}
	rsi, rdi := e.p.GPR(RSI), e.p.GPR(RDI)
	si, di := rsi&am, rdi&am

	buf := e.data[:size]
	var (
		done       uint64
		err        error
		srcPrimary bool // the source is the access that exited
		last       uint64
	)
	for done < limit {
		var src, dst operand
		if kind != strSTOS {
			if err = e.resolve(&src, srcSeg, si, size, AccessRead); err != nil {
				break
			}
		}
		if kind != strLODS {
			if err = e.resolve(&dst, SegES, di, size, AccessWrite); err != nil {
				break
			}
		}
		if done == 0 {
			switch {
			case kind != strSTOS && src.covers(e.gpa):
				srcPrimary = true
			case kind != strLODS && dst.covers(e.gpa):
			default:
				o := &dst
				if kind == strLODS {
					o = &src
				}
				err = &MismatchError{GPA: e.gpa, Got: o.gpa[0], Linear: o.la, Op: inst.Op, RIP: e.rip}
			}
			if err != nil {
				break
			}
		} else if (srcPrimary && !src.onFaultPage()) || (!srcPrimary && !dst.onFaultPage()) {
			break
		}

		if kind == strSTOS {
			putLE(buf, rax)
		} else if err = e.access(&src, buf, false); err != nil {
			break
		}
		if kind == strLODS {
			last = le(buf)
		} else if err = e.access(&dst, buf, true); err != nil {
			break
		}
		done++
		si = (si + step) & am
		di = (di + step) & am
	}

	if done > 0 {
		if kind != strSTOS {
			e.writeAddrReg(RSI, si, asz)
		}
		if kind != strLODS {
			e.writeAddrReg(RDI, di, asz)
		}
		if kind == strLODS {
			e.p.SetGPR(RAX, mergeReg(e.p.GPR(RAX), last, size, false))
		}
	}
	if rep && done > 0 {
		e.writeAddrReg(RCX, count-done, asz)
	}
	if err != nil {
		return err
	}
	if rep && count-done > 0 {
		e.stats.RepRestarts++
		return nil
	}
	e.finish()
	return nil
}

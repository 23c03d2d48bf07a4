package x86emu

import "golang.org/x/arch/x86/x86asm"

// emulateALU2 handles the two-operand arithmetic and logic instructions with
// a memory operand: ADD, OR, ADC, SBB, AND, SUB, XOR, CMP in their r/m,reg
// (00-39 even), reg,r/m (00-3B odd) and r/m,imm (80/81/83) forms, and TEST
// r/m,reg (84/85) and r/m,imm (F6/F7 /0). Flags follow flags.go. A memory
// destination is read and then written (two device accesses); CMP and TEST
// only read.
func (e *Emulator) emulateALU2() error {
	inst := e.inst
	op := inst.Op
	size := inst.MemBytes
	switch dst := inst.Args[0].(type) {
	case x86asm.Mem:
		var b uint64
		switch src := inst.Args[1].(type) {
		case x86asm.Reg:
			v, rsize, ok := e.readReg(src)
			if !ok || rsize != size {
				return e.unsupported("register and memory operand sizes differ")
			}
			b = v
		case x86asm.Imm:
			b = uint64(src) // sign-extended by the decoder; alu masks it
		default:
			return e.unsupported("unexpected source operand")
		}
		if !validSize(size) {
			return e.sizeError(size)
		}
		acc := AccessWrite
		if op == x86asm.CMP || op == x86asm.TEST {
			acc = AccessRead
		}
		var o operand
		if err := e.memOperand(&o, dst, size, acc, 0); err != nil {
			return err
		}
		buf := e.data[:size]
		if err := e.access(&o, buf, false); err != nil {
			return err
		}
		r, nf, write := alu(op, le(buf), b, size, e.rflags)
		if write {
			putLE(buf, r)
			if err := e.access(&o, buf, true); err != nil {
				return err
			}
		}
		e.setFlags(nf)
	case x86asm.Reg:
		src, ok := inst.Args[1].(x86asm.Mem)
		if !ok {
			return e.unsupported(errNoMemOperand)
		}
		a, rsize, ok := e.readReg(dst)
		if !ok || rsize != size {
			return e.unsupported("register and memory operand sizes differ")
		}
		if !validSize(size) {
			return e.sizeError(size)
		}
		b, err := e.readMem(src, size)
		if err != nil {
			return err
		}
		r, nf, write := alu(op, a, b, size, e.rflags)
		if write {
			e.writeReg(dst, r)
		}
		e.setFlags(nf)
	default:
		return e.unsupported(errNoMemOperand)
	}
	e.finish()
	return nil
}

// emulateALU1 handles INC, DEC (FE/FF /0,/1), NEG and NOT (F6/F7 /3,/2) on a
// memory operand: read, compute, write back.
func (e *Emulator) emulateALU1() error {
	inst := e.inst
	m, ok := inst.Args[0].(x86asm.Mem)
	if !ok {
		return e.unsupported(errNoMemOperand)
	}
	size := inst.MemBytes
	if !validSize(size) {
		return e.sizeError(size)
	}
	var o operand
	if err := e.memOperand(&o, m, size, AccessWrite, 0); err != nil {
		return err
	}
	buf := e.data[:size]
	if err := e.access(&o, buf, false); err != nil {
		return err
	}
	r, nf, _ := alu(inst.Op, le(buf), 0, size, e.rflags)
	putLE(buf, r)
	if err := e.access(&o, buf, true); err != nil {
		return err
	}
	e.setFlags(nf)
	e.finish()
	return nil
}

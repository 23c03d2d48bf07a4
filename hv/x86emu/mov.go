package x86emu

import "golang.org/x/arch/x86/x86asm"

// emulateMOV handles MOV r/m,reg (88/89), MOV reg,r/m (8A/8B), MOV r/m,imm
// (C6/C7) and MOV with a memory offset (A0-A3) (Intel SDM Vol. 2B, "MOV—
// Move"). MOV changes no flags. Moves of segment, control and debug
// registers are not emulated.
func (e *Emulator) emulateMOV() error {
	inst := e.inst
	size := inst.MemBytes
	switch dst := inst.Args[0].(type) {
	case x86asm.Mem:
		var v uint64
		switch src := inst.Args[1].(type) {
		case x86asm.Reg:
			val, rsize, ok := e.readReg(src)
			if !ok {
				return e.unsupported("moves between memory and segment registers are not emulated")
			}
			if rsize != size {
				return e.unsupported("register and memory operand sizes differ")
			}
			v = val
		case x86asm.Imm:
			v = uint64(src)
		default:
			return e.unsupported("unexpected source operand")
		}
		if !validSize(size) {
			return e.sizeError(size)
		}
		if err := e.writeMem(dst, size, v); err != nil {
			return err
		}
	case x86asm.Reg:
		src, ok := inst.Args[1].(x86asm.Mem)
		if !ok {
			return e.unsupported(errNoMemOperand)
		}
		_, rsize, _, ok := gprOf(dst)
		if !ok {
			return e.unsupported("moves between memory and segment registers are not emulated")
		}
		if rsize != size {
			return e.unsupported("register and memory operand sizes differ")
		}
		if !validSize(size) {
			return e.sizeError(size)
		}
		v, err := e.readMem(src, size)
		if err != nil {
			return err
		}
		e.writeReg(dst, v)
	default:
		return e.unsupported(errNoMemOperand)
	}
	e.finish()
	return nil
}

// emulateMOVX handles MOVZX (0F B6/B7), MOVSX (0F BE/BF) and MOVSXD (63):
// a byte, word or doubleword from memory, zero- or sign-extended into a
// register (Intel SDM Vol. 2B, "MOVZX", "MOVSX/MOVSXD"). No flags change.
// MOVSXD with a 16-bit destination reads a word, as the SDM's "MOVSXD r16,
// r/m16" form says.
func (e *Emulator) emulateMOVX() error {
	inst := e.inst
	dst, ok := inst.Args[0].(x86asm.Reg)
	if !ok {
		return e.unsupported("unexpected destination operand")
	}
	src, ok := inst.Args[1].(x86asm.Mem)
	if !ok {
		return e.unsupported(errNoMemOperand)
	}
	_, dsize, _, ok := gprOf(dst)
	if !ok {
		return e.unsupported("unexpected destination register")
	}
	size := inst.MemBytes
	if inst.Op == x86asm.MOVSXD && dsize < size {
		size = dsize
	}
	if !validSize(size) || size > dsize {
		return e.sizeError(size)
	}
	v, err := e.readMem(src, size)
	if err != nil {
		return err
	}
	if inst.Op != x86asm.MOVZX {
		v = signExtend(v, size)
	}
	e.writeReg(dst, v)
	e.finish()
	return nil
}

// emulateXCHG handles XCHG r/m,reg (86/87) with a memory operand: the old
// memory value goes to the register and the register's value to memory
// (Intel SDM Vol. 2B, "XCHG"). The processor locks the bus for it; the
// device sees a read followed by a write. No flags change.
func (e *Emulator) emulateXCHG() error {
	inst := e.inst
	var m x86asm.Mem
	var r x86asm.Reg
	switch a := inst.Args[0].(type) {
	case x86asm.Mem:
		m = a
		reg, ok := inst.Args[1].(x86asm.Reg)
		if !ok {
			return e.unsupported("unexpected operand")
		}
		r = reg
	case x86asm.Reg:
		mem, ok := inst.Args[1].(x86asm.Mem)
		if !ok {
			return e.unsupported(errNoMemOperand)
		}
		m, r = mem, a
	default:
		return e.unsupported("unexpected operand")
	}
	size := inst.MemBytes
	rv, rsize, ok := e.readReg(r)
	if !ok || rsize != size {
		return e.unsupported("register and memory operand sizes differ")
	}
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
	old := le(buf)
	putLE(buf, rv)
	if err := e.access(&o, buf, true); err != nil {
		return err
	}
	e.writeReg(r, old)
	e.finish()
	return nil
}

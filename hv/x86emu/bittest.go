package x86emu

import "golang.org/x/arch/x86/x86asm"

// emulateBT handles BT, BTS, BTR and BTC on a memory bit base (Intel SDM
// Vol. 2A, "BT—Bit Test" and Table 3-2 "Range of Bit Positions Specified by
// Bit Offset Operands"):
//
//   - immediate offset (0F BA /4-/7 ib): the bit is imm8 modulo the operand
//     width, inside the addressed operand;
//   - register offset (0F A3/AB/B3/BB): the register is a signed bit offset
//     (-2^15..2^15-1, -2^31..2^31-1 or -2^63..2^63-1 by operand size), so
//     the operand actually accessed is at EA + (offset SAR log2(width)) *
//     (width/8), and the bit is offset modulo width.
//
// CF receives the old bit; BTS sets it, BTR clears it, BTC complements it,
// then the operand is written back (BT only reads). ZF is unchanged and OF,
// SF, AF, PF (undefined) are left as they were.
func (e *Emulator) emulateBT() error {
	inst := e.inst
	m, ok := inst.Args[0].(x86asm.Mem)
	if !ok {
		return e.unsupported(errNoMemOperand)
	}
	size := inst.MemBytes
	if size != 2 && size != 4 && size != 8 {
		return e.sizeError(size)
	}
	width := uint64(size) * 8
	var bit, extra uint64
	switch src := inst.Args[1].(type) {
	case x86asm.Imm:
		bit = uint64(src) & (width - 1)
	case x86asm.Reg:
		v, rsize, ok := e.readReg(src)
		if !ok || rsize != size {
			return e.unsupported("register and memory operand sizes differ")
		}
		off := int64(signExtend(v, rsize))
		shift := uint(4) // log2(16)
		switch size {
		case 4:
			shift = 5
		case 8:
			shift = 6
		}
		extra = uint64((off >> shift) * int64(size))
		bit = uint64(off) & (width - 1)
	default:
		return e.unsupported("unexpected bit offset operand")
	}
	acc := AccessWrite
	if inst.Op == x86asm.BT {
		acc = AccessRead
	}
	var o operand
	if err := e.memOperand(&o, m, size, acc, extra); err != nil {
		return err
	}
	buf := e.data[:size]
	if err := e.access(&o, buf, false); err != nil {
		return err
	}
	v := le(buf)
	old := v >> bit & 1
	switch inst.Op {
	case x86asm.BTS:
		v |= 1 << bit
	case x86asm.BTR:
		v &^= 1 << bit
	case x86asm.BTC:
		v ^= 1 << bit
	}
	if inst.Op != x86asm.BT {
		putLE(buf, v)
		if err := e.access(&o, buf, true); err != nil {
			return err
		}
	}
	e.setFlags(e.rflags&^RFLAGS_CF | old*RFLAGS_CF)
	e.finish()
	return nil
}

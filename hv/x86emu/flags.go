package x86emu

import (
	"math/bits"

	"golang.org/x/arch/x86/x86asm"
)

// Status flag computation for the emulated arithmetic and logic
// instructions. Each instruction's "Flags Affected" section in the Intel SDM
// Vol. 2 (and AMD APM Vol. 3, Appendix C "Instruction Effects on RFLAGS")
// defines:
//
//	ADD, ADC, SUB, SBB, CMP, NEG  OF SF ZF AF CF PF from the result
//	INC, DEC                      as ADD/SUB with 1, CF unchanged
//	AND, OR, XOR, TEST            OF=CF=0, SF ZF PF from the result,
//	                              AF undefined: Keel clears it
//	NOT                           no flags
//	BT, BTS, BTR, BTC             CF = the selected bit, ZF unchanged,
//	                              OF SF AF PF undefined: Keel leaves them
//
// "Undefined" flags differ between processor generations, so guests cannot
// rely on them; the choices above are documented and tested.

// szp returns SF, ZF and PF for a size-byte result.
func szp(r uint64, size int) uint64 {
	var f uint64
	r &= sizeMask(size)
	if r == 0 {
		f |= RFLAGS_ZF
	}
	if r>>(8*uint(size)-1)&1 != 0 {
		f |= RFLAGS_SF
	}
	if bits.OnesCount8(uint8(r))%2 == 0 {
		f |= RFLAGS_PF
	}
	return f
}

// addFlags returns the flags of r = a + b + cin at size bytes.
func addFlags(a, b, cin, r uint64, size int) uint64 {
	m := sizeMask(size)
	a, b, r = a&m, b&m, r&m
	sign := uint64(1) << (8*uint(size) - 1)
	f := szp(r, size)
	if (cin == 0 && r < a) || (cin != 0 && r <= a) {
		f |= RFLAGS_CF
	}
	if (a^b^r)&0x10 != 0 {
		f |= RFLAGS_AF
	}
	if (a^r)&(b^r)&sign != 0 {
		f |= RFLAGS_OF
	}
	return f
}

// subFlags returns the flags of r = a - b - cin at size bytes.
func subFlags(a, b, cin, r uint64, size int) uint64 {
	m := sizeMask(size)
	a, b, r = a&m, b&m, r&m
	sign := uint64(1) << (8*uint(size) - 1)
	f := szp(r, size)
	if (cin == 0 && a < b) || (cin != 0 && a <= b) {
		f |= RFLAGS_CF
	}
	if (a^b^r)&0x10 != 0 {
		f |= RFLAGS_AF
	}
	if (a^b)&(a^r)&sign != 0 {
		f |= RFLAGS_OF
	}
	return f
}

// alu computes a two-operand (a op b) or one-operand (op a) arithmetic or
// logic instruction at size bytes. It returns the result, the new RFLAGS
// (only RFLAGS_ARITH bits differ from flags) and whether the instruction
// writes its destination (CMP and TEST do not).
func alu(op x86asm.Op, a, b uint64, size int, flags uint64) (r, nf uint64, write bool) {
	m := sizeMask(size)
	a, b = a&m, b&m
	cf := flags & RFLAGS_CF
	var f uint64
	write = true
	switch op {
	case x86asm.ADD:
		r = a + b
		f = addFlags(a, b, 0, r, size)
	case x86asm.ADC:
		r = a + b + cf
		f = addFlags(a, b, cf, r, size)
	case x86asm.SUB, x86asm.CMP:
		r = a - b
		f = subFlags(a, b, 0, r, size)
		write = op == x86asm.SUB
	case x86asm.SBB:
		r = a - b - cf
		f = subFlags(a, b, cf, r, size)
	case x86asm.AND, x86asm.TEST:
		r = a & b
		f = szp(r, size)
		write = op == x86asm.AND
	case x86asm.OR:
		r = a | b
		f = szp(r, size)
	case x86asm.XOR:
		r = a ^ b
		f = szp(r, size)
	case x86asm.INC:
		r = a + 1
		f = addFlags(a, 1, 0, r, size)&^RFLAGS_CF | cf
	case x86asm.DEC:
		r = a - 1
		f = subFlags(a, 1, 0, r, size)&^RFLAGS_CF | cf
	case x86asm.NEG:
		r = -a
		f = subFlags(0, a, 0, r, size)
	case x86asm.NOT:
		return ^a & m, flags, true
	default:
		return 0, flags, false
	}
	return r & m, flags&^RFLAGS_ARITH | f, write
}

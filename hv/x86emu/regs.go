package x86emu

import "golang.org/x/arch/x86/x86asm"

// gprOf maps an x86asm general-purpose register to its number, width in
// bytes and, for AH/CH/DH/BH, whether it is the high byte of the 16-bit
// register. ok is false for anything else (segment, control, vector
// registers, RIP).
func gprOf(r x86asm.Reg) (n, size int, high, ok bool) {
	switch {
	case r >= x86asm.AL && r <= x86asm.BL:
		return int(r - x86asm.AL), 1, false, true
	case r >= x86asm.AH && r <= x86asm.BH:
		// Encodings 4-7 without REX: AH, CH, DH, BH (Intel SDM Vol. 2A,
		// 3.1.1.1 Table 3-1 and 2.2.1.2 "More on REX Prefix Fields").
		return int(r - x86asm.AH), 1, true, true
	case r >= x86asm.SPB && r <= x86asm.R15B:
		return int(r-x86asm.SPB) + 4, 1, false, true
	case r >= x86asm.AX && r <= x86asm.R15W:
		return int(r - x86asm.AX), 2, false, true
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return int(r - x86asm.EAX), 4, false, true
	case r >= x86asm.RAX && r <= x86asm.R15:
		return int(r - x86asm.RAX), 8, false, true
	}
	return 0, 0, false, false
}

// readReg returns the value of a general-purpose register, zero-extended,
// and its width in bytes.
func (e *Emulator) readReg(r x86asm.Reg) (uint64, int, bool) {
	n, size, high, ok := gprOf(r)
	if !ok {
		return 0, 0, false
	}
	v := e.p.GPR(n)
	if high {
		return v >> 8 & 0xff, 1, true
	}
	return v & sizeMask(size), size, true
}

// writeReg writes v to a general-purpose register with the architectural
// width rules (Intel SDM Vol. 1, 3.4.1.1 "General-Purpose Registers in
// 64-Bit Mode"): 8- and 16-bit writes leave the other bits alone, 32-bit
// writes zero-extend into the upper half, 64-bit writes replace the register.
func (e *Emulator) writeReg(r x86asm.Reg, v uint64) bool {
	n, size, high, ok := gprOf(r)
	if !ok {
		return false
	}
	e.p.SetGPR(n, mergeReg(e.p.GPR(n), v, size, high))
	return true
}

// mergeReg combines an old register value with a size-byte write of v.
func mergeReg(old, v uint64, size int, high bool) uint64 {
	switch {
	case high:
		return old&^0xff00 | (v&0xff)<<8
	case size == 1:
		return old&^0xff | v&0xff
	case size == 2:
		return old&^0xffff | v&0xffff
	case size == 4:
		return v & 0xffffffff
	}
	return v
}

// writeAddrReg updates a register used as an address or count (rSI, rDI,
// rCX of string instructions) with the address-size width rules: a 16-bit
// address size changes only the low 16 bits, a 32-bit one zero-extends.
func (e *Emulator) writeAddrReg(n int, v uint64, addrSize int) {
	e.p.SetGPR(n, mergeReg(e.p.GPR(n), v, addrSize/8, false))
}

// sizeMask returns the mask of a size-byte value.
func sizeMask(size int) uint64 {
	if size >= 8 {
		return ^uint64(0)
	}
	return uint64(1)<<(8*uint(size)) - 1
}

// signExtend sign-extends the low size bytes of v to 64 bits.
func signExtend(v uint64, size int) uint64 {
	if size >= 8 {
		return v
	}
	shift := 64 - 8*uint(size)
	return uint64(int64(v<<shift) >> shift)
}

// addrMask returns the mask for an address size in bits.
func addrMask(bits int) uint64 {
	switch bits {
	case 16:
		return 0xffff
	case 32:
		return 0xffffffff
	}
	return ^uint64(0)
}

// le reads a little-endian value of len(b) (1 to 8) bytes.
func le(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// putLE stores the low len(b) bytes of v little endian.
func putLE(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v)
		v >>= 8
	}
}

package x86emu

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// operand is a resolved memory operand: its linear address and the guest
// physical pieces it maps to (two when it straddles a 4 KiB page boundary).
// A piece on the faulting page goes to Platform.MMIO, any other piece to
// ReadPhys/WritePhys.
type operand struct {
	la   uint64
	size int
	n    int
	gpa  [2]uint64
	plen [2]int
	mmio [2]bool
}

// covers reports whether gpa lies within the operand's bytes.
func (o *operand) covers(gpa uint64) bool {
	for i := 0; i < o.n; i++ {
		if gpa >= o.gpa[i] && gpa-o.gpa[i] < uint64(o.plen[i]) {
			return true
		}
	}
	return false
}

// onFaultPage reports whether any byte of the operand is on the faulting page.
func (o *operand) onFaultPage() bool {
	return o.mmio[0] || (o.n > 1 && o.mmio[1])
}

// resolve translates a size-byte access at offset off in segment s.
func (e *Emulator) resolve(o *operand, s SegReg, off uint64, size int, acc Access) error {
	la, err := e.linear(s, off, acc)
	if err != nil {
		return err
	}
	o.la, o.size = la, size
	first := pageSize - int(la&(pageSize-1))
	if first > size {
		first = size
	}
	gpa, err := e.translate(la, acc)
	if err != nil {
		return err
	}
	o.n = 1
	o.gpa[0], o.plen[0] = gpa, first
	if first < size {
		// The second piece follows the first in the linear space (an
		// offset that wraps at the address size is not modelled).
		la2 := la + uint64(first)
		if e.mode != 64 {
			la2 &= 0xffffffff
		} else if !e.canonical(la2) {
			vec := uint8(EXC_GP)
			if s == SegSS {
				vec = EXC_SS
			}
			return &Fault{Vector: vec, Addr: la2, Access: acc}
		}
		gpa2, err := e.translate(la2, acc)
		if err != nil {
			return err
		}
		o.n = 2
		o.gpa[1], o.plen[1] = gpa2, size-first
	}
	fp := e.gpa &^ (pageSize - 1)
	for i := 0; i < o.n; i++ {
		o.mmio[i] = o.gpa[i]&^(pageSize-1) == fp
	}
	return nil
}

// access reads or writes the operand's bytes.
func (e *Emulator) access(o *operand, buf []byte, write bool) error {
	off := 0
	for i := 0; i < o.n; i++ {
		b := buf[off : off+o.plen[i]]
		var err error
		switch {
		case o.mmio[i]:
			err = e.p.MMIO(o.gpa[i], b, write)
		case write:
			err = e.p.WritePhys(o.gpa[i], b)
		default:
			err = e.p.ReadPhys(o.gpa[i], b)
		}
		if err != nil {
			return e.accessError(o.gpa[i], len(b), o.mmio[i], write, err)
		}
		off += o.plen[i]
	}
	return nil
}

func (e *Emulator) accessError(gpa uint64, n int, mmio, write bool, err error) error {
	kind := "RAM"
	if mmio {
		kind = "MMIO"
	}
	dir := "read"
	if write {
		dir = "write"
	}
	op := "instruction"
	if e.inst != nil {
		op = e.inst.Op.String()
	}
	return fmt.Errorf("x86emu: %s at rip %#x: %s %s of %d bytes at guest physical %#x failed: %w", op, e.rip, kind, dir, n, gpa, err)
}

// segOf returns the segment of a memory operand: the override if any, else
// SS for rBP/rSP-based addresses and DS otherwise (Intel SDM Vol. 1, 3.7.4
// "Specifying an Offset", Table 3-5 "Default Segment Selection Rules").
func segOf(m x86asm.Mem) SegReg {
	switch m.Segment {
	case x86asm.ES:
		return SegES
	case x86asm.CS:
		return SegCS
	case x86asm.SS:
		return SegSS
	case x86asm.DS:
		return SegDS
	case x86asm.FS:
		return SegFS
	case x86asm.GS:
		return SegGS
	}
	switch m.Base {
	case x86asm.BP, x86asm.EBP, x86asm.RBP, x86asm.SP, x86asm.ESP, x86asm.RSP:
		return SegSS
	}
	return SegDS
}

// effAddr computes the effective address of m (Intel SDM Vol. 2A, 2.1.5
// "Addressing-Mode Encoding of ModR/M and SIB Bytes", 2.2.1.6 "RIP-Relative
// Addressing"), wrapped to the address size.
func (e *Emulator) effAddr(m x86asm.Mem) uint64 {
	inst := e.inst
	disp := uint64(m.Disp)
	if inst.AddrSize == 64 && !isMoffs(inst) {
		// x86asm keeps disp32 zero-extended; with 64-bit addressing it
		// is sign-extended. The A0-A3 moffs operand is a full 64 bits.
		disp = uint64(int64(int32(m.Disp)))
	}
	var ea uint64
	switch m.Base {
	case 0:
	case x86asm.RIP:
		ea = e.nextRIP
	case x86asm.EIP:
		ea = e.nextRIP & 0xffffffff
	default:
		ea, _, _ = e.readReg(m.Base)
	}
	if m.Index != 0 && m.Scale != 0 {
		idx, _, _ := e.readReg(m.Index)
		ea += idx * uint64(m.Scale)
	}
	return (ea + disp) & addrMask(inst.AddrSize)
}

// resolveFromExit resolves an explicit memory operand that lies within one
// page, at the same offset in its page as the exit's guest physical address,
// to that address without walking the guest's page tables: the emulated
// instructions make no other data access, so the processor translated
// exactly this access, checking the guest's permissions, before the nested
// page fault (AMD APM Vol. 2, 15.25.6; Intel SDM Vol. 3C, 29.3.3.2). It
// reports false when the operand does not qualify (straddling a page, a
// different page offset), and the caller walks.
func (e *Emulator) resolveFromExit(o *operand, s SegReg, off uint64, size int, acc Access) (bool, error) {
	la, err := e.linear(s, off, acc)
	if err != nil {
		return false, err
	}
	po := la & (pageSize - 1)
	if po != e.gpa&(pageSize-1) || int(po)+size > pageSize || (e.paging != pagingNone && !e.canonical(la)) {
		return false, nil
	}
	o.la, o.size, o.n = la, size, 1
	o.gpa[0], o.plen[0], o.mmio[0] = e.gpa, size, true
	e.stats.ExitGPA++
	return true, nil
}

// memOperand resolves the instruction's explicit memory operand m of size
// bytes, with extra added to its effective address (the BT bit-offset
// displacement), and checks that it is the access that exited.
func (e *Emulator) memOperand(o *operand, m x86asm.Mem, size int, acc Access, extra uint64) error {
	ea := (e.effAddr(m) + extra) & addrMask(e.inst.AddrSize)
	if ok, err := e.resolveFromExit(o, segOf(m), ea, size, acc); ok || err != nil {
		return err
	}
	if err := e.resolve(o, segOf(m), ea, size, acc); err != nil {
		return err
	}
	if !o.covers(e.gpa) {
		return &MismatchError{GPA: e.gpa, Got: o.gpa[0], Linear: o.la, Op: e.inst.Op, RIP: e.rip}
	}
	return nil
}

// readMem resolves m, checks it, and reads it.
func (e *Emulator) readMem(m x86asm.Mem, size int) (uint64, error) {
	var o operand
	if err := e.memOperand(&o, m, size, AccessRead, 0); err != nil {
		return 0, err
	}
	buf := e.data[:size]
	if err := e.access(&o, buf, false); err != nil {
		return 0, err
	}
	return le(buf), nil
}

// writeMem resolves m, checks it, and writes v.
func (e *Emulator) writeMem(m x86asm.Mem, size int, v uint64) error {
	var o operand
	if err := e.memOperand(&o, m, size, AccessWrite, 0); err != nil {
		return err
	}
	buf := e.data[:size]
	putLE(buf, v)
	return e.access(&o, buf, true)
}

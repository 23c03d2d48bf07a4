package x86emu

import (
	"fmt"

	"golang.org/x/arch/x86/x86asm"
)

// decodeCacheSize is the number of decoded instructions kept per vCPU. A
// driver's MMIO accesses come from a handful of instructions (readl/writel
// in a loop), so a small direct-mapped cache catches nearly all of them and
// saves both the decoder's time and its one allocation per decode (x86asm
// boxes the memory operand in an interface).
const decodeCacheSize = 16

// cacheEntry is a decoded instruction with the bytes it was decoded from.
// x86asm's result depends only on the mode and the Len bytes it consumed,
// so a later fetch whose first Len bytes match decodes identically; the
// bytes are always re-fetched and compared, so self-modifying code and
// another vCPU rewriting code are seen.
type cacheEntry struct {
	valid bool
	mode  int
	code  [15]byte
	inst  x86asm.Inst
}

// fetchDecode reads the instruction bytes at CS:RIP and decodes them into
// e.inst. Bytes the hardware supplied (InsnSource) are used first; otherwise,
// or when they do not hold the whole instruction, the fetch reads up to 15
// bytes, page by page, and a failure on a later page is reported only if the
// instruction actually extends into it.
func (e *Emulator) fetchDecode() error {
	ip := e.rip
	if e.mode != 64 {
		ip &= 0xffffffff
	}
	la, err := e.linear(SegCS, ip, AccessFetch)
	if err != nil {
		return err
	}
	if e.insn != nil {
		if b := e.insn.Insn(); len(b) > 0 {
			e.codeLen = copy(e.code[:], b)
			if e.decode(la) {
				return nil
			}
		}
	}
	if err := e.fetch(la); err != nil {
		return err
	}
	if !e.decode(la) {
		if e.fetchErr != nil {
			// The bytes we have do not make an instruction: it runs
			// into the page whose fetch failed.
			return e.fetchErr
		}
		return e.unsupported("the bytes do not decode as an x86 instruction")
	}
	return nil
}

// fetch reads up to 15 instruction bytes at linear address la into e.code.
func (e *Emulator) fetch(la uint64) error {
	n := 0
	e.fetchErr = nil
	var err error
	for n < len(e.code) {
		cur := la + uint64(n)
		if e.mode != 64 {
			cur &= 0xffffffff
		} else if !e.canonical(cur) {
			err = &Fault{Vector: EXC_GP, Addr: cur, Access: AccessFetch}
		}
		chunk := pageSize - int(cur&(pageSize-1))
		if chunk > len(e.code)-n {
			chunk = len(e.code) - n
		}
		var gpa uint64
		if err == nil {
			gpa, err = e.translate(cur, AccessFetch)
		}
		if err == nil {
			if rerr := e.p.ReadPhys(gpa, e.code[n:n+chunk]); rerr != nil {
				err = fmt.Errorf("x86emu: fetching instruction bytes at rip %#x (linear %#x, guest physical %#x): %w", e.rip, cur, gpa, rerr)
			}
		}
		if err != nil {
			if n == 0 {
				return err
			}
			e.fetchErr = err
			break
		}
		n += chunk
	}
	e.codeLen = n
	return nil
}

// decode decodes e.code[:e.codeLen] through the decode cache, sets e.inst
// and e.nextRIP, and reports whether the bytes held an instruction.
func (e *Emulator) decode(la uint64) bool {
	n := e.codeLen
	slot := &e.cache[cacheIndex(la)]
	if slot.valid && slot.mode == e.mode && slot.inst.Len <= n && equalBytes(slot.code[:slot.inst.Len], e.code[:slot.inst.Len]) {
		e.stats.DecodeHits++
	} else {
		e.stats.DecodeMisses++
		inst, err := x86asm.Decode(e.code[:n], e.mode)
		if err != nil || inst.Op == 0 || inst.Len <= 0 || inst.Len > n {
			return false
		}
		slot.valid = true
		slot.mode = e.mode
		slot.code = e.code
		slot.inst = inst
	}
	e.inst = &slot.inst
	next := e.rip + uint64(e.inst.Len)
	switch e.mode {
	case 16:
		next &= 0xffff
	case 32:
		next &= 0xffffffff
	}
	e.nextRIP = next
	return true
}

// cacheIndex hashes a linear instruction address to a cache slot.
func cacheIndex(la uint64) int {
	return int((la * 0x9e3779b97f4a7c15) >> 60) // top 4 bits: 16 slots
}

func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hasRep reports whether a REP/REPE (F3) or REPNE (F2) prefix is in effect.
// For MOVS, STOS and LODS both repeat on rCX alone; F2 on them is not
// documented by Intel and is treated as F3, as processors and KVM do.
func hasRep(inst *x86asm.Inst) bool {
	for _, p := range inst.Prefix {
		if p == 0 {
			break
		}
		if p&x86asm.PrefixIgnored != 0 {
			continue
		}
		if b := p & 0xff; b == 0xf3 || b == 0xf2 {
			return true
		}
	}
	return false
}

// isMoffs reports whether the instruction is MOV A0-A3, whose memory operand
// is an absolute offset of the address size (8 bytes in 64-bit mode).
func isMoffs(inst *x86asm.Inst) bool {
	return inst.Op == x86asm.MOV && inst.Opcode>>24&0xfc == 0xa0
}

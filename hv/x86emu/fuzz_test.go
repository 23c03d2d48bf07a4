package x86emu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// FuzzEmulate feeds random instruction bytes, registers, segment bases,
// privilege level, paging options, page-table corruption and faulting
// addresses to Emulate. The emulator must not panic (the fake panics on a
// bad register number or MMIO size), must bound its work, must leave RIP
// and RFLAGS as the architecture allows, and must give the same result
// with a cold and a warm decode cache.
//
// Input layout (missing bytes read as zero):
//
//	opts      mode = opts&7 (see vmMode); 0x08 DF; 0x10 AtomicPhys
//	          (accessed/dirty updates); 0x20 CPL 3; 0x40 SMEP|SMAP|AC from
//	          the next byte; 0x80 random segment bases
//	[prot]    if 0x40: bit 0 SMEP, bit 1 SMAP, bit 2 RFLAGS.AC, bit 3 WP off,
//	          bits 4-7: k > 0 hands the first k code bytes over as
//	          InsnSource bytes (decode assists)
//	code      15 instruction bytes at RIP
//	gpa       kind byte then data: 0 device+u16, 1 raw u64, 2 RAM u24,
//	          3 device+u8
//	regs      16 × (selector, data): 0 device pointer+u16, 1 RAM u24,
//	          2 raw u64, 3 small u8
//	[bases]   if 0x80: 6 × u32 segment bases
//	pokes     up to 8 × (u16 index, u64 xor mask) applied to page-table
//	          entries (even index) or RAM data (odd index)
func FuzzEmulate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzOne(t, data) })
}

// fuzzRAM is the fuzz machine's RAM: small, so rebuilding is cheap.
const fuzzRAM = 2 << 20

var fuzzState struct {
	sync.Mutex
	vm   [modeLA57 + 1]*fakeVM
	tmpl [modeLA57 + 1]fakeVM // registers, segments and control state after setMode
}

// fuzzMachine returns the shared machine for mode m, built once.
func fuzzMachine(t *testing.T, m vmMode) *fakeVM {
	if fuzzState.vm[m] == nil {
		f := newFakeVMSize(fuzzRAM)
		f.setMode(t, m)
		f.anyDev = true
		fuzzState.vm[m] = f
		fuzzState.tmpl[m] = fakeVM{sys: f.sys, segs: f.segs, rip: f.rip, devBase: f.devBase, nextPT: f.nextPT}
	}
	return fuzzState.vm[m]
}

type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) uint(n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		v |= uint64(r.byte()) << (8 * i)
	}
	return v
}

// fuzzResult is what a run produced, for comparing two runs.
type fuzzResult struct {
	gpr    [NumGPR]uint64
	rip    uint64
	rflags uint64
	log    string
	err    string
}

func fuzzOne(t *testing.T, data []byte) {
	fuzzState.Lock()
	defer fuzzState.Unlock()

	r := &fuzzReader{data}
	opts := r.byte()
	m := vmMode(opts & 7)
	f := fuzzMachine(t, m)
	tmpl := &fuzzState.tmpl[m]
	f.sys, f.segs, f.rip, f.devBase = tmpl.sys, tmpl.segs, tmpl.rip, tmpl.devBase
	f.rflags = 0x2
	f.track = true
	f.log = f.log[:0]
	f.dev = [mmioSize]byte{}
	defer func() {
		f.rollback()
		f.track = false
	}()

	if opts&0x08 != 0 {
		f.rflags |= RFLAGS_DF
	}
	if opts&0x20 != 0 {
		f.sys.CPL = 3
	}
	insnK := 0
	if opts&0x40 != 0 {
		p := r.byte()
		insnK = int(p >> 4)
		if p&1 != 0 {
			f.sys.CR4 |= CR4_SMEP
		}
		if p&2 != 0 {
			f.sys.CR4 |= CR4_SMAP
		}
		if p&4 != 0 {
			f.rflags |= RFLAGS_AC
		}
		if p&8 != 0 {
			f.sys.CR0 &^= CR0_WP
		}
	}
	var code [15]byte
	for i := range code {
		code[i] = r.byte()
	}
	f.poke(codeGPA, code[:])

	var gpa uint64
	switch r.byte() & 3 {
	case 0:
		gpa = f.devBase + r.uint(2)
	case 1:
		gpa = r.uint(8)
	case 2:
		gpa = r.uint(3)
	case 3:
		gpa = f.devBase + r.uint(1)
	}
	for i := range f.gpr {
		switch r.byte() & 3 {
		case 0:
			f.gpr[i] = ptr(m, r.uint(2))
		case 1:
			f.gpr[i] = r.uint(3)
		case 2:
			f.gpr[i] = r.uint(8)
		case 3:
			f.gpr[i] = r.uint(1)
		}
	}
	if opts&0x80 != 0 {
		for i := range f.segs {
			f.segs[i].Base = r.uint(4)
		}
	}
	ptBytes := tmpl.nextPT - ptGPA
	for i := 0; i < 8 && len(r.b) > 0; i++ {
		idx := r.uint(2)
		mask := r.uint(8)
		var addr uint64
		if idx&1 == 0 && ptBytes > 0 {
			addr = ptGPA + (idx*4)%ptBytes&^7
		} else {
			addr = (idx * 64) % fuzzRAM &^ 7
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], binary.LittleEndian.Uint64(f.ram[addr:])^mask)
		f.poke(addr, b[:])
	}

	var p Platform = f
	switch {
	case insnK > 0:
		p = &insnVM{f, code[:insnK]}
	case opts&0x10 != 0:
		p = &atomicVM{fakeVM: f}
	}
	e := New(p)

	// Pre-run state, to run again with a warm cache.
	gpr0, rip0, fl0, dev0, mark := f.gpr, f.rip, f.rflags, f.dev, len(f.undo)
	reset := func() {
		f.rollbackTo(mark)
		f.gpr, f.rip, f.rflags, f.dev = gpr0, rip0, fl0, dev0
		f.log = f.log[:0]
		f.calls = 0
	}

	reset()
	err := e.Emulate(gpa)
	var mm *MismatchError
	if errors.As(err, &mm) {
		// Retry at the address the instruction does access, to get past
		// the check and exercise the instruction itself.
		gpa = mm.Got
		reset()
		err = e.Emulate(gpa)
	}
	first := fuzzCheck(t, f, e, err, rip0, fl0)

	reset()
	err = e.Emulate(gpa)
	second := fuzzCheck(t, f, e, err, rip0, fl0)
	if first != second {
		t.Fatalf("a second run (warm decode cache) differs:\nfirst  %+v\nsecond %+v", first, second)
	}
}

// maxFuzzCalls bounds the memory and device calls of one Emulate: each of
// at most MaxRepIterations iterations touches two operands of up to two
// pieces, each with at most a five-level walk, plus the fetch.
const maxFuzzCalls = MaxRepIterations*2*2*6 + 64

func fuzzCheck(t *testing.T, f *fakeVM, e *Emulator, err error, rip0, fl0 uint64) fuzzResult {
	t.Helper()
	if f.calls > maxFuzzCalls {
		t.Fatalf("%d platform memory calls in one Emulate, bound %d", f.calls, maxFuzzCalls)
	}
	if (f.rflags^fl0)&^RFLAGS_ARITH != 0 {
		t.Fatalf("RFLAGS changed outside the status flags: %#x -> %#x", fl0, f.rflags)
	}
	res := fuzzResult{gpr: f.gpr, rip: f.rip, rflags: f.rflags, log: fmt.Sprint(f.log)}
	if err != nil {
		res.err = err.Error()
		if f.rip != rip0 {
			t.Fatalf("RIP moved from %#x to %#x on error %v", rip0, f.rip, err)
		}
		var flt *Fault
		if errors.As(err, &flt) && flt.Vector != EXC_PF && flt.Vector != EXC_GP && flt.Vector != EXC_SS {
			t.Fatalf("unexpected exception vector in %v", err)
		}
		if res.err == "" {
			t.Fatal("empty error message")
		}
		return res
	}
	if e.inst == nil {
		t.Fatal("success without an instruction")
	}
	if f.rip != e.nextRIP && !(isStringOp(e.inst.Op) && f.rip == rip0) {
		t.Fatalf("%v: RIP %#x, want %#x (or %#x for a restarted string op)", e.inst.Op, f.rip, e.nextRIP, rip0)
	}
	return res
}

// isStringOp reports whether op is an emulated string instruction.
func isStringOp(op x86asm.Op) bool {
	switch op {
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.LODSB, x86asm.LODSW, x86asm.LODSD, x86asm.LODSQ,
		x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		return true
	}
	return false
}

// rollbackTo undoes tracked RAM writes back to the first n records.
func (f *fakeVM) rollbackTo(n int) {
	for i := len(f.undo) - 1; i >= n; i-- {
		copy(f.ram[f.undo[i].gpa:], f.undo[i].old)
	}
	f.undo = f.undo[:n]
}

// fuzzSeed encodes a seed in FuzzEmulate's layout: mode, code, the faulting
// device offset, and registers (unset ones are 0; those in ptrs point at the
// device offset).
func fuzzSeed(m vmMode, opts byte, code []byte, off uint16, ptrs []int, regs map[int]uint64) []byte {
	b := []byte{byte(m) | opts}
	var c [15]byte
	copy(c[:], code)
	b = append(b, c[:]...)
	b = append(b, 0, byte(off), byte(off>>8))
	for i := 0; i < NumGPR; i++ {
		if v, ok := regs[i]; ok {
			b = append(b, 2)
			b = binary.LittleEndian.AppendUint64(b, v)
			continue
		}
		isPtr := false
		for _, p := range ptrs {
			isPtr = isPtr || p == i
		}
		if isPtr {
			b = append(b, 0, byte(off), byte(off>>8))
		} else {
			b = append(b, 3, 0)
		}
	}
	return b
}

// fuzzSeeds returns one seed per emulated form and mode, plus a few that
// start from faults.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	common := [][]byte{
		{0x88, 0x07}, {0x89, 0x07}, {0x66, 0x89, 0x07}, {0x8a, 0x27}, {0x8b, 0x07}, {0x66, 0x8b, 0x07},
		{0xc6, 0x07, 0x11}, {0xc7, 0x07, 0x11, 0x22, 0x33, 0x44}, {0x66, 0xc7, 0x07, 0x11, 0x22},
		{0x0f, 0xb6, 0x07}, {0x0f, 0xb7, 0x07}, {0x0f, 0xbe, 0x07}, {0x0f, 0xbf, 0x07},
		{0x87, 0x07}, {0x86, 0x27},
		{0x0f, 0xa3, 0x07}, {0x0f, 0xab, 0x0f}, {0x0f, 0xb3, 0x17}, {0x0f, 0xbb, 0x1f},
		{0x0f, 0xba, 0x27, 0x05}, {0x0f, 0xba, 0x2f, 0x21}, {0x0f, 0xba, 0x37, 0x03}, {0x0f, 0xba, 0x3f, 0x1f},
		{0xaa}, {0xab}, {0xf3, 0xab}, {0xf3, 0xa4}, {0xf3, 0xa5}, {0xac}, {0xf3, 0xad}, {0x66, 0xa5},
		{0xf0, 0x01, 0x07}, {0x26, 0x8b, 0x07}, {0x64, 0x8b, 0x07}, {0x8b, 0x46, 0x04}, {0x89, 0x44, 0xb3, 0x08},
	}
	moffs := map[int][][]byte{
		16: {{0xa0, 0x10, 0x00}, {0xa1, 0x10, 0x00}, {0xa2, 0x10, 0x00}, {0xa3, 0x10, 0x00}},
		32: {{0xa0, 0x10, 0, 0, 0xf0}, {0xa1, 0x10, 0, 0, 0xf0}, {0xa2, 0x10, 0, 0, 0xf0}, {0xa3, 0x10, 0, 0, 0xf0}},
		64: {{0xa0, 0x10, 0, 0, 0xf0, 0, 0, 0, 0}, {0x48, 0xa3, 0x10, 0, 0, 0xf0, 0, 0, 0, 0},
			{0x48, 0x89, 0x07}, {0x48, 0x63, 0x07}, {0x48, 0x0f, 0xbe, 0x07}, {0x4d, 0x89, 0x45, 0x08},
			{0x8b, 0x05, 0xfa, 0xff, 0x8e, 0x00}, {0xf3, 0x48, 0xab}, {0x67, 0xf3, 0xaa}, {0x48, 0x0f, 0xa3, 0x07},
			{0xc5, 0xf8, 0x28, 0x07}, {0x0f, 0x28, 0x07}},
	}
	ptrs := []int{RBX, RSI, RDI, RBP, R13}
	for _, m := range allModes {
		bits := m.bits()
		var codes [][]byte
		codes = append(codes, common...)
		codes = append(codes, moffs[bits]...)
		for _, form := range aluForms(bits) {
			codes = append(codes, form.code)
		}
		for i, c := range codes {
			regs := map[int]uint64{RCX: uint64(i%5 + 1), RAX: 0x8877665544332211}
			seeds = append(seeds, fuzzSeed(m, 0, c, 0x10, ptrs, regs))
		}
		// A string copy from RAM with DF and accessed/dirty updates.
		seeds = append(seeds, fuzzSeed(m, 0x18, []byte{0xf3, 0xa4}, 0x800, []int{RDI}, map[int]uint64{RSI: 0x1000, RCX: 9}))
		// User mode with SMAP, and a corrupted page table.
		s := fuzzSeed(m, 0x60, []byte{0x89, 0x07}, 0x20, ptrs, nil)
		s = append(s[:1], append([]byte{0x07}, s[1:]...)...)
		seeds = append(seeds, append(s, 0x10, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0))
	}
	return seeds
}

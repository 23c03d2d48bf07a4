package x86emu

import (
	"fmt"
	"math/big"
	"math/rand"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// refALU is an independent reference for the arithmetic instructions: it
// works on unbounded integers (math/big) and reads each flag off the SDM
// definition: CF = the unsigned result does not fit, OF = the signed result
// does not fit, AF = carry/borrow out of the low nibble, SF/ZF/PF from the
// truncated result. Logic ops clear CF, OF and (Keel's choice for the
// undefined flag) AF.
func refALU(op x86asm.Op, a, b uint64, cfIn bool, size int) (r, flags uint64, writes bool) {
	n := uint(size * 8)
	mod := new(big.Int).Lsh(big.NewInt(1), n)
	half := new(big.Int).Lsh(big.NewInt(1), n-1)
	m := sizeMask(size)
	a, b = a&m, b&m
	ua, ub := new(big.Int).SetUint64(a), new(big.Int).SetUint64(b)
	signed := func(v uint64) *big.Int {
		x := new(big.Int).SetUint64(v)
		if x.Cmp(half) >= 0 {
			x.Sub(x, mod)
		}
		return x
	}
	sa, sb := signed(a), signed(b)
	c := int64(0)
	if cfIn {
		c = 1
	}
	bc := big.NewInt(c)
	var ur, sr *big.Int // exact unsigned and signed results
	var af bool
	logic := false
	writes = true
	keepCF := false
	switch op {
	case x86asm.ADD, x86asm.ADC, x86asm.INC:
		if op == x86asm.ADD {
			bc = big.NewInt(0)
			c = 0
		}
		if op == x86asm.INC {
			ub, sb, bc, c = big.NewInt(1), big.NewInt(1), big.NewInt(0), 0
			b = 1
			keepCF = true
		}
		ur = new(big.Int).Add(ua, ub)
		ur.Add(ur, bc)
		sr = new(big.Int).Add(sa, sb)
		sr.Add(sr, bc)
		af = a&0xf+b&0xf+uint64(c) > 0xf
	case x86asm.SUB, x86asm.SBB, x86asm.CMP, x86asm.DEC, x86asm.NEG:
		if op != x86asm.SBB {
			bc, c = big.NewInt(0), 0
		}
		if op == x86asm.DEC {
			ub, sb, b = big.NewInt(1), big.NewInt(1), 1
			keepCF = true
		}
		if op == x86asm.NEG {
			ub, sb, b = ua, sa, a
			ua, sa, a = big.NewInt(0), big.NewInt(0), 0
		}
		ur = new(big.Int).Sub(ua, ub)
		ur.Sub(ur, bc)
		sr = new(big.Int).Sub(sa, sb)
		sr.Sub(sr, bc)
		af = int64(a&0xf)-int64(b&0xf)-c < 0
		writes = op != x86asm.CMP
	case x86asm.AND, x86asm.TEST:
		ur = new(big.Int).SetUint64(a & b)
		logic = true
		writes = op == x86asm.AND
	case x86asm.OR:
		ur = new(big.Int).SetUint64(a | b)
		logic = true
	case x86asm.XOR:
		ur = new(big.Int).SetUint64(a ^ b)
		logic = true
	default:
		panic("refALU: " + op.String())
	}
	rr := new(big.Int).Mod(ur, mod)
	r = rr.Uint64()
	if !logic {
		if ur.Sign() < 0 || ur.Cmp(mod) >= 0 {
			flags |= RFLAGS_CF
		}
		if sr.Cmp(half) >= 0 || sr.Cmp(new(big.Int).Neg(half)) < 0 {
			flags |= RFLAGS_OF
		}
		if af {
			flags |= RFLAGS_AF
		}
	}
	if keepCF {
		flags &^= RFLAGS_CF
		if cfIn {
			flags |= RFLAGS_CF
		}
	}
	if r == 0 {
		flags |= RFLAGS_ZF
	}
	if r>>(n-1) != 0 {
		flags |= RFLAGS_SF
	}
	ones := 0
	for i := 0; i < 8; i++ {
		ones += int(r >> i & 1)
	}
	if ones%2 == 0 {
		flags |= RFLAGS_PF
	}
	return r, flags, writes
}

// aluForm is one encoding of an arithmetic instruction on [rDI] (or [BX] in
// 16-bit code), with CL/CX/ECX/RCX as the register operand.
type aluForm struct {
	name   string
	op     x86asm.Op
	code   []byte
	size   int
	memDst bool    // memory is the destination (else the register is)
	imm    *uint64 // immediate as the CPU uses it (nil: register source)
	unary  bool
}

var aluOps = []x86asm.Op{x86asm.ADD, x86asm.OR, x86asm.ADC, x86asm.SBB, x86asm.AND, x86asm.SUB, x86asm.XOR, x86asm.CMP}

// aluForms lists every encoding of the emulated arithmetic instructions in
// code of the given width, with the operand-size prefixes that apply.
func aluForms(bits int) []aluForm {
	type psize struct {
		pfx  []byte
		size int
	}
	var sizes []psize
	switch bits {
	case 16:
		sizes = []psize{{nil, 2}, {[]byte{0x66}, 4}}
	case 32:
		sizes = []psize{{nil, 4}, {[]byte{0x66}, 2}}
	case 64:
		sizes = []psize{{nil, 4}, {[]byte{0x66}, 2}, {[]byte{0x48}, 8}}
	}
	const modrmCL = 0x0f // mod=00 reg=1 (CL..RCX) rm=7 ([rDI] / [BX])
	imm8 := uint64(0x80)
	var forms []aluForm
	add := func(f aluForm) { forms = append(forms, f) }
	for k, op := range append(aluOps, x86asm.TEST) {
		name := op.String()
		if op == x86asm.TEST {
			add(aluForm{name: "TEST r/m8,r8", op: op, code: []byte{0x84, modrmCL}, size: 1, memDst: true})
			add(aluForm{name: "TEST r/m8,imm8", op: op, code: []byte{0xf6, 0x07, 0x80}, size: 1, memDst: true, imm: &imm8})
			for _, s := range sizes {
				add(aluForm{name: fmt.Sprintf("TEST r/m%d,r", s.size*8), op: op, code: cat(s.pfx, []byte{0x85, modrmCL}), size: s.size, memDst: true})
				immb, iv := immFor(s.size)
				add(aluForm{name: fmt.Sprintf("TEST r/m%d,imm", s.size*8), op: op, code: cat(s.pfx, []byte{0xf7, 0x07}, immb), size: s.size, memDst: true, imm: &iv})
			}
			continue
		}
		base := byte(k * 8)
		slash := byte(k << 3)
		add(aluForm{name: name + " r/m8,r8", op: op, code: []byte{base, modrmCL}, size: 1, memDst: true})
		add(aluForm{name: name + " r8,r/m8", op: op, code: []byte{base + 2, modrmCL}, size: 1})
		add(aluForm{name: name + " r/m8,imm8", op: op, code: []byte{0x80, 0x07 | slash, 0x80}, size: 1, memDst: true, imm: &imm8})
		for _, s := range sizes {
			w := fmt.Sprint(s.size * 8)
			add(aluForm{name: name + " r/m" + w + ",r", op: op, code: cat(s.pfx, []byte{base + 1, modrmCL}), size: s.size, memDst: true})
			add(aluForm{name: name + " r" + w + ",r/m", op: op, code: cat(s.pfx, []byte{base + 3, modrmCL}), size: s.size})
			immb, iv := immFor(s.size)
			add(aluForm{name: name + " r/m" + w + ",imm", op: op, code: cat(s.pfx, []byte{0x81, 0x07 | slash}, immb), size: s.size, memDst: true, imm: &iv})
			sx := signExtend(0x80, 1) & sizeMask(s.size)
			add(aluForm{name: name + " r/m" + w + ",imm8", op: op, code: cat(s.pfx, []byte{0x83, 0x07 | slash, 0x80}), size: s.size, memDst: true, imm: &sx})
		}
	}
	for _, u := range []struct {
		op    x86asm.Op
		slash byte
		b8    byte
	}{{x86asm.INC, 0, 0xfe}, {x86asm.DEC, 1, 0xfe}, {x86asm.NOT, 2, 0xf6}, {x86asm.NEG, 3, 0xf6}} {
		add(aluForm{name: u.op.String() + " r/m8", op: u.op, code: []byte{u.b8, 0x07 | u.slash<<3}, size: 1, memDst: true, unary: true})
		for _, s := range sizes {
			add(aluForm{name: fmt.Sprintf("%v r/m%d", u.op, s.size*8), op: u.op, code: cat(s.pfx, []byte{u.b8 + 1, 0x07 | u.slash<<3}), size: s.size, memDst: true, unary: true})
		}
	}
	return forms
}

// immFor returns the encoded iz immediate for an operand size and the value
// the CPU uses (imm32 sign-extended for 64-bit operands).
func immFor(size int) ([]byte, uint64) {
	switch size {
	case 2:
		return []byte{0x01, 0x80}, 0x8001
	case 4:
		return []byte{0x01, 0x00, 0x00, 0x80}, 0x80000001
	}
	return []byte{0x01, 0x00, 0x00, 0x80}, 0xffffffff80000001
}

var interesting = []uint64{
	0, 1, 2, 0xf, 0x10, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff,
	0x7fffffff, 0x80000000, 0xffffffff, 0x7fffffffffffffff, 0x8000000000000000,
	0xffffffffffffffff, 0x0123456789abcdef, 0xfedcba9876543210,
}

// aluValues returns interesting operand values plus seeded random ones.
func aluValues(rng *rand.Rand, n int) []uint64 {
	v := append([]uint64(nil), interesting...)
	for i := 0; i < n; i++ {
		v = append(v, rng.Uint64()>>(rng.Intn(4)*16))
	}
	return v
}

func TestALU(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, m := range []vmMode{modeReal, modeProt16, modePaged32, modeLong64} {
		for _, form := range aluForms(m.bits()) {
			t.Run(m.String()+"/"+form.name, func(t *testing.T) {
				inst, err := x86asm.Decode(form.code, m.bits())
				if err != nil || inst.Op != form.op || inst.MemBytes != form.size || inst.Len != len(form.code) {
					t.Fatalf("test encoding % x decodes as %v (%d bytes, mem %d), want %v of size %d", form.code, inst, inst.Len, inst.MemBytes, form.op, form.size)
				}
				f := newFakeVM()
				f.setMode(t, m)
				f.setCode(m, form.code)
				e := New(f)
				rip0 := f.rip
				vals := aluValues(rng, 12)
				bvals := vals
				if form.imm != nil || form.unary {
					bvals = []uint64{0}
				}
				const off = 0x18
				for _, a := range vals {
					for _, b := range bvals {
						for _, cf := range []bool{false, true} {
							checkALU(t, f, e, m, form, rip0, off, a, b, cf)
						}
					}
				}
			})
		}
	}
}

func checkALU(t *testing.T, f *fakeVM, e *Emulator, m vmMode, form aluForm, rip0, off, a, b uint64, cf bool) {
	t.Helper()
	size := form.size
	mask := sizeMask(size)
	for i := range f.gpr {
		f.gpr[i] = regPattern(i)
	}
	f.gpr[RDI] = ptr(m, off)
	f.gpr[RBX] = ptr(m, off)
	f.rip = rip0
	fl0 := uint64(0x2 | RFLAGS_SF | RFLAGS_OF | RFLAGS_PF) // noise in the status flags
	if cf {
		fl0 |= RFLAGS_CF
	}
	f.rflags = fl0
	f.log = f.log[:0]

	// Operands: memory holds mv, the register (RCX) rv.
	var mv, rv uint64
	var x, y uint64 // a op b as the instruction sees it
	switch {
	case form.unary:
		mv = a & mask
		x = mv
	case form.imm != nil:
		mv = a & mask
		x, y = mv, *form.imm
	case form.memDst:
		mv, rv = a&mask, b
		x, y = mv, b&mask
	default:
		rv, mv = a, b&mask
		x, y = a&mask, mv
	}
	if !form.unary && form.imm == nil {
		f.gpr[RCX] = rv&mask | regPattern(RCX)&^mask
	}
	putLE(f.dev[off:off+uint64(size)], mv)
	before := f.gpr

	var r, wantFlags uint64
	writes := true
	if form.op == x86asm.NOT {
		r, wantFlags = ^x&mask, fl0
	} else {
		var rf uint64
		r, rf, writes = refALU(form.op, x, y, cf, size)
		wantFlags = fl0&^RFLAGS_ARITH | rf
	}

	if err := e.Emulate(f.devGPA(off)); err != nil {
		t.Fatalf("%v a=%#x b=%#x cf=%v: %v", form.name, a, b, cf, err)
	}
	desc := func() string { return fmt.Sprintf("%s with x=%#x y=%#x cf=%v", form.name, x, y, cf) }
	if f.rflags != wantFlags {
		t.Fatalf("%s: RFLAGS %#x, want %#x", desc(), f.rflags, wantFlags)
	}
	want := before
	wantLog := []access{rd(off, size, mv)}
	if form.memDst {
		if writes {
			wantLog = append(wantLog, wr(off, size, r))
		}
	} else if writes {
		switch size {
		case 4:
			want[RCX] = r
		default:
			want[RCX] = before[RCX]&^mask | r
		}
	}
	if want != f.gpr {
		t.Fatalf("%s: registers %#x, want %#x", desc(), f.gpr, want)
	}
	for i := range wantLog {
		wantLog[i].gpa += f.devBase
	}
	if fmt.Sprint(f.log) != fmt.Sprint(wantLog) {
		t.Fatalf("%s: MMIO %v, want %v", desc(), f.log, wantLog)
	}
	if f.rip != rip0+uint64(len(form.code)) {
		t.Fatalf("%s: RIP %#x", desc(), f.rip)
	}
}

// TestRefALU pins the reference itself to hand-computed values, so that it
// and the emulator cannot agree on a wrong answer.
func TestRefALU(t *testing.T) {
	tests := []struct {
		op    x86asm.Op
		a, b  uint64
		cf    bool
		size  int
		r, fl uint64
	}{
		{x86asm.ADD, 0xff, 1, false, 1, 0, RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.ADD, 0x7f, 1, false, 1, 0x80, RFLAGS_OF | RFLAGS_SF | RFLAGS_AF},
		{x86asm.ADC, 0xfffe, 1, true, 2, 0, RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.SUB, 0, 1, false, 4, 0xffffffff, RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.SUB, 0x80000000, 1, false, 4, 0x7fffffff, RFLAGS_OF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.SBB, 5, 5, true, 8, ^uint64(0), RFLAGS_CF | RFLAGS_SF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.CMP, 3, 3, false, 1, 0, RFLAGS_ZF | RFLAGS_PF},
		{x86asm.AND, 0xf0, 0x3c, false, 1, 0x30, RFLAGS_PF},
		{x86asm.XOR, 0x8000, 0x0001, false, 2, 0x8001, RFLAGS_SF},
		{x86asm.INC, 0xffffffff, 0, true, 4, 0, RFLAGS_CF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.DEC, 0, 0, false, 2, 0xffff, RFLAGS_SF | RFLAGS_AF | RFLAGS_PF},
		{x86asm.NEG, 0x80, 0, false, 1, 0x80, RFLAGS_CF | RFLAGS_OF | RFLAGS_SF},
		{x86asm.NEG, 0, 0, true, 8, 0, RFLAGS_ZF | RFLAGS_PF},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%d/%#x,%#x", tt.op, tt.size, tt.a, tt.b), func(t *testing.T) {
			r, fl, _ := refALU(tt.op, tt.a, tt.b, tt.cf, tt.size)
			if r != tt.r || fl != tt.fl {
				t.Errorf("refALU = %#x %#x, want %#x %#x", r, fl, tt.r, tt.fl)
			}
			er, ef, _ := alu(tt.op, tt.a, tt.b, tt.size, map[bool]uint64{true: RFLAGS_CF}[tt.cf])
			if er != tt.r || ef&RFLAGS_ARITH != tt.fl {
				t.Errorf("alu = %#x %#x, want %#x %#x", er, ef&RFLAGS_ARITH, tt.r, tt.fl)
			}
		})
	}
}

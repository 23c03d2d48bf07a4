package hostalu

import "testing"

func TestExecKnownValues(t *testing.T) {
	if !Available {
		t.Skip("host is not amd64")
	}
	const (
		cf = 0x1
		pf = 0x4
		af = 0x10
		zf = 0x40
		sf = 0x80
		of = 0x800
	)
	tests := []struct {
		name      string
		op        Op
		size      int
		a, b, fin uint64
		r, f      uint64
	}{
		{"add8 wraps", ADD, 1, 0xff, 1, 0, 0, cf | pf | af | zf},
		{"add32 signed overflow", ADD, 4, 0x7fffffff, 1, 0, 0x80000000, af | sf | of | pf},
		{"adc64 carry in", ADC, 8, 1, 1, cf, 3, pf},
		{"sub16 borrow", SUB, 2, 1, 2, 0, 0xffff, cf | af | sf | pf},
		{"cmp is a-b", CMP, 4, 1, 2, 0, 1, cf | af | sf | pf},
		{"sbb8 borrow in", SBB, 1, 0, 0, cf, 0xff, cf | af | sf | pf},
		{"and clears cf of", AND, 8, 0xf0, 0x0f, cf | of, 0, zf | pf},
		{"inc keeps cf", INC, 1, 0x7f, 0, cf, 0x80, cf | af | sf | of},
		{"dec to zero", DEC, 2, 1, 0, 0, 0, zf | pf},
		{"neg of zero", NEG, 4, 0, 0, cf, 0, zf | pf},
		{"neg sets cf", NEG, 1, 1, 0, 0, 0xff, cf | af | sf | pf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f, ok := Exec(tt.op, tt.size, tt.a, tt.b, tt.fin)
			if !ok {
				t.Fatal("Exec not ok")
			}
			if r != tt.r || f != tt.f {
				t.Errorf("%v/%d(%#x, %#x, fl %#x) = %#x fl %#x, want %#x fl %#x", tt.op, tt.size, tt.a, tt.b, tt.fin, r, f, tt.r, tt.f)
			}
		})
	}
}

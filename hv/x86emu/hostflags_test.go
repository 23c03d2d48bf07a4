package x86emu

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/keel-hv/keel/hv/x86emu/internal/hostalu"
	"golang.org/x/arch/x86/x86asm"
)

// TestFlagsAgainstHostCPU runs each arithmetic instruction on the host CPU
// (internal/hostalu, amd64 only) and on the emulator's alu with the same
// inputs, and requires the same result and status flags. AF after AND, OR,
// XOR and TEST is undefined by the SDM, so it is not compared there.
func TestFlagsAgainstHostCPU(t *testing.T) {
	if !hostalu.Available {
		t.Skip("host is not amd64: no silicon to compare with")
	}
	ops := []struct {
		emu   x86asm.Op
		host  hostalu.Op
		logic bool
	}{
		{x86asm.ADD, hostalu.ADD, false},
		{x86asm.ADC, hostalu.ADC, false},
		{x86asm.SUB, hostalu.SUB, false},
		{x86asm.SBB, hostalu.SBB, false},
		{x86asm.CMP, hostalu.CMP, false},
		{x86asm.AND, hostalu.AND, true},
		{x86asm.OR, hostalu.OR, true},
		{x86asm.XOR, hostalu.XOR, true},
		{x86asm.TEST, hostalu.TEST, true},
		{x86asm.INC, hostalu.INC, false},
		{x86asm.DEC, hostalu.DEC, false},
		{x86asm.NEG, hostalu.NEG, false},
	}
	rng := rand.New(rand.NewSource(2))
	vals := aluValues(rng, 40)
	for _, op := range ops {
		for _, size := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%v/%d", op.emu, size*8), func(t *testing.T) {
				n := 0
				check := func(a, b, fin uint64) {
					n++
					hr, hf, ok := hostalu.Exec(op.host, size, a, b, fin)
					if !ok {
						t.Fatal("hostalu.Exec refused")
					}
					er, ef, write := alu(op.emu, a, b, size, fin|0x2)
					ef &= RFLAGS_ARITH
					mask := uint64(RFLAGS_ARITH)
					if op.logic {
						mask &^= RFLAGS_AF
					}
					if write && er != hr || ef&mask != hf&mask {
						t.Fatalf("%v/%d a=%#x b=%#x flags in %#x: emulator %#x flags %#x, host %#x flags %#x",
							op.emu, size*8, a, b, fin, er, ef, hr, hf)
					}
				}
				for _, a := range vals {
					for _, b := range vals {
						check(a, b, 0)
						check(a, b, RFLAGS_ARITH)
					}
				}
				for i := 0; i < 20000; i++ {
					check(rng.Uint64(), rng.Uint64(), rng.Uint64()&RFLAGS_ARITH)
				}
				if n == 0 {
					t.Fatal("no inputs")
				}
			})
		}
	}
}

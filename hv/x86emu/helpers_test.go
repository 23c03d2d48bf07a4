package x86emu

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// regVal sets or expects one general-purpose register.
type regVal struct {
	n int
	v uint64
}

// tcase is one instruction run against the fake machine.
type tcase struct {
	name string
	code []byte
	asm  string   // x86asm Intel syntax: checks the hand encoding
	regs []regVal // registers before (the others hold a pattern)
	fl   uint64   // RFLAGS before (0 means 0x2)
	dev  []byte   // device window contents before, from offset 0
	off  uint64   // device offset of the faulting access
	gpa  *uint64  // faulting GPA override (default devGPA(off))
	want []regVal // registers that change (the others must not)
	wfl  *uint64  // RFLAGS after (default: unchanged)
	log  []access // MMIO accesses, gpa as a device offset
	rip  *uint64  // RIP after (default: past the instruction)
	err  string   // expected error substring
	prep func(f *fakeVM)
	post func(t *testing.T, f *fakeVM)
}

func u64(v uint64) *uint64 { return &v }

// regPattern is what registers hold unless a case sets them: distinct, with
// every byte non-zero, so width bugs show.
func regPattern(n int) uint64 { return 0x8877665544332211 ^ uint64(n+1)*0x0101010101010101 }

var gprNames = [...]string{"RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12", "R13", "R14", "R15"}

// runCase runs c in mode m on a fresh machine.
func runCase(t *testing.T, m vmMode, c tcase) {
	t.Helper()
	f := newFakeVM()
	f.setMode(t, m)
	runOn(t, f, m, c)
}

func runOn(t *testing.T, f *fakeVM, m vmMode, c tcase) {
	t.Helper()
	f.log = f.log[:0]
	for i := range f.gpr {
		f.gpr[i] = regPattern(i)
	}
	for _, r := range c.regs {
		f.gpr[r.n] = r.v
	}
	f.rflags = 0x2
	if c.fl != 0 {
		f.rflags = c.fl | 0x2
	}
	for i := range f.dev {
		f.dev[i] = 0
	}
	copy(f.dev[:], c.dev)
	f.setCode(m, c.code)
	if c.prep != nil {
		c.prep(f)
	}
	if c.asm != "" {
		inst, err := x86asm.Decode(c.code, m.bits())
		if err != nil {
			t.Fatalf("test encoding % x does not decode in %d-bit mode: %v", c.code, m.bits(), err)
		}
		if got := x86asm.IntelSyntax(inst, 0, nil); got != c.asm {
			t.Fatalf("test encoding % x is %q in %d-bit mode, the case says %q", c.code, got, m.bits(), c.asm)
		}
	}
	before := f.gpr
	fl0 := f.rflags
	rip0 := f.rip
	gpa := f.devGPA(c.off)
	if c.gpa != nil {
		gpa = *c.gpa
	}
	e := New(f)
	err := e.Emulate(gpa)
	if c.err != "" {
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Fatalf("Emulate error = %v, want one containing %q", err, c.err)
		}
		if f.rip != rip0 {
			t.Errorf("RIP moved to %#x on error", f.rip)
		}
	} else if err != nil {
		t.Fatalf("Emulate: %v", err)
	}
	want := before
	for _, r := range c.want {
		want[r.n] = r.v
	}
	for i := range want {
		if f.gpr[i] != want[i] {
			t.Errorf("%s = %#x, want %#x", gprNames[i], f.gpr[i], want[i])
		}
	}
	wfl := fl0
	if c.wfl != nil {
		wfl = *c.wfl | 0x2
	}
	if f.rflags != wfl {
		t.Errorf("RFLAGS = %#x, want %#x", f.rflags, wfl)
	}
	if c.err == "" {
		wrip := rip0 + uint64(len(c.code))
		if c.rip != nil {
			wrip = *c.rip
		}
		if f.rip != wrip {
			t.Errorf("RIP = %#x, want %#x", f.rip, wrip)
		}
	}
	if c.log != nil || c.err == "" {
		var wl []access
		for _, a := range c.log {
			a.gpa += f.devBase
			wl = append(wl, a)
		}
		if fmt.Sprint(f.log) != fmt.Sprint(wl) {
			t.Errorf("MMIO log = %v, want %v", f.log, wl)
		}
	}
	if c.post != nil {
		c.post(t, f)
	}
}

// modesOf returns the test modes whose code is bits wide.
func modesOf(bits int) []vmMode {
	var ms []vmMode
	for _, m := range allModes {
		if m.bits() == bits {
			ms = append(ms, m)
		}
	}
	return ms
}

// runTable runs every case in every mode of the given width.
func runTable(t *testing.T, bits int, cases []tcase) {
	t.Helper()
	for _, m := range modesOf(bits) {
		for _, c := range cases {
			t.Run(m.String()+"/"+c.name, func(t *testing.T) { runCase(t, m, c) })
		}
	}
}

// rd and wr build expected MMIO accesses.
func rd(off uint64, size int, v uint64) access {
	return access{gpa: off, size: size, val: v}
}

func wr(off uint64, size int, v uint64) access {
	return access{gpa: off, size: size, write: true, val: v}
}

// leBytes returns v as size little-endian bytes.
func leBytes(v uint64, size int) []byte {
	b := make([]byte, size)
	putLE(b, v)
	return b
}

// at returns dev contents with b at offset off.
func at(off int, b ...byte) []byte {
	d := make([]byte, off+len(b))
	copy(d[off:], b)
	return d
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func asFault(t *testing.T, err error) *Fault {
	t.Helper()
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v is not a *Fault", err)
	}
	return f
}

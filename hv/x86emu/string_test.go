package x86emu

import (
	"bytes"
	"errors"
	"testing"
)

const (
	ramSrc = 0x200000 // RAM buffer the MOVS cases copy from
	ramDst = 0x300000 // RAM buffer the MOVS cases copy to
)

// seq returns n bytes 1, 2, 3, ...
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func fillRAM(at uint64, b []byte) func(f *fakeVM) {
	return func(f *fakeVM) { copy(f.ram[at:], b) }
}

func wantRAM(at uint64, b []byte) func(t *testing.T, f *fakeVM) {
	return func(t *testing.T, f *fakeVM) {
		t.Helper()
		if got := f.ram[at : at+uint64(len(b))]; !bytes.Equal(got, b) {
			t.Errorf("RAM at %#x = % x, want % x", at, got, b)
		}
	}
}

func TestString64(t *testing.T) {
	dev := func(off uint64) uint64 { return mmioBase + off }
	runTable(t, 64, []tcase{
		{name: "stosb", code: []byte{0xaa}, asm: "stosb byte ptr [rdi]",
			regs: []regVal{{RDI, dev(0x10)}, {RAX, 0x5a}}, off: 0x10,
			want: []regVal{{RDI, dev(0x11)}}, log: []access{wr(0x10, 1, 0x5a)}},
		{name: "stosd backwards", code: []byte{0xab}, asm: "stosd dword ptr [rdi]",
			regs: []regVal{{RDI, dev(0x10)}, {RAX, rax0}}, fl: RFLAGS_DF, off: 0x10,
			want: []regVal{{RDI, dev(0x0c)}}, log: []access{wr(0x10, 4, 0x55667788)}},
		{name: "rep stosd", code: []byte{0xf3, 0xab}, asm: "rep stosd dword ptr [rdi]",
			regs: []regVal{{RDI, dev(0x10)}, {RAX, 0xa5a5a5a5}, {RCX, 4}}, off: 0x10,
			want: []regVal{{RDI, dev(0x20)}, {RCX, 0}},
			log:  []access{wr(0x10, 4, 0xa5a5a5a5), wr(0x14, 4, 0xa5a5a5a5), wr(0x18, 4, 0xa5a5a5a5), wr(0x1c, 4, 0xa5a5a5a5)}},
		{name: "repne stosq acts as rep", code: []byte{0xf2, 0x48, 0xab}, asm: "repne stosq qword ptr [rdi]",
			regs: []regVal{{RDI, dev(0x10)}, {RAX, 7}, {RCX, 2}}, off: 0x10,
			want: []regVal{{RDI, dev(0x20)}, {RCX, 0}}, log: []access{wr(0x10, 8, 7), wr(0x18, 8, 7)}},
		{name: "rep stosb with RCX=0 does nothing", code: []byte{0xf3, 0xaa}, asm: "rep stosb byte ptr [rdi]",
			regs: []regVal{{RDI, dev(0x10)}, {RCX, 0}}, off: 0x10, log: []access{}},
		{name: "rep stosd stops at the end of the page", code: []byte{0xf3, 0xab}, asm: "rep stosd dword ptr [rdi]",
			regs: []regVal{{RDI, dev(0xff8)}, {RAX, 1}, {RCX, 4}}, off: 0xff8,
			want: []regVal{{RDI, dev(0x1000)}, {RCX, 2}}, rip: u64(codeGPA),
			log: []access{wr(0xff8, 4, 1), wr(0xffc, 4, 1)}},
		{name: "rep movsb RAM to MMIO", code: []byte{0xf3, 0xa4}, asm: "rep movsb byte ptr [rdi], byte ptr [rsi]",
			regs: []regVal{{RSI, ramSrc}, {RDI, dev(0x100)}, {RCX, 5}}, off: 0x100,
			prep: fillRAM(ramSrc, seq(5)),
			want: []regVal{{RSI, ramSrc + 5}, {RDI, dev(0x105)}, {RCX, 0}},
			log:  []access{wr(0x100, 1, 1), wr(0x101, 1, 2), wr(0x102, 1, 3), wr(0x103, 1, 4), wr(0x104, 1, 5)}},
		{name: "rep movsd MMIO to RAM", code: []byte{0xf3, 0xa5}, asm: "rep movsd dword ptr [rdi], dword ptr [rsi]",
			regs: []regVal{{RSI, dev(0x40)}, {RDI, ramDst}, {RCX, 3}}, off: 0x40, dev: at(0x40, seq(12)...),
			want: []regVal{{RSI, dev(0x4c)}, {RDI, ramDst + 12}, {RCX, 0}},
			log:  []access{rd(0x40, 4, 0x04030201), rd(0x44, 4, 0x08070605), rd(0x48, 4, 0x0c0b0a09)},
			post: wantRAM(ramDst, seq(12))},
		{name: "rep movsq backwards RAM to MMIO", code: []byte{0xf3, 0x48, 0xa5}, asm: "rep movsq qword ptr [rdi], qword ptr [rsi]",
			regs: []regVal{{RSI, ramSrc + 8}, {RDI, dev(0x48)}, {RCX, 2}}, fl: RFLAGS_DF, off: 0x48,
			prep: fillRAM(ramSrc, seq(16)),
			want: []regVal{{RSI, ramSrc - 8}, {RDI, dev(0x38)}, {RCX, 0}},
			log:  []access{wr(0x48, 8, 0x100f0e0d0c0b0a09), wr(0x40, 8, 0x0807060504030201)}},
		{name: "movsw MMIO to MMIO on the same page", code: []byte{0x66, 0xa5}, asm: "movsw word ptr [rdi], word ptr [rsi]",
			regs: []regVal{{RSI, dev(0x0)}, {RDI, dev(0x100)}}, off: 0x100, dev: at(0, 0x34, 0x12),
			want: []regVal{{RSI, dev(0x2)}, {RDI, dev(0x102)}},
			log:  []access{rd(0, 2, 0x1234), wr(0x100, 2, 0x1234)}},
		{name: "movsb fs: source", code: []byte{0x64, 0xa4}, asm: "movsb byte ptr [rdi], byte ptr fs:[rsi]",
			regs: []regVal{{RSI, 0x10}, {RDI, dev(0x20)}}, off: 0x20,
			prep: func(f *fakeVM) { f.segs[SegFS].Base = ramSrc; f.ram[ramSrc+0x10] = 0x77 },
			want: []regVal{{RSI, 0x11}, {RDI, dev(0x21)}}, log: []access{wr(0x20, 1, 0x77)}},
		{name: "lodsb", code: []byte{0xac}, asm: "lodsb byte ptr [rsi]",
			regs: []regVal{{RSI, dev(0x10)}, {RAX, rax0}}, dev: at(0x10, 0xab), off: 0x10,
			want: []regVal{{RSI, dev(0x11)}, {RAX, 0x11223344556677ab}}, log: []access{rd(0x10, 1, 0xab)}},
		{name: "rep lodsd keeps the last", code: []byte{0xf3, 0xad}, asm: "rep lodsd dword ptr [rsi]",
			regs: []regVal{{RSI, dev(0x10)}, {RAX, rax0}, {RCX, 2}}, dev: at(0x10, 1, 0, 0, 0, 2, 0, 0, 0), off: 0x10,
			want: []regVal{{RSI, dev(0x18)}, {RAX, 2}, {RCX, 0}}, log: []access{rd(0x10, 4, 1), rd(0x14, 4, 2)}},
		{name: "67: rep stosb uses EDI and ECX", code: []byte{0xf3, 0x67, 0xaa}, asm: "rep stosb byte ptr [edi]",
			regs: []regVal{{RDI, 0xffffffff_00000000 | dev(0x10)}, {RCX, 0xffffffff_00000002}, {RAX, 9}}, off: 0x10,
			want: []regVal{{RDI, dev(0x12)}, {RCX, 0}}, log: []access{wr(0x10, 1, 9), wr(0x11, 1, 9)}},
		{name: "movs between two RAM buffers is not the exit", code: []byte{0xa4}, asm: "movsb byte ptr [rdi], byte ptr [rsi]",
			regs: []regVal{{RSI, ramSrc}, {RDI, ramDst}}, off: 0,
			err: "not the faulting address", log: []access{}},
		{name: "rep movsd page fault on the RAM side mid-way", code: []byte{0xf3, 0xa5}, asm: "rep movsd dword ptr [rdi], dword ptr [rsi]",
			// RAM is mapped up to 8 MiB: the third source dword is past it.
			regs: []regVal{{RSI, ramSize - 8}, {RDI, dev(0x10)}, {RCX, 4}}, off: 0x10,
			want: []regVal{{RSI, ramSize}, {RDI, dev(0x18)}, {RCX, 2}},
			err:  "#PF", log: []access{wr(0x10, 4, 0), wr(0x14, 4, 0)},
			post: func(t *testing.T, f *fakeVM) {
				e := New(f)
				err := e.Emulate(f.devGPA(0x18))
				flt := asFault(t, err)
				if flt.Vector != EXC_PF || flt.Addr != ramSize || flt.ErrorCode != 0 {
					t.Errorf("fault = %+v, want a not-present read #PF at %#x", flt, ramSize)
				}
			}},
	})
}

func TestStringRepLimit(t *testing.T) {
	// REP STOSB of 5000 bytes from the start of the device: the first exit
	// does 4096 (MaxRepIterations, also the end of the page), leaves RIP on
	// the instruction; the guest re-executes it, exits on the next page and
	// the second call finishes.
	f := newFakeVM()
	f.setMode(t, modeLong64)
	f.noLogCap = true
	f.setCode(modeLong64, []byte{0xf3, 0xaa})
	f.gpr[RDI] = mmioBase
	f.gpr[RCX] = 5000
	f.gpr[RAX] = 0xee
	e := New(f)
	if err := e.Emulate(mmioBase); err != nil {
		t.Fatal(err)
	}
	if f.gpr[RCX] != 5000-MaxRepIterations || f.gpr[RDI] != mmioBase+MaxRepIterations || f.rip != codeGPA {
		t.Fatalf("after the first call RCX=%d RDI=%#x RIP=%#x", f.gpr[RCX], f.gpr[RDI], f.rip)
	}
	if err := e.Emulate(mmioBase + MaxRepIterations); err != nil {
		t.Fatal(err)
	}
	if f.gpr[RCX] != 0 || f.gpr[RDI] != mmioBase+5000 || f.rip != codeGPA+2 {
		t.Fatalf("after the second call RCX=%d RDI=%#x RIP=%#x", f.gpr[RCX], f.gpr[RDI], f.rip)
	}
	for i := 0; i < 5000; i++ {
		if f.dev[i] != 0xee {
			t.Fatalf("device byte %#x = %#x", i, f.dev[i])
		}
	}
	if s := e.Stats(); s.RepRestarts != 1 || s.Emulated != 1 {
		t.Errorf("stats %+v, want one restart and one completion", s)
	}
}

func TestString16(t *testing.T) {
	runTable(t, 16, []tcase{
		{name: "rep stosw", code: []byte{0xf3, 0xab}, asm: "rep stosw word ptr [di]",
			regs: []regVal{{RDI, 0x10}, {RCX, 0xabcd_0000_0000_0002}, {RAX, 0x1234}}, off: 0x10,
			want: []regVal{{RDI, 0x14}, {RCX, 0xabcd_0000_0000_0000}}, log: []access{wr(0x10, 2, 0x1234), wr(0x12, 2, 0x1234)}},
		{name: "DI wraps at 64 KiB and leaves the page", code: []byte{0xf3, 0xab}, asm: "rep stosw word ptr [di]",
			regs: []regVal{{RDI, 0x5555_0000_0000_fffe}, {RCX, 2}, {RAX, 0x1234}}, off: 0xffe,
			prep: func(f *fakeVM) { f.segs[SegES].Base = f.devBase - 0xf000 },
			want: []regVal{{RDI, 0x5555_0000_0000_0000}, {RCX, 1}}, rip: u64(0),
			log: []access{wr(0xffe, 2, 0x1234)}},
		{name: "rep movsb from RAM via DS:SI", code: []byte{0xf3, 0xa4}, asm: "rep movsb byte ptr [di], byte ptr [si]",
			regs: []regVal{{RSI, 0x0}, {RDI, 0x30}, {RCX, 3}}, off: 0x30,
			prep: func(f *fakeVM) {
				f.segs[SegDS].Base = ramSrc
				copy(f.ram[ramSrc:], []byte{7, 8, 9})
			},
			want: []regVal{{RSI, 3}, {RDI, 0x33}, {RCX, 0}}, log: []access{wr(0x30, 1, 7), wr(0x31, 1, 8), wr(0x32, 1, 9)}},
		{name: "movsd (66) to RAM via ES:DI", code: []byte{0x66, 0xa5}, asm: "movsd dword ptr [di], dword ptr [si]",
			regs: []regVal{{RSI, 0x40}, {RDI, 0x8}}, off: 0x40, dev: at(0x40, 1, 2, 3, 4),
			prep: func(f *fakeVM) { f.segs[SegES].Base = ramDst },
			want: []regVal{{RSI, 0x44}, {RDI, 0xc}}, log: []access{rd(0x40, 4, 0x04030201)},
			post: wantRAM(ramDst+8, []byte{1, 2, 3, 4})},
	})
}

func TestString32(t *testing.T) {
	runTable(t, 32, []tcase{
		{name: "rep movsw RAM to MMIO", code: []byte{0xf3, 0x66, 0xa5}, asm: "rep movsw word ptr [edi], word ptr [esi]",
			regs: []regVal{{RSI, ramSrc}, {RDI, mmioBase + 0x200}, {RCX, 2}}, off: 0x200,
			prep: fillRAM(ramSrc, seq(4)),
			want: []regVal{{RSI, ramSrc + 4}, {RDI, mmioBase + 0x204}, {RCX, 0}},
			log:  []access{wr(0x200, 2, 0x0201), wr(0x202, 2, 0x0403)}},
		{name: "stosd through ES base", code: []byte{0xab}, asm: "stosd dword ptr [edi]",
			regs: []regVal{{RDI, 0x10}, {RAX, 3}}, off: 0x10,
			prep: func(f *fakeVM) { f.segs[SegES].Base = mmioBase },
			want: []regVal{{RDI, 0x14}}, log: []access{wr(0x10, 4, 3)}},
	})
}

func TestStringMMIOError(t *testing.T) {
	boom := errors.New("device on fire")
	f := newFakeVM()
	f.setMode(t, modeLong64)
	f.setCode(modeLong64, []byte{0xf3, 0xab})
	f.gpr[RDI] = mmioBase
	f.gpr[RCX] = 3
	f.mmioErr = boom
	err := New(f).Emulate(mmioBase)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the device's", err)
	}
	if f.gpr[RCX] != 3 || f.gpr[RDI] != mmioBase || f.rip != codeGPA {
		t.Errorf("state changed on a failed first iteration: RCX=%d RDI=%#x RIP=%#x", f.gpr[RCX], f.gpr[RDI], f.rip)
	}
}

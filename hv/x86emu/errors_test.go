package x86emu

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

func TestRejected(t *testing.T) {
	rdi := regVal{RDI, mmioBase + 0x10}
	runTable(t, 64, []tcase{
		{name: "SSE move", code: []byte{0x0f, 0x28, 0x07}, regs: []regVal{rdi}, off: 0x10,
			err: "cannot emulate MOVAPS at rip 0x10000 (64-bit mode, bytes 0f 28 07)", log: []access{}},
		{name: "VEX", code: []byte{0xc5, 0xf8, 0x28, 0x07}, regs: []regVal{rdi}, off: 0x10,
			err: "VEX-encoded", log: []access{}},
		{name: "register-only MOV", code: []byte{0x89, 0xc0}, off: 0x10,
			err: "no memory operand", log: []access{}},
		{name: "register-only ADD", code: []byte{0x01, 0xc0}, off: 0x10,
			err: "no memory operand", log: []access{}},
		{name: "MOV to a segment register", code: []byte{0x8e, 0x1f}, regs: []regVal{rdi}, off: 0x10,
			err: "segment registers", log: []access{}},
		{name: "MOV from a segment register", code: []byte{0x8c, 0x1f}, regs: []regVal{rdi}, off: 0x10,
			err: "segment registers", log: []access{}},
		{name: "CMPXCHG", code: []byte{0x0f, 0xb1, 0x0f}, regs: []regVal{rdi}, off: 0x10,
			err: "CMPXCHG", log: []access{}},
		{name: "undecodable", code: []byte{0x0f, 0x04}, off: 0x10,
			err: "cannot emulate instruction at rip 0x10000 (64-bit mode, bytes 0f 04", log: []access{}},
		{name: "wrong faulting address", code: []byte{0x89, 0x07}, regs: []regVal{rdi}, off: 0x20,
			err: "not the faulting address 0xf0000020", log: []access{}},
		{name: "non-canonical operand is #GP", code: []byte{0x89, 0x07}, regs: []regVal{{RDI, 0x8000_0000_0000_0000}}, off: 0x10,
			err: "#GP", log: []access{}},
		{name: "non-canonical stack operand is #SS", code: []byte{0x89, 0x45, 0x00}, regs: []regVal{{RBP, 0x8000_0000_0000_0000}}, off: 0x10,
			err: "#SS", log: []access{}},
		{name: "operand page not present", code: []byte{0x89, 0x07}, regs: []regVal{{RDI, 0xc00000}}, off: 0x10,
			err: "#PF", log: []access{}},
		{name: "LOCK is ignored", code: []byte{0xf0, 0x01, 0x07}, asm: "lock add dword ptr [rdi], eax",
			regs: []regVal{rdi, {RAX, 1}}, dev: at(0x10, 1), off: 0x10,
			wfl: u64(0), log: []access{rd(0x10, 4, 1), wr(0x10, 4, 2)}},
		{name: "REP on MOV is ignored", code: []byte{0xf3, 0x89, 0x07},
			regs: []regVal{rdi, {RAX, 3}, {RCX, 10}}, off: 0x10, log: []access{wr(0x10, 4, 3)}},
	})
}

func TestUnsupportedErrorFields(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeLong64)
	f.setCode(modeLong64, []byte{0x0f, 0x28, 0x07, 0x90, 0x90})
	f.gpr[RDI] = mmioBase
	err := New(f).Emulate(mmioBase)
	var u *UnsupportedError
	if !errors.As(err, &u) {
		t.Fatalf("error %v is not an *UnsupportedError", err)
	}
	if u.Op != x86asm.MOVAPS || u.N != 3 || u.Mode != 64 || u.RIP != codeGPA || u.Bytes[0] != 0x0f {
		t.Errorf("UnsupportedError %+v", u)
	}
}

func TestMismatchErrorFields(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modePAE)
	f.setCode(modePAE, []byte{0x89, 0x07})
	f.gpr[RDI] = mmioBase + 4
	err := New(f).Emulate(mmioBase + 8)
	var m *MismatchError
	if !errors.As(err, &m) {
		t.Fatalf("error %v is not a *MismatchError", err)
	}
	if m.GPA != mmioBase+8 || m.Got != mmioBase+4 || m.Linear != mmioBase+4 || m.Op != x86asm.MOV {
		t.Errorf("MismatchError %+v", m)
	}
}

func TestMMIOErrorIsWrapped(t *testing.T) {
	boom := errors.New("no such register")
	f := newFakeVM()
	f.setMode(t, modeProt32)
	f.setCode(modeProt32, []byte{0x8b, 0x07})
	f.gpr[RDI] = mmioBase
	f.mmioErr = boom
	err := New(f).Emulate(mmioBase)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "MMIO read of 4 bytes at guest physical 0xf0000000") {
		t.Fatalf("error %v", err)
	}
	if f.rip != codeGPA || f.gpr[RAX] != 0 {
		t.Errorf("state changed: rip %#x rax %#x", f.rip, f.gpr[RAX])
	}
}

// TestTruncatedAtEndOfRAM puts a lone prefix in the last byte of RAM with
// paging off: the rest of the instruction cannot be fetched.
func TestTruncatedAtEndOfRAM(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeProt32)
	f.rip = ramSize - 1
	f.ram[ramSize-1] = 0x66
	err := New(f).Emulate(mmioBase)
	if !errors.Is(err, errNotRAM) || !strings.Contains(err.Error(), "fetching instruction bytes") {
		t.Fatalf("error %v, want the failed fetch of the second page", err)
	}
}

// TestOperandSplitAcrossPages writes a dword whose first half is on a RAM
// page and second half on the device page that faulted.
func TestOperandSplitAcrossPages(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeLong64)
	f.map64(t, 0xa00000, 0x300000, PG_RW, pageSize) // RAM
	f.map64(t, 0xa01000, mmioBase, PG_RW, pageSize) // device
	f.setCode(modeLong64, []byte{0x89, 0x07})
	f.gpr[RDI] = 0xa00ffe
	f.gpr[RAX] = 0x11223344
	if err := New(f).Emulate(mmioBase); err != nil {
		t.Fatal(err)
	}
	if f.ram[0x300ffe] != 0x44 || f.ram[0x300fff] != 0x33 {
		t.Errorf("RAM half % x", f.ram[0x300ffe:0x301000])
	}
	if len(f.log) != 1 || f.log[0] != wr(mmioBase, 2, 0x1122) {
		t.Errorf("MMIO log %v", f.log)
	}
}

func TestDecodeCache(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeLong64)
	f.setCode(modeLong64, []byte{0x89, 0x07}) // mov [rdi], eax
	f.gpr[RDI] = mmioBase
	e := New(f)
	for i := 0; i < 3; i++ {
		f.rip = codeGPA
		f.gpr[RAX] = uint64(i)
		if err := e.Emulate(mmioBase); err != nil {
			t.Fatal(err)
		}
	}
	if s := e.Stats(); s.DecodeMisses != 1 || s.DecodeHits != 2 {
		t.Errorf("stats %+v, want 1 miss then 2 hits", s)
	}
	// Rewrite the instruction in place: the cache must notice.
	f.setCode(modeLong64, []byte{0x88, 0x07}) // mov [rdi], al
	f.rip = codeGPA
	f.log = nil
	if err := e.Emulate(mmioBase); err != nil {
		t.Fatal(err)
	}
	if len(f.log) != 1 || f.log[0].size != 1 {
		t.Errorf("after rewriting the code: %v", f.log)
	}
	// The same bytes in another mode decode differently.
	f.setMode(t, modeProt16)
	f.gpr[RBX] = 0
	f.log = nil
	if err := e.Emulate(mmioBase); err != nil {
		t.Fatal(err)
	}
	if len(f.log) != 1 || f.log[0] != wr(mmioBase, 1, 2) {
		t.Errorf("16-bit decode: %v", f.log)
	}
}

func TestDecode(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeCompat)
	f.setCode(modeCompat, []byte{0x0f, 0xa2}) // cpuid
	inst, err := New(f).Decode()
	if err != nil {
		t.Fatal(err)
	}
	if inst.Op != x86asm.CPUID || inst.Len != 2 || inst.Mode != 32 {
		t.Errorf("Decode = %v (len %d, mode %d)", inst, inst.Len, inst.Mode)
	}
	if f.rip != codeGPA {
		t.Errorf("Decode moved RIP")
	}
}

func TestNextRIPWraps16(t *testing.T) {
	f := newFakeVM()
	f.setMode(t, modeReal)
	f.segs[SegCS].Base = codeGPA - 0xfffe
	f.rip = 0xfffe
	f.setCode(modeReal, []byte{0x89, 0x07})
	if err := New(f).Emulate(f.devGPA(0)); err != nil {
		t.Fatal(err)
	}
	if f.rip != 0 {
		t.Errorf("IP = %#x, want the 16-bit wrap to 0", f.rip)
	}
}

// insnVM supplies instruction bytes as AMD decode assists would.
type insnVM struct {
	*fakeVM
	insn []byte
}

func (v *insnVM) Insn() []byte { return v.insn }

func TestInsnSource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		insn   []byte // supplied by the "hardware"
		memory []byte // at CS:RIP in guest memory
		want   access
	}{
		{"supplied bytes win over memory", []byte{0x88, 0x07}, []byte{0x89, 0x07}, wr(mmioBase, 1, 0x88)},
		{"too few supplied bytes: fetch", []byte{0x48}, []byte{0x48, 0x89, 0x07}, wr(mmioBase, 8, rax0)},
		{"nothing supplied: fetch", nil, []byte{0x89, 0x07}, wr(mmioBase, 4, 0x55667788)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVM()
			f.setMode(t, modeLong64)
			f.setCode(modeLong64, tc.memory)
			f.gpr[RDI] = mmioBase
			f.gpr[RAX] = rax0
			if err := New(&insnVM{f, tc.insn}).Emulate(mmioBase); err != nil {
				t.Fatal(err)
			}
			if len(f.log) != 1 || f.log[0] != tc.want {
				t.Errorf("MMIO %v, want %v", f.log, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SegES.String(), "ES"}, {SegCS.String(), "CS"}, {SegSS.String(), "SS"}, {SegDS.String(), "DS"},
		{SegFS.String(), "FS"}, {SegGS.String(), "GS"}, {NumSegReg.String(), "Seg?"},
		{AccessRead.String(), "read"}, {AccessWrite.String(), "write"}, {AccessFetch.String(), "fetch"},
		{Access(9).String(), "access?"},
		{fmt.Sprint(Segment{Attr: 3 << SEG_ATTR_DPL_SHIFT}.DPL()), "3"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

// TestExitGPAFastPath checks when an operand takes the exit's guest
// physical address without a page walk: within one page at the exit's page
// offset, yes; straddling a page or at another offset, no (the walk then
// finds the mismatch).
func TestExitGPAFastPath(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rdi, gpa uint64
		fast     bool
		wantErr  bool
	}{
		{"same offset", mmioBase + 0x10, mmioBase + 0x10, true, false},
		{"straddles a page", mmioBase + 0xffe, mmioBase + 0xffe, false, true}, // the next page is neither RAM nor the device
		{"other offset", mmioBase + 4, mmioBase + 8, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVMSize(ramSize)
			f.setMode(t, modeLong64)
			f.setCode(modeLong64, []byte{0x89, 0x07}) // mov [rdi], eax
			f.gpr[RDI] = tc.rdi
			e := New(f)
			err := e.Emulate(tc.gpa)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Emulate: %v, want error %v", err, tc.wantErr)
			}
			if got := e.Stats().ExitGPA == 1; got != tc.fast {
				t.Errorf("fast path taken: %v, want %v", got, tc.fast)
			}
		})
	}
}

// TestInsnLen checks instruction lengths for backends without a next RIP:
// prefixes count, and the hypercall instructions x86asm does not decode
// are recognised.
func TestInsnLen(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want int
	}{
		{"cpuid", []byte{0x0f, 0xa2}, 2},
		{"prefixed cpuid", []byte{0x66, 0x0f, 0xa2}, 3},
		{"hlt", []byte{0xf4}, 1},
		{"rex wrmsr", []byte{0x48, 0x0f, 0x30}, 3},
		{"vmmcall", []byte{0x0f, 0x01, 0xd9}, 3},
		{"prefixed vmcall", []byte{0x2e, 0x0f, 0x01, 0xc1}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVM()
			f.setMode(t, modeLong64)
			f.setCode(modeLong64, tc.code)
			n, err := New(f).InsnLen()
			if err != nil || n != tc.want {
				t.Errorf("InsnLen = %d, %v; want %d", n, err, tc.want)
			}
		})
	}
}

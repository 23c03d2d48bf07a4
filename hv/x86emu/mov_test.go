package x86emu

import (
	"testing"
)

const rax0 = 0x1122334455667788 // RAX in the MOV cases: AL=0x88, AH=0x77

// allFlags has every status flag set, to show MOV leaves RFLAGS alone.
const allFlags = RFLAGS_ARITH

func TestMOV16(t *testing.T) {
	// 16-bit code: [bx] is ModRM rm=7, [bx+si] rm=0, [bp+...] uses SS.
	bx := regVal{RBX, 0xffff_0000_0000_0010} // upper bits must be ignored
	runTable(t, 16, []tcase{
		{name: "mov [bx],al", code: []byte{0x88, 0x07}, asm: "mov byte ptr [bx], al",
			regs: []regVal{bx, {RAX, rax0}}, fl: allFlags, off: 0x10, log: []access{wr(0x10, 1, 0x88)}},
		{name: "mov [bx],ah", code: []byte{0x88, 0x27}, asm: "mov byte ptr [bx], ah",
			regs: []regVal{bx, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 1, 0x77)}},
		{name: "mov [bx],ax", code: []byte{0x89, 0x07}, asm: "mov word ptr [bx], ax",
			regs: []regVal{bx, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 2, 0x7788)}},
		{name: "mov [bx],eax (66)", code: []byte{0x66, 0x89, 0x07}, asm: "mov dword ptr [bx], eax",
			regs: []regVal{bx, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 4, 0x55667788)}},
		{name: "mov [bx+si],dx", code: []byte{0x89, 0x10}, asm: "mov word ptr [bx+si*1], dx",
			regs: []regVal{{RBX, 0x8}, {RSI, 0x20}, {RDX, 0xabcd}}, off: 0x28, log: []access{wr(0x28, 2, 0xabcd)}},
		{name: "mov [bx+disp16] wraps at 64K", code: []byte{0x89, 0x87, 0x00, 0xff}, asm: "mov word ptr [bx+0xff00], ax",
			regs: []regVal{{RBX, 0x110}, {RAX, 0x1234}}, off: 0x10, log: []access{wr(0x10, 2, 0x1234)}},
		{name: "mov byte [bx],imm8", code: []byte{0xc6, 0x07, 0xa5}, asm: "mov byte ptr [bx], 0xa5",
			regs: []regVal{bx}, off: 0x10, log: []access{wr(0x10, 1, 0xa5)}},
		{name: "mov word [bx],imm16", code: []byte{0xc7, 0x07, 0x34, 0x12}, asm: "mov word ptr [bx], 0x1234",
			regs: []regVal{bx}, off: 0x10, log: []access{wr(0x10, 2, 0x1234)}},
		{name: "mov dword [bx],imm32 (66)", code: []byte{0x66, 0xc7, 0x07, 0x78, 0x56, 0x34, 0x12}, asm: "mov dword ptr [bx], 0x12345678",
			regs: []regVal{bx}, off: 0x10, log: []access{wr(0x10, 4, 0x12345678)}},
		{name: "mov [moffs16],al", code: []byte{0xa2, 0x40, 0x00}, asm: "mov byte ptr [0x40], al",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 1, 0x88)}},
		{name: "mov [moffs16],ax", code: []byte{0xa3, 0x40, 0x00}, asm: "mov word ptr [0x40], ax",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 2, 0x7788)}},
		{name: "mov al,[bx]", code: []byte{0x8a, 0x07}, asm: "mov al, byte ptr [bx]",
			regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RAX, 0x11223344556677ee}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov ah,[bx]", code: []byte{0x8a, 0x27}, asm: "mov ah, byte ptr [bx]",
			regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RAX, 0x112233445566ee88}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov ax,[bx] keeps upper bits", code: []byte{0x8b, 0x07}, asm: "mov ax, word ptr [bx]",
			regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0xcd, 0xab), off: 0x10,
			want: []regVal{{RAX, 0x112233445566abcd}}, log: []access{rd(0x10, 2, 0xabcd)}},
		{name: "mov eax,[bx] (66) zero-extends", code: []byte{0x66, 0x8b, 0x07}, asm: "mov eax, dword ptr [bx]",
			regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 1, 2, 3, 4), off: 0x10,
			want: []regVal{{RAX, 0x04030201}}, log: []access{rd(0x10, 4, 0x04030201)}},
		{name: "mov ax,[moffs16]", code: []byte{0xa1, 0x40, 0x00}, asm: "mov ax, word ptr [0x40]",
			regs: []regVal{{RAX, rax0}}, dev: at(0x40, 0x22, 0x11), off: 0x40,
			want: []regVal{{RAX, 0x1122334455661122}}, log: []access{rd(0x40, 2, 0x1122)}},
		{name: "mov cx,[bp+2] uses SS", code: []byte{0x8b, 0x4e, 0x02}, asm: "mov cx, word ptr [bp+0x2]",
			regs: []regVal{{RBP, 0x100}}, off: 0x102, dev: at(0x102, 0x99, 0x88),
			prep: func(f *fakeVM) {
				f.segs[SegDS].Base = 0 // a DS-relative access would miss the device
			},
			want: []regVal{{RCX, regPattern(RCX)&^0xffff | 0x8899}}, log: []access{rd(0x102, 2, 0x8899)}},
		{name: "mov es:[bx],ax uses ES", code: []byte{0x26, 0x89, 0x07}, asm: "mov word ptr es:[bx], ax",
			regs: []regVal{{RBX, 0x10}, {RAX, 0x4242}}, off: 0x10,
			prep: func(f *fakeVM) { f.segs[SegDS].Base = 0 },
			log:  []access{wr(0x10, 2, 0x4242)}},
	})
}

func TestMOV32(t *testing.T) {
	edi := regVal{RDI, mmioBase + 0x10}
	runTable(t, 32, []tcase{
		{name: "mov [edi],al", code: []byte{0x88, 0x07}, asm: "mov byte ptr [edi], al",
			regs: []regVal{edi, {RAX, rax0}}, fl: allFlags, off: 0x10, log: []access{wr(0x10, 1, 0x88)}},
		{name: "mov [edi],ah", code: []byte{0x88, 0x27}, asm: "mov byte ptr [edi], ah",
			regs: []regVal{edi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 1, 0x77)}},
		{name: "mov [edi],ax (66)", code: []byte{0x66, 0x89, 0x07}, asm: "mov word ptr [edi], ax",
			regs: []regVal{edi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 2, 0x7788)}},
		{name: "mov [edi],eax", code: []byte{0x89, 0x07}, asm: "mov dword ptr [edi], eax",
			regs: []regVal{edi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 4, 0x55667788)}},
		{name: "mov [edi+0x20],ecx disp8", code: []byte{0x89, 0x4f, 0x20}, asm: "mov dword ptr [edi+0x20], ecx",
			regs: []regVal{edi, {RCX, 0xcafef00d}}, off: 0x30, log: []access{wr(0x30, 4, 0xcafef00d)}},
		{name: "mov [edi-0x100],edx disp32", code: []byte{0x89, 0x97, 0x00, 0xff, 0xff, 0xff}, asm: "mov dword ptr [edi+0xffffff00], edx",
			regs: []regVal{{RDI, mmioBase + 0x110}, {RDX, 7}}, off: 0x10, log: []access{wr(0x10, 4, 7)}},
		{name: "mov [ebx+esi*4+8],eax SIB", code: []byte{0x89, 0x44, 0xb3, 0x08}, asm: "mov dword ptr [ebx+esi*4+0x8], eax",
			regs: []regVal{{RBX, mmioBase}, {RSI, 3}, {RAX, 0x5a5a5a5a}}, off: 0x14, log: []access{wr(0x14, 4, 0x5a5a5a5a)}},
		{name: "mov [disp32],eax no base", code: []byte{0x89, 0x05, 0x40, 0x00, 0x00, 0xf0}, asm: "mov dword ptr [0xf0000040], eax",
			regs: []regVal{{RAX, 0x600d}}, off: 0x40, log: []access{wr(0x40, 4, 0x600d)}},
		{name: "mov byte [edi],imm8", code: []byte{0xc6, 0x07, 0x80}, asm: "mov byte ptr [edi], 0x80",
			regs: []regVal{edi}, off: 0x10, log: []access{wr(0x10, 1, 0x80)}},
		{name: "mov word [edi],imm16", code: []byte{0x66, 0xc7, 0x07, 0xfe, 0xff}, asm: "mov word ptr [edi], 0xfffffffe",
			regs: []regVal{edi}, off: 0x10, log: []access{wr(0x10, 2, 0xfffe)}},
		{name: "mov dword [edi],imm32", code: []byte{0xc7, 0x07, 0x78, 0x56, 0x34, 0x12}, asm: "mov dword ptr [edi], 0x12345678",
			regs: []regVal{edi}, off: 0x10, log: []access{wr(0x10, 4, 0x12345678)}},
		{name: "mov [moffs32],al", code: []byte{0xa2, 0x40, 0x00, 0x00, 0xf0}, asm: "mov byte ptr [0xf0000040], al",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 1, 0x88)}},
		{name: "mov [moffs32],eax", code: []byte{0xa3, 0x40, 0x00, 0x00, 0xf0}, asm: "mov dword ptr [0xf0000040], eax",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 4, 0x55667788)}},
		{name: "mov [moffs16],ax (67)", code: []byte{0x67, 0xa3, 0x40, 0x00}, asm: "mov dword ptr [0x40], eax",
			regs: []regVal{{RAX, rax0}}, off: 0x40,
			prep: func(f *fakeVM) { f.segs[SegDS].Base = mmioBase },
			log:  []access{wr(0x40, 4, 0x55667788)}},
		{name: "mov al,[edi]", code: []byte{0x8a, 0x07}, asm: "mov al, byte ptr [edi]",
			regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RAX, 0x11223344556677ee}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov bh,[edi]", code: []byte{0x8a, 0x3f}, asm: "mov bh, byte ptr [edi]",
			regs: []regVal{edi, {RBX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RBX, 0x112233445566ee88}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov ax,[edi] (66)", code: []byte{0x66, 0x8b, 0x07}, asm: "mov ax, word ptr [edi]",
			regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 0xcd, 0xab), off: 0x10,
			want: []regVal{{RAX, 0x112233445566abcd}}, log: []access{rd(0x10, 2, 0xabcd)}},
		{name: "mov eax,[edi]", code: []byte{0x8b, 0x07}, asm: "mov eax, dword ptr [edi]",
			regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 1, 2, 3, 0x84), off: 0x10,
			want: []regVal{{RAX, 0x84030201}}, log: []access{rd(0x10, 4, 0x84030201)}},
		{name: "mov eax,[moffs32]", code: []byte{0xa1, 0x40, 0x00, 0x00, 0xf0}, asm: "mov eax, dword ptr [0xf0000040]",
			regs: []regVal{{RAX, rax0}}, dev: at(0x40, 4, 3, 2, 1), off: 0x40,
			want: []regVal{{RAX, 0x01020304}}, log: []access{rd(0x40, 4, 0x01020304)}},
		{name: "mov al,[moffs32]", code: []byte{0xa0, 0x41, 0x00, 0x00, 0xf0}, asm: "mov al, byte ptr [0xf0000041]",
			regs: []regVal{{RAX, rax0}}, dev: at(0x41, 0x5a), off: 0x41,
			want: []regVal{{RAX, 0x112233445566775a}}, log: []access{rd(0x41, 1, 0x5a)}},
		{name: "mov ecx,[ebp+4] uses SS", code: []byte{0x8b, 0x4d, 0x04}, asm: "mov ecx, dword ptr [ebp+0x4]",
			regs: []regVal{{RBP, 0x10}}, dev: at(0x14, 9), off: 0x14,
			prep: func(f *fakeVM) { f.segs[SegSS].Base = mmioBase },
			want: []regVal{{RCX, 9}}, log: []access{rd(0x14, 4, 9)}},
		{name: "mov edx,[esp] uses SS", code: []byte{0x8b, 0x14, 0x24}, asm: "mov edx, dword ptr [esp]",
			regs: []regVal{{RSP, 0x18}}, dev: at(0x18, 0x77), off: 0x18,
			prep: func(f *fakeVM) { f.segs[SegSS].Base = mmioBase },
			want: []regVal{{RDX, 0x77}}, log: []access{rd(0x18, 4, 0x77)}},
		{name: "mov eax,fs:[edi]", code: []byte{0x64, 0x8b, 0x07}, asm: "mov eax, dword ptr fs:[edi]",
			regs: []regVal{{RDI, 0x10}}, dev: at(0x10, 0x31), off: 0x10,
			prep: func(f *fakeVM) { f.segs[SegFS].Base = mmioBase },
			want: []regVal{{RAX, 0x31}}, log: []access{rd(0x10, 4, 0x31)}},
	})
}

func TestMOV64(t *testing.T) {
	rdi := regVal{RDI, mmioBase + 0x10}
	runTable(t, 64, []tcase{
		{name: "mov [rdi],al", code: []byte{0x88, 0x07}, asm: "mov byte ptr [rdi], al",
			regs: []regVal{rdi, {RAX, rax0}}, fl: allFlags, off: 0x10, log: []access{wr(0x10, 1, 0x88)}},
		{name: "mov [rdi],ah", code: []byte{0x88, 0x27}, asm: "mov byte ptr [rdi], ah",
			regs: []regVal{rdi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 1, 0x77)}},
		{name: "mov [rdi],spl (REX)", code: []byte{0x40, 0x88, 0x27}, asm: "mov byte ptr [rdi], spl",
			regs: []regVal{rdi, {RSP, 0x99aa}}, off: 0x10, log: []access{wr(0x10, 1, 0xaa)}},
		{name: "mov [rdi],r9b", code: []byte{0x44, 0x88, 0x0f}, asm: "mov byte ptr [rdi], r9b",
			regs: []regVal{rdi, {R9, 0x1234}}, off: 0x10, log: []access{wr(0x10, 1, 0x34)}},
		{name: "mov [rdi],ax", code: []byte{0x66, 0x89, 0x07}, asm: "mov word ptr [rdi], ax",
			regs: []regVal{rdi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 2, 0x7788)}},
		{name: "mov [rdi],eax", code: []byte{0x89, 0x07}, asm: "mov dword ptr [rdi], eax",
			regs: []regVal{rdi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 4, 0x55667788)}},
		{name: "mov [rdi],rax", code: []byte{0x48, 0x89, 0x07}, asm: "mov qword ptr [rdi], rax",
			regs: []regVal{rdi, {RAX, rax0}}, off: 0x10, log: []access{wr(0x10, 8, rax0)}},
		{name: "mov [r13+8],r8", code: []byte{0x4d, 0x89, 0x45, 0x08}, asm: "mov qword ptr [r13+0x8], r8",
			regs: []regVal{{R13, mmioBase}, {R8, 0xfeedface}}, off: 0x8, log: []access{wr(0x8, 8, 0xfeedface)}},
		{name: "mov [rdi+rcx*8-8],rdx", code: []byte{0x48, 0x89, 0x54, 0xcf, 0xf8}, asm: "mov qword ptr [rdi+rcx*8-0x8], rdx",
			regs: []regVal{{RDI, mmioBase}, {RCX, 3}, {RDX, 1}}, off: 0x10, log: []access{wr(0x10, 8, 1)}},
		{name: "mov [rdi-0x100],eax disp32 sign-extends", code: []byte{0x89, 0x87, 0x00, 0xff, 0xff, 0xff}, asm: "mov dword ptr [rdi+0xffffff00], eax",
			regs: []regVal{{RDI, mmioBase + 0x110}, {RAX, 5}}, off: 0x10, log: []access{wr(0x10, 4, 5)}},
		{name: "mov [edi],eax (67) uses EDI", code: []byte{0x67, 0x89, 0x07}, asm: "mov dword ptr [edi], eax",
			regs: []regVal{{RDI, 0xffffffff_00000000 | (mmioBase + 0x10)}, {RAX, 6}}, off: 0x10, log: []access{wr(0x10, 4, 6)}},
		{name: "mov byte [rdi],imm8", code: []byte{0xc6, 0x07, 0xff}, asm: "mov byte ptr [rdi], 0xff",
			regs: []regVal{rdi}, off: 0x10, log: []access{wr(0x10, 1, 0xff)}},
		{name: "mov word [rdi],imm16", code: []byte{0x66, 0xc7, 0x07, 0x01, 0x80}, asm: "mov word ptr [rdi], -0x7fff",
			regs: []regVal{rdi}, off: 0x10, log: []access{wr(0x10, 2, 0x8001)}},
		{name: "mov dword [rdi],imm32", code: []byte{0xc7, 0x07, 0xff, 0xff, 0xff, 0xff}, asm: "mov dword ptr [rdi], -0x1",
			regs: []regVal{rdi}, off: 0x10, log: []access{wr(0x10, 4, 0xffffffff)}},
		{name: "mov qword [rdi],imm32 sign-extended", code: []byte{0x48, 0xc7, 0x07, 0x00, 0x00, 0x00, 0x80}, asm: "mov qword ptr [rdi], -0x80000000",
			regs: []regVal{rdi}, off: 0x10, log: []access{wr(0x10, 8, 0xffffffff80000000)}},
		{name: "mov [moffs64],al", code: []byte{0xa2, 0x40, 0x00, 0x00, 0xf0, 0, 0, 0, 0}, asm: "mov byte ptr [0xf0000040], al",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 1, 0x88)}},
		{name: "mov [moffs64],rax", code: []byte{0x48, 0xa3, 0x40, 0x00, 0x00, 0xf0, 0, 0, 0, 0}, asm: "mov qword ptr [0xf0000040], rax",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 8, rax0)}},
		{name: "mov [moffs32],eax (67)", code: []byte{0x67, 0xa3, 0x40, 0x00, 0x00, 0xf0}, asm: "mov dword ptr [0xf0000040], eax",
			regs: []regVal{{RAX, rax0}}, off: 0x40, log: []access{wr(0x40, 4, 0x55667788)}},
		{name: "mov al,[rdi]", code: []byte{0x8a, 0x07}, asm: "mov al, byte ptr [rdi]",
			regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RAX, 0x11223344556677ee}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov ch,[rdi]", code: []byte{0x8a, 0x2f}, asm: "mov ch, byte ptr [rdi]",
			regs: []regVal{rdi, {RCX, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RCX, 0x112233445566ee88}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov bpl,[rdi] (REX)", code: []byte{0x40, 0x8a, 0x2f}, asm: "mov bpl, byte ptr [rdi]",
			regs: []regVal{rdi, {RBP, rax0}}, dev: at(0x10, 0xee), off: 0x10,
			want: []regVal{{RBP, 0x11223344556677ee}}, log: []access{rd(0x10, 1, 0xee)}},
		{name: "mov r15w,[rdi]", code: []byte{0x66, 0x44, 0x8b, 0x3f}, asm: "mov r15w, word ptr [rdi]",
			regs: []regVal{rdi, {R15, rax0}}, dev: at(0x10, 0xcd, 0xab), off: 0x10,
			want: []regVal{{R15, 0x112233445566abcd}}, log: []access{rd(0x10, 2, 0xabcd)}},
		{name: "mov eax,[rdi] zero-extends", code: []byte{0x8b, 0x07}, asm: "mov eax, dword ptr [rdi]",
			regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 1, 2, 3, 0x84), off: 0x10,
			want: []regVal{{RAX, 0x84030201}}, log: []access{rd(0x10, 4, 0x84030201)}},
		{name: "mov r8d,[rdi] zero-extends", code: []byte{0x44, 0x8b, 0x07}, asm: "mov r8d, dword ptr [rdi]",
			regs: []regVal{rdi, {R8, rax0}}, dev: at(0x10, 1, 2, 3, 4), off: 0x10,
			want: []regVal{{R8, 0x04030201}}, log: []access{rd(0x10, 4, 0x04030201)}},
		{name: "mov rax,[rdi]", code: []byte{0x48, 0x8b, 0x07}, asm: "mov rax, qword ptr [rdi]",
			regs: []regVal{rdi}, dev: at(0x10, 1, 2, 3, 4, 5, 6, 7, 8), off: 0x10,
			want: []regVal{{RAX, 0x0807060504030201}}, log: []access{rd(0x10, 8, 0x0807060504030201)}},
		{name: "mov rax,[moffs64]", code: []byte{0x48, 0xa1, 0x48, 0x00, 0x00, 0xf0, 0, 0, 0, 0}, asm: "mov rax, qword ptr [0xf0000048]",
			dev: at(0x48, 8, 7, 6, 5, 4, 3, 2, 1), off: 0x48,
			want: []regVal{{RAX, 0x0102030405060708}}, log: []access{rd(0x48, 8, 0x0102030405060708)}},
		{name: "mov eax,gs:[rdi]", code: []byte{0x65, 0x8b, 0x07}, asm: "mov eax, dword ptr gs:[rdi]",
			regs: []regVal{{RDI, 0x10}}, dev: at(0x10, 0x31), off: 0x10,
			prep: func(f *fakeVM) { f.segs[SegGS].Base = mmioBase },
			want: []regVal{{RAX, 0x31}}, log: []access{rd(0x10, 4, 0x31)}},
		{name: "ds override ignored in 64-bit", code: []byte{0x3e, 0x8b, 0x07}, asm: "mov eax, dword ptr [rdi]",
			regs: []regVal{rdi}, dev: at(0x10, 0x32), off: 0x10,
			prep: func(f *fakeVM) { f.segs[SegDS].Base = 0x1000 },
			want: []regVal{{RAX, 0x32}}, log: []access{rd(0x10, 4, 0x32)}},
		{name: "mov eax,[rip+disp32]", code: []byte{0x8b, 0x05, 0xfa, 0xff, 0x8e, 0x00}, asm: "mov eax, dword ptr [rip+0x8efffa]",
			dev: at(0x0, 0x42), off: 0,
			prep: func(f *fakeVM) {
				// An alias of the device at linear 0x900000, 0x8efffa past
				// the end of the 6-byte instruction at 0x10000.
				f.map64(t, 0x900000, mmioBase, PG_RW, pageSize)
			},
			want: []regVal{{RAX, 0x42}}, log: []access{rd(0, 4, 0x42)}},
		{name: "mov ecx,[rip-disp32]", code: []byte{0x8b, 0x0d, 0xfa, 0xef, 0xff, 0xff}, asm: "mov ecx, dword ptr [rip+0xffffeffa]",
			dev: at(0x0, 0x43), off: 0,
			prep: func(f *fakeVM) {
				// Code at linear 0x901000 (the code page), the device at
				// 0x900000: 0x1006 before the end of the instruction.
				f.map64(t, 0x901000, codeGPA, 0, pageSize)
				f.map64(t, 0x900000, mmioBase, PG_RW, pageSize)
				f.rip = 0x901000
			},
			want: []regVal{{RCX, 0x43}}, log: []access{rd(0, 4, 0x43)}},
	})
}

func TestMOVX(t *testing.T) {
	t.Run("16", func(t *testing.T) {
		bx := regVal{RBX, 0x10}
		runTable(t, 16, []tcase{
			{name: "movzx ax,byte", code: []byte{0x0f, 0xb6, 0x07}, asm: "movzx ax, byte ptr [bx]",
				regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0x80), off: 0x10,
				want: []regVal{{RAX, 0x1122334455660080}}, log: []access{rd(0x10, 1, 0x80)}},
			{name: "movsx ax,byte", code: []byte{0x0f, 0xbe, 0x07}, asm: "movsx ax, byte ptr [bx]",
				regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0x80), off: 0x10,
				want: []regVal{{RAX, 0x112233445566ff80}}, log: []access{rd(0x10, 1, 0x80)}},
			{name: "movsx eax,word (66)", code: []byte{0x66, 0x0f, 0xbf, 0x07}, asm: "movsx eax, word ptr [bx]",
				regs: []regVal{bx, {RAX, rax0}}, dev: at(0x10, 0x00, 0x80), off: 0x10,
				want: []regVal{{RAX, 0xffff8000}}, log: []access{rd(0x10, 2, 0x8000)}},
		})
	})
	t.Run("32", func(t *testing.T) {
		edi := regVal{RDI, mmioBase + 0x10}
		runTable(t, 32, []tcase{
			{name: "movzx eax,byte", code: []byte{0x0f, 0xb6, 0x07}, asm: "movzx eax, byte ptr [edi]",
				regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 0x80), off: 0x10,
				want: []regVal{{RAX, 0x80}}, log: []access{rd(0x10, 1, 0x80)}},
			{name: "movzx ecx,word", code: []byte{0x0f, 0xb7, 0x0f}, asm: "movzx ecx, word ptr [edi]",
				regs: []regVal{edi}, dev: at(0x10, 0xff, 0xff), off: 0x10,
				want: []regVal{{RCX, 0xffff}}, log: []access{rd(0x10, 2, 0xffff)}},
			{name: "movzx dx,byte (66)", code: []byte{0x66, 0x0f, 0xb6, 0x17}, asm: "movzx dx, byte ptr [edi]",
				regs: []regVal{edi, {RDX, rax0}}, dev: at(0x10, 0xfe), off: 0x10,
				want: []regVal{{RDX, 0x11223344556600fe}}, log: []access{rd(0x10, 1, 0xfe)}},
			{name: "movsx eax,byte", code: []byte{0x0f, 0xbe, 0x07}, asm: "movsx eax, byte ptr [edi]",
				regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 0x80), off: 0x10,
				want: []regVal{{RAX, 0xffffff80}}, log: []access{rd(0x10, 1, 0x80)}},
			{name: "movsx eax,byte positive", code: []byte{0x0f, 0xbe, 0x07}, asm: "movsx eax, byte ptr [edi]",
				regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 0x7f), off: 0x10,
				want: []regVal{{RAX, 0x7f}}, log: []access{rd(0x10, 1, 0x7f)}},
			{name: "movsx ebx,word", code: []byte{0x0f, 0xbf, 0x1f}, asm: "movsx ebx, word ptr [edi]",
				regs: []regVal{edi}, dev: at(0x10, 0x01, 0x80), off: 0x10,
				want: []regVal{{RBX, 0xffff8001}}, log: []access{rd(0x10, 2, 0x8001)}},
		})
	})
	t.Run("64", func(t *testing.T) {
		rdi := regVal{RDI, mmioBase + 0x10}
		runTable(t, 64, []tcase{
			{name: "movzx rax,byte", code: []byte{0x48, 0x0f, 0xb6, 0x07}, asm: "movzx rax, byte ptr [rdi]",
				regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 0x80), off: 0x10,
				want: []regVal{{RAX, 0x80}}, log: []access{rd(0x10, 1, 0x80)}},
			{name: "movzx r10d,word", code: []byte{0x44, 0x0f, 0xb7, 0x17}, asm: "movzx r10d, word ptr [rdi]",
				regs: []regVal{rdi}, dev: at(0x10, 0x34, 0x92), off: 0x10,
				want: []regVal{{R10, 0x9234}}, log: []access{rd(0x10, 2, 0x9234)}},
			{name: "movsx rax,byte", code: []byte{0x48, 0x0f, 0xbe, 0x07}, asm: "movsx rax, byte ptr [rdi]",
				regs: []regVal{rdi}, dev: at(0x10, 0x81), off: 0x10,
				want: []regVal{{RAX, 0xffffffffffffff81}}, log: []access{rd(0x10, 1, 0x81)}},
			{name: "movsx rdx,word", code: []byte{0x48, 0x0f, 0xbf, 0x17}, asm: "movsx rdx, word ptr [rdi]",
				regs: []regVal{rdi}, dev: at(0x10, 0x00, 0x90), off: 0x10,
				want: []regVal{{RDX, 0xffffffffffff9000}}, log: []access{rd(0x10, 2, 0x9000)}},
			{name: "movsx eax,byte zero-extends to rax", code: []byte{0x0f, 0xbe, 0x07}, asm: "movsx eax, byte ptr [rdi]",
				regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 0xff), off: 0x10,
				want: []regVal{{RAX, 0xffffffff}}, log: []access{rd(0x10, 1, 0xff)}},
			{name: "movsxd rax,dword", code: []byte{0x48, 0x63, 0x07}, asm: "movsxd rax, dword ptr [rdi]",
				regs: []regVal{rdi}, dev: at(0x10, 0, 0, 0, 0x80), off: 0x10,
				want: []regVal{{RAX, 0xffffffff80000000}}, log: []access{rd(0x10, 4, 0x80000000)}},
			{name: "movsxd r11,dword positive", code: []byte{0x4c, 0x63, 0x1f}, asm: "movsxd r11, dword ptr [rdi]",
				regs: []regVal{rdi}, dev: at(0x10, 1, 0, 0, 0x70), off: 0x10,
				want: []regVal{{R11, 0x70000001}}, log: []access{rd(0x10, 4, 0x70000001)}},
			{name: "movsxd eax,dword is a move", code: []byte{0x63, 0x07}, asm: "movsxd eax, dword ptr [rdi]",
				regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 0, 0, 0, 0x80), off: 0x10,
				want: []regVal{{RAX, 0x80000000}}, log: []access{rd(0x10, 4, 0x80000000)}},
		})
	})
}

func TestXCHG(t *testing.T) {
	t.Run("16", func(t *testing.T) {
		runTable(t, 16, []tcase{
			{name: "xchg [bx],ax", code: []byte{0x87, 0x07}, asm: "xchg word ptr [bx], ax",
				regs: []regVal{{RBX, 0x10}, {RAX, rax0}}, dev: at(0x10, 0x34, 0x12), off: 0x10,
				want: []regVal{{RAX, 0x1122334455661234}}, log: []access{rd(0x10, 2, 0x1234), wr(0x10, 2, 0x7788)}},
		})
	})
	t.Run("32", func(t *testing.T) {
		edi := regVal{RDI, mmioBase + 0x10}
		runTable(t, 32, []tcase{
			{name: "xchg [edi],eax", code: []byte{0x87, 0x07}, asm: "xchg dword ptr [edi], eax",
				regs: []regVal{edi, {RAX, rax0}}, dev: at(0x10, 1, 2, 3, 4), off: 0x10,
				want: []regVal{{RAX, 0x04030201}}, log: []access{rd(0x10, 4, 0x04030201), wr(0x10, 4, 0x55667788)}},
			{name: "xchg [edi],dh", code: []byte{0x86, 0x37}, asm: "xchg byte ptr [edi], dh",
				regs: []regVal{edi, {RDX, 0xabcd}}, dev: at(0x10, 0x11), off: 0x10,
				want: []regVal{{RDX, 0x11cd}}, log: []access{rd(0x10, 1, 0x11), wr(0x10, 1, 0xab)}},
		})
	})
	t.Run("64", func(t *testing.T) {
		rdi := regVal{RDI, mmioBase + 0x10}
		runTable(t, 64, []tcase{
			{name: "xchg [rdi],rax", code: []byte{0x48, 0x87, 0x07}, asm: "xchg qword ptr [rdi], rax",
				regs: []regVal{rdi, {RAX, rax0}}, dev: at(0x10, 1, 2, 3, 4, 5, 6, 7, 8), off: 0x10,
				want: []regVal{{RAX, 0x0807060504030201}}, log: []access{rd(0x10, 8, 0x0807060504030201), wr(0x10, 8, rax0)}},
			{name: "xchg r12w,[rdi]", code: []byte{0x66, 0x44, 0x87, 0x27}, asm: "xchg word ptr [rdi], r12w",
				regs: []regVal{rdi, {R12, rax0}}, dev: at(0x10, 1, 2), off: 0x10,
				want: []regVal{{R12, 0x1122334455660201}}, log: []access{rd(0x10, 2, 0x0201), wr(0x10, 2, 0x7788)}},
			{name: "xchg [rdi],esi zero-extends", code: []byte{0x87, 0x37}, asm: "xchg dword ptr [rdi], esi",
				regs: []regVal{rdi, {RSI, rax0}}, dev: at(0x10, 1), off: 0x10,
				want: []regVal{{RSI, 1}}, log: []access{rd(0x10, 4, 1), wr(0x10, 4, 0x55667788)}},
		})
	})
}

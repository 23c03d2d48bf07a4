package x86emu

import "testing"

// btFlags is the RFLAGS the BT cases start with: every status flag but CF.
const btFlags = RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF | RFLAGS_AF | RFLAGS_PF

func TestBT(t *testing.T) {
	cfSet := u64(btFlags | RFLAGS_CF)
	cfClear := u64(btFlags)
	t.Run("16", func(t *testing.T) {
		bx := regVal{RBX, 0x20}
		runTable(t, 16, []tcase{
			{name: "bt [bx],ax beyond the word", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt word ptr [bx], ax",
				regs: []regVal{bx, {RAX, 17}}, fl: btFlags, dev: at(0x22, 0x02), off: 0x22, // 17 = word +1, bit 1
				wfl: cfSet, log: []access{rd(0x22, 2, 2)}},
			{name: "bt [bx],ax negative", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt word ptr [bx], ax",
				regs: []regVal{bx, {RAX, 0xfff0}}, fl: btFlags, dev: at(0x1e, 0, 0), off: 0x1e, // -16 = word -1, bit 0
				wfl: cfClear, log: []access{rd(0x1e, 2, 0)}},
			{name: "bts [bx],imm8 modulo 16", code: []byte{0x0f, 0xba, 0x2f, 0x11}, asm: "bts word ptr [bx], 0x11",
				regs: []regVal{bx}, fl: btFlags, off: 0x20,
				wfl: cfClear, log: []access{rd(0x20, 2, 0), wr(0x20, 2, 2)}},
		})
	})
	t.Run("32", func(t *testing.T) {
		edi := regVal{RDI, mmioBase + 0x20}
		runTable(t, 32, []tcase{
			{name: "bt [edi],eax bit 5", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt dword ptr [edi], eax",
				regs: []regVal{edi, {RAX, 5}}, fl: btFlags, dev: at(0x20, 0x20), off: 0x20,
				wfl: cfSet, log: []access{rd(0x20, 4, 0x20)}},
			{name: "bt [edi],eax CF cleared", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt dword ptr [edi], eax",
				regs: []regVal{edi, {RAX, 4}}, fl: btFlags | RFLAGS_CF, dev: at(0x20, 0x20), off: 0x20,
				wfl: cfClear, log: []access{rd(0x20, 4, 0x20)}},
			{name: "bt [edi],eax offset 100 is dword +3", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt dword ptr [edi], eax",
				regs: []regVal{edi, {RAX, 100}}, fl: btFlags, dev: at(0x2c, 0x10), off: 0x2c,
				wfl: cfSet, log: []access{rd(0x2c, 4, 0x10)}},
			{name: "bt [edi],eax offset -1 is dword -1 bit 31", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt dword ptr [edi], eax",
				regs: []regVal{edi, {RAX, 0xffffffff}}, fl: btFlags, dev: at(0x1c, 0, 0, 0, 0x80), off: 0x1c,
				wfl: cfSet, log: []access{rd(0x1c, 4, 0x80000000)}},
			{name: "bt [edi],ax 16-bit offset -1", code: []byte{0x66, 0x0f, 0xa3, 0x07}, asm: "bt word ptr [edi], ax",
				regs: []regVal{edi, {RAX, 0xffff}}, fl: btFlags, dev: at(0x1e, 0, 0x80), off: 0x1e,
				wfl: cfSet, log: []access{rd(0x1e, 2, 0x8000)}},
			{name: "bts [edi],ecx", code: []byte{0x0f, 0xab, 0x0f}, asm: "bts dword ptr [edi], ecx",
				regs: []regVal{edi, {RCX, 33}}, fl: btFlags, dev: at(0x24, 0x01), off: 0x24,
				wfl: cfClear, log: []access{rd(0x24, 4, 1), wr(0x24, 4, 3)}},
			{name: "btr [edi],edx", code: []byte{0x0f, 0xb3, 0x17}, asm: "btr dword ptr [edi], edx",
				regs: []regVal{edi, {RDX, 0}}, fl: btFlags, dev: at(0x20, 0xff), off: 0x20,
				wfl: cfSet, log: []access{rd(0x20, 4, 0xff), wr(0x20, 4, 0xfe)}},
			{name: "btc [edi],ebx", code: []byte{0x0f, 0xbb, 0x1f}, asm: "btc dword ptr [edi], ebx",
				regs: []regVal{edi, {RBX, 31}}, fl: btFlags, dev: at(0x20, 0, 0, 0, 0x80), off: 0x20,
				wfl: cfSet, log: []access{rd(0x20, 4, 0x80000000), wr(0x20, 4, 0)}},
			{name: "bt [edi],imm8 modulo 32", code: []byte{0x0f, 0xba, 0x27, 0x25}, asm: "bt dword ptr [edi], 0x25",
				regs: []regVal{edi}, fl: btFlags, dev: at(0x20, 0x20), off: 0x20,
				wfl: cfSet, log: []access{rd(0x20, 4, 0x20)}},
			{name: "bts [edi],imm8", code: []byte{0x0f, 0xba, 0x2f, 0x03}, asm: "bts dword ptr [edi], 0x3",
				regs: []regVal{edi}, fl: btFlags, off: 0x20,
				wfl: cfClear, log: []access{rd(0x20, 4, 0), wr(0x20, 4, 8)}},
			{name: "btr [edi],imm8", code: []byte{0x0f, 0xba, 0x37, 0x03}, asm: "btr dword ptr [edi], 0x3",
				regs: []regVal{edi}, fl: btFlags, dev: at(0x20, 0x0f), off: 0x20,
				wfl: cfSet, log: []access{rd(0x20, 4, 0xf), wr(0x20, 4, 7)}},
			{name: "btc word [edi],imm8", code: []byte{0x66, 0x0f, 0xba, 0x3f, 0x0f}, asm: "btc word ptr [edi], 0xf",
				regs: []regVal{edi}, fl: btFlags, off: 0x20,
				wfl: cfClear, log: []access{rd(0x20, 2, 0), wr(0x20, 2, 0x8000)}},
		})
	})
	t.Run("64", func(t *testing.T) {
		rdi := regVal{RDI, mmioBase + 0x20}
		runTable(t, 64, []tcase{
			{name: "bt [rdi],rax offset 130", code: []byte{0x48, 0x0f, 0xa3, 0x07}, asm: "bt qword ptr [rdi], rax",
				regs: []regVal{rdi, {RAX, 130}}, fl: btFlags, dev: at(0x30, 0x04), off: 0x30,
				wfl: cfSet, log: []access{rd(0x30, 8, 4)}},
			{name: "bt [rdi],rax offset -65", code: []byte{0x48, 0x0f, 0xa3, 0x07}, asm: "bt qword ptr [rdi], rax",
				regs: []regVal{rdi, {RAX, uint64(0xffffffffffffffbf)}}, fl: btFlags, dev: at(0x10, 0, 0, 0, 0, 0, 0, 0, 0x80), off: 0x10,
				wfl: cfSet, log: []access{rd(0x10, 8, 0x8000000000000000)}},
			{name: "bt [rdi],eax offset uses EAX sign", code: []byte{0x0f, 0xa3, 0x07}, asm: "bt dword ptr [rdi], eax",
				regs: []regVal{rdi, {RAX, 0x1_ffffffe0}}, fl: btFlags, dev: at(0x1c, 0, 0, 0, 0), off: 0x1c, // EAX = -32
				wfl: cfClear, log: []access{rd(0x1c, 4, 0)}},
			{name: "bts qword [rdi],63", code: []byte{0x48, 0x0f, 0xba, 0x2f, 0x3f}, asm: "bts qword ptr [rdi], 0x3f",
				regs: []regVal{rdi}, fl: btFlags, off: 0x20,
				wfl: cfClear, log: []access{rd(0x20, 8, 0), wr(0x20, 8, 0x8000000000000000)}},
			{name: "btr [rdi],r9", code: []byte{0x4c, 0x0f, 0xb3, 0x0f}, asm: "btr qword ptr [rdi], r9",
				regs: []regVal{rdi, {R9, 64}}, fl: btFlags, dev: at(0x28, 1), off: 0x28,
				wfl: cfSet, log: []access{rd(0x28, 8, 1), wr(0x28, 8, 0)}},
		})
	})
}

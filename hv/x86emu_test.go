package hv_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/hypercall"
)

// regDev is a device of 16 byte-wide registers.
type regDev struct{ regs [16]byte }

func (d *regDev) Read(off uint64, data []byte)  { copy(data, d.regs[off:]) }
func (d *regDev) Write(off uint64, data []byte) { copy(d.regs[off:], data) }

const devBase = 0xfebf0000

// TestX86emuThroughTheCore runs real instructions at the guest's RIP
// through the core, hv/x86emu and the MMIO bus: 32-bit protected mode
// without paging, and 64-bit mode with 4-level paging.
func TestX86emuThroughTheCore(t *testing.T) {
	type insn struct {
		code []byte
		gpa  uint64 // the faulting address the fake hardware reports
		acc  arch.Access
	}
	for _, tc := range []struct {
		name  string
		long  bool
		insns []insn
	}{
		{"protected32", false, []insn{
			{[]byte{0x89, 0x43, 0x04}, devBase + 4, arch.AccessWrite},              // mov [ebx+4], eax
			{[]byte{0x0f, 0xb7, 0x4b, 0x08}, devBase + 8, arch.AccessRead},         // movzx ecx, word [ebx+8]
			{[]byte{0x83, 0x0b, 0x10}, devBase, arch.AccessWrite},                  // or dword [ebx], 0x10
			{[]byte{0xa3, 0x0c, 0x00, 0xbf, 0xfe}, devBase + 12, arch.AccessWrite}, // mov [0xfebf000c], eax
		}},
		{"long64", true, []insn{
			{[]byte{0x89, 0x43, 0x04}, devBase + 4, arch.AccessWrite},       // mov [rbx+4], eax
			{[]byte{0x0f, 0xb7, 0x4b, 0x08}, devBase + 8, arch.AccessRead},  // movzx ecx, word [rbx+8]
			{[]byte{0x83, 0x0b, 0x10}, devBase, arch.AccessWrite},           // or dword [rbx], 0x10
			{[]byte{0x48, 0x89, 0x43, 0x04}, devBase + 4, arch.AccessWrite}, // mov [rbx+4], rax
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm := hv.NewTestVM(t, hv.Config{Emulator: hv.X86Emulator})
			dev := &regDev{}
			binary.LittleEndian.PutUint16(dev.regs[8:], 0xbeef)
			dev.regs[0] = 0x01
			if err := vm.MMIO().Register(devBase, 16, dev, "dev"); err != nil {
				t.Fatal(err)
			}
			// Code at 0x1000, one instruction after another.
			const code = 0x1000
			rip := uint64(code)
			var starts []uint64
			for _, in := range tc.insns {
				if err := vm.Memory().Write(addr.GPA(rip), in.code); err != nil {
					t.Fatal(err)
				}
				starts = append(starts, rip)
				rip += uint64(len(in.code))
			}
			end := rip
			if tc.long {
				// PML4 at 0x10000 -> PDPT at 0x11000: 1 GiB pages at 0
				// and 3 GiB, identity.
				m := vm.Memory()
				m.Write64(0x10000, 0x11000|3)
				m.Write64(0x11000, 0x0|0x83)
				m.Write64(0x11000+3*8, 0xc0000000|0x83)
			}
			step := 0
			var final arch.Regs
			hv.SetTestGuest(vm, 0, func(r *arch.Regs, s *arch.Sregs) (arch.Exit, error) {
				if step == 0 {
					r.RIP = code
					r.RFLAGS = arch.RFLAGS_FIXED
					r.GPR[arch.RAX] = 0x11223344_55667788
					r.GPR[arch.RBX] = devBase
					r.GPR[arch.RCX] = ^uint64(0)
					flat := arch.Segment{Type: 0x3, S: true, Present: true, DB: true, G: true, Limit: 0xffffffff}
					s.DS, s.ES, s.SS = flat, flat, flat
					s.CS = arch.Segment{Type: 0xb, S: true, Present: true, DB: !tc.long, L: tc.long, G: true, Limit: 0xffffffff}
					s.CR0 = arch.CR0_PE | arch.CR0_ET
					if tc.long {
						s.CR0 |= arch.CR0_PG
						s.CR4 = arch.CR4_PAE
						s.CR3 = 0x10000
						s.EFER = arch.EFER_LME | arch.EFER_LMA
					}
				}
				if step < len(tc.insns) {
					if r.RIP != starts[step] {
						return arch.Exit{}, fmt.Errorf("step %d: RIP %#x, want %#x", step, r.RIP, starts[step])
					}
					in := tc.insns[step]
					step++
					return arch.Exit{Reason: arch.ExitPageFault, RIP: r.RIP, Fault: arch.PageFaultExit{GPA: addr.GPA(in.gpa), Access: in.acc}}, nil
				}
				final = *r
				r.GPR[arch.RAX] = hypercall.NrPowerOff
				return arch.Exit{Reason: arch.ExitHypercall, RIP: r.RIP, NextRIP: r.RIP + 3}, nil
			})
			if err := vm.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			vm.Wait()
			if r := vm.Report(); r == nil || r.State != hv.Stopped {
				t.Fatalf("VM ended %s", r)
			}
			if final.RIP != end {
				t.Errorf("RIP after the instructions %#x, want %#x", final.RIP, end)
			}
			if got := binary.LittleEndian.Uint32(dev.regs[0:]); got != 0x11 {
				t.Errorf("OR result %#x", got)
			}
			if got := final.GPR[arch.RCX]; got != 0xbeef {
				t.Errorf("MOVZX loaded %#x", got)
			}
			want4 := uint64(0x55667788)
			if tc.long {
				want4 = 0x11223344_55667788
			}
			if got := binary.LittleEndian.Uint64(dev.regs[4:12]); got&0xffffffff != want4&0xffffffff || (tc.long && got != want4) {
				t.Errorf("stored %#x at +4", got)
			}
			if c := vm.ExitCounts()[arch.ExitPageFault]; c != uint64(len(tc.insns)) {
				t.Errorf("%d page-fault exits", c)
			}
			if err := vm.Destroy(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

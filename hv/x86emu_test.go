package hv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/hypercall"
	"github.com/keel-hv/keel/hv/x86emu"
)

// platform adapts hv.EmuCPU to x86emu.Platform: the glue the kernel needs
// to plug hv/x86emu into the core (see emulator below).
type platform struct{ cpu hv.EmuCPU }

func (p *platform) GPR(n int) uint64       { return p.cpu.Regs().GPR[n&15] }
func (p *platform) SetGPR(n int, v uint64) { p.cpu.Regs().GPR[n&15] = v }
func (p *platform) RIP() uint64            { return p.cpu.Regs().RIP }
func (p *platform) SetRIP(v uint64)        { p.cpu.Regs().RIP = v }
func (p *platform) RFLAGS() uint64         { return p.cpu.Regs().RFLAGS }
func (p *platform) SetRFLAGS(v uint64)     { p.cpu.Regs().RFLAGS = v }

func (p *platform) Segment(s x86emu.SegReg) x86emu.Segment {
	seg := p.cpu.Sregs().Seg(arch.SegReg(s))
	if seg == nil {
		return x86emu.Segment{}
	}
	attr := uint16(seg.Type&0xf) | uint16(seg.DPL&3)<<5
	for _, b := range []struct {
		on  bool
		bit uint16
	}{{seg.S, x86emu.SEG_ATTR_S}, {seg.Present, x86emu.SEG_ATTR_P}, {seg.AVL, x86emu.SEG_ATTR_AVL}, {seg.L, x86emu.SEG_ATTR_L}, {seg.DB, x86emu.SEG_ATTR_DB}, {seg.G, x86emu.SEG_ATTR_G}} {
		if b.on {
			attr |= b.bit
		}
	}
	return x86emu.Segment{Base: seg.Base, Limit: seg.Limit, Selector: seg.Selector, Attr: attr}
}

func (p *platform) SysRegs() x86emu.SysRegs {
	s := p.cpu.Sregs()
	return x86emu.SysRegs{CR0: s.CR0, CR3: s.CR3, CR4: s.CR4, EFER: s.EFER, CPL: arch.CPL(s, p.cpu.Regs().RFLAGS),
		MaxPhysAddr: p.cpu.MaxPhysAddr(), PDPTEValid: s.PDPTEValid, PDPTE: s.PDPTE}
}

func (p *platform) ReadPhys(gpa uint64, data []byte) error {
	return p.cpu.ReadPhys(addr.GPA(gpa), data)
}
func (p *platform) WritePhys(gpa uint64, data []byte) error {
	return p.cpu.WritePhys(addr.GPA(gpa), data)
}
func (p *platform) MMIO(gpa uint64, data []byte, write bool) error {
	return p.cpu.MMIO(addr.GPA(gpa), data, write)
}

// emulator implements hv.InstructionEmulator with x86emu.
type emulator struct {
	p platform
	e *x86emu.Emulator
}

func newEmulator(cpu hv.EmuCPU) hv.InstructionEmulator {
	em := &emulator{p: platform{cpu: cpu}}
	em.e = x86emu.New(&em.p)
	return em
}

func (em *emulator) EmulateMMIO(gpa addr.GPA) error {
	if err := em.e.Emulate(uint64(gpa)); err != nil {
		return convert(err)
	}
	return nil
}

func (em *emulator) TranslateGVA(gva addr.GVA, acc arch.Access) (addr.GPA, error) {
	a := x86emu.AccessRead
	switch {
	case acc&arch.AccessExec != 0:
		a = x86emu.AccessFetch
	case acc&arch.AccessWrite != 0:
		a = x86emu.AccessWrite
	}
	gpa, err := em.e.Translate(uint64(gva), a)
	if err != nil {
		return 0, convert(err)
	}
	return addr.GPA(gpa), nil
}

// convert turns x86emu's *Fault into the core's *GuestException.
func convert(err error) error {
	var f *x86emu.Fault
	if !errors.As(err, &f) {
		return err
	}
	ev := arch.Exception(f.Vector, f.ErrorCode)
	if f.Vector == arch.VECTOR_PF {
		ev = arch.PageFault(f.Addr, f.ErrorCode)
	}
	return &hv.GuestException{Event: ev, Reason: f.Error()}
}

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
			vm := hv.NewTestVM(t, hv.Config{Emulator: newEmulator})
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

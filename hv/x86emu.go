package hv

import (
	"errors"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/x86emu"
)

// platform adapts EmuCPU to x86emu.Platform: the glue that plugs
// hv/x86emu into the core (see X86Emulator).
type platform struct{ cpu EmuCPU }

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

// emulator implements InstructionEmulator with x86emu.
type emulator struct {
	p platform
	e *x86emu.Emulator
}

// X86Emulator is the NewEmulatorFunc of hv/x86emu: one emulator per vCPU,
// with its decode cache.
func X86Emulator(cpu EmuCPU) InstructionEmulator {
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

func (em *emulator) InsnLength() (int, error) {
	n, err := em.e.InsnLen()
	if err != nil {
		return 0, convert(err)
	}
	return n, nil
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

// convert turns x86emu's *Fault into a *GuestException for the guest.
func convert(err error) error {
	var f *x86emu.Fault
	if !errors.As(err, &f) {
		return err
	}
	ev := arch.Exception(f.Vector, f.ErrorCode)
	if f.Vector == arch.VECTOR_PF {
		ev = arch.PageFault(f.Addr, f.ErrorCode)
	}
	return &GuestException{Event: ev, Reason: f.Error()}
}

// Package hvtest is a fake virtualization backend for the host tests of
// packages above the core (machine, the VM manager): it keeps register
// state and never runs guest code. Run blocks until Kick and reports an
// interrupt exit.
//
// The package is pure Go and host-testable.
package hvtest

import (
	"sync"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// Backend is the fake hv.Backend.
type Backend struct{}

// Name implements hv.Backend.
func (Backend) Name() string { return "fake" }

// NewVM implements hv.Backend.
func (Backend) NewVM(hv.BackendVMConfig) (hv.BackendVM, error) { return &vm{}, nil }

type vm struct{}

func (*vm) MapMemory([]mem.Region) error        { return nil }
func (*vm) NewVCPU(int) (hv.BackendVCPU, error) { return &vcpu{kick: make(chan struct{}, 1)}, nil }
func (*vm) Destroy() error                      { return nil }

type vcpu struct {
	mu    sync.Mutex
	regs  arch.Regs
	sregs arch.Sregs
	kick  chan struct{}
}

func (c *vcpu) Run() (arch.Exit, error) {
	<-c.kick
	return arch.Exit{Reason: arch.ExitInterrupt}, nil
}
func (c *vcpu) GetRegs(r *arch.Regs) error   { *r = c.regs; return nil }
func (c *vcpu) SetRegs(r *arch.Regs) error   { c.regs = *r; return nil }
func (c *vcpu) GetSregs(s *arch.Sregs) error { *s = c.sregs; return nil }
func (c *vcpu) SetSregs(s *arch.Sregs) error { c.sregs = *s; return nil }
func (c *vcpu) Inject(arch.Event) error      { return nil }
func (c *vcpu) RequestInterruptWindow(bool)  {}
func (c *vcpu) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
func (c *vcpu) Destroy() error { return nil }

// HostCPUID is a host CPUID of an AMD processor with nothing else.
func HostCPUID(leaf, sub uint32) (a, b, c, d uint32) {
	switch leaf {
	case 0:
		return 0xd, 0x68747541, 0x444d4163, 0x69746e65 // AuthenticAMD
	case 0x80000000:
		return 0x80000008, 0, 0, 0
	}
	return 0, 0, 0, 0
}

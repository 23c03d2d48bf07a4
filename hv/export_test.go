package hv

import (
	"testing"

	"github.com/keel-hv/keel/hv/arch"
)

// NewTestVM builds a VM with 16 MiB of RAM on the fake backend, for the
// external tests of this package.
func NewTestVM(t testing.TB, cfg Config) *VM {
	vm, _, _ := testVM(t, cfg)
	return vm
}

// SetTestGuest makes vCPU i's fake backend call guest on every Run; the
// guest sees (and may change) the registers and returns the next exit.
func SetTestGuest(vm *VM, i int, guest func(r *arch.Regs, s *arch.Sregs) (arch.Exit, error)) {
	f := fakeOf(vm, i)
	f.guest = func(v *fakeVCPU) (arch.Exit, error) { return guest(&v.regs, &v.sregs) }
}

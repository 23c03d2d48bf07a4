package svm

import "unsafe"

// fxAlign returns the address of b modulo 16.
//
// unsafe: only the address is read, to align the FXSAVE area.
func fxAlign(b *[512 + 16]byte) int {
	return int(uintptr(unsafe.Pointer(b)) % 16)
}

// vmcbAddr returns the virtual address of c's VMCB page for run_amd64.s.
//
// unsafe: the page is host memory outside the Go heap, identity mapped.
func vmcbAddr(c *vcpu) uintptr { return uintptr(unsafe.Pointer(&c.v[0])) }

// fxAddr returns the address of c's aligned FXSAVE area.
//
// unsafe: fxBuf is part of c, which the caller keeps alive across vmrun.
func fxAddr(c *vcpu) uintptr { return uintptr(unsafe.Pointer(&c.fxArea()[0])) }

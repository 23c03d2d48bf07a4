package vmx

import "unsafe"

// fxAlign returns the address of b modulo 16.
//
// unsafe: only the address is read, to align the FXSAVE area.
func fxAlign(b *[512 + 16]byte) int {
	return int(uintptr(unsafe.Pointer(b)) % 16)
}

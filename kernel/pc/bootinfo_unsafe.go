//go:build tamago

package pc

import (
	"unsafe"
)

// physBytes returns the n bytes of physical memory at addr as a slice.
//
// Safety: cpuinit identity-maps 0-4 GiB, so a physical address below 4 GiB
// is also a valid virtual address (except page 0, which is not mapped).
// Callers pass only ranges inside the handoff page, which nothing writes
// after cpuinit, and do not keep the slice. addr is not derived from a Go
// pointer, so the garbage collector has nothing to track; the address is
// formed as an offset from nil rather than by converting a uintptr (which
// vet reports as a possible misuse).
func physBytes(addr uintptr, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Add(nil, addr)), n)
}

// stackTop returns the address just past AP i's boot stack.
//
// Safety: apStacks is a global array in the kernel image, which is
// identity mapped and never moves.
func stackTop(i int) uintptr {
	return uintptr(unsafe.Pointer(&apStacks[i][AP_STACK_SIZE-1])) + 1
}

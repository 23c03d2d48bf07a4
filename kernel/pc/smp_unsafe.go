//go:build tamago

package pc

import (
	"sync/atomic"
	"unsafe"
)

// task is runtime/goos.Task: it hands a new M (its g0 stack top sp, g0 gp
// and start function fn) to an AP that has none yet.
//
//go:nosplit
func task(sp, mp, gp, fn unsafe.Pointer) {
	// nosplit: called from newosproc without a P.
	for i := 1; i < ncpu; i++ {
		s := &cpuSlots[i]
		if atomic.LoadUint32(&s.online) != 1 || !atomic.CompareAndSwapUint32(&s.claimed, 0, 1) {
			continue
		}
		s.taskSP = uint64(uintptr(sp))
		s.taskG = uint64(uintptr(gp))
		atomic.StoreUint64(&s.taskFn, uint64(uintptr(fn)))
		wake(uint64(s.apicID))
		return
	}
	print("keel: goos.Task: no free processor for a new M\n")
	haltForever()
}

// slotAddr returns the address of s for apEntry.
//
// Safety: cpuSlots is a global array in the identity-mapped kernel image.
func slotAddr(s *cpuSlot) uintptr {
	return uintptr(unsafe.Pointer(s))
}

//go:build tamago

package pc

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// physMem reads physical memory through the identity map, for the parsers
// of loader and firmware structures (bootinfo, acpi). Reads of page 0 come
// from the copy cpuinit took (PAGE0_SHADOW), and so do 0x9000-0xffff
// after a Multiboot entry (LOW_SHADOW); the local and I/O APIC window
// is refused (reads there have side effects), as is anything above the
// mapped RAM.
type physMem struct{}

// APIC_WINDOW_START and APIC_WINDOW_END bound the I/O APIC, HPET and local
// APIC registers, which physMem never reads.
const (
	APIC_WINDOW_START = 0xfec00000
	APIC_WINDOW_END   = 0xff000000
)

// mappedEnd is the end of the identity map: 4 GiB from cpuinit, then the
// end of RAM once mapRAM has run.
var mappedEnd atomic.Uint64

func init() {
	mappedEnd.Store(IDENTITY_MAP_END)
}

// ReadAt implements bootinfo.Memory and acpi.Memory.
func (physMem) ReadAt(p []byte, addr uint64) error {
	n := uint64(len(p))
	end := addr + n
	if end < addr || end > mappedEnd.Load() {
		return fmt.Errorf("physical range %#x+%#x is outside mapped memory (below %#x)", addr, n, mappedEnd.Load())
	}
	if addr < APIC_WINDOW_END && end > APIC_WINDOW_START {
		return fmt.Errorf("physical range %#x+%#x overlaps the APIC window %#x-%#x", addr, n, APIC_WINDOW_START, APIC_WINDOW_END)
	}
	for len(p) > 0 {
		src := addr
		chunk := uint64(len(p))
		switch {
		case addr < 0x1000:
			src = PAGE0_SHADOW + addr
			chunk = min(chunk, 0x1000-addr)
		case addr < LOW_SHADOW_END && lowShadow():
			if addr >= LOW_SHADOW_START {
				src = LOW_SHADOW + addr - LOW_SHADOW_START
				chunk = min(chunk, LOW_SHADOW_END-addr)
			} else {
				chunk = min(chunk, LOW_SHADOW_START-addr)
			}
		}
		copy(p[:chunk], unsafe.Slice((*byte)(unsafe.Add(nil, uintptr(src))), chunk))
		p = p[chunk:]
		addr += chunk
	}
	return nil
}

// lowShadow reports whether cpuinit copied the page tables' area
// (Multiboot entry).
func lowShadow() bool {
	return binary.LittleEndian.Uint32(physBytes(HANDOFF_BASE, 0x1000)[HANDOFF_FLAGS:])&HANDOFF_FLAG_LOW_SHADOW != 0
}

// WriteRead writes a pattern to the 8 bytes at physical address addr, reads
// it back, restores the old value and reports whether the read matched. It
// checks that RAM at addr (for example above 4 GiB) is mapped and works.
func WriteRead(addr uint64, pattern uint64) (bool, error) {
	if addr%8 != 0 || addr+8 > mappedEnd.Load() || addr < 0x1000 {
		return false, fmt.Errorf("address %#x is not an aligned, mapped RAM address", addr)
	}
	w := (*uint64)(unsafe.Add(nil, uintptr(addr)))
	old := atomic.LoadUint64(w)
	atomic.StoreUint64(w, pattern)
	ok := atomic.LoadUint64(w) == pattern
	atomic.StoreUint64(w, old)
	return ok, nil
}

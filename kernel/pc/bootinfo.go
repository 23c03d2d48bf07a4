//go:build tamago

package pc

import (
	"encoding/binary"
	"fmt"

	"github.com/keel-hv/keel/kernel/pc/pvh"
)

// BootInfo is what the loader handed over, as cpuinit saved it in the
// handoff page.
type BootInfo struct {
	// EAX and EBX are the registers at entry.
	EAX, EBX uint32
	// PVH reports that EBX pointed at a PVH hvm_start_info.
	PVH bool
	// StartInfo is the decoded hvm_start_info when PVH is true.
	StartInfo pvh.StartInfo
	// Memmap is the loader's memory map, nil when it gave none.
	Memmap []pvh.MemmapEntry
	// MemmapTruncated reports that entries beyond HANDOFF_MEMMAP_MAX were
	// dropped.
	MemmapTruncated bool
}

// RAM returns the bytes of usable RAM in the memory map; ok is false when
// the loader gave no map.
func (b *BootInfo) RAM() (bytes uint64, ok bool) {
	if b.Memmap == nil {
		return 0, false
	}

	return pvh.TotalRAM(b.Memmap), true
}

// readBootInfo decodes the handoff page.
func readBootInfo() (*BootInfo, error) {
	le := binary.LittleEndian
	page := physBytes(HANDOFF_BASE, 0x1000)

	b := &BootInfo{
		EAX: le.Uint32(page[HANDOFF_EAX:]),
		EBX: le.Uint32(page[HANDOFF_EBX:]),
	}

	flags := le.Uint32(page[HANDOFF_FLAGS:])

	if flags&HANDOFF_FLAG_PVH == 0 {
		return b, nil
	}

	si, err := pvh.ParseStartInfo(page[HANDOFF_START_INFO : HANDOFF_START_INFO+HANDOFF_START_INFO_SIZE])
	if err != nil {
		return b, err
	}

	b.PVH = true
	b.StartInfo = si
	b.MemmapTruncated = flags&HANDOFF_FLAG_MEMMAP_TRUNCATED != 0

	if flags&HANDOFF_FLAG_MEMMAP == 0 {
		return b, nil
	}

	n := int(le.Uint32(page[HANDOFF_MEMMAP_COUNT:]))
	if n > HANDOFF_MEMMAP_MAX {
		return b, fmt.Errorf("pc: handoff page claims %d memory map entries, at most %d fit", n, HANDOFF_MEMMAP_MAX)
	}

	m, err := pvh.ParseMemmap(page[HANDOFF_MEMMAP:], n)
	if err != nil {
		return b, err
	}

	b.Memmap = m

	return b, nil
}

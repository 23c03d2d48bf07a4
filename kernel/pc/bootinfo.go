//go:build tamago

package pc

import (
	"encoding/binary"

	"github.com/keel-hv/keel/kernel/bootinfo"
)

// readBootInfo decodes what the loader handed over, from the registers
// cpuinit saved in the handoff page.
func readBootInfo() (*bootinfo.Info, error) {
	le := binary.LittleEndian
	page := physBytes(HANDOFF_BASE, 0x1000)
	eax, ebx := le.Uint32(page[HANDOFF_EAX:]), le.Uint32(page[HANDOFF_EBX:])
	return bootinfo.Parse(physMem{}, eax, ebx)
}

// EntryTSC returns the TSC value cpuinit read at Keel's first instruction.
func EntryTSC() uint64 {
	return binary.LittleEndian.Uint64(physBytes(HANDOFF_BASE, 0x1000)[HANDOFF_TSC:])
}

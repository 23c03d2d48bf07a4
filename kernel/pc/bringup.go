//go:build tamago

package pc

import (
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/kernel/bootinfo"
)

// Logf is how the board reports what it finds; the kernel points it at its
// log.
type Logf func(format string, args ...any)

// Memory describes the memory map for the shell: the loader's map, the
// identity-mapped end of RAM and the page size above 4 GiB, and the range
// the Go runtime owns.
type Memory struct {
	Map          []bootinfo.Region
	MappedEnd    uint64
	HugePages    bool
	RuntimeStart uint64
	RuntimeEnd   uint64
	// HighCheck is the address above 4 GiB that was written and read
	// back at boot (0: no RAM there), HighCheckOK its result.
	HighCheck   uint64
	HighCheckOK bool
}

var memory Memory

// MemoryInfo returns the memory description gathered by MapMemory.
func MemoryInfo() Memory { return memory }

// MapMemory identity-maps all RAM the loader reported and checks that the
// highest RAM word above 4 GiB can be written and read back.
func MapMemory(info *bootinfo.Info, log Logf) {
	memory = Memory{RuntimeStart: RAM_START, RuntimeEnd: RAM_END, HugePages: HugePages()}
	if info == nil {
		log("no memory map from the loader: only 0-4 GiB is mapped")
		memory.MappedEnd = mappedEnd.Load()
		return
	}
	memory.Map = info.Memory
	var ranges [][2]uint64
	for _, r := range info.Memory {
		if r.Type == bootinfo.RAM && r.Base+r.Size > IDENTITY_MAP_END {
			ranges = append(ranges, [2]uint64{r.Base, r.Base + r.Size})
		}
	}
	end, err := mapRAM(ranges)
	if err != nil {
		log("%v", err)
	}
	memory.MappedEnd = end

	if len(ranges) > 0 {
		last := ranges[len(ranges)-1]
		addr := (min(last[1], end) - 8) &^ 7
		ok, err := WriteRead(addr, 0x6b65656c_6d656d21) // "keelmem!"
		if err != nil {
			log("high memory check: %v", err)
		}
		memory.HighCheck, memory.HighCheckOK = addr, ok
	}
}

// GuestRAM returns the RAM ranges the frame allocator may hand to guests and
// hardware structures, and the ranges it must not: the first 16 MiB (Keel's
// low pages, firmware, legacy DMA), the runtime's region and every boot
// module.
func GuestRAM(info *bootinfo.Info) (ram, reserved []addr.Range) {
	if info == nil {
		return nil, nil
	}
	for _, r := range info.Memory {
		if r.Type == bootinfo.RAM && r.Base+r.Size <= memory.MappedEnd {
			ram = append(ram, addr.Range{Base: r.Base, Size: r.Size})
		}
	}
	reserved = append(reserved, addr.Range{Base: 0, Size: 16 << 20}, addr.Range{Base: RAM_START, Size: RAM_SIZE})
	for _, m := range info.Modules {
		reserved = append(reserved, addr.Range{Base: m.Base, Size: m.Size})
	}
	return ram, reserved
}

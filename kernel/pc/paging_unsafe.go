//go:build tamago

package pc

import (
	"fmt"
	"unsafe"
)

// Identity map of all RAM. cpuinit maps 0-4 GiB with 2 MiB pages; mapRAM
// extends the map to the end of RAM with 1 GiB pages when the processor
// has them (CPUID 8000_0001h EDX bit 26, Page1GB) and 2 MiB pages
// otherwise (AMD APM Vol. 2, 5.3.4 "2-Mbyte Page Translation", 5.3.5
// "1-Gbyte Page Translation"; Intel SDM Vol. 3A, 4.5). Memory above 4 GiB is
// write-back (no PCD/PWT).

const (
	PAGE_SIZE   = 0x1000
	PAGE_2M     = 2 << 20
	PAGE_1G     = 1 << 30
	PTE_ADDR    = 0x000ffffffffff000 // bits 51:12
	CPUID_EXT   = 0x80000001
	EDX_PAGE1GB = 1 << 26
	// MAX_MAPPED is the largest RAM end mapRAM maps: 4-level paging
	// reaches 256 TiB, Keel stops at 64 TiB.
	MAX_MAPPED = 64 << 40
)

// tablePages keeps the page-table pages mapRAM allocated reachable: they
// live on the Go heap (identity mapped, never moved by the collector).
var tablePages [][]byte

// newTablePage returns the physical address of a zeroed, page-aligned
// 4 KiB page for page tables.
func newTablePage() uint64 {
	b := make([]byte, 2*PAGE_SIZE)
	tablePages = append(tablePages, b)
	addr := uint64(uintptr(unsafe.Pointer(&b[0])))
	return (addr + PAGE_SIZE - 1) &^ (PAGE_SIZE - 1)
}

// entry returns the i-th 64-bit entry of the table at physical address t.
func entry(t uint64, i uint64) *uint64 {
	return (*uint64)(unsafe.Add(nil, uintptr(t+i*8)))
}

// next returns the table an entry points to, creating it if absent.
func next(e *uint64) uint64 {
	if *e&PTE_P == 0 {
		*e = newTablePage() | PTE_RW | PTE_P
	}
	return *e & PTE_ADDR
}

// mapRAM identity-maps the parts of the RAM ranges (base, end pairs,
// sorted, disjoint) above 4 GiB: holes between them, where 64-bit PCI
// windows live, stay unmapped. A whole GiB inside one range gets a 1 GiB
// page when the processor has them, the rest 2 MiB pages. It returns the
// end of the mapped memory. It runs on the bootstrap processor before the
// others start, so a CR3 reload here is the only flush needed.
func mapRAM(ranges [][2]uint64) (end uint64, err error) {
	_, _, _, edx := cpuidInsn(CPUID_EXT, 0)
	huge := edx&EDX_PAGE1GB != 0

	end = IDENTITY_MAP_END
	for _, r := range ranges {
		base, limit := max(r[0], IDENTITY_MAP_END)&^(PAGE_2M-1), (r[1]+PAGE_2M-1)&^(PAGE_2M-1)
		if limit > MAX_MAPPED {
			err = fmt.Errorf("RAM up to %#x; only the first %d TiB are mapped", r[1], MAX_MAPPED>>40)
			limit = MAX_MAPPED
		}
		for addr := base; addr < limit; {
			pdpt := next(entry(PML4_BASE, addr>>39&511))
			pdpte := entry(pdpt, addr>>30&511)
			if huge && addr%PAGE_1G == 0 && addr+PAGE_1G <= limit {
				*pdpte = addr | PTE_PS | PTE_RW | PTE_P
				addr += PAGE_1G
				continue
			}
			if *pdpte&PTE_PS != 0 {
				// Already mapped by a 1 GiB page.
				addr = (addr + PAGE_1G) &^ (PAGE_1G - 1)
				continue
			}
			*entry(next(pdpte), addr>>21&511) = addr | PTE_PS | PTE_RW | PTE_P
			addr += PAGE_2M
		}
		end = max(end, limit)
	}
	reloadCR3()
	if end > mappedEnd.Load() {
		mappedEnd.Store(end)
	}
	return end, err
}

// HugePages reports whether the processor maps 1 GiB pages.
func HugePages() bool {
	_, _, _, edx := cpuidInsn(CPUID_EXT, 0)
	return edx&EDX_PAGE1GB != 0
}

// reloadCR3 flushes the TLB of this processor (cpu_amd64.s).
func reloadCR3()

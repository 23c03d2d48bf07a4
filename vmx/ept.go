package vmx

import (
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/hv/nested"
)

// Extended page tables (SDM Vol. 3C, 29.3 "The Extended Page Table
// Mechanism (EPT)"): a 4-level walk of the guest-physical address, tables
// of 512 8-byte entries. Bits 2:0 of every entry are read, write and
// execute permission (an entry with none is not present); a leaf (a PTE,
// or a PDE/PDPTE with bit 7 set) carries the memory type in bits 5:3 and
// the ignore-PAT bit 6 (Tables 29-1 to 29-6).
const (
	EPT_READ       = 1 << 0
	EPT_WRITE      = 1 << 1
	EPT_EXECUTE    = 1 << 2
	EPT_RWX        = EPT_READ | EPT_WRITE | EPT_EXECUTE
	EPT_MT_SHIFT   = 3
	EPT_IGNORE_PAT = 1 << 6
	EPT_LARGE      = 1 << 7
	EPT_ADDR       = 0x000ffffffffff000
	// EPT_LEAF is a write-back, read/write/execute leaf. The guest's PAT
	// still applies (ignore-PAT clear), as on hardware.
	EPT_LEAF = EPT_RWX | MEMORY_TYPE_WB<<EPT_MT_SHIFT

	// EPTP fields (SDM Vol. 3C, 25.6.11, Table 25-9): memory type of the
	// tables in bits 2:0, page-walk length minus one in 5:3.
	EPTP_MT_WB  = MEMORY_TYPE_WB
	EPTP_WALK_4 = 3 << 3
	EPTP_FLAGS  = EPTP_MT_WB | EPTP_WALK_4
)

// newEPT allocates a VM's empty extended page tables; huge2M and huge1G
// allow 2 MiB and 1 GiB pages (IA32_VMX_EPT_VPID_CAP).
func newEPT(frames *mem.Frames, owner mem.Owner, huge2M, huge1G bool) (*nested.Tables, error) {
	return nested.New(frames, owner, nested.Format{Name: "vmx: extended page table", Present: EPT_RWX, Large: EPT_LARGE,
		Addr: EPT_ADDR, Table: EPT_RWX, Leaf: EPT_LEAF, Huge2M: huge2M, Huge1G: huge1G})
}

// eptp returns the EPT pointer of t: the root, write-back, 4-level walk.
func eptp(t *nested.Tables) uint64 { return uint64(t.Root) | EPTP_FLAGS }

package svm

import (
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/hv/nested"
)

// Nested page tables (APM Vol. 2, 15.25 "Nested Paging"): the guest-physical
// to host-physical map has the format of 4-level long-mode page tables. All
// accesses through it are user accesses, so every entry sets U/S.
const (
	NPT_P    = 1 << 0
	NPT_RW   = 1 << 1
	NPT_US   = 1 << 2
	NPT_PS   = 1 << 7
	NPT_ADDR = 0x000ffffffffff000
	// NPT_TABLE is a present, writable, user leaf or table entry.
	NPT_TABLE = NPT_P | NPT_RW | NPT_US
)

// newNPT allocates a VM's empty nested page tables; huge allows 1 GiB
// pages (2 MiB pages are always there with NPT).
func newNPT(frames *mem.Frames, owner mem.Owner, huge bool) (*nested.Tables, error) {
	return nested.New(frames, owner, nested.Format{Name: "svm: nested page table", Present: NPT_P, Large: NPT_PS,
		Addr: NPT_ADDR, Table: NPT_TABLE, Leaf: NPT_TABLE, Huge2M: true, Huge1G: huge})
}

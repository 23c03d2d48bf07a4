package x86emu

import (
	"encoding/binary"
	"fmt"
)

// pagingMode is the guest's linear-to-physical translation scheme (Intel SDM
// Vol. 3A, 4.1.1 "Four Paging Modes" and Table 4-1).
type pagingMode uint8

const (
	pagingNone    pagingMode = iota // CR0.PG=0: linear = physical
	paging32                        // CR0.PG=1, CR4.PAE=0
	pagingPAE                       // CR0.PG=1, CR4.PAE=1, EFER.LMA=0
	paging4                         // CR0.PG=1, CR4.PAE=1, EFER.LMA=1, CR4.LA57=0
	paging5                         // as paging4 with CR4.LA57=1
	pagingInvalid                   // EFER.LMA=1 without CR4.PAE: cannot happen on hardware
)

func (m pagingMode) String() string {
	switch m {
	case pagingNone:
		return "no paging"
	case paging32:
		return "32-bit paging"
	case pagingPAE:
		return "PAE paging"
	case paging4:
		return "4-level paging"
	case paging5:
		return "5-level paging"
	}
	return "invalid paging mode"
}

func pagingModeOf(s *SysRegs) pagingMode {
	if s.CR0&CR0_PG == 0 || s.CR0&CR0_PE == 0 {
		return pagingNone
	}
	if s.CR4&CR4_PAE == 0 {
		if s.EFER&EFER_LMA != 0 {
			return pagingInvalid
		}
		return paging32
	}
	if s.EFER&EFER_LMA == 0 {
		return pagingPAE
	}
	if s.CR4&CR4_LA57 != 0 {
		return paging5
	}
	return paging4
}

// maxWalkRetries bounds how often a walk restarts because an accessed/dirty
// update lost a race with another vCPU changing the same entry.
const maxWalkRetries = 3

// ptWalk records the entries a walk read, for the accessed/dirty update.
type ptWalk struct {
	n    int
	gpa  [5]uint64
	val  [5]uint64
	size [5]int
}

func (w *ptWalk) add(gpa, val uint64, size int) {
	if w.n < len(w.gpa) {
		w.gpa[w.n], w.val[w.n], w.size[w.n] = gpa, val, size
		w.n++
	}
}

// tlbEntry caches one 4 KiB translation for the duration of a single
// Emulate call, as the processor's TLB would during one instruction.
type tlbEntry struct {
	valid bool
	acc   Access
	lpage uint64
	ppage uint64
}

// translate maps a linear address to a guest physical address for an access
// of kind acc, walking the guest's page tables. Faults come back as *Fault.
func (e *Emulator) translate(la uint64, acc Access) (uint64, error) {
	if e.paging == pagingNone {
		return la, nil
	}
	lpage := la &^ (pageSize - 1)
	for i := range e.tlb {
		t := &e.tlb[i]
		if t.valid && t.lpage == lpage && (t.acc == acc || (t.acc == AccessWrite && acc == AccessRead)) {
			return t.ppage | la&(pageSize-1), nil
		}
	}
	for attempt := 0; attempt < maxWalkRetries; attempt++ {
		gpa, retry, err := e.walk(la, acc)
		if err != nil {
			return 0, err
		}
		if !retry {
			t := &e.tlb[e.tlbNext%uint8(len(e.tlb))]
			e.tlbNext++
			*t = tlbEntry{valid: true, acc: acc, lpage: lpage, ppage: gpa &^ (pageSize - 1)}
			return gpa, nil
		}
	}
	return 0, fmt.Errorf("x86emu: guest page-table entries for linear %#x changed %d times while the emulator set their accessed/dirty flags; another vCPU keeps rewriting them", la, maxWalkRetries)
}

func (e *Emulator) flushTLB() {
	for i := range e.tlb {
		e.tlb[i].valid = false
	}
}

// readEntry reads a size-byte paging-structure entry.
func (e *Emulator) readEntry(gpa uint64, size int, la uint64) (uint64, error) {
	buf := e.pte[:size]
	if err := e.p.ReadPhys(gpa, buf); err != nil {
		return 0, fmt.Errorf("x86emu: reading the guest page-table entry at guest physical %#x (%s, linear %#x): %w", gpa, e.paging, la, err)
	}
	if size == 4 {
		return uint64(binary.LittleEndian.Uint32(buf)), nil
	}
	return binary.LittleEndian.Uint64(buf), nil
}

// walk performs one page walk (Intel SDM Vol. 3A, 4.3 "32-Bit Paging", 4.4
// "PAE Paging", 4.5 "4-Level Paging and 5-Level Paging", 4.6 "Access
// Rights", 4.7 "Page-Fault Exceptions"; AMD APM Vol. 2, 5.2-5.6). retry
// reports that an accessed/dirty update lost a race and the walk must be
// repeated.
func (e *Emulator) walk(la uint64, acc Access) (gpa uint64, retry bool, err error) {
	s := &e.sys
	user := e.cpl == 3
	// I/D is reported only with SMEP or with PAE-style entries and NXE (4.7).
	idValid := s.CR4&CR4_SMEP != 0 || (s.CR4&CR4_PAE != 0 && s.EFER&EFER_NXE != 0)
	fault := func(code uint32) error {
		if acc == AccessWrite {
			code |= PF_WR
		}
		if user {
			code |= PF_US
		}
		if acc == AccessFetch && idValid {
			code |= PF_ID
		}
		return &Fault{Vector: EXC_PF, ErrorCode: code, Addr: la, Access: acc}
	}

	maxPA := uint(s.MaxPhysAddr)
	if maxPA == 0 || maxPA > 52 {
		maxPA = 52
	}
	if maxPA < 32 {
		maxPA = 32
	}
	// addrMask selects the physical-address bits of a PAE/4-level entry.
	addrMask := (uint64(1)<<maxPA - 1) &^ (pageSize - 1)

	var w ptWalk
	rw, us, xd := true, true, false
	var pa uint64
	leafIdx := -1

	switch e.paging {
	case paging32:
		pdeAddr := s.CR3&0xfffff000 | (la>>22&0x3ff)<<2
		pde, err := e.readEntry(pdeAddr, 4, la)
		if err != nil {
			return 0, false, err
		}
		if pde&PG_P == 0 {
			return 0, false, fault(0)
		}
		w.add(pdeAddr, pde, 4)
		rw, us = pde&PG_RW != 0, pde&PG_US != 0
		if pde&PG_PS != 0 && s.CR4&CR4_PSE != 0 {
			// 4 MiB page: PA[31:22] from bits 31:22, PA[39:32] from bits
			// 20:13 (PSE-36); bit 21 and PA bits at or above
			// min(MAXPHYADDR, 40) are reserved (Table 4-4).
			hi := pde >> 13 & 0xff
			m := maxPA
			if m > 40 {
				m = 40
			}
			if pde&(1<<21) != 0 || hi>>(m-32) != 0 {
				return 0, false, fault(PF_P | PF_RSVD)
			}
			pa = pde&0xffc00000 | hi<<32 | la&0x3fffff
			leafIdx = 0
			break
		}
		pteAddr := pde&0xfffff000 | (la>>12&0x3ff)<<2
		pte, err := e.readEntry(pteAddr, 4, la)
		if err != nil {
			return 0, false, err
		}
		if pte&PG_P == 0 {
			return 0, false, fault(0)
		}
		w.add(pteAddr, pte, 4)
		rw, us = rw && pte&PG_RW != 0, us && pte&PG_US != 0
		pa = pte&0xfffff000 | la&0xfff
		leafIdx = 1

	case pagingPAE, paging4, paging5:
		nxe := s.EFER&EFER_NXE != 0
		var rsvd uint64
		if e.paging == pagingPAE {
			rsvd = (uint64(1)<<63 - 1) &^ (uint64(1)<<maxPA - 1) // bits 62:M (Tables 4-8 to 4-11)
		} else {
			rsvd = (uint64(1)<<52 - 1) &^ (uint64(1)<<maxPA - 1) // bits 51:M (Tables 4-15 to 4-20)
		}
		if !nxe {
			rsvd |= PG_XD // bit 63 is reserved without NXE
		}
		var table uint64
		var shifts []uint
		switch e.paging {
		case pagingPAE:
			idx := la >> 30 & 3
			var pdpte uint64
			if s.PDPTEValid {
				pdpte = s.PDPTE[idx]
			} else {
				addr := s.CR3&0xffffffe0 + idx*8
				if pdpte, err = e.readEntry(addr, 8, la); err != nil {
					return 0, false, err
				}
			}
			if pdpte&PG_P == 0 {
				return 0, false, fault(0)
			}
			// PDPTE bits 2:1, 8:5 and 63:M are reserved (Table 4-8). The
			// processor checks them when it loads CR3 (#GP); an entry read
			// here with them set is reported as a reserved-bit #PF.
			if pdpte&(0x1e6|PG_XD|rsvd) != 0 {
				return 0, false, fault(PF_P | PF_RSVD)
			}
			table = pdpte & addrMask
			shifts = shiftsPAE[:]
		case paging4:
			table = s.CR3 & addrMask
			shifts = shifts4[:]
		case paging5:
			table = s.CR3 & addrMask
			shifts = shifts5[:]
		}
		for _, shift := range shifts {
			addr := table + (la>>shift&0x1ff)*8
			ent, err := e.readEntry(addr, 8, la)
			if err != nil {
				return 0, false, err
			}
			if ent&PG_P == 0 {
				return 0, false, fault(0)
			}
			if ent&rsvd != 0 {
				return 0, false, fault(PF_P | PF_RSVD)
			}
			w.add(addr, ent, 8)
			rw = rw && ent&PG_RW != 0
			us = us && ent&PG_US != 0
			xd = xd || (nxe && ent&PG_XD != 0)
			if shift == 12 {
				pa = ent&addrMask | la&(pageSize-1)
				leafIdx = w.n - 1
				break
			}
			if ent&PG_PS != 0 {
				// PS maps a 2 MiB page in a PDE and a 1 GiB page in a
				// 4-level PDPTE; it is reserved in PML4Es and PML5Es.
				if shift > 30 || (shift == 30 && e.paging == pagingPAE) {
					return 0, false, fault(PF_P | PF_RSVD)
				}
				large := uint64(1) << shift
				// Bits shift-1:13 are reserved (bit 12 is PAT).
				if ent&((large-1)&^0x1fff) != 0 {
					return 0, false, fault(PF_P | PF_RSVD)
				}
				pa = ent&addrMask&^(large-1) | la&(large-1)
				leafIdx = w.n - 1
				break
			}
			table = ent & addrMask
		}
		if leafIdx < 0 {
			return 0, false, fmt.Errorf("x86emu: internal error: %s walk of %#x found no leaf", e.paging, la)
		}

	case pagingInvalid:
		return 0, false, fmt.Errorf("x86emu: inconsistent guest state: CR0.PG=1 and EFER.LMA=1 with CR4.PAE=0 (CR0 %#x, CR4 %#x, EFER %#x)", s.CR0, s.CR4, s.EFER)
	default:
		return la, false, nil
	}

	// Access rights (4.6).
	smap := s.CR4&CR4_SMAP != 0 && e.rflags&RFLAGS_AC == 0
	denied := false
	switch acc {
	case AccessFetch:
		denied = xd || (user && !us) || (!user && us && s.CR4&CR4_SMEP != 0)
	case AccessWrite:
		if user {
			denied = !us || !rw
		} else {
			denied = (!rw && s.CR0&CR0_WP != 0) || (us && smap)
		}
	default:
		if user {
			denied = !us
		} else {
			denied = us && smap
		}
	}
	if denied {
		return 0, false, fault(PF_P)
	}

	// Accessed and dirty flags (4.8), only with an atomic update.
	if e.atomic != nil {
		for i := 0; i < w.n; i++ {
			set := uint64(PG_A)
			if i == leafIdx && acc == AccessWrite {
				set |= PG_D
			}
			if w.val[i]&set == set {
				continue
			}
			ok, err := e.atomic.CompareAndSwapPhys(w.gpa[i], w.size[i], w.val[i], w.val[i]|set)
			if err != nil {
				return 0, false, fmt.Errorf("x86emu: setting accessed/dirty flags in the guest page-table entry at guest physical %#x: %w", w.gpa[i], err)
			}
			if !ok {
				return 0, true, nil
			}
		}
	}
	return pa, false, nil
}

var (
	shiftsPAE = [...]uint{21, 12}
	shifts4   = [...]uint{39, 30, 21, 12}
	shifts5   = [...]uint{48, 39, 30, 21, 12}
)

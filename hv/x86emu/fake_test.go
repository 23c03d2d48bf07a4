package x86emu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// Test machine layout: RAM at guest physical 0..ramSize, a device window of
// two pages at mmioBase (outside RAM).
const (
	ramSize  = 8 << 20
	mmioBase = 0xf000_0000
	mmioSize = 0x2000
	codeGPA  = 0x10000 // where tests put instruction bytes
	// realDevBase is the device window in real mode (below 1 MiB, where
	// VGA memory lives); RAM pages there are shadowed by the device.
	realDevBase = 0xa0000
	ptGPA       = 0x100000 // first frame handed out for page tables
)

var errNotRAM = errors.New("fake: not RAM")

// access is one MMIO access the fake saw.
type access struct {
	gpa   uint64
	size  int
	write bool
	val   uint64
}

func (a access) String() string {
	dir := "R"
	if a.write {
		dir = "W"
	}
	return fmt.Sprintf("%s%d@%#x=%#x", dir, a.size, a.gpa, a.val)
}

// fakeVM is a Platform over plain Go memory.
type fakeVM struct {
	gpr    [NumGPR]uint64
	rip    uint64
	rflags uint64
	segs   [NumSegReg]Segment
	sys    SysRegs

	ram  []byte
	dev  [mmioSize]byte
	log  []access
	phys int // ReadPhys+WritePhys calls

	devBase  uint64 // guest physical base of the device window
	mmioErr  error  // returned by MMIO when set
	nextPT   uint64
	noLogCap bool

	// For the fuzzer: anyDev makes every GPA a device (reads mirror dev);
	// track records RAM writes in undo so the machine can be restored;
	// calls counts memory and device calls.
	anyDev bool
	track  bool
	undo   []undoRec
	calls  int
}

// undoRec is the RAM content a tracked write replaced.
type undoRec struct {
	gpa uint64
	old []byte
}

// rollback restores RAM changed since track was set.
func (f *fakeVM) rollback() {
	for i := len(f.undo) - 1; i >= 0; i-- {
		copy(f.ram[f.undo[i].gpa:], f.undo[i].old)
	}
	f.undo = f.undo[:0]
}

// poke writes RAM, recording the old content when tracking.
func (f *fakeVM) poke(gpa uint64, b []byte) {
	if !f.inRAM(gpa, len(b)) {
		return
	}
	if f.track {
		f.undo = append(f.undo, undoRec{gpa, append([]byte(nil), f.ram[gpa:gpa+uint64(len(b))]...)})
	}
	copy(f.ram[gpa:], b)
}

func newFakeVM() *fakeVM { return newFakeVMSize(ramSize) }

func newFakeVMSize(size int) *fakeVM {
	return &fakeVM{ram: make([]byte, size), rflags: 0x2, nextPT: ptGPA, devBase: mmioBase}
}

func (f *fakeVM) GPR(n int) uint64 {
	if n < 0 || n >= NumGPR {
		panic(fmt.Sprintf("GPR(%d)", n))
	}
	return f.gpr[n]
}

func (f *fakeVM) SetGPR(n int, v uint64) {
	if n < 0 || n >= NumGPR {
		panic(fmt.Sprintf("SetGPR(%d)", n))
	}
	f.gpr[n] = v
}

func (f *fakeVM) RIP() uint64              { return f.rip }
func (f *fakeVM) SetRIP(v uint64)          { f.rip = v }
func (f *fakeVM) RFLAGS() uint64           { return f.rflags }
func (f *fakeVM) SetRFLAGS(v uint64)       { f.rflags = v }
func (f *fakeVM) Segment(s SegReg) Segment { return f.segs[s] }
func (f *fakeVM) SysRegs() SysRegs         { return f.sys }

func (f *fakeVM) inRAM(gpa uint64, n int) bool {
	return gpa < uint64(len(f.ram)) && uint64(n) <= uint64(len(f.ram))-gpa
}

func (f *fakeVM) ReadPhys(gpa uint64, data []byte) error {
	f.phys++
	f.calls++
	if !f.inRAM(gpa, len(data)) {
		return fmt.Errorf("%w: read %d bytes at %#x", errNotRAM, len(data), gpa)
	}
	copy(data, f.ram[gpa:])
	return nil
}

func (f *fakeVM) WritePhys(gpa uint64, data []byte) error {
	f.phys++
	f.calls++
	if !f.inRAM(gpa, len(data)) {
		return fmt.Errorf("%w: write %d bytes at %#x", errNotRAM, len(data), gpa)
	}
	f.poke(gpa, data)
	return nil
}

func (f *fakeVM) MMIO(gpa uint64, data []byte, write bool) error {
	if len(data) < 1 || len(data) > 8 {
		panic(fmt.Sprintf("MMIO with %d bytes", len(data)))
	}
	f.calls++
	if f.mmioErr != nil {
		return f.mmioErr
	}
	if f.anyDev {
		for i := range data {
			if write {
				f.dev[(gpa+uint64(i))%mmioSize] = data[i]
			} else {
				data[i] = f.dev[(gpa+uint64(i))%mmioSize]
			}
		}
		if len(f.log) < 64 {
			f.log = append(f.log, access{gpa: gpa, size: len(data), write: write, val: le(data)})
		}
		return nil
	}
	if gpa < f.devBase || gpa-f.devBase+uint64(len(data)) > mmioSize {
		return fmt.Errorf("fake: no device at %#x", gpa)
	}
	off := gpa - f.devBase
	if write {
		copy(f.dev[off:], data)
	} else {
		copy(data, f.dev[off:])
	}
	if !f.noLogCap || len(f.log) < 64 {
		f.log = append(f.log, access{gpa: gpa, size: len(data), write: write, val: le(data)})
	}
	return nil
}

// atomicVM adds AtomicPhys to fakeVM.
type atomicVM struct {
	*fakeVM
	cas     int
	failCAS int // fail this many CAS calls (simulating a racing vCPU)
}

func (a *atomicVM) CompareAndSwapPhys(gpa uint64, size int, old, new uint64) (bool, error) {
	a.cas++
	if !a.inRAM(gpa, size) {
		return false, errNotRAM
	}
	if a.failCAS > 0 {
		a.failCAS--
		return false, nil
	}
	var cur uint64
	if size == 4 {
		cur = uint64(binary.LittleEndian.Uint32(a.ram[gpa:]))
	} else {
		cur = binary.LittleEndian.Uint64(a.ram[gpa:])
	}
	if cur != old {
		return false, nil
	}
	b := make([]byte, size)
	putLE(b, new)
	a.poke(gpa, b)
	return true, nil
}

func (f *fakeVM) put32(gpa uint64, v uint32) { binary.LittleEndian.PutUint32(f.ram[gpa:], v) }
func (f *fakeVM) put64(gpa uint64, v uint64) { binary.LittleEndian.PutUint64(f.ram[gpa:], v) }
func (f *fakeVM) get64(gpa uint64) uint64    { return binary.LittleEndian.Uint64(f.ram[gpa:]) }
func (f *fakeVM) get32(gpa uint64) uint32    { return binary.LittleEndian.Uint32(f.ram[gpa:]) }

// allocPT hands out a zeroed 4 KiB frame for page tables.
func (f *fakeVM) allocPT() uint64 {
	p := f.nextPT
	f.nextPT += pageSize
	for i := p; i < p+pageSize; i++ {
		f.ram[i] = 0
	}
	return p
}

// Segment attribute values used by the tests.
const (
	attrCode64 = SEG_ATTR_P | SEG_ATTR_S | 0xb | SEG_ATTR_L | SEG_ATTR_G
	attrCode32 = SEG_ATTR_P | SEG_ATTR_S | 0xb | SEG_ATTR_DB | SEG_ATTR_G
	attrCode16 = SEG_ATTR_P | SEG_ATTR_S | 0xb
	attrData32 = SEG_ATTR_P | SEG_ATTR_S | 0x3 | SEG_ATTR_DB | SEG_ATTR_G
	attrData16 = SEG_ATTR_P | SEG_ATTR_S | 0x3
	attrUser   = 3 << SEG_ATTR_DPL_SHIFT
)

// machine modes the tests set up.
type vmMode int

const (
	modeReal    vmMode = iota // real mode, 16-bit
	modeProt16                // protected mode, 16-bit code segment, no paging
	modeProt32                // protected mode, 32-bit, no paging
	modePaged32               // 32-bit paging
	modePAE                   // PAE paging, 32-bit code
	modeLong64                // 4-level paging, 64-bit code
	modeCompat                // 4-level paging, 32-bit compatibility-mode code
	modeLA57                  // 5-level paging, 64-bit code
)

func (m vmMode) String() string {
	return [...]string{"real", "prot16", "prot32", "paged32", "pae", "long64", "compat32", "la57"}[m]
}

func (m vmMode) bits() int {
	switch m {
	case modeReal, modeProt16:
		return 16
	case modeLong64, modeLA57:
		return 64
	}
	return 32
}

var allModes = []vmMode{modeReal, modeProt16, modeProt32, modePaged32, modePAE, modeLong64, modeCompat, modeLA57}

// setMode configures control registers and segments for m, and builds
// identity page tables covering RAM's first 8 MiB plus the device window
// (when m pages). The code is at linear codeLinear(m).
func (f *fakeVM) setMode(t testing.TB, m vmMode) {
	f.nextPT = ptGPA
	f.devBase = mmioBase
	for i := range f.segs {
		f.segs[i] = Segment{Limit: 0xffffffff, Attr: attrData32}
	}
	switch m {
	case modeReal:
		f.sys = SysRegs{}
		f.devBase = realDevBase
		for i := range f.segs {
			f.segs[i] = Segment{Selector: realDevBase >> 4, Base: realDevBase, Limit: 0xffff, Attr: attrData16}
		}
		f.segs[SegCS] = Segment{Selector: codeGPA >> 4, Base: codeGPA, Limit: 0xffff, Attr: attrCode16}
		f.rip = 0
		return
	case modeProt16:
		f.sys = SysRegs{CR0: CR0_PE}
		for i := range f.segs {
			f.segs[i] = Segment{Base: mmioBase, Limit: 0xffff, Attr: attrData16}
		}
		f.segs[SegCS] = Segment{Base: codeGPA, Limit: 0xffff, Attr: attrCode16}
		f.rip = 0
		return
	case modeProt32:
		f.sys = SysRegs{CR0: CR0_PE}
		f.segs[SegCS] = Segment{Limit: 0xffffffff, Attr: attrCode32}
		f.rip = codeGPA
		return
	}
	f.rip = codeGPA
	switch m {
	case modePaged32:
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PSE}
		f.segs[SegCS] = Segment{Limit: 0xffffffff, Attr: attrCode32}
		root := f.allocPT()
		f.sys.CR3 = root
		for la := uint64(0); la < uint64(len(f.ram)); la += 4 << 20 {
			f.map32(t, la, la, PG_RW, true)
		}
		f.map32(t, mmioBase, mmioBase, PG_RW, false)
		f.map32(t, mmioBase+pageSize, mmioBase+pageSize, PG_RW, false)
	case modePAE:
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PAE, EFER: EFER_NXE}
		f.segs[SegCS] = Segment{Limit: 0xffffffff, Attr: attrCode32}
		pdpt := f.allocPT()
		f.sys.CR3 = pdpt
		for la := uint64(0); la < uint64(len(f.ram)); la += 2 << 20 {
			f.mapPAE(t, la, la, PG_RW, true)
		}
		f.mapPAE(t, mmioBase, mmioBase, PG_RW, false)
		f.mapPAE(t, mmioBase+pageSize, mmioBase+pageSize, PG_RW, false)
	case modeLong64, modeCompat, modeLA57:
		f.sys = SysRegs{CR0: CR0_PE | CR0_PG | CR0_WP, CR4: CR4_PAE, EFER: EFER_LME | EFER_LMA | EFER_NXE}
		if m == modeLA57 {
			f.sys.CR4 |= CR4_LA57
		}
		f.segs[SegCS] = Segment{Attr: attrCode64}
		if m == modeCompat {
			f.segs[SegCS] = Segment{Limit: 0xffffffff, Attr: attrCode32}
		}
		f.sys.CR3 = f.allocPT()
		for la := uint64(0); la < uint64(len(f.ram)); la += 2 << 20 {
			f.map64(t, la, la, PG_RW, 2<<20)
		}
		f.map64(t, mmioBase, mmioBase, PG_RW, pageSize)
		f.map64(t, mmioBase+pageSize, mmioBase+pageSize, PG_RW, pageSize)
	}
}

// entryAt returns the table entry for index idx in table, allocating the
// next-level table (with flags) when it is missing.
func (f *fakeVM) walkAlloc(table uint64, idx uint64, size int, flags uint64) uint64 {
	addr := table + idx*uint64(size)
	var ent uint64
	if size == 4 {
		ent = uint64(f.get32(addr))
	} else {
		ent = f.get64(addr)
	}
	if ent&PG_P == 0 {
		next := f.allocPT()
		ent = next | PG_P | flags
		if size == 4 {
			f.put32(addr, uint32(ent))
		} else {
			f.put64(addr, ent)
		}
	}
	return ent
}

// map32 maps la to pa with 32-bit paging (large: a 4 MiB page).
func (f *fakeVM) map32(t testing.TB, la, pa, flags uint64, large bool) {
	root := f.sys.CR3 &^ 0xfff
	pdeAddr := root + (la>>22&0x3ff)*4
	if large {
		f.put32(pdeAddr, uint32(pa&0xffc00000|(pa>>32&0xff)<<13|PG_P|PG_PS|flags))
		return
	}
	pde := f.walkAlloc(root, la>>22&0x3ff, 4, PG_RW|PG_US)
	pt := pde & 0xfffff000
	f.put32(pt+(la>>12&0x3ff)*4, uint32(pa&0xfffff000|PG_P|flags))
}

// mapPAE maps la to pa with PAE paging (large: a 2 MiB page).
func (f *fakeVM) mapPAE(t testing.TB, la, pa, flags uint64, large bool) {
	pdpt := f.sys.CR3 &^ 0x1f
	pdpteAddr := pdpt + (la>>30&3)*8
	pdpte := f.get64(pdpteAddr)
	if pdpte&PG_P == 0 {
		pdpte = f.allocPT() | PG_P
		f.put64(pdpteAddr, pdpte)
	}
	pd := pdpte &^ 0xfff
	if large {
		f.put64(pd+(la>>21&0x1ff)*8, pa&^0x1fffff|PG_P|PG_PS|flags)
		return
	}
	pde := f.walkAlloc(pd, la>>21&0x1ff, 8, PG_RW|PG_US)
	pt := pde &^ 0xfff &^ PG_XD
	f.put64(pt+(la>>12&0x1ff)*8, pa&^0xfff|PG_P|flags)
}

// map64 maps la to pa with 4- or 5-level paging, with a page of size 4 KiB,
// 2 MiB or 1 GiB.
func (f *fakeVM) map64(t testing.TB, la, pa, flags uint64, size uint64) {
	shifts := []uint{39, 30, 21, 12}
	if f.sys.CR4&CR4_LA57 != 0 {
		shifts = []uint{48, 39, 30, 21, 12}
	}
	table := f.sys.CR3 &^ 0xfff
	for _, s := range shifts {
		idx := la >> s & 0x1ff
		if uint64(1)<<s == size {
			ent := pa&^(size-1) | PG_P | flags
			if size > pageSize {
				ent |= PG_PS
			}
			f.put64(table+idx*8, ent)
			return
		}
		ent := f.walkAlloc(table, idx, 8, PG_RW|PG_US)
		table = ent & 0x000ffffffffff000
	}
	t.Fatalf("map64: bad page size %#x", size)
}

// ptr returns the register value that addresses byte off of the device
// window through the mode's data segments (based at the window in 16-bit
// modes, flat otherwise).
func ptr(m vmMode, off uint64) uint64 {
	if m.bits() == 16 {
		return off
	}
	return mmioBase + off
}

// devGPA returns the guest physical address of byte off of the window.
func (f *fakeVM) devGPA(off uint64) uint64 { return f.devBase + off }

// setCode writes instruction bytes at the mode's code location.
func (f *fakeVM) setCode(m vmMode, code []byte) {
	copy(f.ram[codeGPA:], code)
}

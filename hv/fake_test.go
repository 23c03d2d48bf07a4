package hv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// fakeBackend is a Backend that runs no guest: each fake vCPU's Run asks
// its guest function for the next exit. Hardware structures are modelled
// by 4 KiB frames allocated with the VM's owner, so leaks show in the
// accounting.
type fakeBackend struct {
	mu        sync.Mutex
	vms       []*fakeVM
	failNewVM error
	failMap   error
	failVCPU  int // NewVCPU(id) fails for this id (-1: never)
}

func newFakeBackend() *fakeBackend { return &fakeBackend{failVCPU: -1} }

func (b *fakeBackend) Name() string { return "fake" }

func (b *fakeBackend) NewVM(cfg BackendVMConfig) (BackendVM, error) {
	if b.failNewVM != nil {
		return nil, b.failNewVM
	}
	root, err := cfg.Frames.Alloc(cfg.Owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, err
	}
	vm := &fakeVM{b: b, cfg: cfg, pages: []addr.HPA{root}}
	b.mu.Lock()
	b.vms = append(b.vms, vm)
	b.mu.Unlock()
	return vm, nil
}

type fakeVM struct {
	b         *fakeBackend
	cfg       BackendVMConfig
	pages     []addr.HPA
	regions   []mem.Region
	vcpus     []*fakeVCPU
	destroyed bool
}

func (vm *fakeVM) MapMemory(regions []mem.Region) error {
	if vm.b.failMap != nil {
		return vm.b.failMap
	}
	vm.regions = regions
	for range regions { // one page-table page per region
		p, err := vm.cfg.Frames.Alloc(vm.cfg.Owner, addr.PAGE_SIZE_4K)
		if err != nil {
			return err
		}
		vm.pages = append(vm.pages, p)
	}
	return nil
}

func (vm *fakeVM) NewVCPU(id int) (BackendVCPU, error) {
	if id == vm.b.failVCPU {
		return nil, fmt.Errorf("no VMCB for vCPU %d", id)
	}
	p, err := vm.cfg.Frames.Alloc(vm.cfg.Owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, err
	}
	v := &fakeVCPU{id: id, frames: vm.cfg.Frames, page: p, kick: make(chan struct{}, 1)}
	vm.vcpus = append(vm.vcpus, v)
	return v, nil
}

func (vm *fakeVM) Destroy() error {
	if vm.destroyed {
		return errors.New("fake VM destroyed twice")
	}
	vm.destroyed = true
	var errs []error
	for _, p := range vm.pages {
		errs = append(errs, vm.cfg.Frames.Free(p))
	}
	return errors.Join(errs...)
}

// fakeVCPU keeps registers in memory. Run calls guest, which plays the
// guest: it sees the registers and the event being injected and returns
// the next exit. Without a guest, Run blocks until kicked.
type fakeVCPU struct {
	id     int
	frames *mem.Frames
	page   addr.HPA

	mu        sync.Mutex
	regs      arch.Regs
	sregs     arch.Sregs
	pending   bool // an event is queued
	event     arch.Event
	delivered []arch.Event
	window    bool
	runs      int
	guest     func(v *fakeVCPU) (arch.Exit, error)
	kick      chan struct{}
	destroyed bool
	failRegs  error
}

func (v *fakeVCPU) Run() (arch.Exit, error) {
	v.mu.Lock()
	v.runs++
	if v.pending {
		v.delivered = append(v.delivered, v.event)
		v.pending = false
	}
	g := v.guest
	v.mu.Unlock()
	select {
	case <-v.kick:
		return arch.Exit{Reason: arch.ExitInterrupt, RIP: v.regs.RIP}, nil
	default:
	}
	if g == nil {
		<-v.kick
		return arch.Exit{Reason: arch.ExitInterrupt, RIP: v.regs.RIP}, nil
	}
	return g(v)
}

func (v *fakeVCPU) GetRegs(r *arch.Regs) error {
	if v.failRegs != nil {
		return v.failRegs
	}
	*r = v.regs
	return nil
}

func (v *fakeVCPU) SetRegs(r *arch.Regs) error {
	if v.failRegs != nil {
		return v.failRegs
	}
	v.regs = *r
	return nil
}

func (v *fakeVCPU) GetSregs(s *arch.Sregs) error { *s = v.sregs; return nil }
func (v *fakeVCPU) SetSregs(s *arch.Sregs) error { v.sregs = *s; return nil }

func (v *fakeVCPU) Inject(ev arch.Event) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pending {
		return errors.New("an event is already queued")
	}
	if err := ev.Validate(); err != nil {
		return err
	}
	v.pending, v.event = true, ev
	return nil
}

func (v *fakeVCPU) RequestInterruptWindow(on bool) { v.window = on }

func (v *fakeVCPU) Kick() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

func (v *fakeVCPU) Destroy() error {
	if v.destroyed {
		return errors.New("fake vCPU destroyed twice")
	}
	v.destroyed = true
	return v.frames.Free(v.page)
}

// fakeHost is an AMD-like host CPUID with every feature.
func fakeHost(leaf, sub uint32) (a, b, c, d uint32) {
	switch leaf {
	case 0:
		return 0xd, 0x68747541, 0x444d4163, 0x69746e65 // AuthenticAMD
	case 0x80000000:
		return 0x80000008, 0, 0, 0
	case 0x80000008:
		return 0x3030, 0, 0, 0
	}
	return ^uint32(0), ^uint32(0), ^uint32(0), ^uint32(0)
}

// fakeDev is a device with 16 byte-wide registers that records accesses.
type fakeDev struct {
	mu     sync.Mutex
	regs   [16]byte
	writes int
	reads  int
	log    []byte // every byte written, in order
}

func (d *fakeDev) Read(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	for i := range data {
		data[i] = d.regs[(off+uint64(i))%16]
	}
}

func (d *fakeDev) Write(off uint64, data []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	for i, b := range data {
		d.regs[(off+uint64(i))%16] = b
	}
	d.log = append(d.log, data...)
}

// fakeEmu is an InstructionEmulator for tests. EmulateMMIO performs a
// 4-byte store of EAX to the faulting address (or a load into EAX when
// load is set) and advances RIP by 3; fail and except make it fail.
// TranslateGVA maps linear addresses to their low 24 bits (the 16 MiB of
// test RAM) and raises #PF for the page at 0x7000_0000.
type fakeEmu struct {
	cpu    EmuCPU
	buf    [4]byte // a field, not a local: a local passed to EmuCPU.MMIO would escape
	load   bool
	fail   error
	except *GuestException
	calls  int
	// insnLen and lenErr are what InsnLength returns.
	insnLen int
	lenErr  error
}

func (e *fakeEmu) InsnLength() (int, error) {
	if e.lenErr != nil {
		return 0, e.lenErr
	}
	if e.insnLen == 0 {
		return 0, errors.New("fake: no instruction length set")
	}
	return e.insnLen, nil
}

func (e *fakeEmu) EmulateMMIO(gpa addr.GPA) error {
	cpu := e.cpu
	e.calls++
	if e.fail != nil {
		return e.fail
	}
	if e.except != nil {
		return e.except
	}
	r := cpu.Regs()
	b := &e.buf
	if e.load {
		if err := cpu.MMIO(gpa, b[:], false); err != nil {
			return err
		}
		r.GPR[arch.RAX] = uint64(binary.LittleEndian.Uint32(b[:]))
	} else {
		binary.LittleEndian.PutUint32(b[:], uint32(r.GPR[arch.RAX]))
		if err := cpu.MMIO(gpa, b[:], true); err != nil {
			return err
		}
	}
	r.RIP += 3
	return nil
}

func (e *fakeEmu) TranslateGVA(gva addr.GVA, acc arch.Access) (addr.GPA, error) {
	if gva>>12 == 0x70000 {
		return 0, &GuestException{Event: arch.PageFault(uint64(gva), arch.PFEC_WR), Reason: "not present"}
	}
	return addr.GPA(gva & 0xffffff), nil
}

// testVM builds a VM on a fake backend with 16 MiB of RAM.
func testVM(t testing.TB, cfg Config) (*VM, *fakeBackend, *mem.Frames) {
	t.Helper()
	host := mem.NewSparseHost(1<<30, 1<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 1 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	b := newFakeBackend()
	if cfg.Name == "" {
		cfg.Name = "vm1"
	}
	if cfg.MemorySize == 0 {
		cfg.MemorySize = 16 << 20
	}
	if cfg.VCPUs == 0 {
		cfg.VCPUs = 1
	}
	if cfg.HostCPUID == nil {
		cfg.HostCPUID = fakeHost
	}
	vm, err := NewVM(b, frames, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return vm, b, frames
}

// fakeOf returns vCPU i's fake backend vCPU.
func fakeOf(vm *VM, i int) *fakeVCPU { return vm.vcpus[i].be.(*fakeVCPU) }

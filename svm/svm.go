package svm

import (
	"errors"
	"fmt"
	"sync"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/hv/nested"
)

// Permission maps (APM Vol. 2, 15.10.1 and 15.11): the IOPM has one bit
// per port (12 KiB), the MSRPM two bits per MSR (read, then write) for
// three ranges of 8192 MSRs (8 KiB). A set bit intercepts.
const (
	IOPM_SIZE    = 12 << 10
	MSRPM_SIZE   = 8 << 10
	MSRPM_OFFSET = IOPM_SIZE // in the backend's 2 MiB chunk
)

// msrpmRanges are the MSR ranges the MSRPM covers and their byte offsets.
var msrpmRanges = [...]struct{ base, offset uint32 }{
	{0x00000000, 0x0000}, {0xc0000000, 0x0800}, {0xc0010000, 0x1000},
}

// msrpmBit returns the byte and bit of the read-intercept bit of msr (the
// write bit is the next one), or ok false outside the covered ranges.
func msrpmBit(msr uint32) (byteOff int, bit uint, ok bool) {
	for _, r := range msrpmRanges {
		if msr >= r.base && msr < r.base+8192 {
			n := msr - r.base
			return int(r.offset + n/4), uint(n%4) * 2, true
		}
	}
	return 0, 0, false
}

// Capabilities are what CPUID says of this processor's SVM (APM Vol. 2,
// 15.4 and CPUID Fn8000_000A).
type Capabilities struct {
	NPT          bool   // EDX bit 0
	NRIPSave     bool   // EDX bit 3
	CleanBits    bool   // EDX bit 5
	FlushByASID  bool   // EDX bit 6
	DecodeAssist bool   // EDX bit 7
	ASIDs        uint32 // EBX
	Huge         bool   // 1 GiB pages in nested tables (Fn8000_0001 EDX bit 26)
}

// CPUID and MSR numbers for detection.
const (
	CPUID_EXT_FEATURES = 0x80000001
	ECX_SVM            = 1 << 2
	EDX_PAGE1GB        = 1 << 26
	CPUID_SVM          = 0x8000000a
	MSR_VM_CR          = 0xc0010114
	VM_CR_SVMDIS       = 1 << 4
	MSR_VM_HSAVE_PA    = 0xc0010117
	MSR_EFER           = 0xc0000080
)

// Detect checks that the processor can run Keel's SVM backend. cpuid and
// rdmsr read the current processor. Errors say what is missing and what
// to do.
func Detect(cpuid func(leaf, sub uint32) (a, b, c, d uint32), rdmsr func(uint32) uint64) (Capabilities, error) {
	var caps Capabilities
	if max, _, _, _ := cpuid(0x80000000, 0); max < CPUID_SVM {
		return caps, errors.New("svm: the processor has no SVM leaf (CPUID 8000_000Ah): no AMD-V")
	}
	_, _, ecx, edx := cpuid(CPUID_EXT_FEATURES, 0)
	if ecx&ECX_SVM == 0 {
		return caps, errors.New("svm: the processor does not support AMD-V (CPUID 8000_0001h ECX.SVM is 0)")
	}
	caps.Huge = edx&EDX_PAGE1GB != 0
	if rdmsr(MSR_VM_CR)&VM_CR_SVMDIS != 0 {
		return caps, errors.New("svm: AMD-V is disabled by the firmware (VM_CR.SVMDIS): enable SVM / virtualization in the BIOS or UEFI setup")
	}
	_, ebx, _, edx := cpuid(CPUID_SVM, 0)
	caps.NPT, caps.NRIPSave = edx&(1<<0) != 0, edx&(1<<3) != 0
	caps.CleanBits, caps.FlushByASID, caps.DecodeAssist = edx&(1<<5) != 0, edx&(1<<6) != 0, edx&(1<<7) != 0
	caps.ASIDs = ebx
	if !caps.NPT {
		return caps, errors.New("svm: the processor has no nested paging (CPUID 8000_000Ah EDX.NP): Keel needs it")
	}
	if caps.ASIDs < 2 {
		return caps, fmt.Errorf("svm: the processor reports %d ASIDs; at least 2 are needed", caps.ASIDs)
	}
	return caps, nil
}

// Backend is the SVM implementation of hv.Backend.
type Backend struct {
	caps   Capabilities
	frames *mem.Frames

	mu       sync.Mutex
	maps     addr.HPA // IOPM then MSRPM, one 2 MiB chunk shared by all VMs
	mapsInit bool
	nextASID uint32
}

// New returns the backend for processors with caps; hardware structures
// come from frames.
func New(caps Capabilities, frames *mem.Frames) *Backend {
	return &Backend{caps: caps, frames: frames, nextASID: 1}
}

// Name implements hv.Backend.
func (b *Backend) Name() string { return "svm" }

// Capabilities returns what the processor offers.
func (b *Backend) Capabilities() Capabilities { return b.caps }

// permissionMaps returns the shared IOPM/MSRPM chunk, building it on first
// use: every port intercepted, every MSR intercepted but the passthrough
// list.
func (b *Backend) permissionMaps(passthrough []uint32) (addr.HPA, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mapsInit {
		return b.maps, nil
	}
	hpa, err := b.frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_2M)
	if err != nil {
		return 0, fmt.Errorf("svm: permission maps: %w", err)
	}
	host := b.frames.Host()
	for off := uint64(0); off < IOPM_SIZE+MSRPM_SIZE; off += addr.PAGE_SIZE_4K {
		p, err := host.Slice(hpa+addr.HPA(off), addr.PAGE_SIZE_4K)
		if err != nil {
			return 0, err
		}
		for i := range p {
			p[i] = 0xff
		}
	}
	for _, msr := range passthrough {
		byteOff, bit, ok := msrpmBit(msr)
		if !ok {
			continue
		}
		off := uint64(MSRPM_OFFSET + byteOff)
		p, err := host.Slice(hpa+addr.HPA(off&^(addr.PAGE_SIZE_4K-1)), addr.PAGE_SIZE_4K)
		if err != nil {
			return 0, err
		}
		p[off%addr.PAGE_SIZE_4K] &^= 3 << bit
	}
	b.maps, b.mapsInit = hpa, true
	return hpa, nil
}

// asid hands out address space IDs; 0 is the host's. When they run out,
// vCPUs share the last one and flush the TLB at every entry.
func (b *Backend) asid() (id uint32, shared bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nextASID < b.caps.ASIDs {
		id = b.nextASID
		b.nextASID++
		return id, false
	}
	return b.caps.ASIDs - 1, true
}

// vm is one VM's SVM state.
type vm struct {
	b      *Backend
	name   string
	owner  mem.Owner
	npt    *nested.Tables
	maps   addr.HPA
	vcpus  []*vcpu
	shared bool
}

// NewVM implements hv.Backend.
func (b *Backend) NewVM(cfg hv.BackendVMConfig) (hv.BackendVM, error) {
	maps, err := b.permissionMaps(cfg.PassthroughMSRs)
	if err != nil {
		return nil, err
	}
	t, err := newNPT(b.frames, cfg.Owner, b.caps.Huge)
	if err != nil {
		return nil, err
	}
	return &vm{b: b, name: cfg.Name, owner: cfg.Owner, npt: t, maps: maps}, nil
}

// MapMemory implements hv.BackendVM.
func (m *vm) MapMemory(regions []mem.Region) error {
	if err := m.npt.Free(); err != nil {
		return err
	}
	t, err := newNPT(m.b.frames, m.owner, m.b.caps.Huge)
	if err != nil {
		return err
	}
	m.npt = t
	for _, r := range regions {
		if err := t.Map(r); err != nil {
			return fmt.Errorf("svm: %s: %w", m.name, err)
		}
	}
	for _, c := range m.vcpus {
		c.v.setU64(VMCB_N_CR3, uint64(t.Root))
		c.flush = true
	}
	return nil
}

// guest PAT at reset (APM Vol. 2, 7.8.2).
const PAT_DEFAULT = 0x0007040600070406

// NewVCPU implements hv.BackendVM.
func (m *vm) NewVCPU(id int) (hv.BackendVCPU, error) {
	hpa, err := m.b.frames.Alloc(m.owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, fmt.Errorf("svm: VMCB for %s vcpu %d: %w", m.name, id, err)
	}
	page, err := m.b.frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, err
	}
	c := &vcpu{vm: m, id: id, vmcbPA: hpa, v: vmcb(page), lastCPU: ^uint32(0), nrips: m.b.caps.NRIPSave}
	asid, shared := m.b.asid()
	c.flushAlways = shared
	v := c.v
	v.setU32(VMCB_INTERCEPT_MISC1, INTERCEPT_INTR|INTERCEPT_NMI|INTERCEPT_SMI|INTERCEPT_INIT|INTERCEPT_CPUID|
		INTERCEPT_INVD|INTERCEPT_HLT|INTERCEPT_INVLPGA|INTERCEPT_IOIO_PROT|INTERCEPT_MSR_PROT|INTERCEPT_SHUTDOWN)
	v.setU32(VMCB_INTERCEPT_MISC2, INTERCEPT2_VMRUN|INTERCEPT2_VMMCALL|INTERCEPT2_VMLOAD|INTERCEPT2_VMSAVE|
		INTERCEPT2_STGI|INTERCEPT2_CLGI|INTERCEPT2_SKINIT|INTERCEPT2_XSETBV)
	v.setU64(VMCB_IOPM_BASE_PA, uint64(m.maps))
	v.setU64(VMCB_MSRPM_BASE_PA, uint64(m.maps)+MSRPM_OFFSET)
	v.setU32(VMCB_GUEST_ASID, asid)
	v.setU64(VMCB_NP_ENABLE, 1)
	v.setU64(VMCB_N_CR3, uint64(m.npt.Root))
	// Guest interrupts are virtualised: the guest's RFLAGS.IF masks
	// only virtual interrupts, host interrupts always exit.
	v.setU64(VMCB_VINTR, V_INTR_MASKING)
	v.setU64(VMCB_G_PAT, PAT_DEFAULT)
	v.setU64(VMCB_DR6, 0xffff0ff0)
	v.setU64(VMCB_DR7, 0x400)
	c.initFPU()
	regs, sregs := arch.ResetState(id == 0)
	if err := c.SetSregs(&sregs); err != nil {
		return nil, err
	}
	if err := c.SetRegs(&regs); err != nil {
		return nil, err
	}
	m.vcpus = append(m.vcpus, c)
	return c, nil
}

// Destroy implements hv.BackendVM.
func (m *vm) Destroy() error {
	return m.npt.Free()
}

// Destroy implements hv.BackendVCPU.
func (c *vcpu) Destroy() error {
	for i, x := range c.vm.vcpus {
		if x == c {
			c.vm.vcpus = append(c.vm.vcpus[:i], c.vm.vcpus[i+1:]...)
			break
		}
	}
	return c.vm.b.frames.Free(c.vmcbPA)
}

// FXSAVE area defaults (Intel SDM Vol. 1, 10.5.1; x87 FCW after FNINIT,
// MXCSR after reset).
const (
	FCW_DEFAULT   = 0x037f
	MXCSR_DEFAULT = 0x1f80
)

// initFPU gives the guest the FPU/SSE state of a processor after reset.
func (c *vcpu) initFPU() {
	fx := c.fxArea()
	for i := range fx {
		fx[i] = 0
	}
	le.PutUint16(fx[0:], FCW_DEFAULT)
	le.PutUint32(fx[24:], MXCSR_DEFAULT)
}

// fxArea returns the 16-byte aligned 512-byte FXSAVE area in fxBuf.
func (c *vcpu) fxArea() []byte {
	off := (16 - fxAlign(&c.fxBuf)) % 16
	return c.fxBuf[off : off+512]
}

var _ hv.Backend = (*Backend)(nil)

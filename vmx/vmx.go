package vmx

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/hv/nested"
)

// CPUID bit and MSR numbers for detection (SDM Vol. 3C, 24.6 "Discovering
// Support for VMX", 24.7 "Enabling and Entering VMX Operation", Appendix A
// "VMX Capability Reporting Facility").
const (
	CPUID_1_ECX_VMX = 1 << 5

	IA32_FEATURE_CONTROL     = 0x3a
	IA32_VMX_BASIC           = 0x480
	IA32_VMX_PINBASED_CTLS   = 0x481
	IA32_VMX_PROCBASED_CTLS  = 0x482
	IA32_VMX_EXIT_CTLS       = 0x483
	IA32_VMX_ENTRY_CTLS      = 0x484
	IA32_VMX_MISC            = 0x485
	IA32_VMX_CR0_FIXED0      = 0x486
	IA32_VMX_CR0_FIXED1      = 0x487
	IA32_VMX_CR4_FIXED0      = 0x488
	IA32_VMX_CR4_FIXED1      = 0x489
	IA32_VMX_PROCBASED_CTLS2 = 0x48b
	IA32_VMX_EPT_VPID_CAP    = 0x48c
	IA32_VMX_TRUE_PINBASED   = 0x48d
	IA32_VMX_TRUE_PROCBASED  = 0x48e
	IA32_VMX_TRUE_EXIT       = 0x48f
	IA32_VMX_TRUE_ENTRY      = 0x490

	// IA32_FEATURE_CONTROL bits (SDM Vol. 3C, 24.7).
	FEATURE_CONTROL_LOCKED            = 1 << 0
	FEATURE_CONTROL_VMXON_OUTSIDE_SMX = 1 << 2
)

// IA32_VMX_BASIC fields (SDM Vol. 3C, Appendix A.1).
const (
	VMX_BASIC_REVISION_MASK  = 0x7fffffff
	VMX_BASIC_SIZE_SHIFT     = 32
	VMX_BASIC_SIZE_MASK      = 0x1fff
	VMX_BASIC_32BIT_ADDR     = 1 << 48
	VMX_BASIC_MEM_TYPE_SHIFT = 50
	VMX_BASIC_INOUT          = 1 << 54 // INS/OUTS exits report instruction information
	VMX_BASIC_TRUE_CTLS      = 1 << 55
)

// IA32_VMX_MISC fields (SDM Vol. 3C, Appendix A.6).
const (
	VMX_MISC_PREEMPTION_RATE_MASK = 0x1f
	VMX_MISC_MSR_LIST_SHIFT       = 25
	VMX_MISC_MSR_LIST_MASK        = 7
	VMX_MISC_UNRESTRICTED_HLT     = 1 << 6 // activity state HLT supported
)

// IA32_VMX_EPT_VPID_CAP bits (SDM Vol. 3C, Appendix A.10).
const (
	VMX_EPT_PAGE_WALK_4     = 1 << 6
	VMX_EPT_MEMTYPE_WB      = 1 << 14
	VMX_EPT_2MB_PAGE        = 1 << 16
	VMX_EPT_1GB_PAGE        = 1 << 17
	VMX_EPT_INVEPT          = 1 << 20
	VMX_EPT_AD              = 1 << 21
	VMX_EPT_INVEPT_SINGLE   = 1 << 25
	VMX_EPT_INVEPT_ALL      = 1 << 26
	VMX_VPID_INVVPID        = 1 << 32
	VMX_VPID_INVVPID_SINGLE = 1 << 41
	VMX_VPID_INVVPID_ALL    = 1 << 42
)

// INVEPT and INVVPID types (SDM Vol. 3C, 31.3 "INVEPT", "INVVPID").
const (
	INVEPT_SINGLE_CONTEXT  = 1
	INVEPT_ALL_CONTEXT     = 2
	INVVPID_SINGLE_CONTEXT = 1
	INVVPID_ALL_CONTEXT    = 2
)

// MEMORY_TYPE_WB is the write-back memory type (SDM Vol. 3A, 12.3 Table
// 12-2), used in the EPTP and EPT leaf entries.
const MEMORY_TYPE_WB = 6

// Allowed is one VMX control capability MSR: the bits that must be 1
// (allowed-0 settings, low half) and the bits that may be 1 (allowed-1
// settings, high half) (SDM Vol. 3C, Appendix A.3-A.5).
type Allowed struct {
	Must1, May1 uint32
}

func allowed(msr uint64) Allowed { return Allowed{Must1: uint32(msr), May1: uint32(msr >> 32)} }

// adjust returns want plus the bits the processor requires, and the wanted
// bits it does not allow.
func (a Allowed) adjust(want uint32) (value, missing uint32) {
	return (want | a.Must1) & a.May1, want &^ a.May1
}

// Capabilities are what the capability MSRs say of this processor's VMX,
// and the controls Keel derives from them.
type Capabilities struct {
	// Revision is the VMCS revision identifier (IA32_VMX_BASIC 30:0),
	// written at the start of the VMXON region and of every VMCS.
	Revision uint32
	// RegionSize is the size of the VMXON and VMCS regions (at most 4 KiB).
	RegionSize uint32
	// TrueControls: the TRUE_* capability MSRs exist and allow clearing
	// the default-1 controls.
	TrueControls bool
	// InsOutsInfo: INS/OUTS exits report the address size and segment in
	// the VM-exit instruction-information field.
	InsOutsInfo bool
	// EnableFeatureControl: IA32_FEATURE_CONTROL is unlocked; Keel sets
	// VMX-outside-SMX and locks it on each processor before VMXON.
	EnableFeatureControl bool

	// Pin, Proc, Proc2, Exit and Entry are the capability MSRs (the TRUE
	// ones when TrueControls).
	Pin, Proc, Proc2, Exit, Entry Allowed
	// CR0Fixed0/1 and CR4Fixed0/1: bits fixed to 1 (FIXED0 set) and bits
	// allowed to be 1 (FIXED1 set) in VMX operation (Appendix A.7, A.8).
	CR0Fixed0, CR0Fixed1, CR4Fixed0, CR4Fixed1 uint64
	// EPTVPID is IA32_VMX_EPT_VPID_CAP.
	EPTVPID uint64
	// Misc is IA32_VMX_MISC.
	Misc uint64

	// VPID: VPIDs tag the guest's TLB entries (otherwise every entry
	// and exit flushes them).
	VPID bool
	// VirtualNMIs: NMI blocking of the guest is tracked and NMI-window
	// exiting works.
	VirtualNMIs bool
	// EPT2M and EPT1G: large pages in the extended page tables.
	EPT2M, EPT1G bool
	// PreemptionTimer: the VMX-preemption timer exists; it counts down
	// at the TSC rate divided by 2^PreemptionRate while the guest runs.
	// SavePreemption: VM exits can save its value, so that it measures
	// the guest's time across exits.
	PreemptionTimer, SavePreemption bool
	PreemptionRate                  uint
	// MSRListMax is the recommended maximum of MSR-load/store entries.
	MSRListMax int

	// PinCtl, ProcCtl, Proc2Ctl, ExitCtl and EntryCtl are the controls
	// every VMCS starts with (interrupt and NMI window exiting and
	// IA-32e mode guest are switched at run time).
	PinCtl, ProcCtl, Proc2Ctl, ExitCtl, EntryCtl uint32

	// hostMSRs are the host's values of switchedMSRs, loaded at every
	// VM exit.
	hostMSRs [len(switchedMSRs)]uint64
}

// String summarises the capabilities for the boot log, e.g. "VMCS
// revision 0x2b, TRUE controls, EPT (2M 1G), VPID, unrestricted guest,
// virtual NMIs, preemption timer (rate 5, saved), INS/OUTS information".
func (caps Capabilities) String() string {
	s := fmt.Sprintf("VMCS revision %#x", caps.Revision)
	add := func(on bool, what string) {
		if on {
			s += ", " + what
		}
	}
	add(caps.TrueControls, "TRUE controls")
	pages := ""
	if caps.EPT2M {
		pages += " 2M"
	}
	if caps.EPT1G {
		pages += " 1G"
	}
	s += ", EPT (4K" + pages + ")"
	add(caps.VPID, "VPID")
	add(caps.Proc2.May1&SECONDARY_EXEC_UNRESTRICTED_GUEST != 0, "unrestricted guest")
	add(caps.VirtualNMIs, "virtual NMIs")
	if caps.PreemptionTimer {
		saved := ""
		if caps.SavePreemption {
			saved = ", saved"
		}
		s += fmt.Sprintf(", preemption timer (rate %d%s)", caps.PreemptionRate, saved)
	}
	add(caps.InsOutsInfo, "INS/OUTS information")
	add(caps.EnableFeatureControl, "IA32_FEATURE_CONTROL unlocked (Keel locks it)")
	return s
}

// Controls Keel needs (Detect refuses a processor without them) and
// controls it uses when present.
const (
	pinNeeded   = PIN_BASED_EXT_INTR_MASK | PIN_BASED_NMI_EXITING
	pinOptional = PIN_BASED_VIRTUAL_NMIS
	procNeeded  = CPU_BASED_HLT_EXITING | CPU_BASED_MWAIT_EXITING | CPU_BASED_MONITOR_EXITING |
		CPU_BASED_CR8_LOAD_EXITING | CPU_BASED_CR8_STORE_EXITING | CPU_BASED_USE_IO_BITMAPS |
		CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_ACTIVATE_SECONDARY_CTLS
	// procUnhandled are controls whose exits Keel does not handle: a
	// processor that forces them on (no TRUE controls) is refused.
	procUnhandled = CPU_BASED_INVLPG_EXITING | CPU_BASED_RDPMC_EXITING | CPU_BASED_RDTSC_EXITING |
		CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING | CPU_BASED_MOV_DR_EXITING |
		CPU_BASED_MONITOR_TRAP_FLAG | CPU_BASED_PAUSE_EXITING | CPU_BASED_TPR_SHADOW
	proc2Needed = SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_UNRESTRICTED_GUEST
	exitNeeded  = VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_IA32_EFER | VM_EXIT_LOAD_IA32_EFER | VM_EXIT_SAVE_IA32_PAT | VM_EXIT_LOAD_IA32_PAT
	entryNeeded = VM_ENTRY_LOAD_IA32_EFER | VM_ENTRY_LOAD_IA32_PAT
)

// Detect checks that the processor can run Keel's VMX backend and reads
// its capabilities. cpuid and rdmsr read the current processor. Errors say
// what is missing and what to do.
func Detect(cpuid func(leaf, sub uint32) (a, b, c, d uint32), rdmsr func(uint32) uint64) (Capabilities, error) {
	var caps Capabilities
	if _, _, ecx, _ := cpuid(1, 0); ecx&CPUID_1_ECX_VMX == 0 {
		return caps, errors.New("vmx: the processor does not support Intel VT-x (CPUID.1:ECX.VMX is 0)")
	}
	fc := rdmsr(IA32_FEATURE_CONTROL)
	if fc&FEATURE_CONTROL_LOCKED != 0 && fc&FEATURE_CONTROL_VMXON_OUTSIDE_SMX == 0 {
		return caps, fmt.Errorf("vmx: Intel VT-x is disabled by the firmware (IA32_FEATURE_CONTROL = %#x: locked with VMX off): enable \"Intel Virtualization Technology\" (VT-x) in the BIOS or UEFI setup", fc)
	}
	caps.EnableFeatureControl = fc&FEATURE_CONTROL_LOCKED == 0

	basic := rdmsr(IA32_VMX_BASIC)
	caps.Revision = uint32(basic & VMX_BASIC_REVISION_MASK)
	caps.RegionSize = uint32(basic >> VMX_BASIC_SIZE_SHIFT & VMX_BASIC_SIZE_MASK)
	caps.TrueControls = basic&VMX_BASIC_TRUE_CTLS != 0
	caps.InsOutsInfo = basic&VMX_BASIC_INOUT != 0
	if basic&VMX_BASIC_32BIT_ADDR != 0 {
		return caps, errors.New("vmx: the processor limits VMX structures to 32-bit physical addresses (IA32_VMX_BASIC bit 48); Keel needs a 64-bit processor's VMX")
	}
	if caps.RegionSize == 0 || caps.RegionSize > addr.PAGE_SIZE_4K {
		return caps, fmt.Errorf("vmx: IA32_VMX_BASIC reports a VMCS region of %d bytes; Keel expects 1 to 4096", caps.RegionSize)
	}
	pinMSR, procMSR, exitMSR, entryMSR := uint32(IA32_VMX_PINBASED_CTLS), uint32(IA32_VMX_PROCBASED_CTLS), uint32(IA32_VMX_EXIT_CTLS), uint32(IA32_VMX_ENTRY_CTLS)
	if caps.TrueControls {
		pinMSR, procMSR, exitMSR, entryMSR = IA32_VMX_TRUE_PINBASED, IA32_VMX_TRUE_PROCBASED, IA32_VMX_TRUE_EXIT, IA32_VMX_TRUE_ENTRY
	}
	caps.Pin, caps.Proc = allowed(rdmsr(pinMSR)), allowed(rdmsr(procMSR))
	caps.Exit, caps.Entry = allowed(rdmsr(exitMSR)), allowed(rdmsr(entryMSR))
	if caps.Proc.May1&CPU_BASED_ACTIVATE_SECONDARY_CTLS == 0 {
		return caps, errors.New("vmx: the processor has no secondary VM-execution controls, so no EPT: Keel needs EPT and unrestricted guest (Intel Westmere or later)")
	}
	caps.Proc2 = allowed(rdmsr(IA32_VMX_PROCBASED_CTLS2))
	if caps.Proc2.May1&SECONDARY_EXEC_ENABLE_EPT == 0 {
		return caps, errors.New("vmx: the processor has no extended page tables (EPT): Keel needs them (Intel Nehalem or later)")
	}
	if caps.Proc2.May1&SECONDARY_EXEC_UNRESTRICTED_GUEST == 0 {
		return caps, errors.New("vmx: the processor has no unrestricted guest mode: Keel runs real-mode guests with it (Intel Westmere or later)")
	}
	caps.EPTVPID = rdmsr(IA32_VMX_EPT_VPID_CAP)
	switch {
	case caps.EPTVPID&VMX_EPT_PAGE_WALK_4 == 0:
		return caps, fmt.Errorf("vmx: the processor's EPT has no 4-level page walk (IA32_VMX_EPT_VPID_CAP = %#x)", caps.EPTVPID)
	case caps.EPTVPID&VMX_EPT_MEMTYPE_WB == 0:
		return caps, fmt.Errorf("vmx: the processor's EPT cannot use write-back memory for its tables (IA32_VMX_EPT_VPID_CAP = %#x)", caps.EPTVPID)
	case caps.EPTVPID&VMX_EPT_INVEPT == 0 || caps.EPTVPID&(VMX_EPT_INVEPT_SINGLE|VMX_EPT_INVEPT_ALL) == 0:
		return caps, fmt.Errorf("vmx: the processor has no usable INVEPT (IA32_VMX_EPT_VPID_CAP = %#x)", caps.EPTVPID)
	}
	caps.EPT2M = caps.EPTVPID&VMX_EPT_2MB_PAGE != 0
	caps.EPT1G = caps.EPTVPID&VMX_EPT_1GB_PAGE != 0
	caps.VPID = caps.Proc2.May1&SECONDARY_EXEC_ENABLE_VPID != 0 &&
		caps.EPTVPID&VMX_VPID_INVVPID != 0 && caps.EPTVPID&(VMX_VPID_INVVPID_SINGLE|VMX_VPID_INVVPID_ALL) != 0
	caps.Misc = rdmsr(IA32_VMX_MISC)
	caps.MSRListMax = 512 * (int(caps.Misc>>VMX_MISC_MSR_LIST_SHIFT&VMX_MISC_MSR_LIST_MASK) + 1)
	caps.PreemptionTimer = caps.Pin.May1&PIN_BASED_PREEMPTION_TIMER != 0
	caps.SavePreemption = caps.Exit.May1&VM_EXIT_SAVE_PREEMPTION_TIMER != 0
	caps.PreemptionRate = uint(caps.Misc & VMX_MISC_PREEMPTION_RATE_MASK)
	caps.CR0Fixed0, caps.CR0Fixed1 = rdmsr(IA32_VMX_CR0_FIXED0), rdmsr(IA32_VMX_CR0_FIXED1)
	caps.CR4Fixed0, caps.CR4Fixed1 = rdmsr(IA32_VMX_CR4_FIXED0), rdmsr(IA32_VMX_CR4_FIXED1)
	if caps.CR4Fixed1&arch.CR4_VMXE == 0 {
		return caps, fmt.Errorf("vmx: IA32_VMX_CR4_FIXED1 = %#x does not allow CR4.VMXE", caps.CR4Fixed1)
	}
	if err := caps.deriveControls(); err != nil {
		return caps, err
	}
	for i, m := range switchedMSRs {
		caps.hostMSRs[i] = rdmsr(m)
	}
	return caps, nil
}

// deriveControls computes the initial controls from the capability MSRs
// and checks that the processor allows what Keel needs.
func (caps *Capabilities) deriveControls() error {
	var missing uint32
	var v uint32
	pinWant := uint32(pinNeeded)
	if caps.Pin.May1&PIN_BASED_VIRTUAL_NMIS != 0 {
		pinWant |= PIN_BASED_VIRTUAL_NMIS
		caps.VirtualNMIs = true
	}
	if v, missing = caps.Pin.adjust(pinWant); missing != 0 {
		return fmt.Errorf("vmx: the processor cannot set pin-based controls %#x (external-interrupt and NMI exiting)", missing)
	}
	caps.PinCtl = v
	if v, missing = caps.Proc.adjust(procNeeded); missing != 0 {
		return fmt.Errorf("vmx: the processor cannot set primary processor-based controls %#x (Keel needs HLT, MWAIT, MONITOR and CR8 exiting, I/O and MSR bitmaps, secondary controls)", missing)
	}
	if forced := v & procUnhandled; forced != 0 {
		return fmt.Errorf("vmx: the processor forces primary processor-based controls %#x on (no TRUE capability MSRs), whose exits Keel does not handle", forced)
	}
	caps.ProcCtl = v
	proc2Want := uint32(proc2Needed)
	if caps.VPID {
		proc2Want |= SECONDARY_EXEC_ENABLE_VPID
	}
	if v, missing = caps.Proc2.adjust(proc2Want); missing != 0 {
		return fmt.Errorf("vmx: the processor cannot set secondary controls %#x (EPT, unrestricted guest)", missing)
	}
	caps.Proc2Ctl = v
	exitWant := uint32(exitNeeded)
	if v, missing = caps.Exit.adjust(exitWant); missing != 0 {
		return fmt.Errorf("vmx: the processor cannot set VM-exit controls %#x (64-bit host, save and load IA32_EFER and IA32_PAT)", missing)
	}
	if v&VM_EXIT_ACK_INTR_ON_EXIT != 0 {
		return errors.New("vmx: the processor forces \"acknowledge interrupt on exit\"; Keel lets the host take interrupts through its IDT")
	}
	caps.ExitCtl = v
	if v, missing = caps.Entry.adjust(entryNeeded); missing != 0 {
		return fmt.Errorf("vmx: the processor cannot set VM-entry controls %#x (load IA32_EFER and IA32_PAT)", missing)
	}
	if caps.Entry.May1&VM_ENTRY_IA32E_MODE == 0 {
		return errors.New("vmx: the processor cannot enter 64-bit guests (VM-entry control \"IA-32e mode guest\")")
	}
	caps.EntryCtl = v &^ VM_ENTRY_IA32E_MODE
	return nil
}

// cr0Bits returns the CR0 bits the guest must have set and clear in VMX
// operation: the VMX-fixed bits, except PE and PG, which unrestricted
// guests may clear (SDM Vol. 3C, 27.3.1.1).
func (caps *Capabilities) cr0Bits() (must1, must0 uint64) {
	return caps.CR0Fixed0 &^ (arch.CR0_PE | arch.CR0_PG), ^caps.CR0Fixed1
}

// cr4Bits returns the CR4 bits the guest must have set (VMXE) and clear.
func (caps *Capabilities) cr4Bits() (must1, must0 uint64) {
	return caps.CR4Fixed0, ^caps.CR4Fixed1
}

// Bitmaps (SDM Vol. 3C, 25.6.4 "I/O-Bitmap Addresses" and 25.6.9 "MSR-
// Bitmap Address"): I/O bitmap A covers ports 0-7FFFh, B 8000h-FFFFh, one
// bit per port. The MSR bitmap has four 1 KiB parts: reads of MSRs
// 0-1FFFh, reads of C000_0000h-C000_1FFFh, then writes of the same two
// ranges. A set bit exits; MSRs outside the ranges always exit.
const (
	MSR_BITMAP_READ_LOW   = 0
	MSR_BITMAP_READ_HIGH  = 1024
	MSR_BITMAP_WRITE_LOW  = 2048
	MSR_BITMAP_WRITE_HIGH = 3072
)

// msrBitmapBit returns the byte and bit of msr's read-exit bit (the write
// bit is at byte + 2048), or ok false outside the covered ranges.
func msrBitmapBit(msr uint32) (byteOff int, bit uint, ok bool) {
	switch {
	case msr < 0x2000:
		return MSR_BITMAP_READ_LOW + int(msr/8), uint(msr % 8), true
	case msr >= 0xc0000000 && msr < 0xc0002000:
		n := msr - 0xc0000000
		return MSR_BITMAP_READ_HIGH + int(n/8), uint(n % 8), true
	}
	return 0, 0, false
}

// MSR numbers the backend switches or keeps in the VMCS (SDM Vol. 4, Table
// 2-2).
const (
	IA32_SYSENTER_CS    = 0x174
	IA32_SYSENTER_ESP   = 0x175
	IA32_SYSENTER_EIP   = 0x176
	IA32_DEBUGCTL       = 0x1d9
	IA32_PAT            = 0x277
	IA32_EFER           = 0xc0000080
	IA32_STAR           = 0xc0000081
	IA32_LSTAR          = 0xc0000082
	IA32_CSTAR          = 0xc0000083
	IA32_FMASK          = 0xc0000084
	IA32_FS_BASE        = 0xc0000100
	IA32_GS_BASE        = 0xc0000101
	IA32_KERNEL_GS_BASE = 0xc0000102
)

// vmcsMSRs are MSRs whose guest values live in the VMCS guest-state area,
// which VM entry and exit switch.
var vmcsMSRs = [...]uint32{IA32_SYSENTER_CS, IA32_SYSENTER_ESP, IA32_SYSENTER_EIP, IA32_DEBUGCTL, IA32_PAT, IA32_EFER, IA32_FS_BASE, IA32_GS_BASE}

// switchedMSRs are the MSRs the backend can pass through by switching them
// with the VM-entry MSR-load, VM-exit MSR-store and VM-exit MSR-load
// areas (SDM Vol. 3C, 25.7.2 and 25.8.2). A passthrough MSR that is neither
// here nor in vmcsMSRs stays intercepted.
var switchedMSRs = [...]uint32{IA32_STAR, IA32_LSTAR, IA32_CSTAR, IA32_FMASK, IA32_KERNEL_GS_BASE}

// MSR_ENTRY_SIZE is the size of one MSR-load/store area entry: index (u32),
// reserved (u32), data (u64) (SDM Vol. 3C, 25.7.2, Table 25-15).
const MSR_ENTRY_SIZE = 16

// Backend is the VMX implementation of hv.Backend.
type Backend struct {
	caps   Capabilities
	frames *mem.Frames

	mu       sync.Mutex
	maps     [3]addr.HPA // I/O bitmap A, I/O bitmap B, MSR bitmap, shared by all VMs
	mapsInit bool
	// switched are the MSRs every vCPU switches through its MSR area
	// (indexes into switchedMSRs), hostArea their host values.
	switched []int
	hostArea addr.HPA
	nextVPID uint32
	// slice is the time slice in TSC ticks (SetTimeSlice), 0 for none.
	slice uint64
	// moveEvery is the CPU-move test's period in exits (0: off); moves
	// counts entries on another CPU than the vCPU's previous one.
	moveEvery atomic.Uint64
	moves     atomic.Uint64
}

// New returns the backend for processors with caps; hardware structures
// come from frames.
func New(caps Capabilities, frames *mem.Frames) *Backend {
	return &Backend{caps: caps, frames: frames, nextVPID: 1}
}

// Name implements hv.Backend.
func (b *Backend) Name() string { return "vmx" }

// SetTimeSlice sets the length of a time slice in TSC ticks for the vCPUs
// created afterwards. Where the processor has the VMX-preemption timer, a
// guest that runs that long without its CPU taking a host interrupt exits
// (reported as ExitInterrupt). The host's slice timer interrupt ends
// slices too (external-interrupt exiting); the preemption timer is the
// backstop that does not depend on interrupt delivery (docs/vmx.md).
func (b *Backend) SetTimeSlice(tscTicks uint64) {
	b.mu.Lock()
	b.slice = tscTicks
	b.mu.Unlock()
}

// SetMoveTest makes every vCPU goroutine sleep for a millisecond after
// every n-th exit (0: never), so that the Go scheduler is likely to resume
// it on another CPU: a test of the VMCS hand-over between CPUs, which
// Keel's selftest guests rarely cause on their own.
func (b *Backend) SetMoveTest(n uint64) { b.moveEvery.Store(n) }

// Moves returns how many times a vCPU entered the guest on another CPU
// than at its previous entry.
func (b *Backend) Moves() uint64 { return b.moves.Load() }

// preemptionValue returns the VMX-preemption timer value of one slice.
func (b *Backend) preemptionValue() uint64 {
	b.mu.Lock()
	v := b.slice >> b.caps.PreemptionRate
	b.mu.Unlock()
	return min(max(v, 1), 0xffffffff)
}

// Capabilities returns what the processor offers.
func (b *Backend) Capabilities() Capabilities { return b.caps }

// page returns the host view of the 4 KiB page at hpa.
func (b *Backend) page(hpa addr.HPA) ([]byte, error) {
	return b.frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
}

// permissionMaps returns the shared bitmaps, building them on first use:
// every port exits; every MSR exits except the passthrough list's that
// the VMCS or the MSR areas switch.
func (b *Backend) permissionMaps(passthrough []uint32) ([3]addr.HPA, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mapsInit {
		return b.maps, nil
	}
	var maps [3]addr.HPA
	for i := range maps {
		hpa, err := b.frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_4K)
		if err != nil {
			for _, p := range maps[:i] {
				_ = b.frames.Free(p)
			}
			return maps, fmt.Errorf("vmx: bitmaps: %w", err)
		}
		maps[i] = hpa
		p, err := b.page(hpa)
		if err != nil {
			return maps, err
		}
		for j := range p {
			p[j] = 0xff
		}
	}
	msrs, err := b.page(maps[2])
	if err != nil {
		return maps, err
	}
	var switched []int
	for _, msr := range passthrough {
		ok := false
		for _, m := range vmcsMSRs {
			ok = ok || m == msr
		}
		for i, m := range switchedMSRs {
			if m == msr && len(switched) < b.caps.MSRListMax {
				switched = append(switched, i)
				ok = true
			}
		}
		byteOff, bit, inMap := msrBitmapBit(msr)
		if !ok || !inMap {
			continue
		}
		msrs[byteOff] &^= 1 << bit
		msrs[byteOff+MSR_BITMAP_WRITE_LOW] &^= 1 << bit
	}
	if len(switched) > 0 {
		hpa, err := b.frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_4K)
		if err != nil {
			return maps, fmt.Errorf("vmx: host MSR area: %w", err)
		}
		p, err := b.page(hpa)
		if err != nil {
			return maps, err
		}
		for i, idx := range switched {
			le.PutUint32(p[i*MSR_ENTRY_SIZE:], switchedMSRs[idx])
			le.PutUint64(p[i*MSR_ENTRY_SIZE+8:], b.caps.hostMSRs[idx])
		}
		b.hostArea = hpa
	}
	b.maps, b.switched, b.mapsInit = maps, switched, true
	return maps, nil
}

// vpid hands out virtual-processor identifiers; 0 is the host's. When
// they run out, vCPUs share the last one and flush it at every entry.
func (b *Backend) vpid() (id uint16, shared bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const max = 0xffff
	if b.nextVPID < max {
		id = uint16(b.nextVPID)
		b.nextVPID++
		return id, false
	}
	return max, true
}

// vm is one VM's VMX state.
type vm struct {
	b       *Backend
	name    string
	owner   mem.Owner
	ept     *nested.Tables
	maps    [3]addr.HPA
	regions []mem.Region
	vcpus   []*vcpu
}

// NewVM implements hv.Backend.
func (b *Backend) NewVM(cfg hv.BackendVMConfig) (hv.BackendVM, error) {
	maps, err := b.permissionMaps(cfg.PassthroughMSRs)
	if err != nil {
		return nil, err
	}
	t, err := newEPT(b.frames, cfg.Owner, b.caps.EPT2M, b.caps.EPT1G)
	if err != nil {
		return nil, err
	}
	return &vm{b: b, name: cfg.Name, owner: cfg.Owner, ept: t, maps: maps}, nil
}

// MapMemory implements hv.BackendVM.
func (m *vm) MapMemory(regions []mem.Region) error {
	if err := m.ept.Free(); err != nil {
		return err
	}
	t, err := newEPT(m.b.frames, m.owner, m.b.caps.EPT2M, m.b.caps.EPT1G)
	if err != nil {
		return err
	}
	m.ept = t
	for _, r := range regions {
		if err := t.Map(r); err != nil {
			return fmt.Errorf("vmx: %s: %w", m.name, err)
		}
	}
	m.regions = append(m.regions[:0], regions...)
	for _, c := range m.vcpus {
		c.setEPTP(eptp(t))
		c.hw.flush = 1
	}
	return nil
}

// NewVCPU implements hv.BackendVM.
func (m *vm) NewVCPU(id int) (hv.BackendVCPU, error) {
	b := m.b
	hpa, err := b.frames.Alloc(m.owner, addr.PAGE_SIZE_4K)
	if err != nil {
		return nil, fmt.Errorf("vmx: VMCS for %s vcpu %d: %w", m.name, id, err)
	}
	page, err := b.page(hpa)
	if err != nil {
		_ = b.frames.Free(hpa)
		return nil, err
	}
	le.PutUint32(page, b.caps.Revision)
	c := &vcpu{vm: m, id: id, vmcsPA: hpa}
	c.hw.vmcsPA = uint64(hpa)
	c.hw.lastCPU = ^uint32(0)
	c.hw.fresh = 1
	c.cr0Must1, c.cr0Must0 = b.caps.cr0Bits()
	c.cr4Must1, c.cr4Must0 = b.caps.cr4Bits()
	if len(b.switched) > 0 {
		area, err := b.frames.Alloc(m.owner, addr.PAGE_SIZE_4K)
		if err != nil {
			_ = b.frames.Free(hpa)
			return nil, fmt.Errorf("vmx: MSR area for %s vcpu %d: %w", m.name, id, err)
		}
		c.msrArea = area
		p, err := b.page(area)
		if err != nil {
			return nil, err
		}
		for i, idx := range b.switched {
			le.PutUint32(p[i*MSR_ENTRY_SIZE:], switchedMSRs[idx])
		}
	}
	c.setupVMCS()
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

// setupVMCS writes every control, host and guest field the vCPU starts
// with (SDM Vol. 3C, 25.11.3 "Initializing a VMCS"). The host fields that
// depend on the processor (control registers, bases, RSP, RIP) are written
// by run_amd64.s at every entry.
func (c *vcpu) setupVMCS() {
	b, v := c.vm.b, &c.hw.v
	caps := &b.caps
	pin, exit := caps.PinCtl, caps.ExitCtl
	if b.slice != 0 && caps.PreemptionTimer {
		pin |= PIN_BASED_PREEMPTION_TIMER
		if caps.SavePreemption {
			exit |= VM_EXIT_SAVE_PREEMPTION_TIMER
		}
		c.preemption = b.preemptionValue()
		v.write(VMX_PREEMPTION_TIMER_VALUE, c.preemption)
	}
	v.write(PIN_BASED_VM_EXEC_CONTROL, uint64(pin))
	v.write(CPU_BASED_VM_EXEC_CONTROL, uint64(caps.ProcCtl))
	v.write(SECONDARY_VM_EXEC_CONTROL, uint64(caps.Proc2Ctl))
	v.write(VM_EXIT_CONTROLS, uint64(exit))
	v.write(VM_ENTRY_CONTROLS, uint64(caps.EntryCtl))
	v.write(EXCEPTION_BITMAP, 0)
	v.write(PAGE_FAULT_ERROR_CODE_MASK, 0)
	v.write(PAGE_FAULT_ERROR_CODE_MATCH, 0)
	v.write(CR3_TARGET_COUNT, 0)
	v.write(TSC_OFFSET, 0)
	v.write(IO_BITMAP_A, uint64(c.vm.maps[0]))
	v.write(IO_BITMAP_B, uint64(c.vm.maps[1]))
	v.write(MSR_BITMAP, uint64(c.vm.maps[2]))
	n := uint64(len(b.switched))
	v.write(VM_ENTRY_MSR_LOAD_COUNT, n)
	v.write(VM_EXIT_MSR_STORE_COUNT, n)
	v.write(VM_EXIT_MSR_LOAD_COUNT, n)
	v.write(VM_ENTRY_MSR_LOAD_ADDR, uint64(c.msrArea))
	v.write(VM_EXIT_MSR_STORE_ADDR, uint64(c.msrArea))
	v.write(VM_EXIT_MSR_LOAD_ADDR, uint64(b.hostArea))
	v.write(VM_ENTRY_INTR_INFO_FIELD, 0)
	v.write(VM_ENTRY_EXCEPTION_ERROR_CODE, 0)
	v.write(VM_ENTRY_INSTRUCTION_LEN, 0)
	c.setEPTP(eptp(c.vm.ept))
	if caps.VPID {
		id, shared := b.vpid()
		c.flushAlways = shared
		v.write(VIRTUAL_PROCESSOR_ID, uint64(id))
		c.hw.vpidDesc[0] = uint64(id)
		c.hw.invvpid = INVVPID_ALL_CONTEXT
		if caps.EPTVPID&VMX_VPID_INVVPID_SINGLE != 0 {
			c.hw.invvpid = INVVPID_SINGLE_CONTEXT
		}
	}
	c.hw.invept = INVEPT_ALL_CONTEXT
	if caps.EPTVPID&VMX_EPT_INVEPT_SINGLE != 0 {
		c.hw.invept = INVEPT_SINGLE_CONTEXT
	}
	// The guest sees CR0 and CR4 through the read shadows wherever a
	// bit is owned by VMX (fixed) or unsupported; writes that change
	// those bits exit (vcpu.go, movToCR).
	v.write(CR0_GUEST_HOST_MASK, c.cr0Must1|c.cr0Must0)
	v.write(CR4_GUEST_HOST_MASK, c.cr4Must1|c.cr4Must0)

	// Host state that is the same on every processor. Keel's host has
	// no TSS (it runs at CPL 0 without IST stacks), but a VM exit needs
	// a non-null TR selector: it gets HOST_TR_SEL and a zeroed TSS
	// (run_tamago.go), which nothing reads.
	v.write(HOST_ES_SELECTOR, HOST_DATA_SEL)
	v.write(HOST_CS_SELECTOR, HOST_CODE_SEL)
	v.write(HOST_SS_SELECTOR, HOST_DATA_SEL)
	v.write(HOST_DS_SELECTOR, HOST_DATA_SEL)
	v.write(HOST_FS_SELECTOR, HOST_DATA_SEL)
	v.write(HOST_GS_SELECTOR, HOST_DATA_SEL)
	v.write(HOST_TR_SELECTOR, HOST_TR_SEL)
	v.write(HOST_IA32_SYSENTER_CS, 0)
	v.write(HOST_IA32_SYSENTER_ESP, 0)
	v.write(HOST_IA32_SYSENTER_EIP, 0)

	// Guest state outside Regs and Sregs.
	v.write(VMCS_LINK_POINTER, VMCS_LINK_POINTER_NONE)
	v.write(GUEST_IA32_DEBUGCTL, 0)
	v.write(GUEST_IA32_PAT, PAT_DEFAULT)
	v.write(GUEST_DR7, DR7_DEFAULT)
	v.write(GUEST_PENDING_DBG_EXCEPTIONS, 0)
	v.write(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE)
	v.write(GUEST_INTERRUPTIBILITY_INFO, 0)
	v.write(GUEST_SYSENTER_CS, 0)
	v.write(GUEST_SYSENTER_ESP, 0)
	v.write(GUEST_SYSENTER_EIP, 0)
}

// Host selectors: Keel's GDT (kernel/pc cpuinit) has the 64-bit code
// segment at 08h and the data segment at 10h. HOST_TR_SEL is the selector
// VM exit loads into TR (there is no descriptor behind it; see setupVMCS).
const (
	HOST_CODE_SEL = 0x08
	HOST_DATA_SEL = 0x10
	HOST_TR_SEL   = 0x18
)

// Guest values at reset: IA32_PAT (SDM Vol. 3A, 12.12.4) and DR7 (SDM
// Vol. 3A, 10.1.1 Table 10-1).
const (
	PAT_DEFAULT = 0x0007040600070406
	DR7_DEFAULT = 0x400
)

// setEPTP points the vCPU at the VM's extended page tables.
func (c *vcpu) setEPTP(eptp uint64) {
	c.hw.v.write(EPT_POINTER, eptp)
	c.hw.eptDesc[0] = eptp
}

// Destroy implements hv.BackendVM.
func (m *vm) Destroy() error {
	return m.ept.Free()
}

// Destroy implements hv.BackendVCPU.
func (c *vcpu) Destroy() error {
	for i, x := range c.vm.vcpus {
		if x == c {
			c.vm.vcpus = append(c.vm.vcpus[:i], c.vm.vcpus[i+1:]...)
			break
		}
	}
	err := c.vm.b.frames.Free(c.vmcsPA)
	if c.msrArea != 0 {
		if e := c.vm.b.frames.Free(c.msrArea); err == nil {
			err = e
		}
	}
	return err
}

// FXSAVE area defaults (Intel SDM Vol. 1, 10.5.1; x87 FCW after FNINIT,
// MXCSR after reset).
const (
	FCW_DEFAULT   = 0x037f
	MXCSR_DEFAULT = 0x1f80
)

// initFPU gives the guest the FPU/SSE state of a processor after reset:
// VMX, like SVM, does not switch it; run_amd64.s does with FXRSTOR/FXSAVE.
func (c *vcpu) initFPU() {
	fx := c.hw.fxArea()
	clear(fx)
	le.PutUint16(fx[0:], FCW_DEFAULT)
	le.PutUint32(fx[24:], MXCSR_DEFAULT)
}

var _ hv.Backend = (*Backend)(nil)

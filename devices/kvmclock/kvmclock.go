// Package kvmclock implements the host side of the KVM paravirtual clock,
// which Linux guests detect through the KVM CPUID leaves and use as their
// clocksource: the CPUID and MSR constants, the guest-memory layout of
// pvclock_vcpu_time_info and pvclock_wall_clock, the TSC-to-nanoseconds
// scale, the even/odd version protocol for publishing a record, and the
// semantics of the two MSRs (Linux Documentation/virt/kvm/x86/cpuid.rst and
// Documentation/virt/kvm/x86/msr.rst).
//
// To offer kvmclock a hypervisor answers CPUID leaf KVM_CPUID_SIGNATURE
// with SignatureLeaf and KVM_CPUID_FEATURES with
// FeaturesLeaf(CLOCK_FEATURES, 0), sets CPUID.1:ECX.HYPERVISOR, routes
// MSR_KVM_SYSTEM_TIME_NEW to a per-vCPU Clock and MSR_KVM_WALL_CLOCK_NEW
// to a per-VM Wall, and calls Clock.Update whenever the relation between
// the vCPU's TSC and the host's notion of guest time changes (with a
// constant, synchronized TSC: once, at enable).
//
// Linux looks for the "KVMKVMKVM" signature at 40000000h and every 100h
// above it up to 4000FF00h, so the two leaves may also be offered at a
// base such as 40000100h, next to a hypervisor's own leaves at 40000000h;
// the leaf functions take the base for that reason.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package kvmclock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/keel-hv/keel/hv/addr"
)

// CPUID leaves (cpuid.rst, "KVM CPUID bits").
const (
	// KVM_CPUID_SIGNATURE returns the highest KVM leaf in EAX and the
	// signature in EBX, ECX, EDX.
	KVM_CPUID_SIGNATURE = 0x40000000
	// KVM_CPUID_FEATURES returns feature flags in EAX and hints in EDX.
	KVM_CPUID_FEATURES = 0x40000001
	// KVM_SIGNATURE is the 12-byte signature "KVMKVMKVM\0\0\0".
	KVM_SIGNATURE = "KVMKVMKVM\x00\x00\x00"
	// KVM_SIGNATURE_EBX, _ECX and _EDX are the signature as registers.
	KVM_SIGNATURE_EBX = 0x4b4d564b
	KVM_SIGNATURE_ECX = 0x564b4d56
	KVM_SIGNATURE_EDX = 0x4d
)

// KVM_CPUID_FEATURES EAX flags, as bit numbers: EAX is the OR of
// 1 << flag (cpuid.rst, table of KVM_FEATURE_*).
const (
	KVM_FEATURE_CLOCKSOURCE            = 0 // kvmclock at MSRs 11h and 12h
	KVM_FEATURE_NOP_IO_DELAY           = 1
	KVM_FEATURE_MMU_OP                 = 2 // deprecated
	KVM_FEATURE_CLOCKSOURCE2           = 3 // kvmclock at MSRs 4b564d00h and 4b564d01h
	KVM_FEATURE_ASYNC_PF               = 4
	KVM_FEATURE_STEAL_TIME             = 5
	KVM_FEATURE_PV_EOI                 = 6
	KVM_FEATURE_PV_UNHALT              = 7
	KVM_FEATURE_PV_TLB_FLUSH           = 9
	KVM_FEATURE_ASYNC_PF_VMEXIT        = 10
	KVM_FEATURE_PV_SEND_IPI            = 11
	KVM_FEATURE_POLL_CONTROL           = 12
	KVM_FEATURE_PV_SCHED_YIELD         = 13
	KVM_FEATURE_ASYNC_PF_INT           = 14
	KVM_FEATURE_MSI_EXT_DEST_ID        = 15
	KVM_FEATURE_HC_MAP_GPA_RANGE       = 16
	KVM_FEATURE_MIGRATION_CONTROL      = 17
	KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24 // PVCLOCK_TSC_STABLE_BIT may be set

	// KVM_HINTS_REALTIME is an EDX hint bit number: vCPUs are never
	// preempted for an unlimited time.
	KVM_HINTS_REALTIME = 0

	// CLOCK_FEATURES is the EAX this package supports: kvmclock at the
	// new MSRs, with the stable bit.
	CLOCK_FEATURES = 1<<KVM_FEATURE_CLOCKSOURCE2 | 1<<KVM_FEATURE_CLOCKSOURCE_STABLE_BIT
)

// MSRs (msr.rst, "Custom MSR list").
const (
	MSR_KVM_WALL_CLOCK_NEW  = 0x4b564d00
	MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01
	// MSR_KVM_WALL_CLOCK and MSR_KVM_SYSTEM_TIME are the deprecated
	// KVM_FEATURE_CLOCKSOURCE MSRs, with the same semantics.
	MSR_KVM_WALL_CLOCK  = 0x11
	MSR_KVM_SYSTEM_TIME = 0x12
	// SYSTEM_TIME_ENABLE is bit 0 of MSR_KVM_SYSTEM_TIME_NEW.
	SYSTEM_TIME_ENABLE = 1 << 0
	// MSR_GPA_ALIGN is the alignment both MSRs require of their GPA.
	MSR_GPA_ALIGN = 4
)

// pvclock_vcpu_time_info, 32 bytes, packed, little-endian (msr.rst,
// MSR_KVM_SYSTEM_TIME_NEW).
const (
	TIME_INFO_SIZE              = 32
	TIME_INFO_VERSION           = 0  // u32
	TIME_INFO_PAD0              = 4  // u32
	TIME_INFO_TSC_TIMESTAMP     = 8  // u64
	TIME_INFO_SYSTEM_TIME       = 16 // u64, nanoseconds
	TIME_INFO_TSC_TO_SYSTEM_MUL = 24 // u32
	TIME_INFO_TSC_SHIFT         = 28 // s8
	TIME_INFO_FLAGS             = 29 // u8
	TIME_INFO_PAD               = 30 // u8[2]

	// PVCLOCK_TSC_STABLE_BIT (flags bit 0, CPUID bit 24): time read on
	// different vCPUs is monotonic.
	PVCLOCK_TSC_STABLE_BIT = 1 << 0
	// PVCLOCK_GUEST_STOPPED (flags bit 1): the host paused the vCPU.
	PVCLOCK_GUEST_STOPPED = 1 << 1
)

// pvclock_wall_clock, 12 bytes, packed, little-endian (msr.rst,
// MSR_KVM_WALL_CLOCK_NEW).
const (
	WALL_CLOCK_SIZE    = 12
	WALL_CLOCK_VERSION = 0 // u32
	WALL_CLOCK_SEC     = 4 // u32, seconds since 1970 at system time 0
	WALL_CLOCK_NSEC    = 8 // u32
)

// SignatureLeaf returns CPUID leaf base+0 (KVM_CPUID_SIGNATURE when base
// is 40000000h): the highest KVM leaf and the signature.
func SignatureLeaf(base uint32) (eax, ebx, ecx, edx uint32) {
	return base + (KVM_CPUID_FEATURES - KVM_CPUID_SIGNATURE), KVM_SIGNATURE_EBX, KVM_SIGNATURE_ECX, KVM_SIGNATURE_EDX
}

// FeaturesLeaf returns CPUID leaf base+1 (KVM_CPUID_FEATURES): features
// (an OR of 1 << KVM_FEATURE_*) in EAX and hints (1 << KVM_HINTS_*) in
// EDX.
func FeaturesLeaf(features, hints uint32) (eax, ebx, ecx, edx uint32) {
	return features, 0, 0, hints
}

// TimeInfo is a pvclock_vcpu_time_info record.
type TimeInfo struct {
	// Version is even when the record is consistent, odd while the host
	// updates it.
	Version uint32
	// TSCTimestamp is the vCPU's TSC when SystemTime was sampled.
	TSCTimestamp uint64
	// SystemTime is the guest's monotonic time in nanoseconds at
	// TSCTimestamp.
	SystemTime uint64
	// TSCToSystemMul is the multiplier that converts TSC deltas to
	// nanoseconds (see Scale).
	TSCToSystemMul uint32
	// TSCShift is the shift applied to TSC deltas before multiplying:
	// left if positive, right if negative.
	TSCShift int8
	// Flags holds PVCLOCK_* bits.
	Flags uint8
}

// Encode writes the record to b in the guest layout; padding is zero.
func (ti *TimeInfo) Encode(b *[TIME_INFO_SIZE]byte) {
	le := binary.LittleEndian
	le.PutUint32(b[TIME_INFO_VERSION:], ti.Version)
	le.PutUint32(b[TIME_INFO_PAD0:], 0)
	le.PutUint64(b[TIME_INFO_TSC_TIMESTAMP:], ti.TSCTimestamp)
	le.PutUint64(b[TIME_INFO_SYSTEM_TIME:], ti.SystemTime)
	le.PutUint32(b[TIME_INFO_TSC_TO_SYSTEM_MUL:], ti.TSCToSystemMul)
	b[TIME_INFO_TSC_SHIFT] = byte(ti.TSCShift)
	b[TIME_INFO_FLAGS] = ti.Flags
	b[TIME_INFO_PAD], b[TIME_INFO_PAD+1] = 0, 0
}

// DecodeTimeInfo reads a record in the guest layout.
func DecodeTimeInfo(b *[TIME_INFO_SIZE]byte) TimeInfo {
	le := binary.LittleEndian
	return TimeInfo{
		Version:        le.Uint32(b[TIME_INFO_VERSION:]),
		TSCTimestamp:   le.Uint64(b[TIME_INFO_TSC_TIMESTAMP:]),
		SystemTime:     le.Uint64(b[TIME_INFO_SYSTEM_TIME:]),
		TSCToSystemMul: le.Uint32(b[TIME_INFO_TSC_TO_SYSTEM_MUL:]),
		TSCShift:       int8(b[TIME_INFO_TSC_SHIFT]),
		Flags:          b[TIME_INFO_FLAGS],
	}
}

// GuestTime is what the guest computes from the record at TSC value tsc:
// SystemTime plus the scaled TSC delta (msr.rst's formula; the delta
// wraps like the guest's unsigned arithmetic).
func (ti *TimeInfo) GuestTime(tsc uint64) uint64 {
	return ti.SystemTime + ScaleDelta(tsc-ti.TSCTimestamp, ti.TSCToSystemMul, ti.TSCShift)
}

// WallClock is a pvclock_wall_clock record: the wall-clock time at which
// the guest's system time was zero.
type WallClock struct {
	// Version follows the same even/odd protocol as TimeInfo's.
	Version uint32
	// Sec and Nsec are seconds (modulo 2^32) and nanoseconds since
	// 1970-01-01 UTC.
	Sec, Nsec uint32
}

// Encode writes the record to b in the guest layout.
func (w *WallClock) Encode(b *[WALL_CLOCK_SIZE]byte) {
	le := binary.LittleEndian
	le.PutUint32(b[WALL_CLOCK_VERSION:], w.Version)
	le.PutUint32(b[WALL_CLOCK_SEC:], w.Sec)
	le.PutUint32(b[WALL_CLOCK_NSEC:], w.Nsec)
}

// DecodeWallClock reads a record in the guest layout.
func DecodeWallClock(b *[WALL_CLOCK_SIZE]byte) WallClock {
	le := binary.LittleEndian
	return WallClock{Version: le.Uint32(b[WALL_CLOCK_VERSION:]), Sec: le.Uint32(b[WALL_CLOCK_SEC:]), Nsec: le.Uint32(b[WALL_CLOCK_NSEC:])}
}

// Scale returns the (tsc_to_system_mul, tsc_shift) pair for a TSC running
// at tscHz: ns = ((delta << shift, or >> -shift) * mul) >> 32. mul is
// normalized into [2^31, 2^32) for precision, so the shift is negative for
// TSCs faster than 2 GHz and positive for those slower than 1 GHz. The
// result is off by less than 2^-31 of itself, plus a nanosecond of
// rounding, plus for negative shifts the delta's dropped low bits.
func Scale(tscHz uint64) (mul uint32, shift int8, err error) {
	if tscHz == 0 {
		return 0, 0, errors.New("kvmclock: TSC frequency 0: give the TSC rate in Hz")
	}
	for s := -32; s <= 32; s++ {
		if m, ok := mulFor(tscHz, s); ok {
			return m, int8(s), nil
		}
	}
	// Unreachable: s = 30 fits every tscHz >= 1.
	return 0, 0, fmt.Errorf("kvmclock: no scale for a %d Hz TSC", tscHz)
}

// mulFor returns round(1e9 * 2^(32-shift) / hz) if it is below 2^32.
func mulFor(hz uint64, shift int) (uint32, bool) {
	k := uint(32 - shift) // 0..64
	var hi, lo uint64
	switch {
	case k == 0:
		lo = uint64(time.Second)
	case k < 64:
		hi, lo = uint64(time.Second)>>(64-k), uint64(time.Second)<<k
	default:
		hi = uint64(time.Second)
	}
	var c uint64
	lo, c = bits.Add64(lo, hz/2, 0) // round to nearest
	hi += c
	if hi >= hz {
		return 0, false // quotient of 64 bits or more
	}
	q, _ := bits.Div64(hi, lo, hz)
	if q >= 1<<32 {
		return 0, false
	}
	return uint32(q), true
}

// ScaleDelta converts a TSC delta to nanoseconds exactly as the guest does.
func ScaleDelta(delta uint64, mul uint32, shift int8) uint64 {
	if shift < 0 {
		delta >>= uint(-int(shift))
	} else {
		delta <<= uint(shift)
	}
	hi, lo := bits.Mul64(delta, uint64(mul))
	return hi<<32 | lo>>32
}

// GuestWriter writes guest-physical memory, bounds-checked.
// *mem.GuestMemory implements it. Clock and Wall call it with their own
// lock held; it must not call back into them.
type GuestWriter interface {
	Write(gpa addr.GPA, p []byte) error
}

// nextOdd returns the odd version that starts an update after v (v+1, or
// v+2 if an earlier update stopped half-way at an odd v).
func nextOdd(v uint32) uint32 { return v + 1 + v&1 }

// WriteTimeInfo publishes ti at gpa with the version protocol: the version
// field is set to the next odd value, then the rest of the record is
// written, then the version becomes even. ti.Version holds the previous
// version on entry and the new one on return. Each step is one Write, so
// the writer must make writes visible in call order (x86 stores are).
func WriteTimeInfo(w GuestWriter, gpa addr.GPA, ti *TimeInfo) error {
	var b [TIME_INFO_SIZE]byte
	return writeTimeInfo(w, gpa, ti, &b)
}

func writeTimeInfo(w GuestWriter, gpa addr.GPA, ti *TimeInfo, b *[TIME_INFO_SIZE]byte) error {
	ti.Version = nextOdd(ti.Version)
	ti.Encode(b)
	if err := w.Write(gpa, b[:TIME_INFO_PAD0]); err != nil {
		return fmt.Errorf("kvmclock: time info at %s: %w", gpa, err)
	}
	if err := w.Write(gpa+TIME_INFO_PAD0, b[TIME_INFO_PAD0:]); err != nil {
		return fmt.Errorf("kvmclock: time info at %s: %w", gpa, err)
	}
	ti.Version++
	binary.LittleEndian.PutUint32(b[TIME_INFO_VERSION:], ti.Version)
	if err := w.Write(gpa, b[:TIME_INFO_PAD0]); err != nil {
		return fmt.Errorf("kvmclock: time info at %s: %w", gpa, err)
	}
	return nil
}

// WriteWallClock publishes wc at gpa with the same protocol as
// WriteTimeInfo.
func WriteWallClock(w GuestWriter, gpa addr.GPA, wc *WallClock) error {
	var b [WALL_CLOCK_SIZE]byte
	return writeWallClock(w, gpa, wc, &b)
}

func writeWallClock(w GuestWriter, gpa addr.GPA, wc *WallClock, b *[WALL_CLOCK_SIZE]byte) error {
	wc.Version = nextOdd(wc.Version)
	wc.Encode(b)
	if err := w.Write(gpa, b[:WALL_CLOCK_SEC]); err != nil {
		return fmt.Errorf("kvmclock: wall clock at %s: %w", gpa, err)
	}
	if err := w.Write(gpa+WALL_CLOCK_SEC, b[WALL_CLOCK_SEC:]); err != nil {
		return fmt.Errorf("kvmclock: wall clock at %s: %w", gpa, err)
	}
	wc.Version++
	binary.LittleEndian.PutUint32(b[WALL_CLOCK_VERSION:], wc.Version)
	if err := w.Write(gpa, b[:WALL_CLOCK_SEC]); err != nil {
		return fmt.Errorf("kvmclock: wall clock at %s: %w", gpa, err)
	}
	return nil
}

// ErrMisaligned is wrapped by MSR errors for GPAs that are not
// MSR_GPA_ALIGN-aligned.
var ErrMisaligned = errors.New("GPA not 4-byte aligned")

// Clock is one vCPU's MSR_KVM_SYSTEM_TIME_NEW: the guest registers a GPA
// with bit 0 set, and the host keeps a pvclock_vcpu_time_info there until
// the guest writes a value with bit 0 clear. It is safe for concurrent
// use. Use NewClock.
type Clock struct {
	mu      sync.Mutex
	mem     GuestWriter
	msr     uint64
	enabled bool
	gpa     addr.GPA
	info    TimeInfo
	buf     [TIME_INFO_SIZE]byte
}

// NewClock returns a disabled clock for a vCPU whose TSC runs at tscHz,
// writing guest memory through mem. flags (PVCLOCK_*) go into every
// record: PVCLOCK_TSC_STABLE_BIT if the TSCs of all vCPUs are synchronized
// and KVM_FEATURE_CLOCKSOURCE_STABLE_BIT is offered.
func NewClock(mem GuestWriter, tscHz uint64, flags uint8) (*Clock, error) {
	mul, shift, err := Scale(tscHz)
	if err != nil {
		return nil, err
	}
	return &Clock{mem: mem, info: TimeInfo{TSCToSystemMul: mul, TSCShift: shift, Flags: flags}}, nil
}

// WriteMSR handles a guest WRMSR of value to MSR_KVM_SYSTEM_TIME_NEW at
// the moment the vCPU's TSC reads tsc and its system time is systemNS. With
// bit 0 set it publishes a record at value&^1 and keeps it up to date
// from then on; with bit 0 clear it stops. As with KVM the MSR reads back
// the value written in every case, and a bad GPA (misaligned, or not
// writable guest RAM) leaves the clock disabled and returns an error to
// log rather than a #GP to inject.
func (c *Clock) WriteMSR(value, tsc, systemNS uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msr = value
	c.enabled = false
	if value&SYSTEM_TIME_ENABLE == 0 {
		return nil
	}
	gpa := addr.GPA(value &^ SYSTEM_TIME_ENABLE)
	if uint64(gpa)%MSR_GPA_ALIGN != 0 {
		return fmt.Errorf("kvmclock: MSR_KVM_SYSTEM_TIME_NEW = %#x: %s: %w; the clock stays disabled", value, gpa, ErrMisaligned)
	}
	c.gpa = gpa
	// The version keeps counting across registrations, so that it never
	// repeats at a GPA the guest reuses.
	if err := c.publish(tsc, systemNS); err != nil {
		return fmt.Errorf("kvmclock: MSR_KVM_SYSTEM_TIME_NEW = %#x: %w; the clock stays disabled", value, err)
	}
	c.enabled = true
	return nil
}

// ReadMSR returns the value last written to MSR_KVM_SYSTEM_TIME_NEW.
func (c *Clock) ReadMSR() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msr
}

// Enabled returns the record's GPA and whether the clock is enabled.
func (c *Clock) Enabled() (addr.GPA, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gpa, c.enabled
}

// Update republishes the record for the vCPU's TSC value tsc and system
// time systemNS, if the clock is enabled.
func (c *Clock) Update(tsc, systemNS uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled {
		return nil
	}
	return c.publish(tsc, systemNS)
}

// Info returns the record as last published.
func (c *Clock) Info() TimeInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

func (c *Clock) publish(tsc, systemNS uint64) error {
	c.info.TSCTimestamp, c.info.SystemTime = tsc, systemNS
	return writeTimeInfo(c.mem, c.gpa, &c.info, &c.buf)
}

// Wall is a VM's MSR_KVM_WALL_CLOCK_NEW: each guest write of a GPA makes
// the host write a pvclock_wall_clock there once. Although MSRs are per
// CPU its effect is global, so one Wall serves all vCPUs. It is safe for
// concurrent use. Use NewWall.
type Wall struct {
	mu  sync.Mutex
	mem GuestWriter
	msr uint64
	wc  WallClock
	buf [WALL_CLOCK_SIZE]byte
}

// NewWall returns the wall-clock MSR of a VM whose memory is mem.
func NewWall(mem GuestWriter) *Wall { return &Wall{mem: mem} }

// WriteMSR handles a guest WRMSR of value (a GPA) to
// MSR_KVM_WALL_CLOCK_NEW: it writes boot, the wall-clock time at which the
// guest's kvmclock system time was zero, at that GPA. The MSR reads back
// the value written; a misaligned or unwritable GPA returns an error to
// log.
func (w *Wall) WriteMSR(value uint64, boot time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msr = value
	if value%MSR_GPA_ALIGN != 0 {
		return fmt.Errorf("kvmclock: MSR_KVM_WALL_CLOCK_NEW = %#x: %w", value, ErrMisaligned)
	}
	w.wc.Sec, w.wc.Nsec = uint32(boot.Unix()), uint32(boot.Nanosecond())
	if err := writeWallClock(w.mem, addr.GPA(value), &w.wc, &w.buf); err != nil {
		return fmt.Errorf("kvmclock: MSR_KVM_WALL_CLOCK_NEW = %#x: %w", value, err)
	}
	return nil
}

// ReadMSR returns the value last written to MSR_KVM_WALL_CLOCK_NEW.
func (w *Wall) ReadMSR() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msr
}

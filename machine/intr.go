package machine

import (
	"github.com/keel-hv/keel/devices/kvmclock"
	"github.com/keel-hv/keel/devices/lapic"
	"github.com/keel-hv/keel/devices/pic"
)

// source is a vCPU's interrupt controller as the core sees it
// (irq.Source): the local APIC, with the i8259 behind LINT0 on the
// bootstrap processor (virtual-wire mode: ExtINT).
type source struct {
	apic *lapic.LAPIC
	pic  *pic.PIC // nil on application processors
}

// extINT reports whether an ExtINT from the PIC is ready.
func (s *source) extINT() bool {
	if s.apic.ExtINTPending() {
		return true
	}
	return s.pic != nil && s.apic.AcceptsPICInterrupt() && s.pic.Pending()
}

// Ready implements irq.Source.
func (s *source) Ready() bool {
	if s.extINT() {
		return true
	}
	_, ok := s.apic.PendingVector()
	return ok
}

// Take implements irq.Source: the INTA cycle.
func (s *source) Take() (uint8, bool) {
	if s.extINT() && s.pic != nil {
		v, ok := s.pic.Acknowledge()
		s.apic.AckExtINT()
		return v, ok
	}
	v, ok := s.apic.PendingVector()
	if !ok || !s.apic.Accept(v) {
		return 0, false
	}
	return v, true
}

// vcpuMSRs are a vCPU's device MSRs: its local APIC's and kvmclock's.
type vcpuMSRs struct {
	m     *Machine
	apic  *lapic.LAPIC
	clock *kvmclock.Clock
	wall  *kvmclock.Wall
}

// HandlesMSR implements hv.MSRHandler.
func (h *vcpuMSRs) HandlesMSR(i uint32) bool {
	return lapic.HandlesMSR(i) || i == kvmclock.MSR_KVM_SYSTEM_TIME_NEW || i == kvmclock.MSR_KVM_WALL_CLOCK_NEW
}

// ReadMSR implements hv.MSRHandler.
func (h *vcpuMSRs) ReadMSR(i uint32) (uint64, error) {
	switch i {
	case kvmclock.MSR_KVM_SYSTEM_TIME_NEW:
		return h.clock.ReadMSR(), nil
	case kvmclock.MSR_KVM_WALL_CLOCK_NEW:
		return h.wall.ReadMSR(), nil
	}
	return h.apic.ReadMSR(i)
}

// WriteMSR implements hv.MSRHandler. A kvmclock area outside RAM leaves
// the clock off (as on KVM); the guest then falls back to other clocks.
func (h *vcpuMSRs) WriteMSR(i uint32, v uint64) error {
	switch i {
	case kvmclock.MSR_KVM_SYSTEM_TIME_NEW:
		_ = h.clock.WriteMSR(v, h.m.env.TSC(), h.m.systemNS())
		return nil
	case kvmclock.MSR_KVM_WALL_CLOCK_NEW:
		_ = h.wall.WriteMSR(v, h.m.bootWall())
		return nil
	}
	return h.apic.WriteMSR(i, v)
}

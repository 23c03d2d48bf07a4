package svm

import (
	"errors"
	"sync/atomic"

	"github.com/keel-hv/keel/hv/arch"
)

// Results of enter.
const (
	ENTER_EXITED   = 0 // the guest ran and exited: the VMCB holds the exit
	ENTER_KICKED   = 1 // a kick was pending: the guest did not run
	ENTER_NO_HSAVE = 2 // this processor has no host save area (SetupCPUs)
)

// enter runs the guest once on the current processor. run_tamago.go sets it
// to the VMRUN path; host tests set a fake that writes exits into the VMCB.
var enter func(c *vcpu) int

var (
	errNoHardware = errors.New("svm: guests cannot run here: no VMRUN (host build)")
	errNoHsave    = errors.New("svm: this processor has no host save area: SetupCPUs did not cover it")
)

// Run implements hv.BackendVCPU.
func (c *vcpu) Run() (arch.Exit, error) {
	var e arch.Exit
	for {
		if atomic.SwapUint32(&c.kicked, 0) != 0 {
			e = arch.Exit{Reason: arch.ExitInterrupt, RIP: c.v.u64(VMCB_RIP)}
			return e, nil
		}
		if enter == nil {
			return e, errNoHardware
		}
		if c.flushAlways {
			c.flush = true
		}
		switch enter(c) {
		case ENTER_KICKED:
			continue
		case ENTER_NO_HSAVE:
			return e, errNoHsave
		}
		c.flush = false
		c.v.setU8(VMCB_TLB_CONTROL, TLB_CONTROL_DO_NOTHING)
		// An event whose delivery the exit interrupted is delivered
		// again at the next entry (APM Vol. 2, 15.7.2).
		if ii := c.v.u64(VMCB_EXITINTINFO); ii&EVENT_VALID != 0 {
			c.v.setU64(VMCB_EVENTINJ, ii)
			c.injecting = true
		} else {
			c.v.setU64(VMCB_EVENTINJ, 0)
			c.injecting = false
		}
		if c.decode(&e) {
			return e, nil
		}
	}
}

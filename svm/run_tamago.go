//go:build tamago

package svm

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// Per-processor SVM state, indexed by local APIC ID (run_amd64.s reads
// them with interrupts off, after finding which processor it is on):
// hsaveTable holds the VM_HSAVE_PA page, hostSaveTable the page VMSAVE
// and VMLOAD keep the host's FS, GS, TR, LDTR and system-call MSRs in.
var (
	hsaveTable    [256]uint64
	hostSaveTable [256]uint64
	mxcsrDefault  uint32 = MXCSR_DEFAULT
)

// SetupCPUs gives each processor (by APIC ID) its host save areas. Run
// refuses to enter a guest on a processor without them.
func SetupCPUs(frames *mem.Frames, apicIDs []uint32) error {
	for _, id := range apicIDs {
		if id > 255 {
			return fmt.Errorf("svm: APIC ID %d is beyond Keel's 8-bit table", id)
		}
		if hsaveTable[id] != 0 {
			continue
		}
		a, err := frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_4K)
		if err != nil {
			return err
		}
		b, err := frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_4K)
		if err != nil {
			return err
		}
		hsaveTable[id], hostSaveTable[id] = uint64(a), uint64(b)
	}
	return nil
}

// SetKick installs the function that interrupts a processor by APIC ID
// (the kernel's wake IPI): a guest running there exits.
func SetKick(f func(apicID uint32)) { kickCPU = f }

func init() {
	enter = enterHW
}

// enterHW runs the guest once with VMRUN (run_amd64.s).
func enterHW(c *vcpu) int {
	var flush uint32
	if c.flush {
		flush = 1
	}
	return int(vmrun(uint64(c.vmcbPA), vmcbAddr(c), &c.gprs, &c.lastCPU, flush, &c.running, &c.kicked, fxAddr(c)))
}

// vmrun enters the guest whose VMCB is at physical address vmcbPA
// (run_amd64.s).
func vmrun(vmcbPA uint64, vmcbVA uintptr, gprs *[16]uint64, lastCPU *uint32, flush uint32, running *uint32, kicked *uint32, fx uintptr) (status uint32)

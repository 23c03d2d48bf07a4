//go:build tamago

package vmx

import (
	"fmt"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/mem"
)

// Per-processor VMX state, indexed by local APIC ID (run_amd64.s reads
// them with interrupts off, after finding which processor it is on):
// vmxonTable holds the physical address of each processor's VMXON region,
// vmxonDone is set once that processor has executed VMXON. A processor
// enters VMX operation the first time it runs a guest, and stays in it.
var (
	vmxonTable [256]uint64
	vmxonDone  [256]uint32
	// cr0Fixed0/1 and cr4Fixed0/1 are the VMX-fixed bits applied to
	// CR0 and CR4 before VMXON (SDM Vol. 3C, 24.8 "Restrictions on VMX
	// Operation").
	cr0Fixed0, cr0Fixed1, cr4Fixed0, cr4Fixed1 uint64
	mxcsrDefault                               uint32 = MXCSR_DEFAULT
	// hostTSS is the task-state segment HOST_TR_BASE points at (see
	// setupVMCS): zeroed and never used.
	hostTSS [104]byte
)

// SetupCPUs gives each processor (by APIC ID) its VMXON region and
// records the fixed CR0/CR4 bits for VMXON. Run refuses to enter a guest
// on a processor without a region.
func SetupCPUs(caps Capabilities, frames *mem.Frames, apicIDs []uint32) error {
	cr0Fixed0, cr0Fixed1 = caps.CR0Fixed0, caps.CR0Fixed1
	cr4Fixed0, cr4Fixed1 = caps.CR4Fixed0|arch.CR4_VMXE, caps.CR4Fixed1
	for _, id := range apicIDs {
		if id > 255 {
			return fmt.Errorf("vmx: APIC ID %d is beyond Keel's 8-bit table", id)
		}
		if vmxonTable[id] != 0 {
			continue
		}
		hpa, err := frames.Alloc(mem.OwnerKeel, addr.PAGE_SIZE_4K)
		if err != nil {
			return fmt.Errorf("vmx: VMXON region for APIC ID %d: %w", id, err)
		}
		p, err := frames.Host().Slice(hpa, addr.PAGE_SIZE_4K)
		if err != nil {
			return err
		}
		le.PutUint32(p, caps.Revision)
		vmxonTable[id] = uint64(hpa)
	}
	return nil
}

// SetKick installs the function that interrupts a processor by APIC ID
// (the kernel's wake IPI): a guest running there exits.
func SetKick(f func(apicID uint32)) { kickCPU = f }

func init() {
	enter = enterHW
}

// enterHW runs the guest once with VMLAUNCH (run_amd64.s).
func enterHW(h *hwState) int { return int(vmxrun(h)) }

// vmxrun enters the guest described by h once (run_amd64.s).
func vmxrun(h *hwState) (status uint32)

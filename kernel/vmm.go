//go:build tamago

package main

import (
	"errors"
	"fmt"
	"sync"

	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/kernel/bootinfo"
	"github.com/keel-hv/keel/kernel/klog"
	"github.com/keel-hv/keel/kernel/manager"
	"github.com/keel-hv/keel/kernel/pc"
	"github.com/keel-hv/keel/kernel/selftest"
	"github.com/keel-hv/keel/kernel/shell"
	"github.com/keel-hv/keel/svm"
	"github.com/keel-hv/keel/vmx"
)

// vmm is the hypervisor's state: the frame allocator over the RAM Keel
// does not use itself, and the backend picked at boot.
var vmm struct {
	frames  *mem.Frames
	backend hv.Backend
	err     error
	// moves counts vCPU moves between CPUs when keel.test.vmx-move is
	// set (nil otherwise).
	moves func() uint64

	mu  sync.Mutex
	vms []*hv.VM // VMs that exist (destroyed ones are dropped by list)
}

// addVM records a VM for `vm list`.
func addVM(vm *hv.VM) {
	vmm.mu.Lock()
	vmm.vms = append(vmm.vms, vm)
	vmm.mu.Unlock()
}

// liveVMs returns the VMs not yet destroyed.
func liveVMs() []*hv.VM {
	vmm.mu.Lock()
	defer vmm.mu.Unlock()
	live := vmm.vms[:0]
	for _, vm := range vmm.vms {
		if !vm.Destroyed() {
			live = append(live, vm)
		}
	}
	vmm.vms = live
	return append([]*hv.VM(nil), live...)
}

// vmCommand is `vm`: list the VMs, start, stop, kill, attach to and
// describe them by name.
func vmCommand() shell.Command {
	return shell.Command{
		Name: "vm",
		Args: "list | start NAME | stop NAME | kill NAME | console NAME | info NAME",
		Help: "list the VMs (state, vCPUs, memory, exits by reason); start, stop (ACPI power button, forced after a timeout), kill, attach to (Ctrl-] detaches) or describe one",
		Run: func(ctx *shell.Context, args []string) error {
			switch {
			case len(args) == 1 && args[0] == "list":
				return vmList(ctx)
			case len(args) == 2 && args[0] != "list":
				return vmSubcommand(ctx, args[0], args[1])
			}
			return shell.Usagef("want list, or start, stop, kill, console or info with a VM name")
		},
	}
}

// vmList prints the backend, guest memory, the bundle's VMs and the
// selftest's transient ones.
func vmList(ctx *shell.Context) error {
	backend := "none"
	if vmm.backend != nil {
		backend = vmm.backend.Name()
	}
	var declared []manager.Info
	if vms != nil {
		declared = vms.List()
	}
	transient := liveVMs()
	ctx.Printf("backend %s, %d VMs\n", backend, len(declared)+len(transient))
	if vmm.frames != nil {
		ctx.Printf("guest memory: %s\n", vmm.frames.Stats())
	}
	for _, in := range declared {
		ctx.Printf("%-12s %-8s vcpus=%d mem=%dM backend=%s exits: %s\n", in.Name, in.State, in.VCPUs, in.Memory>>20, backend, in.ExitSummary())
	}
	for _, vm := range transient {
		in := vm.Info()
		ctx.Printf("%-12s %-8s vcpus=%d mem=%dM backend=%s exits: %s\n", in.Name, in.State, in.VCPUs, in.MemorySize>>20, in.Backend, in.ExitSummary())
	}
	return nil
}

// startVMM builds the frame allocator and picks the backend the processor
// offers: SVM (AMD-V) or VMX (Intel VT-x). Without one, VMs cannot run and
// the reason is kept for the commands that need them. moveTest enables the
// VMX backend's CPU-move test (keel.test.vmx-move).
func startVMM(info *bootinfo.Info, log klog.Logger, moveTest bool) {
	ram, reserved := pc.GuestRAM(info)
	frames, err := mem.NewFrames(ram, reserved, pc.HostMemory{})
	if err != nil {
		vmm.err = fmt.Errorf("guest memory: %w", err)
		return
	}
	vmm.frames = frames
	var ids []uint32
	for _, c := range pc.CPUList() {
		if c.Online {
			ids = append(ids, c.APICID)
		}
	}
	switch virt := pc.CPU().Virt; virt {
	case "svm":
		vmm.backend, vmm.err = startSVM(frames, ids)
	case "vmx":
		var b *vmx.Backend
		if b, vmm.err = startVMX(frames, ids, log); vmm.err == nil {
			vmm.backend = b
			if moveTest {
				b.SetMoveTest(VMX_MOVE_TEST_EVERY)
				vmm.moves = b.Moves
			}
		}
	default:
		vmm.err = fmt.Errorf("no usable virtualization backend: the processor offers %q (Keel runs guests with AMD-V or Intel VT-x)", virt)
	}
}

// VMX_MOVE_TEST_EVERY is how many exits a vCPU makes between the sleeps
// of the CPU-move test.
const VMX_MOVE_TEST_EVERY = 7

// startSVM sets up the AMD-V backend on every processor.
func startSVM(frames *mem.Frames, ids []uint32) (hv.Backend, error) {
	caps, err := svm.Detect(pc.CPUID, pc.ReadMSR)
	if err != nil {
		return nil, err
	}
	if err := svm.SetupCPUs(frames, ids); err != nil {
		return nil, err
	}
	svm.SetKick(pc.Kick)
	return svm.New(caps, frames), nil
}

// startVMX sets up the Intel VT-x backend on every processor.
func startVMX(frames *mem.Frames, ids []uint32, log klog.Logger) (*vmx.Backend, error) {
	caps, err := vmx.Detect(pc.CPUID, pc.ReadMSR)
	if err != nil {
		return nil, err
	}
	log.Infof("vmx: %s", caps)
	if err := vmx.SetupCPUs(caps, frames, ids); err != nil {
		return nil, err
	}
	vmx.SetKick(pc.Kick)
	b := vmx.New(caps, frames)
	b.SetTimeSlice(pc.TSCHz() * pc.TIME_SLICE_MS / 1000)
	return b, nil
}

// benchCommand runs the exit-cost bench guest (make bench).
func benchCommand() shell.Command {
	return shell.Command{
		Name: "bench",
		Help: "[LOOP] measure exit round trips from inside a guest and heap allocations per exit; LOOP (cpuid, port, mmio, hypercall) runs one loop",
		Run: func(ctx *shell.Context, args []string) error {
			if len(args) > 1 {
				return shell.Usagef("unexpected argument %q", args[1])
			}
			if vmm.backend == nil {
				return vmm.err
			}
			only := ""
			if len(args) == 1 {
				only = args[0]
			}
			return selftest.Bench(selftestEnv(ctx), ctx.Out, only)
		},
	}
}

// selftestEnv is what the guest suite and the bench need.
func selftestEnv(ctx *shell.Context) selftest.Env {
	return selftest.Env{Backend: vmm.backend, Frames: vmm.frames, HostCPUID: pc.CPUID, Console: ctx.Out, Created: addVM}
}

// selftestCommand runs the guest suite.
func selftestCommand() shell.Command {
	return shell.Command{
		Name: "selftest",
		Help: "run the test guests on the virtualization backend and report `selftest: N passed, M failed`",
		Run: func(ctx *shell.Context, args []string) error {
			if len(args) > 0 {
				return shell.Usagef("unexpected argument %q", args[0])
			}
			if vmm.backend == nil {
				return vmm.err
			}
			_, failed := selftest.Run(selftestEnv(ctx), ctx.Out)
			if vmm.moves != nil {
				ctx.Printf("selftest: %d vCPU moves between CPUs (%s)\n", vmm.moves(), CMDLINE_TEST_VMX_MOVE)
			}
			if failed > 0 {
				return errors.New("some cases failed")
			}
			return nil
		},
	}
}

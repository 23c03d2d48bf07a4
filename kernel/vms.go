//go:build tamago

package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keel-hv/keel/bundle"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/kernel/bootinfo"
	"github.com/keel-hv/keel/kernel/manager"
	"github.com/keel-hv/keel/kernel/pc"
	"github.com/keel-hv/keel/kernel/shell"
	"github.com/keel-hv/keel/machine"
)

// vms is the VM manager, once a backend exists.
var vms *manager.Manager

// startVMs creates the VM manager, reads the boot bundle from the boot
// modules and starts the VMs marked autostart. Messages go to out.
func startVMs(info *bootinfo.Info, out io.Writer) {
	if vmm.backend == nil {
		return
	}
	env := machine.Env{Backend: vmm.backend, Frames: vmm.frames, HostCPUID: pc.CPUID, Clock: vclock.NewReal(),
		Wall: pc.WallClock, TSC: pc.TSC, TSCHz: pc.TSCHz(), Log: out}
	fmt.Fprintf(out, "keel: wall clock %s (host RTC)\n", pc.WallClock().Format(time.RFC3339))
	vms = manager.New(env, out)
	if info == nil {
		return
	}
	b, err := findBundle(info.Modules, out)
	if err != nil {
		fmt.Fprintf(out, "keel: bundle: %v\n", err)
		return
	}
	if b == nil {
		fmt.Fprintf(out, "keel: bundle: none among %d boot modules; no VMs declared\n", len(info.Modules))
		return
	}
	if err := vms.LoadBundle(b); err != nil {
		fmt.Fprintf(out, "keel: bundle: %v\n", err)
	}
	fmt.Fprintf(out, "keel: bundle: %d VMs: %s\n", len(b.Config.VMs), strings.Join(vms.Names(), ", "))
	if err := vms.Autostart(); err != nil {
		fmt.Fprintf(out, "keel: autostart: %v\n", err)
	}
}

// findBundle returns the first boot module that is a boot bundle (a cpio
// archive with keel.conf). A module that is a bundle with a bad keel.conf
// is an error; modules that are not cpio archives are skipped.
func findBundle(mods []bootinfo.Module, out io.Writer) (*bundle.Bundle, error) {
	for i, m := range mods {
		data, err := pc.HostMemory{}.Slice(addr.HPA(m.Base), m.Size)
		if err != nil {
			fmt.Fprintf(out, "keel: bundle: module %d (%s): %v\n", i, m.Cmdline, err)
			continue
		}
		if len(data) < 6 || string(data[:6]) != "070701" {
			continue
		}
		b, err := bundle.Open(data)
		if err != nil {
			return nil, fmt.Errorf("module %d (%s, %d bytes): %w", i, m.Cmdline, m.Size, err)
		}
		return b, nil
	}
	return nil, nil
}

// vmSubcommands are the `vm` subcommands beyond list.
func vmSubcommand(ctx *shell.Context, sub, name string) error {
	if vms == nil {
		if vmm.err != nil {
			return vmm.err
		}
		return errors.New("no VM manager: no virtualization backend")
	}
	switch sub {
	case "start":
		return vms.Start(name)
	case "stop":
		ctx.Printf("keel: pressing %s's power button (forced off after %v)\n", name, manager.STOP_TIMEOUT)
		graceful, err := vms.Stop(name, manager.STOP_TIMEOUT)
		if err != nil {
			return err
		}
		if graceful {
			ctx.Printf("keel: %s shut down\n", name)
		} else {
			ctx.Printf("keel: %s did not shut down in time: forced off\n", name)
		}
		return nil
	case "kill":
		return vms.Kill(name)
	case "console":
		return vms.Console(name, pc.ConsoleReader(), ctx.Out)
	case "info":
		in, err := vms.Info(name)
		if err != nil {
			return err
		}
		ctx.Printf("name:    %s\nstate:   %s\nvcpus:   %d\nmemory:  %d MiB\nkernel:  %s\nuptime:  %v\nexits:   %s\nconsole: %d bytes kept\n",
			in.Name, in.State, in.VCPUs, in.Memory>>20, in.Kernel, in.Uptime.Round(time.Millisecond), in.ExitSummary(), in.Console)
		if in.Reason != "" {
			ctx.Printf("last:    %s\n", in.Reason)
		}
		return nil
	}
	return shell.Usagef("unknown subcommand %q", sub)
}

//go:build tamago

// Command kernel is the Keel hypervisor kernel, built as build/keel.elf with
// GOOS=tamago GOARCH=amd64 and booted through PVH (qemu -kernel), Multiboot2
// (GRUB) or Multiboot (iPXE). It brings up the PC (memory, firmware tables,
// every CPU), checks the runtime, prints the boot banner and runs the serial
// console shell.
//
// This package is GOOS=tamago only.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/keel-hv/keel/kernel/bootinfo"
	"github.com/keel-hv/keel/kernel/klog"
	"github.com/keel-hv/keel/kernel/pc"
	"github.com/keel-hv/keel/kernel/shell"
)

// Version is the Keel version, set at link time with
// -ldflags "-X main.Version=...".
var Version = "dev"

// Kernel command-line options.
const (
	// CMDLINE_RUN's value is a shell script run after boot (commands
	// separated by semicolons).
	CMDLINE_RUN = "keel.run"
	// CMDLINE_TEST_AP_FAIL names an APIC ID (option repeatable) that is
	// not sent a Start-up IPI, for testing how Keel reports and skips a
	// processor that does not come up.
	CMDLINE_TEST_AP_FAIL = "keel.test.ap-fail"
	// CMDLINE_TEST_VMX_MOVE makes vCPU goroutines of the VMX backend
	// sleep now and then so that they resume on other CPUs, and
	// `selftest` report how often they did (vmx.Backend.SetMoveTest).
	CMDLINE_TEST_VMX_MOVE = "keel.test.vmx-move"
)

func main() {
	log := klog.New(klog.Config{Clock: uptimeNanos, Mirror: os.Stdout, MirrorLevel: klog.Info})
	boot := log.Logger("boot")

	goroutines, gcs, err := selfCheck()
	if err != nil {
		fmt.Printf("keel: runtime self-check failed: %v\n", err)
		pc.Exit(2)
	}
	fmt.Printf("keel: runtime ok goroutines=%d gc=%d\n", goroutines, gcs)

	info, err := pc.Boot()
	if err != nil {
		boot.Warnf("boot information: %v", err)
	}
	var cmdline bootinfo.Cmdline
	if info != nil {
		for _, w := range info.Warnings {
			boot.Warnf("boot information: %s", w)
		}
		boot.Printf("booted by %s%s, command line %q", info.Protocol, loaderName(info.Loader), info.Cmdline)
		for _, m := range info.Modules {
			boot.Printf("module %q at %#x, %d bytes", m.Cmdline, m.Base, m.Size)
		}
		if cmdline, err = bootinfo.ParseCmdline(info.Cmdline); err != nil {
			boot.Warnf("command line: %v", err)
		}
	}

	pc.MapMemory(info, boot.Warnf)
	apics := pc.Firmware(info, log.Logger("acpi").Warnf)
	if hz := pc.StartSliceTimer(); hz == 0 {
		boot.Warnf("no time-slice timer: guests that never exit keep their CPU")
	}
	pc.StartAPs(apics, silentAPs(cmdline, boot), log.Logger("smp").Warnf)
	startVMM(info, log.Logger("vmm"), cmdline.Has(CMDLINE_TEST_VMX_MOVE))
	if vmm.err != nil {
		log.Logger("vmm").Warnf("%v", vmm.err)
	}
	if n, ran := smpCheck(); ran < n {
		boot.Warnf("goroutines ran on %d of %d CPUs", ran, n)
	} else {
		fmt.Printf("keel: smp ok cpus=%d ran-on=%d\n", n, ran)
	}

	fmt.Printf("keel: boot tsc-entry=%d tsc-ready=%d tsc-hz=%d\n", pc.EntryTSC(), pc.TSC(), pc.TSCHz())
	fmt.Println(banner(info))

	t0 := time.Now()
	fmt.Printf("keel: clock t0=%d\n", t0.UnixNano())
	time.Sleep(500 * time.Millisecond)
	t1 := time.Now()
	fmt.Printf("keel: clock t1=%d slept=%d\n", t1.UnixNano(), t1.Sub(t0).Nanoseconds())

	reg := shell.NewRegistry()
	reg.MustRegister(shell.StandardCommands(shell.Sources{
		Version:  Version + " (" + runtime.Version() + ")",
		CPUs:     cpus,
		Mem:      memInfo,
		Uptime:   func() time.Duration { return time.Duration(uptimeNanos()) },
		Log:      log,
		Reboot:   pc.Reboot,
		PowerOff: pc.PowerOff,
	})...)
	reg.MustRegister(selftestCommand(), benchCommand(), vmCommand())
	sh := shell.New(pc.RawConsole(), reg)
	log.SetMirror(sh.Writer(), klog.Info)
	startVMs(info, sh.Writer())

	if script, ok := cmdline.Get(CMDLINE_RUN); ok {
		sh.RunScript(script)
	}
	for {
		if err := sh.Run(pc.ConsoleReader()); err != nil {
			log.Logf(klog.Error, "shell", "%v; restarting the shell", err)
		}
	}
}

// banner returns the `keel: ready` line.
func banner(info *bootinfo.Info) string {
	cpu := pc.CPU()
	mem := "unknown"
	if info != nil && info.RAM() > 0 {
		mem = fmt.Sprintf("%dM", info.RAM()>>20)
	}
	return fmt.Sprintf("keel: ready version=%s cpus=%d cpu=\"%s %s\" virt=%s mem=%s tsc=%dMHz",
		Version, pc.CPUs(), cpu.Vendor, cpu.Brand, cpu.Virt, mem, (pc.TSCHz()+500_000)/1_000_000)
}

// uptimeNanos is the time since Keel's first instruction.
func uptimeNanos() int64 {
	return pc.Uptime().Nanoseconds()
}

// cpus lists the processors for the shell.
func cpus() []shell.CPUInfo {
	var list []shell.CPUInfo
	for _, c := range pc.CPUList() {
		features := ""
		for i, f := range c.Features {
			if i > 0 {
				features += " "
			}
			features += f
		}
		list = append(list, shell.CPUInfo{Index: c.Index, APICID: c.APICID, Online: c.Online, Features: features})
	}
	return list
}

// memInfo describes memory for the shell: the loader's map, the identity
// map, and Keel's own use.
func memInfo() shell.MemInfo {
	m := pc.MemoryInfo()
	var info shell.MemInfo
	for _, r := range m.Map {
		typ := r.Type.String()
		if r.Type == bootinfo.RAM {
			typ = "usable"
		}
		info.Map = append(info.Map, shell.MemRegion{Base: r.Base, Length: r.Size, Type: typ})
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	info.Usage = []shell.MemUsage{
		{Name: "runtime region", Used: ms.Sys, Total: m.RuntimeEnd - m.RuntimeStart},
		{Name: "go heap", Used: ms.HeapAlloc, Total: ms.HeapSys},
	}
	page := "2 MiB"
	if m.HugePages {
		page = "1 GiB"
	}
	info.Notes = []string{
		fmt.Sprintf("mapped: 0x0-%#x identity, RAM only above 4 GiB (%s pages there)", m.MappedEnd, page),
		fmt.Sprintf("runtime region: %#x-%#x (code, Go heap, stacks)", m.RuntimeStart, m.RuntimeEnd),
	}
	if m.HighCheck != 0 {
		res := "ok"
		if !m.HighCheckOK {
			res = "FAILED"
		}
		info.Notes = append(info.Notes, fmt.Sprintf("high memory check: wrote and read back %#x: %s", m.HighCheck, res))
	}
	return info
}

// loaderName formats the boot loader's name for the log.
func loaderName(name string) string {
	if name == "" {
		return ""
	}
	return " (" + name + ")"
}

// silentAPs returns the APIC IDs named by keel.test.ap-fail.
func silentAPs(c bootinfo.Cmdline, log klog.Logger) []uint32 {
	var ids []uint32
	for _, v := range c.All(CMDLINE_TEST_AP_FAIL) {
		id, err := strconv.ParseUint(v, 0, 32)
		if err != nil {
			log.Warnf("%s=%q: not an APIC ID: %v", CMDLINE_TEST_AP_FAIL, v, err)
			continue
		}
		ids = append(ids, uint32(id))
	}
	return ids
}

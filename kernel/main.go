//go:build tamago

// Command kernel is the Keel hypervisor kernel, built as build/keel.elf with
// GOOS=tamago GOARCH=amd64 and booted through PVH (qemu -kernel). It checks
// the runtime, prints the boot banner and runs the serial console.
//
// This package is GOOS=tamago only.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/keel-hv/keel/kernel/pc"
)

// Version is the Keel version, set at link time with
// -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	goroutines, gcs, err := selfCheck()
	if err != nil {
		fmt.Printf("keel: runtime self-check failed: %v\n", err)
		pc.Exit(2)
	}

	fmt.Printf("keel: runtime ok goroutines=%d gc=%d\n", goroutines, gcs)

	fmt.Println(banner())

	t0 := time.Now()
	fmt.Printf("keel: clock t0=%d\n", t0.UnixNano())
	time.Sleep(500 * time.Millisecond)
	t1 := time.Now()
	fmt.Printf("keel: clock t1=%d slept=%d\n", t1.UnixNano(), t1.Sub(t0).Nanoseconds())

	runShell(pc.Console(), os.Stdout)
}

// banner returns the `keel: ready` line.
func banner() string {
	cpu := pc.CPU()

	mem := "unknown"
	if b, err := pc.Boot(); err != nil {
		fmt.Printf("keel: boot information: %v\n", err)
	} else if ram, ok := b.RAM(); ok {
		mem = fmt.Sprintf("%dM", ram>>20)
	}

	hz, _ := pc.TSCFrequency()

	return fmt.Sprintf("keel: ready version=%s cpus=%d cpu=\"%s %s\" virt=%s mem=%s tsc=%dMHz",
		Version, pc.CPUs(), cpu.Vendor, cpu.Brand, cpu.Virt, mem, (hz+500_000)/1_000_000)
}

package shell_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keel-hv/keel/kernel/klog"
	"github.com/keel-hv/keel/kernel/shell"
)

// noCR drops the CRs of the terminal's line endings, for the example's
// output check.
type noCR struct{ w io.Writer }

func (n noCR) Write(p []byte) (int, error) {
	n.w.Write(bytes.ReplaceAll(p, []byte("\r"), nil))
	return len(p), nil
}

// The kernel wires the shell like this: the standard commands over its own
// data sources, the kernel log mirrored through the shell so that log lines
// do not garble the line being typed, keel.run="..." run as a script, then
// the interactive loop on the UART.
func Example() {
	var ticks int64
	log := klog.New(klog.Config{Clock: func() int64 { ticks += 250_000_000; return ticks }})

	reg := shell.NewRegistry()
	reg.MustRegister(shell.StandardCommands(shell.Sources{
		Version: "v0.1.0",
		CPUs: func() []shell.CPUInfo {
			return []shell.CPUInfo{
				{Index: 0, APICID: 0, Online: true, Features: "svm npt"},
				{Index: 1, APICID: 1, Online: true, Features: "svm npt"},
			}
		},
		Uptime:   func() time.Duration { return 90 * time.Minute },
		Log:      log,
		PowerOff: func() error { return errors.New("no ACPI") },
	})...)

	sh := shell.New(noCR{os.Stdout}, reg)
	log.SetMirror(sh.Writer(), klog.Info)
	log.Logger("pc").Infof("2 CPUs online")

	sh.RunScript(`cpus; uptime; log 1; echo "a;b"; nope`)
	fmt.Println("--")
	sh.Run(bytes.NewBufferString("lo\t1\rlog x\r")) // Tab completes "lo"

	// Output:
	// [     0.250000] info  pc: 2 CPUs online
	// keel> cpus
	// CPU  APIC ID  STATE   FEATURES
	//   0        0  online  svm npt
	//   1        1  online  svm npt
	// 2 CPUs, 2 online
	// keel> uptime
	// up 01:30:00.000
	// keel> log 1
	// [     0.250000] info  pc: 2 CPUs online
	// keel> echo "a;b"
	// a;b
	// keel> nope
	// keel: unknown command "nope" (try help)
	// --
	// keel> log 1
	// [     0.250000] info  pc: 2 CPUs online
	// keel> log x
	// keel: log: N must be a number of lines, not "x"
	// usage: log [N]
	// keel>
}

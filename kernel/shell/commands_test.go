package shell

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keel-hv/keel/kernel/klog"
)

// exec runs line in a shell with the commands and returns what it printed.
func exec(t *testing.T, line string, cmds ...Command) string {
	t.Helper()

	reg := NewRegistry()
	reg.MustRegister(cmds...)

	var out bytes.Buffer
	New(&out, reg).Exec(line)
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

// cmdTest is one line run against a command and the output it must print.
type cmdTest struct {
	line string
	want string
}

// runCmdTests runs each test against cmds.
func runCmdTests(t *testing.T, tests []cmdTest, cmds ...Command) {
	t.Helper()

	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := exec(t, tt.line, cmds...); got != tt.want {
				t.Errorf("%s printed\n%s\nwant\n%s", tt.line, got, tt.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	build := fmt.Sprintf("(%s %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	runCmdTests(t, []cmdTest{
		{"version", "keel version v0.1-3-gabc " + build + "\n"},
		{"version x", "keel: version: unexpected argument \"x\"\nusage: version\n"},
	}, VersionCommand("v0.1-3-gabc"))

	runCmdTests(t, []cmdTest{{"version", "keel version unknown " + build + "\n"}}, VersionCommand(""))
}

func TestEchoCommand(t *testing.T) {
	runCmdTests(t, []cmdTest{
		{"echo", "\n"},
		{"echo a  b", "a b\n"},
		{`echo "a  b" c`, "a  b c\n"},
	}, EchoCommand())
}

func TestCPUsCommand(t *testing.T) {
	cpus := func() []CPUInfo {
		return []CPUInfo{
			{Index: 0, APICID: 0, Online: true, Features: "svm npt nx"},
			{Index: 1, APICID: 2, Online: true, Features: "svm npt nx"},
			{Index: 10, APICID: 255, Online: false, Features: ""},
			{Index: 11, APICID: 4096, Online: false, Features: "bad\x1b[2J"},
		}
	}

	runCmdTests(t, []cmdTest{
		{"cpus", "" +
			"CPU  APIC ID  STATE    FEATURES\n" +
			"  0        0  online   svm npt nx\n" +
			"  1        2  online   svm npt nx\n" +
			" 10      255  offline  -\n" +
			" 11     4096  offline  bad?[2J\n" +
			"4 CPUs, 2 online\n"},
		{"cpus extra", "keel: cpus: unexpected argument \"extra\"\nusage: cpus\n"},
	}, CPUsCommand(cpus))

	runCmdTests(t, []cmdTest{{"cpus", "no CPUs reported\n"}}, CPUsCommand(func() []CPUInfo { return nil }))
	runCmdTests(t, []cmdTest{{"cpus", "" +
		"CPU  APIC ID  STATE   FEATURES\n" +
		"  0        0  online  -\n" +
		"1 CPU, 1 online\n"}}, CPUsCommand(func() []CPUInfo { return []CPUInfo{{Online: true}} }))
}

func TestMemCommand(t *testing.T) {
	mem := func() MemInfo {
		return MemInfo{
			Map: []MemRegion{
				{Base: 0, Length: 0x9fc00, Type: "usable"},
				{Base: 0x9fc00, Length: 0x400, Type: "reserved"},
				{Base: 0x100000, Length: 0x7fee0000, Type: "usable"},
				{Base: 0xfffffffffffff000, Length: 0x2000, Type: "odd"},
				{Base: 0xfee00000, Length: 0, Type: "empty"},
			},
			Usage: []MemUsage{
				{Name: "go heap", Used: 12 << 20, Total: 64 << 20},
				{Name: "frames", Used: 1536 << 20, Total: 2 << 30},
				{Name: "page tables", Used: 300 << 10},
			},
		}
	}

	runCmdTests(t, []cmdTest{
		{"mem", "" +
			"memory map:\n" +
			"  START               END                 SIZE  TYPE\n" +
			"  0x0000000000000000  0x000000000009fbff  639K  usable\n" +
			"  0x000000000009fc00  0x000000000009ffff  1K    reserved\n" +
			"  0x0000000000100000  0x000000007ffdffff  2.0G  usable\n" +
			"  0xfffffffffffff000  0xffffffffffffffff  8K    odd\n" +
			"  0x00000000fee00000  -                   0B    empty\n" +
			"usable: 2.0G in 2 regions\n" +
			"keel usage:\n" +
			"  NAME         USED  TOTAL  USE\n" +
			"  go heap       12M    64M  18%\n" +
			"  frames       1.5G     2G  75%\n" +
			"  page tables  300K      -    -\n"},
		{"mem -v", "keel: mem: unexpected argument \"-v\"\nusage: mem\n"},
	}, MemCommand(mem))

	runCmdTests(t, []cmdTest{{"mem", "memory map: none reported\n"}}, MemCommand(func() MemInfo { return MemInfo{} }))
}

func TestUptimeCommand(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "up 00:00:00.000\n"},
		{1500 * time.Millisecond, "up 00:00:01.500\n"},
		{2*time.Hour + 3*time.Minute + 4*time.Second + 567*time.Millisecond, "up 02:03:04.567\n"},
		{3*24*time.Hour + time.Hour, "up 3d 01:00:00.000\n"},
		{-time.Second, "keel: uptime: the clock reports a negative uptime (-1s): the TSC calibration is wrong\n"},
	}

	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := exec(t, "uptime", UptimeCommand(func() time.Duration { return tt.d })); got != tt.want {
				t.Errorf("uptime printed %q, want %q", got, tt.want)
			}
		})
	}

	runCmdTests(t, []cmdTest{
		{"uptime now", "keel: uptime: unexpected argument \"now\"\nusage: uptime\n"},
	}, UptimeCommand(func() time.Duration { return 0 }))
}

func TestLogCommand(t *testing.T) {
	var now int64
	l := klog.New(klog.Config{MaxLines: 4, Clock: func() int64 { now += 1_500_000; return now }})
	for i := range 6 {
		l.Logger("hv").Infof("line %d", i)
	}

	const (
		l2 = "[     0.004500] info  hv: line 2\n"
		l3 = "[     0.006000] info  hv: line 3\n"
		l4 = "[     0.007500] info  hv: line 4\n"
		l5 = "[     0.009000] info  hv: line 5\n"
	)
	usage := "usage: log [N]\n"

	runCmdTests(t, []cmdTest{
		{"log", "(2 older lines dropped before these)\n" + l2 + l3 + l4 + l5},
		{"log 2", l4 + l5},
		{"log 0", ""},
		{"log 4", l2 + l3 + l4 + l5},
		{"log 5", "(2 older lines dropped before these)\n" + l2 + l3 + l4 + l5},
		{"log 99999999999999999999999", "(2 older lines dropped before these)\n" + l2 + l3 + l4 + l5},
		{"log abc", "keel: log: N must be a number of lines, not \"abc\"\n" + usage},
		{"log -1", "keel: log: N must be a number of lines, not \"-1\"\n" + usage},
		{"log +1", "keel: log: N must be a number of lines, not \"+1\"\n" + usage},
		{"log 0x10", "keel: log: N must be a number of lines, not \"0x10\"\n" + usage},
		{`log ""`, "keel: log: N must be a number of lines, not \"\"\n" + usage},
		{"log 1 2", "keel: log: too many arguments\n" + usage},
	}, LogCommand(l))

	empty := klog.New(klog.Config{})
	runCmdTests(t, []cmdTest{{"log", ""}}, LogCommand(empty))
}

// fakeLog is a LogSource with lines that klog would have cleaned.
type fakeLog struct{ entries []klog.Entry }

func (f fakeLog) Tail(n int) []klog.Entry { return f.entries }
func (f fakeLog) Dropped() uint64         { return 0 }

func TestLogCommandSanitizes(t *testing.T) {
	src := fakeLog{entries: []klog.Entry{{Text: "evil\x1b]0;title\a"}}}
	if got, want := exec(t, "log", LogCommand(src)), "[     0.000000] debug evil?]0;title?\n"; got != want {
		t.Errorf("log printed %q, want %q", got, want)
	}
}

func TestPowerCommands(t *testing.T) {
	failed := errors.New("ACPI reset register not found")
	tests := []struct {
		name string
		cmd  func(func() error) Command
		line string
		f    func() error
		want string
	}{
		{name: "reboot error", cmd: RebootCommand, line: "reboot", f: func() error { return failed },
			want: "keel: rebooting\nkeel: reboot: ACPI reset register not found\n"},
		{name: "reboot returns", cmd: RebootCommand, line: "reboot", f: func() error { return nil },
			want: "keel: rebooting\nkeel: reboot: reboot returned: the machine is still running\n"},
		{name: "reboot args", cmd: RebootCommand, line: "reboot now", f: func() error { panic("called") },
			want: "keel: reboot: unexpected argument \"now\"\nusage: reboot\n"},
		{name: "poweroff error", cmd: PowerOffCommand, line: "poweroff", f: func() error { return failed },
			want: "keel: powering off\nkeel: poweroff: ACPI reset register not found\n"},
		{name: "poweroff args", cmd: PowerOffCommand, line: "poweroff -f", f: func() error { panic("called") },
			want: "keel: poweroff: unexpected argument \"-f\"\nusage: poweroff\n"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exec(t, tt.line, tt.cmd(tt.f)); got != tt.want {
				t.Errorf("%s printed\n%q\nwant\n%q", tt.line, got, tt.want)
			}
		})
	}
}

func TestStandardCommands(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
		want string
	}{
		{name: "none", src: Sources{}, want: "echo version"},
		{name: "all", src: Sources{
			Version:  "v",
			CPUs:     func() []CPUInfo { return nil },
			Mem:      func() MemInfo { return MemInfo{} },
			Uptime:   func() time.Duration { return 0 },
			Log:      klog.New(klog.Config{}),
			Reboot:   func() error { return nil },
			PowerOff: func() error { return nil },
		}, want: "echo version cpus mem uptime log reboot poweroff"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, c := range StandardCommands(tt.src) {
				names = append(names, c.Name)
			}
			if got := strings.Join(names, " "); got != tt.want {
				t.Errorf("StandardCommands = %s, want %s", got, tt.want)
			}

			NewRegistry().MustRegister(StandardCommands(tt.src)...)
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0B"},
		{1023, "1023B"},
		{1024, "1K"},
		{1536, "1.5K"},
		{640 << 10, "640K"},
		{2 << 30, "2G"},
		{1<<40 + 1<<39, "1.5T"},
		{1 << 60, "1E"},
		{^uint64(0), "16.0E"},
	}

	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := FormatSize(tt.n); got != tt.want {
				t.Errorf("FormatSize(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	tests := []struct{ used, total, want uint64 }{
		{0, 10, 0},
		{1, 3, 33},
		{150, 100, 150},
		{^uint64(0), ^uint64(0), 100},
		{^uint64(0), 1, ^uint64(0)},
	}

	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.used, "/", tt.total), func(t *testing.T) {
			if got := percent(tt.used, tt.total); got != tt.want {
				t.Errorf("percent(%d, %d) = %d, want %d", tt.used, tt.total, got, tt.want)
			}
		})
	}
}

package shell

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keel-hv/keel/kernel/klog"
)

// CPUInfo describes one processor for `cpus`.
type CPUInfo struct {
	// Index is the kernel's number for the CPU, from 0.
	Index int
	// APICID is the CPU's local APIC ID.
	APICID uint32
	// Online is whether the CPU is running Keel.
	Online bool
	// Features lists the CPU's notable features, separated by spaces.
	Features string
}

// MemRegion is one range of the physical memory map.
type MemRegion struct {
	// Base is the first address.
	Base uint64
	// Length is the size in bytes.
	Length uint64
	// Type is the region's use as the firmware or Keel names it; regions
	// of Type "usable" count as RAM in the totals.
	Type string
}

// MemUsage is one use of memory by Keel, e.g. the Go heap or the frame
// allocator.
type MemUsage struct {
	// Name names the use.
	Name string
	// Used is the bytes in use.
	Used uint64
	// Total is the bytes set aside for the use, or 0 if it has no limit.
	Total uint64
}

// MemInfo is what `mem` prints.
type MemInfo struct {
	// Map is the physical memory map, in address order.
	Map []MemRegion
	// Usage is Keel's own use of memory.
	Usage []MemUsage
	// Notes are further lines, such as the mapped ranges.
	Notes []string
}

// LogSource is the kernel log as `log` reads it; *klog.Log is one.
type LogSource interface {
	// Tail returns the newest n lines, oldest first; all if n < 0.
	Tail(n int) []klog.Entry
	// Dropped returns how many old lines were dropped for lack of room.
	Dropped() uint64
}

// Sources are the kernel's data and actions behind the standard commands.
// A nil field leaves its command out.
type Sources struct {
	// Version is the Keel version, for `version`.
	Version string
	// CPUs lists the processors, for `cpus`.
	CPUs func() []CPUInfo
	// Mem describes memory, for `mem`.
	Mem func() MemInfo
	// Uptime returns the time since boot, for `uptime`.
	Uptime func() time.Duration
	// Log is the kernel log, for `log`.
	Log LogSource
	// Reboot resets the machine, for `reboot`; see RebootCommand.
	Reboot func() error
	// PowerOff turns the machine off, for `poweroff`; see
	// PowerOffCommand.
	PowerOff func() error
}

// StandardCommands returns `echo` and `version` and, for each source that
// is set, its command, ready for Registry.MustRegister.
func StandardCommands(src Sources) []Command {
	cmds := []Command{EchoCommand(), VersionCommand(src.Version)}

	if src.CPUs != nil {
		cmds = append(cmds, CPUsCommand(src.CPUs))
	}
	if src.Mem != nil {
		cmds = append(cmds, MemCommand(src.Mem))
	}
	if src.Uptime != nil {
		cmds = append(cmds, UptimeCommand(src.Uptime))
	}
	if src.Log != nil {
		cmds = append(cmds, LogCommand(src.Log))
	}
	if src.Reboot != nil {
		cmds = append(cmds, RebootCommand(src.Reboot))
	}
	if src.PowerOff != nil {
		cmds = append(cmds, PowerOffCommand(src.PowerOff))
	}

	return cmds
}

// noArgs returns a usage error if there are arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return Usagef("unexpected argument %q", args[0])
	}

	return nil
}

// EchoCommand returns `echo`, which prints its arguments separated by
// spaces: a marker for scripts and tests.
func EchoCommand() Command {
	return Command{
		Name: "echo",
		Args: "[TEXT...]",
		Help: "print the arguments\n" +
			"echo prints its arguments separated by single spaces, e.g. to mark a\n" +
			"point in a keel.run script.",
		Run: func(ctx *Context, args []string) error {
			ctx.Printf("%s\n", sanitize(strings.Join(args, " ")))
			return nil
		},
	}
}

// VersionCommand returns `version`, which prints
//
//	keel version VERSION (GO-VERSION GOOS/GOARCH)
func VersionCommand(version string) Command {
	if version == "" {
		version = "unknown"
	}

	return Command{
		Name: "version",
		Help: "print the Keel version and the Go toolchain that built it",
		Run: func(ctx *Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}

			ctx.Printf("keel version %s (%s %s/%s)\n", sanitize(version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// CPUsCommand returns `cpus`, which prints a table of the CPUs that cpus
// returns and a count:
//
//	CPU  APIC ID  STATE    FEATURES
//	  0        0  online   svm npt
//	  1        1  offline  svm npt
//	2 CPUs, 1 online
func CPUsCommand(cpus func() []CPUInfo) Command {
	return Command{
		Name: "cpus",
		Help: "list the processors: number, APIC ID, state and features",
		Run: func(ctx *Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}

			list := cpus()
			if len(list) == 0 {
				ctx.Printf("no CPUs reported\n")
				return nil
			}

			rows := make([][]string, len(list))
			online := 0
			for i, c := range list {
				state := "offline"
				if c.Online {
					state = "online"
					online++
				}

				features := sanitize(c.Features)
				if features == "" {
					features = "-"
				}

				rows[i] = []string{strconv.Itoa(c.Index), strconv.FormatUint(uint64(c.APICID), 10), state, features}
			}

			writeTable(ctx.Out, "", []string{"CPU", "APIC ID", "STATE", "FEATURES"},
				[]bool{true, true, false, false}, rows)
			ctx.Printf("%s, %d online\n", plural(len(list), "CPU"), online)
			return nil
		},
	}
}

// MemCommand returns `mem`, which prints the memory map and Keel's use of
// memory that mem returns:
//
//	memory map:
//	  START               END                 SIZE   TYPE
//	  0x0000000000000000  0x000000000009fbff  639K   usable
//	  0x0000000000100000  0x000000007ffdffff  2047M  usable
//	usable: 2047.6M in 2 regions
//	keel usage:
//	  NAME     USED   TOTAL  USE
//	  go heap  12.5M  64M    19%
func MemCommand(mem func() MemInfo) Command {
	return Command{
		Name: "mem",
		Help: "print the physical memory map and Keel's use of memory",
		Run: func(ctx *Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}

			info := mem()
			writeMemMap(ctx, info.Map)

			if len(info.Usage) > 0 {
				rows := make([][]string, len(info.Usage))
				for i, u := range info.Usage {
					total, pct := "-", "-"
					if u.Total > 0 {
						total = FormatSize(u.Total)
						pct = strconv.FormatUint(percent(u.Used, u.Total), 10) + "%"
					}

					rows[i] = []string{sanitize(u.Name), FormatSize(u.Used), total, pct}
				}

				ctx.Printf("keel usage:\n")
				writeTable(ctx.Out, "  ", []string{"NAME", "USED", "TOTAL", "USE"}, []bool{false, true, true, true}, rows)
			}

			for _, n := range info.Notes {
				ctx.Printf("%s\n", sanitize(n))
			}

			return nil
		},
	}
}

// writeMemMap prints the memory map part of `mem`.
func writeMemMap(ctx *Context, regions []MemRegion) {
	if len(regions) == 0 {
		ctx.Printf("memory map: none reported\n")
		return
	}

	rows := make([][]string, len(regions))
	var usable uint64
	n := 0
	for i, r := range regions {
		end := "-"
		if r.Length > 0 {
			last := r.Base + r.Length - 1
			if last < r.Base {
				last = ^uint64(0) // the region runs past the top of memory
			}
			end = fmt.Sprintf("%#016x", last)
		}

		if strings.EqualFold(r.Type, "usable") {
			usable += r.Length
			n++
		}

		rows[i] = []string{fmt.Sprintf("%#016x", r.Base), end, FormatSize(r.Length), sanitize(r.Type)}
	}

	ctx.Printf("memory map:\n")
	writeTable(ctx.Out, "  ", []string{"START", "END", "SIZE", "TYPE"}, nil, rows)
	ctx.Printf("usable: %s in %s\n", FormatSize(usable), plural(n, "region"))
}

// percent returns used/total in percent, rounded down, without overflow;
// total must not be 0.
func percent(used, total uint64) uint64 {
	hi, lo := bits.Mul64(used, 100)
	if hi >= total {
		return ^uint64(0)
	}

	q, _ := bits.Div64(hi, lo, total)
	return q
}

// UptimeCommand returns `uptime`, which prints the time since boot that
// uptime returns, as "up 02:03:04.567" or "up 3d 02:03:04.567".
func UptimeCommand(uptime func() time.Duration) Command {
	return Command{
		Name: "uptime",
		Help: "print the time since Keel booted",
		Run: func(ctx *Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}

			d := uptime()
			if d < 0 {
				return fmt.Errorf("the clock reports a negative uptime (%v): the TSC calibration is wrong", d)
			}

			ctx.Printf("up %s\n", FormatUptime(d))
			return nil
		},
	}
}

// FormatUptime formats a non-negative duration as [Dd ]HH:MM:SS.mmm.
func FormatUptime(d time.Duration) string {
	ms := int64(d / time.Millisecond)
	days := ms / (24 * 3600 * 1000)
	ms -= days * 24 * 3600 * 1000

	s := fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600_000, ms/60_000%60, ms/1000%60, ms%1000)
	if days > 0 {
		s = fmt.Sprintf("%dd %s", days, s)
	}

	return s
}

// LogCommand returns `log`, which prints the kernel log: all the lines it
// holds, or the newest N. When the oldest lines it printed are not the first
// ever logged, it says how many were dropped.
func LogCommand(src LogSource) Command {
	return Command{
		Name: "log",
		Args: "[N]",
		Help: "print the kernel log, or its newest N lines\n" +
			"Each line shows the seconds since boot, the level, the subsystem and\n" +
			"the message. The log keeps the newest lines that fit in its ring.",
		Run: func(ctx *Context, args []string) error {
			n := -1
			switch len(args) {
			case 0:
			case 1:
				v, err := strconv.ParseUint(args[0], 10, 31)
				switch {
				case err == nil:
					n = int(v)
				case errors.Is(err, strconv.ErrRange) && strings.Trim(args[0], "0123456789") == "":
					// More lines than any log holds: all of them.
				default:
					return Usagef("N must be a number of lines, not %q", args[0])
				}
			default:
				return Usagef("too many arguments")
			}

			lines := src.Tail(n)
			if d := src.Dropped(); d > 0 && (n < 0 || len(lines) < n) {
				ctx.Printf("(%s dropped before these)\n", plural(d, "older line"))
			}

			for _, e := range lines {
				ctx.Printf("%s\n", sanitize(e.String()))
			}

			return nil
		},
	}
}

// RebootCommand returns `reboot`, which says "keel: rebooting" and calls
// reboot. reboot does not return if it succeeds; if it returns, its error
// (or, for nil, one saying the machine is still running) is reported.
func RebootCommand(reboot func() error) Command {
	return powerCommand("reboot", "reset the machine", "rebooting", reboot)
}

// PowerOffCommand returns `poweroff`, which says "keel: powering off" and
// calls poweroff, as RebootCommand does with reboot.
func PowerOffCommand(poweroff func() error) Command {
	return powerCommand("poweroff", "turn the machine off", "powering off", poweroff)
}

// powerCommand returns a command that calls f, which does not return on
// success.
func powerCommand(name, help, doing string, f func() error) Command {
	return Command{
		Name: name,
		Help: help + "\nThe virtual machines are stopped without warning.",
		Run: func(ctx *Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}

			ctx.Printf("keel: %s\n", doing)
			if err := f(); err != nil {
				return err
			}

			return fmt.Errorf("%s returned: the machine is still running", name)
		},
	}
}

// plural returns "1 thing" or "N things".
func plural[N int | uint64](n N, thing string) string {
	if n == 1 {
		return "1 " + thing
	}

	return strconv.FormatUint(uint64(n), 10) + " " + thing + "s"
}

// FormatSize formats a byte count with a binary unit: B, K, M, G, T, P or
// E, the largest that leaves at least 1, with one decimal unless exact
// ("640K", "1.5G", "0B").
func FormatSize(n uint64) string {
	const units = "BKMGTPE"

	u, d := 0, uint64(1)
	for u < len(units)-1 && n >= d<<10 {
		d <<= 10
		u++
	}

	if n%d == 0 {
		return strconv.FormatUint(n/d, 10) + units[u:u+1]
	}

	return strconv.FormatFloat(float64(n)/float64(d), 'f', 1, 64) + units[u:u+1]
}

// sanitize returns s with control characters, C1 controls and invalid UTF-8
// replaced by '?', so that data cannot drive the terminal.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= DEL {
			clean = false
			break
		}
	}

	if clean {
		return s
	}

	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 || unicode.IsControl(r) {
			r = '?'
		}

		b.WriteRune(r)
		i += size
	}

	return b.String()
}

// writeTable writes rows as aligned columns, two spaces apart, each line
// starting with indent, after the header if it is not nil. Columns whose
// right is true are aligned right; trailing spaces are trimmed.
func writeTable(w io.Writer, indent string, header []string, right []bool, rows [][]string) {
	all := rows
	if header != nil {
		all = append([][]string{header}, rows...)
	}

	var widths []int
	for _, row := range all {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}

	var b strings.Builder
	for _, row := range all {
		b.Reset()
		b.WriteString(indent)
		for i, cell := range row {
			if i > 0 {
				b.WriteString("  ")
			}

			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i < len(right) && right[i] {
				b.WriteString(pad + cell)
			} else {
				b.WriteString(cell + pad)
			}
		}

		fmt.Fprintf(w, "%s\n", strings.TrimRight(b.String(), " "))
	}
}

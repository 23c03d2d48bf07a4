package config

import (
	"fmt"
	"strings"
)

// keyFunc parses the value v of a key into the section s.
type keyFunc func(p *parser, s *section, a at, v []token)

// keelKeys are the keys of [keel], in the order Format writes them.
var keelKeys = []struct {
	name string
	fn   keyFunc
}{
	{"console-log", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			for l := LogLevel(0); l < numLogLevels; l++ {
				if x == l.String() {
					p.cfg.ConsoleLog = l
					return
				}
			}
			p.err(a, "%q is not a log level (use debug, info, warn or error)", x)
		}
	}},
}

// vmKeys are the keys of [vm NAME], in the order Format writes them.
var vmKeys = []struct {
	name string
	fn   keyFunc
}{
	{"kernel", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok && p.fileName(a, x) {
			s.vm.Kernel = x
		}
	}},
	{"initrd", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok && p.fileName(a, x) {
			s.vm.Initrd = x
		}
	}},
	{"cmdline", func(p *parser, s *section, a at, v []token) {
		if len(v) > 1 {
			p.err(a, `quote a command line that has spaces or commas (cmdline = "console=ttyS0,115200 quiet")`)
			return
		}
		if x, ok := p.one(a, v); ok {
			if len(x) > MaxCmdline {
				p.err(a, "command line of %d bytes (at most %d)", len(x), MaxCmdline)
				return
			}
			s.vm.Cmdline = x
		}
	}},
	{"memory", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			n, err := ParseSize(x)
			if err != nil {
				p.err(a, "%v", err)
				return
			}
			s.vm.Memory = n
		}
	}},
	{"vcpus", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			n, valid := parseDecimal(x, MaxVCPUs)
			switch {
			case !valid:
				p.err(a, "%q is not a number (use 1 to %d)", x, MaxVCPUs)
			case n < 1 || n > MaxVCPUs:
				p.err(a, "%s is out of range (use 1 to %d)", x, MaxVCPUs)
			default:
				s.vm.VCPUs = int(n)
			}
		}
	}},
	{"devices", func(p *parser, s *section, a at, v []token) {
		items, ok := p.list(a, v)
		if !ok {
			return
		}
		var set DeviceSet
		for _, item := range items {
			if len(item) != 1 {
				p.err(a, "%q is not a device name (separate devices with commas)", joinTokens(item))
				return
			}
			name := item[0].text
			if name == "none" {
				if len(items) > 1 {
					p.err(a, "none stands alone (devices = none)")
					return
				}
				continue
			}
			d := deviceByName(name)
			if d == numDevices {
				if m := suggest(name, deviceNames[:]); m != "" {
					p.err(a, "unknown device %q (did you mean %s?)", name, m)
				} else {
					p.err(a, "unknown device %q (known: %s, or none)", name, strings.Join(deviceNames[:], ", "))
				}
				continue
			}
			if set.Has(d) {
				p.err(a, "%s is listed twice", d)
				continue
			}
			set |= 1 << d
		}
		s.vm.Devices = set
	}},
	{"debug-exit", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			n, valid := parsePort(x)
			switch {
			case !valid:
				p.err(a, "%q is not a port number (use e.g. 0xf4)", x)
			case n > 0xffff:
				p.err(a, "%s is out of range (ports are 0 to 0xffff)", x)
			default:
				s.vm.DebugExitPort = uint16(n)
			}
		}
	}},
	{"kind", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			for k := Kind(0); k < numKinds; k++ {
				if x == k.String() {
					s.vm.Kind = k
					return
				}
			}
			p.err(a, "%q is not a kind (use linux, multiboot or auto)", x)
		}
	}},
	{"modules", func(p *parser, s *section, a at, v []token) {
		items, ok := p.list(a, v)
		if !ok {
			return
		}
		var mods []Module
		for i, item := range items {
			if len(item) > 2 || len(item) == 2 && !item[1].quoted {
				p.err(a, "module %d: %q is not FILE or FILE \"STRING\" (quote the module's string)", i+1, joinTokens(item))
				continue
			}
			m := Module{File: item[0].text}
			if len(item) == 2 {
				m.Cmdline = item[1].text
				if len(m.Cmdline) > MaxCmdline {
					p.err(a, "module %d: string of %d bytes (at most %d)", i+1, len(m.Cmdline), MaxCmdline)
					continue
				}
			}
			if p.fileName(a, m.File) {
				mods = append(mods, m)
			}
		}
		s.vm.Modules = mods
	}},
	{"autostart", func(p *parser, s *section, a at, v []token) {
		if x, ok := p.one(a, v); ok {
			switch x {
			case "yes":
				s.vm.Autostart = true
			case "no":
				s.vm.Autostart = false
			default:
				p.err(a, "%q is not yes or no", x)
			}
		}
	}},
}

// joinTokens writes tokens back for an error message.
func joinTokens(v []token) string {
	parts := make([]string, len(v))
	for i, t := range v {
		parts[i] = t.text
		if t.quoted {
			parts[i] = quote(t.text)
		}
	}
	return strings.Join(parts, " ")
}

func deviceByName(name string) Device {
	for d := Device(0); d < numDevices; d++ {
		if deviceNames[d] == name {
			return d
		}
	}
	return numDevices
}

// sizeUnits are the suffixes of sizes, largest first.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}}

// ParseSize parses a memory size: decimal digits and a unit, K, M, G or T
// (KiB, MiB, GiB, TiB; lower case too), such as 256M. The size must be a
// multiple of MemoryAlign in [MinMemory, MaxMemory]. It returns the size
// in bytes, or an error that says what is wrong and shows an example.
func ParseSize(s string) (uint64, error) {
	const hint = " (use e.g. 256M or 2G)"
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size%s", s, hint)
	}
	unit := strings.ToUpper(s[i:])
	if unit == "" {
		return 0, fmt.Errorf("%q has no unit%s", s, hint)
	}
	var shift uint
	for _, u := range sizeUnits {
		if unit == u.suffix {
			shift = u.shift
		}
	}
	if shift == 0 {
		return 0, fmt.Errorf("%q is not a size%s", s, hint)
	}
	n, ok := parseDecimal(s[:i], MaxMemory>>shift)
	if !ok || n > MaxMemory>>shift {
		return 0, fmt.Errorf("%s is above the maximum %s", s, FormatSize(MaxMemory))
	}
	b := n << shift
	switch {
	case b < MinMemory:
		return 0, fmt.Errorf("%s is below the minimum %s", s, FormatSize(MinMemory))
	case b%MemoryAlign != 0:
		return 0, fmt.Errorf("%s is not a multiple of %s", s, FormatSize(MemoryAlign))
	}
	return b, nil
}

// FormatSize writes a size in bytes with the largest unit that divides it
// exactly (268435456 is 256M), as ParseSize reads it; sizes that are not a
// multiple of 1K are written as plain numbers, which ParseSize rejects.
func FormatSize(n uint64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprint(n)
}

// parseDecimal parses decimal digits. Values above limit come back as
// limit+1 with ok true, so that callers can say "out of range" without
// overflowing.
func parseDecimal(s string, limit uint64) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= limit {
			n = n*10 + uint64(c-'0')
		}
	}
	if n > limit {
		n = limit + 1
	}
	return n, true
}

// parsePort parses a port number: 0x and hex digits, or decimal digits.
// Values above 0xffff come back as 0x10000.
func parsePort(s string) (uint64, bool) {
	const limit = 0xffff
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		var n uint64
		for i := 2; i < len(s); i++ {
			c := s[i]
			var d byte
			switch {
			case '0' <= c && c <= '9':
				d = c - '0'
			case 'a' <= c && c <= 'f':
				d = c - 'a' + 10
			case 'A' <= c && c <= 'F':
				d = c - 'A' + 10
			default:
				return 0, false
			}
			if n <= limit {
				n = n<<4 | uint64(d)
			}
		}
		return min(n, limit+1), true
	}
	return parseDecimal(s, limit)
}

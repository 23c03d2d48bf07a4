package config

import (
	"fmt"
	"strings"
)

// String writes c as canonical configuration text: a [keel] section and
// one [vm NAME] section per VM with every key that has a value, defaults
// included, in a fixed order. Parse reads the text of a Config it returned
// back to an equal Config.
func (c *Config) String() string {
	var b strings.Builder
	kv := func(key, value string) { fmt.Fprintf(&b, "%-10s = %s\n", key, value) }

	b.WriteString("[keel]\n")
	kv("console-log", c.ConsoleLog.String())
	for _, vm := range c.VMs {
		fmt.Fprintf(&b, "\n[vm %s]\n", vm.Name)
		kv("kernel", value(vm.Kernel))
		if vm.Initrd != "" {
			kv("initrd", value(vm.Initrd))
		}
		if vm.Cmdline != "" {
			kv("cmdline", quote(vm.Cmdline))
		}
		kv("memory", FormatSize(vm.Memory))
		kv("vcpus", fmt.Sprint(vm.VCPUs))
		kv("devices", vm.Devices.String())
		if vm.Devices.Has(DevDebugExit) {
			kv("debug-exit", fmt.Sprintf("%#x", vm.DebugExitPort))
		}
		kv("kind", vm.Kind.String())
		if len(vm.Modules) > 0 {
			items := make([]string, len(vm.Modules))
			for i, m := range vm.Modules {
				items[i] = value(m.File)
				if m.Cmdline != "" {
					items[i] += " " + quote(m.Cmdline)
				}
			}
			kv("modules", strings.Join(items, ", "))
		}
		autostart := "no"
		if vm.Autostart {
			autostart = "yes"
		}
		kv("autostart", autostart)
	}
	return b.String()
}

// value writes s bare if it is a plain word, else quoted.
func value(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-+/@%~:", c) >= 0) {
			return quote(s)
		}
	}
	return s
}

// quote writes s as a string: in double quotes, with \" and \\ escaped.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

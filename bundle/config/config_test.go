package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// vm returns a VM with the defaults Parse fills in.
func vm(name, kernel string) VM {
	return VM{Name: name, Kernel: kernel, Memory: DefaultMemory, VCPUs: DefaultVCPUs, Devices: DefaultDevices}
}

func TestParseGood(t *testing.T) {
	full := vm("demo", "vmlinuz")
	full.Initrd = "initrd.cpio"
	full.Cmdline = "console=ttyS0 quiet"
	full.Memory = 256 << 20
	full.VCPUs = 2
	full.Devices = DefaultDevices | 1<<DevDebugExit
	full.DebugExitPort = 0xf4
	full.Kind = KindLinux
	full.Autostart = true

	mb := vm("mb-1", "boot/kernel.elf")
	mb.Kind = KindMultiboot
	mb.Modules = []Module{{File: "a.bin", Cmdline: `arg "quoted" \ back`}, {File: "b.bin"}, {File: "my file.bin", Cmdline: "x, y # z"}}
	mb.Devices = 1<<DevSerial | 1<<DevDebugExit
	mb.DebugExitPort = 0x501
	mb.Memory = 1 << 40
	mb.VCPUs = 64

	tests := []struct {
		name string
		src  string
		want Config
	}{
		{"empty", "", Config{ConsoleLog: LogInfo}},
		{"comments only", "# nothing\n\n   # more\n", Config{ConsoleLog: LogInfo}},
		{"minimal", "[vm a]\nkernel = k\n", Config{ConsoleLog: LogInfo, VMs: []VM{vm("a", "k")}}},
		{
			name: "the example of the brief",
			src: `# comment
[keel]
console-log = warn

[vm demo]
kernel  = vmlinuz            # file name inside the bundle
initrd  = initrd.cpio        # optional
cmdline = "console=ttyS0 quiet"
memory  = 256M               # K/M/G suffixes
vcpus   = 2
devices = serial, rtc, pit, pic, ioapic, pmtimer, debug-exit
debug-exit = 0xf4
kind    = linux
autostart = yes
`,
			want: Config{ConsoleLog: LogWarn, VMs: []VM{full}},
		},
		{
			name: "multiboot, quoting, odd spacing, CRLF, BOM",
			src: "\ufeff[vm mb-1]\r\n" +
				"\tkernel=boot/kernel.elf\r\n" +
				`  modules = a.bin "arg \"quoted\" \\ back" ,b.bin,"my file.bin" "x, y # z"  # mods` + "\r\n" +
				"kind = multiboot\r\n" +
				"devices = debug-exit,serial\n" +
				"debug-exit = 1281\n" +
				"memory = 1t\n" +
				"vcpus = 064\n" +
				"[ keel ]\n",
			want: Config{ConsoleLog: LogInfo, VMs: []VM{mb}},
		},
		{
			name: "defaults, devices none, sizes",
			src:  "[vm a]\nkernel = k\nmemory = 16384K\ndevices = none\nautostart = no\nkind = auto\ncmdline = \"\"\n[vm b]\nkernel = k\nmemory = 2G\ndevices = debug-exit\n",
			want: Config{ConsoleLog: LogInfo, VMs: []VM{
				func() VM { v := vm("a", "k"); v.Memory = 16 << 20; v.Devices = 0; return v }(),
				func() VM {
					v := vm("b", "k")
					v.Memory = 2 << 30
					v.Devices = 1 << DevDebugExit
					v.DebugExitPort = 0xf4
					return v
				}(),
			}},
		},
		{
			name: "longest name, cmdline word",
			src:  "[vm " + strings.Repeat("a", 31) + "-]\nkernel = k\ncmdline = quiet\n[vm 0]\nkernel=k\n",
			want: Config{ConsoleLog: LogInfo, VMs: []VM{
				func() VM { v := vm(strings.Repeat("a", 31)+"-", "k"); v.Cmdline = "quiet"; return v }(),
				vm("0", "k"),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("keel.conf", []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, tt.want)
			}
			// Canonical text reads back to the same Config.
			again, err := Parse("canonical", []byte(got.String()), nil)
			if err != nil {
				t.Fatalf("Parse(String()):\n%v\ntext:\n%s", err, got.String())
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("Parse(String()) =\n%+v\nwant\n%+v", again, got)
			}
		})
	}
}

// TestString pins the canonical text.
func TestString(t *testing.T) {
	src := `[vm demo]
kernel = vmlinuz
initrd = "my initrd"
cmdline = "console=ttyS0 \"x\""
devices = serial, debug-exit
kind = linux
autostart = yes
[vm mb]
kernel = k.elf
modules = a.bin "a.bin arg", b.bin
memory = 1536M
`
	c, err := Parse("keel.conf", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `[keel]
console-log = info

[vm demo]
kernel     = vmlinuz
initrd     = "my initrd"
cmdline    = "console=ttyS0 \"x\""
memory     = 256M
vcpus      = 1
devices    = serial, debug-exit
debug-exit = 0xf4
kind       = linux
autostart  = yes

[vm mb]
kernel     = k.elf
memory     = 1536M
vcpus      = 1
devices    = serial, rtc, pit, pic, ioapic, pmtimer
kind       = auto
modules    = a.bin "a.bin arg", b.bin
autostart  = no
`
	if got := c.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every error line
	}{
		{"bad size", "[vm demo]\nkernel = k\n\n\n\n\nmemory = 12Q\n",
			[]string{`keel.conf:7: vm "demo": memory: "12Q" is not a size (use e.g. 256M or 2G)`}},
		{"sizes", "[vm a]\nkernel=k\nmemory=256\n[vm b]\nkernel=k\nmemory=8M\n[vm c]\nkernel=k\nmemory=2T\n[vm d]\nkernel=k\nmemory=16385K\n[vm e]\nkernel=k\nmemory=99999999999999999999999G\n[vm f]\nkernel=k\nmemory=M\n",
			[]string{
				`keel.conf:3: vm "a": memory: "256" has no unit (use e.g. 256M or 2G)`,
				`keel.conf:6: vm "b": memory: 8M is below the minimum 16M`,
				`keel.conf:9: vm "c": memory: 2T is above the maximum 1T`,
				`keel.conf:12: vm "d": memory: 16385K is not a multiple of 4K`,
				`keel.conf:15: vm "e": memory: 99999999999999999999999G is above the maximum 1T`,
				`keel.conf:18: vm "f": memory: "M" is not a size (use e.g. 256M or 2G)`,
			}},
		{"vcpus", "[vm a]\nkernel=k\nvcpus=0\n[vm b]\nkernel=k\nvcpus=65\n[vm c]\nkernel=k\nvcpus=two\n[vm d]\nkernel=k\nvcpus=-1\n",
			[]string{
				`keel.conf:3: vm "a": vcpus: 0 is out of range (use 1 to 64)`,
				`keel.conf:6: vm "b": vcpus: 65 is out of range (use 1 to 64)`,
				`keel.conf:9: vm "c": vcpus: "two" is not a number (use 1 to 64)`,
				`keel.conf:12: vm "d": vcpus: "-1" is not a number (use 1 to 64)`,
			}},
		{"unknown key", "[vm a]\nkernel=k\nmemroy = 1G\ncpus = 2\nram = 1G\n[keel]\nloglevel = info\n",
			[]string{
				`keel.conf:3: vm "a": memroy: unknown key (did you mean memory?)`,
				`keel.conf:4: vm "a": cpus: unknown key (did you mean vcpus?)`,
				`keel.conf:5: vm "a": ram: unknown key (known keys: kernel, initrd, cmdline, memory, vcpus, devices, debug-exit, kind, modules, autostart)`,
				`keel.conf:7: [keel]: loglevel: unknown key (known keys: console-log)`,
			}},
		{"duplicate key", "[vm a]\nkernel=k\nmemory=1G\nmemory=2G\n",
			[]string{`keel.conf:4: vm "a": memory: set twice (first on line 3)`}},
		{"duplicate VM", "[vm a]\nkernel=k\n[vm b]\nkernel=k\n[vm a]\nkernel=k\nvcpus=x\n",
			[]string{
				`keel.conf:5: vm "a": defined twice (first on line 1)`,
				`keel.conf:7: vm "a": vcpus: "x" is not a number (use 1 to 64)`,
			}},
		{"bad VM names", "[vm Demo]\nkernel=k\n[vm -a]\nkernel=k\n[vm " + strings.Repeat("a", 33) + "]\nkernel=k\n[vm a_b]\nkernel=k\n[vm]\n[vm a b]\n",
			[]string{
				`keel.conf:1: vm "Demo": not a valid VM name (use 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit)`,
				`keel.conf:3: vm "-a": not a valid VM name (use 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit)`,
				`keel.conf:5: vm "` + strings.Repeat("a", 33) + `": not a valid VM name (use 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit)`,
				`keel.conf:7: vm "a_b": not a valid VM name (use 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit)`,
				`keel.conf:9: [vm] without a name (write [vm NAME])`,
				`keel.conf:10: "[vm a b]": a VM name is one word (write [vm NAME])`,
			}},
		{"missing kernel", "[vm a]\nmemory = 1G\n\n[vm b]\n",
			[]string{
				`keel.conf:1: vm "a": kernel: missing (every VM needs kernel = FILE)`,
				`keel.conf:4: vm "b": kernel: missing (every VM needs kernel = FILE)`,
			}},
		{"sections", "kernel = k\nmemory = 1G\n[net]\nfoo = bar\n[vm a\n[keel] x\n[keel]\n[keel]\n",
			[]string{
				`keel.conf:1: "kernel = k" is outside a section (start one with [vm NAME] or [keel])`,
				`keel.conf:3: unknown section "[net]" (sections are [keel] and [vm NAME])`,
				`keel.conf:5: "[vm a": missing ']' (sections are [keel] and [vm NAME])`,
				`keel.conf:6: "x" after the section header (comments start with #)`,
				`keel.conf:8: [keel]: a second [keel] section (the first is on line 7: merge them)`,
			}},
		{"syntax", "[vm a]\nkernel k\nKernel = k\n= k\ncmdline = \"abc\ncmdline = \"a\\nb\"\ninitrd = \"a\"b\ninitrd = a\"b\"\nkernel = \"k\\\n",
			[]string{
				`keel.conf:2: vm "a": "kernel k" is not KEY = VALUE`,
				`keel.conf:3: vm "a": "Kernel" is not a key (keys are lower-case words such as memory)`,
				`keel.conf:4: vm "a": "" is not a key (keys are lower-case words such as memory)`,
				`keel.conf:5: vm "a": cmdline: unterminated string (a closing " is missing)`,
				`keel.conf:6: vm "a": cmdline: set twice (first on line 5)`,
				`keel.conf:7: vm "a": initrd: 'b' right after a string (separate values with spaces or commas)`,
				`keel.conf:8: vm "a": initrd: set twice (first on line 7)`,
				`keel.conf:9: vm "a": kernel: unterminated string (a closing " is missing)`,
			}},
		{"string escapes and words", "[vm a]\nkernel = k\ncmdline = \"a\\nb\"\ninitrd = a\"b\"\n[vm b]\nkernel = \"k\" \"l\"\ninitrd = a, b\ncmdline = console=ttyS0,115200\n[vm c]\nkernel =\ninitrd = \"\"\ncmdline = a b\n",
			[]string{
				`keel.conf:3: vm "a": cmdline: unknown escape \n in a string (only \" and \\ are escapes)`,
				`keel.conf:4: vm "a": initrd: a quote inside "a\"" (quote the whole value)`,
				`keel.conf:6: vm "b": kernel: expected one value, found 2 (quote a value that has spaces: kernel = "...")`,
				`keel.conf:7: vm "b": initrd: expected one value, not a list`,
				`keel.conf:8: vm "b": cmdline: quote a command line that has spaces or commas (cmdline = "console=ttyS0,115200 quiet")`,
				`keel.conf:10: vm "c": kernel: empty value`,
				`keel.conf:11: vm "c": initrd: empty file name`,
				`keel.conf:12: vm "c": cmdline: quote a command line that has spaces or commas (cmdline = "console=ttyS0,115200 quiet")`,
			}},
		{"file names", "[vm a]\nkernel = /boot/vmlinuz\ninitrd = ../x\n[vm b]\nkernel = ./vmlinuz\ninitrd = .\n[vm c]\nkernel = TRAILER!!!\ninitrd = \"a//b\"\n",
			[]string{
				`keel.conf:2: vm "a": kernel: "/boot/vmlinuz" is not a file name in the bundle: absolute name (archive names are relative: build it from inside the directory, e.g. cd DIR && find . | cpio -o -H newc)`,
				`keel.conf:3: vm "a": initrd: "../x" is not a file name in the bundle: name with a ".." element (names must stay inside the archive)`,
				`keel.conf:5: vm "b": kernel: "./vmlinuz" is not a clean file name (write "vmlinuz")`,
				`keel.conf:6: vm "b": initrd: "." is not a file name (it names the bundle's root)`,
				`keel.conf:8: vm "c": kernel: "TRAILER!!!" is not a file name in the bundle: a file named TRAILER!!! would end the archive`,
				`keel.conf:9: vm "c": initrd: "a//b" is not a clean file name (write "a/b")`,
			}},
		{"devices", "[vm a]\nkernel=k\ndevices = serial, usb, serial, pmtmer\n[vm b]\nkernel=k\ndevices = none, serial\n[vm c]\nkernel=k\ndevices = serial,, rtc\n[vm d]\nkernel=k\ndevices = serial rtc\n[vm e]\nkernel=k\ndevices =\n",
			[]string{
				`keel.conf:3: vm "a": devices: unknown device "usb" (known: serial, rtc, pit, pic, ioapic, pmtimer, debug-exit, or none)`,
				`keel.conf:3: vm "a": devices: serial is listed twice`,
				`keel.conf:3: vm "a": devices: unknown device "pmtmer" (did you mean pmtimer?)`,
				`keel.conf:6: vm "b": devices: none stands alone (devices = none)`,
				`keel.conf:9: vm "c": devices: empty list item (a comma too many?)`,
				`keel.conf:12: vm "d": devices: "serial rtc" is not a device name (separate devices with commas)`,
				`keel.conf:15: vm "e": devices: empty value`,
			}},
		{"debug-exit", "[vm a]\nkernel=k\ndebug-exit = 0xf4\n[vm b]\nkernel=k\ndevices = serial\ndebug-exit = 0xf4\n[vm c]\nkernel=k\ndevices=debug-exit\ndebug-exit = 0x10000\n[vm d]\nkernel=k\ndevices=debug-exit\ndebug-exit = f4\n[vm e]\nkernel=k\ndevices=debug-exit\ndebug-exit = 0x\n",
			[]string{
				`keel.conf:3: vm "a": debug-exit: set, but the default devices do not include debug-exit (list it: devices = serial, rtc, pit, pic, ioapic, pmtimer, debug-exit)`,
				`keel.conf:7: vm "b": debug-exit: set, but debug-exit is not in devices (add it to the list)`,
				`keel.conf:11: vm "c": debug-exit: 0x10000 is out of range (ports are 0 to 0xffff)`,
				`keel.conf:15: vm "d": debug-exit: "f4" is not a port number (use e.g. 0xf4)`,
				`keel.conf:19: vm "e": debug-exit: "0x" is not a port number (use e.g. 0xf4)`,
			}},
		{"kind, autostart, console-log", "[keel]\nconsole-log = loud\n[vm a]\nkernel=k\nkind = elf\nautostart = true\n",
			[]string{
				`keel.conf:2: [keel]: console-log: "loud" is not a log level (use debug, info, warn or error)`,
				`keel.conf:5: vm "a": kind: "elf" is not a kind (use linux, multiboot or auto)`,
				`keel.conf:6: vm "a": autostart: "true" is not yes or no`,
			}},
		{"modules", "[vm a]\nkernel=k\nmodules = a.bin arg, b.bin \"x\" \"y\", /c\n[vm b]\nkernel=k\nkind=linux\nmodules=a\n[vm c]\nkernel=k\nkind=multiboot\ninitrd=i\n[vm d]\nkernel=k\ninitrd=i\nmodules=m\n",
			[]string{
				`keel.conf:3: vm "a": modules: module 1: "a.bin arg" is not FILE or FILE "STRING" (quote the module's string)`,
				`keel.conf:3: vm "a": modules: module 2: "b.bin \"x\" \"y\"" is not FILE or FILE "STRING" (quote the module's string)`,
				`keel.conf:3: vm "a": modules: "/c" is not a file name in the bundle: absolute name (archive names are relative: build it from inside the directory, e.g. cd DIR && find . | cpio -o -H newc)`,
				`keel.conf:7: vm "b": modules: a Linux kernel takes an initrd, not modules (kind = linux)`,
				`keel.conf:11: vm "c": initrd: a Multiboot kernel takes modules, not an initrd (kind = multiboot)`,
				`keel.conf:15: vm "d": initrd and modules: a VM has an initrd (Linux) or modules (Multiboot), not both`,
			}},
		{"lengths", "[vm a]\nkernel=k\ncmdline=\"" + strings.Repeat("x", MaxCmdline+1) + "\"\nmodules = m \"" + strings.Repeat("y", MaxCmdline+1) + "\"\n",
			[]string{
				`keel.conf:3: vm "a": cmdline: command line of 2048 bytes (at most 2047)`,
				`keel.conf:4: vm "a": modules: module 1: string of 2048 bytes (at most 2047)`,
			}},
		{"text", "[vm a]\nkernel=k\x01\ncmdline=\"\xff\"\n",
			[]string{
				`keel.conf:2: vm "a": control character U+0001 (only tabs and printable text)`,
				`keel.conf:3: vm "a": not UTF-8 text`,
			}},
		{"too large", "#" + strings.Repeat("x", MaxSize),
			[]string{`keel.conf: 1048577 bytes: a configuration is at most 1048576 bytes (guest images go in the bundle beside it)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("keel.conf", []byte(tt.src), nil)
			if err == nil {
				t.Fatalf("Parse accepted it:\n%s", c)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseTooManyErrors(t *testing.T) {
	src := "[vm a]\nkernel=k\n" + strings.Repeat("vcpus = x\n", 50)
	_, err := Parse("keel.conf", []byte(src), nil)
	list := err.(ErrorList)
	if len(list) != MaxErrors+1 {
		t.Fatalf("%d errors, want %d and the note", len(list), MaxErrors)
	}
	if got, want := list[MaxErrors].Error(), "keel.conf: too many errors (20 shown): fix these and check again"; got != want {
		t.Errorf("last error %q, want %q", got, want)
	}
	if list[0].Line != 3 || list[1].Line != 4 {
		t.Errorf("first errors on lines %d and %d, want 3 and 4", list[0].Line, list[1].Line)
	}
}

// TestFileCheck checks that every file name reaches the check, and that its
// errors name the line and key.
func TestFileCheck(t *testing.T) {
	src := "[vm a]\nkernel = vmlinuz\ninitrd = initrd\n[vm b]\nkernel = vmlinuz\nmodules = m1 \"x\", gone\n"
	var asked []string
	check := func(name string) error {
		asked = append(asked, name)
		if name == "gone" || name == "initrd" {
			return errors.New("not in the bundle")
		}
		return nil
	}
	_, err := Parse("keel.conf", []byte(src), check)
	want := `keel.conf:3: vm "a": initrd: "initrd": not in the bundle` + "\n" +
		`keel.conf:6: vm "b": modules: "gone": not in the bundle`
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
	if want := []string{"vmlinuz", "initrd", "vmlinuz", "m1", "gone"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("checked %q, want %q", asked, want)
	}
}

func TestFiles(t *testing.T) {
	c, err := Parse("keel.conf", []byte("[vm a]\nkernel=k\ninitrd=i\n[vm b]\nkernel=k\nmodules=m, i2, m\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Files(), []string{"k", "i", "m", "i2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}
	if c.VM("b") == nil || c.VM("b").Modules[1].File != "i2" || c.VM("x") != nil {
		t.Errorf("VM lookup wrong")
	}
}

func TestSizes(t *testing.T) {
	for _, tt := range []struct {
		s string
		n uint64
	}{{"16M", 16 << 20}, {"16384k", 16 << 20}, {"1536M", 1536 << 20}, {"1T", 1 << 40}, {"3g", 3 << 30}, {"17412K", 17412 << 10}} {
		n, err := ParseSize(tt.s)
		if err != nil || n != tt.n {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.s, n, err, tt.n)
		}
		if back, _ := ParseSize(FormatSize(n)); back != n {
			t.Errorf("FormatSize(%d) = %q does not read back", n, FormatSize(n))
		}
	}
	if got := FormatSize(17412 << 10); got != "17412K" {
		t.Errorf("FormatSize = %q", got)
	}
}

func TestDeviceSet(t *testing.T) {
	if got := DefaultDevices.String(); got != "serial, rtc, pit, pic, ioapic, pmtimer" {
		t.Errorf("DefaultDevices = %q", got)
	}
	if DefaultDevices.Has(DevDebugExit) || !DefaultDevices.Has(DevIOAPIC) || DefaultDevices.Has(numDevices) {
		t.Errorf("Has is wrong")
	}
	if got := DeviceSet(0).String(); got != "none" {
		t.Errorf("empty set = %q", got)
	}
	if Device(99).String() != "device(99)" || Kind(9).String() != "kind(9)" || LogLevel(-1).String() != "level(-1)" {
		t.Errorf("out-of-range names wrong")
	}
}

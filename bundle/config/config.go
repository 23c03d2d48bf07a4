// Package config parses keel.conf, the configuration file of Keel's boot
// bundle: which VMs to create, from which kernel, initrd and modules in the
// bundle, with how much memory, how many vCPUs and which emulated devices.
//
// The format is line-based and meant to be written by hand (docs/bundle.md
// is the reference):
//
//	# comment
//	[keel]
//	console-log = info
//
//	[vm demo]
//	kernel    = vmlinuz
//	initrd    = initrd.cpio
//	cmdline   = "console=ttyS0 quiet"
//	memory    = 256M
//	vcpus     = 2
//	devices   = serial, rtc, pit, pic, ioapic, pmtimer, debug-exit
//	debug-exit = 0xf4
//	kind      = linux
//	autostart = yes
//
// Parse validates strictly and reports every problem it finds (up to
// MaxErrors), each with the file, line, section and key, in an ErrorList.
// Its result is a plain Config with every default filled in; Config.String
// writes it back as canonical text that Parse reads to the same Config.
//
// The package is pure Go and host-testable: the kernel (GOOS=tamago) parses
// the bundle's configuration with it, and the host tool keel-bundle
// validates with the same code before it builds a bundle.
package config

import (
	"fmt"
	"strings"
)

// Limits and defaults.
const (
	// MinMemory and MaxMemory bound a VM's memory, in bytes.
	MinMemory = 16 << 20
	MaxMemory = 1 << 40
	// MemoryAlign is the granule of memory sizes: a 4 KiB page.
	MemoryAlign = 4 << 10
	// DefaultMemory is a VM's memory when the memory key is absent.
	DefaultMemory = 256 << 20

	// MaxVCPUs is the largest number of vCPUs a VM can have.
	MaxVCPUs = 64
	// DefaultVCPUs is a VM's vCPU count when the vcpus key is absent.
	DefaultVCPUs = 1

	// MaxCmdline is the longest command line, for the kernel or a module,
	// in bytes without the NUL: Linux's x86 COMMAND_LINE_SIZE (2048) less
	// the NUL.
	MaxCmdline = 2047

	// MaxNameLen is the longest VM name.
	MaxNameLen = 32

	// DefaultDebugExitPort is the debug-exit device's port when the
	// debug-exit key is absent: the one QEMU's isa-debug-exit is usually
	// given (iobase=0xf4).
	DefaultDebugExitPort = 0xf4

	// MaxSize is the largest configuration file accepted, in bytes.
	MaxSize = 1 << 20
	// MaxErrors is how many errors Parse reports before it stops.
	MaxErrors = 20
)

// Config is a parsed configuration.
type Config struct {
	// ConsoleLog is the least severe kernel log level mirrored to the
	// serial console ([keel] console-log; default LogInfo).
	ConsoleLog LogLevel
	// VMs are the [vm NAME] sections in file order.
	VMs []VM
}

// VM is one [vm NAME] section with its defaults applied.
type VM struct {
	// Name matches [a-z0-9][a-z0-9-]{0,31} and is unique in the file.
	Name string
	// Kernel is the guest kernel's file name in the bundle (required).
	Kernel string
	// Initrd is the initial ramdisk's file name in the bundle, or "".
	Initrd string
	// Cmdline is the kernel command line, at most MaxCmdline bytes.
	Cmdline string
	// Memory is the guest's RAM in bytes: a multiple of MemoryAlign in
	// [MinMemory, MaxMemory]; DefaultMemory when not given.
	Memory uint64
	// VCPUs is in [1, MaxVCPUs]; DefaultVCPUs when not given.
	VCPUs int
	// Devices are the emulated devices; DefaultDevices when not given.
	Devices DeviceSet
	// DebugExitPort is the debug-exit device's I/O port when Devices has
	// DevDebugExit (DefaultDebugExitPort when not given), else 0.
	DebugExitPort uint16
	// Kind says how to load Kernel; KindAuto detects it from the image.
	Kind Kind
	// Modules are Multiboot modules, in order.
	Modules []Module
	// Autostart says whether Keel starts the VM at boot (default false).
	Autostart bool
}

// Module is one Multiboot module.
type Module struct {
	// File is the module's file name in the bundle.
	File string
	// Cmdline is the module's string, passed to the guest as given ("" when
	// none was written). Kernels that expect the module's name first need
	// it written here: modules = a.bin "a.bin arg".
	Cmdline string
}

// Files returns the distinct bundle file names the configuration refers
// to, in the order they first appear.
func (c *Config) Files() []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, vm := range c.VMs {
		add(vm.Kernel)
		add(vm.Initrd)
		for _, m := range vm.Modules {
			add(m.File)
		}
	}
	return names
}

// VM returns the VM called name, or nil.
func (c *Config) VM(name string) *VM {
	for i := range c.VMs {
		if c.VMs[i].Name == name {
			return &c.VMs[i]
		}
	}
	return nil
}

// Kind is how a guest kernel is loaded.
type Kind uint8

// The kinds.
const (
	// KindAuto detects the kind from the image (kind = auto, the default).
	KindAuto Kind = iota
	// KindLinux is a Linux bzImage loaded per the x86 boot protocol.
	KindLinux
	// KindMultiboot is a Multiboot (version 1) kernel.
	KindMultiboot
	numKinds
)

var kindNames = [numKinds]string{"auto", "linux", "multiboot"}

// String returns the kind's name in the configuration.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// LogLevel is a kernel log level; the values follow kernel/klog's Level.
type LogLevel int8

// The log levels, from least to most severe.
const (
	// LogDebug is detail for developers.
	LogDebug LogLevel = iota
	// LogInfo is normal operation (the default).
	LogInfo
	// LogWarn is something unexpected that Keel recovered from.
	LogWarn
	// LogError is a failure that lost work or a feature.
	LogError
	numLogLevels
)

var logLevelNames = [numLogLevels]string{"debug", "info", "warn", "error"}

// String returns the level's name in the configuration.
func (l LogLevel) String() string {
	if l >= 0 && l < numLogLevels {
		return logLevelNames[l]
	}
	return fmt.Sprintf("level(%d)", int8(l))
}

// Device is an emulated device a VM can have.
type Device uint8

// The devices, in the order the configuration lists them.
const (
	// DevSerial is a 16550A UART, the guest's COM1.
	DevSerial Device = iota
	// DevRTC is the MC146818 real-time clock and CMOS.
	DevRTC
	// DevPIT is the 8254 programmable interval timer.
	DevPIT
	// DevPIC is the pair of 8259A interrupt controllers.
	DevPIC
	// DevIOAPIC is the I/O APIC.
	DevIOAPIC
	// DevPMTimer is the ACPI power-management timer.
	DevPMTimer
	// DevDebugExit is an I/O port that ends the VM with the value written
	// to it, like QEMU's isa-debug-exit (for tests).
	DevDebugExit
	numDevices
)

var deviceNames = [numDevices]string{"serial", "rtc", "pit", "pic", "ioapic", "pmtimer", "debug-exit"}

// String returns the device's name in the configuration.
func (d Device) String() string {
	if d < numDevices {
		return deviceNames[d]
	}
	return fmt.Sprintf("device(%d)", uint8(d))
}

// DeviceSet is a set of devices, one bit per Device.
type DeviceSet uint32

// DefaultDevices is the set a VM gets when its devices key is absent: a
// PC's platform devices, without debug-exit.
const DefaultDevices = DeviceSet(1<<DevSerial | 1<<DevRTC | 1<<DevPIT | 1<<DevPIC | 1<<DevIOAPIC | 1<<DevPMTimer)

// Has reports whether d is in s.
func (s DeviceSet) Has(d Device) bool { return d < numDevices && s&(1<<d) != 0 }

// List returns the devices of s in configuration order.
func (s DeviceSet) List() []Device {
	var l []Device
	for d := Device(0); d < numDevices; d++ {
		if s.Has(d) {
			l = append(l, d)
		}
	}
	return l
}

// String returns the set as the configuration writes it: names separated
// by ", ", or "none".
func (s DeviceSet) String() string {
	l := s.List()
	if len(l) == 0 {
		return "none"
	}
	names := make([]string, len(l))
	for i, d := range l {
		names[i] = d.String()
	}
	return strings.Join(names, ", ")
}

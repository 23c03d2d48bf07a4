// Package machine assembles a PC virtual machine from a description: guest
// RAM and vCPUs on the hypervisor core (hv), the platform devices Linux and
// Multiboot kernels expect (16550A UART, i8259 PICs, IOAPIC, a local APIC
// per vCPU, i8254 PIT, CMOS RTC, ACPI PM block with its timer and power
// button, PCI host bridge, i8042, reset register, optional debug-exit
// port, kvmclock), ACPI tables, and the kernel loaded by the Linux boot
// protocol or Multiboot. It wires the ISA interrupts to both the PIC and
// the IOAPIC, puts each vCPU's local APIC in front of its interrupt lines,
// and turns the guest's power-off, reset and debug-exit into VM stops.
//
// The package is pure Go and host-testable: it runs under plain `go test`
// with a fake backend.
package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-hv/keel/devices/debugexit"
	"github.com/keel-hv/keel/devices/i8042"
	"github.com/keel-hv/keel/devices/ioapic"
	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/kvmclock"
	"github.com/keel-hv/keel/devices/lapic"
	"github.com/keel-hv/keel/devices/pci"
	"github.com/keel-hv/keel/devices/pic"
	"github.com/keel-hv/keel/devices/pit"
	"github.com/keel-hv/keel/devices/pmtimer"
	"github.com/keel-hv/keel/devices/rtc"
	"github.com/keel-hv/keel/devices/uart"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/firmware/acpitables"
	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/cpuid"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/linux"
	"github.com/keel-hv/keel/loader/multiboot"
)

// PC addresses and interrupt numbers of the devices (the IBM PC/AT layout
// every x86 operating system assumes).
const (
	COM1_PORT       = 0x3f8
	COM1_IRQ        = 4
	PIT_IRQ         = 0 // routed to IOAPIC pin 2 (ACPI interrupt source override)
	PIT_GSI         = 2
	KBD_IRQ         = 1
	RTC_IRQ         = 8
	SCI_IRQ         = 9
	AUX_IRQ         = 12
	I8042_DATA_PORT = 0x60
	I8042_CMD_PORT  = 0x64
	RTC_PORT        = 0x70
	PCI_CONFIG_PORT = 0xcf8
	PM_PORT         = pmtimer.DEFAULT_PORT_BASE
	LAPIC_BASE      = 0xfee00000
	IOAPIC_BASE     = 0xfec00000
	// ISA_IRQS is the number of ISA interrupt lines.
	ISA_IRQS = 16
	// S5_SLP_TYP is the sleep type of \_S5 in the guest's DSDT.
	S5_SLP_TYP = 5
	// KVM_CPUID_BASE is where the KVM-compatible paravirtual leaves sit
	// (Linux scans 4000_0000h-4000_FF00h in steps of 100h for them),
	// above Keel's own at 4000_0000h.
	KVM_CPUID_BASE = 0x40000100
)

// Kind is the boot protocol of a guest kernel.
type Kind int

// Kernel kinds.
const (
	// KindAuto detects the kind from the image.
	KindAuto Kind = iota
	// KindLinux is a bzImage booted by the Linux boot protocol.
	KindLinux
	// KindMultiboot is a Multiboot v1 kernel.
	KindMultiboot
)

// Devices selects the optional devices. The local APICs, the PCI host
// bridge, the i8042 and the reset register are always there.
type Devices struct {
	Serial, RTC, PIT, PIC, IOAPIC, PMTimer, DebugExit bool
	// DebugExitPort is the debug-exit device's port (1 byte wide).
	DebugExitPort uint16
}

// AllDevices is the default set: everything but debug-exit.
func AllDevices() Devices {
	return Devices{Serial: true, RTC: true, PIT: true, PIC: true, IOAPIC: true, PMTimer: true}
}

// Spec describes a machine.
type Spec struct {
	// Name names the VM; VCPUs and Memory size it.
	Name   string
	VCPUs  int
	Memory uint64
	// Kind, Kernel, Initrd, Cmdline and Modules are what to boot
	// (Initrd for Linux, Modules for Multiboot).
	Kind    Kind
	Kernel  []byte
	Initrd  []byte
	Cmdline string
	Modules []multiboot.Module
	// Devices selects the devices.
	Devices Devices
}

// Env is what the host provides.
type Env struct {
	Backend   hv.Backend
	Frames    *mem.Frames
	HostCPUID cpuid.HostFunc
	// Clock runs the device timers; Wall is the wall clock (RTC,
	// kvmclock's wall time).
	Clock vclock.Clock
	Wall  func() time.Time
	// TSC reads the guest's time-stamp counter (the host's: Keel gives
	// guests no TSC offset) and TSCHz is its rate.
	TSC   func() uint64
	TSCHz uint64
	// Log receives the guest's console lines while nobody is attached,
	// prefixed with the VM name, and the machine's own messages; nil
	// discards them.
	Log io.Writer
}

// Machine is a PC virtual machine.
type Machine struct {
	spec    Spec
	env     Env
	vm      *hv.VM
	console *Console
	uart    *uart.UART
	pic     *pic.PIC
	ioapic  *ioapic.IOAPIC
	apics   []*lapic.LAPIC
	pit     *pit.PIT
	rtc     *rtc.RTC
	pm      *pmtimer.Block
	boot    *loader.Result
	tables  *acpitables.Image
	born    time.Time // wall time at the start of guest time (kvmclock)
	t0      time.Duration

	resetReq atomic.Bool

	mu      sync.Mutex
	started time.Time
	cancel  context.CancelFunc
	stopped chan struct{}
}

// ErrNoKernel is returned by New for a spec without a kernel image.
var ErrNoKernel = errors.New("machine: no kernel image")

// New builds the machine: the VM, its devices and tables, and the kernel
// loaded into its memory. On error nothing is left allocated.
func New(env Env, spec Spec) (*Machine, error) {
	if len(spec.Kernel) == 0 {
		return nil, ErrNoKernel
	}
	if env.Clock == nil {
		env.Clock = vclock.NewReal()
	}
	if env.Wall == nil {
		env.Wall = time.Now
	}
	if env.TSC == nil || env.TSCHz == 0 {
		return nil, errors.New("machine: no TSC source given")
	}
	kind := spec.Kind
	if kind == KindAuto {
		k, err := Detect(spec.Kernel)
		if err != nil {
			return nil, err
		}
		kind = k
	}
	if kind == KindMultiboot && len(spec.Initrd) > 0 {
		return nil, fmt.Errorf("machine: %s: an initrd is for Linux kernels; give Multiboot kernels modules", spec.Name)
	}
	m := &Machine{spec: spec, env: env, console: newConsole(spec.Name, env.Log), stopped: make(chan struct{})}
	sig := [4]uint32{}
	sig[0], sig[1], sig[2], sig[3] = kvmclock.SignatureLeaf(KVM_CPUID_BASE)
	feat := [4]uint32{}
	feat[0], feat[1], feat[2], feat[3] = kvmclock.FeaturesLeaf(kvmclock.CLOCK_FEATURES, 0)
	vm, err := hv.NewVM(env.Backend, env.Frames, hv.Config{
		Name: spec.Name, MemorySize: spec.Memory, VCPUs: spec.VCPUs, HostCPUID: env.HostCPUID,
		X2APIC: true, TSCDeadline: true, Emulator: hv.X86Emulator, Console: m.console,
		TSC: env.TSC,
		CPUIDExtra: []cpuid.Entry{
			{Leaf: KVM_CPUID_BASE, Result: cpuid.Result{EAX: sig[0], EBX: sig[1], ECX: sig[2], EDX: sig[3]}},
			{Leaf: KVM_CPUID_BASE + 1, Result: cpuid.Result{EAX: feat[0], EBX: feat[1], ECX: feat[2], EDX: feat[3]}},
		},
	})
	if err != nil {
		return nil, err
	}
	m.vm = vm
	if err := m.build(kind); err != nil {
		m.close()
		vm.Destroy()
		return nil, fmt.Errorf("machine: %s: %w", spec.Name, err)
	}
	return m, nil
}

// Detect tells a bzImage from a Multiboot kernel.
func Detect(img []byte) (Kind, error) {
	if _, err := linux.Parse(img); err == nil {
		return KindLinux, nil
	}
	if _, err := multiboot.FindHeader(img); err == nil {
		return KindMultiboot, nil
	}
	return KindAuto, errors.New("machine: the kernel is neither a Linux bzImage (no HdrS setup header) nor a Multiboot kernel (no Multiboot header in its first 8 KiB)")
}

// build creates and wires the devices, the tables and the boot state.
func (m *Machine) build(kind Kind) error {
	vm, d := m.vm, m.spec.Devices
	ports := vm.Ports()
	reg := func(base uint64, size uint64, dev interface {
		Read(uint64, []byte)
		Write(uint64, []byte)
	}, name string) error {
		return ports.Register(uint16(base), uint32(size), dev, name)
	}

	// Interrupt controllers. ISA line n reaches PIC input n and IOAPIC
	// pin n (pin 2 for the PIT, the usual interrupt source override).
	bus := lapic.NewBus()
	var lines [ISA_IRQS]irqline.Fanout
	bsp := vm.VCPU(0)
	if d.PIC {
		m.pic = pic.New(func() { bsp.IRQ().Notify() })
		for _, r := range []struct {
			base uint64
			dev  interface {
				Read(uint64, []byte)
				Write(uint64, []byte)
			}
			name string
		}{{pic.MASTER_BASE, m.pic.Master(), "pic-master"}, {pic.SLAVE_BASE, m.pic.Slave(), "pic-slave"}, {pic.ELCR_BASE, m.pic.ELCR(), "elcr"}} {
			if err := reg(r.base, 2, r.dev, r.name); err != nil {
				return err
			}
		}
		for i := range lines {
			if i != 2 {
				lines[i] = append(lines[i], m.pic.Line(i))
			}
		}
	}
	if d.IOAPIC {
		io, err := ioapic.New(bus, 0)
		if err != nil {
			return err
		}
		m.ioapic = io
		if err := vm.MMIO().Register(IOAPIC_BASE, ioapic.SIZE, io, "ioapic"); err != nil {
			return err
		}
		for i := range lines {
			pin := i
			if i == PIT_IRQ {
				pin = PIT_GSI
			} else if i == 2 {
				continue
			}
			lines[i] = append(lines[i], io.Line(pin))
		}
	}
	for i := 0; i < vm.VCPUs(); i++ {
		v := vm.VCPU(i)
		a, err := lapic.New(bus, lapic.Config{ID: uint32(i), BSP: i == 0, X2APIC: true, Clock: m.env.Clock,
			TSCDeadline: true, TSC: m.env.TSC, TSCHz: m.env.TSCHz, VirtualWire: true})
		if err != nil {
			return err
		}
		m.apics = append(m.apics, a)
		a.SetCPU(lapic.LinesCPU{Lines: v.IRQ(), Wake: v.IRQ().Notify})
		v.SetLocalMMIO(LAPIC_BASE, lapic.PAGE_SIZE, a)
		clk, err := kvmclock.NewClock(vm.Memory(), m.env.TSCHz, kvmclock.PVCLOCK_TSC_STABLE_BIT)
		if err != nil {
			return err
		}
		v.SetMSRHandler(&vcpuMSRs{m: m, apic: a, clock: clk, wall: kvmclock.NewWall(vm.Memory())})
		var p *pic.PIC
		if i == 0 {
			p = m.pic
		}
		v.IRQ().SetSource(&source{apic: a, pic: p})
	}

	// ISA devices.
	if d.Serial {
		m.uart = uart.New(m.console, lines[COM1_IRQ])
		m.console.input = m.uart.Input
		if err := reg(COM1_PORT, uart.SIZE, m.uart, "com1"); err != nil {
			return err
		}
	}
	if d.PIT {
		m.pit = pit.New(m.env.Clock, lines[PIT_IRQ])
		if err := reg(pit.PORT_BASE, pit.SIZE, m.pit, "pit"); err != nil {
			return err
		}
		if err := reg(pit.PORT_NMI_SC, pit.NMI_SC_SIZE, m.pit.NMIControl(), "port61"); err != nil {
			return err
		}
	}
	if d.RTC {
		m.rtc = rtc.New(rtc.Config{Clock: m.env.Clock, Wall: m.env.Wall, IRQ: lines[RTC_IRQ]})
		if err := reg(RTC_PORT, 2, m.rtc, "rtc"); err != nil {
			return err
		}
	}
	reset := func() {
		m.resetReq.Store(true)
		m.vm.StopWith("the guest reset the machine", 0)
	}
	kbd := i8042.New(reset, lines[KBD_IRQ], lines[AUX_IRQ])
	if err := reg(I8042_DATA_PORT, 1, kbd.Data(), "i8042-data"); err != nil {
		return err
	}
	if err := reg(I8042_CMD_PORT, 1, kbd.Command(), "i8042-cmd"); err != nil {
		return err
	}
	host := pci.NewHost(pci.HostConfig{Reset: reset})
	if err := reg(PCI_CONFIG_PORT, 8, host, "pci"); err != nil {
		return err
	}
	if d.DebugExit {
		de, err := debugexit.New(d.DebugExitPort, 1, func(status uint64) {
			m.vm.StopWith(fmt.Sprintf("the guest wrote to the debug-exit port %#x (status %d)", d.DebugExitPort, status), status)
		})
		if err != nil {
			return err
		}
		if err := reg(uint64(d.DebugExitPort), 1, de, "debug-exit"); err != nil {
			return err
		}
	}
	pmdev := acpitables.PMDevice{}
	if d.PMTimer {
		m.pm = pmtimer.NewBlock(pmtimer.Config{Clock: m.env.Clock, Ext32: true, SCI: lines[SCI_IRQ], S5SleepType: S5_SLP_TYP,
			Sleep: func(typ uint8, s5 bool) {
				if s5 {
					m.vm.StopWith("the guest powered off (ACPI S5)", 0)
				} else {
					m.pm.Wake()
				}
			}})
		if err := reg(PM_PORT, pmtimer.BLOCK_SIZE, m.pm, "acpi-pm"); err != nil {
			return err
		}
		pmdev = acpitables.PMDevice{
			PM1aEvt: PM_PORT + pmtimer.BLOCK_PM1_EVT, PM1EvtLen: pmtimer.PM1_EVT_LEN,
			PM1aCnt: PM_PORT + pmtimer.BLOCK_PM1_CNT, PM1CntLen: pmtimer.PM1_CNT_LEN,
			PMTmr: PM_PORT + pmtimer.BLOCK_PM_TMR, PMTmrLen: pmtimer.PM_TMR_LEN,
			TimerExt: true, SlpTypS5: S5_SLP_TYP,
		}
	}

	// Firmware tables (ACPI needs the PM block for its FADT), then the
	// kernel.
	var reserved []loader.MapEntry
	var rsdp addr.GPA
	if d.PMTimer && d.IOAPIC {
		img, err := acpitables.Build(acpitables.DefaultConfig(m.spec.VCPUs, pmdev))
		if err != nil {
			return err
		}
		if err := img.Install(vm.Memory()); err != nil {
			return err
		}
		m.tables, rsdp = img, img.RSDP
		reserved = append(reserved, loader.MapEntry{Range: addr.Range{Base: uint64(img.Base), Size: acpitables.TABLES_DEFAULT_SIZE}, Type: loader.E820_TYPE_ACPI})
	}
	reserved = append(reserved,
		loader.MapEntry{Range: addr.Range{Base: IOAPIC_BASE, Size: 0x1000}, Type: loader.E820_TYPE_RESERVED},
		loader.MapEntry{Range: addr.Range{Base: LAPIC_BASE, Size: 0x1000}, Type: loader.E820_TYPE_RESERVED})
	var res *loader.Result
	var err error
	switch kind {
	case KindLinux:
		res, err = linux.Load(vm.Memory(), linux.Config{Kernel: m.spec.Kernel, Initrd: m.spec.Initrd, Cmdline: m.spec.Cmdline, Reserved: reserved, ACPIRSDP: rsdp})
	case KindMultiboot:
		res, err = multiboot.Load(vm.Memory(), multiboot.Config{Kernel: m.spec.Kernel, Cmdline: m.spec.Cmdline, Modules: m.spec.Modules, Reserved: reserved})
	default:
		err = fmt.Errorf("unknown kernel kind %d", kind)
	}
	if err != nil {
		return err
	}
	m.boot = res
	if m.rtc != nil {
		below, above := uint64(0), uint64(0)
		for _, r := range vm.Memory().Regions() {
			if r.GPA < 1<<32 {
				below += r.Size
			} else {
				above += r.Size
			}
		}
		m.rtc.SetMemorySize(below, above)
		m.rtc.SetCPUCount(m.spec.VCPUs)
	}
	v := vm.VCPU(0)
	if err := v.SetSregs(res.Sregs); err != nil {
		return err
	}
	return v.SetRegs(res.Regs)
}

// close stops the device timers.
func (m *Machine) close() {
	if m.pit != nil {
		m.pit.Stop()
	}
	if m.rtc != nil {
		m.rtc.Stop()
	}
	if m.pm != nil {
		m.pm.Stop()
	}
	for _, a := range m.apics {
		a.Close()
	}
}

// ResetRequested reports whether the guest stopped the VM by resetting
// the machine (port 0xCF9, the i8042): the manager restarts it.
func (m *Machine) ResetRequested() bool { return m.resetReq.Load() }

// VM returns the machine's VM.
func (m *Machine) VM() *hv.VM { return m.vm }

// Console returns the guest's serial console.
func (m *Machine) Console() *Console { return m.console }

// Boot returns what the loader placed where and the boot state.
func (m *Machine) Boot() *loader.Result { return m.boot }

// Tables returns the ACPI tables, or nil when the machine has none.
func (m *Machine) Tables() *acpitables.Image { return m.tables }

// Start runs the VM. When it ends, the device timers stop.
func (m *Machine) Start() error {
	ctx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.cancel = cancel
	m.started = time.Now()
	m.born = m.env.Wall()
	m.t0 = m.env.Clock.Now()
	m.mu.Unlock()
	if err := m.vm.Start(ctx); err != nil {
		cancel()
		return err
	}
	go func() {
		m.vm.Wait()
		m.close()
		close(m.stopped)
	}()
	return nil
}

// Started returns when Start ran (zero before).
func (m *Machine) Started() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// Done is closed when the VM has stopped and its vCPUs have returned.
func (m *Machine) Done() <-chan struct{} { return m.stopped }

// Stop asks the guest to shut down by pressing the ACPI power button and,
// if it has not stopped within timeout (or has no ACPI), stops the VM.
// It reports whether the guest stopped by itself.
func (m *Machine) Stop(timeout time.Duration) bool {
	if m.pm != nil && !m.vm.State().Final() {
		m.pm.PressPowerButton()
		select {
		case <-m.stopped:
			return true
		case <-time.After(timeout):
		}
	}
	m.Kill()
	return false
}

// Kill stops the VM at once and waits for its vCPUs.
func (m *Machine) Kill() {
	_ = m.vm.Stop()
	m.vm.Wait()
}

// Destroy frees the VM; it must have stopped.
func (m *Machine) Destroy() error {
	m.close()
	return m.vm.Destroy()
}

// systemNS is the guest's kvmclock system time: nanoseconds since Start.
func (m *Machine) systemNS() uint64 {
	m.mu.Lock()
	t0 := m.t0
	m.mu.Unlock()
	return uint64(m.env.Clock.Now() - t0)
}

// bootWall is the wall time at guest system time 0.
func (m *Machine) bootWall() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.born
}

// Package manager is Keel's VM manager: the VMs a boot bundle declares,
// started, stopped, killed, inspected and attached to by name. The shell's
// `vm` commands are thin wrappers over it.
//
// A VM's machine (package machine) is built afresh at every start and
// destroyed when it stops, so a stopped VM holds no guest memory; what
// `vm info` shows about its last run (state, reason, exit counts) is kept.
// A guest that resets its machine is started again.
//
// The package is pure Go and host-testable: it runs under plain `go test`
// with a fake backend.
package manager

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keel-hv/keel/bundle"
	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader/multiboot"
	"github.com/keel-hv/keel/machine"
)

// ESCAPE is the byte that detaches `vm console` (Ctrl-]).
const ESCAPE = 0x1d

// STOP_TIMEOUT is how long Stop waits for the guest to honour the ACPI
// power button before forcing the VM off.
const STOP_TIMEOUT = 10 * time.Second

// MAX_RESTARTS bounds how many resets in a row restart a VM without an
// operator: a guest stuck in a reset loop is left stopped. A run that
// lasted RESTART_WINDOW or longer starts the count again.
const (
	MAX_RESTARTS   = 16
	RESTART_WINDOW = time.Minute
)

var (
	// ErrNoVM is wrapped by errors for unknown VM names.
	ErrNoVM = errors.New("no such VM")
	// ErrRunning is wrapped by Start for a VM that runs already.
	ErrRunning = errors.New("the VM is running")
	// ErrNotRunning is wrapped by Stop, Kill and Console for a VM that
	// does not run.
	ErrNotRunning = errors.New("the VM is not running")
)

// Files gives a VM's files by name (the bundle's).
type Files func(name string) ([]byte, error)

// vmEntry is one declared VM.
type vmEntry struct {
	cfg   config.VM
	files Files

	m        *machine.Machine // nil while stopped
	started  time.Time
	last     *Info // the last run's final state, once it ended
	restarts int
}

// Info describes a VM for `vm list` and `vm info`.
type Info struct {
	Name    string
	State   string // "stopped" when never started or stopped
	VCPUs   int
	Memory  uint64
	Kernel  string
	Uptime  time.Duration
	Exits   [arch.NumExitReasons]uint64
	Reason  string // why the last run ended, if it did
	Console int    // bytes of console history kept
}

// ExitSummary formats the non-zero exit counts as "cpuid=3 io=10".
func (i Info) ExitSummary() string {
	var parts []string
	for r, n := range i.Exits {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", arch.ExitReason(r), n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// Manager holds the VMs.
type Manager struct {
	env machine.Env
	log io.Writer

	mu  sync.Mutex
	vms map[string]*vmEntry
}

// New returns a manager that builds machines in env and reports VM
// starts and stops to log.
func New(env machine.Env, log io.Writer) *Manager {
	if log == nil {
		log = io.Discard
	}
	return &Manager{env: env, log: log, vms: map[string]*vmEntry{}}
}

// Define declares a VM whose files come from files.
func (mg *Manager) Define(cfg config.VM, files Files) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if _, dup := mg.vms[cfg.Name]; dup {
		return fmt.Errorf("vm %q is declared twice", cfg.Name)
	}
	mg.vms[cfg.Name] = &vmEntry{cfg: cfg, files: files}
	return nil
}

// LoadBundle declares every VM of the bundle.
func (mg *Manager) LoadBundle(b *bundle.Bundle) error {
	var errs []error
	for _, vm := range b.Config.VMs {
		errs = append(errs, mg.Define(vm, b.File))
	}
	return errors.Join(errs...)
}

// Autostart starts the VMs marked autostart, in name order, and returns
// their errors.
func (mg *Manager) Autostart() error {
	var errs []error
	for _, n := range mg.Names() {
		mg.mu.Lock()
		auto := mg.vms[n].cfg.Autostart
		mg.mu.Unlock()
		if auto {
			if err := mg.Start(n); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Names returns the declared VMs' names, sorted.
func (mg *Manager) Names() []string {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	names := make([]string, 0, len(mg.vms))
	for n := range mg.vms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (mg *Manager) lookup(name string) (*vmEntry, error) {
	e, ok := mg.vms[name]
	if !ok {
		return nil, fmt.Errorf("vm %q: %w (the bundle declares: %s)", name, ErrNoVM, strings.Join(mg.namesLocked(), ", "))
	}
	return e, nil
}

func (mg *Manager) namesLocked() []string {
	names := make([]string, 0, len(mg.vms))
	for n := range mg.vms {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return []string{"none"}
	}
	return names
}

// spec turns a VM's configuration into a machine spec, reading its files.
func spec(cfg config.VM, files Files) (machine.Spec, error) {
	s := machine.Spec{Name: cfg.Name, VCPUs: cfg.VCPUs, Memory: cfg.Memory, Cmdline: cfg.Cmdline}
	var err error
	if s.Kernel, err = files(cfg.Kernel); err != nil {
		return s, fmt.Errorf("kernel: %w", err)
	}
	if cfg.Initrd != "" {
		if s.Initrd, err = files(cfg.Initrd); err != nil {
			return s, fmt.Errorf("initrd: %w", err)
		}
	}
	for _, mod := range cfg.Modules {
		data, err := files(mod.File)
		if err != nil {
			return s, fmt.Errorf("module: %w", err)
		}
		s.Modules = append(s.Modules, multiboot.Module{Data: data, Cmdline: mod.Cmdline})
	}
	switch cfg.Kind {
	case config.KindLinux:
		s.Kind = machine.KindLinux
	case config.KindMultiboot:
		s.Kind = machine.KindMultiboot
	}
	d := cfg.Devices
	s.Devices = machine.Devices{Serial: d.Has(config.DevSerial), RTC: d.Has(config.DevRTC), PIT: d.Has(config.DevPIT),
		PIC: d.Has(config.DevPIC), IOAPIC: d.Has(config.DevIOAPIC), PMTimer: d.Has(config.DevPMTimer),
		DebugExit: d.Has(config.DevDebugExit), DebugExitPort: cfg.DebugExitPort}
	return s, nil
}

// Start builds the VM's machine and runs it.
func (mg *Manager) Start(name string) error {
	mg.mu.Lock()
	e, err := mg.lookup(name)
	if err != nil {
		mg.mu.Unlock()
		return err
	}
	if e.m != nil {
		mg.mu.Unlock()
		return fmt.Errorf("vm %q: %w", name, ErrRunning)
	}
	e.restarts = 0
	mg.mu.Unlock()
	return mg.start(e)
}

func (mg *Manager) start(e *vmEntry) error {
	s, err := spec(e.cfg, e.files)
	if err != nil {
		return fmt.Errorf("vm %q: %w", e.cfg.Name, err)
	}
	m, err := machine.New(mg.env, s)
	if err != nil {
		return fmt.Errorf("vm %q not started: %w", e.cfg.Name, err)
	}
	mg.mu.Lock()
	if e.m != nil {
		mg.mu.Unlock()
		m.Destroy()
		return fmt.Errorf("vm %q: %w", e.cfg.Name, ErrRunning)
	}
	e.m, e.started = m, time.Now()
	mg.mu.Unlock()
	if err := m.Start(); err != nil {
		mg.mu.Lock()
		e.m = nil
		mg.mu.Unlock()
		m.Destroy()
		return fmt.Errorf("vm %q not started: %w", e.cfg.Name, err)
	}
	fmt.Fprintf(mg.log, "keel: vm %s started: %d vCPUs, %d MiB, kernel %s\n", e.cfg.Name, e.cfg.VCPUs, e.cfg.Memory>>20, e.cfg.Kernel)
	go mg.watch(e, m)
	return nil
}

// watch waits for a run to end, records it, frees the machine and
// restarts it if the guest reset.
func (mg *Manager) watch(e *vmEntry, m *machine.Machine) {
	<-m.Done()
	in := infoOf(e, m)
	reset := m.ResetRequested()
	m.Destroy()
	mg.mu.Lock()
	e.m, e.last = nil, &in
	if time.Since(e.started) >= RESTART_WINDOW {
		e.restarts = 0
	}
	restart := reset && e.restarts < MAX_RESTARTS
	if restart {
		e.restarts++
	}
	mg.mu.Unlock()
	fmt.Fprintf(mg.log, "keel: vm %s %s: %s\n", e.cfg.Name, in.State, in.Reason)
	if reset && !restart {
		fmt.Fprintf(mg.log, "keel: vm %s: reset %d times in a row; left stopped\n", e.cfg.Name, MAX_RESTARTS+1)
	}
	if restart {
		if err := mg.start(e); err != nil {
			fmt.Fprintf(mg.log, "keel: vm %s: restart after reset failed: %v\n", e.cfg.Name, err)
		}
	}
}

// infoOf describes a machine's VM now.
func infoOf(e *vmEntry, m *machine.Machine) Info {
	vm := m.VM()
	in := Info{Name: e.cfg.Name, State: vm.State().String(), VCPUs: e.cfg.VCPUs, Memory: e.cfg.Memory, Kernel: e.cfg.Kernel,
		Exits: vm.ExitCounts(), Console: len(m.Console().History())}
	if !vm.State().Final() {
		in.Uptime = time.Since(e.started)
	}
	if r := vm.Report(); r != nil {
		in.Reason = r.Reason
	}
	return in
}

// Stop asks the guest to power off (ACPI power button) and forces it off
// after timeout. It reports whether the guest stopped by itself.
func (mg *Manager) Stop(name string, timeout time.Duration) (bool, error) {
	m, err := mg.running(name)
	if err != nil {
		return false, err
	}
	graceful := m.Stop(timeout)
	<-m.Done()
	mg.settle(name, m)
	return graceful, nil
}

// Kill stops the VM at once.
func (mg *Manager) Kill(name string) error {
	m, err := mg.running(name)
	if err != nil {
		return err
	}
	m.Kill()
	<-m.Done()
	mg.settle(name, m)
	return nil
}

// settle waits until watch has recorded the run of m.
func (mg *Manager) settle(name string, m *machine.Machine) {
	for i := 0; i < 1000; i++ {
		mg.mu.Lock()
		e := mg.vms[name]
		done := e.m != m
		mg.mu.Unlock()
		if done {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// running returns the machine of a running VM.
func (mg *Manager) running(name string) (*machine.Machine, error) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	e, err := mg.lookup(name)
	if err != nil {
		return nil, err
	}
	if e.m == nil {
		return nil, fmt.Errorf("vm %q: %w", name, ErrNotRunning)
	}
	return e.m, nil
}

// Info describes a VM.
func (mg *Manager) Info(name string) (Info, error) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	e, err := mg.lookup(name)
	if err != nil {
		return Info{}, err
	}
	return mg.infoLocked(e), nil
}

func (mg *Manager) infoLocked(e *vmEntry) Info {
	if e.m != nil {
		return infoOf(e, e.m)
	}
	if e.last != nil {
		return *e.last
	}
	return Info{Name: e.cfg.Name, State: "stopped", VCPUs: e.cfg.VCPUs, Memory: e.cfg.Memory, Kernel: e.cfg.Kernel, Reason: "never started"}
}

// List describes every VM, sorted by name.
func (mg *Manager) List() []Info {
	var out []Info
	for _, n := range mg.Names() {
		if in, err := mg.Info(n); err == nil {
			out = append(out, in)
		}
	}
	return out
}

// Console attaches in and out to a running VM's serial console: it shows
// what the guest printed while detached, then copies the guest's output
// to out and in to the guest until in gives ESCAPE (Ctrl-]) or ends, or
// the VM stops.
func (mg *Manager) Console(name string, in io.Reader, out io.Writer) error {
	m, err := mg.running(name)
	if err != nil {
		return err
	}
	c := m.Console()
	fmt.Fprintf(out, "keel: attached to %s; Ctrl-] detaches\n", name)
	out.Write(c.Attach(out))
	defer func() {
		c.Detach()
		fmt.Fprintf(out, "\nkeel: detached from %s\n", name)
	}()
	bytesIn := make(chan byte)
	readErr := make(chan error, 1)
	go func() {
		var b [1]byte
		for {
			n, err := in.Read(b[:])
			if err != nil {
				readErr <- err
				return
			}
			if n == 1 {
				select {
				case bytesIn <- b[0]:
				case <-m.Done():
					return
				}
				if b[0] == ESCAPE {
					return
				}
			}
		}
	}()
	for {
		select {
		case b := <-bytesIn:
			if b == ESCAPE {
				return nil
			}
			c.Input([]byte{b})
		case <-readErr:
			return nil
		case <-m.Done():
			fmt.Fprintf(out, "\nkeel: vm %s stopped\n", name)
			return nil
		}
	}
}

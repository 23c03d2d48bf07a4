package lapic

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/bus"
)

// fakeCPU records what a LAPIC signals to its processor.
type fakeCPU struct {
	mu      sync.Mutex
	clock   vclock.Clock
	notify  int
	notifyT []time.Duration // clock time of each Notify
	nmi     int
	init    int
	sipi    []uint8
}

func (c *fakeCPU) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify++
	if c.clock != nil && len(c.notifyT) < 10000 {
		c.notifyT = append(c.notifyT, c.clock.Now())
	}
}

func (c *fakeCPU) NMI() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nmi++
}

func (c *fakeCPU) INIT() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init++
}

func (c *fakeCPU) SIPI(v uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sipi = append(c.sipi, v)
}

func (c *fakeCPU) counts() (notify, nmi, init int, sipi []uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notify, c.nmi, c.init, append([]uint8(nil), c.sipi...)
}

// TEST_TSC_HZ is the rig's guest TSC rate: two ticks per nanosecond of the
// fake clock.
const TEST_TSC_HZ = 2_000_000_000

// rig is a VM's worth of LAPICs on one Bus, each with its own MMIO bus
// holding its xAPIC page at the default base (the core routes the page per
// vCPU), a fake CPU and a shared fake clock.
type rig struct {
	t     testing.TB
	clock *vclock.Fake
	bus   *Bus
	apics []*LAPIC
	cpus  []*fakeCPU
	mmio  []*bus.MMIOBus
}

func newRig(t testing.TB, n int, tweak func(i int, c *Config)) *rig {
	t.Helper()
	r := &rig{t: t, clock: &vclock.Fake{}, bus: NewBus()}
	for i := 0; i < n; i++ {
		cfg := Config{ID: uint32(i), BSP: i == 0, X2APIC: true, Clock: r.clock,
			TSCDeadline: true, TSCHz: TEST_TSC_HZ, TSC: r.tsc}
		if tweak != nil {
			tweak(i, &cfg)
		}
		l, err := New(r.bus, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := &fakeCPU{clock: r.clock}
		l.SetCPU(c)
		m := bus.NewMMIOBus(bus.Policy{Strict: true})
		if err := m.Register(addr.GPA(MSI_ADDRESS_BASE), PAGE_SIZE, l, "lapic"); err != nil {
			t.Fatal(err)
		}
		r.apics, r.cpus, r.mmio = append(r.apics, l), append(r.cpus, c), append(r.mmio, m)
	}
	return r
}

func (r *rig) tsc() uint64 { return uint64(r.clock.Now()) * (TEST_TSC_HZ / 1_000_000_000) }

// w writes a 32-bit xAPIC register of LAPIC i through its MMIO bus.
func (r *rig) w(i int, reg uint32, v uint32) {
	r.t.Helper()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	if err := r.mmio[i].Write(addr.GPA(MSI_ADDRESS_BASE+uint64(reg)), b[:]); err != nil {
		r.t.Fatal(err)
	}
}

// rd reads a 32-bit xAPIC register of LAPIC i through its MMIO bus.
func (r *rig) rd(i int, reg uint32) uint32 {
	r.t.Helper()
	var b [4]byte
	if err := r.mmio[i].Read(addr.GPA(MSI_ADDRESS_BASE+uint64(reg)), b[:]); err != nil {
		r.t.Fatal(err)
	}
	return binary.LittleEndian.Uint32(b[:])
}

// enable software-enables LAPIC i with spurious vector FFh.
func (r *rig) enable(i int) { r.w(i, SVR, SVR_APIC_ENABLED|0xff) }

// x2 switches LAPIC i to x2APIC mode.
func (r *rig) x2(i int) {
	r.t.Helper()
	if err := r.apics[i].WriteMSR(IA32_APIC_BASE, r.apics[i].APICBase()|arch.APIC_BASE_EXTD); err != nil {
		r.t.Fatal(err)
	}
}

// take injects LAPIC i's pending vector as the vCPU would.
func (r *rig) take(i int) (uint8, bool) {
	v, ok := r.apics[i].PendingVector()
	if ok && !r.apics[i].Accept(v) {
		r.t.Fatalf("LAPIC %d: Accept(%#x) of the pending vector failed", i, v)
	}
	return v, ok
}

// irr reports whether vector v is in LAPIC i's IRR, read through the
// register interface.
func (r *rig) irr(i int, v uint8) bool {
	return r.apics[i].regBit(IRR, v)
}

// regBit reads bit v of a 256-bit register (ISR, TMR, IRR) in either mode.
func (l *LAPIC) regBit(base uint32, v uint8) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, _ := l.readRegLocked(base+uint32(v>>5)<<4, l.mode == modeX2APIC)
	return w&(1<<(v&31)) != 0
}

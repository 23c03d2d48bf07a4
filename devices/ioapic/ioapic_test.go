package ioapic

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/lapic"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/bus"
)

// fakeCPU counts what a LAPIC signals.
type fakeCPU struct {
	mu                     sync.Mutex
	notify, nmi, init, sip int
}

func (c *fakeCPU) Notify()    { c.mu.Lock(); c.notify++; c.mu.Unlock() }
func (c *fakeCPU) NMI()       { c.mu.Lock(); c.nmi++; c.mu.Unlock() }
func (c *fakeCPU) INIT()      { c.mu.Lock(); c.init++; c.mu.Unlock() }
func (c *fakeCPU) SIPI(uint8) { c.mu.Lock(); c.sip++; c.mu.Unlock() }

func (c *fakeCPU) get() (nmi, init int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nmi, c.init
}

// rig is an IOAPIC at BASE_DEFAULT on an MMIO bus, delivering to n
// software-enabled xAPIC LAPICs (IDs 0..n-1, flat logical IDs 1<<i).
type rig struct {
	t     testing.TB
	mmio  *bus.MMIOBus
	io    *IOAPIC
	bus   *lapic.Bus
	apics []*lapic.LAPIC
	cpus  []*fakeCPU
	clock *vclock.Fake
}

func newRig(t testing.TB, n int) *rig {
	t.Helper()
	r := &rig{t: t, mmio: bus.NewMMIOBus(bus.Policy{Strict: true}), bus: lapic.NewBus(), clock: &vclock.Fake{}}
	for i := 0; i < n; i++ {
		l, err := lapic.New(r.bus, lapic.Config{ID: uint32(i), X2APIC: true, Clock: r.clock})
		if err != nil {
			t.Fatal(err)
		}
		c := &fakeCPU{}
		l.SetCPU(c)
		r.lw(l, lapic.SVR, lapic.SVR_APIC_ENABLED|0xff)
		r.lw(l, lapic.LDR, 1<<(24+i))
		r.apics, r.cpus = append(r.apics, l), append(r.cpus, c)
	}
	io, err := New(r.bus, 2)
	if err != nil {
		t.Fatal(err)
	}
	r.io = io
	if err := r.mmio.Register(BASE_DEFAULT, SIZE, io, "ioapic"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) lw(l *lapic.LAPIC, reg uint32, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	l.Write(uint64(reg), b[:])
}

func (r *rig) write(off uint64, data []byte) {
	r.t.Helper()
	if err := r.mmio.Write(addr.GPA(BASE_DEFAULT+off), data); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) read(off uint64, data []byte) {
	r.t.Helper()
	if err := r.mmio.Read(addr.GPA(BASE_DEFAULT+off), data); err != nil {
		r.t.Fatal(err)
	}
}

// set writes indirect register idx through IOREGSEL and IOWIN.
func (r *rig) set(idx uint8, v uint32) {
	r.t.Helper()
	r.write(IOREGSEL, []byte{idx, 0, 0, 0})
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	r.write(IOWIN, b[:])
}

// get reads indirect register idx.
func (r *rig) get(idx uint8) uint32 {
	r.t.Helper()
	r.write(IOREGSEL, []byte{idx, 0, 0, 0})
	var b [4]byte
	r.read(IOWIN, b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// route programs redirection entry pin.
func (r *rig) route(pin int, low uint32, dest uint8) {
	r.t.Helper()
	r.set(uint8(IOREDTBL+2*pin+1), uint32(dest)<<24)
	r.set(uint8(IOREDTBL+2*pin), low)
}

// take injects LAPIC i's pending vector.
func (r *rig) take(i int) (uint8, bool) {
	v, ok := r.apics[i].PendingVector()
	if ok {
		r.apics[i].Accept(v)
	}
	return v, ok
}

// pending lists the LAPICs with vector v deliverable.
func (r *rig) pending(v uint8) string {
	s := ""
	for i, l := range r.apics {
		if got, ok := l.PendingVector(); ok && got == v {
			s += fmt.Sprint(i)
		}
	}
	return s
}

func (r *rig) remoteIRR(pin int) bool { return r.io.Entry(pin)&REDIR_REMOTE_IRR != 0 }

func TestRegisters(t *testing.T) {
	r := newRig(t, 1)
	for _, tc := range []struct {
		name string
		idx  uint8
		want uint32
	}{
		{"IOAPICID", IOAPICID, 2 << 24},
		{"IOAPICVER", IOAPICVER, 0x00170011},
		{"IOAPICARB", IOAPICARB, 2 << 24},
		{"entry 0 low", IOREDTBL, REDIR_MASKED},
		{"entry 0 high", IOREDTBL + 1, 0},
		{"entry 23 low", IOREDTBL + 46, REDIR_MASKED},
		{"reserved 3", 3, 0},
		{"past the table", IOREDTBL + 48, 0},
		{"index ff", 0xff, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.get(tc.idx); got != tc.want {
				t.Fatalf("register %#x = %#x, want %#x", tc.idx, got, tc.want)
			}
		})
	}
	r.set(IOAPICID, 0xffffffff)
	r.set(IOAPICVER, 0)
	if id, arb, ver := r.get(IOAPICID), r.get(IOAPICARB), r.get(IOAPICVER); id != 0x0f000000 || arb != id || ver != IOAPICVER_VALUE {
		t.Fatalf("ID %#x ARB %#x VER %#x", id, arb, ver)
	}
	// Writable bits: no delivery status, no remote IRR, 8-bit destination.
	r.set(IOREDTBL+4, 0xffffffff)
	r.set(IOREDTBL+5, 0xffffffff)
	if lo, hi := r.get(IOREDTBL+4), r.get(IOREDTBL+5); lo != 0x1afff || hi != 0xff000000 {
		t.Fatalf("entry 2 = %#x:%#x, want 0xff000000:0x1afff", hi, lo)
	}
	// IOREGSEL reads back; byte stores set it; odd IOWIN stores are
	// ignored; the rest of the range reads zero.
	r.write(IOREGSEL, []byte{IOREDTBL + 4})
	b := make([]byte, 8)
	r.read(IOREGSEL, b[:4])
	if b[0] != IOREDTBL+4 || b[1] != 0 {
		t.Fatalf("IOREGSEL reads %x", b[:4])
	}
	r.write(IOWIN, []byte{0x12, 0x34})
	r.read(IOWIN, b)
	if binary.LittleEndian.Uint64(b) != 0x1afff {
		t.Fatalf("8-byte IOWIN read %x", b)
	}
	r.read(IOWIN+1, b[:1])
	if b[0] != 0xaf {
		t.Fatalf("byte 1 of IOWIN = %#x", b[0])
	}
	r.read(0x04, b[:4])
	if binary.LittleEndian.Uint32(b) != 0 {
		t.Fatal("offset 4 not zero")
	}
	r.write(0x08, []byte{1, 2, 3, 4}) // ignored
	r.io.Reset()
	if r.get(IOREDTBL+4) != REDIR_MASKED || r.get(IOAPICID) != 2<<24 {
		t.Fatal("Reset")
	}
	if _, err := New(r.bus, 16); err == nil {
		t.Fatal("5-bit ID accepted")
	}
	if _, err := New(nil, 0); err == nil {
		t.Fatal("nil bus accepted")
	}
	if _, ok := r.io.Line(24).(irqline.None); !ok || r.io.Entry(-1) != 0 {
		t.Fatal("out-of-range pins")
	}
}

func TestEdge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		low    uint32
		dest   uint8
		levels []bool
		want   string // LAPICs with the vector pending
	}{
		{"rising edge", 0x34, 1, []bool{true, false}, "1"},
		{"held high is one edge", 0x34, 1, []bool{true, true, true}, "1"},
		{"masked edge is lost", 0x34 | REDIR_MASKED, 1, []bool{true, false}, ""},
		{"active low fires on falling edge", 0x34 | REDIR_POLARITY_LOW, 0, []bool{true, false}, "0"},
		{"active low idle high", 0x34 | REDIR_POLARITY_LOW, 0, []bool{true}, ""},
		{"physical broadcast", 0x34, 0xff, []bool{true}, "012"},
		{"logical", 0x34 | REDIR_DEST_LOGICAL, 0x06, []bool{true}, "12"},
		{"lowest priority", 0x34 | REDIR_DEST_LOGICAL | 1<<8, 0x06, []bool{true}, "1"},
		{"SMI ignored", 0x34 | 2<<8, 0xff, []bool{true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 3)
			r.route(4, tc.low, tc.dest)
			for _, lv := range tc.levels {
				r.io.Line(4).SetLevel(lv)
			}
			if got := r.pending(0x34); got != tc.want {
				t.Fatalf("pending at %q, want %q", got, tc.want)
			}
			if r.remoteIRR(4) {
				t.Fatal("edge entry set remote IRR")
			}
		})
	}
	// Two pulses before the first is taken coalesce in the IRR; after
	// Accept the next pulse is a new request.
	r := newRig(t, 1)
	r.route(1, 0x31, 0)
	irqline.Pulse(r.io.Line(1))
	irqline.Pulse(r.io.Line(1))
	r.take(0)
	if _, ok := r.take(0); ok {
		t.Fatal("second pulse duplicated")
	}
	r.apics[0].EOI()
	irqline.Pulse(r.io.Line(1))
	if v, ok := r.take(0); !ok || v != 0x31 {
		t.Fatal("third pulse lost")
	}
}

func TestLevelRemoteIRR(t *testing.T) {
	r := newRig(t, 2)
	line := r.io.Line(10)
	line.SetLevel(true) // idle (active low)
	r.route(10, 0x3a|REDIR_TRIGGER_LEVEL|REDIR_POLARITY_LOW, 1)
	if r.pending(0x3a) != "" {
		t.Fatal("idle line delivered")
	}
	line.SetLevel(false) // asserted
	if r.pending(0x3a) != "1" || !r.remoteIRR(10) {
		t.Fatalf("asserted: pending %q remote IRR %v", r.pending(0x3a), r.remoteIRR(10))
	}
	if v, _ := r.take(1); v != 0x3a {
		t.Fatal("take")
	}
	line.SetLevel(false) // still asserted: nothing new while remote IRR
	if r.pending(0x3a) != "" {
		t.Fatal("re-delivered before EOI")
	}
	// EOI with the line still asserted: cleared and sent again.
	r.apics[1].EOI()
	if r.pending(0x3a) != "1" || !r.remoteIRR(10) {
		t.Fatal("EOI with line asserted did not re-deliver")
	}
	r.take(1)
	line.SetLevel(true) // the device is serviced
	r.apics[1].EOI()
	if r.remoteIRR(10) || r.pending(0x3a) != "" {
		t.Fatal("EOI with line deasserted left remote IRR or re-delivered")
	}
	// An EOI of another vector does not touch the entry.
	line.SetLevel(false)
	r.take(1)
	r.io.EOI(0x3b)
	if !r.remoteIRR(10) {
		t.Fatal("EOI of another vector cleared remote IRR")
	}
	// Rewriting the entry as edge clears remote IRR.
	r.route(10, 0x3a|REDIR_POLARITY_LOW, 1)
	if r.remoteIRR(10) {
		t.Fatal("edge entry kept remote IRR")
	}
}

func TestUnmaskAssertedLevelDelivers(t *testing.T) {
	r := newRig(t, 1)
	r.route(5, 0x45|REDIR_TRIGGER_LEVEL|REDIR_MASKED, 0)
	r.io.Line(5).SetLevel(true)
	if r.pending(0x45) != "" || r.remoteIRR(5) {
		t.Fatal("masked level entry delivered")
	}
	r.set(IOREDTBL+10, 0x45|REDIR_TRIGGER_LEVEL) // unmask
	if r.pending(0x45) != "0" || !r.remoteIRR(5) {
		t.Fatal("unmasking an asserted level entry did not deliver")
	}
	// Unmasking an asserted edge entry does not.
	r.route(6, 0x46|REDIR_MASKED, 0)
	r.io.Line(6).SetLevel(true)
	r.set(IOREDTBL+12, 0x46)
	if r.pending(0x46) != "" {
		t.Fatal("unmasking an asserted edge entry delivered")
	}
}

func TestLevelWithoutTarget(t *testing.T) {
	r := newRig(t, 1)
	r.lw(r.apics[0], lapic.SVR, 0xff) // software-disabled: refuses fixed interrupts
	r.route(3, 0x33|REDIR_TRIGGER_LEVEL, 0)
	r.io.Line(3).SetLevel(true)
	if r.remoteIRR(3) {
		t.Fatal("remote IRR set though nobody accepted")
	}
	r.lw(r.apics[0], lapic.SVR, lapic.SVR_APIC_ENABLED|0xff)
	r.set(IOREDTBL+6, 0x33|REDIR_TRIGGER_LEVEL|REDIR_MASKED) // mask, unmask: retry
	r.set(IOREDTBL+6, 0x33|REDIR_TRIGGER_LEVEL)
	if r.pending(0x33) != "0" || !r.remoteIRR(3) {
		t.Fatal("retry after unmask")
	}
}

func TestNMIINITExtINTEntries(t *testing.T) {
	r := newRig(t, 2)
	r.route(0, 7<<8, 0)                        // ExtINT to LAPIC 0
	r.route(1, 4<<8|REDIR_TRIGGER_LEVEL, 0xff) // NMI: level bit ignored
	r.route(2, 5<<8|REDIR_DEST_LOGICAL, 0x02)  // INIT to LAPIC 1
	r.io.Line(0).SetLevel(true)
	if !r.apics[0].ExtINTPending() || r.apics[1].ExtINTPending() {
		t.Fatal("ExtINT entry")
	}
	r.io.Line(1).SetLevel(true)
	r.io.Line(1).SetLevel(true)
	if n0, _ := r.cpus[0].get(); n0 != 1 || r.remoteIRR(1) {
		t.Fatalf("NMI entry: %d NMIs, remote IRR %v", n0, r.remoteIRR(1))
	}
	if n1, _ := r.cpus[1].get(); n1 != 1 {
		t.Fatal("NMI broadcast missed LAPIC 1")
	}
	r.io.Line(2).SetLevel(true)
	if _, i1 := r.cpus[1].get(); i1 != 1 {
		t.Fatal("INIT entry")
	}
}

// TestEOIThroughLAPICRegisters runs the whole level-triggered loop the
// way a guest does it: the IOAPIC delivers, the vCPU injects, the guest
// writes the LAPIC's EOI register (xAPIC MMIO and x2APIC MSR) and the
// broadcast reaches the IOAPIC.
func TestEOIThroughLAPICRegisters(t *testing.T) {
	r := newRig(t, 1)
	l := r.apics[0]
	r.route(9, 0x59|REDIR_TRIGGER_LEVEL, 0)
	r.io.Line(9).SetLevel(true)
	if v, ok := r.take(0); !ok || v != 0x59 {
		t.Fatal("not delivered")
	}
	r.io.Line(9).SetLevel(false)
	r.lw(l, lapic.EOI, 0)
	if r.remoteIRR(9) {
		t.Fatal("xAPIC EOI did not reach the IOAPIC")
	}
	if err := l.WriteMSR(lapic.IA32_APIC_BASE, l.APICBase()|1<<10); err != nil {
		t.Fatal(err)
	}
	r.io.Line(9).SetLevel(true)
	r.take(0)
	r.io.Line(9).SetLevel(false)
	if err := l.WriteMSR(lapic.X2APIC_MSR_BASE+lapic.EOI>>4, 0); err != nil {
		t.Fatal(err)
	}
	if r.remoteIRR(9) {
		t.Fatal("x2APIC EOI did not reach the IOAPIC")
	}
}

func TestNoAllocs(t *testing.T) {
	r := newRig(t, 2)
	r.route(1, 0x31, 0)
	r.route(2, 0x32|REDIR_TRIGGER_LEVEL, 1)
	l := r.io.Line(2)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"edge", func() { irqline.Pulse(r.io.Line(1)) }},
		{"level and EOI", func() {
			l.SetLevel(true)
			if v, ok := r.apics[1].PendingVector(); ok {
				r.apics[1].Accept(v)
			}
			l.SetLevel(false)
			r.apics[1].EOI()
		}},
	} {
		if a := testing.AllocsPerRun(100, tc.f); a != 0 {
			t.Errorf("%s allocates %.1f times", tc.name, a)
		}
	}
}

// TestConcurrent drives lines, IPIs, EOIs and timers from several
// goroutines; run it with -race. Every level-triggered assertion must be
// serviced exactly once.
func TestConcurrent(t *testing.T) {
	const vcpus, pins, rounds = 4, 8, 200
	r := newRig(t, vcpus)
	for p := 0; p < pins; p++ {
		r.route(p, uint32(0x40+p)|REDIR_TRIGGER_LEVEL|REDIR_DEST_LOGICAL, uint8(1<<(p%vcpus)))
	}
	for i, l := range r.apics {
		r.lw(l, lapic.LVT_TIMER, lapic.TIMER_PERIODIC|0x30)
		r.lw(l, lapic.DIVIDE_CONFIG, 0xb)
		r.lw(l, lapic.INITIAL_COUNT, uint32(100_000+i))
	}
	var serviced [pins]atomic.Int32
	stop := make(chan struct{})
	var cpus, devs sync.WaitGroup
	// vCPUs: take, service, EOI, and send IPIs around.
	for i := 0; i < vcpus; i++ {
		cpus.Add(1)
		go func(i int) {
			defer cpus.Done()
			l := r.apics[i]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v, ok := l.PendingVector(); ok {
					l.Accept(v)
					if v >= 0x40 && v < 0x40+pins {
						serviced[v-0x40].Add(1)
						r.io.Line(int(v - 0x40)).SetLevel(false) // the handler quiets the device
					}
					r.lw(l, lapic.EOI, 0)
				}
				r.lw(l, lapic.ICR_HI, uint32((i+1)%vcpus)<<24)
				r.lw(l, lapic.ICR_LO, 0x20)
				runtime.Gosched()
			}
		}(i)
	}
	// Devices: assert, wait for the EOI, again.
	for p := 0; p < pins; p++ {
		devs.Add(1)
		go func(p int) {
			defer devs.Done()
			for k := 0; k < rounds; k++ {
				r.io.Line(p).SetLevel(true)
				for r.io.Entry(p)&REDIR_REMOTE_IRR != 0 {
					runtime.Gosched()
				}
			}
		}(p)
	}
	// The clock.
	cpus.Add(1)
	go func() {
		defer cpus.Done()
		for {
			select {
			case <-stop:
				return
			default:
				r.clock.Advance(50_000)
				runtime.Gosched()
			}
		}
	}()
	devs.Wait()
	close(stop)
	cpus.Wait()
	for p := range serviced {
		if s := serviced[p].Load(); s != rounds {
			t.Errorf("pin %d serviced %d times, want %d", p, s, rounds)
		}
	}
}

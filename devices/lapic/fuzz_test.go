package lapic

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

// fuzzReader hands out the fuzz input; missing bytes read as zero.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *fuzzReader) uint(n int) uint64 {
	var v uint64
	for i := 0; i < n; i++ {
		v |= uint64(r.byte()) << (8 * i)
	}
	return v
}

// fuzzRegs are the implemented xAPIC registers, so the fuzzer finds them
// without guessing offsets.
var fuzzRegs = []uint32{ID, VERSION, TPR, APR, PPR, EOI, RRD, LDR, DFR, SVR, ISR + 0x70, TMR + 0x10, IRR + 0x30,
	ESR, LVT_CMCI, ICR_LO, ICR_HI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR,
	INITIAL_COUNT, CURRENT_COUNT, DIVIDE_CONFIG, SELF_IPI}

// fuzzBases are IA32_APIC_BASE values worth trying.
var fuzzBases = []uint64{
	base | en, base | en | extd, base, base | extd, 0xfed00000 | en, base | en | 1<<9, base | en | bsp, 1 << 52,
}

// FuzzLAPIC runs random register, MSR, message, pin and clock operations
// on two LAPICs sharing a Bus. Nothing may panic or deadlock, and after
// every operation the architectural invariants must hold (see
// checkInvariants).
//
// Input: a sequence of operations, each an opcode byte (bit 7 picks the
// LAPIC, bits 3:0 the operation) followed by its operands.
func FuzzLAPIC(f *testing.F) {
	for _, s := range [][]byte{
		// Enable, deliver 0x40 and 0x50, take, EOI.
		{0x0e, 9, 0xff, 1, 0, 0, 0x04, 0x40, 0, 0x04, 0x50, 1, 0x05, 0x05, 0x06, 0x06},
		// x2APIC, then an ICR IPI to LAPIC 1 by MSR.
		{0x0f, 0x0e, 9, 0xff, 1, 0, 0, 0x02, 0xc0 | 15, 0x41, 0, 0, 0, 1, 0, 0, 0},
		// Periodic timer, advance.
		{0x0e, 9, 0xff, 1, 0, 0, 0x0e, 17, 0x30, 0, 2, 0, 0x0e, 25, 0xb, 0, 0, 0, 0x0e, 23, 0x10, 0, 0, 0, 0x07, 0xff, 0x10, 0x01, 24, 0, 4},
		// TSC-deadline timer.
		{0x0e, 9, 0xff, 1, 0, 0, 0x0e, 17, 0x30, 0, 4, 0, 0x02, 0x80, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0x07, 0, 1},
		// LINT0 ExtINT, LINT1 NMI, pins.
		{0x0e, 9, 0xff, 1, 0, 0, 0x0e, 20, 0, 7, 0, 0, 0x0e, 21, 0, 4, 0, 0, 0x08, 1, 0x08, 3, 0x0a},
		// Hardware disable and re-enable.
		{0x0b, 2, 0x0b, 0, 0x0c, 0x0b, 1},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t, 2, nil)
		var eois int
		r.bus.AddEOIListener(func(uint8) { eois++ })
		in := &fuzzReader{b: data}
		buf := make([]byte, 8)
		budget := 50 * time.Millisecond
		for step := 0; len(in.b) > 0 && step < 512; step++ {
			op := in.byte()
			i := int(op >> 7)
			l := r.apics[i]
			switch op & 0xf {
			case 0: // raw MMIO write
				off := in.uint(2) & (PAGE_SIZE - 1)
				size := 1 << (in.byte() & 3)
				if off+uint64(size) > PAGE_SIZE {
					off = PAGE_SIZE - uint64(size)
				}
				binary.LittleEndian.PutUint64(buf, in.uint(8))
				if err := r.mmio[i].Write(addr.GPA(MSI_ADDRESS_BASE+off), buf[:size]); err != nil {
					t.Fatal(err)
				}
			case 1: // raw MMIO read
				off := in.uint(2) & (PAGE_SIZE - 1)
				size := 1 << (in.byte() & 3)
				if off+uint64(size) > PAGE_SIZE {
					off = PAGE_SIZE - uint64(size)
				}
				if err := r.mmio[i].Read(addr.GPA(MSI_ADDRESS_BASE+off), buf[:size]); err != nil {
					t.Fatal(err)
				}
			case 2: // WRMSR
				_ = l.WriteMSR(fuzzMSR(in), in.uint(8))
			case 3: // RDMSR
				_, _ = l.ReadMSR(fuzzMSR(in))
			case 4:
				v := in.byte()
				l.Deliver(v, in.byte()&1 != 0)
			case 5: // the vCPU injects
				if v, ok := l.PendingVector(); ok && !l.Accept(v) {
					t.Fatalf("Accept(%#x) of the pending vector failed", v)
				}
			case 6:
				l.EOI()
			case 7: // bounded, so periodic timers at the minimum period stay cheap
				d := time.Duration(in.uint(2)) * time.Duration(1+in.byte()) * 10
				if d > budget {
					d = budget
				}
				budget -= d
				r.clock.Advance(d)
			case 8:
				b := in.byte()
				p := l.LINT0()
				if b&2 != 0 {
					p = l.LINT1()
				}
				p.SetLevel(b&1 != 0)
			case 9: // a message from an IOAPIC or MSI
				b := in.byte()
				m := Message{Vector: in.byte(), Mode: DeliveryMode(b & 7), Logical: b&8 != 0, Level: b&16 != 0,
					X2APIC: b&32 != 0, Shorthand: Shorthand(b >> 6), Source: l, Dest: uint32(in.uint(1))}
				if m.X2APIC && in.byte()&1 != 0 {
					m.Dest = X2APIC_BROADCAST
				}
				if n := r.bus.Deliver(m); n < 0 || n > 2 {
					t.Fatalf("message accepted by %d", n)
				}
			case 10:
				if l.ExtINTPending() {
					l.AckExtINT()
				}
				_ = l.AcceptsPICInterrupt()
			case 11:
				_ = l.SetAPICBase(fuzzBases[int(in.byte())%len(fuzzBases)])
			case 12:
				if in.byte()&1 != 0 {
					l.Reset()
				} else {
					l.InitReset()
				}
			case 13:
				l.SetCR8(in.uint(1))
			case 14: // a write to a named xAPIC register
				reg := fuzzRegs[int(in.byte())%len(fuzzRegs)]
				binary.LittleEndian.PutUint32(buf, uint32(in.uint(4)))
				l.Write(uint64(reg), buf[:4])
			case 15: // x2APIC mode
				_ = l.WriteMSR(IA32_APIC_BASE, l.APICBase()|arch.APIC_BASE_EN|arch.APIC_BASE_EXTD)
			}
			for _, l := range r.apics {
				checkInvariants(t, l)
			}
			if n := r.clock.Pending(); n > len(r.apics) {
				t.Fatalf("%d host timers pending for %d LAPICs", n, len(r.apics))
			}
		}
	})
}

// fuzzMSR picks an MSR number: mostly LAPIC ones.
func fuzzMSR(in *fuzzReader) uint32 {
	b := in.byte()
	switch b >> 6 {
	case 0:
		return X2APIC_MSR_BASE + uint32(in.byte())
	case 1:
		return IA32_APIC_BASE
	case 2:
		return IA32_TSC_DEADLINE
	}
	return X2APIC_MSR_BASE + fuzzRegs[int(b&0x3f)%len(fuzzRegs)]>>4
}

// checkInvariants checks what must hold whatever the guest did.
func checkInvariants(t *testing.T, l *LAPIC) {
	t.Helper()
	v, ok := l.PendingVector()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.irr[0]&0xffff != 0 || l.isr[0]&0xffff != 0 {
		t.Fatalf("vectors 0-15 in IRR %#x or ISR %#x", l.irr[0], l.isr[0])
	}
	if ok && (!l.irr.test(v) || uint32(v)>>4 <= l.pprLocked()>>4 || !l.enabledLocked()) {
		t.Fatalf("PendingVector %#x with PPR %#x, IRR bit %v", v, l.pprLocked(), l.irr.test(v))
	}
	want := modeDisabled
	switch l.base & (arch.APIC_BASE_EN | arch.APIC_BASE_EXTD) {
	case arch.APIC_BASE_EN:
		want = modeXAPIC
	case arch.APIC_BASE_EN | arch.APIC_BASE_EXTD:
		want = modeX2APIC
	case arch.APIC_BASE_EXTD:
		t.Fatalf("IA32_APIC_BASE %#x: EXTD without EN", l.base)
	}
	if l.mode != want {
		t.Fatalf("mode %d but IA32_APIC_BASE %#x", l.mode, l.base)
	}
	if (l.base&arch.APIC_BASE_BSP != 0) != l.bsp {
		t.Fatalf("BSP bit changed: %#x", l.base)
	}
	if l.dfr&DFR_RESERVED_ONES != DFR_RESERVED_ONES {
		t.Fatalf("DFR %#x", l.dfr)
	}
	if l.icr&ICR_DELIVERY_STATUS != 0 {
		t.Fatalf("ICR delivery status set: %#x", l.icr)
	}
	for i, e := range l.lvt {
		if e&LVT_DELIVERY_STATUS != 0 {
			t.Fatalf("LVT %d delivery status set: %#x", i, e)
		}
		if l.svr&SVR_APIC_ENABLED == 0 && e&LVT_MASKED == 0 {
			t.Fatalf("LVT %d unmasked while software-disabled: %#x", i, e)
		}
	}
	tm := &l.timer
	if c := l.currentCountLocked(l.clock.Now()); c > tm.initial {
		t.Fatalf("current count %d above initial %d", c, tm.initial)
	}
	if tm.running && tm.host == nil {
		t.Fatal("timer running without a host timer")
	}
	if l.timerMode() != TIMER_TSC_DEADLINE && tm.deadline != 0 {
		t.Fatalf("TSC deadline %d armed outside TSC-deadline mode", tm.deadline)
	}
	if l.rID.Load() != l.currentIDLocked() || l.rLDR.Load() != l.ldrLocked() {
		t.Fatal("routing copies out of date")
	}
}

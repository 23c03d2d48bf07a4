package ioapic

import (
	"encoding/binary"
	"testing"

	"github.com/keel-hv/keel/devices/lapic"
	"github.com/keel-hv/keel/hv/addr"
)

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

// FuzzIOAPIC runs random MMIO accesses, input levels, EOIs and LAPIC
// operations on an IOAPIC delivering to two LAPICs. Nothing may panic or
// deadlock; the version register is constant, Delivery Status always
// reads idle, Remote IRR is only ever set on level-triggered entries, and
// an unmasked level-triggered fixed entry whose input is asserted, whose
// Remote IRR is clear and whose targets accept interrupts cannot stay
// undelivered.
//
// Input: a sequence of operations, an opcode byte (bits 2:0) and its
// operands.
func FuzzIOAPIC(f *testing.F) {
	for _, s := range [][]byte{
		// Route pin 3 level, vector 0x43, to LAPIC 0; raise; take; EOI.
		{0x02, 0x16, 0x43, 0x80, 0, 0, 0x02, 0x17, 0, 0, 0, 0, 0x03, 3, 1, 0x04, 0, 0x05, 0},
		// Edge, logical lowest priority to both; pulse.
		{0x02, 0x12, 0x31, 0x09, 0, 0, 0x02, 0x13, 0, 0, 0, 3, 0x03, 1, 1, 0x03, 1, 0, 0x04, 1},
		// Raw MMIO.
		{0x00, 0x00, 0x02, 0x10, 0x01, 0x10, 0x02, 0x00, 0x07},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newRig(t, 2)
		in := &fuzzReader{b: data}
		buf := make([]byte, 8)
		for step := 0; len(in.b) > 0 && step < 512; step++ {
			switch in.byte() & 7 {
			case 0: // raw MMIO write
				off := in.uint(1) & (SIZE - 1)
				size := 1 << (in.byte() & 3)
				if off+uint64(size) > SIZE {
					off = SIZE - uint64(size)
				}
				binary.LittleEndian.PutUint64(buf, in.uint(8))
				if err := r.mmio.Write(addr.GPA(BASE_DEFAULT+off), buf[:size]); err != nil {
					t.Fatal(err)
				}
			case 1: // raw MMIO read
				off := in.uint(1) & (SIZE - 1)
				size := 1 << (in.byte() & 3)
				if off+uint64(size) > SIZE {
					off = SIZE - uint64(size)
				}
				if err := r.mmio.Read(addr.GPA(BASE_DEFAULT+off), buf[:size]); err != nil {
					t.Fatal(err)
				}
			case 2: // indirect register write
				idx := in.byte()
				r.set(idx, uint32(in.uint(4)))
			case 3: // a device drives a line
				p := int(in.byte()) % (NUM_PINS + 1) // NUM_PINS is out of range
				r.io.Line(p).SetLevel(in.byte()&1 != 0)
			case 4: // a vCPU injects
				r.take(int(in.byte() & 1))
			case 5: // a vCPU's EOI
				r.apics[in.byte()&1].EOI()
			case 6: // a stray EOI broadcast
				r.io.EOI(in.byte())
			case 7: // a LAPIC is disabled, enabled, reset or switched mode
				l := r.apics[in.byte()&1]
				switch in.byte() & 3 {
				case 0:
					r.lw(l, lapic.SVR, 0xff)
				case 1:
					r.lw(l, lapic.SVR, lapic.SVR_APIC_ENABLED|0xff)
				case 2:
					l.InitReset()
				case 3:
					_ = l.WriteMSR(lapic.IA32_APIC_BASE, l.APICBase()|1<<10)
				}
			}
			r.check(t)
		}
	})
}

// check asserts the invariants FuzzIOAPIC documents.
func (r *rig) check(t *testing.T) {
	t.Helper()
	if v := r.get(IOAPICVER); v != IOAPICVER_VALUE {
		t.Fatalf("IOAPICVER = %#x", v)
	}
	if id, arb := r.get(IOAPICID), r.get(IOAPICARB); id&^IOAPICID_MASK != 0 || arb != id {
		t.Fatalf("IOAPICID %#x IOAPICARB %#x", id, arb)
	}
	for n := 0; n < NUM_PINS; n++ {
		e := r.io.Entry(n)
		if e&REDIR_DELIVERY_STATUS != 0 {
			t.Fatalf("entry %d: delivery status set: %#x", n, e)
		}
		if e&REDIR_REMOTE_IRR != 0 && e&REDIR_TRIGGER_LEVEL == 0 {
			t.Fatalf("entry %d: remote IRR on an edge-triggered entry: %#x", n, e)
		}
		if e>>32&0x00ffffff != 0 {
			t.Fatalf("entry %d: reserved bits 55:32 set: %#x", n, e)
		}
	}
}

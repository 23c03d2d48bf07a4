package lapic

import (
	"fmt"
	"testing"
)

// got lists the LAPICs of r with vector v in their IRR.
func (r *rig) got(v uint8) string {
	s := ""
	for i := range r.apics {
		if r.irr(i, v) {
			s += fmt.Sprint(i)
		}
	}
	return s
}

func TestIPIDestinations(t *testing.T) {
	flat := func(r *rig) {
		for i := range r.apics {
			r.w(i, LDR, 1<<(24+i))
		}
	}
	cluster := func(r *rig) {
		for i, id := range []uint32{0x11, 0x12, 0x21, 0x22} {
			r.w(i, DFR, 0x0fffffff)
			r.w(i, LDR, id<<24)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(r *rig)
		hi    uint32 // ICR_HI destination field
		lo    uint32 // ICR_LO without the vector
		want  string // LAPICs that receive, by index
	}{
		{"physical", nil, 2, 0, "2"},
		{"physical to nobody", nil, 9, 0, ""},
		{"physical broadcast", nil, 0xff, 0, "0123"},
		{"self", nil, 3, 1 << 18, "0"},
		{"all including self", nil, 3, 2 << 18, "0123"},
		{"all excluding self", nil, 0, 3 << 18, "123"},
		{"logical flat", flat, 0x06, ICR_DEST_LOGICAL, "12"},
		{"logical flat none", flat, 0x30, ICR_DEST_LOGICAL, ""},
		{"logical broadcast", flat, 0xff, ICR_DEST_LOGICAL, "0123"},
		{"logical cluster", cluster, 0x13, ICR_DEST_LOGICAL, "01"},
		{"logical cluster 2", cluster, 0x22, ICR_DEST_LOGICAL, "3"},
		{"logical cluster all clusters", cluster, 0xf1, ICR_DEST_LOGICAL, "02"},
		{"logical cluster broadcast", cluster, 0xff, ICR_DEST_LOGICAL, "0123"},
		{"lowest priority to lowest ID", flat, 0x0e, ICR_DEST_LOGICAL | 1<<8, "1"},
		{"lowest priority skips disabled", func(r *rig) { flat(r); r.w(1, SVR, 0xff) }, 0x0e, ICR_DEST_LOGICAL | 1<<8, "2"},
		{"software-disabled drops fixed", func(r *rig) { r.w(2, SVR, 0xff) }, 0xff, 0, "013"},
		{"hardware-disabled drops", func(r *rig) { r.apics[3].SetAPICBase(0) }, 0xff, 0, "012"},
		{"self with NMI is illegal", nil, 0, 1<<18 | 4<<8, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 4, nil)
			for i := range r.apics {
				r.enable(i)
			}
			if tc.setup != nil {
				tc.setup(r)
			}
			r.w(0, ICR_HI, tc.hi<<24)
			r.w(0, ICR_LO, tc.lo|0x40)
			if got := r.got(0x40); got != tc.want {
				t.Errorf("received by %q, want %q", got, tc.want)
			}
			if lo := r.rd(0, ICR_LO); lo&ICR_DELIVERY_STATUS != 0 || lo != tc.lo|0x40 {
				t.Errorf("ICR_LO reads %#x, want %#x (idle)", lo, tc.lo|0x40)
			}
			if hi := r.rd(0, ICR_HI); hi != tc.hi<<24 {
				t.Errorf("ICR_HI reads %#x", hi)
			}
		})
	}
}

func TestIPINotifiesAndLevel(t *testing.T) {
	r := newRig(t, 2, nil)
	r.enable(0)
	r.enable(1)
	var eois []uint8
	r.bus.AddEOIListener(func(v uint8) { eois = append(eois, v) })
	r.w(0, ICR_HI, 1<<24)
	r.w(0, ICR_LO, ICR_TRIGGER_LEVEL|ICR_LEVEL_ASSERT|0x55)
	if n, _, _, _ := r.cpus[1].counts(); n != 1 {
		t.Fatalf("target notified %d times", n)
	}
	if n, _, _, _ := r.cpus[0].counts(); n != 0 {
		t.Fatalf("sender notified %d times", n)
	}
	if !r.apics[1].regBit(TMR, 0x55) {
		t.Fatal("level IPI did not set TMR")
	}
	r.take(1)
	r.w(1, EOI, 0)
	if len(eois) != 1 || eois[0] != 0x55 {
		t.Fatalf("EOI broadcasts %x", eois)
	}
}

func TestINITSIPINMI(t *testing.T) {
	r := newRig(t, 4, nil)
	for i := range r.apics {
		r.enable(i)
	}
	r.w(1, TPR, 0x30)
	r.apics[1].Deliver(0x80, false)

	// INIT level assert to LAPIC 1.
	r.w(0, ICR_HI, 1<<24)
	r.w(0, ICR_LO, ICR_LEVEL_ASSERT|ICR_TRIGGER_LEVEL|5<<8)
	// INIT level de-assert (to everyone): ignored.
	r.w(0, ICR_LO, ICR_TRIGGER_LEVEL|2<<18|5<<8)
	if _, _, init, _ := r.cpus[1].counts(); init != 1 {
		t.Fatalf("INITs at LAPIC 1: %d, want 1", init)
	}
	if _, _, init, _ := r.cpus[0].counts(); init != 0 {
		t.Fatal("de-assert reached the sender")
	}
	if svr, tpr := r.rd(1, SVR), r.rd(1, TPR); svr != SVR_RESET || tpr != 0 || r.irr(1, 0x80) {
		t.Fatalf("INIT did not reset LAPIC 1: SVR %#x TPR %#x", svr, tpr)
	}
	if id := r.rd(1, ID); id != 1<<24 {
		t.Fatalf("INIT lost the ID: %#x", id)
	}
	// Two SIPIs, as the universal start-up algorithm sends; the core
	// ignores the second if the first started the processor. A SIPI
	// reaches a software-disabled LAPIC (LAPIC 1 after INIT).
	for i := 0; i < 2; i++ {
		r.w(0, ICR_LO, ICR_LEVEL_ASSERT|6<<8|0x9a)
	}
	if _, _, _, sipi := r.cpus[1].counts(); len(sipi) != 2 || sipi[0] != 0x9a {
		t.Fatalf("SIPIs at LAPIC 1: %x", sipi)
	}
	// Broadcast INIT, all excluding self.
	r.w(0, ICR_LO, ICR_LEVEL_ASSERT|3<<18|5<<8)
	for i, want := range []int{0, 2, 1, 1} {
		if _, _, init, _ := r.cpus[i].counts(); init != want {
			t.Errorf("LAPIC %d INITs %d, want %d", i, init, want)
		}
	}
	// NMI to LAPICs 2 and 3 by logical flat destination.
	r.w(2, LDR, 1<<26)
	r.w(3, LDR, 1<<27)
	r.w(0, ICR_HI, 0x0c<<24)
	r.w(0, ICR_LO, ICR_LEVEL_ASSERT|ICR_DEST_LOGICAL|4<<8)
	for i, want := range []int{0, 0, 1, 1} {
		if _, nmi, _, _ := r.cpus[i].counts(); nmi != want {
			t.Errorf("LAPIC %d NMIs %d, want %d", i, nmi, want)
		}
	}
}

func TestMSIAndExtINTMessages(t *testing.T) {
	r := newRig(t, 2, nil)
	r.enable(0)
	r.enable(1)
	m := MSI(MSI_ADDRESS_BASE|1<<MSI_DEST_SHIFT, 0x4061)
	if m.Vector != 0x61 || m.Mode != DELIVERY_FIXED || m.Logical || m.Dest != 1 {
		t.Fatalf("MSI decoded as %+v", m)
	}
	if n := r.bus.Deliver(m); n != 1 || !r.irr(1, 0x61) {
		t.Fatalf("MSI accepted by %d", n)
	}
	if r.bus.Deliver(Message{Mode: DELIVERY_EXTINT, Dest: 0}) != 1 || !r.apics[0].ExtINTPending() {
		t.Fatal("ExtINT message not pending")
	}
	r.apics[0].AckExtINT()
	if r.apics[0].ExtINTPending() {
		t.Fatal("ExtINT still pending after INTA")
	}
	if r.bus.Deliver(Message{Mode: DELIVERY_SMI, Dest: 0xff}) != 0 {
		t.Fatal("SMI accepted")
	}
	if l := r.bus.LAPIC(1); l != r.apics[1] || r.bus.LAPIC(7) != nil || len(r.bus.LAPICs()) != 2 {
		t.Fatal("bus lookup")
	}
	if _, err := New(r.bus, Config{ID: 1, Clock: r.clock}); err == nil {
		t.Fatal("duplicate ID accepted")
	}
	r.apics[1].Close()
	if r.bus.Deliver(Message{Vector: 0x70, Dest: 0xff}) != 1 || len(r.bus.LAPICs()) != 1 {
		t.Fatal("closed LAPIC still on the bus")
	}
}

package lapic

import (
	"errors"
	"testing"

	"github.com/keel-hv/keel/hv/arch"
)

const (
	en   = arch.APIC_BASE_EN
	extd = arch.APIC_BASE_EXTD
	bsp  = arch.APIC_BASE_BSP
	base = arch.APIC_BASE_DEFAULT
)

func TestAPICBaseTransitions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from     []uint64 // writes that must succeed first
		write    uint64
		x2apic   bool // Config.X2APIC
		err      error
		wantMode apicMode
	}{
		{"xAPIC to x2APIC", nil, base | en | extd, true, nil, modeX2APIC},
		{"xAPIC to disabled", nil, base, true, nil, modeDisabled},
		{"disabled to xAPIC", []uint64{base}, base | en, true, nil, modeXAPIC},
		{"x2APIC to disabled", []uint64{base | en | extd}, base, true, nil, modeDisabled},
		{"x2APIC to xAPIC", []uint64{base | en | extd}, base | en, true, ErrModeTransition, modeX2APIC},
		{"disabled to x2APIC", []uint64{base}, base | en | extd, true, ErrModeTransition, modeDisabled},
		{"EXTD without EN", nil, base | extd, true, ErrModeTransition, modeXAPIC},
		{"EXTD not exposed", nil, base | en | extd, false, ErrReservedBits, modeXAPIC},
		{"reserved bit 9", nil, base | en | 1<<9, true, ErrReservedBits, modeXAPIC},
		{"beyond 52 bits", nil, 1<<52 | base | en, true, ErrReservedBits, modeXAPIC},
		{"x2APIC stays", []uint64{base | en | extd}, base | en | extd, true, nil, modeX2APIC},
		{"relocation recorded", nil, 0xfed00000 | en, true, nil, modeXAPIC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 1, func(_ int, c *Config) { c.X2APIC = tc.x2apic })
			l := r.apics[0]
			for _, v := range tc.from {
				if err := l.WriteMSR(IA32_APIC_BASE, v); err != nil {
					t.Fatalf("setup write %#x: %v", v, err)
				}
			}
			before := l.APICBase()
			err := l.WriteMSR(IA32_APIC_BASE, tc.write)
			if !errors.Is(err, tc.err) {
				t.Fatalf("write %#x: %v, want %v", tc.write, err, tc.err)
			}
			l.mu.Lock()
			mode := l.mode
			l.mu.Unlock()
			if mode != tc.wantMode {
				t.Fatalf("mode %d, want %d", mode, tc.wantMode)
			}
			got, _ := l.ReadMSR(IA32_APIC_BASE)
			want := tc.write | bsp
			if err != nil {
				want = before
			}
			if got != want {
				t.Fatalf("IA32_APIC_BASE = %#x, want %#x", got, want)
			}
			b, ok := l.MMIOBase()
			if ok != (mode == modeXAPIC) || b != want&APIC_BASE_ADDR_MASK {
				t.Fatalf("MMIOBase %#x %v", b, ok)
			}
		})
	}
}

func TestBSPReadOnly(t *testing.T) {
	r := newRig(t, 2, nil)
	if err := r.apics[1].WriteMSR(IA32_APIC_BASE, base|en|bsp); err != nil || r.apics[1].APICBase()&bsp != 0 {
		t.Fatalf("AP became BSP: %v %#x", err, r.apics[1].APICBase())
	}
	if err := r.apics[0].SetAPICBase(base | en); err != nil || r.apics[0].APICBase()&bsp == 0 {
		t.Fatalf("BSP lost BSP: %v %#x", err, r.apics[0].APICBase())
	}
}

func TestX2APICRegisters(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.ID = 0x125 })
	l := r.apics[0]
	if _, err := l.ReadMSR(0x808); err != ErrNotX2APIC {
		t.Fatalf("x2APIC MSR in xAPIC mode: %v", err)
	}
	r.w(0, ID, 0x07<<24) // software moves the xAPIC ID ...
	r.x2(0)              // ... x2APIC mode shows the initial ID
	if b := r.rd(0, ID); b != 0xffffffff {
		t.Fatalf("MMIO in x2APIC mode reads %#x, want all ones", b)
	}
	r.w(0, TPR, 0x50) // dropped
	msr := func(reg uint32) uint32 { return X2APIC_MSR_BASE + reg>>4 }
	for _, tc := range []struct {
		name  string
		index uint32
		write bool
		v     uint64
		err   error
		want  uint64 // for reads
	}{
		{"ID", msr(ID), false, 0, nil, 0x125},
		{"LDR derived", msr(LDR), false, 0, nil, 0x12<<16 | 1<<5},
		{"VERSION", msr(VERSION), false, 0, nil, VERSION_VALUE},
		{"TPR untouched by MMIO", msr(TPR), false, 0, nil, 0},
		{"SVR", msr(SVR), false, 0, nil, 0xff},
		{"write TPR", msr(TPR), true, 0x20, nil, 0},
		{"TPR", msr(TPR), false, 0, nil, 0x20},
		{"write ID", msr(ID), true, 1, ErrReadOnly, 0},
		{"write VERSION", msr(VERSION), true, 0, ErrReadOnly, 0},
		{"write PPR", msr(PPR), true, 0, ErrReadOnly, 0},
		{"write LDR", msr(LDR), true, 0, ErrReadOnly, 0},
		{"write ISR", msr(ISR + 0x30), true, 0, ErrReadOnly, 0},
		{"write IRR", msr(IRR), true, 0, ErrReadOnly, 0},
		{"write CURRENT_COUNT", msr(CURRENT_COUNT), true, 0, ErrReadOnly, 0},
		{"read EOI", msr(EOI), false, 0, ErrWriteOnly, 0},
		{"read SELF_IPI", msr(SELF_IPI), false, 0, ErrWriteOnly, 0},
		{"write EOI non-zero", msr(EOI), true, 1, ErrReservedBits, 0},
		{"write EOI zero", msr(EOI), true, 0, nil, 0},
		{"write ESR non-zero", msr(ESR), true, 1, ErrReservedBits, 0},
		{"write TPR bits 63:32", msr(TPR), true, 1 << 32, ErrReservedBits, 0},
		{"read APR", msr(APR), false, 0, ErrReserved, 0},
		{"read RRD", msr(RRD), false, 0, ErrReserved, 0},
		{"read DFR", msr(DFR), false, 0, ErrReserved, 0},
		{"write DFR", msr(DFR), true, 0, ErrReserved, 0},
		{"read ICR_HI", msr(ICR_HI), false, 0, ErrReserved, 0},
		{"read 0x801", 0x801, false, 0, ErrReserved, 0},
		{"read 0x8ff", 0x8ff, false, 0, ErrReserved, 0},
		{"not a LAPIC MSR", 0x1c, false, 0, ErrNotLAPICMSR, 0},
		{"write not a LAPIC MSR", 0x900, true, 0, ErrNotLAPICMSR, 0},
		{"LVT_LINT0 masks read-only bits", msr(LVT_LINT0), true, 0xffffffff, nil, 0},
		{"LVT_LINT0", msr(LVT_LINT0), false, 0, nil, 0x1a7ff},
		{"LVT_TIMER", msr(LVT_TIMER), true, 0xffffffff, nil, 0},
		{"LVT_TIMER read", msr(LVT_TIMER), false, 0, nil, 0x700ff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.write {
				if err := l.WriteMSR(tc.index, tc.v); err != tc.err {
					t.Fatalf("WRMSR %#x: %v, want %v", tc.index, err, tc.err)
				}
				return
			}
			v, err := l.ReadMSR(tc.index)
			if err != tc.err || v != tc.want {
				t.Fatalf("RDMSR %#x = %#x %v, want %#x %v", tc.index, v, err, tc.want, tc.err)
			}
		})
	}
	if !HandlesMSR(0x1b) || !HandlesMSR(0x6e0) || !HandlesMSR(0x8ff) || HandlesMSR(0x900) || HandlesMSR(0x1c) {
		t.Fatal("HandlesMSR")
	}
}

func TestLVTTimerWithoutDeadline(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.TSCDeadline, c.TSC, c.TSCHz = false, nil, 0 })
	l := r.apics[0]
	if _, err := l.ReadMSR(IA32_TSC_DEADLINE); err != ErrNoTSCDeadline {
		t.Fatalf("IA32_TSC_DEADLINE read: %v", err)
	}
	if err := l.WriteMSR(IA32_TSC_DEADLINE, 5); err != ErrNoTSCDeadline {
		t.Fatalf("IA32_TSC_DEADLINE write: %v", err)
	}
	r.enable(0)
	r.w(0, LVT_TIMER, TIMER_TSC_DEADLINE|0x40)
	if v := r.rd(0, LVT_TIMER); v != 0x40 {
		t.Fatalf("LVT timer %#x: TSC-deadline mode bit should be reserved", v)
	}
}

func TestX2APICIPIs(t *testing.T) {
	for _, tc := range []struct {
		name string
		icr  uint64
		want string
	}{
		{"physical", 2<<32 | 0x40, "2"},
		{"physical to 8-bit broadcast is not broadcast", 0xff<<32 | 0x40, ""},
		{"broadcast", 0xffffffff<<32 | 0x40, "0123"},
		{"logical cluster 0", 0b1010<<32 | ICR_DEST_LOGICAL | 0x40, "13"},
		{"logical cluster 1", (1<<16|1)<<32 | ICR_DEST_LOGICAL | 0x40, ""},
		{"all excluding self", 3<<18 | 0x40, "123"},
		{"self", 1<<18 | 0x40, "0"},
		{"lowest priority", 0b1100<<32 | ICR_DEST_LOGICAL | 1<<8 | 0x40, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 4, nil)
			for i := range r.apics {
				r.enable(i)
				r.x2(i)
			}
			if err := r.apics[0].WriteMSR(X2APIC_ICR, tc.icr); err != nil {
				t.Fatal(err)
			}
			if got := r.got(0x40); got != tc.want {
				t.Fatalf("received by %q, want %q", got, tc.want)
			}
			if v, _ := r.apics[0].ReadMSR(X2APIC_ICR); v != tc.icr {
				t.Fatalf("ICR reads %#x", v)
			}
		})
	}
	r := newRig(t, 2, nil)
	r.enable(0)
	r.enable(1)
	r.x2(1)
	// An 8-bit (IOAPIC, MSI) message reaches an x2APIC-mode LAPIC by ID
	// and by FFh broadcast.
	if n := r.bus.Deliver(Message{Vector: 0x50, Dest: 1}); n != 1 || !r.irr(1, 0x50) {
		t.Fatal("8-bit physical message to an x2APIC LAPIC")
	}
	if n := r.bus.Deliver(Message{Vector: 0x51, Dest: 0xff}); n != 2 {
		t.Fatalf("8-bit broadcast accepted by %d", n)
	}
	// x2APIC to xAPIC target: IDs compare as numbers.
	if err := r.apics[1].WriteMSR(X2APIC_ICR, 0x52); err != nil || !r.irr(0, 0x52) {
		t.Fatalf("x2APIC IPI to xAPIC LAPIC 0: %v", err)
	}
	if err := r.apics[1].WriteMSR(X2APIC_MSR_BASE+SELF_IPI>>4, 0x53); err != nil || !r.irr(1, 0x53) {
		t.Fatalf("SELF IPI: %v", err)
	}
}

func TestLeaveX2APIC(t *testing.T) {
	r := newRig(t, 1, func(_ int, c *Config) { c.ID = 3 })
	l := r.apics[0]
	r.enable(0)
	r.w(0, ID, 0x09<<24)
	r.x2(0)
	if err := l.WriteMSR(X2APIC_MSR_BASE+TPR>>4, 0x70); err != nil {
		t.Fatal(err)
	}
	l.Deliver(0x80, false)
	if err := l.WriteMSR(IA32_APIC_BASE, base|bsp); err != nil {
		t.Fatal(err)
	}
	if l.Deliver(0x81, false) || r.bus.Deliver(Message{Mode: DELIVERY_NMI, Dest: 0xff}) != 0 {
		t.Fatal("disabled LAPIC accepted messages")
	}
	if err := l.WriteMSR(IA32_APIC_BASE, base|en); err != nil {
		t.Fatal(err)
	}
	if id, tpr, svr := r.rd(0, ID), r.rd(0, TPR), r.rd(0, SVR); id != 3<<24 || tpr != 0 || svr != 0xff || r.irr(0, 0x80) {
		t.Fatalf("re-enabled LAPIC not in power-up state: ID %#x TPR %#x SVR %#x", id, tpr, svr)
	}
	// INIT keeps x2APIC mode.
	r.x2(0)
	l.InitReset()
	if !l.X2APICMode() {
		t.Fatal("INIT left x2APIC mode")
	}
}

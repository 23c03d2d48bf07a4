package rtc

import (
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/bus"
)

// rig is an RTC on a port bus whose wall clock is base plus the fake
// clock's time.
type rig struct {
	t   *testing.T
	clk *vclock.Fake
	irq *irqline.Recorder
	r   *RTC
	b   *bus.PortBus
}

func newRig(t *testing.T, base time.Time) *rig {
	t.Helper()
	g := &rig{t: t, clk: &vclock.Fake{}, irq: &irqline.Recorder{}}
	g.r = New(Config{Clock: g.clk, Wall: func() time.Time { return base.Add(g.clk.Now()) }, IRQ: g.irq})
	g.b = bus.NewPortBus(bus.Policy{Strict: true})
	if err := g.b.Register(PORT_BASE, SIZE, g.r, "rtc"); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *rig) get(idx byte) byte {
	g.t.Helper()
	d := []byte{0}
	if err := g.b.Write(PORT_BASE, []byte{idx}); err != nil {
		g.t.Fatal(err)
	}
	if err := g.b.Read(PORT_BASE+1, d); err != nil {
		g.t.Fatal(err)
	}
	return d[0]
}

func (g *rig) set(idx, v byte) {
	g.t.Helper()
	if err := g.b.Write(PORT_BASE, []byte{idx}); err != nil {
		g.t.Fatal(err)
	}
	if err := g.b.Write(PORT_BASE+1, []byte{v}); err != nil {
		g.t.Fatal(err)
	}
}

var timeRegs = []byte{REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY}

func (g *rig) clock() [8]byte {
	var v [8]byte
	for i, idx := range timeRegs {
		v[i] = g.get(idx)
	}
	return v
}

func TestTimeBCD24(t *testing.T) {
	g := newRig(t, time.Date(2024, 2, 29, 23, 59, 58, 500e6, time.UTC))
	// Thursday: day of week 5 (Sunday is 1).
	if got, want := g.clock(), [8]byte{0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20}; got != want {
		t.Fatalf("time % x, want % x", got, want)
	}
	g.clk.Advance(2 * time.Second)
	if got, want := g.clock(), [8]byte{0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20}; got != want {
		t.Fatalf("time after 2 s % x, want % x", got, want)
	}
	if g.get(REG_D) != REG_D_VRT {
		t.Fatal("register D without VRT")
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		hour      int
		b         byte
		hrs, secs byte
		name      string
	}{
		{13, REG_B_24_12, 0x13, 0x09, "bcd-24"},
		{13, 0, 0x81, 0x09, "bcd-12-pm"},
		{0, 0, 0x12, 0x09, "bcd-12-midnight"},
		{12, 0, 0x92, 0x09, "bcd-12-noon"},
		{13, REG_B_DM | REG_B_24_12, 13, 9, "bin-24"},
		{13, REG_B_DM, 0x81, 9, "bin-12-pm"},
		{12, REG_B_DM, 0x8c, 9, "bin-12-noon"},
		{0, REG_B_DM, 12, 9, "bin-12-midnight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, time.Date(2031, 7, 4, tc.hour, 5, 9, 0, time.UTC))
			g.set(REG_B, tc.b)
			if h, s := g.get(REG_HOURS), g.get(REG_SECONDS); h != tc.hrs || s != tc.secs {
				t.Fatalf("hours %#x seconds %#x, want %#x %#x", h, s, tc.hrs, tc.secs)
			}
			// Round trip: set the time in this format and read it
			// back a second later.
			g.set(REG_B, tc.b|REG_B_SET)
			g.set(REG_HOURS, tc.hrs)
			g.set(REG_B, tc.b)
			g.clk.Advance(time.Second)
			if got := g.r.Time(); got.Hour() != tc.hour || got.Second() != 10 {
				t.Fatalf("after set: %v, want hour %d second 10", got, tc.hour)
			}
		})
	}
}

// TestSetTimeLinux sets the time the way Linux's mc146818 driver does:
// SET, divider reset, the fields, divider back, SET clear.
func TestSetTimeLinux(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	b, a := g.get(REG_B), g.get(REG_A)
	g.set(REG_B, b|REG_B_SET)
	g.set(REG_A, a|0x70)
	g.clk.Advance(3 * time.Second) // frozen
	for i, v := range []byte{0x30, 0x15, 0x10, 0x01, 0x15, 0x06, 0x27, 0x20} {
		g.set(timeRegs[i], v)
	}
	if got := g.get(REG_SECONDS); got != 0x30 {
		t.Fatalf("frozen seconds read %#x, want the written 0x30", got)
	}
	g.clk.Advance(time.Second)
	g.set(REG_A, a)
	g.set(REG_B, b)
	g.clk.Advance(90 * time.Second)
	want := time.Date(2027, 6, 15, 10, 17, 0, 0, time.UTC)
	if got := g.r.Time(); !got.Equal(want) {
		t.Fatalf("time %v, want %v", got, want)
	}
	// Writing one field of a running clock moves only that field.
	g.set(REG_YEAR, 0x28)
	if got := g.r.Time(); got.Year() != 2028 || got.Minute() != 17 {
		t.Fatalf("after setting the year: %v", got)
	}
}

func TestUIP(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	g.clk.Advance(500 * time.Millisecond)
	if g.get(REG_A)&REG_A_UIP != 0 {
		t.Fatal("UIP set mid-second")
	}
	g.clk.Advance(500*time.Millisecond - UIP_LEAD)
	if g.get(REG_A)&REG_A_UIP == 0 {
		t.Fatal("UIP clear just before the update")
	}
	if g.get(REG_SECONDS) != 0 {
		t.Fatal("seconds changed before the update")
	}
	g.clk.Advance(UIP_LEAD)
	if g.get(REG_A)&REG_A_UIP != 0 || g.get(REG_SECONDS) != 1 {
		t.Fatal("update not done at the second")
	}
	g.set(REG_B, REG_B_SET)
	g.clk.Advance(time.Second - UIP_LEAD/2)
	if g.get(REG_A)&REG_A_UIP != 0 {
		t.Fatal("UIP set while SET inhibits updates")
	}
}

// serve advances the clock in steps of step for total, reading register
// C like an interrupt handler whenever IRQ8 is high; it returns the OR of
// the values read.
func (g *rig) serve(total, step time.Duration) (seen byte, irqs int) {
	for el := time.Duration(0); el < total; el += step {
		g.clk.Advance(step)
		if g.irq.Level() {
			c := g.get(REG_C)
			if c&REG_C_IRQF == 0 {
				g.t.Fatalf("IRQ8 high but register C = %#x", c)
			}
			seen |= c
			irqs++
			if g.irq.Level() {
				g.t.Fatal("IRQ8 still high after reading C")
			}
		}
	}
	return seen, irqs
}

func TestPeriodicInterrupt(t *testing.T) {
	for _, rs := range []byte{3, 6, 15, 1} {
		g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
		g.set(REG_A, REG_A_DV_32KHZ|rs)
		g.set(REG_B, REG_B_24_12|REG_B_PIE)
		period := PeriodicRate(rs)
		seen, irqs := g.serve(time.Second, period/4)
		want := int(TIME_BASE_HZ / periodTicks(rs))
		if irqs < want-1 || irqs > want || seen&REG_C_PF == 0 {
			t.Errorf("rs %d (%v): %d interrupts in 1 s, C %#x; want %d with PF", rs, period, irqs, seen, want)
		}
		if g.irq.Edges() != irqs {
			t.Errorf("rs %d: %d edges for %d interrupts", rs, g.irq.Edges(), irqs)
		}
	}
	if PeriodicRate(6) != 976563*time.Nanosecond || PeriodicRate(15) != 500*time.Millisecond || PeriodicRate(0) != 0 {
		t.Errorf("PeriodicRate(6, 15, 0) = %v %v %v", PeriodicRate(6), PeriodicRate(15), PeriodicRate(0))
	}
}

func TestUnservedInterruptStaysHigh(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	g.set(REG_B, REG_B_24_12|REG_B_PIE)
	g.clk.Advance(time.Second)
	if g.irq.Edges() != 1 || !g.irq.Level() {
		t.Fatalf("edges %d level %v; want one edge, held high", g.irq.Edges(), g.irq.Level())
	}
	if g.clk.Pending() != 0 {
		t.Fatalf("%d timers run while IRQF is set", g.clk.Pending())
	}
	// Missed ticks collapse into one PF; reading C re-arms.
	if c := g.get(REG_C); c != REG_C_IRQF|REG_C_PF|REG_C_UF {
		t.Fatalf("C = %#x", c)
	}
	if g.irq.Level() || g.clk.Pending() != 1 {
		t.Fatalf("after reading C: level %v, %d timers", g.irq.Level(), g.clk.Pending())
	}
	// Disabling the interrupt lowers nothing more and stops the timer.
	g.set(REG_B, REG_B_24_12)
	if g.clk.Pending() != 0 {
		t.Fatal("timer left with no interrupt enabled")
	}
}

func TestFlagsWithoutEnables(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	g.set(REG_HOURS_ALARM, ALARM_DONT_CARE)
	g.set(REG_MINUTES_ALARM, ALARM_DONT_CARE)
	g.set(REG_SECONDS_ALARM, ALARM_DONT_CARE)
	g.clk.Advance(1500 * time.Millisecond)
	if c := g.get(REG_C); c != REG_C_PF|REG_C_AF|REG_C_UF {
		t.Fatalf("C = %#x, want PF|AF|UF without IRQF", c)
	}
	if g.get(REG_C) != 0 {
		t.Fatal("C not cleared by reading")
	}
	if g.irq.Edges() != 0 || g.clk.Pending() != 0 {
		t.Fatalf("%d edges, %d timers with no interrupt enabled", g.irq.Edges(), g.clk.Pending())
	}
	// Enabling an interrupt whose flag is pending raises IRQ8 at once.
	g.clk.Advance(time.Second)
	g.set(REG_B, REG_B_24_12|REG_B_UIE)
	if !g.irq.Level() {
		t.Fatal("UIE with UF pending did not raise IRQ8")
	}
}

func TestUpdateInterrupt(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 250e6, time.UTC))
	g.set(REG_B, REG_B_24_12|REG_B_UIE)
	seen, irqs := g.serve(10*time.Second, 10*time.Millisecond)
	if irqs != 10 || seen&(REG_C_UF|REG_C_IRQF) != REG_C_UF|REG_C_IRQF {
		t.Fatalf("%d update interrupts in 10 s (C %#x), want 10", irqs, seen)
	}
	// SET clears UIE.
	g.set(REG_B, REG_B_24_12|REG_B_UIE|REG_B_SET)
	if g.get(REG_B)&REG_B_UIE != 0 {
		t.Fatal("SET did not clear UIE")
	}
}

func TestAlarmInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h, m, s    byte
		first      time.Duration // from 10:00:00
		count10min int
	}{
		{"exact", 0x10, 0x00, 0x05, 5 * time.Second, 1},
		{"every-minute", ALARM_DONT_CARE, ALARM_DONT_CARE, 0x30, 30 * time.Second, 10},
		{"every-hour", ALARM_DONT_CARE, 0x07, 0x00, 7 * time.Minute, 1},
		{"every-second", 0xff, 0xff, 0xff, time.Second, 600},
		{"never", 0x25, 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := func() *rig {
				g := newRig(t, time.Date(2020, 1, 1, 10, 0, 0, 0, time.UTC))
				g.set(REG_HOURS_ALARM, tc.h)
				g.set(REG_MINUTES_ALARM, tc.m)
				g.set(REG_SECONDS_ALARM, tc.s)
				g.set(REG_B, REG_B_24_12|REG_B_AIE)
				return g
			}
			if tc.first > 0 {
				g := start()
				g.clk.Advance(tc.first - time.Millisecond)
				if g.irq.Level() {
					t.Fatal("alarm early")
				}
				g.clk.Advance(time.Millisecond)
				if !g.irq.Level() {
					t.Fatal("alarm late")
				}
				if c := g.get(REG_C); c&(REG_C_AF|REG_C_IRQF) != REG_C_AF|REG_C_IRQF {
					t.Fatalf("C = %#x", c)
				}
			}
			_, irqs := start().serve(10*time.Minute, 250*time.Millisecond)
			if irqs != tc.count10min {
				t.Fatalf("%d alarms in 10 minutes, want %d", irqs, tc.count10min)
			}
		})
	}
}

func TestNVRAM(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := NVRAM_USER_FIRST; i < NVRAM_SIZE; i++ {
		if i != REG_CENTURY {
			g.set(byte(i), byte(i*7))
		}
	}
	for i := NVRAM_USER_FIRST; i < NVRAM_SIZE; i++ {
		if got := g.get(byte(i)); i != REG_CENTURY && got != byte(i*7) {
			t.Fatalf("NVRAM[%#x] = %#x, want %#x", i, got, byte(i*7))
		}
	}
	// Bit 7 of the index is NMI disable, not part of the index.
	g.set(INDEX_NMI_DISABLE|0x40, 0x5a)
	if !g.r.NMIDisabled() || g.r.NVRAM(0x40) != 0x5a {
		t.Fatalf("NMI disabled %v, NVRAM[0x40] %#x", g.r.NMIDisabled(), g.r.NVRAM(0x40))
	}
	d := []byte{0}
	g.b.Read(PORT_BASE, d)
	if d[0] != INDEX_NMI_DISABLE|0x40 {
		t.Fatalf("port 70h reads %#x", d[0])
	}
	g.set(REG_C, 0xff)
	g.set(REG_D, 0)
	if g.get(REG_D) != REG_D_VRT || g.get(REG_C) != 0 {
		t.Fatal("registers C and D are not read-only")
	}
	for _, bad := range []int{0, REG_D, REG_CENTURY, NVRAM_SIZE, -1} {
		if err := g.r.SetNVRAM(bad, 1); err == nil {
			t.Errorf("SetNVRAM(%#x) accepted", bad)
		}
	}
	if err := g.r.SetNVRAM(0x7f, 9); err != nil || g.get(0x7f) != 9 {
		t.Fatalf("SetNVRAM(0x7f): %v", err)
	}
}

func TestMemorySize(t *testing.T) {
	g := newRig(t, time.Now())
	const mib, gib = 1 << 20, 1 << 30
	g.r.SetMemorySize(3*gib, 2*gib)
	g.r.SetCPUCount(4)
	w16 := func(lo int) int { return int(g.get(byte(lo))) | int(g.get(byte(lo+1)))<<8 }
	if got := w16(CMOS_BASE_MEM_LOW); got != 640 {
		t.Errorf("base memory %d KiB", got)
	}
	if got := w16(CMOS_EXT_MEM_LOW); got != 0xffff {
		t.Errorf("extended memory %d KiB, want capped 65535", got)
	}
	if got := w16(CMOS_EXT_MEM_ACTUAL_LOW); got != 0xffff {
		t.Errorf("actual extended memory %d KiB", got)
	}
	if got, want := w16(CMOS_MEM_ABOVE_16M_LOW), (3*gib-16*mib)/(64<<10); got != want {
		t.Errorf("above 16 MiB: %d blocks, want %d", got, want)
	}
	above4 := int(g.get(CMOS_MEM_ABOVE_4G_LOW)) | int(g.get(CMOS_MEM_ABOVE_4G_MID))<<8 | int(g.get(CMOS_MEM_ABOVE_4G_HIGH))<<16
	if above4 != 2*gib/(64<<10) {
		t.Errorf("above 4 GiB: %d blocks", above4)
	}
	if g.get(CMOS_SMP_COUNT) != 3 {
		t.Errorf("SMP count byte %d, want 3", g.get(CMOS_SMP_COUNT))
	}
	sum := 0
	for i := CMOS_CHECKSUM_FIRST; i <= CMOS_CHECKSUM_LAST; i++ {
		sum += int(g.get(byte(i)))
	}
	if got := int(g.get(CMOS_CHECKSUM_LOW)) | int(g.get(CMOS_CHECKSUM_HIGH))<<8; got != sum&0xffff {
		t.Errorf("checksum %#x, want %#x", got, sum)
	}
	g.r.SetMemorySize(8*mib, 0)
	if w16(CMOS_EXT_MEM_LOW) != 7*1024 || w16(CMOS_MEM_ABOVE_16M_LOW) != 0 {
		t.Errorf("8 MiB: ext %d, above16 %d", w16(CMOS_EXT_MEM_LOW), w16(CMOS_MEM_ABOVE_16M_LOW))
	}
}

func TestStopAndNoAlloc(t *testing.T) {
	g := newRig(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	allocs := testing.AllocsPerRun(100, func() {
		g.r.Write(PORT_INDEX, []byte{REG_SECONDS})
		g.r.Read(PORT_DATA, []byte{0})
		g.r.Write(PORT_INDEX, []byte{0x20})
		g.r.Write(PORT_DATA, []byte{1})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access", allocs)
	}
	g.set(REG_B, REG_B_24_12|REG_B_PIE)
	g.r.Stop()
	g.set(REG_B, REG_B_24_12|REG_B_UIE)
	g.clk.Advance(time.Second)
	if g.irq.Edges() != 0 || g.clk.Pending() != 0 {
		t.Fatalf("after Stop: %d edges, %d timers", g.irq.Edges(), g.clk.Pending())
	}
}

var _ bus.Device = (*RTC)(nil)

// FuzzRTC drives the RTC with accesses decoded from the input, three bytes
// each (opcode, value, clock step). It checks that nothing panics, that at
// most one timer is pending, that IRQ8 is high exactly when IRQF is set
// (probed by reading register C), that register C's low nibble and
// register D are constant, that the running time reads back in range and
// that NVRAM keeps what is written.
func FuzzRTC(f *testing.F) {
	f.Add([]byte{0x00, REG_B, 0, 0x01, 0x52, 0, 0x80, 0, 200, 0x00, REG_C, 0, 0x41, 0, 0})
	f.Add([]byte{0x00, REG_B, 0, 0x01, 0x86, 0, 0x00, REG_SECONDS, 0, 0x01, 0x99, 0, 0x00, REG_B, 0, 0x01, 0x06, 0, 0x80, 0, 255})
	f.Add([]byte{0x00, REG_A, 0, 0x01, 0x7f, 0, 0x00, REG_HOURS, 0, 0x01, 0xff, 0, 0x00, REG_A, 0, 0x01, 0x23, 0})
	f.Add([]byte{0x00, REG_SECONDS_ALARM, 0, 0x01, 0xc0, 0, 0x00, REG_B, 0, 0x01, 0x22, 0, 0x8f, 0, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		base := time.Date(2024, 12, 31, 23, 59, 50, 0, time.UTC)
		clk := &vclock.Fake{}
		var irq irqline.Recorder
		r := New(Config{Clock: clk, Wall: func() time.Time { return base.Add(clk.Now()) }, IRQ: &irq})
		var shadow [NVRAM_SIZE]int // -1: unknown
		for i := range shadow {
			shadow[i] = -1
		}
		buf := make([]byte, 8)
		for len(in) >= 3 {
			op, v, step := in[0], in[1], in[2]
			in = in[3:]
			d := buf[:1<<(op>>4&3)]
			for i := range d {
				d[i] = v
			}
			off := uint64(op & 1)
			switch {
			case op&0x80 != 0:
				clk.Advance(time.Duration(step) << (op & 0x1f % 26))
			case op&0x40 != 0:
				r.Read(off, d)
			default:
				r.Write(off, d)
				if len(d) > 1 || off == PORT_DATA {
					idx := int(r.index & INDEX_MASK)
					if idx >= NVRAM_USER_FIRST && idx != REG_CENTURY {
						shadow[idx] = int(v)
					}
				}
			}
			if clk.Pending() > 1 {
				t.Fatalf("%d timers pending", clk.Pending())
			}
		}
		r.mu.Lock()
		updating, b := r.updating(), r.ram[REG_B]
		r.mu.Unlock()
		rd := func(idx byte) byte {
			r.Write(PORT_INDEX, []byte{idx})
			x := []byte{0}
			r.Read(PORT_DATA, x)
			return x[0]
		}
		for i, want := range shadow {
			if want >= 0 && int(rd(byte(i))) != want {
				t.Fatalf("NVRAM[%#x] = %#x, want %#x", i, rd(byte(i)), want)
			}
		}
		if rd(REG_D) != REG_D_VRT {
			t.Fatal("register D changed")
		}
		level := irq.Level()
		c := rd(REG_C)
		if c&0x0f != 0 || (c&REG_C_IRQF != 0) != level {
			t.Fatalf("C = %#x with IRQ8 %v", c, level)
		}
		if irq.Level() {
			t.Fatal("IRQ8 high after reading C")
		}
		if updating {
			dec := func(x byte) int {
				if b&REG_B_DM != 0 {
					return int(x)
				}
				return int(x>>4)*10 + int(x&0xf)
			}
			if s, m := dec(rd(REG_SECONDS)), dec(rd(REG_MINUTES)); s > 59 || m > 59 {
				t.Fatalf("running clock reads %d:%d", m, s)
			}
			if mo, dw := dec(rd(REG_MONTH)), dec(rd(REG_DAY_OF_WEEK)); mo < 1 || mo > 12 || dw < 1 || dw > 7 {
				t.Fatalf("running clock reads month %d day of week %d", mo, dw)
			}
		}
		r.Stop()
		if clk.Pending() != 0 {
			t.Fatal("timer left after Stop")
		}
	})
}

// TestConcurrent runs the periodic interrupt on the real clock while
// several goroutines read and write registers, for the race detector.
func TestConcurrent(t *testing.T) {
	var irq irqline.Recorder
	r := New(Config{Clock: vclock.NewReal(), IRQ: &irq})
	r.Write(PORT_INDEX, []byte{REG_A})
	r.Write(PORT_DATA, []byte{REG_A_DV_32KHZ | 3}) // 8192 Hz
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := []byte{0, 0}
			for i := 0; i < 2000; i++ {
				r.Write(PORT_INDEX, []byte{REG_B, REG_B_24_12 | REG_B_PIE | REG_B_UIE})
				r.Write(PORT_INDEX, []byte{byte(i % 14)})
				r.Read(PORT_DATA, d[:1])
				r.Read(PORT_INDEX, d)
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
	r.Stop()
}

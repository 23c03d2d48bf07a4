// Package rtc models the Motorola MC146818A real-time clock and its CMOS
// RAM as a PC presents them at ports 70h (index, with the NMI disable bit)
// and 71h (data).
//
// # Model
//
// The time of day is not ticked. It is the host's wall clock (a function
// given at construction) plus an offset that changes when the guest sets
// the time, read in UTC and presented in the format register B selects
// (BCD or binary, 24- or 12-hour). While the guest holds SET in register B,
// or holds the divider chain in reset through register A, the time
// registers are frozen and writes to them go to a snapshot; when both are
// released the snapshot becomes the new time, starting from .000 of its
// second.
//
// Interrupts follow the datasheet: register C's PF, AF and UF are set by
// periodic ticks, alarm matches and update cycles whether or not they are
// enabled, IRQF is PF·PIE + AF·AIE + UF·UIE, and the IRQ8 line is driven
// at IRQF's level until the guest reads register C, which clears the
// flags. Flags are computed lazily from the clocks when register C is
// read; a vclock timer runs only while an enabled event can raise IRQF,
// and none runs while IRQF is already set, so a guest that stops reading
// register C costs nothing and missed periodic ticks collapse into one PF,
// as on hardware. Periodic deadlines are multiples of the period from a
// fixed origin, so they do not drift.
//
// # Simplifications
//
//   - Update cycles happen at the guest time's second boundaries; UIP in
//     register A reads 1 during the UIP_LEAD before each (the datasheet's
//     guarantee that a clear UIP leaves at least 244 µs to read the time).
//   - After the time is set, the first update comes one second after the
//     time registers are released; the hardware's first update comes
//     500 ms after the divider chain leaves reset.
//   - The day of week is derived from the date; a written day of week is
//     kept only while the time is frozen. Daylight saving (DSE) and the
//     square-wave output (SQWE) have no effect.
//   - Divider values other than 11x (reset) all count as the 32.768 kHz
//     time base.
//   - The guest time is kept as an offset of at most ±292 years from the
//     host's wall clock; a time set beyond that is clamped.
//   - Reads of port 70h return the last value written to it.
//
// # Locking
//
// One mutex guards the device. The wall-clock function and the Clock's
// methods are called with it held and must not call back into the RTC. The
// IRQ8 line is set only after the mutex is released: a changed level is
// re-checked after SetLevel returns and set again if another goroutine
// changed it meanwhile, so the line always ends at the current IRQF.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package rtc

import (
	"fmt"
	"sync"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
)

// Ports (IBM PC/AT Technical Reference, "Real-Time Clock/CMOS RAM"; Intel
// ICH9 datasheet, §13.6 "Real Time Clock Registers").
const (
	// PORT_BASE is the index port; the data port follows at 71h.
	PORT_BASE = 0x70
	// SIZE is the number of ports claimed from PORT_BASE.
	SIZE = 2
	// PORT_INDEX and PORT_DATA are offsets from PORT_BASE.
	PORT_INDEX = 0
	PORT_DATA  = 1
	// INDEX_NMI_DISABLE is bit 7 of port 70h: set, NMIs are masked
	// (ICH9 §13.7.2 "NMI_EN—NMI Enable and Real Time Clock Index").
	INDEX_NMI_DISABLE = 1 << 7
	// INDEX_MASK selects the CMOS byte.
	INDEX_MASK = 0x7f
)

// Register map (MC146818A datasheet, "Address Map"; the century
// byte is the IBM PC/AT convention, named by the ACPI FADT's CENTURY field).
const (
	REG_SECONDS       = 0x00
	REG_SECONDS_ALARM = 0x01
	REG_MINUTES       = 0x02
	REG_MINUTES_ALARM = 0x03
	REG_HOURS         = 0x04
	REG_HOURS_ALARM   = 0x05
	REG_DAY_OF_WEEK   = 0x06
	REG_DAY_OF_MONTH  = 0x07
	REG_MONTH         = 0x08
	REG_YEAR          = 0x09
	REG_A             = 0x0a
	REG_B             = 0x0b
	REG_C             = 0x0c
	REG_D             = 0x0d
	REG_CENTURY       = 0x32
	// NVRAM_SIZE is the number of CMOS bytes (the MC146818A's 64 plus
	// the PC's extension to 128).
	NVRAM_SIZE = 128
	// NVRAM_USER_FIRST is the first byte not used by the clock.
	NVRAM_USER_FIRST = 0x0e
	// ALARM_DONT_CARE: an alarm byte with both top bits set matches
	// every value (MC146818A, "Alarm").
	ALARM_DONT_CARE = 0xc0
	// HOURS_PM is the PM bit of the hours registers in 12-hour mode.
	HOURS_PM = 1 << 7
)

// Register A (MC146818A, "Register A").
const (
	// REG_A_UIP is the read-only update-in-progress bit.
	REG_A_UIP = 1 << 7
	// REG_A_DV_MASK is the divider field DV2-DV0.
	REG_A_DV_MASK = 7 << 4
	// REG_A_DV_32KHZ is DV = 010: 32.768 kHz time base, running.
	REG_A_DV_32KHZ = 2 << 4
	// REG_A_DV_RESET is the mask of DV = 11x: divider chain in reset.
	REG_A_DV_RESET = 6 << 4
	// REG_A_RS_MASK is the rate select field RS3-RS0.
	REG_A_RS_MASK = 0x0f
)

// Register B (MC146818A, "Register B"). Setting SET also clears UIE, as
// the datasheet of the compatible Dallas DS12887 documents.
const (
	REG_B_SET   = 1 << 7 // inhibit updates, allow setting the time
	REG_B_PIE   = 1 << 6 // periodic interrupt enable
	REG_B_AIE   = 1 << 5 // alarm interrupt enable
	REG_B_UIE   = 1 << 4 // update-ended interrupt enable
	REG_B_SQWE  = 1 << 3 // square-wave enable
	REG_B_DM    = 1 << 2 // data mode: 1 binary, 0 BCD
	REG_B_24_12 = 1 << 1 // 1: 24-hour mode
	REG_B_DSE   = 1 << 0 // daylight saving enable
)

// Register C (read-only, cleared by reading) and register D (MC146818A,
// "Register C", "Register D").
const (
	REG_C_IRQF = 1 << 7
	REG_C_PF   = 1 << 6
	REG_C_AF   = 1 << 5
	REG_C_UF   = 1 << 4
	REG_D_VRT  = 1 << 7 // valid RAM and time
)

// Timing (MC146818A datasheet, "Update Cycle" and the periodic interrupt
// rate table).
const (
	// TIME_BASE_HZ is the crystal of a PC's RTC.
	TIME_BASE_HZ = 32768
	// UIP_LEAD is how long before an update cycle UIP rises.
	UIP_LEAD = 244 * time.Microsecond
	// RESET_REG_A and RESET_REG_B are the values firmware leaves: 32.768
	// kHz running with a 1024 Hz periodic rate; BCD, 24-hour.
	RESET_REG_A = REG_A_DV_32KHZ | 6
	RESET_REG_B = REG_B_24_12
)

// PeriodicRate returns the periodic interrupt period selected by rate
// select value rs (0-15) with the 32.768 kHz time base; 0 means none.
func PeriodicRate(rs uint8) time.Duration {
	p := periodTicks(rs)
	if p == 0 {
		return 0
	}
	return ticksToDur(p)
}

// periodTicks is the period in TIME_BASE_HZ ticks: 2^(rs-1), except that
// rates 1 and 2 repeat rates 8 and 9.
func periodTicks(rs uint8) uint64 {
	switch rs &= REG_A_RS_MASK; {
	case rs == 0:
		return 0
	case rs <= 2:
		return 1 << (rs + 6)
	}
	return 1 << (rs - 1)
}

// Config configures an RTC.
type Config struct {
	// Clock runs the interrupt timers.
	Clock vclock.Clock
	// Wall is the host's wall clock; nil means time.Now.
	Wall func() time.Time
	// IRQ is IRQ8; nil connects it to nothing.
	IRQ irqline.Line
}

// RTC is the clock and its CMOS RAM. It implements bus.Device for ports
// 70h-71h. Use New.
type RTC struct {
	mu    sync.Mutex
	clock vclock.Clock
	wall  func() time.Time
	irq   irqline.Line

	index  byte // port 70h as last written
	ram    [NVRAM_SIZE]byte
	offset time.Duration // guest time minus wall time

	flags    byte  // PF, AF, UF
	level    bool  // IRQF, the level IRQ8 should have
	lastSec  int64 // guest Unix second of the last update cycle seen
	pEpoch   time.Duration
	lastPIdx uint64 // periodic ticks seen since pEpoch

	timer   vclock.Timer
	gen     uint64
	stopped bool
}

// New returns an RTC showing the host's wall-clock time, with registers A
// and B as firmware leaves them (RESET_REG_A, RESET_REG_B) and zeroed CMOS
// RAM.
func New(cfg Config) *RTC {
	r := &RTC{clock: cfg.Clock, wall: cfg.Wall, irq: cfg.IRQ}
	if r.wall == nil {
		r.wall = time.Now
	}
	if r.irq == nil {
		r.irq = irqline.None{}
	}
	r.ram[REG_A] = RESET_REG_A
	r.ram[REG_B] = RESET_REG_B
	r.lastSec = r.wall().Unix()
	r.pEpoch = r.clock.Now()
	return r
}

// Stop cancels the interrupt timer for good. Call it when the VM is torn
// down.
func (r *RTC) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.disarm()
}

// NMIDisabled reports whether the guest has set bit 7 of port 70h.
func (r *RTC) NMIDisabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.index&INDEX_NMI_DISABLE != 0
}

// Time returns the time the guest sees (as set, not as formatted).
func (r *RTC) Time() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frozen() {
		return r.decodeTime()
	}
	return r.wall().Add(r.offset).UTC()
}

// Read implements bus.Device for ports 70h-71h.
func (r *RTC) Read(offset uint64, data []byte) {
	r.mu.Lock()
	a := r.begin()
	for i := range data {
		switch offset + uint64(i) {
		case PORT_INDEX:
			data[i] = r.index
		case PORT_DATA:
			data[i] = r.readReg(r.index&INDEX_MASK, &a)
		default:
			data[i] = 0xff
		}
	}
	r.end(&a)
}

// Write implements bus.Device for ports 70h-71h.
func (r *RTC) Write(offset uint64, data []byte) {
	r.mu.Lock()
	a := r.begin()
	for i := range data {
		switch offset + uint64(i) {
		case PORT_INDEX:
			r.index = data[i]
		case PORT_DATA:
			r.writeReg(r.index&INDEX_MASK, data[i], &a)
		}
	}
	r.end(&a)
}

// access is the time of one bus access, sampled once.
type access struct {
	now   time.Duration // vclock time
	wall  time.Time     // host wall-clock time
	guest time.Time     // guest time (UTC), if not frozen
	dirty bool          // interrupt state may have changed: re-check and re-arm
}

// begin samples the clocks. Called with r.mu held.
func (r *RTC) begin() access {
	w := r.wall()
	return access{now: r.clock.Now(), wall: w, guest: w.Add(r.offset).UTC()}
}

// end re-arms the timer if needed, releases r.mu and drives IRQ8.
func (r *RTC) end(a *access) {
	changed := false
	if a.dirty {
		changed = r.update(a)
	}
	level := r.level
	r.mu.Unlock()
	if changed {
		r.setLine(level)
	}
}

// update folds elapsed events into the flags, recomputes IRQF and re-arms
// the timer. It reports whether IRQF changed. Called with r.mu held.
func (r *RTC) update(a *access) bool {
	r.fold(a)
	old := r.level
	r.level = r.flags&r.ram[REG_B]&(REG_B_PIE|REG_B_AIE|REG_B_UIE) != 0
	r.arm(a)
	return r.level != old
}

// setLine drives IRQ8 to level, then again if the level changed while
// SetLevel ran. Called without r.mu.
func (r *RTC) setLine(level bool) {
	for {
		r.irq.SetLevel(level)
		r.mu.Lock()
		cur := r.level
		r.mu.Unlock()
		if cur == level {
			return
		}
		level = cur
	}
}

func (r *RTC) dividerRunning() bool { return r.ram[REG_A]&REG_A_DV_RESET != REG_A_DV_RESET }
func (r *RTC) updating() bool       { return r.dividerRunning() && r.ram[REG_B]&REG_B_SET == 0 }
func (r *RTC) frozen() bool         { return !r.updating() }
func (r *RTC) binary() bool         { return r.ram[REG_B]&REG_B_DM != 0 }
func (r *RTC) hour24() bool         { return r.ram[REG_B]&REG_B_24_12 != 0 }

// pIndex returns the number of periodic ticks since pEpoch.
func (r *RTC) pIndex(now time.Duration, p uint64) uint64 {
	if p == 0 || now <= r.pEpoch {
		return 0
	}
	return durToTicks(now-r.pEpoch) / p
}

// fold sets PF, UF and AF for the events since the last fold.
func (r *RTC) fold(a *access) {
	if r.updating() {
		sec := a.guest.Unix()
		if sec > r.lastSec {
			r.flags |= REG_C_UF
			if m, ok := r.nextAlarm(r.lastSec); ok && m <= sec {
				r.flags |= REG_C_AF
			}
		}
		r.lastSec = sec
	}
	if p := periodTicks(r.ram[REG_A]); p != 0 && r.dividerRunning() {
		idx := r.pIndex(a.now, p)
		if idx > r.lastPIdx {
			r.flags |= REG_C_PF
		}
		r.lastPIdx = idx
	}
}

// arm schedules the timer for the next enabled event, unless IRQF is set
// (nothing can change until register C is read). Called with r.mu held,
// after fold.
func (r *RTC) arm(a *access) {
	r.disarm()
	if r.stopped || r.level {
		return
	}
	b := r.ram[REG_B]
	const never = time.Duration(1<<63 - 1)
	d := never
	if p := periodTicks(r.ram[REG_A]); b&REG_B_PIE != 0 && p != 0 && r.dividerRunning() {
		if t := r.pEpoch + ticksToDur((r.lastPIdx+1)*p); t > a.now {
			d = min(d, t-a.now)
		}
	}
	if r.updating() {
		if b&REG_B_UIE != 0 {
			d = min(d, time.Unix(r.lastSec+1, 0).Sub(a.guest))
		}
		if m, ok := r.nextAlarm(r.lastSec); ok && b&REG_B_AIE != 0 {
			d = min(d, time.Unix(m, 0).Sub(a.guest))
		}
	}
	if d == never {
		return
	}
	d = max(d, time.Nanosecond)
	gen := r.gen
	r.timer = r.clock.AfterFunc(d, func() { r.fire(gen) })
}

// disarm cancels the timer. Called with r.mu held.
func (r *RTC) disarm() {
	r.gen++
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// fire runs when the timer expires.
func (r *RTC) fire(gen uint64) {
	r.mu.Lock()
	if gen != r.gen {
		r.mu.Unlock()
		return
	}
	r.timer = nil
	a := r.begin()
	a.dirty = true
	r.end(&a)
}

// readReg returns CMOS byte idx.
func (r *RTC) readReg(idx byte, a *access) byte {
	switch idx {
	case REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY:
		if r.frozen() {
			return r.ram[idx]
		}
		return r.encodeField(idx, a.guest)
	case REG_A:
		v := r.ram[REG_A] &^ REG_A_UIP
		if r.updating() && a.guest.Nanosecond() >= int(time.Second-UIP_LEAD) {
			v |= REG_A_UIP
		}
		return v
	case REG_C:
		r.fold(a)
		v := r.flags
		if v&r.ram[REG_B]&(REG_B_PIE|REG_B_AIE|REG_B_UIE) != 0 {
			v |= REG_C_IRQF
		}
		r.flags = 0
		a.dirty = true
		return v
	case REG_D:
		return REG_D_VRT
	}
	return r.ram[idx]
}

// writeReg stores v in CMOS byte idx.
func (r *RTC) writeReg(idx, v byte, a *access) {
	switch idx {
	case REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY:
		if r.frozen() {
			r.ram[idx] = v
			return
		}
		// Setting one field of a running clock.
		r.fold(a)
		r.snapshot(a.guest)
		r.ram[idx] = v
		r.thaw(a)
		a.dirty = true
	case REG_SECONDS_ALARM, REG_MINUTES_ALARM, REG_HOURS_ALARM:
		r.fold(a)
		r.ram[idx] = v
		a.dirty = true
	case REG_A:
		r.fold(a)
		wasRunning, wasFrozen := r.dividerRunning(), r.frozen()
		r.ram[REG_A] = v &^ REG_A_UIP
		r.control(a, wasFrozen)
		if p := periodTicks(r.ram[REG_A]); !wasRunning && r.dividerRunning() {
			r.pEpoch, r.lastPIdx = a.now, 0
		} else {
			r.lastPIdx = r.pIndex(a.now, p)
		}
		a.dirty = true
	case REG_B:
		r.fold(a)
		wasFrozen := r.frozen()
		if v&REG_B_SET != 0 {
			v &^= REG_B_UIE // SET going high clears UIE
		}
		r.ram[REG_B] = v
		r.control(a, wasFrozen)
		a.dirty = true
	case REG_C, REG_D:
		// Read-only.
	default:
		r.ram[idx] = v
	}
}

// control freezes or thaws the time after a write to register A or B.
func (r *RTC) control(a *access, wasFrozen bool) {
	switch {
	case !wasFrozen && r.frozen():
		r.snapshot(a.guest)
	case wasFrozen && !r.frozen():
		r.thaw(a)
	}
}

// snapshot copies the time into the time registers.
func (r *RTC) snapshot(t time.Time) {
	for _, idx := range [...]byte{REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY} {
		r.ram[idx] = r.encodeField(idx, t)
	}
}

// thaw makes the time registers the guest time, from now on.
func (r *RTC) thaw(a *access) {
	t := r.decodeTime()
	r.offset = t.Sub(a.wall)
	a.guest = a.wall.Add(r.offset).UTC()
	r.lastSec = a.guest.Unix()
}

// encodeField returns time register idx for t in the current format.
func (r *RTC) encodeField(idx byte, t time.Time) byte {
	switch idx {
	case REG_SECONDS:
		return r.enc(t.Second())
	case REG_MINUTES:
		return r.enc(t.Minute())
	case REG_HOURS:
		return r.encHour(t.Hour())
	case REG_DAY_OF_WEEK:
		return r.enc(int(t.Weekday()) + 1) // Sunday is 1
	case REG_DAY_OF_MONTH:
		return r.enc(t.Day())
	case REG_MONTH:
		return r.enc(int(t.Month()))
	case REG_YEAR:
		return r.enc(t.Year() % 100)
	}
	return r.enc(t.Year() / 100)
}

// decodeTime reads the time registers. Out-of-range fields roll over
// (time.Date normalizes), as the guest gets what it wrote.
func (r *RTC) decodeTime() time.Time {
	year := r.dec(r.ram[REG_CENTURY])*100 + r.dec(r.ram[REG_YEAR])
	return time.Date(year, time.Month(r.dec(r.ram[REG_MONTH])), r.dec(r.ram[REG_DAY_OF_MONTH]),
		r.decHour(r.ram[REG_HOURS]), r.dec(r.ram[REG_MINUTES]), r.dec(r.ram[REG_SECONDS]), 0, time.UTC)
}

func (r *RTC) enc(v int) byte {
	v = max(v, 0)
	if r.binary() {
		return byte(v)
	}
	return byte(v/10%10<<4 | v%10)
}

func (r *RTC) dec(b byte) int {
	if r.binary() {
		return int(b)
	}
	return int(b>>4)*10 + int(b&0xf)
}

func (r *RTC) encHour(h int) byte {
	if r.hour24() {
		return r.enc(h)
	}
	h12 := h % 12
	if h12 == 0 {
		h12 = 12
	}
	v := r.enc(h12)
	if h >= 12 {
		v |= HOURS_PM
	}
	return v
}

func (r *RTC) decHour(b byte) int {
	if r.hour24() {
		return r.dec(b)
	}
	h := r.dec(b&^HOURS_PM) % 12
	if b&HOURS_PM != 0 {
		h += 12
	}
	return h
}

// alarmField decodes an alarm byte: -1 for don't care.
func (r *RTC) alarmField(b byte, hour bool) int {
	if b&ALARM_DONT_CARE == ALARM_DONT_CARE {
		return -1
	}
	if hour {
		return r.decHour(b)
	}
	return r.dec(b)
}

// nextAlarm returns the first guest Unix second after sec whose update
// cycle matches the alarm, if any within a day.
func (r *RTC) nextAlarm(sec int64) (int64, bool) {
	h := r.alarmField(r.ram[REG_HOURS_ALARM], true)
	m := r.alarmField(r.ram[REG_MINUTES_ALARM], false)
	s := r.alarmField(r.ram[REG_SECONDS_ALARM], false)
	if h > 23 || m > 59 || s > 59 {
		return 0, false // never matches
	}
	t := time.Unix(sec+1, 0).UTC()
	// Each step moves to the next hour, minute or matching second, so
	// a match is found within 24+60+60 steps.
	for range 200 {
		switch {
		case h >= 0 && t.Hour() != h:
			t = t.Truncate(time.Hour).Add(time.Hour)
		case m >= 0 && t.Minute() != m:
			t = t.Truncate(time.Minute).Add(time.Minute)
		case s >= 0 && t.Second() != s:
			if s > t.Second() {
				t = t.Add(time.Duration(s-t.Second()) * time.Second)
			} else {
				t = t.Truncate(time.Minute).Add(time.Minute)
			}
		default:
			return t.Unix(), true
		}
	}
	return 0, false
}

// SetNVRAM sets CMOS byte index, as firmware would before the guest runs.
// The clock's registers (0-13 and the century byte) are refused.
func (r *RTC) SetNVRAM(index int, v byte) error {
	if index < NVRAM_USER_FIRST || index >= NVRAM_SIZE || index == REG_CENTURY {
		return fmt.Errorf("rtc: CMOS byte %#x is not NVRAM: use %#x-%#x except the century byte %#x",
			index, NVRAM_USER_FIRST, NVRAM_SIZE-1, REG_CENTURY)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram[index] = v
	return nil
}

// NVRAM returns CMOS byte index (0 for indexes outside the RAM).
func (r *RTC) NVRAM(index int) byte {
	if index < 0 || index >= NVRAM_SIZE {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ram[index]
}

// durToTicks converts a non-negative duration to whole TIME_BASE_HZ ticks.
func durToTicks(d time.Duration) uint64 {
	return vclock.Ticks(d, TIME_BASE_HZ)
}

// ticksToDur returns the first duration at which durToTicks reaches t,
// saturating at the largest duration.
func ticksToDur(t uint64) time.Duration {
	return vclock.TicksDuration(t, TIME_BASE_HZ)
}

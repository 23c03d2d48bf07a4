// Package pmtimer models the ACPI power management timer and the minimal
// fixed-hardware register block a guest OS needs around it: the PM1a event
// block (status and enable, with the fixed power button) and the PM1a
// control block (SCI_EN, sleep type and sleep enable).
//
// Timer is the PM timer alone, a 4-byte read-only register counting at
// PM_TIMER_HZ, computed from Clock.Now() when read. Block is the three
// register groups in one port range laid out at the BLOCK_* offsets, for
// the firmware-table builder to put in the FADT (PM1a_EVT_BLK =
// base+BLOCK_PM1_EVT, PM1a_CNT_BLK = base+BLOCK_PM1_CNT, PM_TMR_BLK =
// base+BLOCK_PM_TMR, with the *_LEN constants as the lengths).
//
// # What the FADT must say
//
//   - Flags.TMR_VAL_EXT (FADT_TMR_VAL_EXT) set if and only if the timer is
//     32 bits wide (Config.Ext32).
//   - Flags.PWR_BUTTON clear: the power button is the fixed-hardware one
//     in PM1 (PWRBTN_STS/PWRBTN_EN), not a control-method device.
//   - SMI_CMD 0 and SCI_EN reading 1 from reset (Config.LegacyMode
//     false): the platform is always in ACPI mode. With LegacyMode the
//     block starts with SCI_EN clear and the hypervisor's SMI_CMD handler
//     calls SetSCIEnabled when the OS writes ACPI_ENABLE.
//   - The \_S5 package in the DSDT carries the SLP_TYP value given as
//     Config.S5SleepType.
//
// # Sleep
//
// Writing PM1_CNT with SLP_EN set reports the SLP_TYP written to
// Config.Sleep, outside the lock; s5 says whether it equals
// Config.S5SleepType, for the hypervisor to power the VM off. Other sleep
// states are the hypervisor's to implement or refuse; either way it calls
// Wake to set WAK_STS, which an OS polls after writing SLP_EN.
//
// # Locking
//
// One mutex guards a Block. Clock methods are called with it held and must
// not call back into the Block. The SCI line and the Sleep callback are
// called only after the mutex is released; a changed SCI level is
// re-checked after SetLevel returns, so the line always ends at the
// current level.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package pmtimer

import (
	"sync"
	"time"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/devices/vclock"
)

// PM timer (ACPI 6.5, §4.8.3.3 "Power Management Timer (PM_TMR)").
const (
	// PM_TIMER_HZ is the PM timer's frequency: 3.579545 MHz.
	PM_TIMER_HZ = 3579545
	// PM_TMR_LEN is the length of PM_TMR_BLK in bytes.
	PM_TMR_LEN = 4
	// FADT_TMR_VAL_EXT is bit 8 of the FADT Flags field: the timer's
	// value is 32 bits, not 24 (ACPI 6.5, §5.2.9 "Fixed ACPI Description
	// Table (FADT)", table "Fixed ACPI Description Table Fixed Feature
	// Flags").
	FADT_TMR_VAL_EXT = 1 << 8
	// FADT_PWR_BUTTON is bit 4 of the FADT Flags field; it must be clear
	// for the fixed power button this package models.
	FADT_PWR_BUTTON = 1 << 4
)

// PM1 status and enable bits (ACPI 6.5, §4.8.3.1.1 "PM1 Status Registers"
// and §4.8.3.1.2 "PM1 Enable Registers").
const (
	TMR_STS         = 1 << 0
	BM_STS          = 1 << 4
	GBL_STS         = 1 << 5
	PWRBTN_STS      = 1 << 8
	SLPBTN_STS      = 1 << 9
	RTC_STS         = 1 << 10
	PCIEXP_WAKE_STS = 1 << 14
	WAK_STS         = 1 << 15

	TMR_EN          = 1 << 0
	GBL_EN          = 1 << 5
	PWRBTN_EN       = 1 << 8
	SLPBTN_EN       = 1 << 9
	RTC_EN          = 1 << 10
	PCIEXP_WAKE_DIS = 1 << 14

	// PM1_STS_MASK and PM1_EN_MASK are the defined bits.
	PM1_STS_MASK = TMR_STS | BM_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS | PCIEXP_WAKE_STS | WAK_STS
	PM1_EN_MASK  = TMR_EN | GBL_EN | PWRBTN_EN | SLPBTN_EN | RTC_EN | PCIEXP_WAKE_DIS
	// PM1_SCI_EVENTS are the status bits that raise an SCI when their
	// enable bit (the same bit in PM1_EN) is set.
	PM1_SCI_EVENTS = TMR_STS | GBL_STS | PWRBTN_STS | SLPBTN_STS | RTC_STS
)

// PM1 control bits (ACPI 6.5, §4.8.3.2.1 "PM1 Control Registers").
const (
	SCI_EN         = 1 << 0
	BM_RLD         = 1 << 1
	GBL_RLS        = 1 << 2 // write-only
	SLP_TYP_SHIFT  = 10
	SLP_TYP_MASK   = 7 << SLP_TYP_SHIFT
	SLP_EN         = 1 << 13 // write-only
	PM1_CNT_RWMASK = BM_RLD | SLP_TYP_MASK
)

// Block layout: offsets from the block's base port and register lengths,
// for the FADT's PM1a_EVT_BLK/PM1_EVT_LEN, PM1a_CNT_BLK/PM1_CNT_LEN and
// PM_TMR_BLK/PM_TMR_LEN.
const (
	BLOCK_PM1_EVT = 0x0
	PM1_EVT_LEN   = 4 // PM1_STS (2 bytes) then PM1_EN (2 bytes)
	BLOCK_PM1_STS = BLOCK_PM1_EVT
	BLOCK_PM1_EN  = BLOCK_PM1_EVT + PM1_EVT_LEN/2
	BLOCK_PM1_CNT = 0x4
	PM1_CNT_LEN   = 2
	BLOCK_PM_TMR  = 0x8
	// BLOCK_SIZE is the number of ports a Block claims.
	BLOCK_SIZE = BLOCK_PM_TMR + PM_TMR_LEN
	// DEFAULT_PORT_BASE is a free port range for the block (QEMU's q35
	// machine puts its ACPI PM registers at 600h).
	DEFAULT_PORT_BASE = 0x600
)

// Timer is the ACPI PM timer: a free-running counter at PM_TIMER_HZ,
// 24 or 32 bits wide, read as a 4-byte register at offset 0. It implements
// bus.Device; writes are ignored. It holds no state beyond its
// configuration and is safe for concurrent use.
type Timer struct {
	clock vclock.Clock
	ext32 bool
}

// NewTimer returns a PM timer on clock, 32 bits wide if ext32.
func NewTimer(clock vclock.Clock, ext32 bool) *Timer { return &Timer{clock: clock, ext32: ext32} }

// Value returns the counter, TMR_VAL.
func (t *Timer) Value() uint32 { return t.value(t.clock.Now()) }

func (t *Timer) value(now time.Duration) uint32 {
	v := uint32(durToTicks(now))
	if !t.ext32 {
		v &= 1<<24 - 1
	}
	return v
}

// msbIndex counts the toggles of the counter's top bit (TMR_STS events)
// since the clock's origin.
func (t *Timer) msbIndex(now time.Duration) uint64 { return durToTicks(now) >> t.msbShift() }

func (t *Timer) msbShift() uint {
	if t.ext32 {
		return 31
	}
	return 23
}

// Read implements bus.Device: the little-endian counter; bytes beyond
// offset 3 read as 0.
func (t *Timer) Read(offset uint64, data []byte) {
	readBytes(uint64(t.Value()), PM_TMR_LEN, offset, data)
}

// Write implements bus.Device; the timer is read-only.
func (t *Timer) Write(offset uint64, data []byte) {}

// readBytes fills data with the bytes of the size-byte little-endian
// register v at offset, and 0 beyond it.
func readBytes(v uint64, size, offset uint64, data []byte) {
	for i := range data {
		o := offset + uint64(i)
		if o < size {
			data[i] = byte(v >> (8 * o))
		} else {
			data[i] = 0
		}
	}
}

// Config configures a Block.
type Config struct {
	// Clock is the time source of the timer and its TMR_STS interrupt.
	Clock vclock.Clock
	// Ext32 makes the timer 32 bits wide (FADT TMR_VAL_EXT).
	Ext32 bool
	// SCI is the system control interrupt line (the FADT's SCI_INT);
	// nil connects it to nothing. The SCI is level-triggered.
	SCI irqline.Line
	// S5SleepType is the SLP_TYP value of \_S5 in the DSDT.
	S5SleepType uint8
	// Sleep, if not nil, is called when the guest sets SLP_EN, with the
	// SLP_TYP written and whether it is S5SleepType.
	Sleep func(slpTyp uint8, s5 bool)
	// LegacyMode starts with SCI_EN clear (the FADT then needs an
	// SMI_CMD port whose handler calls SetSCIEnabled).
	LegacyMode bool
}

// Block is the PM1a event block, PM1a control block and PM timer in one
// port range of BLOCK_SIZE ports, laid out at the BLOCK_* offsets. It
// implements bus.Device. Use NewBlock.
type Block struct {
	mu    sync.Mutex
	cfg   Config
	sci   irqline.Line
	timer Timer

	sts, en, cnt uint16
	level        bool   // SCI level
	tmrIdx       uint64 // timer MSB toggles accounted for in TMR_STS

	tm      vclock.Timer
	gen     uint64
	stopped bool
}

// NewBlock returns a block with all status and enable bits clear.
func NewBlock(cfg Config) *Block {
	b := &Block{cfg: cfg, sci: cfg.SCI, timer: Timer{clock: cfg.Clock, ext32: cfg.Ext32}}
	if b.sci == nil {
		b.sci = irqline.None{}
	}
	if !cfg.LegacyMode {
		b.cnt = SCI_EN
	}
	b.tmrIdx = b.timer.msbIndex(cfg.Clock.Now())
	return b
}

// Timer returns the block's PM timer, for registering it on its own.
func (b *Block) Timer() *Timer { return &b.timer }

// Stop cancels the TMR_STS timer for good. Call it when the VM is torn
// down.
func (b *Block) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	b.disarm()
}

// PressPowerButton sets PWRBTN_STS, raising an SCI if PWRBTN_EN and
// SCI_EN are set: the host asks the guest to shut down.
func (b *Block) PressPowerButton() { b.setStatus(PWRBTN_STS) }

// Wake sets WAK_STS: the system is back from a sleep state (or the
// hypervisor declined one).
func (b *Block) Wake() { b.setStatus(WAK_STS) }

// SetSCIEnabled sets or clears SCI_EN, as the platform does on the
// transition to or from ACPI mode.
func (b *Block) SetSCIEnabled(on bool) {
	b.mu.Lock()
	if on {
		b.cnt |= SCI_EN
	} else {
		b.cnt &^= SCI_EN
	}
	b.finish(b.clock(), false, 0)
}

func (b *Block) setStatus(bit uint16) {
	b.mu.Lock()
	b.sts |= bit
	b.finish(b.clock(), false, 0)
}

func (b *Block) clock() time.Duration { return b.cfg.Clock.Now() }

// Status returns PM1_STS, PM1_EN and PM1_CNT as the guest would read them.
func (b *Block) Status() (sts, en, cnt uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fold(b.clock())
	return b.sts, b.en, b.cnt
}

// Read implements bus.Device.
func (b *Block) Read(offset uint64, data []byte) {
	b.mu.Lock()
	now := b.clock()
	b.fold(now)
	for i := range data {
		o := offset + uint64(i)
		var v uint16
		var sh uint64
		switch {
		case o < BLOCK_PM1_EN:
			v, sh = b.sts, o-BLOCK_PM1_STS
		case o < BLOCK_PM1_EN+2:
			v, sh = b.en, o-BLOCK_PM1_EN
		case o >= BLOCK_PM1_CNT && o < BLOCK_PM1_CNT+PM1_CNT_LEN:
			v, sh = b.cnt, o-BLOCK_PM1_CNT
		case o >= BLOCK_PM_TMR && o < BLOCK_PM_TMR+PM_TMR_LEN:
			data[i] = byte(b.timer.value(now) >> (8 * (o - BLOCK_PM_TMR)))
			continue
		default:
			data[i] = 0
			continue
		}
		data[i] = byte(v >> (8 * sh))
	}
	b.mu.Unlock()
}

// Write implements bus.Device. PM1_STS bits are cleared by writing 1;
// PM1_EN is read/write; in PM1_CNT, SCI_EN is the platform's, GBL_RLS and
// SLP_EN are write-only, and setting SLP_EN reports the sleep type. The
// PM timer is read-only.
func (b *Block) Write(offset uint64, data []byte) {
	b.mu.Lock()
	now := b.clock()
	b.fold(now)
	// Gather the access into per-register values and byte masks, then
	// apply each register once, so that a 16-bit write of SLP_TYP and
	// SLP_EN together acts as one.
	var stsW, enW, enM, cntW, cntM uint16
	for i := range data {
		o := offset + uint64(i)
		v := uint16(data[i])
		switch {
		case o < BLOCK_PM1_EN:
			stsW |= v << (8 * (o - BLOCK_PM1_STS))
		case o < BLOCK_PM1_EN+2:
			enW |= v << (8 * (o - BLOCK_PM1_EN))
			enM |= 0xff << (8 * (o - BLOCK_PM1_EN))
		case o >= BLOCK_PM1_CNT && o < BLOCK_PM1_CNT+PM1_CNT_LEN:
			cntW |= v << (8 * (o - BLOCK_PM1_CNT))
			cntM |= 0xff << (8 * (o - BLOCK_PM1_CNT))
		}
	}
	if c := stsW & PM1_STS_MASK; c != 0 {
		b.sts &^= c
		if c&TMR_STS != 0 {
			b.tmrIdx = b.timer.msbIndex(now)
		}
	}
	b.en = b.en&^enM | enW&enM&PM1_EN_MASK
	sleep := false
	if cntM != 0 {
		m := cntM & PM1_CNT_RWMASK
		b.cnt = b.cnt&^m | cntW&m
		sleep = cntM&SLP_EN != 0 && cntW&SLP_EN != 0
	}
	b.finish(now, sleep, uint8((b.cnt&SLP_TYP_MASK)>>SLP_TYP_SHIFT))
}

// fold sets TMR_STS if the timer's top bit toggled since it was last
// cleared. Called with b.mu held.
func (b *Block) fold(now time.Duration) {
	if b.timer.msbIndex(now) != b.tmrIdx {
		b.sts |= TMR_STS
	}
}

// sciLevel is the SCI's level for the current registers.
func (b *Block) sciLevel() bool {
	return b.cnt&SCI_EN != 0 && b.sts&b.en&PM1_SCI_EVENTS != 0
}

// finish recomputes the SCI, re-arms the TMR_STS timer, releases b.mu and
// then drives the SCI and, if sleep, reports sleep type typ.
func (b *Block) finish(now time.Duration, sleep bool, typ uint8) {
	b.fold(now)
	old := b.level
	b.level = b.sciLevel()
	b.arm(now)
	level, changed := b.level, b.level != old
	call := sleep && b.cfg.Sleep != nil
	b.mu.Unlock()
	if changed {
		b.setLine(level)
	}
	if call {
		b.cfg.Sleep(typ, typ == b.cfg.S5SleepType)
	}
}

// setLine drives the SCI to level, then again if the level changed while
// SetLevel ran. Called without b.mu.
func (b *Block) setLine(level bool) {
	for {
		b.sci.SetLevel(level)
		b.mu.Lock()
		cur := b.level
		b.mu.Unlock()
		if cur == level {
			return
		}
		level = cur
	}
}

// arm schedules a timer for the next toggle of the timer's top bit when
// that would raise the SCI. Called with b.mu held.
func (b *Block) arm(now time.Duration) {
	b.disarm()
	if b.stopped || b.level || b.en&TMR_EN == 0 || b.cnt&SCI_EN == 0 || b.sts&TMR_STS != 0 {
		return
	}
	at := ticksToDur((b.tmrIdx + 1) << b.timer.msbShift())
	if at <= now {
		return
	}
	gen := b.gen
	b.tm = b.cfg.Clock.AfterFunc(at-now, func() { b.fire(gen) })
}

func (b *Block) disarm() {
	b.gen++
	if b.tm != nil {
		b.tm.Stop()
		b.tm = nil
	}
}

func (b *Block) fire(gen uint64) {
	b.mu.Lock()
	if gen != b.gen {
		b.mu.Unlock()
		return
	}
	b.tm = nil
	b.finish(b.clock(), false, 0)
}

// durToTicks converts a duration since the clock's origin to PM timer
// ticks.
func durToTicks(d time.Duration) uint64 {
	return vclock.Ticks(d, PM_TIMER_HZ)
}

// ticksToDur returns the first duration at which durToTicks reaches t,
// saturating at the largest duration.
func ticksToDur(t uint64) time.Duration {
	return vclock.TicksDuration(t, PM_TIMER_HZ)
}

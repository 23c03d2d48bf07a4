//go:build tamago

package pc

import (
	"sync"
	"time"
)

// The host's CMOS real-time clock (MC146818A; the PC's CMOS map), read
// once to give Keel a wall clock: Go's time on this port starts at the
// epoch, and guests want today's date from their emulated RTC and kvmclock.
const (
	CMOS_INDEX   = 0x70
	CMOS_DATA    = 0x71
	RTC_SECONDS  = 0x00
	RTC_MINUTES  = 0x02
	RTC_HOURS    = 0x04
	RTC_DAY      = 0x07
	RTC_MONTH    = 0x08
	RTC_YEAR     = 0x09
	RTC_STATUS_A = 0x0a
	RTC_STATUS_B = 0x0b
	RTC_CENTURY  = 0x32   // the ACPI FADT's default century register
	RTC_UIP      = 1 << 7 // status A: update in progress
	RTC_24H      = 1 << 1 // status B: 24-hour mode
	RTC_BINARY   = 1 << 2 // status B: binary, not BCD
	RTC_PM       = 1 << 7 // hours: PM in 12-hour mode
)

var wall struct {
	once   sync.Once
	base   time.Time     // the RTC's time when read
	uptime time.Duration // Keel's uptime then
}

func cmos(reg uint8) uint8 {
	outb(CMOS_INDEX, 0x80|reg) // keep NMI disabled while reading
	return inb(CMOS_DATA)
}

// readRTC reads the date and time, waiting out an update in progress, and
// reads twice until two reads agree.
func readRTC() time.Time {
	read := func() [7]uint8 {
		for i := 0; i < 1_000_000 && cmos(RTC_STATUS_A)&RTC_UIP != 0; i++ {
		}
		return [7]uint8{cmos(RTC_SECONDS), cmos(RTC_MINUTES), cmos(RTC_HOURS), cmos(RTC_DAY), cmos(RTC_MONTH), cmos(RTC_YEAR), cmos(RTC_CENTURY)}
	}
	a := read()
	for i := 0; i < 5; i++ {
		b := read()
		if a == b {
			break
		}
		a = b
	}
	sb := cmos(RTC_STATUS_B)
	bcd := func(v uint8) int {
		if sb&RTC_BINARY != 0 {
			return int(v)
		}
		return int(v>>4)*10 + int(v&0xf)
	}
	pm := a[2]&RTC_PM != 0
	hour := bcd(a[2] &^ RTC_PM)
	if sb&RTC_24H == 0 {
		hour %= 12
		if pm {
			hour += 12
		}
	}
	year := bcd(a[5])
	if c := bcd(a[6]); c >= 19 && c <= 30 {
		year += c * 100
	} else {
		year += 2000
	}
	t := time.Date(year, time.Month(bcd(a[4])), bcd(a[3]), hour, bcd(a[1]), bcd(a[0]), 0, time.UTC)
	if t.Year() < 2000 || t.Year() > 2999 {
		return time.Time{}
	}
	return t
}

// WallClock returns the wall-clock time: the host RTC's time at the first
// call plus Keel's uptime since. On a machine whose RTC does not read as a
// date it is the zero time plus uptime.
func WallClock() time.Time {
	wall.once.Do(func() {
		wall.base = readRTC()
		wall.uptime = Uptime()
	})
	return wall.base.Add(Uptime() - wall.uptime)
}

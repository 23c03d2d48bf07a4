//go:build tamago

package pc

import "sync/atomic"

// Local APIC timer (Intel SDM Vol. 3A, 11.5.4 "APIC Timer"): every CPU
// takes an interrupt at the end of each time slice, periodic, on
// VECTOR_WAKE. A guest running there exits (SVM INTR intercept), so a
// guest that never exits still gives its CPU back to the scheduler; an idle
// CPU just wakes and halts again.
const (
	LAPIC_LVT_TIMER     = 0x320
	LAPIC_TIMER_INITIAL = 0x380
	LAPIC_TIMER_CURRENT = 0x390
	LAPIC_TIMER_DIVIDE  = 0x3e0
	LVT_MASKED          = 1 << 16
	LVT_TIMER_PERIODIC  = 1 << 17
	TIMER_DIVIDE_16     = 0x3
	// TIME_SLICE_MS is the length of a time slice.
	TIME_SLICE_MS = 10
)

// sliceCount is the timer's initial count for one slice; apEntry programs
// the same on every AP (0: no timer).
var sliceCount uint32

// StartSliceTimer measures the local APIC timer against the TSC and starts
// it on this (the bootstrap) processor; APs started afterwards start theirs
// in apEntry. It returns the timer's frequency in Hz.
func StartSliceTimer() uint64 {
	hz := clock.Hz()
	if hz == 0 {
		return 0
	}
	lapicWrite(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_16)
	lapicWrite(LAPIC_LVT_TIMER, LVT_MASKED|VECTOR_WAKE)
	lapicWrite(LAPIC_TIMER_INITIAL, 0xffffffff)
	start := rdtsc()
	for rdtsc()-start < hz/100 { // 10 ms
	}
	ticks := uint64(0xffffffff - lapicRead(LAPIC_TIMER_CURRENT))
	lapicWrite(LAPIC_TIMER_INITIAL, 0)
	timerHz := ticks * 100
	count := timerHz * TIME_SLICE_MS / 1000
	if count == 0 || count > 0xffffffff {
		return timerHz
	}
	atomic.StoreUint32(&sliceCount, uint32(count))
	startSlice()
	return timerHz
}

// startSlice starts the periodic slice timer on this processor.
func startSlice() {
	n := atomic.LoadUint32(&sliceCount)
	if n == 0 {
		return
	}
	lapicWrite(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_16)
	lapicWrite(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC|VECTOR_WAKE)
	lapicWrite(LAPIC_TIMER_INITIAL, n)
}

package lapic

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/vclock"
)

// TestConcurrentRealClock runs vCPUs that reprogram their timers, send
// IPIs, switch modes and take interrupts, against host timers on the real
// clock; run it with -race.
func TestConcurrentRealClock(t *testing.T) {
	const n = 3
	clk := vclock.NewReal()
	r := newRig(t, n, func(_ int, c *Config) {
		c.Clock = clk
		c.TSC = func() uint64 { return uint64(clk.Now()) * 2 }
	})
	var timerIRQs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l := r.apics[i]
			reg := func(reg uint32, v uint32) {
				var b [4]byte
				b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
				l.Write(uint64(reg), b[:])
			}
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if l.X2APICMode() {
					_ = l.WriteMSR(X2APIC_MSR_BASE+SVR>>4, SVR_APIC_ENABLED|0xff)
				} else {
					reg(SVR, SVR_APIC_ENABLED|0xff)
				}
				switch k % 64 {
				case 0:
					reg(LVT_TIMER, TIMER_PERIODIC|0x30)
					reg(DIVIDE_CONFIG, 0xb)
					reg(INITIAL_COUNT, 200_000)
				case 16:
					reg(LVT_TIMER, TIMER_TSC_DEADLINE|0x30)
					_ = l.WriteMSR(IA32_TSC_DEADLINE, uint64(clk.Now())*2+100_000)
				case 32:
					reg(LVT_TIMER, 0x30)
					reg(INITIAL_COUNT, 50_000)
				case 48:
					if k%256 == 48 {
						_ = l.SetAPICBase(l.APICBase() | en | extd)
					} else if k%256 == 176 {
						_ = l.SetAPICBase(base)
						_ = l.SetAPICBase(base | en)
					}
				}
				var b [4]byte
				l.Read(CURRENT_COUNT, b[:])
				if v, ok := l.PendingVector(); ok {
					l.Accept(v)
					if v == 0x30 {
						timerIRQs.Add(1)
					}
					l.EOI()
				}
				dest := uint32((i + 1) % n)
				if l.X2APICMode() {
					_ = l.WriteMSR(X2APIC_ICR, uint64(dest)<<32|0x40)
				} else {
					reg(ICR_HI, dest<<24)
					reg(ICR_LO, 0x40)
					if k%100 == 99 {
						reg(ICR_LO, ICR_LEVEL_ASSERT|uint32(DELIVERY_NMI)<<8)
					}
				}
				time.Sleep(10 * time.Microsecond)
			}
		}(i)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, l := range r.apics {
		l.Close()
	}
	if timerIRQs.Load() == 0 {
		t.Error("no timer interrupt in 100 ms")
	}
}

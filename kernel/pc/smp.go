//go:build tamago

package pc

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"runtime/goos"
	"slices"
	"sync/atomic"
	"time"

	"github.com/keel-hv/keel/kernel/pc/trampoline"
)

// SMP: Keel starts every usable processor the firmware lists (MADT), by
// APIC ID, with INIT-SIPI-SIPI and the real-mode trampoline. Each AP runs
// apEntry (smp_amd64.s) and waits, halted, for goos.Task to give it an M
// of the Go runtime. The runtime then schedules goroutines on all CPUs.

const (
	// MAX_CPUS bounds the processors Keel drives (xAPIC IDs are 8 bits).
	MAX_CPUS = 256
	// AP_STACK_SIZE is the boot stack of an AP, used only by apEntry's
	// wait loop and sse_enable before the runtime gives it a g0 stack.
	AP_STACK_SIZE = 4096
	// AP_START_TIMEOUT is how long the BSP waits for an AP to report.
	AP_START_TIMEOUT = time.Second
)

// cpuSlot is one processor's start-up and wake-up state, shared with
// apEntry (go_asm.h offsets): fields written by the AP first, then the task
// goos.Task posts (taskFn last), then the wake flag.
type cpuSlot struct {
	started     uint32 // 1 once the AP runs apEntry's wait loop
	apicID      uint32
	cpuid1ECX   uint32
	cpuid1EDX   uint32
	cpuidExtECX uint32
	claimed     uint32 // goos.Task gave this AP an M
	taskSP      uint64
	taskG       uint64
	taskFn      uint64
	wake        uint32 // goos.Wake pending: idle must not halt
	online      uint32 // 1 when the CPU runs Keel
}

var (
	// cpuSlots is indexed by CPU index: 0 is the bootstrap processor,
	// then the APs in MADT order.
	cpuSlots [MAX_CPUS]cpuSlot
	// apStacks are the APs' boot stacks.
	apStacks [MAX_CPUS][AP_STACK_SIZE]byte
	// ncpu is the number of slots in use.
	ncpu int
	// apicIndex maps an APIC ID to a CPU index + 1 (0: unknown).
	apicIndex [256]uint16
)

// CPUInfo describes one processor for the shell.
type CPUInfo struct {
	// Index is Keel's CPU number, APICID the firmware's.
	Index  int
	APICID uint32
	// Online reports that the CPU runs Keel; a CPU that did not start is
	// listed offline.
	Online bool
	// Features lists notable CPUID features of that CPU.
	Features []string
}

// CPUs returns the number of processors Keel runs on.
func CPUs() int {
	n := 0
	for i := 0; i < ncpu; i++ {
		if atomic.LoadUint32(&cpuSlots[i].online) == 1 {
			n++
		}
	}
	return n
}

// CPUList describes every processor Keel knows of, online or not.
func CPUList() []CPUInfo {
	list := make([]CPUInfo, 0, ncpu)
	for i := 0; i < ncpu; i++ {
		s := &cpuSlots[i]
		list = append(list, CPUInfo{
			Index:    i,
			APICID:   s.apicID,
			Online:   atomic.LoadUint32(&s.online) == 1,
			Features: featureNames(s.cpuid1ECX, s.cpuid1EDX, s.cpuidExtECX),
		})
	}
	return list
}

// featureNames picks the CPUID bits an operator cares about (Intel SDM Vol.
// 2A, CPUID Table 3-10/3-11; AMD APM Vol. 3, E.3.2 and E.4.2).
func featureNames(ecx1, edx1, ecxExt uint32) []string {
	bits := []struct {
		reg  uint32
		bit  uint
		name string
	}{
		{ecx1, 5, "vmx"}, {ecxExt, 2, "svm"}, {ecx1, 21, "x2apic"},
		{ecx1, 24, "tsc-deadline"}, {ecx1, 30, "rdrand"}, {edx1, 25, "sse"},
		{ecx1, 28, "avx"}, {ecx1, 31, "hypervisor"},
	}
	var names []string
	for _, b := range bits {
		if b.reg&(1<<b.bit) != 0 {
			names = append(names, b.name)
		}
	}
	return names
}

// initBSP records the bootstrap processor as CPU 0 and enables its local
// APIC. It runs in Hwinit1 and does not allocate.
func initBSP() {
	lapicEnable()
	s := &cpuSlots[0]
	s.apicID = apicID()
	_, _, s.cpuid1ECX, s.cpuid1EDX = cpuidInsn(1, 0)
	_, _, s.cpuidExtECX, _ = cpuidInsn(0x80000001, 0)
	s.started, s.online = 1, 1
	ncpu = 1
	apicIndex[s.apicID&0xff] = 1

	goos.ProcID = procID
	goos.Idle = idle
}

// procID is runtime/goos.ProcID: the APIC ID, which goos.Wake takes.
//
//go:nosplit
func procID() uint64 {
	// nosplit: called from the runtime's minit.
	return uint64(apicID())
}

// slotOf returns the slot of the processor with the given APIC ID.
//
//go:nosplit
func slotOf(apic uint32) *cpuSlot {
	// nosplit: called from goos.Wake and goos.Idle.
	if i := apicIndex[apic&0xff]; i != 0 {
		return &cpuSlots[i-1]
	}
	return nil
}

// idle is runtime/goos.Idle: with no timer pending the processor halts
// until an interrupt (goos.Wake); with a timer pending it returns and the
// scheduler polls, since no host timer interrupt is programmed yet.
func idle(until int64) {
	if until != math.MaxInt64 {
		return
	}
	if s := slotOf(apicID()); s != nil {
		haltUntilWoken(&s.wake)
	}
}

// wake is runtime/goos.Wake: it ends the idle halt of the processor with
// APIC ID procid.
//
//go:nosplit
func wake(procid uint64) {
	// nosplit: the runtime calls it with locks held.
	s := slotOf(uint32(procid))
	if s == nil {
		return
	}
	atomic.StoreUint32(&s.wake, 1)
	sendIPI(uint32(procid), ICR_DELIVERY_FIXED|VECTOR_WAKE)
}

// StartAPs starts the processors with the given APIC IDs (the BSP's own ID
// is skipped), each within AP_START_TIMEOUT, and lets the Go scheduler use
// every processor that came up. It reports each one that did not.
// silent lists APIC IDs that get an INIT but no Start-up IPI, so that they
// cannot come up: a fault injection for testing the timeout path.
func StartAPs(apicIDs []uint32, silent []uint32, log func(format string, args ...any)) {
	code := physBytes(trampoline.BASE, trampoline.SIZE)
	copy(code, trampoline.Code[:])
	le := binary.LittleEndian
	le.PutUint32(code[trampoline.DATA_CR3:], PML4_BASE)
	le.PutUint64(code[trampoline.DATA_ENTRY:], uint64(apEntryPC()))

	bsp := cpuSlots[0].apicID
	for _, id := range apicIDs {
		if id == bsp {
			continue
		}
		if ncpu == MAX_CPUS || id > 0xff {
			log("cpu apic=%d skipped: Keel drives at most %d processors with 8-bit APIC IDs", id, MAX_CPUS)
			continue
		}
		i := ncpu
		s := &cpuSlots[i]
		le.PutUint64(code[trampoline.DATA_STACK:], uint64(stackTop(i)))
		le.PutUint64(code[trampoline.DATA_ARG:], uint64(slotAddr(s)))

		// Intel SDM Vol. 3A, 9.4.4.1: INIT, 10 ms, SIPI, 200 us, SIPI.
		sendIPI(id, ICR_DELIVERY_INIT|ICR_LEVEL_ASSERT)
		time.Sleep(10 * time.Millisecond)
		if !slices.Contains(silent, id) {
			sendIPI(id, ICR_DELIVERY_STARTUP|trampoline.SIPI_VECTOR)
			time.Sleep(200 * time.Microsecond)
			if atomic.LoadUint32(&s.started) == 0 {
				sendIPI(id, ICR_DELIVERY_STARTUP|trampoline.SIPI_VECTOR)
			}
		}

		deadline := time.Now().Add(AP_START_TIMEOUT)
		for atomic.LoadUint32(&s.started) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if atomic.LoadUint32(&s.started) == 0 {
			// Park it again so that it cannot run the trampoline
			// with the next processor's stack.
			sendIPI(id, ICR_DELIVERY_INIT|ICR_LEVEL_ASSERT)
			log("cpu apic=%d did not start within %v; skipped", id, AP_START_TIMEOUT)
			s.apicID = id
			ncpu++
			continue
		}
		if s.apicID != id {
			log("cpu apic=%d reports APIC ID %d", id, s.apicID)
		}
		apicIndex[s.apicID&0xff] = uint16(i + 1)
		atomic.StoreUint32(&s.online, 1)
		ncpu++
	}

	n := CPUs()
	if n > 1 {
		goos.Wake = wake
		goos.Task = task
	}
	runtime.GOMAXPROCS(n)
}

// String formats a CPU for logs.
func (c CPUInfo) String() string {
	state := "offline"
	if c.Online {
		state = "online"
	}
	return fmt.Sprintf("cpu %d apic=%d %s %v", c.Index, c.APICID, state, c.Features)
}

// installGates points the IDT entries Keel owns at its handlers: every
// vector from 32 up to VECTOR_WAKE ends a HLT and is acknowledged (no
// device interrupt is routed yet), VECTOR_SPURIOUS returns.
func installGates() {
	wakePC, spuriousPC := handlerPCs()
	idt := physBytes(IDT_BASE, IDT_LIMIT+1)
	for v := 32; v < 256; v++ {
		pc := wakePC
		if v == VECTOR_SPURIOUS {
			pc = spuriousPC
		}
		setGate(idt[v*16:v*16+16], pc)
	}
}

// setGate writes a 64-bit interrupt gate (AMD APM Vol. 2, 4.8.4 "Gate
// Descriptors"; Intel SDM Vol. 3A, 6.14.1): present, DPL 0, type 0xE,
// selector SEL_CODE64, no IST.
func setGate(d []byte, pc uintptr) {
	const GATE_INTERRUPT_PRESENT = 0x8e
	le := binary.LittleEndian
	le.PutUint16(d[0:], uint16(pc))
	le.PutUint16(d[2:], SEL_CODE64)
	d[4] = 0
	d[5] = GATE_INTERRUPT_PRESENT
	le.PutUint16(d[6:], uint16(pc>>16))
	le.PutUint32(d[8:], uint32(pc>>32))
	le.PutUint32(d[12:], 0)
}

// Assembly (smp_amd64.s).
func apEntryPC() uintptr
func haltUntilWoken(wake *uint32)
func handlerPCs() (wake, spurious uintptr)

// ProcID returns the APIC ID of the processor running the caller.
func ProcID() uint64 { return procID() }

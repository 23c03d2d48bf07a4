package x86emu

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/arch/x86/x86asm"
)

// Benchmarks for the MMIO exit path (run by `make bench`, never gating CI).
// Each reports allocations and, as the reference measured in the same run,
// the ratio to one bare x86asm.Decode of the same bytes ("x-decode"): the
// emulator's cost beyond decoding is page walks, the fetch and the
// register/device calls.

var decodeRef struct {
	sync.Mutex
	ns map[string]float64
}

// decodeNs measures x86asm.Decode of code once per process: the reference
// for the "x-decode" ratio, timed in the same run as the benchmark.
// (testing.Benchmark cannot nest inside a benchmark.)
func decodeNs(code []byte, bits int) float64 {
	decodeRef.Lock()
	defer decodeRef.Unlock()
	if decodeRef.ns == nil {
		decodeRef.ns = map[string]float64{}
	}
	key := fmt.Sprintf("%d/% x", bits, code)
	if v, ok := decodeRef.ns[key]; ok {
		return v
	}
	const n = 200000
	start := time.Now()
	for i := 0; i < n; i++ {
		x86asm.Decode(code, bits)
	}
	v := float64(time.Since(start).Nanoseconds()) / n
	decodeRef.ns[key] = v
	return v
}

func benchEmulate(b *testing.B, m vmMode, code []byte, regs []regVal, off uint64, cold bool) {
	f := newFakeVM()
	f.setMode(b, m)
	f.setCode(m, code)
	f.noLogCap = true
	rip := f.rip
	e := New(f)
	gpa := f.devGPA(off)
	ref := decodeNs(code, m.bits())
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.rip = rip
		for _, r := range regs {
			f.gpr[r.n] = r.v
		}
		f.log = f.log[:0]
		if cold {
			e.cache = [decodeCacheSize]cacheEntry{}
		}
		if err := e.Emulate(gpa); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns/ref, "x-decode")
}

// regs builds a register list from pairs n, v, n, v...
func regs(pairs ...uint64) []regVal {
	var out []regVal
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, regVal{int(pairs[i]), pairs[i+1]})
	}
	return out
}

// BenchmarkMOVToMMIO is the hot path: a 64-bit guest with 4-level paging
// writing a device register (mov [rdi], eax), warm decode cache.
func BenchmarkMOVToMMIO(b *testing.B) {
	benchEmulate(b, modeLong64, []byte{0x89, 0x07}, regs(RDI, mmioBase+0x10, RAX, 1), 0x10, false)
}

// BenchmarkMOVFromMMIO reads a device register (mov eax, [rdi+0x10]).
func BenchmarkMOVFromMMIO(b *testing.B) {
	benchEmulate(b, modeLong64, []byte{0x8b, 0x47, 0x10}, regs(RDI, mmioBase), 0x10, false)
}

// BenchmarkMOVToMMIOColdDecode is the same write with the decode cache
// cleared every time: the cost and the allocation of x86asm.Decode.
func BenchmarkMOVToMMIOColdDecode(b *testing.B) {
	benchEmulate(b, modeLong64, []byte{0x89, 0x07}, regs(RDI, mmioBase+0x10, RAX, 1), 0x10, true)
}

// BenchmarkMOVToMMIOPAE is the write from 32-bit code under PAE paging.
func BenchmarkMOVToMMIOPAE(b *testing.B) {
	benchEmulate(b, modePAE, []byte{0x89, 0x07}, regs(RDI, mmioBase+0x10, RAX, 1), 0x10, false)
}

// BenchmarkMOVToMMIOReal is the write from real-mode code (no paging).
func BenchmarkMOVToMMIOReal(b *testing.B) {
	benchEmulate(b, modeReal, []byte{0x89, 0x07}, regs(RBX, 0x10, RAX, 1), 0x10, false)
}

// BenchmarkORToMMIO is a read-modify-write (or dword [rdi], 0x80).
func BenchmarkORToMMIO(b *testing.B) {
	benchEmulate(b, modeLong64, []byte{0x81, 0x0f, 0x80, 0, 0, 0}, regs(RDI, mmioBase+0x10), 0x10, false)
}

// BenchmarkRepMOVSB4K copies a 4 KiB page from RAM to a device (rep movsb):
// 4096 iterations in one call; the metric is per instruction.
func BenchmarkRepMOVSB4K(b *testing.B) {
	benchEmulate(b, modeLong64, []byte{0xf3, 0xa4}, regs(RSI, ramSrc, RDI, mmioBase, RCX, 4096), 0, false)
}

// TestMOVPathAllocatesNothing pins the design goal: with a warm decode cache
// the MOV-to-MMIO path does not allocate.
func TestMOVPathAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    vmMode
		code []byte
		regs map[int]uint64
	}{
		{"64-bit write", modeLong64, []byte{0x89, 0x07}, map[int]uint64{RDI: mmioBase + 0x10}},
		{"64-bit read", modeLong64, []byte{0x8b, 0x07}, map[int]uint64{RDI: mmioBase + 0x10}},
		{"PAE write", modePAE, []byte{0x89, 0x07}, map[int]uint64{RDI: mmioBase + 0x10}},
		{"real-mode write", modeReal, []byte{0x89, 0x07}, map[int]uint64{RBX: 0x10}},
		{"read-modify-write", modeLong64, []byte{0x83, 0x0f, 0x01}, map[int]uint64{RDI: mmioBase + 0x10}},
		{"rep stosd", modeLong64, []byte{0xf3, 0xab}, map[int]uint64{RDI: mmioBase + 0x10, RCX: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVM()
			f.setMode(t, tc.m)
			f.setCode(tc.m, tc.code)
			f.noLogCap = true
			f.log = make([]access, 0, 64)
			rip := f.rip
			e := New(f)
			gpa := f.devGPA(0x10)
			run := func() {
				f.rip = rip
				for n, v := range tc.regs {
					f.gpr[n] = v
				}
				f.log = f.log[:0]
				if err := e.Emulate(gpa); err != nil {
					t.Fatal(err)
				}
			}
			run() // fill the decode cache
			if n := testing.AllocsPerRun(100, run); n != 0 {
				t.Errorf("%v allocations per emulated instruction, want 0", n)
			}
		})
	}
}

//go:build tamago

package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/keel-hv/keel/kernel/pc"
)

// selfCheck exercises goroutines, a channel, a map, a sync.WaitGroup and the
// garbage collector. It returns the number of goroutines it ran and the
// number of completed GC cycles.
func selfCheck() (goroutines int, gcs uint32, err error) {
	const workers = 8

	type result struct{ id, sum int }

	results := make(chan result, workers)
	var wg sync.WaitGroup

	for id := range workers {
		wg.Add(1)

		go func() {
			defer wg.Done()

			sum := 0
			for i := 1; i <= (id+1)*1000; i++ {
				sum += i
				if i%250 == 0 {
					runtime.Gosched()
				}
			}

			results <- result{id, sum}
		}()
	}

	wg.Wait()
	close(results)

	sums := make(map[int]int)
	for r := range results {
		sums[r.id] = r.sum
	}

	for id := range workers {
		n := (id + 1) * 1000
		if got, want := sums[id], n*(n+1)/2; got != want {
			return 0, 0, fmt.Errorf("goroutine %d returned %d, want %d", id, got, want)
		}
	}

	// Allocate garbage worth collecting, then collect it.
	garbage := make([][]byte, 0, 64)
	for range 64 {
		garbage = append(garbage, make([]byte, 64<<10))
	}
	garbage = nil
	_ = garbage

	runtime.GC()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	if ms.NumGC < 1 {
		return 0, 0, fmt.Errorf("runtime.GC() completed no cycle (NumGC = %d)", ms.NumGC)
	}

	return workers, ms.NumGC, nil
}

// smpCheck runs busy goroutines until each online CPU has run one of them
// or two seconds pass, and returns how many CPUs are online and how many
// ran goroutines.
func smpCheck() (cpus, ran int) {
	cpus = pc.CPUs()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 2 * cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				seen[pc.ProcID()] = true
				done := len(seen) >= cpus
				mu.Unlock()
				if done {
					return
				}
				for i := 0; i < 10000; i++ {
				}
				runtime.Gosched()
			}
		}()
	}
	wg.Wait()
	return cpus, len(seen)
}

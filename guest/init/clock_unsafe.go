//go:build linux

package main

import (
	"syscall"
	"unsafe"
)

// Clock IDs of clock_gettime(2), from Linux's include/uapi/linux/time.h.
const (
	// CLOCK_REALTIME is wall-clock time since 1970.
	CLOCK_REALTIME = 0
	// CLOCK_MONOTONIC is time since boot, not counting suspend.
	CLOCK_MONOTONIC = 1
)

// clockGettime reads the clock id with the clock_gettime system call; the
// syscall package has no wrapper for it.
func clockGettime(id int) (syscall.Timespec, error) {
	var ts syscall.Timespec
	// The kernel writes a struct timespec (two 64-bit words on amd64) to
	// ts, which lives until the call returns.
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, uintptr(id), uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return ts, errno
	}
	return ts, nil
}

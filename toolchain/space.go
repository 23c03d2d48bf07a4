package toolchain

import (
	"fmt"
	"syscall"
)

// DefaultNeedBytes is the free space a build needs on the cache file system:
// the copied GOROOT (about 300 MiB) plus the rebuilt tools, with headroom.
const DefaultNeedBytes uint64 = 1 << 30

// FreeBytes returns the space available to an unprivileged user on the file
// system holding dir.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("checking free space on %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// checkFreeSpace returns an error if the file system holding dir has less
// than need bytes available, as reported by free.
func checkFreeSpace(dir string, need uint64, free func(string) (uint64, error)) (uint64, error) {
	have, err := free(dir)
	if err != nil {
		return 0, err
	}
	if have < need {
		return have, fmt.Errorf("not enough free space in %s: the toolchain build needs %s, only %s is available; free some space or point KEEL_CACHE at a larger file system",
			dir, formatBytes(need), formatBytes(have))
	}
	return have, nil
}

// formatBytes renders n in binary units with one decimal ("1.0 GiB").
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

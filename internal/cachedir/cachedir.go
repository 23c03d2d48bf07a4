// Package cachedir publishes directories into Keel's build cache
// (${KEEL_CACHE:-~/.cache/keel}) safely against concurrent builders: a
// result is built in a ".tmp-" directory beside its final place and renamed
// into it; leftovers of killed builds are swept later.
//
// The package is host-side and host-testable.
package cachedir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// TEMP_PREFIX starts the names of directories being built.
const TEMP_PREFIX = ".tmp-"

// Install renames the finished directory tmp to final. If another builder
// got there first with a result valid reports good, that result is kept
// and tmp removed; a final directory that is not valid (left half-built or
// by hand) is replaced.
func Install(tmp, final string, valid func(dir string) bool) error {
	err := os.Rename(tmp, final)
	if err == nil {
		return nil
	}
	if valid(final) {
		return os.RemoveAll(tmp)
	}
	if _, serr := os.Stat(final); serr == nil {
		if err := os.RemoveAll(final); err != nil {
			return fmt.Errorf("removing the unusable %s: %w", final, err)
		}
		return os.Rename(tmp, final)
	}
	return err
}

// RemoveStaleTemps deletes the temporary directories in dir last modified
// before cutoff: leftovers of builds that were killed.
func RemoveStaleTemps(dir string, cutoff time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), TEMP_PREFIX) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

package cachedir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(p, 0o755)
		os.WriteFile(filepath.Join(p, "f"), []byte(content), 0o644)
		return p
	}
	valid := func(d string) bool {
		b, err := os.ReadFile(filepath.Join(d, "f"))
		return err == nil && string(b) == "good"
	}
	final := filepath.Join(dir, "final")
	if err := Install(mk(".tmp-1", "good"), final, valid); err != nil || !valid(final) {
		t.Fatalf("first install: %v", err)
	}
	// Another builder's valid result stays; ours goes.
	tmp := mk(".tmp-2", "other")
	if err := Install(tmp, final, valid); err != nil || !valid(final) {
		t.Fatalf("losing install: %v", err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Error("the losing temp directory is still there")
	}
	// An invalid final directory is replaced.
	os.WriteFile(filepath.Join(final, "f"), []byte("half"), 0o644)
	if err := Install(mk(".tmp-3", "good"), final, valid); err != nil || !valid(final) {
		t.Fatalf("replacing an invalid result: %v", err)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	old, fresh, keep := filepath.Join(dir, ".tmp-old"), filepath.Join(dir, ".tmp-new"), filepath.Join(dir, "result")
	for _, d := range []string{old, fresh, keep} {
		os.MkdirAll(d, 0o755)
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	os.Chtimes(keep, past, past)
	RemoveStaleTemps(dir, time.Now().Add(-time.Hour))
	for d, want := range map[string]bool{old: false, fresh: true, keep: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}

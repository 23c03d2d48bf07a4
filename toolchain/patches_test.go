package toolchain

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Hand-written patches against the tree made by writeTree(t, baseTree).
var baseTree = map[string]string{
	"src/runtime/extern.go": "package runtime\n\n// line one\n// line two\n",
	"src/cmd/go/main.go":    "package main\n\nfunc main() {}\n",
}

const patchAddMarker = `diff --git a/src/runtime/tamago_marker b/src/runtime/tamago_marker
new file mode 100644
--- /dev/null
+++ b/src/runtime/tamago_marker
@@ -0,0 +1 @@
+marker
`

const patchEditExtern = `diff --git a/src/runtime/extern.go b/src/runtime/extern.go
--- a/src/runtime/extern.go
+++ b/src/runtime/extern.go
@@ -1,4 +1,5 @@
 package runtime
 
 // line one
+// line added by keel
 // line two
`

// patchEditExternAgain only applies after patchEditExtern.
const patchEditExternAgain = `diff --git a/src/runtime/extern.go b/src/runtime/extern.go
--- a/src/runtime/extern.go
+++ b/src/runtime/extern.go
@@ -2,4 +2,4 @@
 
 // line one
-// line added by keel
+// line changed by keel
 // line two
`

// patchStale expects content the tree does not have.
const patchStale = `diff --git a/src/runtime/extern.go b/src/runtime/extern.go
--- a/src/runtime/extern.go
+++ b/src/runtime/extern.go
@@ -1,4 +1,4 @@
 package runtime
 
-// line uno
+// line one, edited
 // line two
`

// patchTamagoUntagged adds a tamago file the stock go would build for linux.
const patchTamagoUntagged = `diff --git a/src/runtime/os_tamago.go b/src/runtime/os_tamago.go
new file mode 100644
--- /dev/null
+++ b/src/runtime/os_tamago.go
@@ -0,0 +1,3 @@
+// Copyright notice.
+
+package runtime
`

const patchTamagoTagged = `diff --git a/src/runtime/os_tamago.go b/src/runtime/os_tamago.go
new file mode 100644
--- /dev/null
+++ b/src/runtime/os_tamago.go
@@ -0,0 +1,5 @@
+// Copyright notice.
+
+//go:build tamago
+
+package runtime
`

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed: the builder needs it (apt-get install git)")
	}
}

func TestCacheKey(t *testing.T) {
	base := []Patch{
		{Name: "0001-a.patch", Data: []byte("alpha\n")},
		{Name: "0002-b.patch", Data: []byte("beta\n")},
	}
	baseKey := CacheKey("go1.26.8", base)
	if !strings.HasPrefix(baseKey, "go1.26.8-") || len(baseKey) != len("go1.26.8-")+16 {
		t.Fatalf("CacheKey = %q, want go1.26.8-<16 hex digits>", baseKey)
	}
	if again := CacheKey("go1.26.8", []Patch{base[0], base[1]}); again != baseKey {
		t.Fatalf("CacheKey is not deterministic: %q then %q", baseKey, again)
	}
	tests := []struct {
		name    string
		version string
		format  int
		patches []Patch
	}{
		{"content changed", "go1.26.8", FormatVersion, []Patch{base[0], {Name: "0002-b.patch", Data: []byte("beta!\n")}}},
		{"renamed", "go1.26.8", FormatVersion, []Patch{base[0], {Name: "0003-b.patch", Data: []byte("beta\n")}}},
		{"added", "go1.26.8", FormatVersion, append(append([]Patch{}, base...), Patch{Name: "0003-c.patch", Data: nil})},
		{"removed", "go1.26.8", FormatVersion, base[:1]},
		{"none", "go1.26.8", FormatVersion, nil},
		{"bytes moved between name and content", "go1.26.8", FormatVersion, []Patch{{Name: "0001-a.patchalpha\n", Data: nil}, base[1]}},
		{"builder format bumped", "go1.26.8", FormatVersion + 1, base},
		{"other Go release", "go1.26.9", FormatVersion, base},
	}
	seen := map[string]string{baseKey: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := cacheKey(tt.format, tt.version, tt.patches)
			if other, dup := seen[key]; dup {
				t.Errorf("key %s for %q equals the key for %q", key, tt.name, other)
			}
			seen[key] = tt.name
		})
	}
}

func TestLoadPatches(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"0002-b.patch": "b",
		"0001-a.patch": "a",
		"README":       "not a patch",
		"series":       "0001-a.patch\n",
		"0010-c.patch": "c",
	})
	if err := os.Mkdir(filepath.Join(dir, "0005-dir.patch"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPatches(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name+"="+string(p.Data))
	}
	want := []string{"0001-a.patch=a", "0002-b.patch=b", "0010-c.patch=c"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("LoadPatches = %v, want %v (lexical order, *.patch files only)", names, want)
	}

	t.Run("missing dir", func(t *testing.T) {
		_, err := LoadPatches(filepath.Join(dir, "nope"))
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "-patches") {
			t.Errorf("error = %v, want one saying the dir does not exist and how to pass another", err)
		}
	})
}

func TestPatchedPaths(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		want  []string
	}{
		{"modify", patchEditExtern, []string{"src/runtime/extern.go"}},
		{"create", patchAddMarker, []string{"src/runtime/tamago_marker"}},
		{"two files", patchEditExtern + patchAddMarker, []string{"src/runtime/extern.go", "src/runtime/tamago_marker"}},
		{"delete", "diff --git a/x/y.go b/x/y.go\ndeleted file mode 100644\n--- a/x/y.go\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n", []string{"x/y.go"}},
		{"rename", "diff --git a/old.go b/new.go\nsimilarity index 100%\nrename from old.go\nrename to new.go\n", []string{"old.go", "new.go"}},
		{"diff -u with dates", "--- a/src/a.go\t2026-01-01 00:00:00\n+++ b/src/a.go\t2026-01-02 00:00:00\n@@ -1 +1 @@\n-x\n+y\n", []string{"src/a.go"}},
		{"nothing", "just some text\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PatchedPaths([]byte(tt.patch)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PatchedPaths = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestApplyPatches(t *testing.T) {
	needGit(t)
	tests := []struct {
		name    string
		patches []Patch
		// wantErr lists substrings of the error; nil for success.
		wantErr []string
		// want maps files to their expected content after success.
		want map[string]string
	}{
		{
			name:    "create and modify in order",
			patches: []Patch{{"0001-marker.patch", []byte(patchAddMarker)}, {"0002-extern.patch", []byte(patchEditExtern)}, {"0003-again.patch", []byte(patchEditExternAgain)}},
			want: map[string]string{
				"src/runtime/tamago_marker": "marker\n",
				"src/runtime/extern.go":     "package runtime\n\n// line one\n// line changed by keel\n// line two\n",
			},
		},
		{
			name:    "stale patch is named",
			patches: []Patch{{"0001-marker.patch", []byte(patchAddMarker)}, {"0002-stale.patch", []byte(patchStale)}},
			wantErr: []string{"patch 0002-stale.patch does not apply", "src/runtime/extern.go", "regenerate"},
		},
		{
			name:    "order matters",
			patches: []Patch{{"0001-again.patch", []byte(patchEditExternAgain)}, {"0002-extern.patch", []byte(patchEditExtern)}},
			wantErr: []string{"patch 0001-again.patch does not apply"},
		},
		{
			name:    "not a patch",
			patches: []Patch{{"0001-junk.patch", []byte("hello\n")}},
			wantErr: []string{"patch 0001-junk.patch does not apply"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "go")
			writeTree(t, root, baseTree)
			err := ApplyPatches(context.Background(), root, tt.patches)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("ApplyPatches succeeded, want an error")
				}
				msg := err.Error()
				for _, s := range tt.wantErr {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q does not contain %q", msg, s)
					}
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("error is not one line: %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for rel, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(root, rel))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s = %q, want %q", rel, got, want)
				}
			}
		})
	}
}

// TestApplyPatchesInsideRepository checks that a tree inside a git work tree
// is still patched relative to its own root (git would otherwise apply paths
// relative to the repository top and skip the rest).
func TestApplyPatchesInsideRepository(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	root := filepath.Join(repo, "cache", "go")
	writeTree(t, root, baseTree)
	if err := ApplyPatches(context.Background(), root, []Patch{{"0001-marker.patch", []byte(patchAddMarker)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "src/runtime/tamago_marker")); err != nil {
		t.Errorf("patch was not applied inside the tree: %v", err)
	}
}

func TestCheckPatches(t *testing.T) {
	needGit(t)
	goroot := t.TempDir()
	writeTree(t, goroot, baseTree)
	tests := []struct {
		name    string
		patches []Patch
		wantErr []string
	}{
		{"applies", []Patch{{"0001-marker.patch", []byte(patchAddMarker)}, {"0002-extern.patch", []byte(patchEditExtern)}, {"0003-again.patch", []byte(patchEditExternAgain)}}, nil},
		{"tagged tamago file", []Patch{{"0001-os.patch", []byte(patchTamagoTagged)}}, nil},
		{"stale", []Patch{{"0001-stale.patch", []byte(patchStale)}}, []string{"patch 0001-stale.patch does not apply", goroot}},
		{"untagged tamago file", []Patch{{"0001-os.patch", []byte(patchTamagoUntagged)}}, []string{"src/runtime/os_tamago.go", "//go:build tamago"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPatches(context.Background(), goroot, tt.patches)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatal("CheckPatches succeeded, want an error")
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			}
			// The source tree itself is never touched.
			got, err := os.ReadFile(filepath.Join(goroot, "src/runtime/extern.go"))
			if err != nil || string(got) != baseTree["src/runtime/extern.go"] {
				t.Errorf("CheckPatches modified the source tree: %q, %v", got, err)
			}
			if _, err := os.Stat(filepath.Join(goroot, "src/runtime/tamago_marker")); err == nil {
				t.Error("CheckPatches created a file in the source tree")
			}
		})
	}
}

// TestPatchesApplyToPinnedGo checks the real patch series in
// toolchain/patches against the pinned Go release's source (the local one if
// it is the pinned release, otherwise fetched through GOTOOLCHAIN).
func TestPatchesApplyToPinnedGo(t *testing.T) {
	needGit(t)
	patches, err := LoadPatches("patches")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if len(patches) == 0 {
		// Skipped only while toolchain/patches holds no patches: the
		// GOOS=tamago series has not been written yet. Once it exists
		// this test always runs.
		t.Skip("toolchain/patches has no *.patch files yet")
	}
	base, err := LocateBaseGo(context.Background(), "go", PinnedGoVersion(), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPatches(context.Background(), base.GOROOT, patches); err != nil {
		t.Fatal(err)
	}
}

// testLog sends progress lines to t.Log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

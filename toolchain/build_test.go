package toolchain

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGoScript stands in for a Go distribution's bin/go so that Build's whole
// pipeline (locate, copy, patch, build, verify, stamp, rename) runs in
// milliseconds. It answers:
//
//	go env GOROOT        its own root, or with GOTOOLCHAIN other than "local"
//	                     the root named in its pinned-root file (the
//	                     "downloaded" pinned release)
//	go install ARGS      records ARGS and the environment in $GOROOT,
//	                     fails if $GOROOT/fail-install exists
//	go version           the version passed with -X runtime.buildVersion
//	go tool dist list    linux/amd64, plus tamago/amd64 if a patch created
//	                     $GOROOT/src/runtime/tamago_marker
const fakeGoScript = `#!/bin/sh
root=$(cd "$(dirname "$0")/.." && pwd)
case "$1" in
env)
	if [ "$GOTOOLCHAIN" != local ] && [ -f "$root/pinned-root" ]; then cat "$root/pinned-root"; else echo "$root"; fi ;;
install)
	if [ -f "$GOROOT/fail-install" ]; then echo "src/runtime/os_tamago.go:3:1: fake compile error" >&2; exit 1; fi
	shift
	printf '%s\n' "$@" > "$GOROOT/install-args"
	env > "$GOROOT/install-env"
	pwd > "$GOROOT/install-dir"
	for a in "$@"; do
		case "$a" in -ldflags=-X=runtime.buildVersion=*) echo "${a#-ldflags=-X=runtime.buildVersion=}" > "$GOROOT/fake-version" ;; esac
	done ;;
version)
	echo "go version $(cat "$GOROOT/fake-version") linux/amd64" ;;
tool)
	echo linux/amd64
	if [ -f "$GOROOT/src/runtime/tamago_marker" ]; then echo tamago/amd64; fi ;;
*)
	echo "fake go: unexpected arguments: $*" >&2; exit 2 ;;
esac
`

// fakeGOROOT creates a minimal Go distribution of the given version whose
// bin/go is fakeGoScript. withSrc false leaves out src/.
func fakeGOROOT(t *testing.T, version string, withSrc bool) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "go")
	files := map[string]string{
		"VERSION":                       version + "\ntime 2026-08-28T16:20:06Z\n",
		"pkg/tool/linux_amd64/compile":  "stock compiler\n",
		"pkg/include/textflag.h":        "// header\n",
		"lib/time/zoneinfo.zip":         "zip",
		"src/cmd/dist/build.go":         "package main\n",
		"src/cmd/dist/testdata/x.txt":   "x",
		"src/internal/syslist/a.go":     "package syslist\n",
		"src/runtime/extern.go":         baseTree["src/runtime/extern.go"],
		"src/cmd/go/main.go":            baseTree["src/cmd/go/main.go"],
		"src/cmd/go/testdata/script/a":  "a",
		"src/runtime/testdata/empty.go": "",
	}
	if !withSrc {
		for k := range files {
			if strings.HasPrefix(k, "src/") {
				delete(files, k)
			}
		}
	}
	writeTree(t, root, files)
	bin := filepath.Join(root, "bin", "go")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte(fakeGoScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "pkg/tool/linux_amd64/compile"), 0o555); err != nil {
		t.Fatal(err)
	}
	if withSrc {
		if err := os.Symlink("extern.go", filepath.Join(root, "src/runtime/link.go")); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func writePatches(t *testing.T, patches map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "patches")
	writeTree(t, dir, patches)
	if len(patches) == 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func plentyOfSpace(string) (uint64, error) { return 100 << 30, nil }

// assertNoLeftovers checks that the cache holds nothing but finished
// toolchains.
func assertNoLeftovers(t *testing.T, cache string) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(cache, "toolchain"))
	for _, e := range entries {
		dir := filepath.Join(cache, "toolchain", e.Name())
		if !Cached(dir, e.Name()) {
			t.Errorf("cache holds %s, which is not a finished toolchain", dir)
		}
	}
}

func TestBuildWithFakeGo(t *testing.T) {
	needGit(t)
	pinned := PinnedGoVersion()
	base := fakeGOROOT(t, pinned, true)
	patches := writePatches(t, map[string]string{
		"0001-marker.patch": patchAddMarker,
		"0002-extern.patch": patchEditExtern,
	})
	cache := t.TempDir()
	var log bytes.Buffer
	opts := Options{
		PatchesDir: patches,
		CacheDir:   cache,
		GoCmd:      filepath.Join(base, "bin", "go"),
		Log:        &log,
		FreeBytes:  plentyOfSpace,
	}
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if res.Cached {
		t.Error("first Build reported Cached")
	}
	if want := Dir(cache, res.Key); res.GOROOT != want {
		t.Errorf("GOROOT = %s, want %s", res.GOROOT, want)
	}
	if res.Go != filepath.Join(res.GOROOT, "bin", "go") {
		t.Errorf("Go = %s, want GOROOT/bin/go", res.Go)
	}
	for _, line := range []string{"[1/6] cache key", "[2/6] locating Go", "[3/6] free space", "[4/6] copying", "[5/6] applying 2 patches", "[6/6] building", "includes tamago/amd64", "built " + res.GOROOT} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, log.String())
		}
	}

	t.Run("tree copied and patched", func(t *testing.T) {
		read := func(rel string) string {
			data, err := os.ReadFile(filepath.Join(res.GOROOT, rel))
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
		if got := read("src/runtime/tamago_marker"); got != "marker\n" {
			t.Errorf("tamago_marker = %q", got)
		}
		if got := read("src/runtime/extern.go"); !strings.Contains(got, "line added by keel") {
			t.Errorf("extern.go not patched: %q", got)
		}
		for _, rel := range []string{"lib/time/zoneinfo.zip", "pkg/include/textflag.h", "src/cmd/go/testdata/script/a", "src/runtime/testdata/empty.go"} {
			read(rel)
		}
		fi, err := os.Stat(filepath.Join(res.GOROOT, "pkg/tool/linux_amd64/compile"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("read-only tool copied with mode %v, want 0755 (modes kept, owner write added)", fi.Mode().Perm())
		}
		if link, err := os.Readlink(filepath.Join(res.GOROOT, "src/runtime/link.go")); err != nil || link != "extern.go" {
			t.Errorf("symlink not recreated: %q, %v", link, err)
		}
		// The base distribution is untouched.
		if data, _ := os.ReadFile(filepath.Join(base, "src/runtime/extern.go")); strings.Contains(string(data), "keel") {
			t.Error("the base GOROOT was patched")
		}
	})

	t.Run("install command", func(t *testing.T) {
		args, err := os.ReadFile(filepath.Join(res.GOROOT, "install-args"))
		if err != nil {
			t.Fatal(err)
		}
		want := "-trimpath\n-ldflags=-X=runtime.buildVersion=" + ToolchainVersion(res.Key) + "\n" + strings.Join(Tools, "\n") + "\n"
		if string(args) != want {
			t.Errorf("go install arguments:\n%s\nwant:\n%s", args, want)
		}
		env, err := os.ReadFile(filepath.Join(res.GOROOT, "install-env"))
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, kv := range strings.Split(string(env), "\n") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
		for k, want := range map[string]string{"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "", "GOENV": "off"} {
			if got, ok := vars[k]; !ok || got != want {
				t.Errorf("go install ran with %s=%q (set %v), want %q", k, got, ok, want)
			}
		}
		if !strings.Contains(vars["GOROOT"], ".tmp-") {
			t.Errorf("go install ran with GOROOT=%s, want the temporary copy", vars["GOROOT"])
		}
		for _, k := range []string{"GOOS", "GOARCH", "GOBIN", "GOEXPERIMENT"} {
			if v, ok := vars[k]; ok {
				t.Errorf("go install ran with %s=%s, want it unset", k, v)
			}
		}
	})

	t.Run("cached", func(t *testing.T) {
		log.Reset()
		start := time.Now()
		again, err := Build(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
			t.Errorf("cached Build took %v; the cached case must cost next to nothing", elapsed)
		}
		if !again.Cached || again.GOROOT != res.GOROOT {
			t.Errorf("second Build = %+v, want Cached at %s", again, res.GOROOT)
		}
		if got, want := log.String(), "toolchain: cached at "+res.GOROOT+"\n"; got != want {
			t.Errorf("cached progress = %q, want %q", got, want)
		}
	})

	t.Run("patch change rebuilds", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(patches, "0003-again.patch"), []byte(patchEditExternAgain), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := Build(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if again.Cached || again.Key == res.Key {
			t.Errorf("Build after adding a patch = %+v, want a new toolchain (old key %s)", again, res.Key)
		}
	})
	assertNoLeftovers(t, cache)
}

func TestBuildErrors(t *testing.T) {
	needGit(t)
	pinned := PinnedGoVersion()
	tests := []struct {
		name string
		// setup returns the options for a Build that must fail.
		setup   func(t *testing.T) Options
		step    int
		wantErr []string
	}{
		{
			name: "no patches",
			setup: func(t *testing.T) Options {
				return Options{PatchesDir: writePatches(t, nil), GoCmd: filepath.Join(fakeGOROOT(t, pinned, true), "bin", "go")}
			},
			step:    1,
			wantErr: []string{"no *.patch files", "TAMAGO="},
		},
		{
			name: "missing patches dir",
			setup: func(t *testing.T) Options {
				return Options{PatchesDir: filepath.Join(t.TempDir(), "nope")}
			},
			step:    1,
			wantErr: []string{"does not exist"},
		},
		{
			name: "go command not found",
			setup: func(t *testing.T) Options {
				return Options{PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker}), GoCmd: "/nonexistent/go"}
			},
			step:    2,
			wantErr: []string{"/nonexistent/go", "not found"},
		},
		{
			name: "missing src",
			setup: func(t *testing.T) Options {
				return Options{PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker}), GoCmd: filepath.Join(fakeGOROOT(t, pinned, false), "bin", "go")}
			},
			step:    2,
			wantErr: []string{"has no source tree", "src/runtime missing", "full distribution"},
		},
		{
			name: "fetched release has the wrong version",
			setup: func(t *testing.T) Options {
				local := fakeGOROOT(t, "go1.25.3", true)
				other := fakeGOROOT(t, "go1.25.4", true)
				writeTree(t, local, map[string]string{"pinned-root": other})
				return Options{PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker}), GoCmd: filepath.Join(local, "bin", "go")}
			},
			step:    2,
			wantErr: []string{"GOTOOLCHAIN=" + pinned, "go1.25.4", "install " + pinned},
		},
		{
			name: "not enough space",
			setup: func(t *testing.T) Options {
				return Options{
					PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker}),
					GoCmd:      filepath.Join(fakeGOROOT(t, pinned, true), "bin", "go"),
					NeedBytes:  2 << 30,
					FreeBytes:  func(string) (uint64, error) { return 300 << 20, nil },
				}
			},
			step:    3,
			wantErr: []string{"not enough free space", "needs 2.0 GiB", "only 300.0 MiB", "KEEL_CACHE"},
		},
		{
			name: "patch does not apply",
			setup: func(t *testing.T) Options {
				return Options{
					PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker, "0002-stale.patch": patchStale}),
					GoCmd:      filepath.Join(fakeGOROOT(t, pinned, true), "bin", "go"),
				}
			},
			step:    5,
			wantErr: []string{"patch 0002-stale.patch does not apply", "regenerate", "nothing was kept"},
		},
		{
			name: "untagged tamago file",
			setup: func(t *testing.T) Options {
				return Options{
					PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker, "0002-os.patch": patchTamagoUntagged}),
					GoCmd:      filepath.Join(fakeGOROOT(t, pinned, true), "bin", "go"),
				}
			},
			step:    5,
			wantErr: []string{"src/runtime/os_tamago.go", "//go:build tamago"},
		},
		{
			name: "build fails",
			setup: func(t *testing.T) Options {
				base := fakeGOROOT(t, pinned, true)
				writeTree(t, base, map[string]string{"fail-install": ""})
				return Options{
					PatchesDir: writePatches(t, map[string]string{"0001-m.patch": patchAddMarker}),
					GoCmd:      filepath.Join(base, "bin", "go"),
				}
			},
			step:    6,
			wantErr: []string{"install cmd/go", "compiler output above", "make toolchain"},
		},
		{
			name: "port missing from dist list",
			setup: func(t *testing.T) Options {
				return Options{
					PatchesDir: writePatches(t, map[string]string{"0001-extern.patch": patchEditExtern}),
					GoCmd:      filepath.Join(fakeGOROOT(t, pinned, true), "bin", "go"),
				}
			},
			step:    6,
			wantErr: []string{"does not include tamago/amd64"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.setup(t)
			cache := t.TempDir()
			opts.CacheDir = cache
			if opts.FreeBytes == nil {
				opts.FreeBytes = plentyOfSpace
			}
			var log bytes.Buffer
			opts.Log = &log
			_, err := Build(context.Background(), opts)
			if err == nil {
				t.Fatalf("Build succeeded, want a failure in step %d\nlog:\n%s", tt.step, log.String())
			}
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *StepError", err)
			}
			if se.Step != tt.step {
				t.Errorf("failed in step %d, want %d: %v", se.Step, tt.step, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			assertNoLeftovers(t, cache)
		})
	}
}

func TestLocateBaseGoFetchesPinned(t *testing.T) {
	pinned := PinnedGoVersion()
	tests := []struct {
		name         string
		localVersion string
		wantFetch    bool
	}{
		{"local is pinned", pinned, false},
		{"local is older", "go1.25.3", true},
		{"local is newer", "go1.99.0", true},
		{"local is a development build", "devel go1.27-abcdef", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := fakeGOROOT(t, tt.localVersion, true)
			fetched := fakeGOROOT(t, pinned, true)
			writeTree(t, local, map[string]string{"pinned-root": fetched})
			var log bytes.Buffer
			got, err := LocateBaseGo(context.Background(), filepath.Join(local, "bin", "go"), pinned, &log)
			if err != nil {
				t.Fatal(err)
			}
			want := local
			if tt.wantFetch {
				want = fetched
				if !strings.Contains(log.String(), "GOTOOLCHAIN="+pinned) {
					t.Errorf("progress does not say the pinned release is fetched: %q", log.String())
				}
			}
			if got.GOROOT != want || got.Version != pinned || got.Go != filepath.Join(want, "bin", "go") {
				t.Errorf("LocateBaseGo = %+v, want GOROOT %s version %s", got, want, pinned)
			}
		})
	}
}

func TestCheckFreeSpace(t *testing.T) {
	tests := []struct {
		name    string
		free    uint64
		freeErr error
		need    uint64
		wantErr string
	}{
		{"plenty", 80 << 30, nil, DefaultNeedBytes, ""},
		{"exactly enough", 1 << 30, nil, 1 << 30, ""},
		{"one byte short", 1<<30 - 1, nil, 1 << 30, "not enough free space in /cache/toolchain: the toolchain build needs 1.0 GiB, only 1024.0 MiB is available"},
		{"statfs fails", 0, errors.New("statfs boom"), 1 << 30, "statfs boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkFreeSpace("/cache/toolchain", tt.need, func(dir string) (uint64, error) {
				if dir != "/cache/toolchain" {
					t.Errorf("free space asked for %s", dir)
				}
				return tt.free, tt.freeErr
			})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFreeBytes(t *testing.T) {
	n, err := FreeBytes(t.TempDir())
	if err != nil || n == 0 {
		t.Errorf("FreeBytes(tempdir) = %d, %v; want a positive size", n, err)
	}
	if _, err := FreeBytes("/nonexistent/dir"); err == nil || !strings.Contains(err.Error(), "/nonexistent/dir") {
		t.Errorf("FreeBytes(missing) error = %v, want one naming the dir", err)
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{300 << 20, "300.0 MiB"},
		{1 << 30, "1.0 GiB"},
		{80 << 30, "80.0 GiB"},
		{3 << 40, "3.0 TiB"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatBytes(tt.n); got != tt.want {
				t.Errorf("formatBytes(%d) = %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func TestDefaultCacheDir(t *testing.T) {
	tests := []struct {
		name                 string
		keelCache, xdg, home string
		want                 string
		wantErr              bool
	}{
		{"KEEL_CACHE wins", "/k", "/x", "/h", "/k", false},
		{"XDG_CACHE_HOME", "", "/x", "/h", "/x/keel", false},
		{"HOME", "", "", "/h", "/h/.cache/keel", false},
		{"nothing set", "", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEEL_CACHE", tt.keelCache)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			got, err := DefaultCacheDir()
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("DefaultCacheDir() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestToolchainVersion(t *testing.T) {
	tests := []struct{ key, want string }{
		{"go1.26.8-0123456789abcdef", "go1.26.8-keel.0123456789abcdef"},
		{"go1.26.8", "go1.26.8-keel"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := ToolchainVersion(tt.key)
			if got != tt.want {
				t.Errorf("ToolchainVersion(%q) = %q, want %q", tt.key, got, tt.want)
			}
			// The go command must still see the pinned release.
			if ok, err := MatchesPinned(got, "go1.26.8"); err != nil || !ok {
				t.Errorf("MatchesPinned(%q, go1.26.8) = %v, %v; want true", got, ok, err)
			}
		})
	}
}

func TestListsPlatform(t *testing.T) {
	tests := []struct {
		list string
		want bool
	}{
		{"linux/amd64\ntamago/amd64\nwindows/amd64\n", true},
		{"tamago/amd64", true},
		{"linux/amd64\ntamago/arm64\n", false},
		{"linux/amd64\nxtamago/amd64\n", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.list, "\n", ","), func(t *testing.T) {
			if got := listsPlatform(tt.list, TamagoPlatform); got != tt.want {
				t.Errorf("listsPlatform(%q) = %v, want %v", tt.list, got, tt.want)
			}
		})
	}
}

// TestBuiltToolchainListsTamago checks a real built toolchain. `make test`
// sets KEEL_GOROOT to the toolchain it just built (or to the GOROOT of
// TAMAGO); without it there is nothing to check.
func TestBuiltToolchainListsTamago(t *testing.T) {
	goroot := os.Getenv("KEEL_GOROOT")
	if goroot == "" {
		t.Skip("KEEL_GOROOT is not set (make test sets it to the built toolchain)")
	}
	if err := VerifyTamago(context.Background(), goroot); err != nil {
		t.Fatal(err)
	}
}

package toolchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/keel-hv/keel/internal/cachedir"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// StampFile is the file, inside a finished toolchain directory, whose
// presence (with the right key on its first line) marks the toolchain as
// complete. It is written last, before the directory gets its final name.
const StampFile = ".keel-toolchain-stamp"

// Tools are the commands rebuilt from the patched source. Everything else in
// pkg/tool (vet, cover, cgo, ...) is the base distribution's.
var Tools = []string{"cmd/go", "cmd/compile", "cmd/link", "cmd/asm", "cmd/dist"}

// TamagoPlatform is the GOOS/GOARCH pair a finished toolchain must list in
// `go tool dist list`.
const TamagoPlatform = "tamago/amd64"

// Options configures Build. The zero value builds from toolchain/patches
// into the default cache with the go command found in PATH.
type Options struct {
	// PatchesDir holds the *.patch files; default "toolchain/patches".
	PatchesDir string
	// CacheDir is the cache root; the toolchain goes to
	// CacheDir/toolchain/<key>. Default: DefaultCacheDir().
	CacheDir string
	// GoCmd is the go command used to locate the base distribution;
	// default "go".
	GoCmd string
	// SkipTamagoCheck builds without requiring that the result lists
	// tamago/amd64 (and allows an empty patch series). Only for testing
	// the builder with patches that do not add the port.
	SkipTamagoCheck bool
	// Log receives progress lines; default io.Discard.
	Log io.Writer
	// NeedBytes is the free space required in the cache; default
	// DefaultNeedBytes.
	NeedBytes uint64
	// FreeBytes reports free space for a directory; default FreeBytes.
	FreeBytes func(dir string) (uint64, error)
}

// Result describes a finished toolchain.
type Result struct {
	// GOROOT is the toolchain's root directory.
	GOROOT string
	// Go is GOROOT/bin/go.
	Go string
	// Key is the cache key, e.g. "go1.26.8-0123456789abcdef".
	Key string
	// Cached is true when the toolchain was already built.
	Cached bool
}

// StepError is a failure in one step of Build.
type StepError struct {
	// Step is the 1-based step number.
	Step int
	// Name says what the step does.
	Name string
	// Hint says how to retry; empty if nothing needs saying.
	Hint string
	// Err is the cause.
	Err error
}

// Error formats the failure as one line.
func (e *StepError) Error() string {
	s := fmt.Sprintf("step %d/%d (%s) failed: %v", e.Step, numSteps, e.Name, e.Err)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

const numSteps = 6

// DefaultCacheDir returns ${KEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keel}.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("KEEL_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "keel"), nil
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "keel"), nil
	}
	return "", errors.New("cannot choose a cache directory: none of KEEL_CACHE, XDG_CACHE_HOME or HOME is set; set KEEL_CACHE=/some/dir")
}

// Dir returns the directory of the toolchain with the given key.
func Dir(cacheDir, key string) string {
	return filepath.Join(cacheDir, "toolchain", key)
}

// Cached reports whether dir holds a finished toolchain for key.
func Cached(dir, key string) bool {
	data, err := os.ReadFile(filepath.Join(dir, StampFile))
	if err != nil {
		return false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return line == "key "+key
}

// ToolchainVersion is the version string the built go command and tools
// report (runtime.Version, `go version`): the pinned release plus the
// patches hash, e.g. "go1.26.8-keel.0123456789abcdef".
//
// It matters for correctness, not just display: the go command salts every
// build cache key with its own runtime.Version, and the compile and link
// tools of a release identify themselves by version only. With the stock
// version string, objects compiled or linked by one patch series would be
// reused by the next. The go command reads the language version up to the
// '-', so go.mod lines such as `go 1.26.4` still accept it.
func ToolchainVersion(key string) string {
	v, hash, ok := strings.Cut(key, "-")
	if !ok {
		return key + "-keel"
	}
	return v + "-keel." + hash
}

// Build returns the toolchain for the current patches, building it first if
// the cache does not hold it. On failure nothing is left in the cache.
func Build(ctx context.Context, opts Options) (Result, error) {
	start := time.Now()
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	step := func(n int, format string, args ...any) {
		fmt.Fprintf(log, "toolchain: [%d/%d] %s\n", n, numSteps, fmt.Sprintf(format, args...))
	}
	if opts.PatchesDir == "" {
		opts.PatchesDir = filepath.Join("toolchain", "patches")
	}
	if opts.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return Result{}, &StepError{Step: 1, Name: "cache key", Err: err}
		}
		opts.CacheDir = d
	}
	if abs, err := filepath.Abs(opts.CacheDir); err == nil {
		opts.CacheDir = abs // the printed GOROOT must work from any directory
	}
	if opts.NeedBytes == 0 {
		opts.NeedBytes = DefaultNeedBytes
	}
	if opts.FreeBytes == nil {
		opts.FreeBytes = FreeBytes
	}
	pinned := PinnedGoVersion()

	// 1. Cache key. This and the stamp check are all a cached run costs.
	patches, err := LoadPatches(opts.PatchesDir)
	if err != nil {
		return Result{}, &StepError{Step: 1, Name: "cache key", Err: err}
	}
	if len(patches) == 0 && !opts.SkipTamagoCheck {
		return Result{}, &StepError{Step: 1, Name: "cache key", Err: fmt.Errorf(
			"no *.patch files in %s, so there is no GOOS=tamago support to build: add the patches, or build the kernel with the official TamaGo compiler (TAMAGO=/path/to/tamago-go/bin/go make kernel)", opts.PatchesDir)}
	}
	key := CacheKey(pinned, patches)
	final := Dir(opts.CacheDir, key)
	res := Result{GOROOT: final, Go: filepath.Join(final, "bin", "go"), Key: key}
	if Cached(final, key) {
		res.Cached = true
		fmt.Fprintf(log, "toolchain: cached at %s\n", final)
		return res, nil
	}
	step(1, "cache key %s (%d patches from %s)", key, len(patches), opts.PatchesDir)

	// 2. Base Go.
	step(2, "locating Go %s with source", pinned)
	base, err := LocateBaseGo(ctx, opts.GoCmd, pinned, log)
	if err != nil {
		return Result{}, &StepError{Step: 2, Name: "locate base Go", Err: err}
	}
	fmt.Fprintf(log, "toolchain:       using %s (%s)\n", base.GOROOT, base.Version)

	// 3. Free space.
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Result{}, &StepError{Step: 3, Name: "free space", Err: fmt.Errorf("creating the cache directory: %w", err)}
	}
	have, err := checkFreeSpace(parent, opts.NeedBytes, opts.FreeBytes)
	if err != nil {
		return Result{}, &StepError{Step: 3, Name: "free space", Err: err}
	}
	step(3, "free space in %s: %s (need %s)", parent, formatBytes(have), formatBytes(opts.NeedBytes))
	cachedir.RemoveStaleTemps(parent, time.Now().Add(-6*time.Hour))

	// 4-6 work in a temporary directory next to the final one.
	tmp, err := os.MkdirTemp(parent, ".tmp-"+key+"-")
	if err != nil {
		return Result{}, &StepError{Step: 4, Name: "copy GOROOT", Err: err}
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	retry := "nothing was kept; fix the cause and retry with `make toolchain`"

	// 4. Copy.
	step(4, "copying %s to %s", base.GOROOT, tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Result{}, &StepError{Step: 4, Name: "copy GOROOT", Err: err, Hint: retry}
	}
	if err := copyTree(base.GOROOT, tmp); err != nil {
		return Result{}, &StepError{Step: 4, Name: "copy GOROOT", Err: err, Hint: retry}
	}

	// 5. Patch.
	step(5, "applying %d patches", len(patches))
	if err := applyPatches(ctx, tmp, base.GOROOT, patches); err != nil {
		return Result{}, &StepError{Step: 5, Name: "apply patches", Err: err, Hint: "nothing was kept"}
	}
	if err := CheckTamagoFiles(tmp, patches); err != nil {
		return Result{}, &StepError{Step: 5, Name: "apply patches", Err: err, Hint: "nothing was kept"}
	}

	// 6. Build and verify.
	version := ToolchainVersion(key)
	step(6, "building %s as %s (about a minute when cold)", strings.Join(Tools, " "), version)
	if err := installTools(ctx, base, tmp, version, log); err != nil {
		if ctx.Err() != nil {
			retry = "nothing was kept; run `make toolchain` again"
		}
		return Result{}, &StepError{Step: 6, Name: "build", Err: err, Hint: retry}
	}
	if err := VerifyVersion(ctx, tmp, version); err != nil {
		return Result{}, &StepError{Step: 6, Name: "verify", Err: err, Hint: retry}
	}
	if !opts.SkipTamagoCheck {
		if err := VerifyTamago(ctx, tmp); err != nil {
			return Result{}, &StepError{Step: 6, Name: "verify", Err: err, Hint: "nothing was kept; the patches build but do not add the port"}
		}
		fmt.Fprintf(log, "toolchain:       go tool dist list includes %s\n", TamagoPlatform)
	}
	if err := writeStamp(tmp, key, version, base, patches); err != nil {
		return Result{}, &StepError{Step: 6, Name: "stamp", Err: err, Hint: retry}
	}
	if err := install(tmp, final, key); err != nil {
		return Result{}, &StepError{Step: 6, Name: "install", Err: err, Hint: fmt.Sprintf("retry with `make toolchain`, or remove %s by hand", final)}
	}
	done = true
	fmt.Fprintf(log, "toolchain: built %s in %.1fs\n", final, time.Since(start).Seconds())
	return res, nil
}

// goEnv returns the environment for running a go command against goroot:
// the caller's environment without anything that would change what is
// built (target, flags, experiments, user go env file, workspaces).
func goEnv(goroot string) []string {
	drop := map[string]bool{
		"GOROOT": true, "GOOS": true, "GOARCH": true, "GOFLAGS": true,
		"GOTOOLCHAIN": true, "CGO_ENABLED": true, "GOBIN": true,
		"GOEXPERIMENT": true, "GOAMD64": true, "GOWORK": true,
		"GOENV": true, "GOOSPKG": true, "GO111MODULE": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	return append(env,
		"GOROOT="+goroot, "GOTOOLCHAIN=local", "CGO_ENABLED=0",
		"GOFLAGS=", "GOENV=off", "GOWORK=off")
}

// installTools rebuilds Tools into root with the base go command. The stock
// compiler builds the patched source for the host; `go install` puts cmd/go
// in root/bin and the others (cmd/dist included) in root/pkg/tool/GOOS_GOARCH.
// -trimpath keeps the temporary directory's name out of the binaries (the go
// command finds its GOROOT from its own location), and -X gives every tool
// the toolchain's own version (see ToolchainVersion).
func installTools(ctx context.Context, base BaseGo, root, version string, log io.Writer) error {
	args := append([]string{"install", "-trimpath", "-ldflags=-X=runtime.buildVersion=" + version}, Tools...)
	cmd := exec.CommandContext(ctx, base.Go, args...)
	cmd.Dir = filepath.Join(root, "src")
	cmd.Env = goEnv(root)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(log, &out)
	cmd.Stderr = io.MultiWriter(log, &out)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("%s install %s: %v (compiler output above; a patch probably breaks the host build of the patched tree)",
			base.Go, strings.Join(Tools, " "), err)
	}
	return nil
}

// goTool runs goroot/bin/go with args in a clean environment and returns
// its standard output.
func goTool(ctx context.Context, goroot string, args ...string) (string, error) {
	goBin := filepath.Join(goroot, "bin", "go")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Env = goEnv(goroot)
	cmd.Dir = goroot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(strings.ReplaceAll(stderr.String(), "\n", "; ")), " ")
		return "", fmt.Errorf("%s %s: %v: %s", goBin, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// VerifyVersion checks that the go command in goroot runs and reports the
// version want.
func VerifyVersion(ctx context.Context, goroot, want string) error {
	out, err := goTool(ctx, goroot, "version")
	if err != nil {
		return err
	}
	if f := strings.Fields(out); len(f) < 3 || f[2] != want {
		return fmt.Errorf("%s/bin/go version printed %q, expected version %s", goroot, strings.TrimSpace(out), want)
	}
	return nil
}

// VerifyTamago checks that the toolchain in goroot knows the GOOS=tamago
// port: `go tool dist list` must include tamago/amd64.
func VerifyTamago(ctx context.Context, goroot string) error {
	out, err := goTool(ctx, goroot, "tool", "dist", "list")
	if err != nil {
		return err
	}
	if !listsPlatform(out, TamagoPlatform) {
		return fmt.Errorf("`%s/bin/go tool dist list` does not include %s: the patches do not register the port (internal/platform, cmd/dist)", goroot, TamagoPlatform)
	}
	return nil
}

func listsPlatform(distList, platform string) bool {
	for _, line := range strings.Split(distList, "\n") {
		if strings.TrimSpace(line) == platform {
			return true
		}
	}
	return false
}

func writeStamp(dir, key, version string, base BaseGo, patches []Patch) error {
	var b strings.Builder
	fmt.Fprintf(&b, "key %s\nversion %s\nbase %s %s\nbuilt %s\n", key, version, base.GOROOT, base.Version, time.Now().UTC().Format(time.RFC3339))
	for _, p := range patches {
		fmt.Fprintf(&b, "patch %s\n", p.Name)
	}
	return os.WriteFile(filepath.Join(dir, StampFile), []byte(b.String()), 0o644)
}

// install renames the finished tmp directory to final. If another build won
// the race, its result is kept and tmp is dropped; a final directory without
// a valid stamp (left by hand) is replaced.
func install(tmp, final, key string) error {
	return cachedir.Install(tmp, final, func(dir string) bool { return Cached(dir, key) })
}

// CheckPinned checks, without building anything, that the patches in
// opts.PatchesDir apply in order to the pinned Go release's source and that
// their tamago files carry build constraints (see CheckTamagoFiles).
func CheckPinned(ctx context.Context, opts Options) error {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if opts.PatchesDir == "" {
		opts.PatchesDir = filepath.Join("toolchain", "patches")
	}
	patches, err := LoadPatches(opts.PatchesDir)
	if err != nil {
		return err
	}
	if len(patches) == 0 {
		return fmt.Errorf("no *.patch files in %s: nothing to check", opts.PatchesDir)
	}
	base, err := LocateBaseGo(ctx, opts.GoCmd, PinnedGoVersion(), log)
	if err != nil {
		return err
	}
	if err := CheckPatches(ctx, base.GOROOT, patches); err != nil {
		return err
	}
	fmt.Fprintf(log, "toolchain: %d patches apply to %s (%s)\n", len(patches), base.GOROOT, base.Version)
	return nil
}

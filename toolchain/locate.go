package toolchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BaseGo is the Go distribution the toolchain is built from.
type BaseGo struct {
	// GOROOT is the distribution's root directory (it has src/).
	GOROOT string
	// Version is the first line of GOROOT/VERSION, e.g. "go1.26.8".
	Version string
	// Go is the path of GOROOT/bin/go, the go command used to build.
	Go string
}

// LocateBaseGo finds a Go distribution of release pinned, with source.
//
// It asks goCmd (a go command name or path) for its GOROOT. If that GOROOT's
// VERSION is not pinned, it asks again with GOTOOLCHAIN=<pinned>, which makes
// the go command download golang.org/toolchain@v0.0.1-<pinned>.<os>-<arch>
// from the module proxy into the module cache (that module holds a complete
// GOROOT, src/ included) and report that GOROOT. Progress lines go to log.
func LocateBaseGo(ctx context.Context, goCmd, pinned string, log io.Writer) (BaseGo, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	root, err := goEnvGOROOT(ctx, goCmd, "local")
	if err != nil {
		return BaseGo{}, err
	}
	version, verr := readVersionFile(root)
	match := false
	if verr == nil {
		match, verr = MatchesPinned(version, pinned)
	}
	if !match {
		why := "is " + version
		if verr != nil {
			why = "cannot be used (" + verr.Error() + ")"
		}
		fmt.Fprintf(log, "toolchain:       %s at %s %s, the pinned release is %s: fetching %s with GOTOOLCHAIN=%s (module golang.org/toolchain)\n",
			goCmd, root, why, pinned, pinned, pinned)
		root, err = goEnvGOROOT(ctx, goCmd, pinned)
		if err != nil {
			return BaseGo{}, fmt.Errorf("%w; or install %s (https://go.dev/dl/) and put its bin/ first in PATH", err, pinned)
		}
		version, err = readVersionFile(root)
		if err != nil {
			return BaseGo{}, err
		}
		if ok, err := MatchesPinned(version, pinned); err != nil || !ok {
			return BaseGo{}, fmt.Errorf("GOTOOLCHAIN=%s %s env GOROOT gave %s, whose VERSION is %q, not %s: install %s and put its bin/ first in PATH",
				pinned, goCmd, root, version, pinned, pinned)
		}
	}
	return checkBaseGo(root, version)
}

// checkBaseGo checks that root is a complete distribution: the go command
// and the source tree the patches apply to.
func checkBaseGo(root, version string) (BaseGo, error) {
	for _, rel := range []string{"src/runtime", "src/cmd/go", "src/cmd/dist"} {
		if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil || !fi.IsDir() {
			return BaseGo{}, fmt.Errorf("Go %s at %s has no source tree (%s missing): the builder patches and rebuilds Go from source; use a full distribution such as the go.dev/dl tarball (distribution packages that split out the source need it installed, e.g. golang-src)",
				version, root, filepath.Join(root, filepath.FromSlash(rel)))
		}
	}
	goBin := filepath.Join(root, "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		return BaseGo{}, fmt.Errorf("Go %s at %s has no bin/go: use a complete Go distribution", version, root)
	}
	return BaseGo{GOROOT: root, Version: version, Go: goBin}, nil
}

// goEnvGOROOT runs `goCmd env GOROOT` with the given GOTOOLCHAIN setting.
func goEnvGOROOT(ctx context.Context, goCmd, gotoolchain string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "env", "GOROOT")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+gotoolchain)
	// Run outside any module: a go.mod's toolchain line must not interfere.
	cmd.Dir = os.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("go command %q not found: install Go %s or pass -go /path/to/go", goCmd, PinnedGoVersion())
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return "", fmt.Errorf("GOTOOLCHAIN=%s %s env GOROOT failed (%v): %s", gotoolchain, goCmd, err, msg)
	}
	root := strings.TrimSpace(stdout.String())
	if root == "" {
		return "", fmt.Errorf("GOTOOLCHAIN=%s %s env GOROOT printed nothing: is %s a Go command?", gotoolchain, goCmd, goCmd)
	}
	return root, nil
}

// readVersionFile returns the first line of root/VERSION.
func readVersionFile(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s has no VERSION file: not a released Go distribution", root)
	}
	if err != nil {
		return "", err
	}
	v, err := firstLine(string(data))
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(root, "VERSION"), err)
	}
	return v, nil
}

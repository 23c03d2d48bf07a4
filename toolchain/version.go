// Package toolchain builds Keel's GOOS=tamago Go toolchain on the host.
//
// The official TamaGo compiler is a fork of Go that cannot be fetched on the
// machines Keel is built on, so Keel carries its own GOOS=tamago support as a
// series of patches (toolchain/patches/*.patch) against one pinned Go release
// (toolchain/GOVERSION). Build copies that release's GOROOT into a cache
// directory, applies the patches in lexical order and rebuilds the tools that
// change (cmd/go, cmd/compile, cmd/link, cmd/asm, cmd/dist). The result is
// keyed by the pinned version and a hash of the patches, so a rebuild happens
// only when a patch changes, and a cached toolchain costs nothing to find.
//
// This package is host-only: it runs under plain `go test` and is never part
// of the GOOS=tamago kernel.
package toolchain

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// goVersionFile is the content of toolchain/GOVERSION, the one place where the
// pinned Go release is declared.
//
//go:embed GOVERSION
var goVersionFile string

// PinnedGoVersion returns the Go release the patches are written against, as
// declared in toolchain/GOVERSION (for example "go1.26.8").
func PinnedGoVersion() string {
	v, err := firstLine(goVersionFile)
	if err != nil {
		// GOVERSION is embedded at compile time; an empty file is a
		// programming error caught by TestPinnedGoVersion.
		panic("toolchain/GOVERSION: " + err.Error())
	}
	return v
}

// firstLine returns the first line of s with surrounding space removed, the
// way Go's VERSION file is read (later lines carry a build time).
func firstLine(s string) (string, error) {
	line, _, _ := strings.Cut(s, "\n")
	line = strings.TrimSpace(line)
	if line == "" {
		return "", fmt.Errorf("empty version: expected a Go release such as go1.26.8 on the first line")
	}
	return line, nil
}

// GoVersion is a parsed Go release name such as go1.26.8 or go1.27rc1.
type GoVersion struct {
	// Major, Minor and Patch are the numeric parts of goMajor.Minor.Patch.
	Major, Minor, Patch int
	// Pre is a pre-release suffix such as "rc1" or "beta2"; empty for a
	// release.
	Pre string
}

// String returns the version in Go's own spelling (go1.26.8, go1.27rc1).
// Releases before go1.21 had no ".0" on the first release; this package only
// deals with go1.21 and later, where Patch is always spelled.
func (v GoVersion) String() string {
	if v.Pre != "" {
		return fmt.Sprintf("go%d.%d%s", v.Major, v.Minor, v.Pre)
	}
	return fmt.Sprintf("go%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// ParseGoVersion parses a Go release name as found on the first line of a
// GOROOT's VERSION file: "go1.26.8", "go1.27rc1", "go1.26" (language version,
// Patch 0). A suffix after a space or '-' (build metadata such as
// "go1.26.8 X:nocoverageredesign" or "go1.26.8-keel.abc") is ignored.
// Development builds ("devel go1.27-abcdef") are rejected: they do not
// identify a source tree the patches were written against.
func ParseGoVersion(s string) (GoVersion, error) {
	orig := s
	if strings.HasPrefix(s, "devel") {
		return GoVersion{}, fmt.Errorf("Go version %q is a development build: expected a release such as %s", orig, PinnedGoVersion())
	}
	rest, ok := strings.CutPrefix(s, "go")
	if !ok {
		return GoVersion{}, fmt.Errorf("Go version %q does not start with \"go\": expected a release such as %s", orig, PinnedGoVersion())
	}
	if i := strings.IndexAny(rest, " \t-"); i >= 0 {
		rest = rest[:i]
	}
	var v GoVersion
	// Split off a pre-release suffix: the first letter after the digits.
	if i := strings.IndexFunc(rest, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v.Pre = rest[i:]
		rest = rest[:i]
		if !validPre(v.Pre) {
			return GoVersion{}, fmt.Errorf("Go version %q has an unknown suffix %q: expected rcN or betaN", orig, v.Pre)
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 || (v.Pre != "" && len(parts) != 2) {
		return GoVersion{}, fmt.Errorf("Go version %q is malformed: expected goMAJOR.MINOR.PATCH such as %s", orig, PinnedGoVersion())
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || (len(p) > 1 && p[0] == '0') {
			return GoVersion{}, fmt.Errorf("Go version %q has a bad number %q: expected goMAJOR.MINOR.PATCH such as %s", orig, p, PinnedGoVersion())
		}
		nums[i] = n
	}
	v.Major, v.Minor, v.Patch = nums[0], nums[1], nums[2]
	return v, nil
}

func validPre(s string) bool {
	for _, p := range []string{"rc", "beta"} {
		if n, ok := strings.CutPrefix(s, p); ok {
			_, err := strconv.Atoi(n)
			return err == nil && n != "" && n[0] != '0'
		}
	}
	return false
}

// Compare returns -1, 0 or +1 as v is older than, the same as or newer than w.
// A pre-release is older than the release of the same minor version
// (go1.27rc1 < go1.27.0), and beta is older than rc.
func (v GoVersion) Compare(w GoVersion) int {
	if c := cmpInt(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpInt(v.Minor, w.Minor); c != 0 {
		return c
	}
	if v.Pre != w.Pre {
		switch {
		case v.Pre == "":
			return +1
		case w.Pre == "":
			return -1
		}
		return cmpPre(v.Pre, w.Pre)
	}
	return cmpInt(v.Patch, w.Patch)
}

func cmpPre(a, b string) int {
	rank := func(s string) (int, int) {
		if n, ok := strings.CutPrefix(s, "rc"); ok {
			x, _ := strconv.Atoi(n)
			return 1, x
		}
		n, _ := strings.CutPrefix(s, "beta")
		x, _ := strconv.Atoi(n)
		return 0, x
	}
	ka, na := rank(a)
	kb, nb := rank(b)
	if c := cmpInt(ka, kb); c != 0 {
		return c
	}
	return cmpInt(na, nb)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return +1
	}
	return 0
}

// MatchesPinned reports whether the Go release named by have (a VERSION file's
// first line) is exactly the pinned release want. Any difference, newer or
// older, means the patches may not apply, so the pinned release is fetched
// instead. The error says why have could not be used.
func MatchesPinned(have, want string) (bool, error) {
	w, err := ParseGoVersion(want)
	if err != nil {
		return false, fmt.Errorf("pinned version in toolchain/GOVERSION: %w", err)
	}
	h, err := ParseGoVersion(have)
	if err != nil {
		return false, err
	}
	return h.Compare(w) == 0, nil
}

package toolchain

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/build/constraint"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// CheckTamagoFiles checks that every file the patches leave in root whose
// name marks it as GOOS=tamago-only (x_tamago.go, x_tamago_amd64.s, ...) also
// carries a //go:build line that excludes it from a linux/amd64 build.
//
// Why: the tools are rebuilt by the stock go command, whose go/build does not
// know "tamago" as an OS. To it, os_tamago.go is an ordinary file and
// rt0_tamago_amd64.s an amd64 file, so both would be compiled into the host's
// runtime and break the build with duplicate definitions. cmd/dist (used by
// make.bash) is not affected, but this builder does not use make.bash.
func CheckTamagoFiles(root string, patches []Patch) error {
	var bad []string
	seen := map[string]bool{}
	for _, p := range patches {
		for _, rel := range PatchedPaths(p.Data) {
			if seen[rel] || !isTamagoFileName(path.Base(rel)) {
				continue
			}
			seen[rel] = true
			data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted or renamed away by a patch
			}
			if err != nil {
				return fmt.Errorf("checking build constraints: %w", err)
			}
			if builtForHost(data) {
				bad = append(bad, rel)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s would be compiled into the host (linux/amd64) tools: the stock go that rebuilds the toolchain does not know the _tamago file-name suffix; add a `//go:build tamago` line to each (in the patch that creates it)",
			strings.Join(bad, ", "))
	}
	return nil
}

// isTamagoFileName reports whether a Go or assembly file name uses tamago as
// its GOOS suffix (name_tamago.go, name_tamago_amd64.s). Test files are not
// built by `go install`, so they are ignored.
func isTamagoFileName(name string) bool {
	ext := path.Ext(name)
	if ext != ".go" && ext != ".s" {
		return false
	}
	stem := strings.TrimSuffix(name, ext)
	if strings.HasSuffix(stem, "_test") {
		return false
	}
	parts := strings.Split(stem, "_")
	n := len(parts)
	if n < 2 {
		return false // "tamago.go" alone carries no suffix
	}
	return parts[n-1] == "tamago" || (n >= 3 && parts[n-2] == "tamago")
}

// builtForHost reports whether a file with this content would be included in
// a linux/amd64 build by its build constraints (a file with none is).
func builtForHost(data []byte) bool {
	expr := leadingConstraint(data)
	if expr == nil {
		return true
	}
	return expr.Eval(func(tag string) bool {
		switch tag {
		case "linux", "unix", "amd64", "gc":
			return true
		}
		return strings.HasPrefix(tag, "go1.")
	})
}

// leadingConstraint returns the //go:build (or legacy // +build) expression
// from the comment block before a file's first non-comment line, or nil.
func leadingConstraint(data []byte) constraint.Expr {
	var plus []constraint.Expr
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "//") {
			break
		}
		if constraint.IsGoBuild(line) {
			if x, err := constraint.Parse(line); err == nil {
				return x
			}
		}
		if constraint.IsPlusBuild(line) {
			if x, err := constraint.Parse(line); err == nil {
				plus = append(plus, x)
			}
		}
	}
	if len(plus) == 0 {
		return nil
	}
	x := plus[0]
	for _, y := range plus[1:] {
		x = &constraint.AndExpr{X: x, Y: y}
	}
	return x
}

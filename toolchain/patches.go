package toolchain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// FormatVersion is mixed into every cache key. Bump it whenever the builder
// changes what it puts into a toolchain directory (tools built, flags, stamp
// layout), so that old cached toolchains are not reused.
const FormatVersion = 1

// Patch is one git-format unified diff against the GOROOT root.
type Patch struct {
	// Name is the file name (no directory), e.g. "0001-syslist-tamago.patch".
	Name string
	// Data is the file content.
	Data []byte
}

// LoadPatches reads every *.patch file in dir, sorted by name: the order in
// which they are applied. An empty result is not an error; Build decides
// whether no patches is acceptable.
func LoadPatches(dir string) ([]Patch, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("patches directory %s does not exist: run from the repository root or pass -patches DIR: %w", dir, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading patches directory: %w", err)
	}
	var patches []Patch
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".patch") || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading patch: %w", err)
		}
		patches = append(patches, Patch{Name: e.Name(), Data: data})
	}
	sort.Slice(patches, func(i, j int) bool { return patches[i].Name < patches[j].Name })
	return patches, nil
}

// CacheKey returns the name of the cache directory for a toolchain built from
// Go release goVersion with patches: "<goVersion>-<16 hex digits>". The hash
// covers FormatVersion and every patch's name and content, in order, so any
// edit, rename, addition or removal of a patch gives a new key.
func CacheKey(goVersion string, patches []Patch) string {
	return cacheKey(FormatVersion, goVersion, patches)
}

func cacheKey(format int, goVersion string, patches []Patch) string {
	h := sha256.New()
	fmt.Fprintf(h, "keel-toolchain format %d\n", format)
	field := func(b []byte) {
		// Length-prefix every field so that no two different
		// inputs produce the same byte stream.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, p := range patches {
		field([]byte(p.Name))
		field(p.Data)
	}
	return goVersion + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

// PatchedPaths lists the GOROOT-relative paths a patch reads or writes
// (old and new names of modified, created, deleted, renamed and copied
// files), in order of appearance, without duplicates.
func PatchedPaths(data []byte) []string {
	var paths []string
	seen := map[string]bool{}
	add := func(p string) {
		p = strings.TrimSpace(p)
		// git quotes names with unusual characters; those never occur
		// in the Go tree, so unquoted names are all we handle.
		if p == "" || p == "/dev/null" || seen[p] {
			return
		}
		seen[p] = true
		paths = append(paths, p)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "--- "), strings.HasPrefix(line, "+++ "):
			name := line[4:]
			if i := strings.IndexByte(name, '\t'); i >= 0 {
				name = name[:i] // "--- a/x\t2024-01-01 ..." from diff -u
			}
			if name == "/dev/null" {
				continue
			}
			if _, rest, ok := strings.Cut(name, "/"); ok {
				add(rest) // strip a/ or b/ (-p1)
			}
		case strings.HasPrefix(line, "rename from "):
			add(strings.TrimPrefix(line, "rename from "))
		case strings.HasPrefix(line, "rename to "):
			add(strings.TrimPrefix(line, "rename to "))
		case strings.HasPrefix(line, "copy from "):
			add(strings.TrimPrefix(line, "copy from "))
		case strings.HasPrefix(line, "copy to "):
			add(strings.TrimPrefix(line, "copy to "))
		}
	}
	return paths
}

// ApplyPatches applies patches, in order, to the tree rooted at dir, which
// must be outside any git repository's work tree (or git would apply
// relative to that repository). Each patch is first checked with
// `git apply --check`; the first one that does not apply stops the run with
// an error naming it.
func ApplyPatches(ctx context.Context, dir string, patches []Patch) error {
	return applyPatches(ctx, dir, dir, patches)
}

// applyPatches is ApplyPatches with the source tree named as label in errors.
func applyPatches(ctx context.Context, dir, label string, patches []Patch) error {
	git, err := exec.LookPath("git")
	if err != nil {
		return fmt.Errorf("git not found in PATH: the builder applies patches with `git apply`; install git (apt-get install git)")
	}
	tmp, err := os.MkdirTemp("", "keel-patch-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory for patches: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, p := range patches {
		file := filepath.Join(tmp, p.Name)
		if err := os.WriteFile(file, p.Data, 0o644); err != nil {
			return fmt.Errorf("writing patch %s: %w", p.Name, err)
		}
		for _, args := range [][]string{
			{"apply", "--check", "--whitespace=nowarn", file},
			{"apply", "--whitespace=nowarn", file},
		} {
			if err := runGit(ctx, git, dir, args); err != nil {
				return fmt.Errorf("patch %s does not apply to the Go source in %s (%v): the Go source does not match the pinned %s or the patch was edited by hand; regenerate the patch against %s",
					p.Name, label, err, PinnedGoVersion(), PinnedGoVersion())
			}
		}
	}
	return nil
}

func runGit(ctx context.Context, git, dir string, args []string) error {
	cmd := exec.CommandContext(ctx, git, args...)
	cmd.Dir = dir
	// Stop git from finding a repository above dir: inside a work tree,
	// `git apply` works relative to its top and silently skips paths
	// outside the current directory.
	cmd.Env = append(os.Environ(),
		"GIT_CEILING_DIRECTORIES="+filepath.Dir(dir),
		"LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", "; ")), " ")
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(strings.TrimSuffix(msg, ";"))
	}
	return nil
}

// CheckPatches reports whether patches apply, in order, to the Go source tree
// at goroot, without touching it: it copies only the files the patches name
// into a temporary directory and applies the patches there. It is the quick
// check behind `keel-toolchain -check` and the host tests.
func CheckPatches(ctx context.Context, goroot string, patches []Patch) error {
	tmp, err := os.MkdirTemp("", "keel-patchcheck-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "go")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	for _, p := range patches {
		for _, rel := range PatchedPaths(p.Data) {
			src := filepath.Join(goroot, filepath.FromSlash(rel))
			dst := filepath.Join(root, filepath.FromSlash(rel))
			if _, err := os.Lstat(dst); err == nil {
				continue // already copied for an earlier patch
			}
			fi, err := os.Lstat(src)
			if errors.Is(err, fs.ErrNotExist) {
				continue // created by this or an earlier patch
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := copyEntry(src, dst, fi); err != nil {
				return err
			}
		}
	}
	if err := applyPatches(ctx, root, goroot, patches); err != nil {
		return err
	}
	return CheckTamagoFiles(root, patches)
}

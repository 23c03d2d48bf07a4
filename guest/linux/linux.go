// Package linux fetches the reference guest's kernel: Debian's stock amd64
// kernel, one binary package at one exact version pinned in
// guest/linux/VERSION (embedded here; see Pinned).
//
// Fetch downloads the package with `apt-get download`, takes the bzImage
// out of it with dpkg-deb and keeps it in a cache outside the repository,
// ${KEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keel}/guest-kernel/NAME_VERSION/vmlinuz,
// keyed by the package that built it. Later calls find it there without
// running anything. See docs/guests.md.
//
// Host-only package (it runs apt-get and dpkg-deb on a Debian or Ubuntu
// host); its tests run under plain `go test` with stand-ins for both.
package linux

import (
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// versionFile is guest/linux/VERSION, the one place where the kernel
// package is pinned.
//
//go:embed VERSION
var versionFile string

// Package is a Debian binary package at one exact version.
type Package struct {
	// Name is the package name, such as linux-image-6.1.0-50-amd64-unsigned.
	Name string
	// Version is its exact Debian version, such as 6.1.176-1.
	Version string
}

// String returns NAME=VERSION, the form apt-get takes.
func (p Package) String() string { return p.Name + "=" + p.Version }

// Key returns NAME_VERSION, the name of the package's cache directory (and
// the stem of its .deb file name).
func (p Package) Key() string { return p.Name + "_" + p.Version }

// Pinned returns the package guest/linux/VERSION pins. The file is embedded
// at build time, so an error here is a broken checkout; TestPinned checks
// that it parses.
func Pinned() Package {
	p, err := ParseVersionFile(versionFile)
	if err != nil {
		panic("guest/linux/VERSION: " + err.Error())
	}
	return p
}

// ParseVersionFile reads a VERSION file: "NAME VERSION" on the first line
// that is neither blank nor a # comment.
func ParseVersionFile(text string) (Package, error) {
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return Package{}, fmt.Errorf("%q: want NAME VERSION, such as \"linux-image-6.1.0-50-amd64-unsigned 6.1.176-1\"", line)
		}
		p := Package{Name: f[0], Version: f[1]}
		if err := p.check(); err != nil {
			return Package{}, err
		}
		return p, nil
	}
	return Package{}, errors.New("no NAME VERSION line")
}

// check rejects names and versions that are not Debian's (Debian Policy
// 5.6.1 and 5.6.12), which also keeps Key a single path element.
func (p Package) check() error {
	validName := len(p.Name) >= 2 && isLowerAlnum(p.Name[0])
	for i := 0; i < len(p.Name) && validName; i++ {
		c := p.Name[i]
		validName = isLowerAlnum(c) || c == '+' || c == '-' || c == '.'
	}
	if !validName {
		return fmt.Errorf("package name %q: want lower-case letters, digits, +, - and ., starting with a letter or digit", p.Name)
	}
	validVersion := p.Version != "" && p.Version[0] >= '0' && p.Version[0] <= '9'
	for i := 0; i < len(p.Version) && validVersion; i++ {
		c := p.Version[i]
		validVersion = isLowerAlnum(c) || c >= 'A' && c <= 'Z' || strings.IndexByte(".+-~:", c) >= 0
	}
	if !validVersion {
		return fmt.Errorf("package version %q: want a Debian version such as 6.1.176-1", p.Version)
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// CacheSubdir is the directory under the cache root that holds kernels.
const CacheSubdir = "guest-kernel"

// Files in a kernel's cache directory.
const (
	// KernelFile is the bzImage, the package's /boot/vmlinuz-*.
	KernelFile = "vmlinuz"
	// ConfigFile is the kernel's build configuration, the package's
	// /boot/config-*, kept for reference.
	ConfigFile = "config"
)

// Dir returns the cache directory of package p under the cache root.
func Dir(cacheRoot string, p Package) string {
	return filepath.Join(cacheRoot, CacheSubdir, p.Key())
}

// Path returns where the bzImage of package p is cached under the cache
// root.
func Path(cacheRoot string, p Package) string {
	return filepath.Join(Dir(cacheRoot, p), KernelFile)
}

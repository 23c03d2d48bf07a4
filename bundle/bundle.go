// Package bundle opens Keel's boot bundle: the boot module that holds the
// configuration, keel.conf, and the files it names (guest kernels, initrds,
// Multiboot modules), as an uncompressed cpio archive in the newc format.
//
// Open parses the archive (package bundle/cpio), reads keel.conf at its
// root (package bundle/config), checks that every file the configuration
// names is in the archive, and then serves file contents by name without
// copying them out of the module. docs/bundle.md describes the format and
// how to build a bundle (cmd/keel-bundle).
//
// The package is pure Go and host-testable: the kernel (GOOS=tamago) opens
// its boot module with it, and `go test` runs it on the host.
package bundle

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/bundle/cpio"
)

// ConfigName is the name of the configuration file at the root of a
// bundle.
const ConfigName = "keel.conf"

// MaxLinks is how many symbolic links File follows before it gives up.
const MaxLinks = 8

// ErrNotFound is the error (possibly wrapped) for a name the bundle does
// not hold.
var ErrNotFound = errors.New("not in the bundle")

// Bundle is an opened boot bundle.
type Bundle struct {
	// Config is the parsed keel.conf, with defaults applied.
	Config *config.Config

	entries []cpio.Entry
	index   map[string]int // name -> index in entries
}

// Open reads the bundle in archive, which it keeps: the returned Bundle's
// file contents are sub-slices of archive, so archive must not change
// while the Bundle is in use.
//
// The error is a *cpio.FormatError (wrapped) if the archive is malformed,
// a config.ErrorList if keel.conf has problems or names files the bundle
// lacks, and an error that says how to build a bundle if keel.conf is
// missing.
func Open(archive []byte) (*Bundle, error) {
	entries, err := cpio.Read(archive)
	if err != nil {
		return nil, fmt.Errorf("boot bundle: %w", err)
	}
	b := &Bundle{entries: entries, index: make(map[string]int, len(entries))}
	for i, e := range entries {
		b.index[e.Name] = i
	}
	conf, err := b.File(ConfigName)
	if err != nil {
		return nil, b.noConfig(err)
	}
	cfg, err := config.Parse(ConfigName, conf, b.checkFile)
	if err != nil {
		return nil, err
	}
	b.Config = cfg
	return b, nil
}

// noConfig explains a missing or unreadable keel.conf.
func (b *Bundle) noConfig(err error) error {
	if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("boot bundle: %s: %v", ConfigName, err)
	}
	for _, e := range b.entries {
		if path.Base(e.Name) == ConfigName {
			d := path.Dir(e.Name)
			return fmt.Errorf("boot bundle: %s is not at the root of the archive but in %s/: archive that directory's contents (cd %s && find . | cpio -o -H newc), or build the bundle with keel-bundle", ConfigName, d, d)
		}
	}
	return fmt.Errorf("boot bundle: no %s in the archive (%d entries): build bundles with keel-bundle -o BUNDLE keel.conf", ConfigName, len(b.entries))
}

// checkFile is the config.FileCheck of a bundle.
func (b *Bundle) checkFile(name string) error {
	_, err := b.File(name)
	return err
}

// File returns the contents of the regular file called name, following
// symbolic links inside the bundle (a relative target is relative to the
// link's directory, an absolute one to the bundle's root; the links of
// directories on the way are not followed). The slice is part of the
// archive given to Open: do not modify it.
func (b *Bundle) File(name string) ([]byte, error) {
	e, err := b.lookup(name)
	if err != nil {
		return nil, err
	}
	return e.Data, nil
}

func (b *Bundle) lookup(name string) (*cpio.Entry, error) {
	cur := name
	for hops := 0; ; hops++ {
		i, ok := b.index[cur]
		if !ok {
			if hops == 0 {
				return nil, ErrNotFound
			}
			return nil, fmt.Errorf("a symbolic link leads to %q: %w", cur, ErrNotFound)
		}
		e := &b.entries[i]
		switch {
		case e.IsRegular():
			return e, nil
		case e.IsDir():
			if hops == 0 {
				return nil, errors.New("a directory, not a file")
			}
			return nil, fmt.Errorf("a symbolic link leads to the directory %q, not a file", cur)
		}
		if hops == MaxLinks {
			return nil, fmt.Errorf("more than %d symbolic links from %q (a loop?)", MaxLinks, name)
		}
		target := string(e.Data)
		if strings.HasPrefix(target, "/") {
			target = strings.TrimLeft(target, "/")
		} else {
			target = path.Join(path.Dir(cur), target)
		}
		next, err := cpio.CleanName(target)
		if err != nil {
			return nil, fmt.Errorf("the symbolic link %q -> %q leads outside the bundle", cur, e.Data)
		}
		cur = next
	}
}

// Entries returns the archive's entries in archive order: regular files,
// directories and symbolic links, keel.conf included. The slice and the
// entries' data belong to the Bundle: do not modify them.
func (b *Bundle) Entries() []cpio.Entry { return b.entries }

// Names returns the names of the bundle's regular files, sorted.
func (b *Bundle) Names() []string {
	var names []string
	for _, e := range b.entries {
		if e.IsRegular() {
			names = append(names, e.Name)
		}
	}
	sort.Strings(names)
	return names
}

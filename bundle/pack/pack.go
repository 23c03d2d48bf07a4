// Package pack builds, checks and lists boot bundles on the host: the
// library behind cmd/keel-bundle.
//
// Create reads a keel.conf, validates it with the parser the kernel uses
// (package bundle/config), checking that every file it names exists next to
// it, and writes a newc archive with keel.conf and those files, streaming
// each file so that large initrds are never held in memory. Check does the
// validation alone, and List shows what a bundle holds and the VMs its
// configuration declares.
//
// Host-only: it reads and writes files with package os.
package pack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/keel-hv/keel/bundle"
	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/bundle/cpio"
)

// Options say where the configuration and its files are.
type Options struct {
	// Config is the path of the configuration file. It can have any name;
	// in the bundle it is always keel.conf.
	Config string
	// Dir is the directory that the file names in the configuration are
	// relative to; "" means the configuration file's directory.
	Dir string
	// Output is the path of the bundle to write (Create only). It is
	// written through a temporary file in the same directory and renamed
	// into place, so that it is never seen half written.
	Output string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "keel-bundle: "+format+"\n", args...)
	}
}

func (o *Options) dir() string {
	if o.Dir != "" {
		return o.Dir
	}
	return filepath.Dir(o.Config)
}

// Check parses and validates the configuration and checks that the files
// it names are regular files under the directory, small enough for a newc
// archive. It returns the parsed configuration; errors in it are a
// config.ErrorList.
func Check(o Options) (*config.Config, error) {
	cfg, _, err := load(&o)
	return cfg, err
}

// load reads and checks the configuration; it returns it parsed and as
// written.
func load(o *Options) (*config.Config, []byte, error) {
	src, err := os.ReadFile(o.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the configuration: %w", err)
	}
	if len(src) > config.MaxSize {
		return nil, nil, fmt.Errorf("%s: %s: a configuration is at most %s", o.Config, HumanSize(int64(len(src))), HumanSize(config.MaxSize))
	}
	dir := o.dir()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory: file names in the configuration are relative to it", dir)
	}
	cfg, err := config.Parse(o.Config, src, func(name string) error { return checkFile(dir, name) })
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(cfg.VMs))
	for i, vm := range cfg.VMs {
		names[i] = vm.Name
	}
	o.logf("%s: valid: %s (%s), %s", o.Config, count(len(cfg.VMs), "VM"), strings.Join(names, ", "), count(len(cfg.Files()), "file"))
	return cfg, src, nil
}

// checkFile is the config.FileCheck of a directory on the host.
func checkFile(dir, name string) error {
	if name == bundle.ConfigName {
		return fmt.Errorf("the bundle keeps its configuration under that name: rename the file")
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return fmt.Errorf("%s does not exist (names are relative to the configuration's directory; -C DIR sets another)", p)
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", p)
	case st.Size() > cpio.MaxFileSize:
		return fmt.Errorf("%s is %s: a newc archive holds files below 4 GiB", p, HumanSize(st.Size()))
	}
	return nil
}

// Create checks the configuration as Check does and writes the bundle to
// o.Output: keel.conf (the file as written, comments included), then the
// files it names, in the order the configuration names them, each after
// the directories above it. Owners and times are zero and inode numbers
// count up from 1, so that the same inputs give the same bytes.
func Create(o Options) error {
	if o.Output == "" {
		return errors.New("no output file given")
	}
	cfg, src, err := load(&o)
	if err != nil {
		return err
	}
	dir, files := o.dir(), cfg.Files()
	if err := checkOutput(o.Output, append([]string{o.Config}, paths(dir, files)...)); err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(o.Output), ".keel-bundle-*")
	if err != nil {
		return fmt.Errorf("creating the output: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	bw := bufio.NewWriterSize(tmp, 1<<20)
	total, size, err := write(bw, &o, src, files)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", o.Output, err)
	}
	if err := os.Rename(tmp.Name(), o.Output); err != nil {
		return fmt.Errorf("renaming the bundle into place: %w", err)
	}
	o.logf("wrote %s: %s, %s (%s), %s in all", o.Output, count(len(cfg.VMs), "VM"), count(len(files)+1, "file"), HumanSize(total), HumanSize(size))
	return nil
}

// write writes the archive: the configuration src, then files with their
// directories. It returns the size of the files and of the archive.
func write(out io.Writer, o *Options, src []byte, files []string) (total, size int64, err error) {
	w := cpio.NewWriter(out)
	ino := uint32(0)
	entry := func(name string, mode uint32) *cpio.Entry {
		ino++
		e := &cpio.Entry{Name: name, Mode: mode, Ino: ino, NLink: 1}
		if e.IsDir() {
			e.NLink = 2
		}
		return e
	}

	conf := entry(bundle.ConfigName, cpio.S_IFREG|0o644)
	conf.Data = src
	if err := w.Add(conf); err != nil {
		return 0, 0, err
	}
	o.logf("  %-32s %10s", bundle.ConfigName, HumanSize(int64(len(src))))
	total = int64(len(src))

	dirs := map[string]bool{}
	for _, name := range files {
		for _, d := range parents(name) {
			if !dirs[d] {
				dirs[d] = true
				if err := w.Add(entry(d, cpio.S_IFDIR|0o755)); err != nil {
					return 0, 0, err
				}
			}
		}
		n, err := addFile(w, entry(name, cpio.S_IFREG|0o644), filepath.Join(o.dir(), filepath.FromSlash(name)))
		if err != nil {
			return 0, 0, err
		}
		o.logf("  %-32s %10s", name, HumanSize(n))
		total += n
	}
	if err := w.Close(); err != nil {
		return 0, 0, err
	}
	return total, w.Written(), nil
}

// addFile streams the file at p into the archive as e and returns its
// size.
func addFile(w *cpio.Writer, e *cpio.Entry, p string) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", p)
	}
	if err := w.AddFrom(e, st.Size(), f); err != nil {
		return 0, err
	}
	// A file that grew while it was copied would be cut short silently.
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return 0, fmt.Errorf("%s grew while it was copied: build the bundle again when it is complete", p)
	}
	return st.Size(), nil
}

// parents returns the directories above a clean name, outermost first:
// "a/b/c" gives "a", "a/b".
func parents(name string) []string {
	var dirs []string
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

// paths maps bundle names to host paths under dir.
func paths(dir string, names []string) []string {
	ps := make([]string, len(names))
	for i, n := range names {
		ps[i] = filepath.Join(dir, filepath.FromSlash(n))
	}
	return ps
}

// checkOutput refuses an output path that is one of the inputs, which the
// rename would replace.
func checkOutput(out string, inputs []string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil // a new file (or one Create will fail to write, with a better error)
	}
	if ost.IsDir() {
		return fmt.Errorf("the output %s is a directory", out)
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in); err == nil && os.SameFile(ost, ist) {
			return fmt.Errorf("the output %s is one of the inputs (%s): choose another name", out, in)
		}
	}
	return nil
}

// List writes what the bundle at path holds to w: one line per entry (type
// and permissions, size, name), then the configuration as Keel reads it, in
// canonical form with every default filled in. If the archive is valid but
// its configuration is not, List writes the entries and returns the
// configuration's errors (a config.ErrorList).
func List(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	entries, err := cpio.Read(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range entries {
		line := fmt.Sprintf("%s %10d  %s", modeString(e.Mode), len(e.Data), e.Name)
		if e.IsSymlink() {
			line = fmt.Sprintf("%s %10d  %s -> %s", modeString(e.Mode), len(e.Data), e.Name, e.Data)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "# %s, %s\n", count(len(entries), "entry"), HumanSize(int64(len(data))))
	b, err := bundle.Open(data)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n# %s as Keel reads it (defaults filled in): %s\n", bundle.ConfigName, count(len(b.Config.VMs), "VM"))
	fmt.Fprint(w, b.Config.String())
	return nil
}

// modeString writes a cpio mode the way ls -l does: drwxr-xr-x.
func modeString(mode uint32) string {
	t := byte('-')
	switch mode & cpio.S_IFMT {
	case cpio.S_IFDIR:
		t = 'd'
	case cpio.S_IFLNK:
		t = 'l'
	}
	const rwx = "rwxrwxrwx"
	b := []byte{t}
	for i := 0; i < 9; i++ {
		if mode&(1<<uint(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	return string(b)
}

// count writes n and a noun, plural unless n is 1: "1 VM", "2 VMs".
func count(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "y"):
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// HumanSize writes a byte count for people: 412 B, 7.9 MiB.
func HumanSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, units := float64(n)/1024, []string{"KiB", "MiB", "GiB", "TiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

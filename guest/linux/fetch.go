package linux

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/keel-hv/keel/internal/cachedir"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	bzimage "github.com/keel-hv/keel/loader/linux"
	"github.com/keel-hv/keel/toolchain"
)

// Options configure Fetch.
type Options struct {
	// Package is the kernel package to fetch; the zero value means
	// Pinned().
	Package Package
	// CacheRoot is the cache root directory; "" means
	// toolchain.DefaultCacheDir() (the root Keel's other caches share).
	CacheRoot string
	// Log receives progress and the output of apt-get; nil discards it.
	Log io.Writer
}

// Fetch returns the path of the cached bzImage of the kernel package,
// downloading and unpacking the package first if it is not in the cache.
//
// It runs `apt-get download NAME=VERSION` in a temporary directory under the
// cache root; if apt-get cannot find the package it runs `apt-get update`
// (as root; otherwise it says to) and tries once more. From the .deb it
// keeps /boot/vmlinuz-* and /boot/config-*, read from `dpkg-deb
// --fsys-tarfile` (which stops once they are read: the rest is 400 MB of
// modules the guest does not use). The kernel must be a bzImage that Keel's
// Linux loader accepts. The finished directory is renamed into place, so a
// kernel in the cache is always complete; a file put at the cache path by
// hand is used as it is.
func Fetch(ctx context.Context, o Options) (string, error) {
	p := o.Package
	if p == (Package{}) {
		p = Pinned()
	} else if err := p.check(); err != nil {
		return "", err
	}
	root := o.CacheRoot
	if root == "" {
		var err error
		if root, err = toolchain.DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}

	final := Dir(root, p)
	kernel := filepath.Join(final, KernelFile)
	switch err := checkKernel(kernel); {
	case err == nil:
		fmt.Fprintf(log, "guest kernel: %s: cached\n", p)
		return kernel, nil
	case !errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(log, "guest kernel: the cached kernel is unusable, fetching it again: %v\n", err)
	}

	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("fetching the guest kernel %s needs %s, which is not installed: run this on a Debian or Ubuntu host, or put the package's bzImage (/boot/vmlinuz-*) at %s by hand", p, tool, kernel)
		}
	}
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating the kernel cache: %w (set KEEL_CACHE to a writable directory)", err)
	}
	cachedir.RemoveStaleTemps(parent, time.Now().Add(-time.Hour))
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("creating the kernel cache: %w (set KEEL_CACHE to a writable directory)", err)
	}
	defer os.RemoveAll(tmp)
	dl := filepath.Join(tmp, "deb")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return "", err
	}

	fmt.Fprintf(log, "guest kernel: downloading %s with apt-get\n", p)
	deb, err := download(ctx, p, dl, kernel, log)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(log, "guest kernel: unpacking /boot from %s\n", filepath.Base(deb))
	out := filepath.Join(tmp, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return "", err
	}
	if err := unpackBoot(ctx, deb, out); err != nil {
		return "", err
	}
	if err := checkKernel(filepath.Join(out, KernelFile)); err != nil {
		return "", fmt.Errorf("%s: /boot/vmlinuz-* is not a kernel Keel can load: %w", p, err)
	}
	if err := install(out, final); err != nil {
		return "", fmt.Errorf("moving the kernel into the cache: %w", err)
	}
	fmt.Fprintf(log, "guest kernel: cached %s\n", kernel)
	return kernel, nil
}

// checkKernel checks that the file at path is a bzImage Keel's loader
// accepts. A missing file gives an error that matches os.ErrNotExist.
func checkKernel(path string) error {
	img, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = bzimage.Parse(img)
	return err
}

// download runs apt-get download for p in dir, with an apt-get update and a
// second try if apt-get does not know the package, and returns the path of
// the .deb. kernel is the cache path, which errors mention.
func download(ctx context.Context, p Package, dir, kernel string, log io.Writer) (string, error) {
	args := []string{"download", p.String()}
	if os.Geteuid() == 0 {
		// As root apt-get downloads as the _apt user, who cannot write
		// into a directory of root's; it then downloads as root after
		// a warning. Ask for that up front.
		args = append([]string{"-o", "APT::Sandbox::User=root"}, args...)
	}
	out, err := run(ctx, dir, log, "apt-get", args...)
	if err != nil && unknownPackage(out) {
		if os.Geteuid() != 0 {
			return "", fmt.Errorf("apt-get does not know %s: its package lists may be missing or stale, and only root can refresh them: run `sudo apt-get update` and try again (if it still fails, see `apt-cache policy %s` for the versions apt can get, and pin one in guest/linux/VERSION)", p, p.Name)
		}
		fmt.Fprintf(log, "guest kernel: apt-get does not know %s; refreshing the package lists with apt-get update\n", p)
		if uout, uerr := run(ctx, dir, log, "apt-get", "update"); uerr != nil {
			return "", aptError("apt-get update (to find "+p.String()+")", kernel, uout, uerr)
		}
		out, err = run(ctx, dir, log, "apt-get", args...)
		if err != nil && unknownPackage(out) {
			return "", fmt.Errorf("the apt sources of this host do not have %s, even after apt-get update: Debian keeps only recent kernel ABIs in its archive. `apt-cache policy %s` shows the versions apt can get, and `apt-cache search --names-only '^linux-image-6.1.0-[0-9]+-amd64-unsigned$'` the packages; pin one in guest/linux/VERSION (or add a snapshot.debian.org source that has this one)", p, p.Name)
		}
	}
	if err != nil {
		return "", aptError("apt-get download "+p.String(), kernel, out, err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("apt-get download %s succeeded but left %d .deb files in %s, want 1", p, len(debs), dir)
	}
	return debs[0], nil
}

// unknownPackage reports whether apt-get's output says it does not know the
// package or the version (apt's messages, in the C locale that run sets).
func unknownPackage(out string) bool {
	for _, s := range []string{
		"Unable to locate package",
		"was not found",     // Version 'V' for 'P' was not found
		"Can't select",      // Can't select candidate version from package P
		"No packages found", // apt-get download with a pattern
		"has no installation candidate",
	} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// offline reports whether apt-get's output says the archive could not be
// reached.
func offline(out string) bool {
	for _, s := range []string{
		"Temporary failure resolving",
		"Could not resolve",
		"Unable to connect",
		"Could not connect",
		"Network is unreachable",
		"Connection timed out",
		"Connection refused",
		"No route to host",
		"Failed to fetch",
	} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// aptError explains a failed apt-get command, what; kernel is the cache
// path, where a kernel can be put by hand.
func aptError(what, kernel, out string, err error) error {
	last := lastLines(out, 3)
	if offline(out) {
		return fmt.Errorf("%s: no network: apt-get could not reach the package archive (%s). Connect this host (or give apt a proxy or mirror) and try again, or put the package's bzImage at %s by hand", what, last, kernel)
	}
	if strings.Contains(out, "Permission denied") || strings.Contains(out, "are you root?") {
		return fmt.Errorf("%s: permission denied (%s): run it as root", what, last)
	}
	return fmt.Errorf("%s: %v (%s)", what, err, last)
}

// lastLines returns up to n last non-empty lines of out, joined by "; ".
func lastLines(out string, n int) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, "; ")
}

// run runs a command in dir in the C locale (apt's messages are matched in
// English), copying its output to log, and returns the output.
func run(ctx context.Context, dir string, log io.Writer, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=", "DEBIAN_FRONTEND=noninteractive")
	w := io.MultiWriter(&out, prefixWriter{w: log, prefix: "guest kernel:   "})
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.String(), err
}

// unpackBoot writes the package's /boot/vmlinuz-* and /boot/config-* to
// dir as KernelFile and ConfigFile. It reads the package's data archive
// from `dpkg-deb --fsys-tarfile` and stops reading once it has left /boot
// with a kernel in hand.
func unpackBoot(ctx context.Context, deb, dir string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dpkg-deb: %w", err)
	}
	found, rerr := extractBoot(stdout, dir)
	// Closing the pipe early stops dpkg-deb (and its decompressor) with
	// SIGPIPE rather than let it decompress the modules for nothing.
	stdout.Close()
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case found && rerr == nil:
		return nil
	case rerr != nil:
		return fmt.Errorf("reading the files of %s: %w (dpkg-deb: %s)", deb, rerr, lastLines(stderr.String(), 3))
	case werr != nil:
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, werr, lastLines(stderr.String(), 3))
	}
	return fmt.Errorf("%s has no /boot/vmlinuz-*: not a linux-image package (pin a linux-image-*-amd64[-unsigned] package in guest/linux/VERSION)", filepath.Base(deb))
}

// extractBoot reads a package's data tar archive and writes its
// boot/vmlinuz-* and boot/config-* files to dir as KernelFile and
// ConfigFile. found reports whether it wrote a kernel; it stops at the first
// entry outside boot/ after that.
func extractBoot(r io.Reader, dir string) (found bool, err error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return found, nil
		}
		if err != nil {
			return found, err
		}
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		dirName, base := path.Split(name)
		if dirName != "boot/" {
			if found {
				return true, nil
			}
			continue
		}
		var to string
		switch {
		case strings.HasPrefix(base, "vmlinuz-"):
			to = KernelFile
		case strings.HasPrefix(base, "config-"):
			to = ConfigFile
		default:
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return found, fmt.Errorf("/%s is not a regular file", name)
		}
		if err := writeFile(filepath.Join(dir, to), tr); err != nil {
			return found, err
		}
		found = found || to == KernelFile
	}
}

// writeFile writes r to a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// install renames the finished directory tmp to final, replacing an
// unusable final directory. If another fetch finished first, its result is
// kept.
func install(tmp, final string) error {
	return cachedir.Install(tmp, final, func(dir string) bool { return checkKernel(filepath.Join(dir, KernelFile)) == nil })
}

// prefixWriter writes each line with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

// Write writes p, with the prefix before each line it starts. It assumes
// lines do not span writes, which is close enough for progress output.
func (pw prefixWriter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		b.WriteString(pw.prefix)
		b.Write(line)
	}
	if _, err := pw.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

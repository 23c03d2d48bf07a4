// Package initramfs builds the reference guest's initramfs: an uncompressed
// newc cpio archive (written with bundle/cpio) whose only program is the
// tiny Go init of guest/init, compiled by the host's go command for
// GOOS=linux GOARCH=amd64 without cgo, so that it is static.
//
// The archive holds, in this order:
//
//	dev/    0755  mount point of devtmpfs
//	proc/   0555  mount point of proc
//	sys/    0555  mount point of sysfs
//	init    0755  the init program
//
// It has no /dev/console node: bundle/cpio holds only files, directories
// and symbolic links. None is needed, because Linux unpacks its built-in
// initramfs (usr/default_cpio_list: /dev, /dev/console, /root) before this
// one whenever it is built with an empty CONFIG_INITRAMFS_SOURCE, as
// Debian's kernels are, and the init mounts devtmpfs on /dev first thing.
//
// Owners and times are zero and the init is built with -trimpath and
// without a build ID, so the same sources and go command give the same
// bytes. Host-only package; `go test` runs it.
package initramfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/keel-hv/keel/bundle/cpio"
)

// InitPackage is the import path of the init program.
const InitPackage = "github.com/keel-hv/keel/guest/init"

// InitEnv is the environment, added to the caller's, that the init is built
// in: Linux on amd64, no cgo (so the binary is static), the baseline amd64
// instruction set, and the local toolchain only.
var InitEnv = []string{"GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0", "GOAMD64=v1", "GOFLAGS=", "GOTOOLCHAIN=local"}

// Options configure Build.
type Options struct {
	// Output is the archive to write. It is written to a temporary file
	// next to it and renamed into place.
	Output string
	// Go is the go command that builds the init; "" means "go".
	Go string
	// Init, if set, is a prebuilt init program to put in the archive
	// instead of building InitPackage.
	Init string
	// Log receives progress; nil discards it.
	Log io.Writer
}

// Build compiles the init program (unless o.Init names one) and writes the
// initramfs to o.Output.
func Build(ctx context.Context, o Options) error {
	if o.Output == "" {
		return fmt.Errorf("initramfs: no output file given")
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	dir := filepath.Dir(o.Output)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".initramfs-*")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	init := o.Init
	if init == "" {
		init = tmp.Name() + ".init"
		defer os.Remove(init)
		fmt.Fprintf(log, "initramfs: building %s (GOOS=linux GOARCH=amd64 CGO_ENABLED=0)\n", InitPackage)
		if err := BuildInit(ctx, o.Go, init); err != nil {
			return err
		}
	}
	f, err := os.Open(init)
	if err != nil {
		return fmt.Errorf("initramfs: the init program: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: the init program: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("initramfs: the init program %s is not a regular file", init)
	}
	if err := Write(tmp, f, st.Size()); err != nil {
		return fmt.Errorf("initramfs: writing %s: %w", o.Output, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("initramfs: writing %s: %w", o.Output, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.Output); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	out, _ := os.Stat(o.Output)
	fmt.Fprintf(log, "initramfs: wrote %s (%d bytes, init %d bytes)\n", o.Output, out.Size(), st.Size())
	return nil
}

// BuildInit compiles InitPackage with the go command goCmd ("" means "go")
// into the file out, as a static GOOS=linux GOARCH=amd64 binary without
// symbol tables (-s -w: the guest never debugs it). It runs in the current
// directory, which must be inside Keel's module.
func BuildInit(ctx context.Context, goCmd, out string) error {
	if goCmd == "" {
		goCmd = "go"
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", abs, InitPackage)
	cmd.Env = append(os.Environ(), InitEnv...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initramfs: building the init program (%s build %s, run inside Keel's repository): %v\n%s", goCmd, InitPackage, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// Layout: the archive's entries before the init, with their modes.
var dirs = []struct {
	name string
	mode uint32
}{
	{"dev", cpio.S_IFDIR | 0o755},
	{"proc", cpio.S_IFDIR | 0o555},
	{"sys", cpio.S_IFDIR | 0o555},
}

// InitName is the init program's name in the archive: Linux runs /init
// from an initramfs (rdinit=, default /init).
const InitName = "init"

// Write writes the initramfs to w: the directories, then the init program
// of size bytes read from init.
func Write(w io.Writer, init io.Reader, size int64) error {
	cw := cpio.NewWriter(w)
	ino := uint32(1)
	for _, d := range dirs {
		if err := cw.Add(&cpio.Entry{Name: d.name, Mode: d.mode, Ino: ino, NLink: 2}); err != nil {
			return err
		}
		ino++
	}
	if err := cw.AddFrom(&cpio.Entry{Name: InitName, Mode: cpio.S_IFREG | 0o755, Ino: ino, NLink: 1}, size, init); err != nil {
		return err
	}
	return cw.Close()
}

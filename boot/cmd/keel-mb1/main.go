// Command keel-mb1 writes a copy of a kernel ELF with a Multiboot (v1)
// header that uses the a.out kludge, for Multiboot v1 loaders that cannot
// load a 64-bit ELF (iPXE's `kernel`/`boot`):
//
//	keel-mb1 -o build/pxe/keel-mb1.elf build/keel.elf
//
// See package github.com/keel-hv/keel/boot/mb1. Host-only.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keel-hv/keel/boot/mb1"
)

func main() {
	out := flag.String("o", "", "output `file` (required; written atomically, mode 0755)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: keel-mb1 -o OUT KERNEL.elf\n\nWrites OUT, a copy of KERNEL.elf with a Multiboot v1 header (a.out kludge).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *out); err != nil {
		fmt.Fprintf(os.Stderr, "keel-mb1: %v\n", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	image, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("reading the kernel: %v (build it with `make kernel`)", err)
	}
	patched, h, err := mb1.Patch(image)
	if err != nil {
		return fmt.Errorf("%s: %v", in, err)
	}
	if err := writeFile(out, patched); err != nil {
		return err
	}
	fmt.Printf("keel-mb1: wrote %s: %v\n", out, h)
	return nil
}

// writeFile writes data to path through a temporary file and a rename, so
// that a reader never sees a half-written image.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keel-mb1-*")
	if err != nil {
		return fmt.Errorf("creating the output: %v (does the directory %s exist and is it writable?)", err, filepath.Dir(path))
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %v", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %v", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming into place: %v", err)
	}
	return nil
}

// Command keel-guest builds the pieces of Keel's reference Linux guest:
//
//	keel-guest kernel [-cache DIR] [-o FILE]   fetch (or find) the pinned Debian kernel
//	keel-guest initramfs -o FILE [-go GO]      build the initramfs with the Go init
//
// kernel prints the path of the cached bzImage on standard output and, with
// -o, also copies it to FILE. Progress goes to standard error. The exit
// status is 1 on an error, 2 on bad usage. See docs/guests.md and packages
// github.com/keel-hv/keel/guest/linux and .../guest/initramfs. Host-only.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/keel-hv/keel/guest/initramfs"
	"github.com/keel-hv/keel/guest/linux"
)

const usage = `usage: keel-guest kernel [-cache DIR] [-o FILE]
       keel-guest initramfs -o FILE [-go GO] [-init FILE]

kernel     fetches the Debian kernel pinned in guest/linux/VERSION into the
           cache (or finds it there) and prints the cached bzImage's path
initramfs  builds the guest's initramfs: the Go init of guest/init in a
           newc cpio archive

See docs/guests.md.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "kernel":
		err = kernel(ctx, args)
	case "initramfs":
		err = initrd(ctx, args)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "keel-guest: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "keel-guest: %v\n", err)
		os.Exit(1)
	}
}

// flags returns a flag set for a subcommand that exits with status 2 on bad
// usage.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("keel-guest "+name, flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage, "\nflags of ", name, ":\n")
		fs.PrintDefaults()
	}
	return fs
}

func kernel(ctx context.Context, args []string) error {
	fs := flags("kernel")
	cache := fs.String("cache", "", "cache root `dir` (default ${KEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keel})")
	out := fs.String("o", "", "also copy the kernel to `file`")
	fs.Parse(args)
	if fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	path, err := linux.Fetch(ctx, linux.Options{CacheRoot: *cache, Log: os.Stderr})
	if err != nil {
		return err
	}
	if *out != "" {
		if err := copyFile(path, *out); err != nil {
			return err
		}
	}
	fmt.Println(path)
	return nil
}

func initrd(ctx context.Context, args []string) error {
	fs := flags("initramfs")
	out := fs.String("o", "", "write the initramfs to `file` (required)")
	goCmd := fs.String("go", "go", "go `command` that builds the init")
	init := fs.String("init", "", "use this prebuilt init `program` instead of building guest/init")
	fs.Parse(args)
	if fs.NArg() != 0 || *out == "" {
		fs.Usage()
		os.Exit(2)
	}
	return initramfs.Build(ctx, initramfs.Options{Output: *out, Go: *goCmd, Init: *init, Log: os.Stderr})
}

// copyFile copies src to dst through a temporary file renamed into place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".kernel-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copying the kernel to %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("copying the kernel to %s: %w", dst, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

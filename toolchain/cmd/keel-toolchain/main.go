// Command keel-toolchain builds (or finds in the cache) Keel's GOOS=tamago Go
// toolchain: the pinned Go release with toolchain/patches applied.
//
// Progress goes to standard error. On success the last line of standard
// output is the toolchain's GOROOT, or with -print the path of its bin/go
// (for Makefiles: GO_TAMAGO := $(shell go run ./toolchain/cmd/keel-toolchain -print)).
// With -check it only checks that the patches apply to the pinned Go source.
//
// Host-only command.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keel-hv/keel/toolchain"
)

func main() {
	var opts toolchain.Options
	flag.StringVar(&opts.PatchesDir, "patches", "toolchain/patches", "directory holding the `*.patch` files")
	flag.StringVar(&opts.CacheDir, "cache", "", "cache root `dir` (default ${KEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keel})")
	flag.StringVar(&opts.GoCmd, "go", "go", "go `command` used to locate the base Go distribution")
	printGo := flag.Bool("print", false, "print only the path of the toolchain's bin/go")
	check := flag.Bool("check", false, "only check that the patches apply to the pinned Go source")
	verify := flag.Bool("verify", true, "require `go tool dist list` to include tamago/amd64 (false only for builder tests)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: keel-toolchain [flags]\n\nBuilds Keel's GOOS=tamago Go toolchain into the cache, or finds it there.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts.SkipTamagoCheck = !*verify
	opts.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *check {
		if err := toolchain.CheckPinned(ctx, opts); err != nil {
			fmt.Fprintf(os.Stderr, "toolchain: %v\n", err)
			os.Exit(1)
		}
		return
	}
	res, err := toolchain.Build(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "toolchain: %v\n", err)
		os.Exit(1)
	}
	if *printGo {
		fmt.Println(res.Go)
	} else {
		fmt.Println(res.GOROOT)
	}
}

// Command keel-media builds Keel's boot media from the kernel ELF:
//
//	keel-media iso -kernel build/keel.elf -o build/keel.iso [-cmdline ARGS] [-bundle FILE]
//	keel-media pxe -kernel build/keel.elf -o build/pxe     [-cmdline ARGS] [-bundle FILE]
//
// `make iso` and `make pxe` run it. See package
// github.com/keel-hv/keel/boot/media. Host-only.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/keel-hv/keel/boot/media"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage: keel-media iso|pxe -kernel KERNEL.elf -o OUT [-cmdline ARGS] [-bundle FILE]

  iso   OUT is a hybrid ISO image (BIOS, UEFI, raw USB stick) booting through GRUB
  pxe   OUT is a TFTP root directory (iPXE script, GRUB netboot for BIOS and UEFI)

`)
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "iso" && os.Args[1] != "pxe") {
		usage()
		os.Exit(2)
	}
	what := os.Args[1]
	fs := flag.NewFlagSet("keel-media "+what, flag.ExitOnError)
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	var o media.Options
	out := fs.String("o", "", "output `path` (required)")
	fs.StringVar(&o.Kernel, "kernel", "build/keel.elf", "kernel ELF `file`")
	fs.StringVar(&o.Cmdline, "cmdline", "", "kernel command line, GRUB/iPXE quoting (e.g. keel.run=\"cpus; mem\")")
	fs.StringVar(&o.Bundle, "bundle", "", "boot bundle `file` to add as a module, if it exists")
	fs.Parse(os.Args[2:])
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	o.Log = os.Stdout

	build := media.BuildISO
	if what == "pxe" {
		build = media.BuildPXE
	}
	if err := build(o, *out); err != nil {
		fmt.Fprintf(os.Stderr, "keel-media %s: %v\n", what, err)
		os.Exit(1)
	}
}

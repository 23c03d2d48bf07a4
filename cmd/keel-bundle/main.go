// Command keel-bundle builds, checks and lists Keel's boot bundles:
//
//	keel-bundle -o bundle.cpio [-C DIR] keel.conf   build a bundle
//	keel-bundle -check [-C DIR] keel.conf           validate only
//	keel-bundle -list bundle.cpio                   show files and VMs
//
// File names in the configuration are relative to its directory, or to
// DIR. Progress goes to standard error, the listing to standard output.
// The exit status is 1 on an error, 2 on bad usage. See docs/bundle.md and
// package github.com/keel-hv/keel/bundle/pack. Host-only.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/bundle/pack"
)

func main() {
	out := flag.String("o", "", "build the bundle and write it to `file`")
	check := flag.Bool("check", false, "validate the configuration and the files it names; write nothing")
	list := flag.Bool("list", false, "list a bundle's files and the VMs its configuration declares")
	dir := flag.String("C", "", "`dir`ectory the configuration's file names are relative to (default: the configuration's)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `usage: keel-bundle -o BUNDLE [-C DIR] keel.conf
       keel-bundle -check [-C DIR] keel.conf
       keel-bundle -list BUNDLE

Builds Keel's boot bundle (a newc cpio archive with keel.conf and the files
it names), validates a configuration, or lists a bundle. See docs/bundle.md.

`)
		flag.PrintDefaults()
	}
	flag.Parse()
	modes := 0
	for _, set := range []bool{*out != "", *check, *list} {
		if set {
			modes++
		}
	}
	if flag.NArg() != 1 || modes != 1 || *list && *dir != "" {
		flag.Usage()
		os.Exit(2)
	}

	o := pack.Options{Config: flag.Arg(0), Dir: *dir, Output: *out, Log: os.Stderr}
	var err error
	switch {
	case *list:
		err = pack.List(flag.Arg(0), os.Stdout)
	case *check:
		_, err = pack.Check(o)
	default:
		err = pack.Create(o)
	}
	var problems config.ErrorList
	switch {
	case errors.As(err, &problems):
		// One line per problem, each starting FILE:LINE: for editors.
		fmt.Fprintln(os.Stderr, problems)
		fmt.Fprintln(os.Stderr, "keel-bundle: the configuration has errors (above)")
		os.Exit(1)
	case err != nil:
		fmt.Fprintf(os.Stderr, "keel-bundle: %v\n", err)
		os.Exit(1)
	}
}

//go:build tamago

package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keel-hv/keel/kernel/pc"
)

// A minimal serial console, to be replaced by the full shell.

const (
	// prompt is printed before each command line.
	prompt = "keel> "
	// maxLine bounds a command line; extra input is dropped.
	maxLine = 256
	// pollInterval is how long the reader sleeps when no byte is waiting.
	pollInterval = 2 * time.Millisecond
)

// readSerial polls u and sends each received byte to in.
func readSerial(u *pc.UART, in chan<- byte) {
	for {
		if c, ok := u.Rx(); ok {
			in <- c
			continue
		}

		time.Sleep(pollInterval)
	}
}

// runShell reads command lines from u, echoing to out, and runs them. It
// returns only through poweroff.
func runShell(u *pc.UART, out io.Writer) {
	in := make(chan byte, 64)
	go readSerial(u, in)

	line := make([]byte, 0, maxLine)
	lastCR := false

	fmt.Fprint(out, prompt)

	for c := range in {
		switch {
		case c == '\n' && lastCR:
			// \r\n from a terminal: the \r ended the line.
		case c == '\r' || c == '\n':
			fmt.Fprint(out, "\n")
			run(strings.TrimSpace(string(line)), out)
			line = line[:0]
			fmt.Fprint(out, prompt)
		case c == 0x7f || c == '\b':
			if len(line) > 0 {
				line = line[:len(line)-1]
				fmt.Fprint(out, "\b \b")
			}
		case c >= 0x20 && c < 0x7f && len(line) < maxLine:
			line = append(line, c)
			fmt.Fprintf(out, "%c", c)
		}

		lastCR = c == '\r'
	}
}

// run executes one command line.
func run(cmd string, out io.Writer) {
	switch cmd {
	case "":
	case "help":
		fmt.Fprint(out, "commands:\n  help      this list\n  version   print the Keel version\n  poweroff  stop the machine\n")
	case "version":
		fmt.Fprintf(out, "keel version %s\n", Version)
	case "poweroff":
		fmt.Fprint(out, "keel: powering off\n")
		pc.PowerOff()
	default:
		fmt.Fprintf(out, "keel: unknown command %q (try help)\n", cmd)
	}
}

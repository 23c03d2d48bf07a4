package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	// File is the configuration's file name, as given to Parse.
	File string
	// Line is the 1-based line number, or 0 for the file as a whole.
	Line int
	// Section is where the problem is: `[keel]`, `vm "demo"`, or "".
	Section string
	// Key is the key at fault, or "".
	Key string
	// Msg says what is wrong and, where it helps, what to write instead.
	Msg string
}

// Error formats e as `FILE:LINE: SECTION: KEY: MSG`, leaving out the parts
// that are empty, for example
// `keel.conf:7: vm "demo": memory: "12Q" is not a size (use e.g. 256M or 2G)`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Section != "" {
		b.WriteString(e.Section + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem Parse found, in line order. If there were more
// than MaxErrors, the last entry says so.
type ErrorList []*Error

// Error returns the errors one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

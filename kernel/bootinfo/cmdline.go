package bootinfo

import (
	"errors"
	"fmt"
	"strings"
)

// Option is one kernel command-line option.
type Option struct {
	// Key is the text before the first unescaped '=' (the whole option for
	// a bare flag), with quotes and escapes removed.
	Key string
	// Value is the text after that '=', with quotes and escapes removed;
	// empty for a bare flag.
	Value string
	// HasValue reports that the option had an '=' ("key=" has an empty
	// value; "key" is a bare flag).
	HasValue bool
}

// Cmdline is a parsed kernel command line.
type Cmdline struct {
	// Options are the options in command-line order, repeats included.
	Options []Option
}

// ParseCmdline splits a kernel command line into options. The rules, which
// accept both what people type in QEMU's -append and what GRUB passes on
// from a grub.cfg line:
//
//   - Options are separated by unquoted, unescaped white space (space, tab,
//     newline, carriage return).
//   - An option is "key=value" or a bare flag "key". The first '=' that is
//     not escaped with a backslash separates key from value, whether or not
//     it is inside quotes; later '=' belong to the value.
//   - A double quote '"' starts or ends a quoted section anywhere in an
//     option; the quotes themselves are removed. Inside quotes, white space
//     and ';' are ordinary characters. So `keel.run="a; b"` and
//     `"keel.run=a; b"` (the form GRUB produces for an argument holding
//     spaces) both give key "keel.run" and value "a; b".
//   - A backslash before a double quote, a backslash, a single quote, an
//     '=' or white space makes that character literal, inside quotes or
//     not: `\"` is a quote, `\\` a backslash, `\ ` a space, `\=` an '='
//     that does not split. GRUB 2 escapes the three quote and backslash
//     characters this way. Any other backslash is an ordinary character,
//     so `\x41` stays as it is (GRUB passes such sequences on unchanged).
//   - Single quotes are ordinary characters.
//
// Under multiboot, GRUB puts the kernel's file name first; it appears as a
// bare flag (for example "/boot/keel.elf").
//
// Malformed options (an empty key, as in "=x") are left out, and a quote
// that is never closed runs to the end of the line; both are reported in
// the error, which joins one error per problem. The returned Cmdline holds
// every well-formed option even when the error is not nil.
func ParseCmdline(s string) (Cmdline, error) {
	var (
		c    Cmdline
		errs []error

		cur      []byte
		started  bool // cur holds an option, possibly empty ("")
		start    int  // byte offset of the option's first character
		eq       = -1 // index in cur of the separating '=', or -1
		inQuote  bool
		quotePos int
	)

	emit := func() {
		if !started {
			return
		}

		switch {
		case eq == 0:
			errs = append(errs, fmt.Errorf("option at byte %d (%q) has an empty key", start, cur))
		case eq > 0:
			c.Options = append(c.Options, Option{Key: string(cur[:eq]), Value: string(cur[eq+1:]), HasValue: true})
		case len(cur) > 0:
			c.Options = append(c.Options, Option{Key: string(cur)})
		}

		cur, started, eq = nil, false, -1
	}

	for i := 0; i < len(s); i++ {
		ch := s[i]

		if !started && !isCmdlineSpace(ch) {
			started, start = true, i
		}

		switch {
		case ch == '\\' && i+1 < len(s) && isCmdlineEscapable(s[i+1]):
			i++
			cur = append(cur, s[i])

		case ch == '"':
			inQuote = !inQuote
			quotePos = i

		case isCmdlineSpace(ch) && !inQuote:
			emit()

		case ch == '=' && eq < 0:
			eq = len(cur)
			cur = append(cur, ch)

		default:
			cur = append(cur, ch)
		}
	}

	if inQuote {
		errs = append(errs, fmt.Errorf("quote opened at byte %d is never closed", quotePos))
	}

	emit()

	if len(errs) > 0 {
		return c, fmt.Errorf("bootinfo: command line: %w", errors.Join(errs...))
	}

	return c, nil
}

// isCmdlineEscapable reports whether a backslash before ch escapes it.
func isCmdlineEscapable(ch byte) bool {
	return ch == '"' || ch == '\\' || ch == '\'' || ch == '=' || isCmdlineSpace(ch)
}

func isCmdlineSpace(ch byte) bool {
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'
}

// Get returns the value of the last option named key, and whether there is
// one. A bare flag has the value "".
func (c Cmdline) Get(key string) (string, bool) {
	for k := len(c.Options) - 1; k >= 0; k-- {
		if c.Options[k].Key == key {
			return c.Options[k].Value, true
		}
	}

	return "", false
}

// Has reports whether an option named key is present, bare or with a value.
func (c Cmdline) Has(key string) bool {
	_, ok := c.Get(key)
	return ok
}

// All returns the values of every option named key, in order.
func (c Cmdline) All(key string) []string {
	var v []string

	for _, o := range c.Options {
		if o.Key == key {
			v = append(v, o.Value)
		}
	}

	return v
}

// SplitCommands splits a value such as that of keel.run="cmd1; cmd2" into
// commands at each ';', trimming white space around each and dropping empty
// ones. A command cannot itself contain ';'.
func SplitCommands(v string) []string {
	var cmds []string

	for _, c := range strings.Split(v, ";") {
		if c = strings.TrimSpace(c); c != "" {
			cmds = append(cmds, c)
		}
	}

	return cmds
}

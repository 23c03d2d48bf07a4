package shell

import (
	"fmt"
	"strings"
)

// SyntaxError is a command line or script that cannot be split: an
// unterminated quote.
type SyntaxError struct {
	// Column is where the unterminated quote opens, from 1.
	Column int
	// Quote is the quote character, '"' or '\''.
	Quote byte
}

// Error says which quote is not closed and where it opens.
func (e *SyntaxError) Error() string {
	name := "double"
	if e.Quote == '\'' {
		name = "single"
	}

	return fmt.Sprintf("unterminated %s quote at column %d: close it with %c", name, e.Column, e.Quote)
}

// isSpace reports whether c separates arguments.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// quoting follows the quotes of a command line, byte by byte.
type quoting struct {
	quote byte // the open quote, or 0
	at    int  // where it opened
}

// step looks at line[i] and returns how many bytes it covers (2 for an
// escape inside double quotes, else 1), whether it is outside any quote and
// not a quote itself, and the byte it stands for, if it is text.
func (q *quoting) step(line string, i int) (n int, bare bool, text byte, isText bool) {
	c := line[i]
	switch q.quote {
	case '"':
		switch {
		case c == '"':
			q.quote = 0
			return 1, false, 0, false
		case c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			return 2, false, line[i+1], true
		}
		return 1, false, c, true
	case '\'':
		if c == '\'' {
			q.quote = 0
			return 1, false, 0, false
		}
		return 1, false, c, true
	}

	if c == '"' || c == '\'' {
		q.quote, q.at = c, i
		return 1, false, 0, false
	}

	return 1, true, c, true
}

// err returns the error for a quote left open at the end, or nil.
func (q *quoting) err() error {
	if q.quote == 0 {
		return nil
	}

	return &SyntaxError{Column: q.at + 1, Quote: q.quote}
}

// Split splits a command line into arguments at white space (space, tab,
// CR, LF, VT, FF). Double quotes group text with spaces into one argument,
// and inside them \" and \\ stand for " and \; single quotes group text
// taken literally. Quoted and unquoted text next to each other make one
// argument (a"b c"d is "ab cd"), and "" is an empty argument. Any other
// backslash is an ordinary character. An unterminated quote is a
// *SyntaxError.
func Split(line string) ([]string, error) {
	var (
		args  []string
		arg   strings.Builder
		inArg bool
		q     quoting
	)

	for i := 0; i < len(line); {
		n, bare, c, isText := q.step(line, i)
		i += n

		switch {
		case bare && isSpace(c):
			if inArg {
				args = append(args, arg.String())
				arg.Reset()
				inArg = false
			}
		case isText:
			arg.WriteByte(c)
			inArg = true
		default: // a quote: even "" makes an argument
			inArg = true
		}
	}

	if err := q.err(); err != nil {
		return nil, err
	}

	if inArg {
		args = append(args, arg.String())
	}

	return args, nil
}

// SplitScript splits a script into command lines at semicolons, CRs and
// LFs outside quotes (quotes as in Split), with the white space around each
// trimmed and empty ones left out. The lines keep their quotes, for Split.
// An unterminated quote is a *SyntaxError, and then no line is returned.
func SplitScript(script string) ([]string, error) {
	var (
		lines []string
		start int
		q     quoting
	)

	add := func(end int) {
		if s := strings.Trim(script[start:end], " \t\v\f"); s != "" {
			lines = append(lines, s)
		}
	}

	for i := 0; i < len(script); {
		n, bare, c, _ := q.step(script, i)
		if bare && (c == ';' || c == '\n' || c == '\r') {
			add(i)
			start = i + 1
		}

		i += n
	}

	if err := q.err(); err != nil {
		return nil, err
	}

	add(len(script))

	return lines, nil
}

// Quote returns arg quoted so that Split gives it back as one argument: as
// it is if it is not empty and holds no white space, quote, backslash or
// semicolon, otherwise in double quotes with " and \ escaped.
func Quote(arg string) string {
	if arg != "" && !strings.ContainsAny(arg, " \t\n\r\v\f\"'\\;") {
		return arg
	}

	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(arg); i++ {
		if arg[i] == '"' || arg[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(arg[i])
	}
	b.WriteByte('"')

	return b.String()
}

// Join quotes each argument with Quote and joins them with spaces: the
// command line that Split turns back into args.
func Join(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = Quote(a)
	}

	return strings.Join(quoted, " ")
}

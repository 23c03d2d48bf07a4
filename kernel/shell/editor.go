package shell

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Editor limits and defaults.
const (
	// DEFAULT_PROMPT is the prompt an Editor prints unless told otherwise.
	DEFAULT_PROMPT = "keel> "
	// DEFAULT_MAX_LINE is the longest line an Editor accepts, in bytes,
	// unless told otherwise.
	DEFAULT_MAX_LINE = 512
	// MAX_ESCAPE bounds the parameter bytes of an escape sequence: a
	// longer control sequence is still consumed up to its final byte, but
	// ignored.
	MAX_ESCAPE = 16
	// MAX_IDLE_READS is how many Reads in a row may return no byte and no
	// error before ReadLine gives up with io.ErrNoProgress.
	MAX_IDLE_READS = 100
	// maxCompletions bounds the candidates a completion shows.
	maxCompletions = 64
	// maxOutput is the output buffer capacity kept between flushes.
	maxOutput = 4 << 10
)

// Control characters (ASCII; Ctrl-X is X & 0x1f) and the VT100 sequences the
// editor writes (DEC VT100 User Guide, chapter 3, "ANSI control functions":
// CUB cursor backward, EL erase in line, CUP cursor position, ED erase in
// display).
const (
	CTRL_A = 0x01 // home
	CTRL_B = 0x02 // cursor left
	CTRL_C = 0x03 // cancel the line
	CTRL_D = 0x04 // delete the character under the cursor
	CTRL_E = 0x05 // end
	CTRL_F = 0x06 // cursor right
	BEL    = 0x07 // the bell, written when input is refused
	BS     = 0x08 // backspace; as output, cursor left
	TAB    = 0x09 // complete the command name
	LF     = 0x0a // enter
	CTRL_K = 0x0b // delete to the end of the line
	CTRL_L = 0x0c // clear the screen
	CR     = 0x0d // enter
	CTRL_N = 0x0e // next history line
	CTRL_P = 0x10 // previous history line
	CTRL_U = 0x15 // clear the line
	CTRL_W = 0x17 // delete the word before the cursor
	ESC    = 0x1b // starts an escape sequence
	DEL    = 0x7f // backspace, as most terminals send it

	// EL0 (ESC [ K) erases from the cursor to the end of the line.
	EL0 = "\x1b[K"
	// CLEAR (CUP home then ED2) clears the screen.
	CLEAR = "\x1b[H\x1b[2J"
)

// ErrInterrupted is returned by ReadLine when the line was cancelled with
// Ctrl-C.
const ErrInterrupted Error = "line cancelled with Ctrl-C"

// escState is where the editor is in an escape sequence.
type escState uint8

const (
	escNone  escState = iota // not in a sequence
	escStart                 // after ESC
	escCSI                   // after ESC [ (control sequence)
	escSS3                   // after ESC O (single shift 3)
)

// action is what a key asks ReadLine to do.
type action uint8

const (
	actNone      action = iota // keep editing
	actAccept                  // return the line
	actInterrupt               // cancel the line
)

// Editor is a line editor for a serial terminal. It reads keys from a byte
// stream, keeps the line and the cursor, and echoes and redraws on the
// terminal with backspaces and a few VT100 sequences, which also work on a
// dumb terminal except for erasing (ESC [ K) and clearing the screen.
//
// Input is untrusted: every byte sequence is accepted without panicking,
// the line never grows past MaxLine and escape sequences are bounded.
//
// Set the exported fields before the first ReadLine. ReadLine and Reset must
// not be called concurrently with each other; Writer is safe to use from any
// goroutine.
type Editor struct {
	// Prompt is printed before each line (DEFAULT_PROMPT by NewEditor).
	Prompt string
	// MaxLine is the longest line in bytes (DEFAULT_MAX_LINE if 0 or
	// less); input past it is refused with a bell.
	MaxLine int
	// History holds the accepted lines that the arrow keys recall; a
	// History of DEFAULT_HISTORY lines by NewEditor. It must not be nil.
	History *History
	// Complete, if not nil, returns the completions of the first word of
	// the line for Tab: the words that start with word. Candidates that
	// are not printable ASCII or hold a space are left out. It is called
	// with the editor locked, so it must not write to Writer.
	Complete func(word string) []string

	in  io.Reader
	out io.Writer

	mu sync.Mutex // guards everything below and the writes to out

	active   bool   // the prompt is on screen and ReadLine is editing
	atStart  bool   // the terminal's cursor is at the start of a line
	buf      []byte // the line
	cur      int    // the cursor, 0 <= cur <= len(buf)
	shown    []byte // the line as the terminal shows it after the prompt
	shownCur int    // the terminal's cursor, relative to the prompt's end

	scratch []string // history lines being edited, and the new line last
	hidx    int      // the index in scratch of the line shown

	esc     escState
	escBuf  [MAX_ESCAPE]byte
	escLen  int
	escLong bool // the sequence had more than MAX_ESCAPE parameter bytes

	pair byte // after CR, an LF is ignored; after LF, a CR

	rbuf       [64]byte
	rpos, rlen int
	rerr       error // a read error to return once rbuf is used up

	ob []byte // output waiting for flush
}

// NewEditor returns an Editor that reads keys from in and writes to out
// (discarded if nil), with the default prompt, line length and a new
// history. A nil in reads as an empty input until Reset.
func NewEditor(in io.Reader, out io.Writer) *Editor {
	if out == nil {
		out = io.Discard
	}

	return &Editor{
		Prompt:  DEFAULT_PROMPT,
		MaxLine: DEFAULT_MAX_LINE,
		History: NewHistory(DEFAULT_HISTORY),
		in:      in,
		out:     out,
		atStart: true,
	}
}

// Reset makes the editor read from in, dropping input read but not yet
// used, a pending read error and a partial escape sequence. It keeps the
// history.
func (e *Editor) Reset(in io.Reader) {
	e.mu.Lock()
	defer e.mu.Unlock()

	e.in = in
	e.rpos, e.rlen, e.rerr = 0, 0, nil
	e.esc, e.pair = escNone, 0
}

// ReadLine prints the prompt, lets the user edit a line and returns it when
// Enter (CR or LF; CR LF and LF CR count once) is pressed, and adds it to
// the history. The line holds only printable ASCII.
//
// Ctrl-C returns "" and ErrInterrupted. A read error (io.EOF when the input
// ends) returns the unfinished line and the error; bytes that arrived with
// the error are edited first, and an error that arrives after a complete
// line is returned by the next call. If Read returns no byte and no error
// MAX_IDLE_READS times in a row, ReadLine returns io.ErrNoProgress.
func (e *Editor) ReadLine() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.in == nil {
		return "", io.EOF
	}

	e.start()

	idle := 0
	for {
		for e.rpos < e.rlen {
			c := e.rbuf[e.rpos]
			e.rpos++

			switch e.key(c) {
			case actAccept:
				line := string(e.buf)
				e.finish("\r\n")
				e.History.Add(line)
				return line, nil
			case actInterrupt:
				e.finish("^C\r\n")
				return "", ErrInterrupted
			}
		}

		e.flush()

		if err := e.rerr; err != nil {
			e.rerr = nil
			e.esc = escNone
			line := string(e.buf)
			e.finish("\r\n")
			return line, err
		}

		n, err := e.read()
		n = max(0, min(n, len(e.rbuf)))
		e.rpos, e.rlen = 0, n

		switch {
		case err != nil:
			e.rerr = err
		case n > 0:
			idle = 0
		default:
			idle++
			if idle >= MAX_IDLE_READS {
				e.rerr = io.ErrNoProgress
			}
		}
	}
}

// read reads into e.rbuf without holding e.mu, so that Writer can print
// while ReadLine waits for a key.
func (e *Editor) read() (int, error) {
	e.mu.Unlock()
	defer e.mu.Lock()

	return e.in.Read(e.rbuf[:])
}

// start begins a line: it prints the prompt, on a new line if the last
// output did not end one.
func (e *Editor) start() {
	if e.MaxLine <= 0 {
		e.MaxLine = DEFAULT_MAX_LINE
	}

	if e.History == nil {
		e.History = NewHistory(DEFAULT_HISTORY)
	}

	e.buf, e.cur = e.buf[:0], 0
	e.scratch = append(e.History.Lines(), "")
	e.hidx = len(e.scratch) - 1

	if !e.atStart {
		e.ob = append(e.ob, "\r\n"...)
	}

	e.ob = append(e.ob, e.Prompt...)
	e.shown, e.shownCur = e.shown[:0], 0
	e.active = true
}

// finish ends the line: it moves the cursor to the end, so that nothing
// that follows overwrites a line that wrapped, writes s and flushes.
func (e *Editor) finish(s string) {
	e.cur = len(e.buf)
	e.refresh()
	e.ob = append(e.ob, s...)
	e.active = false
	e.atStart = true
	e.scratch = nil
	e.flush()
}

// flush writes the pending output. Write errors are ignored: the terminal
// is the only place they could be reported.
func (e *Editor) flush() {
	if len(e.ob) > 0 {
		e.out.Write(e.ob)
	}

	e.ob = e.ob[:0]
	if cap(e.ob) > maxOutput {
		e.ob = nil
	}
}

// key handles one input byte and redraws the line.
func (e *Editor) key(c byte) action {
	if p := e.pair; p != 0 {
		e.pair = 0
		if c == p {
			return actNone
		}
	}

	act := e.decode(c)
	if act == actNone {
		e.refresh()
	}

	return act
}

// decode runs the escape-sequence state machine on c. Within a sequence, a
// control character or a non-ASCII byte ends the sequence and is then
// handled as a key, so that Enter and Ctrl-C always work.
func (e *Editor) decode(c byte) action {
	switch e.esc {
	case escStart:
		switch {
		case c == '[':
			e.esc, e.escLen, e.escLong = escCSI, 0, false
			return actNone
		case c == 'O':
			e.esc = escSS3
			return actNone
		case c >= 0x20 && c < DEL:
			e.esc = escNone
			e.meta(c)
			return actNone
		}

	case escSS3:
		if c >= 0x20 && c < DEL {
			e.esc = escNone
			return e.ss3(c)
		}

	case escCSI:
		switch {
		case c >= 0x40 && c <= 0x7e: // final byte
			e.esc = escNone
			if !e.escLong {
				e.csi(e.escBuf[:e.escLen], c)
			}
			return actNone
		case c >= 0x20 && c <= 0x3f: // parameter or intermediate byte
			if e.escLen < len(e.escBuf) {
				e.escBuf[e.escLen] = c
				e.escLen++
			} else {
				e.escLong = true
			}
			return actNone
		}
	}

	e.esc = escNone
	return e.plain(c)
}

// plain handles a byte outside an escape sequence.
func (e *Editor) plain(c byte) action {
	switch c {
	case CTRL_A:
		e.cur = 0
	case CTRL_B:
		e.cur = max(e.cur-1, 0)
	case CTRL_C:
		return actInterrupt
	case CTRL_D:
		e.deleteRange(e.cur, e.cur+1)
	case CTRL_E:
		e.cur = len(e.buf)
	case CTRL_F:
		e.cur = min(e.cur+1, len(e.buf))
	case BS, DEL:
		e.deleteRange(e.cur-1, e.cur)
	case TAB:
		e.complete()
	case CR:
		e.pair = LF
		return actAccept
	case LF:
		e.pair = CR
		return actAccept
	case CTRL_K:
		e.deleteRange(e.cur, len(e.buf))
	case CTRL_L:
		e.ob = append(e.ob, CLEAR...)
		e.redrawAll()
	case CTRL_N:
		e.recall(+1)
	case CTRL_P:
		e.recall(-1)
	case CTRL_U:
		e.buf, e.cur = e.buf[:0], 0
	case CTRL_W:
		e.deleteRange(e.wordLeft(), e.cur)
	case ESC:
		e.esc = escStart
	default:
		if c >= 0x20 && c < DEL {
			e.insert(string(c))
		}
		// Other control characters and non-ASCII bytes are ignored.
	}

	return actNone
}

// meta handles ESC followed by a printable character (Alt-key).
func (e *Editor) meta(c byte) {
	switch c {
	case 'b':
		e.cur = e.wordLeft()
	case 'f':
		e.cur = e.wordRight()
	}
}

// ss3 handles ESC O c, which terminals in application cursor-key mode send
// for the arrows, Home and End, and keypads for Enter.
func (e *Editor) ss3(c byte) action {
	switch c {
	case 'M':
		e.pair = 0
		return actAccept
	default:
		e.cursorKey(c, 1)
	}

	return actNone
}

// csi handles a control sequence ESC [ params final (ECMA-48, 5.4): the
// arrows (A B C D, with a modifier parameter the left and right arrows move
// by word), Home and End (H F, and 1~ 7~ / 4~ 8~), and Delete (3~). Private
// sequences (parameters starting with < = > ?) and all others are ignored.
func (e *Editor) csi(params []byte, final byte) {
	if len(params) > 0 && params[0] >= '<' && params[0] <= '?' {
		return
	}

	// At most two numeric parameters, each capped at 9999.
	var ps [2]int
	np := 0
	for _, c := range params {
		switch {
		case c >= '0' && c <= '9':
			if ps[np] < 1000 {
				ps[np] = ps[np]*10 + int(c-'0')
			}
		case c == ';' && np == 0:
			np++
		default:
			return // a third parameter or an intermediate byte
		}
	}

	p1, p2 := ps[0], ps[1]

	if final == '~' {
		switch p1 {
		case 1, 7:
			e.cur = 0
		case 4, 8:
			e.cur = len(e.buf)
		case 3:
			e.deleteRange(e.cur, e.cur+1)
		}
		return
	}

	e.cursorKey(final, p2)
}

// cursorKey handles the final byte of an arrow, Home or End key; a
// modifier above 1 (Shift, Alt, Ctrl) makes left and right move by word.
func (e *Editor) cursorKey(c byte, modifier int) {
	switch c {
	case 'A':
		e.recall(-1)
	case 'B':
		e.recall(+1)
	case 'C':
		if modifier > 1 {
			e.cur = e.wordRight()
		} else {
			e.cur = min(e.cur+1, len(e.buf))
		}
	case 'D':
		if modifier > 1 {
			e.cur = e.wordLeft()
		} else {
			e.cur = max(e.cur-1, 0)
		}
	case 'H':
		e.cur = 0
	case 'F':
		e.cur = len(e.buf)
	}
}

// insert inserts s at the cursor, or rings the bell if the line would be
// longer than MaxLine.
func (e *Editor) insert(s string) {
	if len(e.buf)+len(s) > e.MaxLine {
		e.bell()
		return
	}

	e.buf = slices.Insert(e.buf, e.cur, []byte(s)...)
	e.cur += len(s)
}

// deleteRange deletes buf[i:j], clipped to the line, and moves the cursor
// as the text under it moves.
func (e *Editor) deleteRange(i, j int) {
	i, j = max(i, 0), min(j, len(e.buf))
	if i >= j {
		return
	}

	e.buf = slices.Delete(e.buf, i, j)
	switch {
	case e.cur >= j:
		e.cur -= j - i
	case e.cur > i:
		e.cur = i
	}
}

// wordLeft returns the start of the word before the cursor.
func (e *Editor) wordLeft() int {
	i := e.cur
	for i > 0 && e.buf[i-1] == ' ' {
		i--
	}
	for i > 0 && e.buf[i-1] != ' ' {
		i--
	}

	return i
}

// wordRight returns the end of the word after the cursor.
func (e *Editor) wordRight() int {
	i := e.cur
	for i < len(e.buf) && e.buf[i] == ' ' {
		i++
	}
	for i < len(e.buf) && e.buf[i] != ' ' {
		i++
	}

	return i
}

// recall shows the previous (dir -1) or next (+1) history line. Edits to a
// recalled line are kept until the line is accepted or cancelled, as is the
// new line being typed.
func (e *Editor) recall(dir int) {
	i := e.hidx + dir
	if i < 0 || i >= len(e.scratch) {
		return
	}

	e.scratch[e.hidx] = string(e.buf)
	e.hidx = i

	line := e.scratch[i]
	if len(line) > e.MaxLine {
		line = line[:e.MaxLine]
	}

	e.buf = append(e.buf[:0], line...)
	e.cur = len(e.buf)
}

// complete completes the first word of the line at the cursor: with the
// rest of the only candidate and a space, or with the candidates' common
// prefix, or, if that adds nothing, by listing the candidates.
func (e *Editor) complete() {
	word := string(e.buf[:e.cur])
	if e.Complete == nil || strings.ContainsRune(word, ' ') {
		e.bell()
		return
	}

	var cands []string
	for _, c := range e.Complete(word) {
		if strings.HasPrefix(c, word) && printable(c) && !strings.ContainsRune(c, ' ') {
			cands = append(cands, c)
		}
	}

	slices.Sort(cands)
	cands = slices.Compact(cands)
	if len(cands) == 0 {
		e.bell()
		return
	}

	prefix := cands[0]
	for _, c := range cands[1:] {
		n := 0
		for n < len(prefix) && n < len(c) && prefix[n] == c[n] {
			n++
		}
		prefix = prefix[:n]
	}

	add := prefix[len(word):]
	if len(cands) == 1 && (e.cur == len(e.buf) || e.buf[e.cur] != ' ') {
		add += " "
	}

	if add != "" {
		e.insert(add)
		return
	}

	if len(cands) == 1 {
		return
	}

	// Nothing to add: list the candidates below and draw the line again.
	more := ""
	if len(cands) > maxCompletions {
		cands, more = cands[:maxCompletions], "  ..."
	}

	e.cur = len(e.buf)
	e.refresh()
	e.ob = append(e.ob, "\r\n"...)
	e.ob = append(e.ob, strings.Join(cands, "  ")...)
	e.ob = append(e.ob, more...)
	e.ob = append(e.ob, "\r\n"...)
	e.redrawAll()
}

// bell rings the terminal's bell.
func (e *Editor) bell() {
	e.ob = append(e.ob, BEL)
}

// redrawAll prints the prompt at the start of the current terminal line and
// marks the line as not shown, so that refresh draws all of it.
func (e *Editor) redrawAll() {
	e.ob = append(e.ob, '\r')
	e.ob = append(e.ob, e.Prompt...)
	e.ob = append(e.ob, EL0...)
	e.shown, e.shownCur = e.shown[:0], 0
}

// refresh brings the terminal from the shown line and cursor to the
// current ones with as little output as it can: it keeps the common prefix,
// rewrites the rest, erases what is left of the old line and moves the
// cursor back with backspaces or CUB.
func (e *Editor) refresh() {
	if !bytes.Equal(e.shown, e.buf) {
		p := 0
		for p < len(e.shown) && p < len(e.buf) && e.shown[p] == e.buf[p] {
			p++
		}

		e.move(e.shownCur, min(p, e.shownCur))
		e.shownCur = min(p, e.shownCur)
		e.ob = append(e.ob, e.buf[e.shownCur:]...)
		if len(e.shown) > len(e.buf) {
			e.ob = append(e.ob, EL0...)
		}

		e.shownCur = len(e.buf)
		e.shown = append(e.shown[:0], e.buf...)
	}

	e.move(e.shownCur, e.cur)
	e.shownCur = e.cur
}

// move moves the terminal's cursor from from to to, both within the shown
// line: left with backspaces (CUB for more than four), right by writing the
// characters it passes over.
func (e *Editor) move(from, to int) {
	switch {
	case to < from && from-to <= 4:
		for range from - to {
			e.ob = append(e.ob, BS)
		}
	case to < from:
		e.ob = append(e.ob, "\x1b["...)
		e.ob = strconv.AppendInt(e.ob, int64(from-to), 10)
		e.ob = append(e.ob, 'D')
	case to > from:
		e.ob = append(e.ob, e.shown[from:to]...)
	}
}

// Writer returns an io.Writer for output that is not the answer to a
// command, such as kernel log lines, safe to use from any goroutine. It
// converts "\n" to "\r\n". While a line is being edited, each Write erases
// the prompt line, prints its text, ends it with "\r\n" if it did not end a
// line, and draws the prompt and the line again with the cursor where it
// was. Otherwise the text goes straight to the terminal.
func (e *Editor) Writer() io.Writer {
	return &termWriter{e: e}
}

// termWriter is the io.Writer that Editor.Writer returns.
type termWriter struct {
	e      *Editor
	lastCR bool // the last byte written was '\r'
	last   byte // the last byte written, 0 before the first
}

// Write writes p as Editor.Writer describes. It always returns len(p), nil.
func (w *termWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}

	e := w.e
	e.mu.Lock()
	defer e.mu.Unlock()

	if e.active {
		e.ob = append(e.ob, '\r')
		e.ob = append(e.ob, EL0...)
	}

	e.ob, w.lastCR = appendCRLF(e.ob, p, w.lastCR)
	w.last = p[len(p)-1]

	if e.active {
		if w.last != '\n' {
			e.ob = append(e.ob, "\r\n"...)
			w.lastCR = false
		}

		e.ob = append(e.ob, e.Prompt...)
		e.shown, e.shownCur = e.shown[:0], 0
		e.refresh()
	} else {
		e.atStart = w.last == '\n'
	}

	e.flush()
	return len(p), nil
}

// appendCRLF appends p to dst with each "\n" not already after a "\r"
// turned into "\r\n"; lastCR says whether the byte before p was '\r'. It
// returns the result and whether p ended in '\r'.
func appendCRLF(dst, p []byte, lastCR bool) ([]byte, bool) {
	for _, c := range p {
		if c == '\n' && !lastCR {
			dst = append(dst, '\r')
		}

		dst = append(dst, c)
		lastCR = c == '\r'
	}

	return dst, lastCR
}

// printable reports whether s is made of printable ASCII.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= DEL {
			return false
		}
	}

	return true
}

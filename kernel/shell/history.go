package shell

import (
	"strings"
	"sync"
)

// DEFAULT_HISTORY is the number of lines a History keeps unless told
// otherwise.
const DEFAULT_HISTORY = 64

// History is the list of the last command lines, oldest first, without
// duplicates: adding a line that is already there moves it to the end. Its
// methods are safe for concurrent use.
type History struct {
	mu    sync.Mutex
	max   int
	lines []string
}

// NewHistory returns an empty history that keeps the last max lines
// (DEFAULT_HISTORY if max is 0 or less).
func NewHistory(max int) *History {
	if max <= 0 {
		max = DEFAULT_HISTORY
	}

	return &History{max: max}
}

// Add appends line, unless it is empty or only white space. An equal line
// already in the history is removed first, and the oldest line is dropped
// when the history is full.
func (h *History) Add(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}

	h.mu.Lock()
	defer h.mu.Unlock()

	for i, l := range h.lines {
		if l == line {
			h.lines = append(h.lines[:i], h.lines[i+1:]...)
			break
		}
	}

	if len(h.lines) >= h.max {
		// Shift rather than reslice, so that the backing array stays
		// at max entries.
		n := copy(h.lines, h.lines[len(h.lines)-h.max+1:])
		clear(h.lines[n:])
		h.lines = h.lines[:n]
	}

	h.lines = append(h.lines, line)
}

// Lines returns a copy of the history, oldest first.
func (h *History) Lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()

	return append([]string(nil), h.lines...)
}

// Len returns the number of lines in the history.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()

	return len(h.lines)
}

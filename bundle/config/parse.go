package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keel-hv/keel/bundle/cpio"
)

// FileCheck reports whether a file the configuration names can be used: nil
// if it can, otherwise an error saying why, such as "not in the bundle".
// Parse puts its text in the error for the key that named the file.
type FileCheck func(name string) error

// Parse parses the configuration src. file names it in errors ("keel.conf").
// If check is not nil, Parse calls it for every file name a VM gives
// (kernel, initrd, modules), so that missing files are reported with the
// line and key that name them.
//
// On success Parse returns the Config with every default applied. Otherwise
// it returns a nil Config and an ErrorList with every problem it found, in
// line order, up to MaxErrors.
func Parse(file string, src []byte, check FileCheck) (*Config, error) {
	p := &parser{
		file:    file,
		check:   check,
		cfg:     Config{ConsoleLog: LogInfo},
		vmLines: map[string]int{},
	}
	p.parse(src)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		if p.full {
			p.errs = append(p.errs, &Error{File: file, Msg: fmt.Sprintf("too many errors (%d shown): fix these and check again", MaxErrors)})
		}
		return nil, p.errs
	}
	return &p.cfg, nil
}

type parser struct {
	file  string
	check FileCheck
	cfg   Config

	errs ErrorList
	full bool // MaxErrors reached: stop

	sec      *section       // the section being read, nil before the first
	keelLine int            // line of [keel], 0 if none yet
	vmLines  map[string]int // VM name -> line of its header
	orphan   bool           // a key outside any section was reported
}

type sectionKind uint8

const (
	secKeel sectionKind = iota
	secVM
	secSkip // a bad header: its keys are ignored
)

// section is the state of one section while its keys are read.
type section struct {
	kind  sectionKind
	label string         // for errors: `[keel]` or `vm "demo"`
	line  int            // line of the header
	keys  map[string]int // key -> line where it was set
	vm    VM
	keep  bool // add vm to the Config (name valid and new)
	// broken: a line of the section could not be read as a key, so a
	// missing key may be on it and is not reported.
	broken bool
}

// at is where a value is: for errors.
type at struct {
	line         int
	section, key string
}

func (p *parser) errorf(line int, section, key, format string, args ...any) {
	if p.full {
		return
	}
	if len(p.errs) == MaxErrors {
		p.full = true
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// err reports a problem with the value at a.
func (p *parser) err(a at, format string, args ...any) {
	p.errorf(a.line, a.section, a.key, format, args...)
}

// broken marks the current section as having an unreadable line.
func (p *parser) broken() {
	if p.sec != nil {
		p.sec.broken = true
	}
}

func (p *parser) label() string {
	if p.sec == nil {
		return ""
	}
	return p.sec.label
}

func (p *parser) parse(src []byte) {
	if len(src) > MaxSize {
		p.errorf(0, "", "", "%d bytes: a configuration is at most %d bytes (guest images go in the bundle beside it)", len(src), MaxSize)
		return
	}
	text := strings.TrimPrefix(string(src), "\ufeff")
	for i, line := range strings.Split(text, "\n") {
		if p.full {
			return
		}
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if msg := checkText(line); msg != "" {
			p.errorf(n, p.label(), "", "%s", msg)
			p.broken()
			continue
		}
		t := strings.Trim(line, " \t")
		switch {
		case t == "" || t[0] == '#':
		case t[0] == '[':
			p.header(n, t)
		default:
			p.assign(n, t)
		}
	}
	p.endSection()
}

// checkText rejects what a text editor would not show plainly.
func checkText(line string) string {
	if !utf8.ValidString(line) {
		return "not UTF-8 text"
	}
	for _, r := range line {
		if r != '\t' && unicode.IsControl(r) {
			return fmt.Sprintf("control character %U (only tabs and printable text)", r)
		}
	}
	return ""
}

// header starts the section whose header line is t.
func (p *parser) header(n int, t string) {
	p.endSection()
	p.sec = &section{kind: secSkip, line: n}
	end := strings.IndexByte(t, ']')
	if end < 0 {
		p.errorf(n, "", "", "%q: missing ']' (sections are [keel] and [vm NAME])", t)
		return
	}
	if rest := strings.TrimLeft(t[end+1:], " \t"); rest != "" && rest[0] != '#' {
		p.errorf(n, "", "", "%q after the section header (comments start with #)", rest)
		return
	}
	f := strings.FieldsFunc(t[1:end], func(r rune) bool { return r == ' ' || r == '\t' })
	switch {
	case len(f) == 1 && f[0] == "keel":
		if p.keelLine != 0 {
			p.errorf(n, "[keel]", "", "a second [keel] section (the first is on line %d: merge them)", p.keelLine)
			return
		}
		p.keelLine = n
		p.sec = &section{kind: secKeel, label: "[keel]", line: n, keys: map[string]int{}}
	case len(f) >= 1 && f[0] == "vm":
		if len(f) == 1 {
			p.errorf(n, "", "", "[vm] without a name (write [vm NAME])")
			return
		}
		if len(f) > 2 {
			p.errorf(n, "", "", "%q: a VM name is one word (write [vm NAME])", t[:end+1])
			return
		}
		name := f[1]
		s := &section{kind: secVM, label: fmt.Sprintf("vm %q", name), line: n, keys: map[string]int{}, keep: true}
		s.vm.Name = name
		if first, dup := p.vmLines[name]; dup {
			p.errorf(n, s.label, "", "defined twice (first on line %d)", first)
			s.keep = false
		} else if !validName(name) {
			p.errorf(n, s.label, "", "not a valid VM name (use 1 to %d of a-z, 0-9 and '-', starting with a letter or digit)", MaxNameLen)
			s.keep = false
		} else {
			p.vmLines[name] = n
		}
		p.sec = s
	default:
		p.errorf(n, "", "", "unknown section %q (sections are [keel] and [vm NAME])", t[:end+1])
	}
}

// validName reports whether name matches [a-z0-9][a-z0-9-]{0,31}.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLen || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validKey reports whether key looks like a key: [a-z][a-z0-9-]*.
func validKey(key string) bool {
	if key == "" || key[0] < 'a' || key[0] > 'z' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// assign handles the KEY = VALUE line t.
func (p *parser) assign(n int, t string) {
	s := p.sec
	if s == nil {
		if !p.orphan {
			p.orphan = true
			p.errorf(n, "", "", "%q is outside a section (start one with [vm NAME] or [keel])", t)
		}
		return
	}
	if s.kind == secSkip {
		return
	}
	eq := strings.IndexByte(t, '=')
	if eq < 0 {
		p.errorf(n, s.label, "", "%q is not KEY = VALUE", t)
		s.broken = true
		return
	}
	key := strings.TrimRight(t[:eq], " \t")
	if !validKey(key) {
		p.errorf(n, s.label, "", "%q is not a key (keys are lower-case words such as memory)", key)
		s.broken = true
		return
	}
	table := vmKeys
	if s.kind == secKeel {
		table = keelKeys
	}
	var fn keyFunc
	names := make([]string, len(table))
	for i, k := range table {
		names[i] = k.name
		if k.name == key {
			fn = k.fn
		}
	}
	if fn == nil {
		if m := suggest(key, names); m != "" {
			p.errorf(n, s.label, key, "unknown key (did you mean %s?)", m)
		} else {
			p.errorf(n, s.label, key, "unknown key (known keys: %s)", strings.Join(names, ", "))
		}
		return
	}
	if first, dup := s.keys[key]; dup {
		p.errorf(n, s.label, key, "set twice (first on line %d)", first)
		return
	}
	s.keys[key] = n
	a := at{line: n, section: s.label, key: key}
	toks, msg := lexValue(t[eq+1:])
	if msg != "" {
		p.err(a, "%s", msg)
		return
	}
	fn(p, s, a, toks)
}

// endSection applies the defaults and the checks that involve several keys
// to the VM being read, and adds it to the Config.
func (p *parser) endSection() {
	s := p.sec
	p.sec = nil
	if s == nil || s.kind != secVM {
		return
	}
	vm := &s.vm
	if _, ok := s.keys["kernel"]; !ok && !s.broken {
		p.errorf(s.line, s.label, "kernel", "missing (every VM needs kernel = FILE)")
	}
	if _, ok := s.keys["memory"]; !ok {
		vm.Memory = DefaultMemory
	}
	if _, ok := s.keys["vcpus"]; !ok {
		vm.VCPUs = DefaultVCPUs
	}
	_, hasDevices := s.keys["devices"]
	if !hasDevices {
		vm.Devices = DefaultDevices
	}
	if line, ok := s.keys["debug-exit"]; ok {
		switch {
		case !hasDevices:
			p.errorf(line, s.label, "debug-exit", "set, but the default devices do not include debug-exit (list it: devices = %s, debug-exit)", DefaultDevices)
		case !vm.Devices.Has(DevDebugExit):
			p.errorf(line, s.label, "debug-exit", "set, but debug-exit is not in devices (add it to the list)")
		}
	} else if vm.Devices.Has(DevDebugExit) {
		vm.DebugExitPort = DefaultDebugExitPort
	}
	initrdLine, hasInitrd := s.keys["initrd"]
	modulesLine, hasModules := s.keys["modules"]
	switch {
	case hasModules && vm.Kind == KindLinux:
		p.errorf(modulesLine, s.label, "modules", "a Linux kernel takes an initrd, not modules (kind = linux)")
	case hasInitrd && vm.Kind == KindMultiboot:
		p.errorf(initrdLine, s.label, "initrd", "a Multiboot kernel takes modules, not an initrd (kind = multiboot)")
	case hasInitrd && hasModules:
		p.errorf(max(initrdLine, modulesLine), s.label, "", "initrd and modules: a VM has an initrd (Linux) or modules (Multiboot), not both")
	}
	if s.keep {
		p.cfg.VMs = append(p.cfg.VMs, *vm)
	}
}

// suggest returns the name in names closest to key (a prefix of it, or at
// most 2 edits away), or "".
func suggest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := distance(key, n)
		if len(key) >= 3 && strings.HasPrefix(n, key) {
			d = 1
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// token is one lexical element of a value.
type token struct {
	text   string
	quoted bool // a "string" (text is unescaped)
	comma  bool
}

// lexValue splits a value into words, "strings" and commas, up to a
// comment. It returns an error message for a malformed string.
func lexValue(s string) ([]token, string) {
	var toks []token
	isSep := func(c byte) bool { return c == ' ' || c == '\t' || c == ',' || c == '#' }
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '#':
			return toks, ""
		case c == ',':
			toks = append(toks, token{text: ",", comma: true})
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, `unterminated string (a closing " is missing)`
				}
				if s[j] == '"' {
					break
				}
				if s[j] == '\\' {
					if j+1 >= len(s) {
						return nil, `unterminated string (a closing " is missing)`
					}
					if e := s[j+1]; e == '"' || e == '\\' {
						b.WriteByte(e)
						j += 2
						continue
					}
					r, _ := utf8.DecodeRuneInString(s[j+1:])
					return nil, fmt.Sprintf(`unknown escape \%c in a string (only \" and \\ are escapes)`, r)
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{text: b.String(), quoted: true})
			i = j + 1
			if i < len(s) && !isSep(s[i]) {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Sprintf("%q right after a string (separate values with spaces or commas)", r)
			}
		default:
			j := i
			for j < len(s) && !isSep(s[j]) && s[j] != '"' {
				j++
			}
			if j < len(s) && s[j] == '"' {
				return nil, fmt.Sprintf("a quote inside %q (quote the whole value)", s[i:j+1])
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, ""
}

// one returns the single value of v, or reports why v is not one value.
func (p *parser) one(a at, v []token) (string, bool) {
	switch {
	case len(v) == 0:
		p.err(a, "empty value")
	case len(v) == 1 && !v[0].comma:
		return v[0].text, true
	case hasComma(v):
		p.err(a, "expected one value, not a list")
	default:
		p.err(a, "expected one value, found %d (quote a value that has spaces: %s = \"...\")", len(v), a.key)
	}
	return "", false
}

func hasComma(v []token) bool {
	for _, t := range v {
		if t.comma {
			return true
		}
	}
	return false
}

// list splits v at its commas into items of one or more tokens.
func (p *parser) list(a at, v []token) ([][]token, bool) {
	if len(v) == 0 {
		p.err(a, "empty value")
		return nil, false
	}
	var items [][]token
	start := 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) && !v[i].comma {
			continue
		}
		if i == start {
			p.err(a, "empty list item (a comma too many?)")
			return nil, false
		}
		items = append(items, v[start:i])
		start = i + 1
	}
	return items, true
}

// fileName checks a file name in the bundle and, with a FileCheck, that the
// file is there.
func (p *parser) fileName(a at, name string) bool {
	if name == "" {
		p.err(a, "empty file name")
		return false
	}
	clean, err := cpio.CleanName(name)
	switch {
	case errors.Is(err, cpio.ErrRoot):
		p.err(a, "%q is not a file name (it names the bundle's root)", name)
		return false
	case err != nil:
		p.err(a, "%q is not a file name in the bundle: %v", name, err)
		return false
	case clean != name:
		p.err(a, "%q is not a clean file name (write %q)", name, clean)
		return false
	}
	if p.check != nil {
		if err := p.check(name); err != nil {
			p.err(a, "%q: %v", name, err)
			return false
		}
	}
	return true
}

package bootinfo

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	kv := func(k, v string) Option { return Option{Key: k, Value: v, HasValue: true} }
	flag := func(k string) Option { return Option{Key: k} }

	tests := []struct {
		name    string
		in      string
		want    []Option
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only spaces", in: " \t\r\n ", want: nil},
		{name: "flags and values", in: "quiet console=ttyS0,115200 debug", want: []Option{flag("quiet"), kv("console", "ttyS0,115200"), flag("debug")}},
		{name: "extra white space", in: "  a=1\t\tb   c=\n", want: []Option{kv("a", "1"), flag("b"), kv("c", "")}},
		{name: "quoted value", in: `keel.run="vm start web; vm list" x=1`, want: []Option{kv("keel.run", "vm start web; vm list"), kv("x", "1")}},
		{name: "whole option quoted (GRUB)", in: `/boot/keel.elf "keel.run=vm start web; vm list"`, want: []Option{flag("/boot/keel.elf"), kv("keel.run", "vm start web; vm list")}},
		{name: "empty quoted value", in: `a="" b`, want: []Option{kv("a", ""), flag("b")}},
		{name: "quotes in the middle", in: `a=x" y "z`, want: []Option{kv("a", "x y z")}},
		{name: "later equals belong to the value", in: `a=b=c "d=e=f"`, want: []Option{kv("a", "b=c"), kv("d", "e=f")}},
		{name: "escaped quote inside quotes", in: `msg="say \"hi\"; bye"`, want: []Option{kv("msg", `say "hi"; bye`)}},
		{name: "escaped backslash and single quote (GRUB)", in: `p=C:\\dir x=it\'s`, want: []Option{kv("p", `C:\dir`), kv("x", "it's")}},
		{name: "escaped space", in: `a=one\ two b`, want: []Option{kv("a", "one two"), flag("b")}},
		{name: "escaped equals does not split", in: `a\=b=c`, want: []Option{kv("a=b", "c")}},
		{name: "other backslashes are ordinary", in: `a=\x41\n b=C:\dir`, want: []Option{kv("a", `\x41\n`), kv("b", `C:\dir`)}},
		{name: "trailing backslash kept", in: `a=b\`, want: []Option{kv("a", `b\`)}},
		{name: "single quotes are ordinary", in: `a='b c'`, want: []Option{kv("a", "'b"), flag("c'")}},
		{name: "semicolon outside quotes is ordinary", in: `a=b;c d`, want: []Option{kv("a", "b;c"), flag("d")}},
		{name: "unicode passes through", in: "name=ünïcødé", want: []Option{kv("name", "ünïcødé")}},
		{name: "empty key", in: "a =x b", want: []Option{flag("a"), flag("b")}, wantErr: `option at byte 2 ("=x") has an empty key`},
		{name: "unclosed quote", in: `a=1 b="c d`, want: []Option{kv("a", "1"), kv("b", "c d")}, wantErr: "quote opened at byte 6 is never closed"},
		{name: "two problems", in: `=x "y`, want: []Option{flag("y")}, wantErr: "empty key\nquote opened at byte 3"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmdline(tt.in)
			wantErr(t, err, tt.wantErr)

			if !reflect.DeepEqual(got.Options, tt.want) {
				t.Errorf("ParseCmdline(%q) = %#v, want %#v", tt.in, got.Options, tt.want)
			}
		})
	}
}

func TestCmdlineLookup(t *testing.T) {
	c, err := ParseCmdline(`/boot/keel.elf quiet keel.run="a; b" x=1 x=2 keel.run=c`)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		key     string
		want    string
		wantOK  bool
		wantAll []string
	}{
		{"last value wins", "x", "2", true, []string{"1", "2"}},
		{"bare flag", "quiet", "", true, []string{""}},
		{"kernel path", "/boot/keel.elf", "", true, []string{""}},
		{"missing", "nope", "", false, nil},
		{"repeated run", "keel.run", "c", true, []string{"a; b", "c"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := c.Get(tt.key)
			if v != tt.want || ok != tt.wantOK || c.Has(tt.key) != tt.wantOK {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.wantOK)
			}

			if all := c.All(tt.key); !reflect.DeepEqual(all, tt.wantAll) {
				t.Errorf("All(%q) = %q, want %q", tt.key, all, tt.wantAll)
			}
		})
	}
}

func TestSplitCommands(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"help", []string{"help"}},
		{"vm start web; vm list", []string{"vm start web", "vm list"}},
		{" ; a ;; b ; ", []string{"a", "b"}},
	}

	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := SplitCommands(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitCommands(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// quoteOption writes o so that ParseCmdline reads it back unchanged: the
// whole option in quotes, with '"', '\' and an '=' in the key escaped.
func quoteOption(o Option) string {
	esc := func(s string, escEq bool) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c == '"' || c == '\\' || (escEq && c == '=') {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		return b.String()
	}

	s := esc(o.Key, true)
	if o.HasValue {
		s += "=" + esc(o.Value, false)
	}

	return `"` + s + `"`
}

package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzConfig feeds arbitrary text to Parse. It must not panic; its errors
// must be bounded and point at lines of the input; and a Config it accepts
// must print (String) as text that parses to the same Config and prints
// the same again.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"[vm a]\nkernel = k\n",
		"[keel]\nconsole-log = debug\n[vm demo]\nkernel = vmlinuz\ninitrd = initrd.cpio\ncmdline = \"console=ttyS0 \\\"q\\\" \\\\\"\nmemory = 256M\nvcpus = 2\ndevices = serial, rtc, pit, pic, ioapic, pmtimer, debug-exit\ndebug-exit = 0xf4\nkind = linux\nautostart = yes\n",
		"[vm mb]\nkernel = k.elf\nkind = multiboot\nmodules = a.bin \"arg\", \"b c.bin\", d \"\"\ndevices = none\nmemory = 16384k\n",
		"[vm a]\nmemory = 12Q\nvcpus = 65\n[vm a]\n[net]\nx\n",
		"\ufeff[vm x]\r\nkernel=\"a#b\" # c\r\n",
		"[vm a]\nkernel = k\ncmdline = \"unterminated\n",
	} {
		f.Add(s)
	}
	// Files named "missing..." are not in the bundle.
	check := func(name string) error {
		if strings.HasPrefix(name, "missing") {
			return errors.New("not in the bundle")
		}
		return nil
	}

	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("f", []byte(src), check)
		if err != nil {
			if c != nil {
				t.Fatal("a Config with an error")
			}
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 || len(list) > MaxErrors+1 {
				t.Fatalf("error %T with %d entries", err, len(list))
			}
			lines := strings.Count(src, "\n") + 1
			for _, e := range list {
				if e.Line < 0 || e.Line > lines || e.Msg == "" {
					t.Fatalf("error %q on line %d of %d", e.Msg, e.Line, lines)
				}
			}
			return
		}
		text := c.String()
		again, err := Parse("canonical", []byte(text), check)
		if err != nil {
			t.Fatalf("the canonical text does not parse:\n%v\ntext:\n%s", err, text)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("canonical text parses to\n%+v\nwant\n%+v\ntext:\n%s", again, c, text)
		}
		if again.String() != text {
			t.Fatalf("canonical text is not stable:\n%s\nthen\n%s", text, again.String())
		}
	})
}

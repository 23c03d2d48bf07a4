package bundle

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/bundle/cpio"
)

const (
	reg  = cpio.S_IFREG | 0o644
	dir  = cpio.S_IFDIR | 0o755
	link = cpio.S_IFLNK | 0o777
)

// archive writes entries, each with a link count of 1, and the trailer.
func archive(t *testing.T, entries ...cpio.Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	for i := range entries {
		entries[i].NLink = 1
		if err := w.Add(&entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, data string) cpio.Entry {
	return cpio.Entry{Name: name, Mode: reg, Data: []byte(data)}
}

func symlink(name, target string) cpio.Entry {
	return cpio.Entry{Name: name, Mode: link, Data: []byte(target)}
}

func TestOpen(t *testing.T) {
	conf := `[vm web]
kernel = boot/current
initrd = initrd.cpio
cmdline = "console=ttyS0"
autostart = yes

[vm mb]
kernel = mb.elf
modules = abs-link "x", boot/vmlinuz
`
	a := archive(t,
		file(ConfigName, conf),
		cpio.Entry{Name: "boot", Mode: dir},
		file("boot/vmlinuz-6.1", "bzImage"),
		symlink("boot/vmlinuz", "vmlinuz-6.1"),
		symlink("boot/current", "../boot/./vmlinuz"),
		symlink("abs-link", "/boot/vmlinuz-6.1"),
		file("initrd.cpio", "initrd"),
		file("mb.elf", "ELF"),
		file("unused", ""),
	)

	b, err := Open(a)
	if err != nil {
		t.Fatalf("Open:\n%v", err)
	}
	if len(b.Config.VMs) != 2 || b.Config.VMs[0].Name != "web" || !b.Config.VMs[0].Autostart {
		t.Errorf("Config = %+v", b.Config)
	}
	for name, want := range map[string]string{
		ConfigName:         conf,
		"boot/current":     "bzImage",
		"boot/vmlinuz":     "bzImage",
		"abs-link":         "bzImage",
		"boot/vmlinuz-6.1": "bzImage",
		"initrd.cpio":      "initrd",
		"unused":           "",
	} {
		got, err := b.File(name)
		if err != nil || string(got) != want {
			t.Errorf("File(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if got, want := b.Names(), []string{"boot/vmlinuz-6.1", "initrd.cpio", "keel.conf", "mb.elf", "unused"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if n := len(b.Entries()); n != 9 {
		t.Errorf("%d entries, want 9", n)
	}
	// The data is not copied.
	data, _ := b.File("initrd.cpio")
	if i := bytes.Index(a, []byte("initrd\x00\x00")); i < 0 || &a[i] != &data[0] {
		t.Errorf("File does not return a slice of the archive")
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"not an archive", []byte("hello"), "boot bundle: cpio: at byte 0: truncated header: 5 bytes left, a newc header has 110 (truncated archive?)"},
		{"no keel.conf", archive(t, file("vmlinuz", "k")), "boot bundle: no keel.conf in the archive (1 entries): build bundles with keel-bundle -o BUNDLE keel.conf"},
		{"keel.conf in a directory", archive(t, cpio.Entry{Name: "b", Mode: dir}, file("b/keel.conf", "")),
			"boot bundle: keel.conf is not at the root of the archive but in b/: archive that directory's contents (cd b && find . | cpio -o -H newc), or build the bundle with keel-bundle"},
		{"keel.conf is a directory", archive(t, cpio.Entry{Name: ConfigName, Mode: dir}), "boot bundle: keel.conf: a directory, not a file"},
		{"missing files", archive(t,
			file(ConfigName, "[vm a]\nkernel = vmlinuz\ninitrd = d\n[vm b]\nkernel = l1\nmodules = loop, dangling, l2\n[vm c]\nkernel = out\n"),
			cpio.Entry{Name: "d", Mode: dir},
			symlink("l1", "l2"), symlink("l2", "d"),
			symlink("out", "../../etc/passwd"),
			symlink("loop", "loop"),
			symlink("dangling", "nothing")),
			`keel.conf:2: vm "a": kernel: "vmlinuz": not in the bundle` + "\n" +
				`keel.conf:3: vm "a": initrd: "d": a directory, not a file` + "\n" +
				`keel.conf:5: vm "b": kernel: "l1": a symbolic link leads to the directory "d", not a file` + "\n" +
				`keel.conf:6: vm "b": modules: "loop": more than 8 symbolic links from "loop" (a loop?)` + "\n" +
				`keel.conf:6: vm "b": modules: "dangling": a symbolic link leads to "nothing": not in the bundle` + "\n" +
				`keel.conf:6: vm "b": modules: "l2": a symbolic link leads to the directory "d", not a file` + "\n" +
				`keel.conf:8: vm "c": kernel: "out": the symbolic link "out" -> "../../etc/passwd" leads outside the bundle`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(tt.archive)
			if err == nil {
				t.Fatalf("Open accepted it: %+v", b.Config)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// TestOpenErrorTypes checks that callers can tell the kinds of error apart.
func TestOpenErrorTypes(t *testing.T) {
	_, err := Open([]byte("junk"))
	var fe *cpio.FormatError
	if !errors.As(err, &fe) {
		t.Errorf("a malformed archive gives %T", err)
	}
	_, err = Open(archive(t, file(ConfigName, "[vm a]\n")))
	var list config.ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Errorf("a bad keel.conf gives %T %v", err, err)
	}
	b, err := Open(archive(t, file(ConfigName, "")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.File("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("File of a missing name: %v", err)
	}
}

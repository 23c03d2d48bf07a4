package pack

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keel-hv/keel/bundle"
	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/bundle/cpio"
)

const demoConf = `# demo
[vm demo]
kernel  = boot/vmlinuz   # in a directory
initrd  = initrd.cpio
cmdline = "console=ttyS0 quiet"
vcpus   = 2
autostart = yes

[vm mb]
kernel  = mb.elf
kind    = multiboot
modules = boot/mod.bin "arg", initrd.cpio
`

// tree writes files (name -> contents) under a new directory and returns
// it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func demoTree(t *testing.T) string {
	return tree(t, map[string]string{
		"keel.conf":     demoConf,
		"boot/vmlinuz":  strings.Repeat("bzImage", 1000),
		"boot/mod.bin":  "module",
		"initrd.cpio":   "initrd",
		"mb.elf":        "\x7fELF",
		"not-named.txt": "left out",
	})
}

func TestCreate(t *testing.T) {
	dir := demoTree(t)
	out := filepath.Join(t.TempDir(), "keel.bundle")
	var log bytes.Buffer
	if err := Create(Options{Config: filepath.Join(dir, "keel.conf"), Output: out, Log: &log}); err != nil {
		t.Fatalf("Create: %v\n%s", err, log.Bytes())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// The same parser the kernel uses accepts it.
	b, err := bundle.Open(data)
	if err != nil {
		t.Fatalf("bundle.Open: %v", err)
	}
	if len(b.Config.VMs) != 2 || b.Config.VMs[1].Modules[0].Cmdline != "arg" {
		t.Errorf("config: %+v", b.Config)
	}
	var names []string
	for _, e := range b.Entries() {
		names = append(names, e.Name)
	}
	if want := []string{"keel.conf", "boot", "boot/vmlinuz", "initrd.cpio", "mb.elf", "boot/mod.bin"}; !reflect.DeepEqual(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}
	for name, want := range map[string]string{"keel.conf": demoConf, "boot/vmlinuz": strings.Repeat("bzImage", 1000), "boot/mod.bin": "module"} {
		if got, err := b.File(name); err != nil || string(got) != want {
			t.Errorf("File(%q) = %.20q, %v", name, got, err)
		}
	}

	wantLog := []string{
		"keel-bundle: " + filepath.Join(dir, "keel.conf") + ": valid: 2 VMs (demo, mb), 4 files",
		"keel-bundle:   keel.conf                             229 B",
		"keel-bundle:   boot/vmlinuz                        6.8 KiB",
		"keel-bundle:   initrd.cpio                             6 B",
		"keel-bundle:   mb.elf                                  4 B",
		"keel-bundle:   boot/mod.bin                            6 B",
		"keel-bundle: wrote " + out + ": 2 VMs, 5 files (7.1 KiB), 7.9 KiB in all",
	}
	if got := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n"); !reflect.DeepEqual(got, wantLog) {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLog, "\n"))
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("bundle mode %v, want 0644", st.Mode())
	}

	// The same inputs give the same bytes.
	out2 := filepath.Join(t.TempDir(), "again")
	if err := Create(Options{Config: filepath.Join(dir, "keel.conf"), Output: out2}); err != nil {
		t.Fatal(err)
	}
	if data2, _ := os.ReadFile(out2); !bytes.Equal(data, data2) {
		t.Errorf("two builds of the same inputs differ")
	}
}

// TestCreateDir checks -C: the configuration elsewhere, under another name.
func TestCreateDir(t *testing.T) {
	files := tree(t, map[string]string{"k": "kernel"})
	conf := filepath.Join(t.TempDir(), "demo.conf")
	os.WriteFile(conf, []byte("[vm a]\nkernel = k\n"), 0o644)
	out := filepath.Join(t.TempDir(), "b.cpio")
	if err := Create(Options{Config: conf, Dir: files, Output: out}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	b, err := bundle.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := b.File("keel.conf"); string(got) != "[vm a]\nkernel = k\n" {
		t.Errorf("keel.conf = %q", got)
	}
}

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		dirs  []string
		out   string // relative to the tree; default: elsewhere
		want  string // %d is the tree
	}{
		{"missing file", map[string]string{"keel.conf": "[vm a]\nkernel = vmlinuz\n"}, nil, "",
			`%d/keel.conf:2: vm "a": kernel: "vmlinuz": %d/vmlinuz does not exist (names are relative to the configuration's directory; -C DIR sets another)`},
		{"a directory", map[string]string{"keel.conf": "[vm a]\nkernel = boot\n"}, []string{"boot"}, "",
			`%d/keel.conf:2: vm "a": kernel: "boot": %d/boot is not a regular file`},
		{"keel.conf named", map[string]string{"keel.conf": "[vm a]\nkernel = keel.conf\n"}, nil, "",
			`%d/keel.conf:2: vm "a": kernel: "keel.conf": the bundle keeps its configuration under that name: rename the file`},
		{"output is an input", map[string]string{"keel.conf": "[vm a]\nkernel = k\n", "k": "x"}, nil, "k",
			`the output %d/k is one of the inputs (%d/k): choose another name`},
		{"output is the configuration", map[string]string{"keel.conf": "[vm a]\nkernel = k\n", "k": "x"}, nil, "keel.conf",
			`the output %d/keel.conf is one of the inputs (%d/keel.conf): choose another name`},
		{"output is a directory", map[string]string{"keel.conf": "[vm a]\nkernel = k\n", "k": "x"}, []string{"d"}, "d",
			`the output %d/d is a directory`},
		{"output directory missing", map[string]string{"keel.conf": "[vm a]\nkernel = k\n", "k": "x"}, nil, "no/such/dir/b.cpio",
			`creating the output: open %d/no/such/dir/.keel-bundle-`},
		{"no configuration", map[string]string{}, nil, "",
			`reading the configuration: open %d/keel.conf: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			for _, d := range tt.dirs {
				os.Mkdir(filepath.Join(dir, d), 0o755)
			}
			out := filepath.Join(t.TempDir(), "b.cpio")
			if tt.out != "" {
				out = filepath.Join(dir, tt.out)
			}
			err := Create(Options{Config: filepath.Join(dir, "keel.conf"), Output: out})
			want := strings.ReplaceAll(tt.want, "%d", dir)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Create error\n got %v\nwant %s", err, want)
			}
			// Nothing is left behind.
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".keel-bundle-*"))
			if len(left) > 0 {
				t.Errorf("left behind: %q", left)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := demoTree(t)
	var log bytes.Buffer
	cfg, err := Check(Options{Config: filepath.Join(dir, "keel.conf"), Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VMs) != 2 || cfg.VMs[0].VCPUs != 2 {
		t.Errorf("Check = %+v", cfg)
	}
	if !strings.Contains(log.String(), "valid: 2 VMs (demo, mb), 4 files") {
		t.Errorf("log %q", log.String())
	}

	os.WriteFile(filepath.Join(dir, "bad.conf"), []byte("[vm a]\nkernel = k\nmemory = 12Q\ninitrd = gone\n"), 0o644)
	_, err = Check(Options{Config: filepath.Join(dir, "bad.conf"), Dir: filepath.Join(dir, "boot")})
	var list config.ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("Check(bad.conf) = %v, want 3 errors", err)
	}
	if got, want := list[1].Error(), filepath.Join(dir, "bad.conf")+`:3: vm "a": memory: "12Q" is not a size (use e.g. 256M or 2G)`; got != want {
		t.Errorf("error\n got %s\nwant %s", got, want)
	}

	_, err = Check(Options{Config: filepath.Join(dir, "keel.conf"), Dir: filepath.Join(dir, "nope")})
	if err == nil || !strings.HasSuffix(err.Error(), "nope is not a directory: file names in the configuration are relative to it") {
		t.Errorf("Check with a missing -C: %v", err)
	}
}

func TestList(t *testing.T) {
	dir := tree(t, map[string]string{"keel.conf": "[vm a]\nkernel = d/k\n", "d/k": "kernel"})
	out := filepath.Join(dir, "b.cpio")
	if err := Create(Options{Config: filepath.Join(dir, "keel.conf"), Output: out}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := List(out, &buf); err != nil {
		t.Fatal(err)
	}
	want := `-rw-r--r--         20  keel.conf
drwxr-xr-x          0  d
-rw-r--r--          6  d/k
# 3 entries, 500 B

# keel.conf as Keel reads it (defaults filled in): 1 VM
[keel]
console-log = info

[vm a]
kernel     = d/k
memory     = 256M
vcpus      = 1
devices    = serial, rtc, pit, pic, ioapic, pmtimer
kind       = auto
autostart  = no
`
	if buf.String() != want {
		t.Errorf("List:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// TestListBadConfig lists an archive whose keel.conf is wrong: the entries
// are listed and the configuration's errors returned.
func TestListBadConfig(t *testing.T) {
	var a bytes.Buffer
	w := cpio.NewWriter(&a)
	w.Add(&cpio.Entry{Name: "keel.conf", Mode: cpio.S_IFREG | 0o644, Data: []byte("[vm a]\nkernel = k\n")})
	w.Add(&cpio.Entry{Name: "l", Mode: cpio.S_IFLNK | 0o777, Data: []byte("k")})
	w.Close()
	p := filepath.Join(t.TempDir(), "b.cpio")
	os.WriteFile(p, a.Bytes(), 0o644)

	var buf bytes.Buffer
	err := List(p, &buf)
	if err == nil || err.Error() != `keel.conf:2: vm "a": kernel: "k": not in the bundle` {
		t.Errorf("List error: %v", err)
	}
	if !strings.Contains(buf.String(), "lrwxrwxrwx          1  l -> k\n") {
		t.Errorf("listing:\n%s", buf.String())
	}

	os.WriteFile(p, []byte("not a bundle"), 0o644)
	if err := List(p, &buf); err == nil || !strings.HasPrefix(err.Error(), p+": cpio: at byte 0: truncated header") {
		t.Errorf("List of junk: %v", err)
	}
}

// TestGNUExtractsBundle extracts a built bundle with GNU cpio.
func TestGNUExtractsBundle(t *testing.T) {
	cpioCmd, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("GNU cpio is not installed (apt-get install cpio)")
	}
	dir := demoTree(t)
	out := filepath.Join(t.TempDir(), "b.cpio")
	if err := Create(Options{Config: filepath.Join(dir, "keel.conf"), Output: out}); err != nil {
		t.Fatal(err)
	}
	x := t.TempDir()
	cmd := exec.Command(cpioCmd, "-i", "--quiet", "-F", out)
	cmd.Dir = x
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, msg)
	}
	for _, name := range []string{"keel.conf", "boot/vmlinuz", "boot/mod.bin", "initrd.cpio", "mb.elf"} {
		want, _ := os.ReadFile(filepath.Join(dir, name))
		got, err := os.ReadFile(filepath.Join(x, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: extracted %d bytes (%v), want %d", name, len(got), err, len(want))
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 7 << 20: "7.0 MiB", 3 << 40: "3.0 TiB", 5 << 50: "5120.0 TiB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

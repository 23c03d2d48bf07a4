package media

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-hv/keel/boot/mb1"
)

func TestGRUBConfig(t *testing.T) {
	tests := []struct {
		name                    string
		kernel, bundle, cmdline string
		want                    []string // lines that must appear, in order
		wantNot                 []string
	}{
		{
			name:    "iso, no bundle, no cmdline",
			kernel:  ISOKernel,
			want:    []string{"set timeout=0", "serial --unit=0 --speed=115200", "terminal_input serial console", "terminal_output serial console", `echo "keel-media: GRUB loading Keel (/boot/keel.elf)"`, "multiboot2 /boot/keel.elf", `echo "keel-media: GRUB starting Keel"`, "boot"},
			wantNot: []string{"module2"},
		},
		{
			name:    "iso with bundle and keel.run",
			kernel:  ISOKernel,
			bundle:  ISOBundle,
			cmdline: ` keel.run="cpus; mem; nosuchcmd; poweroff" `,
			want:    []string{`multiboot2 /boot/keel.elf keel.run="cpus; mem; nosuchcmd; poweroff"`, "module2 /boot/bundle keel.bundle", "boot"},
		},
		{
			name:   "pxe",
			kernel: PXEKernel,
			bundle: PXEBundle,
			want:   []string{"multiboot2 /keel.elf", "module2 /keel.bundle keel.bundle"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := GRUBConfig(tt.kernel, tt.bundle, tt.cmdline)
			checkLines(t, cfg, tt.want, tt.wantNot)
		})
	}
}

func TestIPXEScript(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		bundle  bool
		want    []string
		wantNot []string
	}{
		{
			name:    "plain",
			want:    []string{"#!ipxe", "echo keel-media: iPXE on ${platform}", "iseq ${platform} pcbios && goto bios || goto efi", ":bios", "kernel keel-mb1.elf || goto failed", "boot || goto failed", ":bios_grub", "chain boot/grub/i386-pc/core.0 || goto failed", ":efi", "chain boot/grub/x86_64-efi/core.efi || goto failed", ":failed", "shell"},
			wantNot: []string{"module"},
		},
		{
			name:    "cmdline and bundle",
			cmdline: `keel.run="cpus; mem" console=com1`,
			bundle:  true,
			want:    []string{`kernel keel-mb1.elf keel.run="cpus; mem" console=com1 || goto failed`, "module keel.bundle keel.bundle || goto failed", "boot || goto failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLines(t, IPXEScript(tt.cmdline, tt.bundle), tt.want, tt.wantNot)
		})
	}
}

// checkLines checks that text has the lines want, in this order, and no
// line containing any of wantNot.
func checkLines(t *testing.T, text string, want, wantNot []string) {
	t.Helper()
	lines := strings.Split(text, "\n")
	i := 0
	for _, w := range want {
		for i < len(lines) && lines[i] != w {
			i++
		}
		if i == len(lines) {
			t.Errorf("missing line %q (or out of order) in:\n%s", w, text)
			return
		}
	}
	for _, l := range lines {
		for _, n := range wantNot {
			if strings.Contains(l, n) {
				t.Errorf("unexpected line %q in:\n%s", l, text)
			}
		}
	}
}

func TestCheckCmdline(t *testing.T) {
	tests := []struct {
		cmdline string
		ok      bool
	}{
		{"", true},
		{`keel.run="cpus; mem; nosuchcmd; poweroff"`, true},
		{"a\nboot", false},
		{"a\rb", false},
		{"tab\there", false},
	}
	for _, tt := range tests {
		t.Run(tt.cmdline, func(t *testing.T) {
			err := CheckCmdline(tt.cmdline)
			if (err == nil) != tt.ok {
				t.Errorf("CheckCmdline(%q) = %v, want ok=%v", tt.cmdline, err, tt.ok)
			}
		})
	}
}

func TestCheckTools(t *testing.T) {
	old := GRUBLibDir
	t.Cleanup(func() { GRUBLibDir = old })
	GRUBLibDir = t.TempDir()
	t.Setenv("PATH", t.TempDir())
	err := checkTools(toolMkrescue, toolXorriso, toolMformat, toolGRUBPC, toolGRUBEFI)
	if err == nil {
		t.Fatal("checkTools found tools in an empty PATH")
	}
	for _, want := range []string{"grub-mkrescue", "xorriso", "mformat", "i386-pc", "x86_64-efi", "apt-get install grub-common xorriso mtools grub-pc-bin grub-efi-amd64-bin"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "keel.elf")
	os.WriteFile(kernel, []byte("not an ELF"), 0o644)
	tests := []struct {
		name  string
		build func(Options, string) error
		o     Options
		want  string
	}{
		{"iso without kernel", BuildISO, Options{Kernel: filepath.Join(dir, "missing.elf")}, "make kernel"},
		{"pxe without kernel", BuildPXE, Options{Kernel: filepath.Join(dir, "missing.elf")}, "make kernel"},
		{"iso with two-line cmdline", BuildISO, Options{Kernel: kernel, Cmdline: "a\nb"}, "one line"},
		{"bundle is a directory", BuildISO, Options{Kernel: kernel, Bundle: dir}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build(tt.o, filepath.Join(t.TempDir(), "out"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func needTools(t *testing.T) {
	t.Helper()
	if err := checkTools(toolMkrescue, toolMknetdir, toolXorriso, toolMformat, toolGRUBPC, toolGRUBEFI); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("KEEL_KERNEL") != "" {
			t.Fatal(err) // make test installs them
		}
		t.Skip(err)
	}
}

// TestBuildISO builds an image with a bundle and checks its files through
// xorriso.
func TestBuildISO(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "keel.elf")
	bundle := filepath.Join(dir, "keel.bundle")
	os.WriteFile(kernel, []byte("kernel bytes"), 0o644)
	os.WriteFile(bundle, []byte("bundle bytes"), 0o644)
	out := filepath.Join(dir, "out", "keel.iso")
	var log bytes.Buffer
	if err := BuildISO(Options{Kernel: kernel, Bundle: bundle, Cmdline: "keel.test=1", Log: &log}, out); err != nil {
		t.Fatal(err)
	}
	t.Log(log.String())
	if err := checkHybrid(out); err != nil {
		t.Error(err)
	}
	// Extract grub.cfg and the kernel and compare.
	x := t.TempDir()
	cmd := exec.Command("xorriso", "-osirrox", "on", "-indev", out,
		"-extract", "/boot/grub/grub.cfg", filepath.Join(x, "grub.cfg"),
		"-extract", ISOKernel, filepath.Join(x, "keel.elf"),
		"-extract", ISOBundle, filepath.Join(x, "bundle"),
		"-extract", "/efi.img", filepath.Join(x, "efi.img"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	cfg, _ := os.ReadFile(filepath.Join(x, "grub.cfg"))
	if want := GRUBConfig(ISOKernel, ISOBundle, "keel.test=1"); string(cfg) != want {
		t.Errorf("grub.cfg in the image:\n%s\nwant:\n%s", cfg, want)
	}
	for name, want := range map[string]string{"keel.elf": "kernel bytes", "bundle": "bundle bytes"} {
		if b, _ := os.ReadFile(filepath.Join(x, name)); string(b) != want {
			t.Errorf("%s in the image = %q, want %q", name, b, want)
		}
	}
	if st, err := os.Stat(filepath.Join(x, "efi.img")); err != nil || st.Size() == 0 {
		t.Errorf("the image has no EFI system partition image (/efi.img): %v", err)
	}
	// No leftovers next to the output.
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("build left files next to the image: %v", ents)
	}
}

// TestBuildPXE builds the TFTP tree from the real kernel (KEEL_KERNEL).
func TestBuildPXE(t *testing.T) {
	needTools(t)
	kernel := os.Getenv("KEEL_KERNEL")
	if kernel == "" {
		t.Skip("KEEL_KERNEL is not set (make test sets it to build/keel.elf)")
	}
	dir := filepath.Join(t.TempDir(), "pxe")
	os.MkdirAll(filepath.Join(dir, "stale"), 0o755) // replaced wholesale
	if err := BuildPXE(Options{Kernel: kernel, Cmdline: "keel.test=1"}, dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{PXEScript, PXEKernel, PXEKernelMB1, PXEGRUBBIOS, PXEGRUBUEFI, PXEGRUBDir + "/grub.cfg",
		PXEGRUBDir + "/i386-pc/multiboot2.mod", PXEGRUBDir + "/x86_64-efi/multiboot2.mod"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("tree lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "stale")); err == nil {
		t.Error("the old tree's files survived the rebuild")
	}
	if _, err := os.Stat(filepath.Join(dir, PXEBundle)); err == nil {
		t.Error("a bundle was added though none was given")
	}
	script, _ := os.ReadFile(filepath.Join(dir, PXEScript))
	if string(script) != IPXEScript("keel.test=1", false) {
		t.Errorf("boot.ipxe:\n%s", script)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, PXEGRUBDir, "grub.cfg"))
	if string(cfg) != GRUBConfig(PXEKernel, "", "keel.test=1") {
		t.Errorf("grub.cfg:\n%s", cfg)
	}
	orig, _ := os.ReadFile(kernel)
	img, _ := os.ReadFile(filepath.Join(dir, PXEKernelMB1))
	h, ok := mb1.Find(img)
	if !ok || h.Flags&mb1.MULTIBOOT_AOUT_KLUDGE == 0 {
		t.Fatalf("keel-mb1.elf has no Multiboot header with the a.out kludge (%v, %v)", h, ok)
	}
	if want, _, err := mb1.Patch(orig); err != nil || !bytes.Equal(img, want) {
		t.Errorf("keel-mb1.elf differs from mb1.Patch(kernel) (err %v)", err)
	}
	if _, err := elf.Open(filepath.Join(dir, PXEKernelMB1)); err != nil {
		t.Errorf("keel-mb1.elf is no longer an ELF file: %v", err)
	}
}

// TestBuildPXENotELF checks that a kernel that is not an ELF file is
// refused before any GRUB work, with what to pass instead.
func TestBuildPXENotELF(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	kernel := filepath.Join(dir, "keel.elf")
	os.WriteFile(kernel, []byte("not an ELF"), 0o644)
	out := filepath.Join(dir, "pxe")
	err := BuildPXE(Options{Kernel: kernel}, out)
	if err == nil || !strings.Contains(err.Error(), "not a readable ELF file") || !strings.Contains(err.Error(), "build/keel.elf") {
		t.Fatalf("error = %v, want one saying the kernel is not an ELF file and naming build/keel.elf", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a tree was written for a bad kernel")
	}
}

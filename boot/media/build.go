package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/keel-hv/keel/boot/mb1"
)

// GRUBLibDir is where Debian's GRUB packages keep the per-platform images
// and modules (grub-pc-bin: i386-pc, grub-efi-amd64-bin: x86_64-efi).
var GRUBLibDir = "/usr/lib/grub"

// Options says what goes on the media.
type Options struct {
	// Kernel is the kernel ELF (build/keel.elf).
	Kernel string
	// Cmdline is the kernel command line, written verbatim into grub.cfg
	// and boot.ipxe (see the package comment for quoting).
	Cmdline string
	// Bundle is the boot bundle to add as a module. If it is empty or the
	// file does not exist, the media have no module line.
	Bundle string
	// Log receives progress lines; nil means none.
	Log io.Writer
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "media: "+format+"\n", args...)
	}
}

// check validates o and returns the bundle to use ("" for none).
func (o Options) check() (bundle string, err error) {
	if err := CheckCmdline(o.Cmdline); err != nil {
		return "", err
	}
	if st, err := os.Stat(o.Kernel); err != nil {
		return "", fmt.Errorf("kernel: %v (build it with `make kernel`)", err)
	} else if !st.Mode().IsRegular() {
		return "", fmt.Errorf("kernel %s is not a regular file", o.Kernel)
	}
	if o.Bundle == "" {
		return "", nil
	}
	switch st, err := os.Stat(o.Bundle); {
	case errors.Is(err, os.ErrNotExist):
		o.logf("no boot bundle at %s: the media boot the kernel alone", o.Bundle)
		return "", nil
	case err != nil:
		return "", fmt.Errorf("boot bundle: %v", err)
	case !st.Mode().IsRegular():
		return "", fmt.Errorf("boot bundle %s is not a regular file", o.Bundle)
	}
	return o.Bundle, nil
}

// tool is a program or directory a builder needs and the Debian package
// that provides it.
type tool struct {
	name    string // program in PATH, or directory if dir
	dir     bool
	pkg     string
	purpose string
}

var (
	toolMkrescue = tool{name: "grub-mkrescue", pkg: "grub-common", purpose: "builds the ISO image"}
	toolMknetdir = tool{name: "grub-mknetdir", pkg: "grub-common", purpose: "builds GRUB's netboot images"}
	toolXorriso  = tool{name: "xorriso", pkg: "xorriso", purpose: "writes the ISO image for grub-mkrescue"}
	toolMformat  = tool{name: "mformat", pkg: "mtools", purpose: "makes the EFI system partition for grub-mkrescue"}
	toolGRUBPC   = tool{name: "i386-pc", dir: true, pkg: "grub-pc-bin", purpose: "GRUB for BIOS"}
	toolGRUBEFI  = tool{name: "x86_64-efi", dir: true, pkg: "grub-efi-amd64-bin", purpose: "GRUB for UEFI"}
)

// checkTools returns an error naming every missing tool and the Debian
// packages to install.
func checkTools(tools ...tool) error {
	var missing, pkgs []string
	for _, t := range tools {
		ok := false
		if t.dir {
			st, err := os.Stat(filepath.Join(GRUBLibDir, t.name))
			ok = err == nil && st.IsDir()
			t.name = filepath.Join(GRUBLibDir, t.name)
		} else {
			_, err := exec.LookPath(t.name)
			ok = err == nil
		}
		if !ok {
			missing = append(missing, fmt.Sprintf("%s (%s, package %s)", t.name, t.purpose, t.pkg))
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing %s; install with `make deps` or `apt-get install %s`", strings.Join(missing, ", "), strings.Join(dedup(pkgs), " "))
}

func dedup(s []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// run runs a tool, keeping its (noisy) output for the error message.
func run(name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// copyFile copies src to dst with mode perm.
func copyFile(dst, src string, perm os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, perm)
}

// BuildISO writes out, a hybrid ISO image (BIOS El Torito, UEFI, and raw
// USB) whose GRUB boots o.Kernel through Multiboot2. It is written next to
// out and renamed into place, so a failed build leaves the old image.
func BuildISO(o Options, out string) error {
	bundle, err := o.check()
	if err != nil {
		return err
	}
	if err := checkTools(toolMkrescue, toolXorriso, toolMformat, toolGRUBPC, toolGRUBEFI); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}

	stage, err := os.MkdirTemp(filepath.Dir(out), ".keel-iso-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	grubDir := filepath.Join(root, "boot", "grub")
	if err := os.MkdirAll(grubDir, 0o755); err != nil {
		return err
	}
	o.logf("staging %s as %s", o.Kernel, ISOKernel)
	if err := copyFile(filepath.Join(root, ISOKernel), o.Kernel, 0o644); err != nil {
		return fmt.Errorf("copying the kernel: %v", err)
	}
	bundlePath := ""
	if bundle != "" {
		o.logf("staging boot bundle %s as %s", bundle, ISOBundle)
		if err := copyFile(filepath.Join(root, ISOBundle), bundle, 0o644); err != nil {
			return fmt.Errorf("copying the boot bundle: %v", err)
		}
		bundlePath = ISOBundle
	}
	cfg := GRUBConfig(ISOKernel, bundlePath, o.Cmdline)
	if err := os.WriteFile(filepath.Join(grubDir, "grub.cfg"), []byte(cfg), 0o644); err != nil {
		return err
	}

	o.logf("grub-mkrescue: i386-pc + x86_64-efi -> %s", out)
	tmp := filepath.Join(stage, "keel.iso")
	// No fonts, locales or themes: the console is serial.
	if err := run("grub-mkrescue", "-o", tmp, "--fonts=", "--locales=", "--themes=", root); err != nil {
		return err
	}
	if err := checkHybrid(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	if st, err := os.Stat(out); err == nil {
		o.logf("wrote %s (%d KiB; cmdline %q)", out, st.Size()>>10, o.Cmdline)
	}
	return nil
}

// checkHybrid checks that path starts with an MBR (boot signature 55 AA at
// byte 510), which grub-mkrescue writes only when it could make a hybrid
// image for BIOS (the part that makes `dd` to a USB stick work).
func checkHybrid(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var mbr [512]byte
	if _, err := io.ReadFull(f, mbr[:]); err != nil {
		return fmt.Errorf("%s: reading its first sector: %v", path, err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return fmt.Errorf("%s has no MBR boot signature: grub-mkrescue did not make a hybrid BIOS image; check that grub-pc-bin is installed (%s/i386-pc)", path, GRUBLibDir)
	}
	return nil
}

// BuildPXE writes dir, a TFTP root that boots Keel on BIOS and UEFI PXE
// clients (see the package comment and docs/boot-media.md). The tree is
// built next to dir and swapped in, so a failed build leaves the old tree.
//
// Layout:
//
//	boot.ipxe                        iPXE script (DHCP file name for iPXE)
//	keel.elf                         the kernel, for GRUB (Multiboot2)
//	keel-mb1.elf                     the kernel with a Multiboot v1 header, for iPXE
//	keel.bundle                      the boot bundle, if there is one
//	boot/grub/grub.cfg               GRUB's configuration (both platforms)
//	boot/grub/i386-pc/core.0         GRUB for BIOS PXE clients
//	boot/grub/x86_64-efi/core.efi    GRUB for UEFI PXE clients
func BuildPXE(o Options, dir string) error {
	bundle, err := o.check()
	if err != nil {
		return err
	}
	if err := checkTools(toolMknetdir, toolGRUBPC, toolGRUBEFI); err != nil {
		return err
	}
	// The Multiboot v1 copy first: it is what can fail on a bad kernel.
	kernel, err := os.ReadFile(o.Kernel)
	if err != nil {
		return err
	}
	patched, h, err := mb1.Patch(kernel)
	if err != nil {
		return fmt.Errorf("making %s from %s: %v", strings.TrimPrefix(PXEKernelMB1, "/"), o.Kernel, err)
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(filepath.Dir(dir), ".keel-pxe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return err
	}

	for _, platform := range []string{"i386-pc", "x86_64-efi"} {
		o.logf("grub-mknetdir: %s -> %s", platform, filepath.Join(dir, PXEGRUBDir, platform))
		if err := run("grub-mknetdir", "--net-directory="+stage, "--subdir="+strings.TrimPrefix(PXEGRUBDir, "/"),
			"-d", filepath.Join(GRUBLibDir, platform), "--fonts=", "--locales=", "--themes="); err != nil {
			return err
		}
	}
	for _, img := range []string{PXEGRUBBIOS, PXEGRUBUEFI} {
		if _, err := os.Stat(filepath.Join(stage, img)); err != nil {
			return fmt.Errorf("grub-mknetdir did not write %s: %v", img, err)
		}
	}

	if err := os.WriteFile(filepath.Join(stage, PXEKernel), kernel, 0o644); err != nil {
		return err
	}
	o.logf("%s: %v", strings.TrimPrefix(PXEKernelMB1, "/"), h)
	if err := os.WriteFile(filepath.Join(stage, PXEKernelMB1), patched, 0o644); err != nil {
		return err
	}
	bundlePath := ""
	if bundle != "" {
		o.logf("adding boot bundle %s as %s", bundle, PXEBundle)
		if err := copyFile(filepath.Join(stage, PXEBundle), bundle, 0o644); err != nil {
			return err
		}
		bundlePath = PXEBundle
	}
	cfg := GRUBConfig(PXEKernel, bundlePath, o.Cmdline)
	if err := os.WriteFile(filepath.Join(stage, PXEGRUBDir, "grub.cfg"), []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, PXEScript), []byte(IPXEScript(o.Cmdline, bundle != "")), 0o644); err != nil {
		return err
	}

	// Swap the new tree in.
	old := stage + ".old"
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("moving the old tree aside: %v", err)
	}
	if err := os.Rename(stage, dir); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	o.logf("wrote %s (TFTP root; iPXE: %s, BIOS PXE: %s, UEFI PXE: %s; cmdline %q)",
		dir, strings.TrimPrefix(PXEScript, "/"), strings.TrimPrefix(PXEGRUBBIOS, "/"), strings.TrimPrefix(PXEGRUBUEFI, "/"), o.Cmdline)
	return nil
}

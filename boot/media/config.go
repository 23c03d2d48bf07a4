// Package media turns Keel's kernel ELF into boot media:
//
//   - a hybrid ISO image made with grub-mkrescue (BuildISO): El Torito for
//     BIOS, an EFI system partition for UEFI, and an MBR/GPT so that the
//     same file can be written raw to a USB stick;
//   - a PXE TFTP root (BuildPXE): GRUB netboot images for BIOS (core.0)
//     and UEFI (core.efi) from grub-mknetdir, an iPXE script, and a copy of
//     the kernel with a Multiboot v1 header (package mb1) for iPXE's own
//     BIOS loader.
//
// Every path boots Keel through Multiboot2 (GRUB) or Multiboot v1 (iPXE on
// BIOS) with the GRUB/iPXE console and Keel's console on COM1.
//
// The command line is written verbatim into grub.cfg and boot.ipxe, so it
// uses their quoting: keel.run="cpus; mem" keeps the spaces and the
// semicolons together. GRUB hands it on as "keel.run=cpus; mem" (it
// re-quotes every argument that contains a space, Linux style, and the
// Multiboot2 command line does not include the file name); iPXE hands on
// "tftp://SERVER/keel-mb1.elf keel.run="cpus; mem"" (the image URI first,
// arguments split at white space and joined with one space, quotes kept).
//
// Host-only package; the builders run the GRUB tools of the Debian packages
// grub-common, grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools.
package media

import (
	"fmt"
	"strings"
)

// Paths inside the media.
const (
	// ISOKernel is the kernel's path in the ISO image.
	ISOKernel = "/boot/keel.elf"
	// ISOBundle is the boot bundle's path in the ISO image.
	ISOBundle = "/boot/bundle"

	// PXEKernel is the kernel's path in the TFTP root, for GRUB.
	PXEKernel = "/keel.elf"
	// PXEKernelMB1 is the Multiboot v1 copy of the kernel in the TFTP
	// root, for iPXE on BIOS.
	PXEKernelMB1 = "/keel-mb1.elf"
	// PXEBundle is the boot bundle's path in the TFTP root.
	PXEBundle = "/keel.bundle"
	// PXEScript is the iPXE script in the TFTP root: the file a DHCP
	// server names for iPXE clients.
	PXEScript = "/boot.ipxe"
	// PXEGRUBDir is GRUB's prefix directory in the TFTP root.
	PXEGRUBDir = "/boot/grub"
	// PXEGRUBBIOS is GRUB's PXE image for BIOS clients (DHCP file name
	// for a BIOS PXE ROM, or chained from iPXE).
	PXEGRUBBIOS = PXEGRUBDir + "/i386-pc/core.0"
	// PXEGRUBUEFI is GRUB's EFI image for UEFI clients (DHCP file name
	// for UEFI PXE, or chained from iPXE).
	PXEGRUBUEFI = PXEGRUBDir + "/x86_64-efi/core.efi"
)

// BundleName is the string GRUB and iPXE pass with the boot bundle module,
// by which the kernel recognises it.
const BundleName = "keel.bundle"

// Echo lines printed by GRUB and iPXE on the serial console before they
// start Keel. Tests and the boot time measurement look for them.
const (
	// GRUBLoading is echoed by grub.cfg before it loads the kernel.
	GRUBLoading = "keel-media: GRUB loading Keel"
	// GRUBStarting is echoed by grub.cfg just before `boot`.
	GRUBStarting = "keel-media: GRUB starting Keel"
	// IPXEStarting is echoed by boot.ipxe before it loads the kernel or
	// chains GRUB.
	IPXEStarting = "keel-media: iPXE on"
)

// CheckCmdline reports whether cmdline can be written into grub.cfg and
// boot.ipxe as one line.
func CheckCmdline(cmdline string) error {
	for _, r := range cmdline {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("kernel command line %q contains the control character %U: it must be one line of printable text (set KEEL_CMDLINE without newlines)", cmdline, r)
		}
	}
	return nil
}

// GRUBConfig returns a grub.cfg that boots kernel (a path as GRUB sees it,
// e.g. /boot/keel.elf) through Multiboot2 with cmdline, loading bundle as
// a Multiboot2 module named keel.bundle if bundle is not empty. The
// console is COM1 at 115200 baud plus the firmware console.
func GRUBConfig(kernel, bundle, cmdline string) string {
	var b strings.Builder
	b.WriteString(`# Keel boot configuration for GRUB, written by keel-media (boot/media).
# Boots Keel through Multiboot2; GRUB's console and Keel's are on COM1,
# 115200 8N1. Edit KEEL_CMDLINE and rebuild rather than editing this file.
set timeout=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
`)
	fmt.Fprintf(&b, "echo %q\n", GRUBLoading+" ("+kernel+")")
	fmt.Fprintf(&b, "multiboot2 %s\n", strings.TrimSpace(kernel+" "+strings.TrimSpace(cmdline)))
	if bundle != "" {
		fmt.Fprintf(&b, "module2 %s %s\n", bundle, BundleName)
	}
	fmt.Fprintf(&b, "echo %q\n", GRUBStarting)
	b.WriteString("boot\n")
	return b.String()
}

// IPXEScript returns boot.ipxe: on BIOS (${platform} pcbios) it loads
// keel-mb1.elf with iPXE's Multiboot v1 loader, passing cmdline and, if
// bundle is true, keel.bundle as a module; on UEFI it chains GRUB's
// core.efi, whose grub.cfg does the rest. Paths are relative to the
// script's own URI, so the tree can be served from any TFTP or HTTP root.
func IPXEScript(cmdline string, bundle bool) string {
	var b strings.Builder
	b.WriteString(`#!ipxe
# Keel PXE boot script, written by keel-media (boot/media).
# BIOS: iPXE loads keel-mb1.elf itself (Multiboot v1, a.out kludge).
# UEFI: iPXE has no Multiboot loader there; it chains GRUB, which boots
# keel.elf through Multiboot2 (boot/grub/grub.cfg).
# To boot BIOS clients through GRUB instead, change "goto bios" to
# "goto bios_grub" below.
`)
	fmt.Fprintf(&b, "echo %s ${platform}\n", IPXEStarting)
	b.WriteString("iseq ${platform} pcbios && goto bios || goto efi\n\n:bios\n")
	fmt.Fprintf(&b, "kernel %s || goto failed\n", strings.TrimSpace(strings.TrimPrefix(PXEKernelMB1, "/")+" "+strings.TrimSpace(cmdline)))
	if bundle {
		fmt.Fprintf(&b, "module %s %s || goto failed\n", strings.TrimPrefix(PXEBundle, "/"), BundleName)
	}
	b.WriteString("boot || goto failed\n\n:bios_grub\n")
	fmt.Fprintf(&b, "chain %s || goto failed\n\n:efi\n", strings.TrimPrefix(PXEGRUBBIOS, "/"))
	fmt.Fprintf(&b, "chain %s || goto failed\n\n", strings.TrimPrefix(PXEGRUBUEFI, "/"))
	b.WriteString(":failed\necho keel-media: booting Keel failed (see above); dropping to the iPXE shell\nshell\n")
	return b.String()
}

package qemutests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-hv/keel/boot/media"
)

// Boot media tests: build the ISO image and the PXE tree from KEEL_KERNEL
// with boot/media (what `make iso` and `make pxe` run), boot them under
// QEMU with SeaBIOS and OVMF, and under Bochs (VMX), and check Keel's
// console. docs/boot-media.md explains each path.

// OVMFPath is the UEFI firmware for QEMU (Debian package ovmf).
const OVMFPath = "/usr/share/ovmf/OVMF.fd"

// mediaCPUs is the number of CPUs of the QEMU machines.
const mediaCPUs = 2

// mediaBootTimeout bounds the time to `keel: ready` over firmware, network
// boot and GRUB, under TCG on a loaded machine.
const mediaBootTimeout = 3 * bootTimeout / 2

// bootPath is one way of booting Keel under QEMU.
type bootPath struct {
	name string
	// args returns QEMU's arguments for the machine and media, given
	// the ISO image and the PXE tree.
	args func(iso, pxe string) []string
	// marker is what the firmware or loader prints on the way, checked
	// before Keel's own output to show which path was taken.
	marker string
	// protocol is the boot protocol Keel reports ("booted by P").
	protocol string
}

// qemuMachine returns the arguments common to every media path: the same
// machine as the PVH tests, with the firmware named (SeaBIOS if uefi is
// false).
func qemuMachine(uefi bool) []string {
	args := []string{
		"-machine", "q35", "-cpu", "max", "-m", "2G", "-smp", strconv.Itoa(mediaCPUs),
		"-nographic", "-no-reboot",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
	}
	if uefi {
		args = append(args, "-bios", OVMFPath)
	}
	return args
}

// usbStick attaches the image as a USB mass storage device on an xHCI
// controller, as the ISO written to a stick with dd, and boots from it.
func usbStick(iso string) []string {
	return []string{"-nic", "none",
		"-drive", "file=" + iso + ",format=raw,if=none,id=stick,readonly=on",
		"-device", "qemu-xhci", "-device", "usb-storage,drive=stick,bootindex=0"}
}

// pxeNet boots from the network: QEMU's user networking answers DHCP with
// bootfile and serves the tree over TFTP; the virtio-net NIC's option ROM
// (iPXE, efi-virtio.rom of package ipxe-qemu, both BIOS and UEFI images)
// does the network boot.
func pxeNet(pxe, bootfile string) []string {
	return []string{"-boot", "n",
		"-netdev", "user,id=n0,tftp=" + pxe + ",bootfile=" + bootfile,
		"-device", "virtio-net-pci,netdev=n0"}
}

// bootPaths are the media paths under QEMU.
var bootPaths = []bootPath{
	{
		name: "iso-bios",
		args: func(iso, pxe string) []string {
			return append(qemuMachine(false), "-nic", "none", "-boot", "d", "-cdrom", iso)
		},
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		name:     "iso-uefi",
		args:     func(iso, pxe string) []string { return append(qemuMachine(true), "-nic", "none", "-cdrom", iso) },
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		name:     "usb-bios",
		args:     func(iso, pxe string) []string { return append(qemuMachine(false), usbStick(iso)...) },
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		name:     "usb-uefi",
		args:     func(iso, pxe string) []string { return append(qemuMachine(true), usbStick(iso)...) },
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		// iPXE runs boot.ipxe, which loads keel-mb1.elf (Multiboot v1).
		name:     "pxe-bios",
		args:     func(iso, pxe string) []string { return append(qemuMachine(false), pxeNet(pxe, "boot.ipxe")...) },
		marker:   media.IPXEStarting + " pcbios",
		protocol: "multiboot",
	},
	{
		// iPXE (EFI) runs boot.ipxe, which chains GRUB's core.efi.
		name:     "pxe-uefi",
		args:     func(iso, pxe string) []string { return append(qemuMachine(true), pxeNet(pxe, "boot.ipxe")...) },
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		// What a DHCP server without iPXE hands a BIOS client.
		name: "pxe-bios-grub",
		args: func(iso, pxe string) []string {
			return append(qemuMachine(false), pxeNet(pxe, media.PXEGRUBBIOS[1:])...)
		},
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		// What a DHCP server without iPXE hands a UEFI client.
		name: "pxe-uefi-grub",
		args: func(iso, pxe string) []string {
			return append(qemuMachine(true), pxeNet(pxe, media.PXEGRUBUEFI[1:])...)
		},
		marker:   media.GRUBStarting,
		protocol: "multiboot2",
	},
	{
		// The PXE tree's Multiboot v1 image through QEMU's own
		// Multiboot loader, which, like iPXE's, takes only the a.out
		// kludge for a 64-bit ELF (it looks for a Multiboot header
		// before the PVH note).
		name: "mb1-qemu",
		args: func(iso, pxe string) []string {
			return append(qemuMachine(false), "-nic", "none", "-kernel", filepath.Join(pxe, media.PXEKernelMB1))
		},
		protocol: "multiboot",
	},
}

// buildMedia builds the ISO image and the PXE tree from the kernel into
// dir, with cmdline.
func buildMedia(t testing.TB, kernel, dir, cmdline string) (iso, pxe string) {
	t.Helper()
	if _, err := os.Stat(OVMFPath); err != nil {
		t.Fatalf("%s: %v: install the Debian package ovmf (make test does it through scripts/deps.sh)", OVMFPath, err)
	}
	iso = filepath.Join(dir, "keel.iso")
	pxe = filepath.Join(dir, "pxe")
	o := media.Options{Kernel: kernel, Cmdline: cmdline}
	if err := media.BuildISO(o, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	if err := media.BuildPXE(o, pxe); err != nil {
		t.Fatalf("building the PXE tree: %v", err)
	}
	return iso, pxe
}

// TestMedia boots the ISO image (CD-ROM and USB stick) and the PXE tree
// under SeaBIOS and OVMF, and checks the ready line and the shell.
func TestMedia(t *testing.T) {
	kernel := KernelPath(t)
	iso, pxe := buildMedia(t, kernel, t.TempDir(), "")
	for _, p := range bootPaths {
		t.Run(p.name, func(t *testing.T) {
			vm := Start(t, p.args(iso, pxe)...)
			if p.marker != "" {
				vm.Expect(regexp.QuoteMeta(p.marker), mediaBootTimeout)
			}
			mark := vm.Mark()
			ready := expectReady(t, vm, mediaBootTimeout)
			checkReady(t, ready, "svm", mediaCPUs)
			checkProtocol(t, vm, mark, p.protocol)

			vm.Expect(`keel> `, stepTimeout)
			vm.Send("cpus\r")
			checkCPUs(t, vm.Expect(`(?s)cpus\n(.*?)keel> `, stepTimeout)[1], mediaCPUs)
			vm.Send("mem\r")
			checkMem(t, vm.Expect(`(?s)mem\n(.*?)keel> `, stepTimeout)[1])
			vm.Send("nosuchcmd\r")
			vm.Expect(`keel: unknown command "?nosuchcmd`, stepTimeout)
			// poweroff is ACPI S5 (on SeaBIOS and OVMF alike): QEMU
			// exits with status 0.
			vm.Send("poweroff\r")
			if status := vm.Wait(exitTimeout); status != 0 {
				t.Errorf("QEMU exit status after poweroff = %d, want 0 (ACPI S5)", status)
			}
		})
	}
}

// expectReady waits for Keel's ready line and returns it. GRUB's and the
// firmware's output can precede it on the same line.
func expectReady(t testing.TB, vm *VM, timeout time.Duration) string {
	t.Helper()
	return vm.Expect(`keel: ready [^\n]*\n`, timeout)[0]
}

// readyField returns the value of key=value in the ready line.
func readyField(line, key string) string {
	m := regexp.MustCompile(`(?:^|\s)` + regexp.QuoteMeta(key) + `=("[^"]*"|\S*)`).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	return m[1]
}

// checkReady checks the ready line's virt= and cpus= fields, and that
// the kernel found the loader's memory map (mem= is not unknown).
func checkReady(t testing.TB, line, virt string, cpus int) {
	t.Helper()
	if got := readyField(line, "mem"); got == "" || got == "unknown" {
		t.Errorf("ready line says mem=%s: the kernel did not get the loader's memory map: %q", got, line)
	}
	if got := readyField(line, "virt"); got != virt {
		t.Errorf("ready line says virt=%s, want virt=%s: %q", got, virt, line)
	}
	if got := readyField(line, "cpus"); got != strconv.Itoa(cpus) {
		t.Errorf("ready line says cpus=%s, want cpus=%d (the machine's CPUs): %q", got, cpus, line)
	}
}

// checkProtocol checks, in the console from mark on, that the kernel
// reports being booted by protocol (its `booted by P (LOADER)` log line).
func checkProtocol(t testing.TB, vm *VM, mark int, protocol string) {
	t.Helper()
	end := vm.Mark()
	vm.Rewind(mark)
	m, err := vm.expect(`booted by (\S+?)[ ,]`, time.Second)
	vm.Rewind(end)
	if err != nil {
		t.Errorf("the kernel did not log which protocol booted it (booted by ...)")
		return
	}
	if m[1] != protocol {
		t.Errorf("the kernel was booted by %s, want %s", m[1], protocol)
	}
}

// cpuLine matches one CPU's line in the output of cpus: the index first,
// then the APIC ID (a number, or apic=N).
var cpuLine = regexp.MustCompile(`(?m)^\s*(\d+)\s+(?:apic=)?\d+\b`)

// checkCPUs checks that out, the output of the cpus command, has one line
// per CPU, indices 0 to n-1 in order.
func checkCPUs(t testing.TB, out string, n int) {
	t.Helper()
	var got []string
	for _, m := range cpuLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1])
	}
	var want []string
	for i := range n {
		want = append(want, strconv.Itoa(i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("cpus listed CPU indices [%s], want [%s] (one line per CPU); output:\n%s", strings.Join(got, ","), strings.Join(want, ","), out)
	}
}

// checkMem checks that the mem command printed something other than an
// error.
func checkMem(t testing.TB, out string) {
	t.Helper()
	if strings.TrimSpace(out) == "" || strings.Contains(out, "keel: unknown command") {
		t.Errorf("mem printed %q, want the memory map", out)
	}
}

// bochsCPUs is the number of CPUs of the Bochs machine. Debian's Bochs is
// built with SMP and Keel starts the second CPU there (VMX on both), at a
// price: the run takes about 2.5 minutes instead of 40 s, probably mostly
// because Keel's clock runs on Bochs' TSC, which counts instructions, at the
// 3.5 GHz CPUID reports, so its half-second boot sleep lasts 1.75 billion
// instructions per CPU (docs/boot-media.md).
const bochsCPUs = 2

// bochsIPS is the emulated instructions per second of virtual time. Bochs'
// TSC counts instructions, so it is also the TSC's real frequency there
// (CPUID reports the model's 3.5 GHz).
const bochsIPS = 100_000_000

// bochsTimeout bounds each step of the Bochs run (boot, then the script).
const bochsTimeout = 8 * time.Minute

// bochsConfig returns a bochsrc for booting from drive (bochsrc lines
// for the boot device, see cdromDrive) with the serial port written to
// serial, on a Skylake-X CPU model (VMX with EPT, VPID and unrestricted
// guest).
func bochsConfig(drive, serial, log string, cpus int) string {
	return fmt.Sprintf(`# Keel media test machine (qemu-tests/media_test.go)
megs: 2048
cpu: model=corei7_skylake_x, count=%d, ips=%d, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
%s
com1: enabled=1, mode=file, dev=%s
display_library: rfb, options="timeout=0"
clock: sync=none
# Without this Bochs 2.7 opens ALSA's default device, and on a machine
# without a sound card dies with "buffer overflow detected".
sound: driver=dummy
speaker: enabled=0
mouse: enabled=0
log: %s
`, cpus, bochsIPS, drive, serial, log)
}

// cdromDrive returns the bochsrc lines that boot iso from a CD-ROM.
func cdromDrive(iso string) string {
	return fmt.Sprintf("ata0-master: type=cdrom, path=%s, status=inserted\nboot: cdrom", iso)
}

// startBochs boots iso under Bochs and returns the VM reading its COM1.
func startBochs(t testing.TB, iso string, cpus int) *VM {
	t.Helper()
	return startBochsDrive(t, cdromDrive(iso), cpus)
}

// startBochsDrive boots Bochs from drive (bochsrc lines, see cdromDrive)
// and returns the VM reading its COM1.
func startBochsDrive(t testing.TB, drive string, cpus int) *VM {
	t.Helper()
	for _, f := range []struct{ path, pkg string }{
		{"/usr/share/bochs/BIOS-bochs-latest", "bochsbios"},
		{"/usr/share/vgabios/vgabios.bin", "vgabios"},
	} {
		if _, err := os.Stat(f.path); err != nil {
			t.Fatalf("%s: %v: install the Debian package %s (make test does it through scripts/deps.sh)", f.path, err, f.pkg)
		}
	}
	if _, err := exec.LookPath("bochs"); err != nil {
		t.Fatal("bochs not found in PATH: install the Debian package bochs (make test does it through scripts/deps.sh)")
	}
	dir := t.TempDir()
	rc := filepath.Join(dir, "bochsrc")
	log := filepath.Join(dir, "bochs.log")
	serial := filepath.Join(dir, "com1")
	if err := os.WriteFile(rc, []byte(bochsConfig(drive, serial, log, cpus)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The debugger build stops at a prompt first; the rc file continues.
	cont := filepath.Join(dir, "continue")
	if err := os.WriteFile(cont, []byte("c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := StartEmulator(t, Emulator{
		Name:       "Bochs",
		Program:    "bochs",
		Args:       []string{"-q", "-f", rc, "-rc", cont},
		SerialFIFO: serial,
	})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(log); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("Bochs log (last lines of %s):\n%s", log, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	return vm
}

// bochsScript is the shell script the Bochs test passes with keel.run:
// typing into Bochs' serial port is not possible with its file backend.
const bochsScript = "cpus; mem; nosuchcmd; poweroff"

// TestMediaBochs boots the ISO image under Bochs (BIOS, Intel CPU with
// VMX) with keel.run running the shell commands, and checks their output
// and that poweroff ends Bochs.
func TestMediaBochs(t *testing.T) {
	kernel := KernelPath(t)
	iso := filepath.Join(t.TempDir(), "keel-bochs.iso")
	if err := media.BuildISO(media.Options{Kernel: kernel, Cmdline: `keel.run="` + bochsScript + `"`}, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	vm := startBochs(t, iso, bochsCPUs)
	vm.Expect(regexp.QuoteMeta(media.GRUBStarting), bochsTimeout)
	mark := vm.Mark()
	ready := expectReady(t, vm, bochsTimeout)
	checkReady(t, ready, "vmx", bochsCPUs)
	checkProtocol(t, vm, mark, "multiboot2")

	// keel.run echoes each command after the prompt, as if typed.
	m := vm.Expect(`(?s)keel> cpus\n(.*?)keel> mem\n(.*?)keel> nosuchcmd\n(.*?)keel> poweroff\n`, bochsTimeout)
	checkCPUs(t, m[1], bochsCPUs)
	checkMem(t, m[2])
	if !strings.Contains(m[3], "keel: unknown command") {
		t.Errorf("nosuchcmd printed %q, want keel: unknown command", m[3])
	}
	// Bochs ends with exit status 1 and a panic message either way a
	// guest powers it off: ACPI S5 ("ACPI control: soft power off", what
	// Keel's poweroff does first) or the string "Shutdown" written to
	// port 0x8900 ("Shutdown port: shutdown requested").
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("Bochs exit status after poweroff = %d, want 1 (ACPI soft power off or shutdown port)", status)
	}
	if out := vm.Output(); !strings.Contains(out, "ACPI control: soft power off") && !strings.Contains(out, "Shutdown port: shutdown requested") {
		t.Errorf("Bochs did not report a power-off (ACPI or shutdown port); its output ends:\n%s", tail(out, 1000))
	}
}

// TestSelftestBochs runs the guest suite on the VMX backend under Bochs
// (Skylake-X: EPT, VPID, unrestricted guest) with as many CPUs as
// TestMediaBochs: the same cases as under QEMU/SVM must pass, and `vm list`
// must name the vmx backend.
func TestSelftestBochs(t *testing.T) {
	t.Parallel()
	kernel := KernelPath(t)
	iso := filepath.Join(t.TempDir(), "keel-selftest.iso")
	if err := media.BuildISO(media.Options{Kernel: kernel, Cmdline: `keel.run="selftest; vm list; poweroff"`}, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	vm := startBochs(t, iso, bochsCPUs)
	ready := expectReady(t, vm, bochsTimeout)
	checkReady(t, ready, "vmx", bochsCPUs)
	checkSelftest(t, vm, "vmx", bochsTimeout)
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("Bochs exit status after poweroff = %d, want 1 (ACPI soft power off or shutdown port)", status)
	}
}

// TestSelftestBochsMoves runs the suite under Bochs with
// keel.test.vmx-move, which makes vCPU goroutines sleep every few exits so
// that they resume on the other CPU: every case must still pass, and the
// VMCS must have changed CPUs.
func TestSelftestBochsMoves(t *testing.T) {
	t.Parallel()
	kernel := KernelPath(t)
	iso := filepath.Join(t.TempDir(), "keel-moves.iso")
	if err := media.BuildISO(media.Options{Kernel: kernel, Cmdline: `keel.run="selftest; vm list; poweroff" keel.test.vmx-move`}, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	vm := startBochs(t, iso, bochsCPUs)
	m := vm.Expect(`(?m)^selftest: (\d+) vCPU moves between CPUs`, bochsTimeout)
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("no vCPU moved between CPUs (%s); the test proves nothing", m[0])
	}
	vm.Rewind(0)
	checkSelftest(t, vm, "vmx", bochsTimeout)
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("Bochs exit status after poweroff = %d, want 1", status)
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

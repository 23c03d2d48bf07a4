package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-hv/keel/boot/media"
	"github.com/keel-hv/keel/bundle/pack"
)

// buildMultibootTest assembles testdata/mbtest/NAME.S (GNU as and ld)
// into an ELF32 Multiboot kernel in dir and returns its bytes.
func buildMultibootTest(t *testing.T, dir, name string) []byte {
	t.Helper()
	src, _ := filepath.Abs("testdata/mbtest")
	obj, elf := filepath.Join(dir, name+".o"), filepath.Join(dir, name+".elf")
	for _, c := range [][]string{
		{"as", "--32", "-o", obj, filepath.Join(src, name+".S")},
		{"ld", "-m", "elf_i386", "--no-warn-rwx-segments", "-T", filepath.Join(src, "link.ld"), "-o", elf, obj},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s(GNU binutils are needed: apt-get install binutils)", c, err, out)
		}
	}
	b, err := os.ReadFile(elf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeBundle writes files and keel.conf into dir and packs them into a
// boot bundle, returning its path.
func writeBundle(t *testing.T, dir, conf string, files map[string][]byte) string {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "keel.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle.cpio")
	if err := pack.Create(pack.Options{Config: cfg, Output: out}); err != nil {
		t.Fatalf("building the bundle: %v", err)
	}
	return out
}

// multibootBundle builds the bundle of the Multiboot tests: mb (command
// line, module, debug-exit), broken (garbage) and mbp (waits for the power
// button).
func multibootBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	kernel := buildMultibootTest(t, dir, "mbtest")
	power := buildMultibootTest(t, dir, "mbpower")
	return writeBundle(t, dir, `
[vm mb]
kernel = mbtest.elf
cmdline = "hello=world x"
modules = mod.txt "mod.txt modarg"
memory = 32M
devices = serial, pic, ioapic, pmtimer, debug-exit
debug-exit = 0xf4
autostart = yes

[vm broken]
kernel = junk.bin
memory = 32M
autostart = yes

[vm mbp]
kernel = mbpower.elf
memory = 32M
autostart = yes
`, map[string][]byte{"mbtest.elf": kernel, "mbpower.elf": power, "mod.txt": []byte("MODULE-CONTENTS-1234\n"), "junk.bin": make([]byte, 9000)})
}

// TestGuestResetRestarts boots a guest that resets its machine through
// port 0xCF9 as soon as it runs: Keel restarts the VM each time, up to its
// limit of restarts in a row (kernel/manager.MAX_RESTARTS), then leaves it
// stopped with the reason.
func TestGuestResetRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bundle := writeBundle(t, dir, `
[vm mbr]
kernel = mbreset.elf
memory = 32M
autostart = yes
`, map[string][]byte{"mbreset.elf": buildMultibootTest(t, dir, "mbreset")})
	vm := Start(t, keelArgs(KernelPath(t), "1G", 2, "-initrd", bundle)...)
	vm.Expect(`\[mbr\] mbreset: resetting the machine`, bootTimeout)
	vm.Expect(`keel: vm mbr stopped: the guest reset the machine`, stepTimeout)
	vm.Expect(`keel: vm mbr started`, stepTimeout)
	vm.Expect(`\[mbr\] mbreset: resetting the machine`, stepTimeout)
	// 1 start by autostart + 16 restarts, then it stays stopped.
	vm.Expect(`keel: vm mbr: reset \d+ times in a row; left stopped\n`, 2*stepTimeout)
	starts := strings.Count(vm.Console(), "keel: vm mbr started")
	if starts != 17 {
		t.Errorf("the VM started %d times, want 17 (autostart and 16 restarts)", starts)
	}
	vm.Send("vm info mbr\r")
	vm.Expect(`(?m)^state: +stopped`, stepTimeout)
	vm.Expect(`(?m)^last: +the guest reset the machine`, stepTimeout)
}

// TestMultibootGuestBochs runs the Multiboot guests on the VMX backend:
// Keel boots from a GRUB ISO under Bochs with the bundle as a module2, the
// guests print and exit as under QEMU, and `vm stop` (from keel.run, as
// Bochs has no serial input here) shuts mbp down through its power button.
func TestMultibootGuestBochs(t *testing.T) {
	t.Parallel()
	bundle := multibootBundle(t)
	iso := filepath.Join(t.TempDir(), "keel-guests.iso")
	if err := media.BuildISO(media.Options{Kernel: KernelPath(t), Bundle: bundle, Cmdline: `keel.run="vm stop mbp; vm list; poweroff"`}, iso); err != nil {
		t.Fatalf("building the ISO image: %v", err)
	}
	vm := startBochs(t, iso, bochsCPUs)
	vm.Expect(`keel: ready .* virt=vmx `, bochsTimeout)
	vm.Expect(`keel: bundle: 3 VMs: broken, mb, mbp`, bochsTimeout)
	start := vm.Mark()
	vm.Expect(`\[mb\] mbtest: cmdline: hello=world x\n`, bochsTimeout)
	vm.Expect(`\[mb\] mbtest: module: mod.txt modarg contents: MODULE-CONTENTS-\n`, bochsTimeout)
	vm.Expect(`keel: vm mb stopped: the guest wrote to the debug-exit port 0xf4 \(status 67\)`, bochsTimeout)
	vm.Rewind(start)
	vm.Expect(`keel: autostart: vm "broken" not started`, bochsTimeout)
	vm.Rewind(start)
	vm.Expect(`\[mbp\] mbpower: power button pressed, entering S5`, bochsTimeout)
	vm.Expect(`keel: mbp shut down`, bochsTimeout)
	vm.Expect(`(?m)^backend vmx, 3 VMs`, bochsTimeout)
	if status := vm.Wait(exitTimeout); status != 1 {
		t.Errorf("Bochs exit status after poweroff = %d, want 1", status)
	}
}

// TestMultibootGuest boots a Multiboot kernel from the boot bundle with a
// command line and a module; it prints both through the emulated UART and
// exits through the debug-exit port with a known status. Beside it, a VM
// whose kernel is garbage is refused with a clear message, and Keel keeps
// running; and a third waits for the ACPI power button, which `vm stop`
// presses, after `vm console` has shown its output.
func TestMultibootGuest(t *testing.T) {
	t.Parallel()
	bundle := multibootBundle(t)

	vm := Start(t, keelArgs(KernelPath(t), "1G", 2, "-initrd", bundle)...)
	vm.Expect(`keel: bundle: 3 VMs: broken, mb, mbp`, bootTimeout)
	start := vm.Mark()
	vm.Expect(`keel: autostart: vm "broken" not started: .*neither a Linux bzImage .* nor a Multiboot kernel`, stepTimeout)
	vm.Rewind(start)
	vm.Expect(`\[mb\] mbtest: cmdline: hello=world x\n`, stepTimeout)
	vm.Expect(`\[mb\] mbtest: module: mod.txt modarg contents: MODULE-CONTENTS-\n`, stepTimeout)
	vm.Expect(`keel: vm mb stopped: the guest wrote to the debug-exit port 0xf4 \(status 67\)`, stepTimeout)
	vm.Expect(`\[mbp\] mbpower: waiting for the power button`, stepTimeout)
	vm.Send("vm info mb\r")
	vm.Expect(`(?m)^state: +stopped`, stepTimeout)
	vm.Expect(`(?m)^exits: +io=\d+`, stepTimeout)
	vm.Send("vm start broken\r")
	vm.Expect(`vm "broken" not started`, stepTimeout)

	// vm console shows what mbp printed while detached; Ctrl-]
	// detaches. vm stop presses the ACPI power button, and the guest
	// shuts down by itself.
	vm.Send("vm console mbp\r")
	vm.Expect(`keel: attached to mbp; Ctrl-\] detaches`, stepTimeout)
	vm.Expect(`mbpower: waiting for the power button`, stepTimeout)
	vm.Send("\x1d")
	vm.Expect(`keel: detached from mbp`, stepTimeout)
	stop := vm.Mark()
	vm.Send("vm stop mbp\r")
	vm.Expect(`\[mbp\] mbpower: power button pressed, entering S5`, stepTimeout)
	vm.Expect(`keel: mbp shut down`, stepTimeout)
	vm.Rewind(stop)
	vm.Expect(`keel: vm mbp stopped: the guest powered off \(ACPI S5\)`, stepTimeout)
	vm.Send("poweroff\r")
	if status := vm.Wait(exitTimeout); status != 0 {
		t.Errorf("QEMU exit status after poweroff = %d, want 0", status)
	}
}

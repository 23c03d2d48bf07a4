package qemutests

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// linuxTimeout bounds each step of a Linux boot under Keel (QEMU TCG,
// nested SVM, 2 cores shared with other tests).
const linuxTimeout = 6 * time.Minute

// guestFiles returns the reference guest's kernel and initramfs from
// KEEL_GUEST_DIR (make test builds them there with make bundle).
func guestFiles(t *testing.T) (kernel, initramfs []byte) {
	t.Helper()
	dir := os.Getenv("KEEL_GUEST_DIR")
	if dir == "" {
		t.Fatal("KEEL_GUEST_DIR is not set: run `make test` (it runs `make bundle`), or `make bundle` and set KEEL_GUEST_DIR=$PWD/build/guest")
	}
	var err error
	if kernel, err = os.ReadFile(filepath.Join(dir, "vmlinuz")); err != nil {
		t.Fatalf("%v: run `make bundle`", err)
	}
	if initramfs, err = os.ReadFile(filepath.Join(dir, "initramfs.cpio")); err != nil {
		t.Fatalf("%v: run `make bundle`", err)
	}
	return kernel, initramfs
}

// TestLinuxGuests boots Debian's kernel with the reference init in two VMs
// at once: one with 1 vCPU that sleeps 10 s between two clock readings,
// one with 2 vCPUs. Both reach userspace and see their CPUs; the first
// one's clock advances as Keel's does (within 1 %); both power off through
// ACPI and Keel reports it.
func TestLinuxGuests(t *testing.T) {
	t.Parallel()
	kernel, initramfs := guestFiles(t)
	cmdline := "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check 8250.nr_uarts=1 nokaslr"
	bundle := writeBundle(t, t.TempDir(), `
[vm lin1]
kernel = vmlinuz
initrd = initramfs.cpio
cmdline = "`+cmdline+` keel.sleep=10s"
memory = 256M
vcpus = 1
autostart = yes

[vm lin2]
kernel = vmlinuz
initrd = initramfs.cpio
cmdline = "`+cmdline+`"
memory = 256M
vcpus = 2
autostart = yes
`, map[string][]byte{"vmlinuz": kernel, "initramfs.cpio": initramfs})

	vm := Start(t, keelArgs(KernelPath(t), "2G", 2, "-initrd", bundle)...)
	vm.Expect(`keel: bundle: 2 VMs: lin1, lin2`, bootTimeout)
	vm.Expect(`keel: vm lin1 started: 1 vCPUs`, stepTimeout)
	vm.Expect(`keel: vm lin2 started: 2 vCPUs`, stepTimeout)

	// lin1: its first clock reading, then Keel's uptime of the VM.
	m := vm.Expect(`\[lin1\] keel-guest: clock realtime=\S+ monotonic=(\d+)\n`, linuxTimeout)
	mono1 := parseNanos(t, m[1])
	mark := vm.Mark()
	vm.Send("vm info lin1\r")
	u1 := parseUptime(t, vm.Expect(`(?m)^uptime: +(\S+)\n`, stepTimeout)[1])
	vm.Rewind(mark)
	m = vm.Expect(`\[lin1\] keel-guest: clock realtime=\S+ monotonic=(\d+)\n`, linuxTimeout)
	mono2 := parseNanos(t, m[1])
	mark = vm.Mark()
	vm.Send("vm info lin1\r")
	u2 := parseUptime(t, vm.Expect(`(?m)^uptime: +(\S+)\n`, stepTimeout)[1])
	vm.Rewind(mark)
	guest, keel := time.Duration(mono2-mono1), u2-u1
	ratio := guest.Seconds() / keel.Seconds()
	t.Logf("lin1 clock: guest %v, Keel %v, ratio %.4f", guest, keel, ratio)
	if guest < 10*time.Second || math.Abs(ratio-1) > 0.01 {
		t.Errorf("over the guest's 10 s sleep its clock advanced %v while Keel's advanced %v (ratio %.4f), want within 1%%", guest, keel, ratio)
	}

	vm.Rewind(0)
	vm.Expect(`\[lin1\] keel-guest: userspace up`, linuxTimeout)
	vm.Expect(`\[lin1\] keel-guest: nproc=1\n`, stepTimeout)
	vm.Rewind(0)
	vm.Expect(`\[lin2\] keel-guest: userspace up`, linuxTimeout)
	vm.Expect(`\[lin2\] keel-guest: nproc=2\n`, stepTimeout)
	vm.Rewind(0)
	vm.Expect(`keel: vm lin2 stopped: the guest powered off \(ACPI S5\)`, linuxTimeout)
	vm.Rewind(0)
	vm.Expect(`keel: vm lin1 stopped: the guest powered off \(ACPI S5\)`, linuxTimeout)
	vm.Send("vm list\r")
	vm.Expect(`(?m)^lin1 +stopped +vcpus=1 mem=256M backend=svm exits: .*io=\d+`, stepTimeout)
	vm.Send("poweroff\r")
	if status := vm.Wait(exitTimeout); status != 0 {
		t.Errorf("QEMU exit status after poweroff = %d, want 0", status)
	}
}

// parseUptime parses `vm info`'s uptime (a Go duration).
func parseUptime(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("uptime %q: %v", s, err)
	}
	return d
}


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
// at once: one with 1 vCPU and 4.5 GiB (memory above 4 GiB, past the PCI
// hole) that sleeps 10 s between two clock readings, one with 2 vCPUs. Both reach userspace and see their CPUs; the first
// one's clock advances as Keel's does (within 1 %); both power off through
// ACPI and Keel reports it.
func TestLinuxGuests(t *testing.T) {
	t.Parallel()
	kernel, initramfs := guestFiles(t)
	cmdline := guestCmdline
	bundle := writeBundle(t, t.TempDir(), `
[vm lin1]
kernel = vmlinuz
initrd = initramfs.cpio
cmdline = "`+cmdline+` keel.sleep=10s"
memory = 4608M
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

	vm := Start(t, keelArgs(KernelPath(t), "6G", 2, "-initrd", bundle)...)
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
	// 4.5 GiB: 3 GiB below the PCI hole, 1.5 GiB above 4 GiB; Linux
	// keeps some for itself, but more than 4 GiB must arrive.
	if kb := parseNanos(t, vm.Expect(`\[lin1\] keel-guest: memtotal=(\d+)kB\n`, stepTimeout)[1]); kb < 4<<20 {
		t.Errorf("lin1 sees %d KiB of memory, want more than 4 GiB of its 4.5 GiB", kb)
	}
	vm.Rewind(0)
	vm.Expect(`\[lin2\] keel-guest: userspace up`, linuxTimeout)
	vm.Expect(`\[lin2\] keel-guest: nproc=2\n`, stepTimeout)
	vm.Rewind(0)
	vm.Expect(`keel: vm lin2 stopped: the guest powered off \(ACPI S5\)`, linuxTimeout)
	vm.Rewind(0)
	vm.Expect(`keel: vm lin1 stopped: the guest powered off \(ACPI S5\)`, linuxTimeout)
	vm.Send("vm list\r")
	vm.Expect(`(?m)^lin1 +stopped +vcpus=1 mem=4608M backend=svm exits: .*io=\d+`, stepTimeout)
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

// guestCmdline is the reference guest's command line (guest/bundle/keel.conf).
const guestCmdline = "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check 8250.nr_uarts=1 nokaslr"

// TestLinuxBootTimes is `make bench`'s guest boot figure: seconds from VM
// start to the reference guest's userspace marker under Keel (QEMU TCG,
// nested SVM), beside the same kernel and initramfs booted directly by
// QEMU TCG in the same run (from QEMU's start, firmware included), as a
// ratio of medians of 5 runs each. A measurement: it runs only with
// KEEL_BENCH=1.
func TestLinuxBootTimes(t *testing.T) {
	if os.Getenv("KEEL_BENCH") != "1" {
		t.Skip("a measurement: run `make bench` (KEEL_BENCH=1)")
	}
	kernel, initramfs := guestFiles(t)
	dir := t.TempDir()
	bundle := writeBundle(t, dir, `
[vm demo]
kernel = vmlinuz
initrd = initramfs.cpio
cmdline = "`+guestCmdline+`"
memory = 256M
vcpus = 2
autostart = yes
`, map[string][]byte{"vmlinuz": kernel, "initramfs.cpio": initramfs})
	const runs = 5
	var keel, direct []time.Duration
	for i := 0; i < runs; i++ {
		vm := Start(t, keelArgs(KernelPath(t), "2G", 2, "-initrd", bundle)...)
		vm.Expect(`keel: vm demo started`, bootTimeout)
		t0 := vm.Elapsed()
		vm.Expect(`\[demo\] keel-guest: userspace up`, linuxTimeout)
		keel = append(keel, vm.Elapsed()-t0)
		vm.Kill()

		q := Start(t, "-machine", "q35", "-cpu", "max", "-m", "256M", "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
			"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, "initramfs.cpio"), "-append", guestCmdline)
		q.Expect(`keel-guest: userspace up`, linuxTimeout)
		direct = append(direct, q.Elapsed())
		q.Kill()
	}
	secs := func(ds []time.Duration) []float64 {
		var v []float64
		for _, d := range ds {
			v = append(v, d.Seconds())
		}
		return v
	}
	mk, md := median(secs(keel)), median(secs(direct))
	t.Logf("\nVM start to `keel-guest: userspace up`, Debian %s, 2 vCPUs, 256 MiB, median of %d:\n  under Keel (QEMU TCG, nested SVM): %.2f s %v\n  directly on QEMU TCG (from QEMU start): %.2f s %v\n  ratio: %.2f",
		"6.1", runs, mk, keel, md, direct, mk/md)
}

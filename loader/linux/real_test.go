package linux_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/linux"
)

// TestRealBzImage loads the bzImage named by $KEEL_TEST_BZIMAGE (for
// example a distribution's /boot/vmlinuz-*) into 1 GiB of RAM and checks
// the kernel, zero page and entry point. Skipped without the variable.
func TestRealBzImage(t *testing.T) {
	path := os.Getenv("KEEL_TEST_BZIMAGE")
	if path == "" {
		t.Skip("set KEEL_TEST_BZIMAGE to a bzImage to run")
	}
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := linux.Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", path, h)

	m := testmem.Flat(0, 1*GiB)
	initrd := bytes.Repeat([]byte("07070100"), 4096)
	cfg := linux.Config{Kernel: img, Initrd: initrd, Cmdline: "console=ttyS0 earlyprintk=serial panic=-1", ACPIRSDP: 0xF0000}
	r, err := linux.Load(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r)
	checkWrites(t, m, r, nil)

	load := r.Regs.RIP - linux.STARTUP_64_OFFSET
	if h.PrefAddress != 0 && load != h.PrefAddress {
		t.Errorf("kernel at %#x, want pref_address %#x", load, h.PrefAddress)
	}
	if h.Relocatable && load%uint64(h.KernelAlignment) != 0 {
		t.Errorf("kernel at %#x is not aligned to kernel_alignment %#x", load, h.KernelAlignment)
	}
	kernel := img[h.KernelOffset:]
	for _, off := range []int{0, linux.STARTUP_64_OFFSET, len(kernel) / 2, len(kernel) - 64} {
		if got := m.Read(load+uint64(off), 64); !bytes.Equal(got, kernel[off:off+64]) {
			t.Errorf("kernel bytes at +%#x differ", off)
		}
	}
	zp := m.Read(linux.ZERO_PAGE_ADDR, linux.BOOT_PARAMS_SIZE)
	if !bytes.Equal(zp[linux.HDR_HEADER:linux.HDR_HEADER+4], []byte("HdrS")) || le.Uint16(zp[linux.HDR_VERSION:]) != h.Version {
		t.Error("the setup header is not in the zero page")
	}
	if got := le.Uint32(zp[linux.HDR_RAMDISK_SIZE:]); got != uint32(len(initrd)) {
		t.Errorf("ramdisk_size %d", got)
	}
	ramdisk := uint64(le.Uint32(zp[linux.HDR_RAMDISK_IMAGE:]))
	if ramdisk+uint64(len(initrd)) > uint64(h.InitrdAddrMax)+1 || !bytes.Equal(m.Read(ramdisk, uint64(len(initrd))), initrd) {
		t.Errorf("initrd at %#x is wrong or above initrd_addr_max %#x", ramdisk, h.InitrdAddrMax)
	}
	if n := zp[linux.BP_E820_ENTRIES]; n != 4 {
		t.Errorf("e820_entries %d, want 4", n)
	}
}

package linux_test

import (
	"testing"

	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/linux"
)

// fuzzImage assembles a bzImage from fuzz input: setupLen bytes of setup
// area, zero but for head copied at 0x1F1 (the setup header, all the
// loader reads), then payloadLen bytes of protected-mode kernel. Only the
// header's bytes and the two lengths affect the loader, so this reaches
// every image it can be given, while keeping inputs small enough for the
// fuzzer's quadratic minimizer.
func fuzzImage(head []byte, setupLen, payloadLen uint16) []byte {
	img := make([]byte, int(setupLen)+int(payloadLen))
	if int(setupLen) > linux.HDR_SETUP_SECTS {
		copy(img[linux.HDR_SETUP_SECTS:setupLen], head)
	}
	for i := range int(payloadLen) {
		img[int(setupLen)+i] = payloadByte(i)
	}
	return img
}

// FuzzLinux loads arbitrary images (see fuzzImage) into a VM with RAM
// below 40 MiB and above 4 GiB and ACPI tables at 32 MiB. Whatever the
// input, the loader must not panic, must not write outside RAM or over the
// reserved ranges, must write nothing when it refuses an image, and when it
// accepts one must write only inside what it reports as placed and enter
// the kernel's 64-bit entry point.
func FuzzLinux(f *testing.F) {
	small := bzDefault().with(func(o *bz) { o.setupSects = 1; o.kernelSize = 0x240; o.initSize = 0x10000 })
	for _, o := range []bz{
		small,
		small.with(func(o *bz) { o.setupSects = 0 }),
		small.with(func(o *bz) { o.relocatable = false }),
		small.with(func(o *bz) { o.prefAddress = 0 }),
		small.with(func(o *bz) { o.initSize = 24 * MiB }),
		small.with(func(o *bz) { o.initrdAddrMax = 0x1FFFFFF }),
		small.with(func(o *bz) { o.version = 0x0206 }),
		small.with(func(o *bz) { o.jumpLen = 0 }),
	} {
		img := o.image()
		setup := len(img) - o.kernelSize
		f.Add(img[linux.HDR_SETUP_SECTS:linux.BP_EDD_MBR_SIG_BUFFER], uint16(setup), uint16(o.kernelSize), "console=ttyS0", uint16(5000), uint32(0))
	}
	f.Add([]byte{}, uint16(0), uint16(0), "", uint16(0), uint32(0))
	f.Add([]byte{1}, uint16(0x300), uint16(0), "a", uint16(1), uint32(0x9000))

	acpi := loader.MapEntry{Range: rg(32*MiB, 64*KiB), Type: loader.E820_TYPE_ACPI}
	f.Fuzz(func(t *testing.T, head []byte, setupLen, payloadLen uint16, cmdline string, initrdLen uint16, resBase uint32) {
		image := fuzzImage(head, setupLen, payloadLen)
		m := testmem.New(0, rg(0, 40*MiB), rg(4*GiB, 16*MiB))
		reserved := []loader.MapEntry{acpi}
		if resBase != 0 {
			reserved = append(reserved, loader.MapEntry{Range: rg(uint64(resBase)&^0xFFF, 0x1000), Type: loader.E820_TYPE_RESERVED})
		}
		r, err := linux.Load(m, linux.Config{Kernel: image, Cmdline: cmdline, Initrd: make([]byte, initrdLen), Reserved: reserved})
		if len(m.Outside) > 0 {
			t.Fatalf("writes outside RAM: %v", m.Outside)
		}
		for _, w := range m.Writes {
			for _, res := range reserved {
				if res.Range.Overlaps(w) {
					t.Fatalf("write %s overlaps reserved %s", w, res)
				}
			}
		}
		if err != nil {
			if len(m.Writes) > 0 {
				t.Fatalf("refused (%v) but wrote %v", err, m.Writes)
			}
			return
		}
		checkWrites(t, m, r, reserved)
		var kernel *loader.Placement
		for i := range r.Placed {
			if r.Placed[i].Name == "kernel" {
				kernel = &r.Placed[i]
			}
		}
		if kernel == nil || r.Regs.RIP != kernel.Range.Base+linux.STARTUP_64_OFFSET {
			t.Fatalf("rip %#x is not the 64-bit entry of the kernel placement %v", r.Regs.RIP, kernel)
		}
		if !m.IsRAM(r.Regs.RIP, 1) || r.Regs.RIP >= 4*GiB {
			t.Fatalf("rip %#x is not identity-mapped RAM", r.Regs.RIP)
		}
	})
}

package multiboot_test

import (
	"testing"

	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/multiboot"
)

// FuzzMultiboot loads arbitrary images with up to three modules into a VM
// with 16 MiB of RAM and ACPI tables at 14 MiB. Whatever the input, the
// loader must not panic, must not write outside RAM or over the reserved
// range, must write nothing when it refuses an image, and when it accepts
// one must write only inside what it reports as placed, enter inside the
// kernel and pass the boot information in EBX.
func FuzzMultiboot(f *testing.F) {
	tiny := elfImage{
		class: 32, entry: 0x100004, mbFlags: multiboot.MULTIBOOT_PAGE_ALIGN | multiboot.MULTIBOOT_MEMORY_INFO, dataAt: 0x100,
		segs: []seg{
			{vaddr: 0x100000, paddr: 0x100000, data: pattern(0x40, 1)},
			{vaddr: 0x101000, paddr: 0x101000, data: pattern(0x10, 2), memsz: 0x2000},
		},
	}
	tiny64 := tiny
	tiny64.class, tiny64.entry = 64, 0xFFFFFFFF80100004
	tiny64.segs = []seg{{vaddr: 0xFFFFFFFF80100000, paddr: 0x100000, data: pattern(0x40, 1), memsz: 0x1000}}
	for _, o := range []elfImage{tiny, tiny64} {
		img, _ := o.build()
		f.Add(img, "console=ttyS0", uint16(100), uint8(2))
	}
	f.Add(aoutImage(0x200, [5]uint32{0x101040, 0x101000, 0x101100, 0x103000, 0x101080}), "", uint16(5000), uint8(1))
	f.Add(aoutImage(0x200, [5]uint32{0x101040, 0x101000, 0, 0, 0x101080}), "x", uint16(0), uint8(3))
	f.Add([]byte{}, "", uint16(0), uint8(0))

	acpi := loader.MapEntry{Range: rg(14*MiB, 64*KiB), Type: loader.E820_TYPE_ACPI}
	f.Fuzz(func(t *testing.T, image []byte, cmdline string, modLen uint16, nmods uint8) {
		m := testmem.Flat(0, 16*MiB)
		mods := make([]multiboot.Module, nmods%4)
		for i := range mods {
			mods[i] = multiboot.Module{Data: make([]byte, modLen), Cmdline: cmdline}
		}
		reserved := []loader.MapEntry{acpi}
		r, err := multiboot.Load(m, multiboot.Config{Kernel: image, Cmdline: cmdline, Modules: mods, Reserved: reserved})
		if len(m.Outside) > 0 {
			t.Fatalf("writes outside RAM: %v", m.Outside)
		}
		for _, w := range m.Writes {
			if acpi.Range.Overlaps(w) {
				t.Fatalf("write %s overlaps reserved %s", w, acpi)
			}
		}
		if err != nil {
			if len(m.Writes) > 0 {
				t.Fatalf("refused (%v) but wrote %v", err, m.Writes)
			}
			return
		}
		checkWrites(t, m, r, reserved)
		inKernel, infoOK := false, false
		for _, p := range r.Placed {
			switch {
			case p.Name == "boot info":
				infoOK = p.Range.Base == r.Regs.GPR[arch.RBX]
			case p.Name == "image" || len(p.Name) > 8 && p.Name[:8] == "segment ":
				inKernel = inKernel || p.Range.Contains(r.Regs.RIP)
			}
		}
		if !inKernel || !infoOK || r.Regs.GPR[arch.RAX] != multiboot.MULTIBOOT_BOOTLOADER_MAGIC {
			t.Fatalf("entry eip %#x eax %#x ebx %#x does not match the placements %v", r.Regs.RIP, r.Regs.GPR[arch.RAX], r.Regs.GPR[arch.RBX], r.Placed)
		}
	})
}

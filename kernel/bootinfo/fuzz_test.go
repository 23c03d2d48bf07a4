package bootinfo

import (
	"reflect"
	"strings"
	"testing"
)

// fuzzBase is where fuzz inputs are placed in the fake physical memory;
// seeds build their pointers against it.
const fuzzBase = 0x10000

func FuzzMultiboot2(f *testing.F) {
	f.Add(grubLike())
	f.Add(mb2Info(mb2End()))
	f.Add(mb2Info(mb2Meminfo(639, 1024), mb2EFI64(0x7fb3e018), mb2Tag(MULTIBOOT_TAG_TYPE_ACPI_NEW, rsdpBytes(36)), mb2End()))
	f.Add(mb2Info(mb2Mmap(32, qemuQ35...), mb2Module(1, 2, "m"), mb2End()))
	f.Add([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseMultiboot2(memAt(fuzzBase, data), fuzzBase)
		if err == nil {
			checkInfo(t, info)
		}
	})
}

func FuzzMultiboot1(f *testing.F) {
	all := uint32(MULTIBOOT_INFO_MEMORY | MULTIBOOT_INFO_CMDLINE | MULTIBOOT_INFO_MODS | MULTIBOOT_INFO_MEM_MAP | MULTIBOOT_INFO_BOOT_LOADER_NAME)

	for _, m := range []mb1{
		{flags: all, lower: 639, upper: 2096000, cmdline: "/keel.elf a=b", loader: "GRUB", mods: []Module{{Base: 0x100000, Size: 10, Cmdline: "m"}}, mmap: qemuQ35},
		{flags: MULTIBOOT_INFO_MEM_MAP, mmap: qemuQ35[:3], mmapStride: 24},
		{flags: MULTIBOOT_INFO_MEMORY, lower: 640, upper: 0xffffffff},
	} {
		im, _ := m.build(fuzzBase)
		f.Add(im.b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseMultiboot1(memAt(fuzzBase, data), fuzzBase)
		if err == nil {
			checkInfo(t, info)
		}
	})
}

func FuzzPVH(f *testing.F) {
	for _, p := range []pvhInfo{
		{magic: XEN_HVM_START_MAGIC_VALUE, version: 1, cmdline: "console=ttyS0", rsdp: 0xf5a00, mods: []Module{{Base: 1, Size: 2, Cmdline: "x"}}, mmap: qemuQ35},
		{magic: XEN_HVM_START_MAGIC_VALUE, version: 0, cmdline: "v0"},
	} {
		im, _ := p.build(fuzzBase)
		f.Add(im.b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParsePVH(memAt(fuzzBase, data), fuzzBase)
		if err == nil {
			checkInfo(t, info)
		}
	})
}

func FuzzCmdline(f *testing.F) {
	for _, s := range []string{
		"",
		`console=ttyS0 keel.run="vm start web; vm list" quiet`,
		`/boot/keel.elf "keel.run=a; b" x=it\'s`,
		`a="unterminated`,
		`=x \"`,
		`a\`,
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, s string) {
		c, _ := ParseCmdline(s)

		// Property: writing the options back, each quoted and escaped,
		// and parsing again gives the same options.
		var parts []string
		for _, o := range c.Options {
			if o.Key == "" {
				t.Fatalf("ParseCmdline(%q) produced an option with an empty key: %#v", s, o)
			}
			parts = append(parts, quoteOption(o))
		}

		again, err := ParseCmdline(strings.Join(parts, " "))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", strings.Join(parts, " "), err)
		}

		if !reflect.DeepEqual(again.Options, c.Options) {
			t.Fatalf("round trip of %q: got %#v, want %#v", s, again.Options, c.Options)
		}
	})
}

func FuzzSanitize(f *testing.F) {
	f.Add([]byte{})
	f.Add(mb2Mmap(24, qemuQ35...)[16:])

	f.Fuzz(func(t *testing.T, data []byte) {
		var rs []Region
		for len(data) >= 17 && len(rs) < 64 {
			rs = append(rs, Region{Base: le.Uint64(data), Size: le.Uint64(data[8:]), Type: RegionType(data[16] % 9)})
			data = data[17:]
		}

		out := Sanitize(rs)
		checkSanitized(t, out)

		// Every address of an input range is covered by the output, with
		// a type at least as restrictive.
		for _, r := range rs {
			if r.Size == 0 || r.End() == r.Base {
				continue
			}

			for _, a := range []uint64{r.Base, r.End() - 1} {
				found := false
				for _, o := range out {
					if o.Base <= a && a < o.End() {
						found = true
						if o.Type.rank() < r.Type.rank() {
							t.Fatalf("address %#x of %v has the weaker type %v in %v", a, r, o.Type, out)
						}
					}
				}

				if !found {
					t.Fatalf("address %#x of %v missing from %v", a, r, out)
				}
			}
		}
	})
}

package bootinfo

import (
	"reflect"
	"strings"
	"testing"
)

// qemuQ35 is the memory map QEMU 7.2 hands a PVH kernel for
// `-machine q35 -m 2G` (as recorded in kernel/pc/pvh's tests).
var qemuQ35 = []Region{
	{Base: 0, Size: 0x9fc00, Type: RAM},
	{Base: 0x9fc00, Size: 0x400, Type: Reserved},
	{Base: 0xf0000, Size: 0x10000, Type: Reserved},
	{Base: 0x100000, Size: 0x7fedf000, Type: RAM},
	{Base: 0x7ffdf000, Size: 0x21000, Type: Reserved},
	{Base: 0xb0000000, Size: 0x10000000, Type: Reserved},
	{Base: 0xfed1c000, Size: 0x4000, Type: Reserved},
	{Base: 0xfffc0000, Size: 0x40000, Type: Reserved},
	{Base: 0xfd00000000, Size: 0x300000000, Type: Reserved},
}

func TestParsePVH(t *testing.T) {
	tests := []struct {
		name  string
		p     pvhInfo
		check func(t *testing.T, info *Info)
	}{
		{
			name: "QEMU q35 2G",
			p: pvhInfo{
				magic: XEN_HVM_START_MAGIC_VALUE, version: 1, cmdline: `console=ttyS0 keel.run="vm list; help"`, rsdp: 0xf5a00,
				mods: []Module{{Base: 0x2000000, Size: 0x123456, Cmdline: "initrd"}, {Base: 0x3000000, Size: 0x10}},
				mmap: qemuQ35,
			},
			check: func(t *testing.T, info *Info) {
				want := &Info{
					Protocol: ProtocolPVH, Cmdline: `console=ttyS0 keel.run="vm list; help"`, RSDPAddr: 0xf5a00,
					Memory: qemuQ35, RawMemory: qemuQ35,
					Modules: []Module{{Base: 0x2000000, Size: 0x123456, Cmdline: "initrd"}, {Base: 0x3000000, Size: 0x10}},
				}
				if !reflect.DeepEqual(info, want) {
					t.Errorf("ParsePVH() =\n%+v\nwant\n%+v", info, want)
				}

				if got, want := info.RAM(), uint64(0x9fc00+0x7fedf000); got != want {
					t.Errorf("RAM() = %#x, want %#x", got, want)
				}

				if got := info.MaxAddr(); got != 0x7ffdf000 {
					t.Errorf("MaxAddr() = %#x, want 0x7ffdf000", got)
				}

				if !info.Covers(0x04000000, 0x08000000) {
					t.Errorf("Covers(kernel load area) = false")
				}
			},
		},
		{
			name: "version 0 has no memory map",
			p:    pvhInfo{magic: XEN_HVM_START_MAGIC_VALUE, version: 0, mmap: qemuQ35},
			check: func(t *testing.T, info *Info) {
				if info.Memory != nil || !hasWarning(info, "version 0") {
					t.Errorf("Memory = %v, warnings %q", info.Memory, info.Warnings)
				}
			},
		},
		{
			name: "future version read as version 1",
			p:    pvhInfo{magic: XEN_HVM_START_MAGIC_VALUE, version: 2, mmap: qemuQ35[:1]},
			check: func(t *testing.T, info *Info) {
				if !reflect.DeepEqual(info.Memory, qemuQ35[:1]) {
					t.Errorf("Memory = %v", info.Memory)
				}
			},
		},
		{
			name: "no memory map entries",
			p:    pvhInfo{magic: XEN_HVM_START_MAGIC_VALUE, version: 1},
			check: func(t *testing.T, info *Info) {
				if !hasWarning(info, "empty memory map") {
					t.Errorf("warnings %q", info.Warnings)
				}
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, addr := tt.p.build(0x6000)

			info, err := ParsePVH(im.mem(), addr)
			if err != nil {
				t.Fatalf("ParsePVH() error = %v", err)
			}

			checkInfo(t, info)
			tt.check(t, info)
		})
	}
}

func TestParsePVHErrors(t *testing.T) {
	good := pvhInfo{
		magic: XEN_HVM_START_MAGIC_VALUE, version: 1, cmdline: "x",
		mods: []Module{{Base: 0x100000, Size: 0x1000, Cmdline: "m"}},
		mmap: qemuQ35[:2],
	}

	set32 := func(off int, v uint32) func(im *image, addr uint64) {
		return func(im *image, addr uint64) { le.PutUint32(im.at(addr)[off:], v) }
	}

	set64 := func(off int, v uint64) func(im *image, addr uint64) {
		return func(im *image, addr uint64) { le.PutUint64(im.at(addr)[off:], v) }
	}

	tests := []struct {
		name    string
		patch   func(im *image, addr uint64)
		mem     func(im *image) Memory
		wantErr string
	}{
		{name: "bad magic", patch: set32(0, 0x2badb002), wantErr: "magic is 0x2badb002"},
		{name: "start info unreadable", mem: func(im *image) Memory { return memAt(0x100, nil) }, wantErr: "cannot read the start info at 0x6000"},
		{name: "v1 start info cut off", mem: func(im *image) Memory { return memAt(im.base, im.b[:48]) }, wantErr: "cannot read the version 1 start info at 0x6000 (56 bytes)"},
		{name: "cmdline outside memory", patch: set64(24, 0x7ff00000), wantErr: "command line at 0x7ff00000"},
		{name: "cmdline unterminated", patch: func(im *image, addr uint64) {
			str := im.alloc([]byte(strings.Repeat("c", MAX_CMDLINE+1)), 1)
			le.PutUint64(im.at(addr)[24:], str)
		}, wantErr: "no NUL within 4097 bytes"},
		{name: "too many modules", patch: set32(12, MAX_MODULES+1), wantErr: "claims 257 modules"},
		{name: "module list at 0", patch: set64(16, 0), wantErr: "module list address is 0"},
		{name: "module list outside memory", patch: set64(16, 0x10), wantErr: "cannot read the 1-entry module list at 0x10"},
		{name: "module wraps", patch: func(im *image, addr uint64) {
			list := le.Uint64(im.at(addr)[16:])
			le.PutUint64(im.at(list)[0:], 0xffffffffffff0000)
			le.PutUint64(im.at(list)[8:], 0x20000)
		}, wantErr: "module 0 at 0xffffffffffff0000 of size 0x20000 wraps"},
		{name: "module cmdline outside memory", patch: func(im *image, addr uint64) {
			list := le.Uint64(im.at(addr)[16:])
			le.PutUint64(im.at(list)[16:], 0x1)
		}, wantErr: "module 0 command line at 0x1"},
		{name: "too many memory map entries", patch: set32(48, MAX_MEMORY_ENTRIES+1), wantErr: "claims 1025 memory map entries"},
		{name: "memory map at 0", patch: set64(40, 0), wantErr: "2 memory map entries at address 0"},
		{name: "memory map cut off", patch: set32(48, 100), wantErr: "cannot read the 100-entry memory map"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im, addr := good.build(0x6000)
			if tt.patch != nil {
				tt.patch(im, addr)
			}

			var mem Memory = im.mem()
			if tt.mem != nil {
				mem = tt.mem(im)
			}

			_, err := ParsePVH(mem, addr)
			wantErr(t, err, tt.wantErr)
		})
	}
}

package linux_test

import (
	"encoding/binary"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/loader"
	"github.com/keel-hv/keel/loader/internal/testmem"
	"github.com/keel-hv/keel/loader/linux"
)

const (
	KiB = 1 << 10
	MiB = 1 << 20
	GiB = 1 << 30
)

var le = binary.LittleEndian

// bz describes a synthetic bzImage. The zero value of a field means the
// default that bzDefault sets.
type bz struct {
	setupSects    byte // as stored: 0 means 4
	jumpLen       byte // byte at 0x201
	version       uint16
	loadflags     byte
	xloadflags    uint16
	relocatable   bool
	kernelAlign   uint32
	prefAddress   uint64
	initSize      uint32
	cmdlineSize   uint32
	initrdAddrMax uint32
	kernelSize    int
	syssize       uint32 // 0: computed from kernelSize
}

// bzDefault is a protocol 2.15 relocatable 64-bit kernel of 64 KiB that
// wants 1 MiB at 16 MiB.
func bzDefault() bz {
	return bz{
		setupSects:    8,
		jumpLen:       0x6A,
		version:       0x020F,
		loadflags:     linux.LOADED_HIGH,
		xloadflags:    linux.XLF_KERNEL_64 | linux.XLF_CAN_BE_LOADED_ABOVE_4G,
		relocatable:   true,
		kernelAlign:   2 * MiB,
		prefAddress:   16 * MiB,
		initSize:      1 * MiB,
		cmdlineSize:   2047,
		initrdAddrMax: 0x7FFFFFFF,
		kernelSize:    64 * KiB,
	}
}

// payloadByte is the protected-mode kernel's byte at offset i.
func payloadByte(i int) byte { return byte(i*7 + i>>8 + 1) }

// image builds the bzImage: setup sectors of 0x5A with the setup header,
// then kernelSize bytes of payloadByte.
func (o bz) image() []byte {
	sects := int(o.setupSects)
	if sects == 0 {
		sects = linux.DEFAULT_SETUP_SECTS
	}
	setup := (sects + 1) * linux.SECTOR_SIZE
	b := make([]byte, setup+o.kernelSize)
	for i := range setup {
		b[i] = 0x5A
	}
	for i := range 0x80 { // the header area, zero where no field is set
		b[0x1F1+i] = 0
	}
	b[linux.HDR_SETUP_SECTS] = o.setupSects
	sys := o.syssize
	if sys == 0 {
		sys = uint32((o.kernelSize + 15) / 16)
	}
	le.PutUint32(b[linux.HDR_SYSSIZE:], sys)
	le.PutUint16(b[linux.HDR_BOOT_FLAG:], linux.BOOT_FLAG_MAGIC)
	b[linux.HDR_JUMP], b[linux.HDR_JUMP+1] = 0xEB, o.jumpLen
	le.PutUint32(b[linux.HDR_HEADER:], linux.HDR_MAGIC)
	le.PutUint16(b[linux.HDR_VERSION:], o.version)
	b[linux.HDR_LOADFLAGS] = o.loadflags
	le.PutUint32(b[linux.HDR_CODE32_START:], 0x100000)
	le.PutUint32(b[linux.HDR_INITRD_ADDR_MAX:], o.initrdAddrMax)
	le.PutUint32(b[linux.HDR_KERNEL_ALIGNMENT:], o.kernelAlign)
	if o.relocatable {
		b[linux.HDR_RELOCATABLE_KERNEL] = 1
	}
	b[linux.HDR_MIN_ALIGNMENT] = 21
	le.PutUint16(b[linux.HDR_XLOADFLAGS:], o.xloadflags)
	le.PutUint32(b[linux.HDR_CMDLINE_SIZE:], o.cmdlineSize)
	le.PutUint64(b[linux.HDR_SETUP_DATA:], 0xDEADBEEF) // stale junk the loader must clear
	le.PutUint32(b[linux.HDR_HARDWARE_SUBARCH:], 7)
	le.PutUint64(b[linux.HDR_PREF_ADDRESS:], o.prefAddress)
	le.PutUint32(b[linux.HDR_INIT_SIZE:], o.initSize)
	le.PutUint32(b[linux.HDR_KERNEL_INFO_OFFSET:], 0x1234)
	for i := range o.kernelSize {
		b[setup+i] = payloadByte(i)
	}
	return b
}

// with returns a copy of o changed by f.
func (o bz) with(f func(*bz)) bz { f(&o); return o }

func rg(base, size uint64) addr.Range { return addr.Range{Base: base, Size: size} }

// translate walks 4-level page tables at cr3 in m.
func translate(m *testmem.Mem, cr3, va uint64) (uint64, bool) {
	const frame = 0x000FFFFFFFFFF000
	table := cr3 & frame
	for level, shift := 4, uint(39); level >= 1; level, shift = level-1, shift-9 {
		e := le.Uint64(m.Read(table+8*((va>>shift)&511), 8))
		if e&linux.PTE_P == 0 {
			return 0, false
		}
		if level < 4 && level > 1 && e&linux.PTE_PS != 0 {
			mask := uint64(1)<<shift - 1
			return e&frame&^mask | va&mask, true
		}
		table = e & frame
	}
	return table | va&0xFFF, true
}

// checkWrites fails unless every write lies inside a placement of r and
// none went outside RAM or into reserved ranges.
func checkWrites(t *testing.T, m *testmem.Mem, r *loader.Result, reserved []loader.MapEntry) {
	t.Helper()
	if len(m.Outside) > 0 {
		t.Errorf("writes outside RAM: %v", m.Outside)
	}
	for _, w := range m.Writes {
		in := false
		for _, p := range r.Placed {
			if p.Range.Contains(w.Base) && w.Size <= p.Range.Size-(w.Base-p.Range.Base) {
				in = true
			}
		}
		if !in {
			t.Errorf("write %s lies in no placement of %v", w, r.Placed)
		}
		for _, res := range reserved {
			if res.Range.Overlaps(w) {
				t.Errorf("write %s overlaps reserved %s", w, res)
			}
		}
	}
}

package bootinfo

import (
	"encoding/binary"
	"github.com/keel-hv/keel/kernel/internal/fakemem"
	"sort"
	"strings"
	"testing"
)

// fakeMem is the shared test memory.
type fakeMem = fakemem.Mem

func memAt(base uint64, b []byte) *fakeMem {
	return (&fakeMem{}).Add(base, b)
}

var le = binary.LittleEndian

// image builds a memory image at a base address with a bump allocator, so
// structures can point at each other with real physical addresses.
type image struct {
	base uint64
	b    []byte
}

func newImage(base uint64) *image {
	return &image{base: base}
}

// alloc appends b, aligned to align, and returns its physical address.
func (im *image) alloc(b []byte, align int) uint64 {
	for len(im.b)%align != 0 {
		im.b = append(im.b, 0)
	}

	addr := im.base + uint64(len(im.b))
	im.b = append(im.b, b...)

	return addr
}

// str allocates a NUL-terminated string.
func (im *image) str(s string) uint64 {
	return im.alloc(append([]byte(s), 0), 1)
}

// at returns the bytes at physical address addr (for patching).
func (im *image) at(addr uint64) []byte {
	return im.b[addr-im.base:]
}

func (im *image) mem() *fakeMem {
	return memAt(im.base, im.b)
}

// mb2Tag builds one multiboot2 tag from its type and payload.
func mb2Tag(typ uint32, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	le.PutUint32(b[0:], typ)
	le.PutUint32(b[4:], uint32(8+len(payload)))

	return append(b, payload...)
}

func mb2String(typ uint32, s string) []byte {
	return mb2Tag(typ, append([]byte(s), 0))
}

func mb2Module(start, end uint32, s string) []byte {
	p := make([]byte, 8)
	le.PutUint32(p[0:], start)
	le.PutUint32(p[4:], end)

	return mb2Tag(MULTIBOOT_TAG_TYPE_MODULE, append(p, append([]byte(s), 0)...))
}

func mb2Meminfo(lower, upper uint32) []byte {
	p := make([]byte, 8)
	le.PutUint32(p[0:], lower)
	le.PutUint32(p[4:], upper)

	return mb2Tag(MULTIBOOT_TAG_TYPE_BASIC_MEMINFO, p)
}

func mb2Mmap(entrySize uint32, rs ...Region) []byte {
	// Entries are entrySize apart; room for a whole entry is kept even
	// when entrySize is too small, to build invalid maps.
	p := make([]byte, 8+len(rs)*int(entrySize)+24)
	le.PutUint32(p[0:], entrySize)
	le.PutUint32(p[4:], 0)

	for k, r := range rs {
		e := p[8+k*int(entrySize):]
		le.PutUint64(e[0:], r.Base)
		le.PutUint64(e[8:], r.Size)
		le.PutUint32(e[16:], uint32(r.Type))
		le.PutUint32(e[20:], 0xdeadbeef) // reserved, must be ignored
	}

	return mb2Tag(MULTIBOOT_TAG_TYPE_MMAP, p[:8+len(rs)*int(entrySize)])
}

func mb2EFI64(p uint64) []byte {
	b := make([]byte, 8)
	le.PutUint64(b, p)

	return mb2Tag(MULTIBOOT_TAG_TYPE_EFI64, b)
}

func mb2End() []byte {
	return mb2Tag(MULTIBOOT_TAG_TYPE_END, nil)
}

// mb2Info builds a multiboot2 boot information block from tags, padding
// each to 8 bytes and filling in total_size.
func mb2Info(tags ...[]byte) []byte {
	b := make([]byte, 8)

	for _, t := range tags {
		b = append(b, t...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
	}

	le.PutUint32(b[0:], uint32(len(b)))

	return b
}

// rsdpBytes returns a fake RSDP copy of n bytes (checksums are kernel/acpi's
// business; bootinfo copies the bytes).
func rsdpBytes(n int) []byte {
	b := make([]byte, n)
	copy(b, "RSD PTR ")

	for k := 8; k < n; k++ {
		b[k] = byte(k)
	}

	return b
}

// mb1 describes a multiboot_info to build.
type mb1 struct {
	flags      uint32
	lower      uint32
	upper      uint32
	cmdline    string
	loader     string
	mods       []Module
	mmap       []Region
	mmapStride uint32 // the entries' size field; 20 when zero
}

// build lays the structure out at base and returns the image and the
// address of the multiboot_info.
func (m mb1) build(base uint64) (*image, uint64) {
	im := newImage(base)
	info := make([]byte, 88)
	addr := im.alloc(info, 8)

	put := func(off int, v uint32) { le.PutUint32(im.at(addr)[off:], v) }

	put(MULTIBOOT_OFF_FLAGS, m.flags)
	put(MULTIBOOT_OFF_MEM_LOWER, m.lower)
	put(MULTIBOOT_OFF_MEM_UPPER, m.upper)

	if m.flags&MULTIBOOT_INFO_CMDLINE != 0 {
		put(MULTIBOOT_OFF_CMDLINE, uint32(im.str(m.cmdline)))
	}

	if m.flags&MULTIBOOT_INFO_BOOT_LOADER_NAME != 0 {
		put(MULTIBOOT_OFF_BOOT_LOADER_NAME, uint32(im.str(m.loader)))
	}

	if m.flags&MULTIBOOT_INFO_MODS != 0 {
		list := make([]byte, len(m.mods)*MULTIBOOT_MOD_LIST_SIZE)
		for k, mod := range m.mods {
			e := list[k*MULTIBOOT_MOD_LIST_SIZE:]
			le.PutUint32(e[0:], uint32(mod.Base))
			le.PutUint32(e[4:], uint32(mod.Base+mod.Size))
			le.PutUint32(e[8:], uint32(im.str(mod.Cmdline)))
		}

		put(MULTIBOOT_OFF_MODS_COUNT, uint32(len(m.mods)))
		put(MULTIBOOT_OFF_MODS_ADDR, uint32(im.alloc(list, 4)))
	}

	if m.flags&MULTIBOOT_INFO_MEM_MAP != 0 {
		stride := m.mmapStride
		if stride == 0 {
			stride = 20
		}

		var mm []byte
		for _, r := range m.mmap {
			e := make([]byte, 4+stride)
			le.PutUint32(e[0:], stride)
			le.PutUint64(e[4:], r.Base)
			le.PutUint64(e[12:], r.Size)
			le.PutUint32(e[20:], uint32(r.Type))
			mm = append(mm, e...)
		}

		put(MULTIBOOT_OFF_MMAP_LENGTH, uint32(len(mm)))
		put(MULTIBOOT_OFF_MMAP_ADDR, uint32(im.alloc(mm, 4)))
	}

	return im, addr
}

// pvhInfo describes an hvm_start_info to build.
type pvhInfo struct {
	magic   uint32
	version uint32
	cmdline string
	rsdp    uint64
	mods    []Module
	mmap    []Region
}

func (p pvhInfo) build(base uint64) (*image, uint64) {
	im := newImage(base)
	si := make([]byte, 56)
	addr := im.alloc(si, 8)
	s := func() []byte { return im.at(addr) }

	le.PutUint32(s()[0:], p.magic)
	le.PutUint32(s()[4:], p.version)
	le.PutUint64(s()[32:], p.rsdp)

	if p.cmdline != "" {
		str := im.str(p.cmdline)
		le.PutUint64(s()[24:], str)
	}

	if len(p.mods) > 0 {
		list := make([]byte, len(p.mods)*HVM_MODLIST_ENTRY_SIZE)
		for k, m := range p.mods {
			e := list[k*HVM_MODLIST_ENTRY_SIZE:]
			le.PutUint64(e[0:], m.Base)
			le.PutUint64(e[8:], m.Size)
			if m.Cmdline != "" {
				le.PutUint64(e[16:], im.str(m.Cmdline)) // e is in list, not in im
			}
		}

		listAddr := im.alloc(list, 8)
		le.PutUint32(s()[12:], uint32(len(p.mods)))
		le.PutUint64(s()[16:], listAddr)
	}

	if len(p.mmap) > 0 {
		mm := make([]byte, len(p.mmap)*24)
		for k, r := range p.mmap {
			e := mm[k*24:]
			le.PutUint64(e[0:], r.Base)
			le.PutUint64(e[8:], r.Size)
			le.PutUint32(e[16:], uint32(r.Type))
		}

		mmAddr := im.alloc(mm, 8)
		le.PutUint64(s()[40:], mmAddr)
		le.PutUint32(s()[48:], uint32(len(p.mmap)))
	}

	return im, addr
}

// checkInfo checks the invariants every successful parse must keep.
func checkInfo(t testing.TB, info *Info) {
	t.Helper()

	if len(info.Cmdline) > MAX_CMDLINE || len(info.Loader) > MAX_CMDLINE {
		t.Fatalf("string longer than %d bytes accepted", MAX_CMDLINE)
	}

	if len(info.Modules) > MAX_MODULES || len(info.RawMemory) > MAX_MEMORY_ENTRIES {
		t.Fatalf("%d modules, %d memory entries accepted", len(info.Modules), len(info.RawMemory))
	}

	checkSanitized(t, info.Memory)
}

// checkSanitized checks that rs is sorted, non-overlapping, without empty
// ranges and with adjacent ranges of one type merged.
func checkSanitized(t testing.TB, rs []Region) {
	t.Helper()

	if !sort.SliceIsSorted(rs, func(a, b int) bool { return rs[a].Base < rs[b].Base }) {
		t.Fatalf("map not sorted: %v", rs)
	}

	for k, r := range rs {
		if r.Size == 0 {
			t.Fatalf("empty range %v in %v", r, rs)
		}

		if k > 0 {
			p := rs[k-1]
			if r.Base < p.End() {
				t.Fatalf("ranges %v and %v overlap", p, r)
			}

			if r.Base == p.End() && r.Type == p.Type {
				t.Fatalf("ranges %v and %v not merged", p, r)
			}
		}
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()

	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}

	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

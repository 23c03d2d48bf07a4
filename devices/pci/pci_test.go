package pci

import (
	"errors"
	"testing"

	"github.com/keel-hv/keel/hv/bus"
)

type rig struct {
	t *testing.T
	h *Host
	b *bus.PortBus
}

func newRig(t *testing.T, cfg HostConfig) *rig {
	t.Helper()
	r := &rig{t: t, h: NewHost(cfg), b: bus.NewPortBus(bus.DefaultPolicy())}
	if err := r.b.Register(PORT_BASE, SIZE, r.h, "pci-host"); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) in(port uint16, n int) uint32 {
	r.t.Helper()
	d := make([]byte, n)
	if err := r.b.Read(port, d); err != nil {
		r.t.Fatal(err)
	}
	v := uint32(0)
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint32(d[i])
	}
	return v
}

func (r *rig) out(port uint16, n int, v uint32) {
	r.t.Helper()
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(v >> (8 * i))
	}
	if err := r.b.Write(port, d); err != nil {
		r.t.Fatal(err)
	}
}

func cfgAddr(dev, fn, reg int) uint32 {
	return CONFIG_ADDRESS_ENABLE | uint32(dev)<<CONFIG_ADDRESS_DEVICE_SHIFT | uint32(fn)<<CONFIG_ADDRESS_FUNCTION_SHIFT | uint32(reg)&0xfc
}

// cfgRead reads n bytes of 00:dev.fn at reg through mechanism #1.
func (r *rig) cfgRead(dev, fn, reg, n int) uint32 {
	r.out(PORT_BASE, 4, cfgAddr(dev, fn, reg))
	return r.in(PORT_BASE+4+uint16(reg&3), n)
}

func (r *rig) cfgWrite(dev, fn, reg, n int, v uint32) {
	r.out(PORT_BASE, 4, cfgAddr(dev, fn, reg))
	r.out(PORT_BASE+4+uint16(reg&3), n, v)
}

// TestLinuxProbe follows Linux's check for configuration mechanism #1 and
// its sanity check for a host bridge or an Intel device on bus 0.
func TestLinuxProbe(t *testing.T) {
	r := newRig(t, HostConfig{})
	r.out(0xcfb, 1, 0x01) // mechanism #2 enable: not a dword, ignored
	tmp := r.in(0xcf8, 4)
	r.out(0xcf8, 4, 0x80000000)
	if got := r.in(0xcf8, 4); got != 0x80000000 {
		t.Fatalf("CONFIG_ADDRESS reads %#x after writing 0x80000000", got)
	}
	found := false
	for devfn := 0; devfn < 0x100; devfn++ {
		class := r.cfgRead(devfn>>3, devfn&7, CFG_SUBCLASS, 2)
		vendor := r.cfgRead(devfn>>3, devfn&7, CFG_VENDOR_ID, 2)
		if class == CLASS_BRIDGE<<8|SUBCLASS_BRIDGE_HOST || vendor == VENDOR_INTEL {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no host bridge or Intel device on bus 0")
	}
	r.out(0xcf8, 4, tmp)
}

func TestHostBridgeIdentity(t *testing.T) {
	r := newRig(t, HostConfig{})
	for _, tc := range []struct {
		name   string
		reg, n int
		want   uint32
	}{
		{"vendor+device", CFG_VENDOR_ID, 4, DEVICE_INTEL_82441FX<<16 | VENDOR_INTEL},
		{"device word at CFEh", CFG_DEVICE_ID, 2, DEVICE_INTEL_82441FX},
		{"class dword", CFG_REVISION_ID, 4, CLASS_BRIDGE<<24 | SUBCLASS_BRIDGE_HOST<<16 | REVISION_82441FX},
		{"class byte at CFFh", CFG_CLASS_CODE, 1, CLASS_BRIDGE},
		{"header type", CFG_HEADER_TYPE, 1, HEADER_TYPE_NORMAL},
		{"command", CFG_COMMAND, 2, COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER},
		{"status", CFG_STATUS, 2, STATUS_DEVSEL_MEDIUM | STATUS_FAST_B2B},
		{"BAR0", CFG_BAR0, 4, 0},
		{"beyond header", 0x80, 4, 0},
	} {
		if got := r.cfgRead(0, 0, tc.reg, tc.n); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// Identity is read-only.
	r.cfgWrite(0, 0, CFG_VENDOR_ID, 4, 0)
	r.cfgWrite(0, 0, CFG_CLASS_CODE, 1, 0)
	if r.cfgRead(0, 0, CFG_VENDOR_ID, 2) != VENDOR_INTEL || r.cfgRead(0, 0, CFG_CLASS_CODE, 1) != CLASS_BRIDGE {
		t.Error("host bridge identity was writable")
	}
}

func TestAbsentAndDisabled(t *testing.T) {
	r := newRig(t, HostConfig{})
	for _, tc := range []struct {
		name string
		addr uint32
	}{
		{"absent device", cfgAddr(5, 0, 0)},
		{"absent function", cfgAddr(0, 1, 0)},
		{"other bus", cfgAddr(0, 0, 0) | 1<<CONFIG_ADDRESS_BUS_SHIFT},
		{"enable clear", cfgAddr(0, 0, 0) &^ CONFIG_ADDRESS_ENABLE},
	} {
		r.out(PORT_BASE, 4, tc.addr)
		r.out(PORT_BASE+4, 4, 0x12345678) // dropped
		if got := r.in(PORT_BASE+4, 4); got != 0xffffffff {
			t.Errorf("%s: reads %#x, want all-ones", tc.name, got)
		}
		if got := r.in(PORT_BASE+6, 2); got != 0xffff {
			t.Errorf("%s: word reads %#x", tc.name, got)
		}
	}
	// CONFIG_ADDRESS: reserved bits read 0; narrow accesses leave it.
	r.out(PORT_BASE, 4, 0xffffffff)
	if got := r.in(PORT_BASE, 4); got != CONFIG_ADDRESS_MASK {
		t.Errorf("CONFIG_ADDRESS after all-ones: %#x, want %#x", got, CONFIG_ADDRESS_MASK)
	}
	r.out(PORT_BASE, 2, 0)
	r.out(PORT_BASE+2, 1, 0)
	if got := r.in(PORT_BASE, 4); got != CONFIG_ADDRESS_MASK {
		t.Errorf("narrow writes changed CONFIG_ADDRESS to %#x", got)
	}
	if got := r.in(PORT_BASE, 2); got != 0xffff {
		t.Errorf("word read of CF8h: %#x", got)
	}
	d := make([]byte, 8)
	r.h.Read(0, d) // a qword spanning both registers
	for _, c := range d {
		if c != 0xff {
			t.Fatalf("qword read % x", d)
		}
	}
}

func TestResetControl(t *testing.T) {
	resets := 0
	r := newRig(t, HostConfig{Reset: func() { resets++ }})
	r.out(0xcf9, 1, RST_CNT_SYS_RST)
	if resets != 0 || r.in(0xcf9, 1) != RST_CNT_SYS_RST {
		t.Fatal("SYS_RST alone reset or was not stored")
	}
	r.out(0xcf9, 1, RST_CNT_SYS_RST|RST_CNT_RST_CPU)
	if resets != 1 || r.in(0xcf9, 1) != RST_CNT_SYS_RST {
		t.Fatalf("%d resets, RST_CNT %#x", resets, r.in(0xcf9, 1))
	}
}

func TestBARSizing(t *testing.T) {
	changes := 0
	h := Header{
		VendorID: 0x1af4, DeviceID: 0x1000, ClassCode: 0x02, InterruptPin: 1,
		BARs: [NUM_BARS]BAR{
			{Size: 32, IO: true},
			{Size: 4096},
			{Size: 1 << 20, Mem64: true, Prefetchable: true},
			{},
			{Size: 8 << 30, Mem64: true},
		},
		Changed: func() { changes++ },
	}
	f, err := NewType0(h)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, HostConfig{})
	if err := r.h.Attach(3, 0, f); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		bar       int
		init, all uint32 // value at reset, value after writing all-ones
	}{
		{"io-32", 0, BAR_IO_SPACE, 0xffffffe0 | BAR_IO_SPACE},
		{"mem32-4k", 1, 0, 0xfffff000},
		{"mem64-1m-low", 2, BAR_MEM_TYPE_64 | BAR_MEM_PREFETCH, 0xfff00000 | BAR_MEM_TYPE_64 | BAR_MEM_PREFETCH},
		{"mem64-1m-high", 3, 0, 0xffffffff},
		{"mem64-8g-low", 4, BAR_MEM_TYPE_64, BAR_MEM_TYPE_64},
		{"mem64-8g-high", 5, 0, 0xfffffffe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := CFG_BAR0 + 4*tc.bar
			if got := r.cfgRead(3, 0, reg, 4); got != tc.init {
				t.Errorf("at reset %#x, want %#x", got, tc.init)
			}
			r.cfgWrite(3, 0, reg, 4, 0xffffffff)
			if got := r.cfgRead(3, 0, reg, 4); got != tc.all {
				t.Errorf("after all-ones %#x, want %#x", got, tc.all)
			}
			r.cfgWrite(3, 0, reg, 4, tc.init)
		})
	}
	if changes == 0 {
		t.Error("Changed not called for BAR writes")
	}
	// Program addresses and enable decoding, as an OS would.
	r.cfgWrite(3, 0, CFG_BAR0, 4, 0xc040)
	r.cfgWrite(3, 0, CFG_BAR0+4, 4, 0xfebf1000)
	r.cfgWrite(3, 0, CFG_BAR0+8, 4, 0xfe000000)
	r.cfgWrite(3, 0, CFG_BAR0+12, 4, 0x1)
	if st, ok := f.BAR(0); !ok || st.Enabled || st.Base != 0xc040 || !st.IO {
		t.Errorf("BAR0 before enabling: %+v %v", st, ok)
	}
	r.cfgWrite(3, 0, CFG_COMMAND, 2, 0xffff)
	if got := f.Command(); got != COMMAND_IO_SPACE|COMMAND_MEMORY_SPACE|COMMAND_BUS_MASTER|COMMAND_INTERRUPT_DISABLE {
		t.Errorf("command after all-ones %#x", got)
	}
	for _, tc := range []struct {
		bar  int
		want BARState
		ok   bool
	}{
		{0, BARState{Base: 0xc040, Size: 32, IO: true, Enabled: true}, true},
		{1, BARState{Base: 0xfebf1000, Size: 4096, Enabled: true}, true},
		{2, BARState{Base: 0x1fe000000, Size: 1 << 20, Enabled: true}, true},
		{3, BARState{}, false},
		{6, BARState{}, false},
	} {
		if st, ok := f.BAR(tc.bar); st != tc.want || ok != tc.ok {
			t.Errorf("BAR(%d) = %+v %v, want %+v %v", tc.bar, st, ok, tc.want, tc.ok)
		}
	}
	// Interrupt line is writable, pin is not.
	r.cfgWrite(3, 0, CFG_INTERRUPT_LINE, 2, 0x050b)
	if f.InterruptLine() != 0x0b || r.cfgRead(3, 0, CFG_INTERRUPT_PIN, 1) != 1 {
		t.Error("interrupt line/pin")
	}
	f.SetInterruptStatus(true)
	if r.cfgRead(3, 0, CFG_STATUS, 2)&STATUS_INTERRUPT == 0 {
		t.Error("interrupt status")
	}
}

func TestNewType0Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Header
	}{
		{"not pow2", Header{BARs: [NUM_BARS]BAR{{Size: 3000}}}},
		{"io too big", Header{BARs: [NUM_BARS]BAR{{Size: 512, IO: true}}}},
		{"io too small", Header{BARs: [NUM_BARS]BAR{{Size: 2, IO: true}}}},
		{"io 64", Header{BARs: [NUM_BARS]BAR{{Size: 16, IO: true, Mem64: true}}}},
		{"mem too small", Header{BARs: [NUM_BARS]BAR{{Size: 8}}}},
		{"mem32 too big", Header{BARs: [NUM_BARS]BAR{{Size: 4 << 30}}}},
		{"mem64 last", Header{BARs: [NUM_BARS]BAR{5: {Size: 4096, Mem64: true}}}},
		{"mem64 overlaps", Header{BARs: [NUM_BARS]BAR{{Size: 4096, Mem64: true}, {Size: 16}}}},
		{"attrs without size", Header{BARs: [NUM_BARS]BAR{{IO: true}}}},
	} {
		if _, err := NewType0(tc.h); !errors.Is(err, ErrBadBAR) {
			t.Errorf("%s: err %v, want ErrBadBAR", tc.name, err)
		}
	}
	if _, err := NewType0(Header{InterruptPin: 5}); err == nil {
		t.Error("interrupt pin 5 accepted")
	}
	if _, err := NewType0(Header{CapPointer: 0x10}); err == nil {
		t.Error("capability pointer into the header accepted")
	}
}

func TestDefineAndCapabilities(t *testing.T) {
	f, err := NewType0(Header{VendorID: 0x1234, CapPointer: 0x40})
	if err != nil {
		t.Fatal(err)
	}
	// A vendor-specific capability with one writable byte.
	if err := f.Define(0x40, []byte{0x09, 0x00, 0x04, 0xaa}, []byte{0, 0, 0, 0x0f}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ off, n int }{{0x3c, 4}, {0xfe, 4}} {
		if err := f.Define(bad.off, make([]byte, bad.n), make([]byte, bad.n)); err == nil {
			t.Errorf("Define(%#x, %d) accepted", bad.off, bad.n)
		}
	}
	if err := f.Define(0x50, []byte{1}, nil); err == nil {
		t.Error("Define with mismatched mask accepted")
	}
	r := newRig(t, HostConfig{})
	if err := r.h.Attach(1, 0, f); err != nil {
		t.Fatal(err)
	}
	if r.cfgRead(1, 0, CFG_STATUS, 2)&STATUS_CAP_LIST == 0 || r.cfgRead(1, 0, CFG_CAPABILITIES, 1) != 0x40 {
		t.Fatal("capability list not advertised")
	}
	r.cfgWrite(1, 0, 0x40, 4, 0xffffffff)
	if got := r.cfgRead(1, 0, 0x40, 4); got != 0xaf040009 {
		t.Fatalf("capability dword %#x, want 0xaf040009", got)
	}
}

func TestAttachDetach(t *testing.T) {
	r := newRig(t, HostConfig{})
	f, _ := NewType0(Header{VendorID: 0x1234, DeviceID: 0x5678})
	for _, tc := range []struct {
		dev, fn int
		ok      bool
	}{{0, 0, false}, {32, 0, false}, {0, 8, false}, {-1, 0, false}, {31, 7, true}, {31, 7, false}} {
		if err := r.h.Attach(tc.dev, tc.fn, f); (err == nil) != tc.ok {
			t.Errorf("Attach(%d, %d): %v", tc.dev, tc.fn, err)
		}
	}
	if r.h.Attach(2, 0, nil) == nil {
		t.Error("nil function attached")
	}
	if got := r.cfgRead(31, 7, 0, 4); got != 0x56781234 {
		t.Errorf("31.7 reads %#x", got)
	}
	if err := r.h.Detach(31, 7); err != nil {
		t.Fatal(err)
	}
	if r.h.Detach(31, 7) == nil || r.h.Detach(0, 0) == nil || r.h.Detach(40, 0) == nil {
		t.Error("bad Detach accepted")
	}
	if got := r.cfgRead(31, 7, 0, 4); got != 0xffffffff {
		t.Errorf("detached function reads %#x", got)
	}
}

func TestNoAlloc(t *testing.T) {
	h := NewHost(HostConfig{})
	a := []byte{0, 0, 0, 0x80}
	d := []byte{0, 0, 0, 0}
	allocs := testing.AllocsPerRun(100, func() {
		h.Write(OFFSET_CONFIG_ADDRESS, a)
		h.Read(OFFSET_CONFIG_DATA, d)
		h.Write(OFFSET_CONFIG_DATA+2, d[:2])
	})
	if allocs != 0 {
		t.Errorf("%v allocations per access", allocs)
	}
}

var _ bus.Device = (*Host)(nil)
var _ Function = (*ConfigSpace)(nil)

// FuzzHost drives the host with accesses decoded from the input, six
// bytes each (opcode, then a 32-bit value little-endian, then an offset
// byte). It checks that nothing panics, that CONFIG_ADDRESS reads back
// masked, that the host bridge's identity never changes, that absent
// functions read all-ones and that BAR type bits are preserved.
func FuzzHost(f *testing.F) {
	f.Add([]byte{0x00, 0, 0, 0, 0x80, 0, 0x41, 0, 0, 0, 0, 4})
	f.Add([]byte{0x00, 0x10, 0x18, 0, 0x80, 0, 0x02, 0xff, 0xff, 0xff, 0xff, 4, 0x42, 0, 0, 0, 0, 6})
	f.Add([]byte{0x00, 0x04, 0x18, 0, 0x80, 0, 0x01, 0xff, 0xff, 0, 0, 6, 0x10, 0x06, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		resets := 0
		h := NewHost(HostConfig{Reset: func() { resets++ }})
		dev, _ := NewType0(Header{VendorID: 0x1af4, DeviceID: 0x1041, InterruptPin: 1,
			BARs: [NUM_BARS]BAR{{Size: 64, IO: true}, {Size: 1 << 14, Mem64: true, Prefetchable: true}}})
		if err := h.Attach(3, 0, dev); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		for len(in) >= 6 {
			op := in[0]
			v := uint32(in[1]) | uint32(in[2])<<8 | uint32(in[3])<<16 | uint32(in[4])<<24
			off := uint64(in[5] % SIZE)
			in = in[6:]
			n := 1 << (op & 3)
			if off+uint64(n) > SIZE {
				off = SIZE - uint64(n)
			}
			d := buf[:n]
			for i := range d {
				d[i] = byte(v >> (8 * (i % 4)))
			}
			if op&0x40 != 0 {
				h.Read(off, d)
			} else {
				h.Write(off, d)
			}
		}
		a := make([]byte, 4)
		h.Read(OFFSET_CONFIG_ADDRESS, a)
		if v := uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24; v&^CONFIG_ADDRESS_MASK != 0 {
			t.Fatalf("CONFIG_ADDRESS reads %#x", v)
		}
		read := func(addr uint32) uint32 {
			h.Write(OFFSET_CONFIG_ADDRESS, []byte{byte(addr), byte(addr >> 8), byte(addr >> 16), byte(addr >> 24)})
			h.Read(OFFSET_CONFIG_DATA, a)
			return uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24
		}
		if got := read(cfgAddr(0, 0, 0)); got != DEVICE_INTEL_82441FX<<16|VENDOR_INTEL {
			t.Fatalf("host bridge ID %#x", got)
		}
		if got := read(cfgAddr(0, 0, CFG_REVISION_ID)); got>>16 != CLASS_BRIDGE<<8|SUBCLASS_BRIDGE_HOST {
			t.Fatalf("host bridge class %#x", got)
		}
		if got := read(cfgAddr(7, 0, 0)); got != 0xffffffff {
			t.Fatalf("absent device reads %#x", got)
		}
		if got := read(cfgAddr(3, 0, CFG_BAR0)); got&3 != BAR_IO_SPACE || got&0x3f != BAR_IO_SPACE {
			t.Fatalf("I/O BAR reads %#x", got)
		}
		if got := read(cfgAddr(3, 0, CFG_BAR0+4)); got&0xf != BAR_MEM_TYPE_64|BAR_MEM_PREFETCH {
			t.Fatalf("memory BAR reads %#x", got)
		}
		if st, ok := dev.BAR(1); !ok || st.Base&(1<<14-1) != 0 {
			t.Fatalf("BAR(1) = %+v", st)
		}
	})
}

// TestConcurrent has goroutines select functions and access them at once,
// for the race detector. (Mechanism #1 itself is not atomic: guests
// serialize their CONFIG_ADDRESS/CONFIG_DATA pairs.)
func TestConcurrent(t *testing.T) {
	h := NewHost(HostConfig{Reset: func() {}})
	f, _ := NewType0(Header{VendorID: 1, BARs: [NUM_BARS]BAR{{Size: 4096}}, Changed: func() {}})
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := make([]byte, 4)
			for i := 0; i < 2000; i++ {
				if g == 0 && i%100 == 0 {
					h.Attach(4, 0, f)
					h.Detach(4, 0)
				}
				a := cfgAddr(4*(i&1), 0, CFG_BAR0)
				h.Write(OFFSET_CONFIG_ADDRESS, []byte{byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24)})
				h.Write(OFFSET_CONFIG_DATA, []byte{0xff, 0xff, 0xff, 0xff})
				h.Read(OFFSET_CONFIG_DATA, d)
				h.Write(OFFSET_RESET_CONTROL, []byte{RST_CNT_RST_CPU})
				f.BAR(0)
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

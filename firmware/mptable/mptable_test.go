package mptable

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
)

// biosArea is guest memory 0xF0000-0xFFFFF.
type biosArea struct {
	b [BIOS_AREA_END - BIOS_AREA_START]byte
}

func (m *biosArea) Write(gpa addr.GPA, p []byte) error {
	if gpa < BIOS_AREA_START || uint64(gpa)+uint64(len(p)) > BIOS_AREA_END {
		return fmt.Errorf("no memory at %v", gpa)
	}

	copy(m.b[gpa-BIOS_AREA_START:], p)

	return nil
}

func (m *biosArea) at(a uint32, n int) ([]byte, error) {
	if a < BIOS_AREA_START || uint64(a)+uint64(n) > BIOS_AREA_END {
		return nil, fmt.Errorf("address %#x+%d outside the BIOS area", a, n)
	}

	return m.b[a-BIOS_AREA_START : int(a-BIOS_AREA_START)+n], nil
}

// parsed is what a guest reads from the MP tables.
type parsed struct {
	fpAddr  uint32
	lapic   uint32
	cpus    []cpuEntry
	buses   map[uint8]string
	ioapics []ioapicEntry
	ioInts  []intEntry
	lInts   []intEntry
}

type cpuEntry struct {
	id, version, flags uint8
	signature, feats   uint32
}

type ioapicEntry struct {
	id, version, flags uint8
	addr               uint32
}

type intEntry struct {
	typ                    uint8
	flags                  uint16
	bus, irq, dest, destIn uint8
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}

	return s
}

// scan finds and decodes the MP tables the way a guest does: the first
// 16-byte aligned "_MP_" with a good checksum in the BIOS area, then the
// configuration table it points to, entry by entry.
func scan(m *biosArea) (*parsed, error) {
	for a := uint32(BIOS_AREA_START); a < BIOS_AREA_END; a += MPF_ALIGN {
		fp, _ := m.at(a, MPF_LENGTH)
		if string(fp[:4]) != MPF_SIGNATURE || sum(fp) != 0 || fp[MPF_OFF_LENGTH] != 1 {
			continue
		}

		if rev := fp[MPF_OFF_SPEC_REV]; rev != 1 && rev != 4 {
			return nil, fmt.Errorf("floating pointer at %#x: spec revision %d", a, rev)
		}

		if fp[MPF_OFF_FEATURE1] != 0 {
			return nil, fmt.Errorf("floating pointer at %#x: default configuration %d, want a table", a, fp[MPF_OFF_FEATURE1])
		}

		p, err := decodeTable(m, le.Uint32(fp[MPF_OFF_PHYSPTR:]))
		if err != nil {
			return nil, err
		}

		p.fpAddr = a

		return p, nil
	}

	return nil, errors.New("no MP floating pointer")
}

func decodeTable(m *biosArea, a uint32) (*parsed, error) {
	h, err := m.at(a, PCMP_HEADER_LENGTH)
	if err != nil {
		return nil, err
	}

	if string(h[:4]) != PCMP_SIGNATURE || h[PCMP_OFF_SPEC_REV] != SPEC_REV_1_4 {
		return nil, fmt.Errorf("configuration table at %#x: signature %q revision %d", a, h[:4], h[PCMP_OFF_SPEC_REV])
	}

	t, err := m.at(a, int(le.Uint16(h[PCMP_OFF_LENGTH:])))
	if err != nil {
		return nil, err
	}

	if s := sum(t); s != 0 {
		return nil, fmt.Errorf("configuration table checksum: sums to %#x", s)
	}

	if string(h[PCMP_OFF_OEM_ID:PCMP_OFF_OEM_ID+8]) != OEM_ID || string(h[PCMP_OFF_PRODUCT_ID:PCMP_OFF_PRODUCT_ID+12]) != PRODUCT_ID {
		return nil, fmt.Errorf("OEM %q product %q", h[8:16], h[16:28])
	}

	p := &parsed{lapic: le.Uint32(h[PCMP_OFF_LAPIC_ADDR:]), buses: map[uint8]string{}}
	off, lastType := PCMP_HEADER_LENGTH, 0

	for n := 0; n < int(le.Uint16(h[PCMP_OFF_ENTRY_COUNT:])); n++ {
		if off >= len(t) {
			return nil, fmt.Errorf("entry %d at %d past the table's %d bytes", n, off, len(t))
		}

		typ := int(t[off])
		if typ < lastType {
			return nil, fmt.Errorf("entry %d of type %d after type %d: entries are sorted by type", n, typ, lastType)
		}

		lastType = typ

		size := OTHER_ENTRY_LENGTH
		if typ == ENTRY_PROCESSOR {
			size = PROCESSOR_ENTRY_LENGTH
		}

		if off+size > len(t) {
			return nil, fmt.Errorf("entry %d runs past the table", n)
		}

		e := t[off : off+size]
		off += size

		switch typ {
		case ENTRY_PROCESSOR:
			p.cpus = append(p.cpus, cpuEntry{e[1], e[2], e[3], le.Uint32(e[4:]), le.Uint32(e[8:])})
		case ENTRY_BUS:
			p.buses[e[1]] = string(e[2:8])
		case ENTRY_IOAPIC:
			p.ioapics = append(p.ioapics, ioapicEntry{e[1], e[2], e[3], le.Uint32(e[4:])})
		case ENTRY_IO_INTERRUPT, ENTRY_LOCAL_INTERRUPT:
			ie := intEntry{e[1], le.Uint16(e[2:]), e[4], e[5], e[6], e[7]}
			if typ == ENTRY_IO_INTERRUPT {
				p.ioInts = append(p.ioInts, ie)
			} else {
				p.lInts = append(p.lInts, ie)
			}
		default:
			return nil, fmt.Errorf("entry %d has unknown type %d", n, typ)
		}
	}

	if off != len(t) {
		return nil, fmt.Errorf("entries end at %d, the table at %d", off, len(t))
	}

	return p, nil
}

// checkParsed compares what the guest reads with c.
func checkParsed(t testing.TB, c Config, im *Image, p *parsed) {
	t.Helper()

	if p.fpAddr != uint32(im.Base) || p.lapic != c.LocalAPICAddr {
		t.Errorf("floating pointer at %#x, local APIC %#x; want %v, %#x", p.fpAddr, p.lapic, im.Base, c.LocalAPICAddr)
	}

	if len(p.cpus) != c.CPUs {
		t.Fatalf("%d processor entries, want %d", len(p.cpus), c.CPUs)
	}

	for k, cpu := range p.cpus {
		want := cpuEntry{uint8(k), c.LocalAPICVersion, CPU_EN, c.CPUSignature, c.CPUFeatures}
		if k == 0 {
			want.flags |= CPU_BP
		}

		if cpu != want {
			t.Errorf("processor %d: %+v, want %+v", k, cpu, want)
		}
	}

	if len(p.buses) != 1 || p.buses[ISA_BUS_ID] != BUS_TYPE_ISA {
		t.Errorf("buses %q, want ISA bus %d", p.buses, ISA_BUS_ID)
	}

	io := c.IOAPIC
	if len(p.ioapics) != 1 || p.ioapics[0] != (ioapicEntry{io.ID, io.Version, IOAPIC_EN, io.Addr}) {
		t.Errorf("I/O APICs %+v, want %+v", p.ioapics, io)
	}

	over := map[uint8]Override{}
	for _, o := range c.Overrides {
		over[o.IRQ] = o
	}

	want := []intEntry{}

	for irq := uint8(0); irq < ISA_IRQS; irq++ {
		if irq == ISA_CASCADE_IRQ {
			continue
		}

		gsi, flags := uint32(irq), uint16(0)
		if o, ok := over[irq]; ok {
			gsi, flags = o.GSI, o.Flags
		}

		want = append(want, intEntry{INT_TYPE_INT, flags, ISA_BUS_ID, irq, io.ID, uint8(gsi - io.GSIBase)})
	}

	if fmt.Sprint(p.ioInts) != fmt.Sprint(want) {
		t.Errorf("I/O interrupts\n%+v\nwant\n%+v", p.ioInts, want)
	}

	wantL := []intEntry{
		{INT_TYPE_EXTINT, 0, ISA_BUS_ID, 0, ALL_LOCAL_APICS, 0},
		{INT_TYPE_NMI, 0, ISA_BUS_ID, 0, ALL_LOCAL_APICS, 1},
	}
	if fmt.Sprint(p.lInts) != fmt.Sprint(wantL) {
		t.Errorf("local interrupts %+v, want %+v", p.lInts, wantL)
	}
}

func buildAndScan(t testing.TB, c Config) (*Image, *parsed) {
	t.Helper()

	im, err := Build(c)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	if uint64(len(im.Bytes)) > c.Size {
		t.Fatalf("image of %d bytes in a %d-byte area", len(im.Bytes), c.Size)
	}

	var m biosArea
	if err := im.Install(&m); err != nil {
		t.Fatalf("Install: %v", err)
	}

	p, err := scan(&m)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}

	return im, p
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name string
		cfg  func() Config
	}{
		{"1 vCPU", func() Config { return DefaultConfig(1) }},
		{"2 vCPUs", func() Config { return DefaultConfig(2) }},
		{"16 vCPUs", func() Config { return DefaultConfig(16) }},
		{"255 vCPUs", func() Config { return DefaultConfig(MAX_CPUS) }},
		{"no overrides", func() Config {
			c := DefaultConfig(4)
			c.Overrides = nil
			return c
		}},
		{"I/O APIC 8 with GSI base 0, at the end of the BIOS area", func() Config {
			c := DefaultConfig(8)
			c.IOAPIC.ID, c.IOAPIC.Version = 8, 0x20
			c.Base, c.Size = 0xFF000, 0x1000
			return c
		}},
		{"SCI on IRQ 11 active low", func() Config {
			c := DefaultConfig(2)
			c.Overrides = append(c.Overrides, Override{IRQ: 11, GSI: 20, Flags: POLARITY_LOW | TRIGGER_LEVEL})
			return c
		}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg()
			im, p := buildAndScan(t, c)

			if im.Table != im.Base+MPF_LENGTH {
				t.Errorf("configuration table at %v, want right after the floating pointer at %v", im.Table, im.Base)
			}

			checkParsed(t, c, im, p)
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"zero vCPUs", func(c *Config) { c.CPUs = 0 }, "Config.CPUs is 0"},
		{"256 vCPUs", func(c *Config) { c.CPUs = 256 }, "at most 255 vCPUs"},
		{"too many vCPUs for the area", func(c *Config) { c.CPUs = 100; c.Size = 0x400 }, "the MP tables for 100 vCPUs need"},
		{"area of 0 bytes", func(c *Config) { c.Size = 0 }, "Config.Size is 0"},
		{"unaligned", func(c *Config) { c.Base = 0xF0008 }, "not 16-byte aligned"},
		{"below the BIOS area", func(c *Config) { c.Base = 0x9FC00; c.Size = 0x400 }, "not within the BIOS area"},
		{"past 1 MiB", func(c *Config) { c.Base = 0xFF000; c.Size = 0x2000 }, "not within the BIOS area"},
		{"wraps", func(c *Config) { c.Size = 1<<64 - 0x100 }, "not within the BIOS area"},
		{"overlaps the ACPI tables", func(c *Config) {
			c.Reserved = []Range{{Name: "the ACPI tables", Start: 0xE0000, Size: 0x10001}}
		}, "overlaps the ACPI tables"},
		{"no local APIC", func(c *Config) { c.LocalAPICAddr = 0 }, "LocalAPICAddr is 0"},
		{"no I/O APIC", func(c *Config) { c.IOAPIC.Addr = 0 }, "IOAPIC.Addr is 0"},
		{"I/O APIC without inputs", func(c *Config) { c.IOAPIC.Pins = 0 }, "Pins is 0"},
		{"I/O APIC with 8 inputs", func(c *Config) { c.IOAPIC.Pins = 8 }, "IRQ 8 goes to GSI 8"},
		{"GSI base above the ISA IRQs", func(c *Config) { c.IOAPIC.GSIBase = 16 }, "IRQ 1 goes to GSI 1"},
		{"override of IRQ 16", func(c *Config) { c.Overrides = append(c.Overrides, Override{IRQ: 16}) }, "names IRQ 16"},
		{"override of the cascade", func(c *Config) { c.Overrides = append(c.Overrides, Override{IRQ: 2, GSI: 16}) }, "the 8259 cascade"},
		{"two overrides of IRQ 0", func(c *Config) { c.Overrides = append(c.Overrides, Override{IRQ: 0, GSI: 3}) }, "both name IRQ 0"},
		{"two IRQs on GSI 5", func(c *Config) { c.Overrides = append(c.Overrides, Override{IRQ: 4, GSI: 5}) }, "IRQ 4 and IRQ 5 both go to GSI 5"},
		{"reserved flags", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 5, Flags: TRIGGER_RESERVED})
		}, "has flags 0x8"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig(2)
			tt.edit(&c)

			_, err := Build(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "mptable: ") {
				t.Errorf("Build error:\n%v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write(addr.GPA, []byte) error { return errors.New("no RAM there") }

func TestInstall(t *testing.T) {
	im, err := Build(DefaultConfig(2))
	if err != nil {
		t.Fatal(err)
	}

	var m biosArea
	if err := im.Install(&m); err != nil || !bytes.Equal(m.b[:len(im.Bytes)], im.Bytes) {
		t.Errorf("Install: %v, or the bytes differ", err)
	}

	if err := im.Install(failingWriter{}); err == nil || !strings.Contains(err.Error(), "GPA 0xf0000") {
		t.Errorf("Install to failing memory: %v", err)
	}
}

// FuzzBuild builds MP tables from arbitrary configurations: Build must not
// panic, and a table it returns must read back as configured.
func FuzzBuild(f *testing.F) {
	f.Add(uint16(2), uint64(0xF0000), uint64(0x10000), uint8(0), uint32(0), uint32(24), uint8(0), uint32(2), uint16(5), uint8(9), uint32(9), uint16(0xD))
	f.Add(uint16(255), uint64(0xF0000), uint64(0x10000), uint8(7), uint32(0), uint32(24), uint8(0), uint32(2), uint16(0), uint8(11), uint32(23), uint16(0xF))
	f.Add(uint16(16), uint64(0xFFC00), uint64(0x400), uint8(1), uint32(0), uint32(16), uint8(0), uint32(2), uint16(0), uint8(2), uint32(2), uint16(0))

	f.Fuzz(func(t *testing.T, cpus uint16, base, size uint64, ioapicID uint8, gsiBase, pins uint32,
		irqA uint8, gsiA uint32, flagsA uint16, irqB uint8, gsiB uint32, flagsB uint16) {
		c := DefaultConfig(int(cpus))
		c.Base, c.Size = addr.GPA(base), size
		c.IOAPIC.ID, c.IOAPIC.GSIBase, c.IOAPIC.Pins = ioapicID, gsiBase, pins
		c.Overrides = []Override{{irqA, gsiA, flagsA}, {irqB, gsiB, flagsB}}

		if _, err := Build(c); err != nil {
			if !strings.HasPrefix(err.Error(), "mptable: ") {
				t.Fatalf("error without the package name: %v", err)
			}

			return
		}

		im, p := buildAndScan(t, c)
		checkParsed(t, c, im, p)
	})
}

// hv/mem's guest memory is what Install writes to in the hypervisor.
var _ GuestWriter = (*mem.GuestMemory)(nil)

package acpitables

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/kernel/acpi"
)

func TestBuild(t *testing.T) {
	otherPM := PMDevice{
		PM1aEvt: 0xB000, PM1EvtLen: 4,
		PM1aCnt: 0xB004, PM1CntLen: 2,
		PMTmr: 0xB008, PMTmrLen: 4,
		TimerExt: false,
		SlpTypS5: 0,
	}

	tests := []struct {
		name string
		cfg  func() Config
	}{
		{"1 vCPU", func() Config { return DefaultConfig(1, testPM) }},
		{"2 vCPUs", func() Config { return DefaultConfig(2, testPM) }},
		{"16 vCPUs", func() Config { return DefaultConfig(16, testPM) }},
		{"16 vCPUs, 24-bit timer, SLP_TYP 0", func() Config { return DefaultConfig(16, otherPM) }},
		{"255 vCPUs", func() Config { return DefaultConfig(MAX_CPUS, testPM) }},
		{"SLP_TYP 7, SLP_TYP 1", func() Config {
			c := DefaultConfig(2, testPM)
			c.PM.SlpTypS5 = 7
			return c
		}},
		{"SLP_TYP 1", func() Config {
			c := DefaultConfig(3, testPM)
			c.PM.SlpTypS5 = 1
			return c
		}},
		{"tables high in low memory, I/O APIC 2 at GSI 0", func() Config {
			c := DefaultConfig(4, testPM)
			c.Base = 0x7FFF0000
			c.IOAPIC.ID = 2
			return c
		}},
		{"SCI on IRQ 11 with its own override, more overrides", func() Config {
			c := DefaultConfig(8, testPM)
			c.SCIIRQ = 11
			c.Overrides = append(c.Overrides,
				Override{IRQ: 11, GSI: 20, Flags: MPS_INTI_POLARITY_LOW | MPS_INTI_TRIGGER_LEVEL},
				Override{IRQ: 5, GSI: 5, Flags: MPS_INTI_POLARITY_HIGH | MPS_INTI_TRIGGER_LEVEL})
			return c
		}},
		{"no overrides but the SCI's", func() Config {
			c := DefaultConfig(2, testPM)
			c.Overrides = nil
			return c
		}},
		{"larger PM1 blocks, reset 0x64/0xFE", func() Config {
			c := DefaultConfig(2, PMDevice{PM1aEvt: 0x400, PM1EvtLen: 8, PM1aCnt: 0x410, PM1CntLen: 4, PMTmr: 0x420, PMTmrLen: 4, SlpTypS5: 7})
			c.ResetPort, c.ResetValue = 0x64, 0xFE
			return c
		}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg()

			im, err := Build(c)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}

			checkImage(t, im)

			mem := memFor(t, im)

			tabs, err := acpi.Parse(mem, acpi.RSDPHint{Addr: uint64(im.RSDP)})
			if err != nil {
				t.Fatalf("acpi.Parse: %v", err)
			}

			if r := tabs.RSDP; r.Revision != 2 || r.Length != RSDP_LENGTH || r.XSDTAddr == 0 || r.RSDTAddr == 0 || tabs.Root.Signature != acpi.SIG_XSDT {
				t.Errorf("RSDP %+v, root %s; want revision 2, 36 bytes, both root tables, the XSDT used", r, tabs.Root.Signature)
			}

			checkParsed(t, c, im, tabs)
			checkDSDT(t, c, im.TableBytes(SIG_DSDT))

			// An ACPI 1.0 guest reads the RSDT.
			v1 := append([]byte(nil), im.Bytes[:RSDP_V1_LENGTH]...)
			v1[RSDP_OFF_REVISION] = 0
			v1[RSDP_OFF_CHECKSUM] = 0
			v1[RSDP_OFF_CHECKSUM] = checksum(v1)

			old, err := acpi.Parse(mem, acpi.RSDPHint{Copy: v1})
			if err != nil {
				t.Fatalf("acpi.Parse through the RSDT: %v", err)
			}

			if old.Root.Signature != acpi.SIG_RSDT {
				t.Errorf("parser used %s, want the RSDT", old.Root.Signature)
			}

			checkParsed(t, c, im, old)
		})
	}
}

// TestScan places the tables where DefaultConfig does and lets the parser
// find the RSDP the way a guest without a boot protocol pointer does: by
// scanning the BIOS area.
func TestScan(t *testing.T) {
	c := DefaultConfig(4, testPM)

	im, err := Build(c)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}

	mem := &guestMem{base: acpi.BIOS_AREA_START, b: make([]byte, acpi.BIOS_AREA_END-acpi.BIOS_AREA_START)}
	if err := im.Install(mem); err != nil {
		t.Fatalf("Install: %v", err)
	}

	tabs, err := acpi.Parse(mem, acpi.RSDPHint{})
	if err != nil {
		t.Fatalf("acpi.Parse: %v", err)
	}

	if tabs.RSDP.Source != acpi.SourceBIOSArea || tabs.RSDP.Addr != uint64(im.RSDP) {
		t.Errorf("RSDP found at %#x (%s), want %v (%s)", tabs.RSDP.Addr, tabs.RSDP.Source, im.RSDP, acpi.SourceBIOSArea)
	}

	checkParsed(t, c, im, tabs)
}

func TestLayout(t *testing.T) {
	for _, cpus := range []int{1, 2, 16, MAX_CPUS} {
		c := DefaultConfig(cpus, testPM)

		im, err := Build(c)
		if err != nil {
			t.Fatalf("%d vCPUs: Build: %v", cpus, err)
		}

		madt := madtLength(cpus, 2)
		want := map[string]int{
			RSDP_SIGNATURE: OFF_RSDP,
			SIG_FACS:       OFF_FACS,
			SIG_XSDT:       OFF_XSDT,
			SIG_RSDT:       OFF_RSDT,
			SIG_FADT:       OFF_FADT,
			SIG_MADT:       OFF_MADT,
			SIG_DSDT:       alignUp(OFF_MADT+madt, TABLE_ALIGN),
		}

		for sig, off := range want {
			tb, ok := im.Table(sig)
			if !ok || tb.Offset != off || tb.GPA != c.Base+addr.GPA(off) {
				t.Errorf("%d vCPUs: %s at %+v, want offset %#x", cpus, sig, tb, off)
			}
		}

		if tb, _ := im.Table(SIG_MADT); tb.Length != madt {
			t.Errorf("%d vCPUs: MADT is %d bytes, want %d", cpus, tb.Length, madt)
		}

		t.Logf("%d vCPUs: %d bytes: %+v", cpus, len(im.Bytes), im.Tables)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	c := DefaultConfig(16, testPM)

	a, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}

	b, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(a.Bytes, b.Bytes) {
		t.Errorf("two builds of one configuration differ")
	}

	if len(c.Overrides) != 1 {
		t.Errorf("Build changed the caller's overrides: %+v", c.Overrides)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"zero vCPUs", func(c *Config) { c.CPUs = 0 }, "Config.CPUs is 0"},
		{"negative vCPUs", func(c *Config) { c.CPUs = -1 }, "at least one vCPU"},
		{"256 vCPUs", func(c *Config) { c.CPUs = 256 }, "at most 255 vCPUs"},
		{"too many vCPUs for the area", func(c *Config) { c.CPUs = 16; c.Size = 0x400 }, "the ACPI tables for 16 vCPUs need"},
		{"area of 0 bytes", func(c *Config) { c.Size = 0 }, "Config.Size is 0"},
		{"unaligned base", func(c *Config) { c.Base = 0xE0010 }, "not a multiple of 64"},
		{"above 4 GiB", func(c *Config) { c.Base = 0x1_0000_0000 }, "below 4 GiB"},
		{"ends past 4 GiB", func(c *Config) { c.Base = 0xFFFF_F000; c.Size = 0x2000 }, "below 4 GiB"},
		{"wraps past 2^64", func(c *Config) { c.Base = 0xFFFF_FFFF_FFFF_F000; c.Size = 0x2000 }, "below 4 GiB"},
		{"overlaps the local APIC", func(c *Config) { c.Base = 0xFEDFF000; c.Size = 0x2000 }, "overlaps the local APIC"},
		{"overlaps the I/O APIC", func(c *Config) { c.Base = 0xFEC00000 }, "overlaps the I/O APIC"},
		{"overlaps a reserved range", func(c *Config) {
			c.Reserved = []Range{{Name: "the MP table", Start: 0xEFFF0, Size: 0x100}}
		}, "overlaps the MP table at GPA 0xefff0"},
		{"overlaps a reserved range below", func(c *Config) {
			c.Reserved = []Range{{Name: "the kernel", Start: 0x1000, Size: 0xDF001}}
		}, "overlaps the kernel"},
		{"overlaps a reserved range to 2^64", func(c *Config) {
			c.Reserved = []Range{{Name: "the top", Start: 0x80000, Size: 1<<64 - 0x80000}}
		}, "overlaps the top"},
		{"no local APIC", func(c *Config) { c.LocalAPICAddr = 0 }, "Config.LocalAPICAddr is 0"},
		{"no I/O APIC", func(c *Config) { c.IOAPIC.Addr = 0 }, "Config.IOAPIC.Addr is 0"},
		{"I/O APIC without inputs", func(c *Config) { c.IOAPIC.Pins = 0 }, "want 1 or more inputs"},
		{"short PM1 event block", func(c *Config) { c.PM.PM1EvtLen = 2 }, "Config.PM.PM1EvtLen is 2"},
		{"odd PM1 event block", func(c *Config) { c.PM.PM1EvtLen = 5 }, "Config.PM.PM1EvtLen is 5"},
		{"huge PM1 event block", func(c *Config) { c.PM.PM1EvtLen = 32 }, "Config.PM.PM1EvtLen is 32"},
		{"short PM1 control block", func(c *Config) { c.PM.PM1CntLen = 1 }, "Config.PM.PM1CntLen is 1"},
		{"PM timer of 3 bytes", func(c *Config) { c.PM.PMTmrLen = 3 }, "Config.PM.PMTmrLen is 3"},
		{"no PM timer port", func(c *Config) { c.PM.PMTmr = 0 }, "Config.PM.PMTmr (PM timer) is port 0"},
		{"PM blocks overlap", func(c *Config) { c.PM.PM1aCnt = 0x602 }, "overlaps Config.PM.PM1aEvt"},
		{"reset port in the PM timer", func(c *Config) { c.ResetPort = 0x60B }, "Config.ResetPort (reset register) at ports 0x60b-0x60b overlaps Config.PM.PMTmr"},
		{"PM block past port 0xffff", func(c *Config) { c.PM.PMTmr = 0xFFFE }, "runs past port 0xffff"},
		{"SLP_TYP 8", func(c *Config) { c.PM.SlpTypS5 = 8 }, "SlpTypS5 is 8"},
		{"SCI on IRQ 2", func(c *Config) { c.SCIIRQ = 2 }, "Config.SCIIRQ is 2"},
		{"SCI on IRQ 16", func(c *Config) { c.SCIIRQ = 16 }, "Config.SCIIRQ is 16"},
		{"edge-triggered SCI", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 9, GSI: 9, Flags: MPS_INTI_TRIGGER_EDGE})
		}, "the SCI is level-triggered"},
		{"SCI's GSI taken", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 9})
		}, "which the SCI (IRQ 9) uses"},
		{"override of IRQ 16", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 16, GSI: 16})
		}, "names IRQ 16"},
		{"override past the I/O APIC", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 24})
		}, "GSI 24, which the I/O APIC (GSIs 0 to 23) does not have"},
		{"override below the GSI base", func(c *Config) { c.IOAPIC.GSIBase = 8 }, "sends IRQ 0 to GSI 2"},
		{"override with reserved polarity", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 5, Flags: MPS_INTI_POLARITY_RESERVED})
		}, "has flags 0x2"},
		{"override with reserved trigger", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 5, Flags: MPS_INTI_TRIGGER_RESERVED})
		}, "has flags 0x8"},
		{"override with stray flags", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 5, GSI: 5, Flags: 0x10})
		}, "has flags 0x10"},
		{"two overrides of IRQ 0", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 0, GSI: 3})
		}, "both name IRQ 0"},
		{"two overrides to GSI 2", func(c *Config) {
			c.Overrides = append(c.Overrides, Override{IRQ: 1, GSI: 2})
		}, "both go to GSI 2"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig(2, testPM)
			tt.edit(&c)

			im, err := Build(c)
			if err == nil {
				t.Fatalf("Build succeeded (%d bytes), want an error containing %q", len(im.Bytes), tt.want)
			}

			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build error:\n%v\nwant it to contain %q", err, tt.want)
			}

			if !strings.HasPrefix(err.Error(), "acpitables: ") {
				t.Errorf("Build error %q does not name the package", err)
			}
		})
	}
}

// TestBuildErrorsJoined checks that every problem is reported at once.
func TestBuildErrorsJoined(t *testing.T) {
	c := DefaultConfig(0, PMDevice{})

	_, err := Build(c)
	if err == nil {
		t.Fatal("Build of an empty configuration succeeded")
	}

	for _, want := range []string{"Config.CPUs is 0", "PM1EvtLen", "PM1CntLen", "PMTmrLen", "PM1aEvt (PM1a event block) is port 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// TestTooManyCPUsForArea finds the most vCPUs a 4 KiB area holds and
// checks that one more fails with the area's size in the error.
func TestTooManyCPUsForArea(t *testing.T) {
	c := DefaultConfig(1, testPM)
	c.Size = 0x1000

	n := 0

	for cpus := 1; cpus <= MAX_CPUS; cpus++ {
		c.CPUs = cpus

		im, err := Build(c)
		if err != nil {
			if !strings.Contains(err.Error(), "holds only 4096") {
				t.Fatalf("%d vCPUs: %v", cpus, err)
			}

			break
		}

		if uint64(len(im.Bytes)) > c.Size {
			t.Fatalf("%d vCPUs: %d bytes in a %d-byte area", cpus, len(im.Bytes), c.Size)
		}

		n = cpus
	}

	if n < 16 || n == MAX_CPUS {
		t.Errorf("a 4 KiB area holds %d vCPUs' tables, want at least 16 and fewer than %d", n, MAX_CPUS)
	}

	t.Logf("a 4 KiB area holds the tables of up to %d vCPUs", n)
}

type failingWriter struct{}

func (failingWriter) Write(addr.GPA, []byte) error { return errors.New("no RAM there") }

func TestInstall(t *testing.T) {
	im, err := Build(DefaultConfig(2, testPM))
	if err != nil {
		t.Fatal(err)
	}

	mem := &guestMem{base: 0xE0000, b: make([]byte, 0x10000)}
	if err := im.Install(mem); err != nil {
		t.Fatalf("Install: %v", err)
	}

	if !bytes.Equal(mem.b[:len(im.Bytes)], im.Bytes) {
		t.Errorf("Install did not copy the image to its base")
	}

	err = im.Install(failingWriter{})
	if err == nil || !strings.Contains(err.Error(), "GPA 0xe0000") || !strings.Contains(err.Error(), "no RAM there") {
		t.Errorf("Install to failing memory: %v, want the GPA and the cause", err)
	}
}

// hv/mem's guest memory is what Install writes to in the hypervisor.
var _ GuestWriter = (*mem.GuestMemory)(nil)

package acpitables

import (
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/kernel/acpi"
)

// FuzzBuild builds tables from arbitrary configurations. Build must never
// panic; it either fails with an acpitables error or returns an image
// whose checksums and lengths are right and in which kernel/acpi finds
// exactly what was configured. The same inputs are then folded into a
// valid configuration, which Build must accept, so that the checks of
// built tables see varied values. Seeds are in testdata/fuzz/FuzzBuild.
func FuzzBuild(f *testing.F) {
	type seed struct {
		cpus                   uint16
		base, size             uint64
		lapic, ioapic, gsiBase uint32
		ioapicID, sci          uint8
		evt, cnt, tmr          uint16
		evtLen, cntLen, tmrLen uint8
		timerExt               bool
		slp                    uint8
		resetPort              uint16
		resetValue, ovIRQ      uint8
		ovGSI                  uint32
		ovFlags                uint16
	}

	seeds := []seed{
		{2, 0xE0000, 0x10000, 0xFEE00000, 0xFEC00000, 0, 0, 9, 0x600, 0x604, 0x608, 4, 2, 4, true, 5, 0xCF9, 6, 5, 5, 0xD},
		{255, 0xE0000, 0x10000, 0xFEE00000, 0xFEC00000, 0, 0, 9, 0xB000, 0xB004, 0xB008, 4, 2, 4, false, 0, 0xCF9, 6, 11, 11, 0xF},
		{16, 0x7FFF0000, 0x2000, 0xFEE00000, 0xFEC00000, 0, 1, 11, 0x400, 0x410, 0x420, 8, 4, 4, true, 7, 0x64, 0xFE, 11, 20, 0xF},
		{91, 0xE0000, 0x1000, 0xFEE00000, 0xFEC00000, 0, 0, 9, 0x600, 0x604, 0x608, 4, 2, 4, true, 5, 0xCF9, 6, 1, 1, 0},
		{0, 0xE0040, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, 8, 0, 0, 16, 99, 0xFFFF},
	}

	for _, s := range seeds {
		f.Add(s.cpus, s.base, s.size, s.lapic, s.ioapic, s.gsiBase, s.ioapicID, s.sci, s.evt, s.cnt, s.tmr,
			s.evtLen, s.cntLen, s.tmrLen, s.timerExt, s.slp, s.resetPort, s.resetValue, s.ovIRQ, s.ovGSI, s.ovFlags)
	}

	f.Fuzz(func(t *testing.T, cpus uint16, base, size uint64, lapic, ioapic, gsiBase uint32, ioapicID, sci uint8,
		evt, cnt, tmr uint16, evtLen, cntLen, tmrLen uint8, timerExt bool, slp uint8,
		resetPort uint16, resetValue, ovIRQ uint8, ovGSI uint32, ovFlags uint16) {
		c := DefaultConfig(int(cpus), PMDevice{
			PM1aEvt: evt, PM1EvtLen: evtLen,
			PM1aCnt: cnt, PM1CntLen: cntLen,
			PMTmr: tmr, PMTmrLen: tmrLen,
			TimerExt: timerExt,
			SlpTypS5: slp,
		})
		c.Base, c.Size = addr.GPA(base), size
		c.LocalAPICAddr = lapic
		c.IOAPIC.Addr, c.IOAPIC.GSIBase, c.IOAPIC.ID = ioapic, gsiBase, ioapicID
		c.SCIIRQ = sci
		c.ResetPort, c.ResetValue = resetPort, resetValue
		c.Overrides = append(c.Overrides, Override{IRQ: ovIRQ, GSI: ovGSI, Flags: ovFlags})

		fuzzCheck(t, c, false)

		// The same inputs folded into a valid configuration, so that
		// the checks of built tables see varied values too.
		pmLen := PMDevice{PM1EvtLen: 4 + 2*(evtLen%4), PM1CntLen: 2 + cntLen%4, PMTmrLen: PM_TMR_LEN}
		v := DefaultConfig(1+int(cpus)%MAX_CPUS, pmLen)
		v.PM.PM1aEvt = 0x100 + evt%0xE000
		v.PM.PM1aCnt = v.PM.PM1aEvt + uint16(v.PM.PM1EvtLen) + cnt%16
		v.PM.PMTmr = v.PM.PM1aCnt + uint16(v.PM.PM1CntLen) + tmr%16
		v.PM.TimerExt, v.PM.SlpTypS5 = timerExt, slp%(MAX_SLP_TYP+1)
		v.ResetPort, v.ResetValue = v.PM.PMTmr+PM_TMR_LEN+resetPort%16, resetValue
		v.Base = addr.GPA(base % (0xF0000000 / TABLES_ALIGN) * TABLES_ALIGN)
		v.IOAPIC.ID = ioapicID
		v.SCIIRQ = 3 + sci%13

		if irq := ovIRQ % ISA_IRQS; irq != 0 && irq != ISA_CASCADE_IRQ {
			flags := []uint16{0, MPS_INTI_POLARITY_HIGH, MPS_INTI_POLARITY_LOW}[ovFlags%3] |
				[]uint16{0, MPS_INTI_TRIGGER_EDGE, MPS_INTI_TRIGGER_LEVEL}[ovFlags/3%3]
			if irq == v.SCIIRQ {
				flags = flags&MPS_INTI_POLARITY_MASK | MPS_INTI_TRIGGER_LEVEL
			}

			v.Overrides = append(v.Overrides, Override{IRQ: irq, GSI: 16 + ovGSI%8, Flags: flags})
		}

		fuzzCheck(t, v, true)
	})
}

// fuzzCheck builds c; a failure must be an acpitables error (and is a test
// failure when valid is set), a success must give tables that check out.
func fuzzCheck(t *testing.T, c Config, valid bool) {
	im, err := Build(c)
	if err != nil {
		if valid || !strings.HasPrefix(err.Error(), "acpitables: ") {
			t.Fatalf("Build(%+v): %v", c, err)
		}

		return
	}

	if uint64(len(im.Bytes)) > c.Size || uint64(im.Base)+uint64(len(im.Bytes)) > 1<<32 {
		t.Fatalf("image of %d bytes at %v does not fit the area of %d bytes below 4 GiB", len(im.Bytes), im.Base, c.Size)
	}

	checkImage(t, im)

	tabs, err := acpi.Parse(memFor(t, im), acpi.RSDPHint{Addr: uint64(im.RSDP)})
	if err != nil {
		t.Fatalf("acpi.Parse: %v", err)
	}

	checkParsed(t, c, im, tabs)
	checkDSDT(t, c, im.TableBytes(SIG_DSDT))
}

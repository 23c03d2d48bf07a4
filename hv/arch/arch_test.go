package arch

import (
	"fmt"
	"strings"
	"testing"
)

func TestModeAndCPL(t *testing.T) {
	code64 := Segment{Type: 0xb, S: true, Present: true, L: true}
	code32 := Segment{Type: 0xb, S: true, Present: true, DB: true}
	for _, tc := range []struct {
		name   string
		s      Sregs
		rflags uint64
		mode   Mode
		cpl    uint8
	}{
		{"real", Sregs{SS: Segment{DPL: 3}}, 0, ModeReal, 0},
		{"vm86", Sregs{CR0: CR0_PE}, RFLAGS_VM, ModeVirtual8086, 3},
		{"protected16", Sregs{CR0: CR0_PE, SS: Segment{DPL: 0}}, 0, ModeProtected16, 0},
		{"protected32 user", Sregs{CR0: CR0_PE, CS: code32, SS: Segment{DPL: 3}}, 0, ModeProtected32, 3},
		{"compat32", Sregs{CR0: CR0_PE | CR0_PG, EFER: EFER_LME | EFER_LMA, CS: code32}, 0, ModeCompat32, 0},
		{"compat16", Sregs{CR0: CR0_PE | CR0_PG, EFER: EFER_LME | EFER_LMA}, 0, ModeCompat16, 0},
		{"long64", Sregs{CR0: CR0_PE | CR0_PG, EFER: EFER_LME | EFER_LMA, CS: code64, SS: Segment{DPL: 3}}, 0, ModeLong64, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := ModeOf(&tc.s, tc.rflags); m != tc.mode {
				t.Errorf("mode %s, want %s", m, tc.mode)
			}
			if c := CPL(&tc.s, tc.rflags); c != tc.cpl {
				t.Errorf("CPL %d, want %d", c, tc.cpl)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   Event
		want string
	}{
		{"gp", Exception(VECTOR_GP, 0), ""},
		{"pf", PageFault(0x1000, PFEC_WR), ""},
		{"ud no error code", Exception(VECTOR_UD, 5), ""},
		{"ud with error code", Event{Type: EventException, Vector: VECTOR_UD, HasErrorCode: true}, "HasErrorCode=true"},
		{"exception vector 40", Event{Type: EventException, Vector: 40}, "not an exception"},
		{"nmi", NMI(), ""},
		{"nmi wrong vector", Event{Type: EventNMI, Vector: 3}, "must be 2"},
		{"external", ExternalInterrupt(0x30), ""},
		{"external low vector", ExternalInterrupt(8), "illegal"},
		{"softint", Event{Type: EventSoftInt, Vector: 0x80, InsnLen: 2}, ""},
		{"softint without length", Event{Type: EventSoftInt, Vector: 0x80}, "instruction length 0"},
		{"bad type", Event{Type: 9}, "unknown event type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ev.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate(%s) = %v, want %q", tc.ev, err, tc.want)
			}
		})
	}
	if ev := Exception(VECTOR_UD, 5); ev.HasErrorCode {
		t.Error("#UD got an error code")
	}
	if s := PageFault(0xdead000, 2).String(); !strings.Contains(s, "cr2=0xdead000") || !strings.Contains(s, "error 0x2") {
		t.Errorf("String = %q", s)
	}
}

func TestResetState(t *testing.T) {
	r, s := ResetState(true)
	if r.RIP != RESET_RIP || r.RFLAGS != RFLAGS_FIXED || s.CS.Base+r.RIP != 0xfffffff0 || s.CS.Selector != 0xf000 {
		t.Errorf("reset vector %#x:%#x", s.CS.Base, r.RIP)
	}
	if ModeOf(&s, r.RFLAGS) != ModeReal || s.APICBase != APIC_BASE_DEFAULT|APIC_BASE_EN|APIC_BASE_BSP || s.CR0 != 0x60000010 {
		t.Errorf("reset sregs %+v", s)
	}
	if _, ap := ResetState(false); ap.APICBase&APIC_BASE_BSP != 0 {
		t.Error("AP has the BSP flag")
	}
}

func TestNamesAndStrings(t *testing.T) {
	seen := map[string]bool{}
	for r := 0; r < NumExitReasons; r++ {
		n := ExitReason(r).String()
		if n == "" || n == "reason?" || seen[n] {
			t.Errorf("reason %d has name %q", r, n)
		}
		seen[n] = true
	}
	if ExitReason(NumExitReasons).String() != "reason?" || SegReg(9).String() != "seg?" || Mode(99).String() != "mode?" || EventType(9).String() != "event?" {
		t.Error("out-of-range names")
	}
	if (AccessRead|AccessWrite).String() != "rw" || Access(0).String() != "-" || AccessExec.String() != "x" {
		t.Error("Access.String")
	}
	if GPRName(RSP) != "rsp" || GPRName(16) != "r?" {
		t.Error("GPRName")
	}
	for _, tc := range []struct {
		ex   Exit
		want string
	}{
		{Exit{Reason: ExitIO, RIP: 0x10, IO: IOExit{Port: 0x3f8, Size: 1, String: true, Rep: true}}, "io at rip=0x10: rep outs port 0x3f8 size 1"},
		{Exit{Reason: ExitPageFault, Fault: PageFaultExit{GPA: 0xfee00000, Access: AccessWrite, GVA: 0xfee00000, GVAValid: true}}, "pagefault at rip=0x0: GPA 0xfee00000 access w (GVA 0xfee00000)"},
		{Exit{Reason: ExitMSRWrite, MSR: MSRExit{Index: 0xc0000080, Value: 0x500}}, "wrmsr at rip=0x0: msr 0xc0000080 value 0x500"},
		{Exit{Reason: ExitEntryFailure, Code: 0x80000021, Message: "invalid guest state: CR0.PG without PE"}, "(backend code 0x80000021 info 0x0): invalid guest state"},
	} {
		if s := tc.ex.String(); !strings.Contains(s, tc.want) {
			t.Errorf("String = %q, want %q", s, tc.want)
		}
	}
	var s Sregs
	if s.Seg(SEG_GS) != &s.GS || s.Seg(7) != nil {
		t.Error("Seg")
	}
}

func TestIntrState(t *testing.T) {
	for _, tc := range []struct {
		st        IntrState
		intr, nmi bool
	}{
		{IntrState{IF: true}, true, true},
		{IntrState{}, false, true},
		{IntrState{IF: true, Shadow: true}, false, false},
		{IntrState{IF: true, NMIBlocked: true}, true, false},
		{IntrState{IF: true, EventPending: true}, false, false},
	} {
		t.Run(fmt.Sprintf("%+v", tc.st), func(t *testing.T) {
			if tc.st.Injectable() != tc.intr || tc.st.NMIInjectable() != tc.nmi {
				t.Errorf("injectable %v/%v", tc.st.Injectable(), tc.st.NMIInjectable())
			}
		})
	}
}

package hypercall

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

// fakeMem is guest RAM [0, len(b)).
type fakeMem struct{ b []byte }

func (m *fakeMem) Contains(gpa addr.GPA, n uint64) bool {
	end, ok := gpa.Add(n)
	return ok && uint64(end) <= uint64(len(m.b))
}

func (m *fakeMem) Read(gpa addr.GPA, p []byte) error {
	if !m.Contains(gpa, uint64(len(p))) {
		return errors.New("outside")
	}
	copy(p, m.b[gpa:])
	return nil
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("console gone") }

func newEnv(privileged bool) (*Env, *bytes.Buffer, *bytes.Buffer) {
	mem := &fakeMem{b: make([]byte, 64<<10)}
	copy(mem.b[0x1000:], "hello, keel\n")
	var con, log bytes.Buffer
	return &Env{VM: "vm1", Privileged: privileged, Memory: mem, Console: &con, HostLog: &log, Scratch: make([]byte, MAX_BUFFER)}, &con, &log
}

func TestDispatch(t *testing.T) {
	tbl := DefaultTable()
	for _, tc := range []struct {
		name       string
		privileged bool
		cpl        uint8
		args       Args
		want       uint64
		console    string
		log        string
		poweroff   bool
	}{
		{"version", false, 0, Args{Nr: NrVersion}, ABI_VERSION, "", "", false},
		{"echo", false, 0, Args{Nr: NrEcho, A: [4]uint64{0xdeadbeefcafe}}, 0xdeadbeefcafe, "", "", false},
		{"unknown", false, 0, Args{Nr: 99}, ERR_NOSYS, "", "", false},
		{"huge number", false, 0, Args{Nr: ^uint64(0)}, ERR_NOSYS, "", "", false},
		{"user mode refused", false, 3, Args{Nr: NrVersion}, ERR_PERM, "", "", false},
		{"console", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{0x1000, 12}}, 12, "hello, keel\n", "", false},
		{"console empty", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{0x1000, 0}}, 0, "", "", false},
		{"console at end of RAM", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{64<<10 - 4, 4}}, 4, "\x00\x00\x00\x00", "", false},
		{"console past RAM", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{64<<10 - 4, 8}}, ERR_FAULT, "", "", false},
		{"console wraps", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{^uint64(0) - 2, 8}}, ERR_FAULT, "", "", false},
		{"console too long", false, 0, Args{Nr: NrConsoleWrite, A: [4]uint64{0, MAX_BUFFER + 1}}, ERR_2BIG, "", "", false},
		{"host log refused", false, 0, Args{Nr: NrHostLog, A: [4]uint64{0x1000, 5}}, ERR_PERM, "", "", false},
		{"host log privileged", true, 0, Args{Nr: NrHostLog, A: [4]uint64{0x1000, 5}}, 5, "", "hello", false},
		{"poweroff", false, 0, Args{Nr: NrPowerOff, A: [4]uint64{3}}, 0, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, con, log := newEnv(tc.privileged)
			env.CPL = tc.cpl
			got := tbl.Dispatch(env, &tc.args)
			if got != tc.want {
				t.Errorf("result %#x (%s), want %#x (%s)", got, ErrorName(got), tc.want, ErrorName(tc.want))
			}
			if con.String() != tc.console || log.String() != tc.log {
				t.Errorf("console %q, log %q", con.String(), log.String())
			}
			if env.PowerOff != tc.poweroff || (tc.poweroff && env.ExitStatus != tc.args.A[0]) {
				t.Errorf("poweroff %v status %d", env.PowerOff, env.ExitStatus)
			}
		})
	}
}

func TestMissingOutputs(t *testing.T) {
	tbl := DefaultTable()
	for _, tc := range []struct {
		name  string
		setup func(*Env)
		want  uint64
	}{
		{"no console", func(e *Env) { e.Console = nil }, ERR_NOSYS},
		{"no memory", func(e *Env) { e.Memory = nil }, ERR_NOSYS},
		{"small scratch", func(e *Env) { e.Scratch = make([]byte, 4) }, ERR_NOSYS},
		{"console fails", func(e *Env) { e.Console = failWriter{} }, ERR_INVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := newEnv(false)
			tc.setup(env)
			if got := tbl.Dispatch(env, &Args{Nr: NrConsoleWrite, A: [4]uint64{0x1000, 8}}); got != tc.want {
				t.Errorf("got %s, want %s", ErrorName(got), ErrorName(tc.want))
			}
		})
	}
}

func TestDecode(t *testing.T) {
	var r arch.Regs
	r.GPR[arch.RAX], r.GPR[arch.RBX], r.GPR[arch.RCX], r.GPR[arch.RDX], r.GPR[arch.RSI] = 2, 10, 11, 12, 13
	r.GPR[arch.RDI] = 99
	if a := Decode(&r); a.Nr != 2 || a.A != [4]uint64{10, 11, 12, 13} {
		t.Errorf("Decode = %+v", a)
	}
}

func TestNewTable(t *testing.T) {
	h := func(*Env, *Args) uint64 { return 0 }
	for _, tc := range []struct {
		name  string
		calls []Call
		want  string
	}{
		{"duplicate", []Call{{Nr: 1, Name: "a", Handler: h}, {Nr: 1, Name: "b", Handler: h}}, "both use number 1"},
		{"no handler", []Call{{Nr: 1, Name: "a"}}, "no handler"},
		{"ok", append(Standard(), Call{Nr: 100, Name: "extra", Privileged: true, Handler: h}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl, err := NewTable(tc.calls...)
			if tc.want == "" {
				if err != nil || len(tbl.Calls()) != len(tc.calls) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		code uint64
		neg  int64
		name string
	}{
		{ERR_PERM, -1, "ERR_PERM"}, {ERR_2BIG, -7, "ERR_2BIG"}, {ERR_FAULT, -14, "ERR_FAULT"},
		{ERR_INVAL, -22, "ERR_INVAL"}, {ERR_NOSYS, -38, "ERR_NOSYS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if int64(tc.code) != tc.neg || !IsError(tc.code) || ErrorName(tc.code) != tc.name {
				t.Errorf("%s = %d", ErrorName(tc.code), int64(tc.code))
			}
		})
	}
	if IsError(ABI_VERSION) || IsError(1<<64-4096) || !IsError(1<<64-4095) || ErrorName(1<<64-100) != "error -100" || ErrorName(5) != "" {
		t.Error("IsError/ErrorName boundaries wrong")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestDispatchDoesNotAllocate(t *testing.T) {
	tbl := DefaultTable()
	env, _, _ := newEnv(false)
	env.Console = discard{}
	for _, a := range []Args{{Nr: NrVersion}, {Nr: NrEcho, A: [4]uint64{5}}, {Nr: NrConsoleWrite, A: [4]uint64{0x1000, 12}}, {Nr: 77}} {
		if n := testing.AllocsPerRun(100, func() { tbl.Dispatch(env, &a) }); n != 0 {
			t.Errorf("call %d: %v allocations", a.Nr, n)
		}
	}
}

// FuzzDispatch decodes fuzzer-chosen registers into a call and performs it
// against fake guest memory: nothing may panic, results must be values or
// known error codes, and console output never exceeds the buffer limit or
// leaves guest RAM.
func FuzzDispatch(f *testing.F) {
	f.Add(uint64(NrConsoleWrite), uint64(0x1000), uint64(12), uint64(0), uint64(0), false, uint8(0))
	f.Add(uint64(NrHostLog), uint64(0xfff0), uint64(0x20), uint64(0), uint64(0), true, uint8(0))
	f.Add(uint64(NrConsoleWrite), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), false, uint8(3))
	f.Add(uint64(NrPowerOff), uint64(7), uint64(0), uint64(0), uint64(0), false, uint8(0))
	f.Add(uint64(5), uint64(0), uint64(0), uint64(0), uint64(0), true, uint8(0))
	tbl := DefaultTable()
	f.Fuzz(func(t *testing.T, rax, rbx, rcx, rdx, rsi uint64, privileged bool, cpl uint8) {
		var r arch.Regs
		r.GPR[arch.RAX], r.GPR[arch.RBX], r.GPR[arch.RCX], r.GPR[arch.RDX], r.GPR[arch.RSI] = rax, rbx, rcx, rdx, rsi
		env, con, log := newEnv(privileged)
		env.CPL = cpl % 4
		a := Decode(&r)
		res := tbl.Dispatch(env, &a)
		if IsError(res) && ErrorName(res)[:4] != "ERR_" && !(rax == NrEcho && res == rbx) {
			t.Fatalf("unknown error code %d", int64(res))
		}
		out := con.Len() + log.Len()
		if out > MAX_BUFFER || (out > 0 && (IsError(res) || uint64(out) != res)) {
			t.Fatalf("call %d wrote %d bytes, returned %#x", rax, out, res)
		}
		if log.Len() > 0 && !privileged {
			t.Fatal("unprivileged VM wrote to the host log")
		}
		if out > 0 && rbx+rcx > 64<<10 {
			t.Fatalf("wrote from outside guest RAM: %#x+%#x", rbx, rcx)
		}
	})
}

// Package hypercall defines Keel's hypercall ABI and dispatches calls.
//
// # ABI (version 1.0)
//
// A guest calls Keel with VMMCALL (0F 01 D9) on AMD processors and VMCALL
// (0F 01 C1) on Intel processors — the instruction of the vendor in CPUID
// leaf 0; the other one raises #UD. CPUID leaf 4000_0000h returns the
// signature "KeelKeelKeel", and leaf 4000_0001h EAX the ABI version
// (ABI_VERSION) and EBX bit 0 that hypercalls are available.
//
//	RAX  call number (Nr*)           result: value or error code
//	RBX  argument 0
//	RCX  argument 1
//	RDX  argument 2
//	RSI  argument 3
//
// All other registers are preserved; RIP advances past the instruction.
// Arguments are full 64-bit values (a 32-bit guest zero-extends them).
// Results from 0xFFFF_FFFF_FFFF_F001 to 0xFFFF_FFFF_FFFF_FFFF (-4095 to -1
// as int64) are errors, with Linux errno values so that guests can reuse
// their tables:
//
//	ERR_PERM   -1   privileged call from an ordinary VM, or a call from CPL > 0
//	ERR_2BIG   -7   a length argument exceeds the call's limit
//	ERR_FAULT  -14  a guest-physical buffer is not inside guest RAM
//	ERR_INVAL  -22  an argument is invalid
//	ERR_NOSYS  -38  no such call, or the call is not available in this VM
//
// Calls (Nr, name, privileged, arguments → result):
//
//	0  version        no   —                          → ABI_VERSION (0x00010000: 1.0)
//	1  echo           no   value                      → value, unchanged (a test call)
//	2  console_write  no   gpa, length (≤ 4096)       → bytes written to the VM's console
//	3  host_log       yes  gpa, length (≤ 4096)       → bytes written to Keel's own log
//	4  poweroff       no   exit status                → 0; the VM stops with the status
//
// Buffers are guest-physical addresses, so the ABI does not depend on the
// guest's paging mode; a buffer must lie entirely in guest RAM. Privileged
// calls are refused with ERR_PERM to VMs that are not privileged (only the
// management partition is). Calls from CPL > 0 are refused with ERR_PERM,
// so that a guest's user programs cannot reach the hypervisor behind their
// kernel's back.
//
// The package is pure Go and host-testable: it runs under plain `go test`;
// FuzzDispatch fuzzes argument decoding and every call.
package hypercall

import (
	"fmt"
	"io"
	"sort"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
)

// ABI_VERSION is the hypercall ABI version: major in bits 31:16, minor in
// 15:0.
const ABI_VERSION = 0x00010000

// Call numbers.
const (
	NrVersion      = 0
	NrEcho         = 1
	NrConsoleWrite = 2
	NrHostLog      = 3
	NrPowerOff     = 4
)

// Error codes (two's-complement negative, Linux errno values).
const (
	ERR_PERM  uint64 = 1<<64 - 1  // -1
	ERR_2BIG  uint64 = 1<<64 - 7  // -7
	ERR_FAULT uint64 = 1<<64 - 14 // -14
	ERR_INVAL uint64 = 1<<64 - 22 // -22
	ERR_NOSYS uint64 = 1<<64 - 38 // -38
)

// IsError reports whether a result is an error code.
func IsError(r uint64) bool { return r >= 1<<64-4095 }

// MAX_BUFFER is the largest buffer console_write and host_log accept.
const MAX_BUFFER = 4096

// Args are a call's number and arguments, decoded from the registers.
type Args struct {
	// Nr is RAX.
	Nr uint64
	// A holds RBX, RCX, RDX, RSI.
	A [4]uint64
}

// Decode reads a call from the guest's registers.
func Decode(r *arch.Regs) Args {
	return Args{Nr: r.GPR[arch.RAX], A: [4]uint64{r.GPR[arch.RBX], r.GPR[arch.RCX], r.GPR[arch.RDX], r.GPR[arch.RSI]}}
}

// Memory is the guest memory a call may read; *mem.GuestMemory implements
// it.
type Memory interface {
	// Contains reports whether [gpa, gpa+n) is guest RAM.
	Contains(gpa addr.GPA, n uint64) bool
	// Read copies guest RAM at gpa into p.
	Read(gpa addr.GPA, p []byte) error
}

// Env is what a call runs against: the calling VM and vCPU, and the
// outputs a call may produce. The core keeps one per vCPU and reuses it, so
// dispatching allocates nothing.
type Env struct {
	// VM and VCPU identify the caller (for logs).
	VM   string
	VCPU int
	// Privileged is set for the management partition.
	Privileged bool
	// CPL is the caller's current privilege level.
	CPL uint8
	// Memory is the VM's RAM.
	Memory Memory
	// Console receives console_write output; nil makes the call
	// ERR_NOSYS.
	Console io.Writer
	// HostLog receives host_log output; nil makes the call ERR_NOSYS.
	HostLog io.Writer
	// Scratch is a buffer of at least MAX_BUFFER bytes for copying guest
	// data.
	Scratch []byte

	// PowerOff is set by poweroff; ExitStatus is its argument.
	PowerOff   bool
	ExitStatus uint64
}

// Handler performs a call and returns its result.
type Handler func(env *Env, a *Args) uint64

// Call describes one hypercall.
type Call struct {
	// Nr is the call number.
	Nr uint64
	// Name is a short name for logs and listings.
	Name string
	// Privileged calls are refused (ERR_PERM) to ordinary VMs.
	Privileged bool
	// Handler performs the call.
	Handler Handler
}

// Table is a set of calls, sorted by number. It is immutable after
// NewTable and safe for concurrent use.
type Table struct {
	calls []Call
}

// NewTable builds a table, rejecting duplicate numbers and calls without a
// handler.
func NewTable(calls ...Call) (*Table, error) {
	cs := append([]Call(nil), calls...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Nr < cs[j].Nr })
	for i, c := range cs {
		if c.Handler == nil {
			return nil, fmt.Errorf("hypercall: call %d (%s) has no handler", c.Nr, c.Name)
		}
		if i > 0 && cs[i-1].Nr == c.Nr {
			return nil, fmt.Errorf("hypercall: calls %s and %s both use number %d", cs[i-1].Name, c.Name, c.Nr)
		}
	}
	return &Table{calls: cs}, nil
}

// Standard returns Keel's calls (version, echo, console_write, host_log,
// poweroff), for NewTable.
func Standard() []Call {
	return []Call{
		{Nr: NrVersion, Name: "version", Handler: version},
		{Nr: NrEcho, Name: "echo", Handler: echo},
		{Nr: NrConsoleWrite, Name: "console_write", Handler: consoleWrite},
		{Nr: NrHostLog, Name: "host_log", Privileged: true, Handler: hostLog},
		{Nr: NrPowerOff, Name: "poweroff", Handler: powerOff},
	}
}

// DefaultTable returns a table of the Standard calls.
func DefaultTable() *Table {
	t, err := NewTable(Standard()...)
	if err != nil {
		panic(err) // the standard table is a constant
	}
	return t
}

// Calls returns a copy of the calls, sorted by number.
func (t *Table) Calls() []Call { return append([]Call(nil), t.calls...) }

// Lookup returns the call with number nr.
func (t *Table) Lookup(nr uint64) (*Call, bool) {
	lo, hi := 0, len(t.calls)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.calls[m].Nr < nr {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(t.calls) && t.calls[lo].Nr == nr {
		return &t.calls[lo], true
	}
	return nil, false
}

// Dispatch performs call a for env and returns the value for RAX. Unknown
// numbers return ERR_NOSYS; privileged calls from ordinary VMs and any call
// from CPL > 0 return ERR_PERM.
func (t *Table) Dispatch(env *Env, a *Args) uint64 {
	c, ok := t.Lookup(a.Nr)
	if !ok {
		return ERR_NOSYS
	}
	if env.CPL != 0 || (c.Privileged && !env.Privileged) {
		return ERR_PERM
	}
	return c.Handler(env, a)
}

func version(*Env, *Args) uint64 { return ABI_VERSION }

func echo(_ *Env, a *Args) uint64 { return a.A[0] }

// copyOut copies the guest buffer (gpa, n) = (A[0], A[1]) to w through the
// scratch buffer.
func copyOut(env *Env, a *Args, w io.Writer) uint64 {
	if w == nil || env.Memory == nil {
		return ERR_NOSYS
	}
	gpa, n := addr.GPA(a.A[0]), a.A[1]
	if n > MAX_BUFFER {
		return ERR_2BIG
	}
	if len(env.Scratch) < int(n) {
		return ERR_NOSYS // misconfigured core, not the guest's fault
	}
	if _, ok := gpa.Add(n); !ok || !env.Memory.Contains(gpa, n) {
		return ERR_FAULT
	}
	buf := env.Scratch[:n]
	if err := env.Memory.Read(gpa, buf); err != nil {
		return ERR_FAULT
	}
	written, err := w.Write(buf)
	if err != nil && written == 0 {
		return ERR_INVAL
	}
	return uint64(written)
}

func consoleWrite(env *Env, a *Args) uint64 { return copyOut(env, a, env.Console) }

func hostLog(env *Env, a *Args) uint64 { return copyOut(env, a, env.HostLog) }

func powerOff(env *Env, a *Args) uint64 {
	env.PowerOff = true
	env.ExitStatus = a.A[0]
	return 0
}

// ErrorName returns the ERR_* name of an error result, or "" for a value.
func ErrorName(r uint64) string {
	switch r {
	case ERR_PERM:
		return "ERR_PERM"
	case ERR_2BIG:
		return "ERR_2BIG"
	case ERR_FAULT:
		return "ERR_FAULT"
	case ERR_INVAL:
		return "ERR_INVAL"
	case ERR_NOSYS:
		return "ERR_NOSYS"
	}
	if IsError(r) {
		return fmt.Sprintf("error %d", int64(r))
	}
	return ""
}

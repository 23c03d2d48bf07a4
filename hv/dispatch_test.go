package hv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/bus"
	"github.com/keel-hv/keel/hv/cpuid"
	"github.com/keel-hv/keel/hv/hypercall"
	"github.com/keel-hv/keel/hv/msr"
)

// outcome kinds of one handled exit.
const (
	kOK    = "ok"
	kStop  = "stop"
	kCrash = "crash"
)

func kindOf(err error) string {
	if err == nil {
		return kOK
	}
	var se *stopError
	if errors.As(err, &se) && !se.crash {
		return kStop
	}
	return kCrash
}

// env is what a dispatch case sees.
type env struct {
	vm    *VM
	v     *VCPU
	f     *fakeVCPU
	port  *fakeDev
	mmio  *fakeDev
	emu   *fakeEmu
	con   *bytes.Buffer
	value uint64 // TSC
}

const (
	testPort = 0x3f8
	testMMIO = 0xfebf0000
	rip0     = 0x1000
	rip1     = 0x1002
)

func newEnv(t *testing.T, tweak func(*Config)) *env {
	e := &env{port: &fakeDev{}, mmio: &fakeDev{}, con: &bytes.Buffer{}, value: 0x123456789}
	newEmu := func(cpu EmuCPU) InstructionEmulator {
		fe := &fakeEmu{cpu: cpu}
		if e.emu == nil {
			e.emu = fe // vCPU 0's
		}
		return fe
	}
	cfg := Config{VCPUs: 2, Emulator: newEmu, Console: e.con, TSC: func() uint64 { return e.value }}
	if tweak != nil {
		tweak(&cfg)
	}
	vm, _, _ := testVM(t, cfg)
	t.Cleanup(func() { vm.Destroy() })
	if err := vm.Ports().Register(testPort, 8, e.port, "uart"); err != nil {
		t.Fatal(err)
	}
	if err := vm.MMIO().Register(testMMIO, 0x1000, e.mmio, "dev"); err != nil {
		t.Fatal(err)
	}
	e.vm, e.v, e.f = vm, vm.vcpus[0], fakeOf(vm, 0)
	e.f.regs = arch.Regs{RIP: rip0, RFLAGS: arch.RFLAGS_FIXED}
	// Flat 32-bit protected mode without paging unless a case says
	// otherwise.
	e.f.sregs.CR0 = arch.CR0_PE
	e.f.sregs.CS = arch.Segment{Type: 0xb, S: true, Present: true, DB: true, Limit: 0xffffffff}
	return e
}

func TestDispatch(t *testing.T) {
	sig := binary.LittleEndian.Uint32([]byte("Keel"))
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		setup func(e *env)
		exit  arch.Exit
		kind  string
		msg   string         // substring of the error
		rip   uint64         // RIP after (0: not checked)
		regs  map[int]uint64 // GPRs after
		event *arch.Event    // event queued for the next entry
		check func(*testing.T, *env)
	}{
		{
			name:  "cpuid signature",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = cpuid.LEAF_HV_BASE },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: cpuid.LEAF_HV_FEATURES, arch.RBX: uint64(sig), arch.RCX: uint64(sig), arch.RDX: uint64(sig)},
		},
		{
			name:  "cpuid clears upper halves",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = 0xffffffff_40000001; e.f.regs.GPR[arch.RBX] = ^uint64(0) },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: hypercall.ABI_VERSION, arch.RBX: cpuid.KEEL_FEATURE_HYPERCALL, arch.RCX: 2},
		},
		{
			name:  "cpuid leaf 1 apic id of vcpu 0 and no svm",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = 0x80000001 },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1},
			kind:  kOK,
			check: func(t *testing.T, e *env) {
				if e.f.regs.GPR[arch.RCX]&cpuid.CPUID_80000001_ECX_SVM != 0 {
					t.Error("guest sees SVM")
				}
			},
		},
		{
			name:  "rdmsr unknown gp",
			setup: func(e *env) { e.f.regs.GPR[arch.RCX] = 0x12345 },
			exit:  arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1},
			kind:  kOK, rip: rip0,
			event: ptr(arch.Exception(arch.VECTOR_GP, 0)),
		},
		{
			name: "wrmsr lstar",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = msr.IA32_LSTAR
				e.f.regs.GPR[arch.RDX] = 0xffffffff
				e.f.regs.GPR[arch.RAX] = 0xffffffff_81a00000
			},
			exit: arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if v, _ := e.vm.msrs.Read(e.v.msrs, msr.IA32_LSTAR, 0); v != 0xffffffff81a00000 {
					t.Errorf("LSTAR = %#x (EAX's upper half must be ignored)", v)
				}
			},
		},
		{
			name:  "rdmsr tsc",
			setup: func(e *env) { e.f.regs.GPR[arch.RCX] = msr.IA32_TIME_STAMP_COUNTER },
			exit:  arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: 0x23456789, arch.RDX: 1},
		},
		{
			name:  "rdmsr efer from sregs",
			setup: func(e *env) { e.f.regs.GPR[arch.RCX] = msr.IA32_EFER; e.f.sregs.EFER = arch.EFER_LME | arch.EFER_LMA },
			exit:  arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: arch.EFER_LME | arch.EFER_LMA, arch.RDX: 0},
		},
		{
			name: "wrmsr efer",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = msr.IA32_EFER
				e.f.regs.GPR[arch.RAX] = arch.EFER_LME | arch.EFER_SCE | arch.EFER_NXE
			},
			exit: arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if e.f.sregs.EFER != arch.EFER_LME|arch.EFER_SCE|arch.EFER_NXE {
					t.Errorf("EFER = %#x", e.f.sregs.EFER)
				}
			},
		},
		{
			name: "wrmsr efer svme refused",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = msr.IA32_EFER
				e.f.regs.GPR[arch.RAX] = arch.EFER_SVME
			},
			exit: arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1},
			kind: kOK, rip: rip0,
			event: ptr(arch.Exception(arch.VECTOR_GP, 0)),
		},
		{
			name: "wrmsr apic base moves",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = msr.IA32_APIC_BASE
				e.f.regs.GPR[arch.RAX] = 0xfed00000 | arch.APIC_BASE_EN
			},
			exit: arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if e.f.sregs.APICBase != 0xfed00000|arch.APIC_BASE_EN|arch.APIC_BASE_BSP {
					t.Errorf("APIC base = %#x", e.f.sregs.APICBase)
				}
			},
		},
		{
			name: "wrmsr apic base x2apic refused",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = msr.IA32_APIC_BASE
				e.f.regs.GPR[arch.RAX] = arch.APIC_BASE_DEFAULT | arch.APIC_BASE_EN | arch.APIC_BASE_EXTD
			},
			exit: arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1},
			kind: kOK, rip: rip0,
			event: ptr(arch.Exception(arch.VECTOR_GP, 0)),
		},
		{
			name:  "out byte",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = 0x1234_5641 },
			exit:  arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1}},
			kind:  kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if string(e.port.log) != "A" {
					t.Errorf("device got %q", e.port.log)
				}
			},
		},
		{
			name: "in word merges",
			setup: func(e *env) {
				e.port.regs[2], e.port.regs[3] = 0x34, 0x12
				e.f.regs.GPR[arch.RAX] = 0xaaaa_bbbb_cccc_dddd
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort + 2, Size: 2, In: true}},
			kind: kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: 0xaaaa_bbbb_cccc_1234},
		},
		{
			name:  "in dword zero-extends",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = ^uint64(0) },
			exit:  arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort + 4, Size: 4, In: true}},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: 0},
		},
		{
			name: "in unclaimed reads ones",
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0x80, Size: 1, In: true}},
			kind: kOK, rip: rip1,
			regs: map[int]uint64{arch.RAX: 0xff},
		},
		{
			name: "in straddling a device stops",
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort + 6, Size: 4, In: true}},
			kind: kStop, msg: "straddles",
		},
		{
			name: "strict port policy stops",
			cfg:  func(c *Config) { c.PortPolicy = &bus.Policy{Strict: true} },
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0x80, Size: 1}},
			kind: kStop, msg: "no device claims",
		},
		{
			name: "bad io size crashes",
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 3}},
			kind: kCrash, msg: "3-byte port access",
		},
		{
			name: "rep outsb",
			setup: func(e *env) {
				e.vm.mem.Write(0x5000, []byte("hello"))
				e.f.regs.GPR[arch.RSI] = 0x5000
				e.f.regs.GPR[arch.RCX] = 5
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, Rep: true, AddrSize: 4, Seg: arch.SEG_DS}},
			kind: kOK, rip: rip1,
			regs: map[int]uint64{arch.RSI: 0x5005, arch.RCX: 0},
			check: func(t *testing.T, e *env) {
				if string(e.port.log) != "hello" {
					t.Errorf("device got %q", e.port.log)
				}
			},
		},
		{
			name: "outsb with segment base and 16-bit wrap",
			setup: func(e *env) {
				e.vm.mem.Write(0x20000, []byte("w"))
				e.f.sregs.ES.Base = 0x20000
				e.f.regs.GPR[arch.RSI] = 0x1234_0000
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, AddrSize: 2, Seg: arch.SEG_ES}},
			kind: kOK, rip: rip1,
			regs: map[int]uint64{arch.RSI: 0x1234_0001},
			check: func(t *testing.T, e *env) {
				if string(e.port.log) != "w" {
					t.Errorf("device got %q", e.port.log)
				}
			},
		},
		{
			name: "rep insw backwards",
			setup: func(e *env) {
				e.port.regs[0], e.port.regs[1] = 0xcd, 0xab
				e.f.regs.GPR[arch.RDI] = 0x6002
				e.f.regs.GPR[arch.RCX] = 2
				e.f.regs.RFLAGS |= arch.RFLAGS_DF
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 2, In: true, String: true, Rep: true, AddrSize: 8}},
			kind: kOK, rip: rip1,
			regs: map[int]uint64{arch.RDI: 0x5ffe, arch.RCX: 0},
			check: func(t *testing.T, e *env) {
				got, _ := e.vm.mem.Read32(0x6000)
				if got != 0xabcdabcd {
					t.Errorf("memory = %#x", got)
				}
			},
		},
		{
			name: "rep with zero count",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = 0xffff_0000
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, Rep: true, AddrSize: 2}},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if e.port.writes != 0 {
					t.Error("device written")
				}
			},
		},
		{
			name: "long rep is batched",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RCX] = 5000
				e.f.regs.GPR[arch.RSI] = 0x10000
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, Rep: true, AddrSize: 4, Seg: arch.SEG_DS}},
			kind: kOK, rip: rip0,
			regs: map[int]uint64{arch.RCX: 5000 - STRING_IO_BATCH, arch.RSI: 0x10000 + STRING_IO_BATCH},
		},
		{
			name: "outs under paging translates",
			setup: func(e *env) {
				e.vm.mem.Write(0x3000, []byte("pg"))
				e.f.sregs.CR0 |= arch.CR0_PG
				e.f.regs.GPR[arch.RSI] = 0x40003000
				e.f.regs.GPR[arch.RCX] = 2
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, Rep: true, AddrSize: 4, Seg: arch.SEG_DS}},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if string(e.port.log) != "pg" {
					t.Errorf("device got %q", e.port.log)
				}
			},
		},
		{
			name: "ins page fault is injected mid-rep",
			setup: func(e *env) {
				e.f.sregs.CR0 |= arch.CR0_PG
				e.f.regs.GPR[arch.RDI] = 0x6ffffffe
				e.f.regs.GPR[arch.RCX] = 4
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, In: true, String: true, Rep: true, AddrSize: 4}},
			kind: kOK, rip: rip0,
			regs:  map[int]uint64{arch.RDI: 0x70000000, arch.RCX: 2},
			event: ptr(arch.PageFault(0x70000000, arch.PFEC_WR)),
		},
		{
			name: "outs under paging without emulator crashes",
			cfg:  func(c *Config) { c.Emulator = nil },
			setup: func(e *env) {
				e.f.sregs.CR0 |= arch.CR0_PG
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, AddrSize: 4, Seg: arch.SEG_DS}},
			kind: kCrash, msg: "needs the instruction emulator",
		},
		{
			name: "outs from outside RAM stops",
			setup: func(e *env) {
				e.f.regs.GPR[arch.RSI] = 0x8000_0000
			},
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, AddrSize: 4, Seg: arch.SEG_DS}},
			kind: kStop, msg: "GPA 0x80000000",
		},
		{
			name: "string io bad address size",
			exit: arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: testPort, Size: 1, String: true, AddrSize: 3}},
			kind: kCrash, msg: "address size 3",
		},
		{
			name:  "mmio store through the emulator",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = 0xdeadbeef },
			exit:  arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO + 4, Access: arch.AccessWrite}},
			kind:  kOK, rip: rip0 + 3,
			check: func(t *testing.T, e *env) {
				if got := binary.LittleEndian.Uint32(e.mmio.regs[4:]); got != 0xdeadbeef {
					t.Errorf("device register = %#x", got)
				}
			},
		},
		{
			name:  "mmio load through the emulator",
			setup: func(e *env) { e.emu.load = true; copy(e.mmio.regs[8:], []byte{1, 2, 3, 4}) },
			exit:  arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, MMIO: arch.MMIOExit{GPA: testMMIO + 8, NeedsDecode: true}},
			kind:  kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: 0x04030201},
		},
		{
			name:  "mmio emulator raises an exception",
			setup: func(e *env) { e.emu.except = &GuestException{Event: arch.Exception(arch.VECTOR_UD, 0)} },
			exit:  arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO, Access: arch.AccessRead}},
			kind:  kOK, rip: rip0,
			event: ptr(arch.Exception(arch.VECTOR_UD, 0)),
		},
		{
			name:  "mmio emulator fails",
			setup: func(e *env) { e.emu.fail = errors.New("cannot emulate FSAVE") },
			exit:  arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO, Access: arch.AccessRead}},
			kind:  kCrash, msg: "cannot emulate FSAVE",
		},
		{
			name: "mmio without emulator",
			cfg:  func(c *Config) { c.Emulator = nil },
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO, Access: arch.AccessRead}},
			kind: kCrash, msg: "needs the instruction emulator",
		},
		{
			name: "decoded mmio write",
			exit: arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: testMMIO, Size: 2, Write: true, Data: 0xbeef}},
			kind: kOK, rip: rip1,
			check: func(t *testing.T, e *env) {
				if e.mmio.regs[0] != 0xef || e.mmio.regs[1] != 0xbe {
					t.Errorf("device regs % x", e.mmio.regs[:2])
				}
			},
		},
		{
			name:  "decoded mmio read",
			setup: func(e *env) { e.mmio.regs[0] = 0x7f; e.f.regs.GPR[arch.R9] = ^uint64(0) },
			exit:  arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: testMMIO, Size: 1, Reg: arch.R9}},
			kind:  kOK, rip: rip1,
			regs: map[int]uint64{arch.R9: 0x7f},
		},
		{
			name: "decoded mmio bad register",
			exit: arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: testMMIO, Size: 1, Reg: 16}},
			kind: kCrash, msg: "register 16",
		},
		{
			name: "decoded mmio bad size",
			exit: arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: testMMIO, Size: 16}},
			kind: kCrash, msg: "16-byte MMIO",
		},
		{
			name: "outside ram stops",
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: 0xd0000000, Access: arch.AccessWrite}},
			kind: kStop, msg: "write access at GPA 0xd0000000",
		},
		{
			name: "outside ram as unclaimed mmio",
			cfg:  func(c *Config) { c.OutsideRAM = OutsideRAMUnclaimed },
			setup: func(e *env) {
				e.emu.load = true
			},
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: 0xd0000000, Access: arch.AccessRead}},
			kind: kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: 0xffffffff},
		},
		{
			name: "fetch outside ram stops",
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO, Access: arch.AccessExec}},
			kind: kStop, msg: "instruction fetch",
		},
		{
			name: "page walk outside ram stops",
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: testMMIO, Access: arch.AccessRead, Walk: true}},
			kind: kStop, msg: "page-table walk",
		},
		{
			name: "fault inside ram is a backend bug",
			exit: arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: 0x1000, Access: arch.AccessRead}},
			kind: kCrash, msg: "inside guest RAM",
		},
		{
			name: "hlt",
			exit: arch.Exit{Reason: arch.ExitHLT, RIP: rip0, NextRIP: rip0 + 1, Intr: arch.IntrState{IF: true}},
			kind: kOK, rip: rip0 + 1,
			check: func(t *testing.T, e *env) {
				if !e.v.halted {
					t.Error("not halted")
				}
			},
		},
		{
			name:  "hypercall version",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = hypercall.NrVersion },
			exit:  arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip0 + 3},
			kind:  kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: hypercall.ABI_VERSION},
		},
		{
			name: "hypercall console",
			setup: func(e *env) {
				e.vm.mem.Write(0x7000, []byte("guest says hi\n"))
				e.f.regs.GPR[arch.RAX], e.f.regs.GPR[arch.RBX], e.f.regs.GPR[arch.RCX] = hypercall.NrConsoleWrite, 0x7000, 14
			},
			exit: arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip0 + 3},
			kind: kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: 14},
			check: func(t *testing.T, e *env) {
				if e.con.String() != "guest says hi\n" {
					t.Errorf("console %q", e.con.String())
				}
			},
		},
		{
			name:  "hypercall from user mode",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = hypercall.NrVersion },
			exit:  arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip0 + 3, CPL: 3},
			kind:  kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: hypercall.ERR_PERM},
		},
		{
			name:  "hypercall privileged refused",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX] = hypercall.NrHostLog },
			exit:  arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip0 + 3},
			kind:  kOK, rip: rip0 + 3,
			regs: map[int]uint64{arch.RAX: hypercall.ERR_PERM},
		},
		{
			name:  "hypercall poweroff",
			setup: func(e *env) { e.f.regs.GPR[arch.RAX], e.f.regs.GPR[arch.RBX] = hypercall.NrPowerOff, 7 },
			exit:  arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip0 + 3},
			kind:  kStop, msg: "powered off (status 7)",
		},
		{
			name: "triple fault",
			exit: arch.Exit{Reason: arch.ExitShutdown, RIP: rip0},
			kind: kCrash, msg: "triple fault",
		},
		{name: "host interrupt", exit: arch.Exit{Reason: arch.ExitInterrupt, RIP: rip0}, kind: kOK, rip: rip0},
		{name: "host nmi", exit: arch.Exit{Reason: arch.ExitNMI, RIP: rip0}, kind: kOK, rip: rip0},
		{name: "interrupt window", exit: arch.Exit{Reason: arch.ExitInterruptWindow, RIP: rip0}, kind: kOK, rip: rip0},
		{
			name: "init then sipi",
			exit: arch.Exit{Reason: arch.ExitInit, RIP: rip0},
			kind: kOK, rip: arch.RESET_RIP,
			check: func(t *testing.T, e *env) {
				if !e.v.waitSIPI || e.f.sregs.CR0 != arch.RESET_CR0 || e.f.sregs.APICBase&arch.APIC_BASE_BSP == 0 {
					t.Fatalf("after INIT: waitSIPI %v cr0 %#x apic %#x", e.v.waitSIPI, e.f.sregs.CR0, e.f.sregs.APICBase)
				}
				e.v.exit = arch.Exit{Reason: arch.ExitSIPI, SIPIVector: 0x9a}
				if err := e.v.handleExit(&e.v.exit); err != nil {
					t.Fatal(err)
				}
				if e.v.waitSIPI || e.f.sregs.CS.Base != 0x9a000 || e.f.sregs.CS.Selector != 0x9a00 || e.f.regs.RIP != 0 {
					t.Errorf("after SIPI: cs %+v rip %#x", e.f.sregs.CS, e.f.regs.RIP)
				}
			},
		},
		{
			name: "sipi outside wait-for-sipi is ignored",
			exit: arch.Exit{Reason: arch.ExitSIPI, RIP: rip0, SIPIVector: 0x10},
			kind: kOK, rip: rip0,
		},
		{
			name: "invalid guest state",
			exit: arch.Exit{Reason: arch.ExitInvalidGuestState, Message: "CR0.PG=1 with CR0.PE=0"},
			kind: kCrash, msg: "CR0.PG=1 with CR0.PE=0",
		},
		{
			name: "entry failure",
			exit: arch.Exit{Reason: arch.ExitEntryFailure, Message: "VMLAUNCH: VM-instruction error 7"},
			kind: kCrash, msg: "error 7",
		},
		{
			name: "backend specific",
			exit: arch.Exit{Reason: arch.ExitBackendSpecific, Code: 0x7f, Message: "RSM"},
			kind: kCrash, msg: "code 0x7f: RSM",
		},
		{
			name: "unknown",
			exit: arch.Exit{Code: 0x401},
			kind: kCrash, msg: "unclassified",
		},
		{
			name: "reason out of range",
			exit: arch.Exit{Reason: 200},
			kind: kCrash, msg: "reason 200",
		},
		{
			name:  "missing next rip: decoded (prefixed CPUID)",
			setup: func(e *env) { e.emu.insnLen = 3 },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0},
			kind:  kOK, rip: rip0 + 3,
		},
		{
			name:  "missing next rip: fetch faults",
			setup: func(e *env) { e.emu.lenErr = &GuestException{Event: arch.PageFault(rip0, 0), Reason: "not present"} },
			exit:  arch.Exit{Reason: arch.ExitHLT, RIP: rip0},
			kind:  kOK, rip: rip0, event: ptr(arch.PageFault(rip0, 0)),
		},
		{
			name:  "missing next rip: undecodable",
			setup: func(e *env) { e.emu.lenErr = errors.New("garbage") },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0},
			kind:  kCrash, msg: "decoding the intercepted cpuid instruction at rip=0x1000 failed: garbage",
		},
		{
			name:  "backend register failure",
			setup: func(e *env) { e.f.failRegs = errors.New("VMCB gone") },
			exit:  arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1},
			kind:  kCrash, msg: "VMCB gone",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			if tc.setup != nil {
				tc.setup(e)
			}
			e.v.exit = tc.exit
			err := e.v.handleExit(&e.v.exit)
			if got := kindOf(err); got != tc.kind {
				t.Fatalf("outcome %s (%v), want %s", got, err, tc.kind)
			}
			if tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if tc.rip != 0 && e.f.regs.RIP != tc.rip {
				t.Errorf("RIP = %#x, want %#x", e.f.regs.RIP, tc.rip)
			}
			for r, want := range tc.regs {
				if got := e.f.regs.GPR[r]; got != want {
					t.Errorf("%s = %#x, want %#x", arch.GPRName(r), got, want)
				}
			}
			if tc.event != nil {
				if !e.f.pending || e.f.event != *tc.event {
					t.Errorf("queued event %v %s, want %s", e.f.pending, e.f.event, *tc.event)
				}
			} else if e.f.pending && tc.kind == kOK {
				t.Errorf("unexpected event %s", e.f.event)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
			if tc.exit.Reason < arch.ExitReason(arch.NumExitReasons) && e.vm.ExitCounts()[tc.exit.Reason] == 0 {
				t.Error("exit not counted")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestCPUIDPerVCPU(t *testing.T) {
	e := newEnv(t, nil)
	v1, f1 := e.vm.vcpus[1], fakeOf(e.vm, 1)
	f1.regs.GPR[arch.RAX] = 1
	v1.exit = arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1}
	if err := v1.handleExit(&v1.exit); err != nil {
		t.Fatal(err)
	}
	if apic := f1.regs.GPR[arch.RBX] >> 24; apic != 1 {
		t.Errorf("vCPU 1 sees APIC ID %d", apic)
	}
	if f1.regs.GPR[arch.RCX]&cpuid.CPUID_1_ECX_HYPERVISOR == 0 {
		t.Error("hypervisor bit clear")
	}
}

func TestFailReports(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exit   arch.Exit
		state  State
		reason string
	}{
		{"triple fault crashes with registers", arch.Exit{Reason: arch.ExitShutdown, RIP: 0xfff0}, Crashed, "triple fault"},
		{"outside ram stops", arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: 0x7fff0000, Access: arch.AccessRead}}, Stopped, "GPA 0x7fff0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.vm.state.Store(int32(Running))
			e.f.regs.GPR[arch.RBX] = 0xabcdef
			e.v.exit, e.v.exitValid = tc.exit, true
			err := e.v.fail(e.v.handleExit(&e.v.exit))
			if (err != nil) != (tc.state == Crashed) {
				t.Errorf("fail returned %v", err)
			}
			r := e.vm.Report()
			if e.vm.State() != tc.state || r == nil || r.State != tc.state || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("state %s, report %+v", e.vm.State(), r)
			}
			s := r.String()
			for _, want := range []string{tc.state.String(), tc.reason, "rbx=0000000000abcdef", "exit: ", "vCPU 0", "cr0="} {
				if !strings.Contains(s, want) {
					t.Errorf("report lacks %q:\n%s", want, s)
				}
			}
		})
	}
}

// nopDev does nothing, for allocation tests.
type nopDev struct{}

func (nopDev) Read(_ uint64, d []byte) {
	for i := range d {
		d[i] = 0
	}
}
func (nopDev) Write(uint64, []byte) {}

func TestHotExitsDoNotAllocate(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Console = discard{} })
	e.vm.Ports().Register(0xf4, 4, nopDev{}, "nop")
	e.vm.MMIO().Register(0xfee00000, 0x1000, nopDev{}, "nop")
	e.vm.mem.Write(0x7000, []byte("x"))
	for _, tc := range []struct {
		name  string
		setup func()
		exit  arch.Exit
	}{
		{"cpuid", func() { e.f.regs.GPR[arch.RAX] = 1 }, arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1}},
		{"cpuid hv", func() { e.f.regs.GPR[arch.RAX] = cpuid.LEAF_HV_BASE }, arch.Exit{Reason: arch.ExitCPUID, RIP: rip0, NextRIP: rip1}},
		{"rdmsr", func() { e.f.regs.GPR[arch.RCX] = msr.IA32_LSTAR }, arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1}},
		{"wrmsr", func() { e.f.regs.GPR[arch.RCX] = msr.IA32_MTRR_DEF_TYPE; e.f.regs.GPR[arch.RAX] = 0x806 }, arch.Exit{Reason: arch.ExitMSRWrite, RIP: rip0, NextRIP: rip1}},
		{"rdmsr efer", func() { e.f.regs.GPR[arch.RCX] = msr.IA32_EFER }, arch.Exit{Reason: arch.ExitMSRRead, RIP: rip0, NextRIP: rip1}},
		{"out", func() {}, arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0xf4, Size: 4}}},
		{"in", func() {}, arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0xf4, Size: 1, In: true}}},
		{"in unclaimed", func() {}, arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0x80, Size: 1, In: true}}},
		{"rep outsb", func() { e.f.regs.GPR[arch.RCX] = 4; e.f.regs.GPR[arch.RSI] = 0x7000 }, arch.Exit{Reason: arch.ExitIO, RIP: rip0, NextRIP: rip1, IO: arch.IOExit{Port: 0xf4, Size: 1, String: true, Rep: true, AddrSize: 4, Seg: arch.SEG_DS}}},
		{"mmio emulated", func() {}, arch.Exit{Reason: arch.ExitPageFault, RIP: rip0, Fault: arch.PageFaultExit{GPA: 0xfee00300, Access: arch.AccessWrite}}},
		{"mmio decoded", func() {}, arch.Exit{Reason: arch.ExitMMIO, RIP: rip0, NextRIP: rip1, MMIO: arch.MMIOExit{GPA: 0xfee000b0, Size: 4, Write: true}}},
		{"hypercall version", func() { e.f.regs.GPR[arch.RAX] = hypercall.NrVersion }, arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip1}},
		{"hypercall console", func() {
			e.f.regs.GPR[arch.RAX], e.f.regs.GPR[arch.RBX], e.f.regs.GPR[arch.RCX] = hypercall.NrConsoleWrite, 0x7000, 1
		}, arch.Exit{Reason: arch.ExitHypercall, RIP: rip0, NextRIP: rip1}},
		{"interrupt window", func() {}, arch.Exit{Reason: arch.ExitInterruptWindow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func() {
				tc.setup()
				e.v.exit = tc.exit
				if err := e.v.handleExit(&e.v.exit); err != nil {
					t.Fatal(err)
				}
			}
			run()
			if n := testing.AllocsPerRun(100, run); n != 0 {
				t.Errorf("%s exit allocates %v times", tc.name, n)
			}
		})
	}
	// The entry side: delivering an interrupt.
	e.v.lastIntr = arch.IntrState{IF: true}
	if n := testing.AllocsPerRun(100, func() {
		e.v.irq.Raise(0x40)
		e.f.pending = false
		if err := e.v.deliver(); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("deliver allocates %v times", n)
	}
}

// FuzzHandleExit feeds arbitrary exits (as a backend bug or a hostile
// guest could produce them) and registers to the dispatcher: it may stop
// or crash the VM but must never panic.
func FuzzHandleExit(f *testing.F) {
	f.Add(uint8(arch.ExitIO), uint16(0x3f8), uint8(1), uint8(0x1c), uint8(4), uint64(0x5000), uint64(5), uint64(0), uint64(rip1))
	f.Add(uint8(arch.ExitPageFault), uint16(0), uint8(4), uint8(2), uint8(0), uint64(testMMIO), uint64(0), uint64(0), uint64(0))
	f.Add(uint8(arch.ExitMMIO), uint16(0), uint8(8), uint8(0x21), uint8(15), uint64(testMMIO), uint64(1), uint64(2), uint64(rip1))
	f.Add(uint8(arch.ExitMSRWrite), uint16(0), uint8(0), uint8(0), uint8(0), uint64(msr.IA32_EFER), uint64(0xffffffff), uint64(0x1000), uint64(rip1))
	f.Add(uint8(arch.ExitHypercall), uint16(0), uint8(0), uint8(0), uint8(0), uint64(2), ^uint64(0), uint64(4096), uint64(rip1))
	f.Add(uint8(arch.ExitCPUID), uint16(0), uint8(0), uint8(0), uint8(0), uint64(0x4000_0000), uint64(0), uint64(0), uint64(rip1))
	f.Fuzz(func(t *testing.T, reason uint8, port uint16, size, flags, aux uint8, a, b, c, next uint64) {
		e := newEnv(t, func(cfg *Config) {
			if flags&0x80 != 0 {
				cfg.OutsideRAM = OutsideRAMUnclaimed
			}
		})
		e.f.regs.GPR[arch.RAX], e.f.regs.GPR[arch.RBX], e.f.regs.GPR[arch.RCX] = a, b, c
		e.f.regs.GPR[arch.RSI], e.f.regs.GPR[arch.RDI] = a, b
		if flags&0x40 != 0 {
			e.f.sregs.CR0 |= arch.CR0_PG
		}
		if flags&0x20 != 0 {
			e.f.regs.RFLAGS |= arch.RFLAGS_DF
		}
		ex := arch.Exit{Reason: arch.ExitReason(int(reason) % (arch.NumExitReasons + 2)), RIP: rip0, NextRIP: next,
			IO:    arch.IOExit{Port: port, Size: size, In: flags&1 != 0, String: flags&2 != 0, Rep: flags&4 != 0, AddrSize: aux & 0xf, Seg: arch.SegReg(aux >> 4)},
			MMIO:  arch.MMIOExit{GPA: addr.GPA(a), Size: size, Write: flags&1 != 0, Reg: aux, Data: b, NeedsDecode: flags&8 != 0},
			Fault: arch.PageFaultExit{GPA: addr.GPA(a), Access: arch.Access(flags & 7), Walk: flags&0x10 != 0},
			CPL:   aux & 3, SIPIVector: aux, InsnLen: aux}
		e.v.exit = ex
		_ = e.v.handleExit(&e.v.exit)
	})
}

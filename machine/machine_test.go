package machine

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/arch"
	"github.com/keel-hv/keel/hv/hvtest"
	"github.com/keel-hv/keel/hv/mem"
)

// multibootImage is a Multiboot kernel with the a.out kludge: header, then
// code loaded at 1 MiB, entered at its first instruction.
func multibootImage() []byte {
	const load = 0x100000
	code := []byte{0xf4} // hlt
	img := make([]byte, 48)
	le := binary.LittleEndian
	flags := uint32(1<<16 | 1<<1)
	le.PutUint32(img[0:], 0x1badb002)
	le.PutUint32(img[4:], flags)
	le.PutUint32(img[8:], -(0x1badb002 + flags))
	le.PutUint32(img[12:], load)           // header_addr
	le.PutUint32(img[16:], load)           // load_addr
	le.PutUint32(img[20:], load+48+1)      // load_end_addr
	le.PutUint32(img[24:], load+48+0x1000) // bss_end_addr
	le.PutUint32(img[28:], load+48)        // entry_addr
	return append(img, code...)
}

func testEnv(t *testing.T, log *bytes.Buffer) Env {
	host := mem.NewSparseHost(1<<30, 1<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 1 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	var tsc uint64
	return Env{Backend: hvtest.Backend{}, Frames: frames, HostCPUID: hvtest.HostCPUID, Clock: &vclock.Fake{},
		TSC: func() uint64 { tsc += 1000; return tsc }, TSCHz: 1e9, Log: log}
}

func TestBuildMultiboot(t *testing.T) {
	var log bytes.Buffer
	d := AllDevices()
	d.DebugExit, d.DebugExitPort = true, 0xf4
	m, err := New(testEnv(t, &log), Spec{Name: "mb", VCPUs: 2, Memory: 64 << 20, Kernel: multibootImage(), Cmdline: "hello", Devices: d})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Destroy()
	vm := m.VM()
	r, _ := vm.VCPU(0).GetRegs()
	if r.GPR[arch.RAX] != 0x2badb002 || r.RIP != 0x100000+48 {
		t.Errorf("boot state: EAX=%#x RIP=%#x, want the Multiboot magic at the entry", r.GPR[arch.RAX], r.RIP)
	}
	// The ACPI tables are in guest memory where the RSDP says.
	var sig [8]byte
	if err := vm.Memory().Read(m.Tables().RSDP, sig[:]); err != nil || string(sig[:]) != "RSD PTR " {
		t.Errorf("RSDP at %s reads %q, %v", m.Tables().RSDP, sig, err)
	}
	// The UART prints on the console, prefixed in the log while
	// detached, and keeps the history.
	for _, c := range []byte("hi\n") {
		if err := vm.Ports().Write(COM1_PORT, []byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	if h := string(m.Console().History()); h != "hi\n" || !strings.Contains(log.String(), "[mb] hi\n") {
		t.Errorf("console history %q, log %q", h, log.String())
	}
	var att bytes.Buffer
	if old := m.Console().Attach(&att); string(old) != "hi\n" {
		t.Errorf("attach returned %q", old)
	}
	vm.Ports().Write(COM1_PORT, []byte{'x'})
	if att.String() != "x" {
		t.Errorf("attached writer got %q", att.String())
	}
	// The CMOS knows the memory size and the CPU count.
	vm.Ports().Write(RTC_PORT, []byte{0x5f})
	var b [1]byte
	vm.Ports().Read(RTC_PORT+1, b[:])
	if b[0] != 1 { // CPUs - 1, as in QEMU's CMOS layout
		t.Errorf("CMOS 0x5f = %d, want 1 (2 vCPUs)", b[0])
	}
	// debug-exit stops the VM with QEMU's status convention.
	if err := vm.Ports().Write(0xf4, []byte{3}); err != nil {
		t.Fatal(err)
	}
	if rep := vm.Report(); vm.State() != hv.Stopped || rep == nil || rep.ExitStatus != 7 || !strings.Contains(rep.Reason, "debug-exit") {
		t.Errorf("after debug-exit: %s %+v", vm.State(), rep)
	}
}

func TestBuildRefusesBadKernels(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "no kernel"},
		{"garbage", bytes.Repeat([]byte{0x90}, 9000), "neither a Linux bzImage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t, nil)
			before := env.Frames.Stats()
			_, err := New(env, Spec{Name: "bad", VCPUs: 1, Memory: 32 << 20, Kernel: tc.img, Devices: AllDevices()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
			if after := env.Frames.Stats(); after.Free != before.Free {
				t.Errorf("leaked %d bytes", before.Free-after.Free)
			}
		})
	}
}

func TestStartStopKill(t *testing.T) {
	m, err := New(testEnv(t, nil), Spec{Name: "run", VCPUs: 1, Memory: 32 << 20, Kernel: multibootImage(), Devices: AllDevices()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	// The fake guest never powers off: Stop presses the button, waits,
	// then kills.
	if m.Stop(20 * time.Millisecond) {
		t.Error("Stop reported a graceful shutdown from a guest that ignores the button")
	}
	select {
	case <-m.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the machine did not finish")
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
}

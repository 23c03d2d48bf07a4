package manager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-hv/keel/bundle/config"
	"github.com/keel-hv/keel/devices/vclock"
	"github.com/keel-hv/keel/hv/addr"
	"github.com/keel-hv/keel/hv/hvtest"
	"github.com/keel-hv/keel/hv/mem"
	"github.com/keel-hv/keel/machine"
)

// mbKernel is a Multiboot kernel (a.out kludge) that halts.
func mbKernel() []byte {
	const load = 0x100000
	img := make([]byte, 48)
	le := binary.LittleEndian
	flags := uint32(1<<16 | 1<<1)
	le.PutUint32(img[0:], 0x1badb002)
	le.PutUint32(img[4:], flags)
	le.PutUint32(img[8:], -(0x1badb002 + flags))
	le.PutUint32(img[12:], load)
	le.PutUint32(img[16:], load)
	le.PutUint32(img[20:], load+49)
	le.PutUint32(img[24:], load+49)
	le.PutUint32(img[28:], load+48)
	return append(img, 0xf4)
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newManager(t *testing.T) (*Manager, *mem.Frames, *syncBuffer) {
	host := mem.NewSparseHost(1<<30, 1<<30)
	frames, err := mem.NewFrames([]addr.Range{{Base: 1 << 30, Size: 1 << 30}}, nil, host)
	if err != nil {
		t.Fatal(err)
	}
	var tsc uint64
	log := &syncBuffer{}
	env := machine.Env{Backend: hvtest.Backend{}, Frames: frames, HostCPUID: hvtest.HostCPUID, Clock: &vclock.Fake{},
		TSC: func() uint64 { tsc++; return tsc }, TSCHz: 1e9, Log: log}
	return New(env, log), frames, log
}

func files(m map[string][]byte) Files {
	return func(name string) ([]byte, error) {
		if b, ok := m[name]; ok {
			return b, nil
		}
		return nil, errors.New("not in the bundle")
	}
}

func vmConfig(name, kernel string) config.VM {
	return config.VM{Name: name, Kernel: kernel, Memory: 32 << 20, VCPUs: 1, Devices: config.DefaultDevices, Autostart: true}
}

func TestLifecycle(t *testing.T) {
	mg, frames, log := newManager(t)
	free := frames.Stats().Free
	fs := files(map[string][]byte{"mb.elf": mbKernel(), "junk": bytes.Repeat([]byte{1}, 100)})
	if err := mg.Define(vmConfig("a", "mb.elf"), fs); err != nil {
		t.Fatal(err)
	}
	if err := mg.Define(vmConfig("bad", "junk"), fs); err != nil {
		t.Fatal(err)
	}
	if err := mg.Define(vmConfig("a", "mb.elf"), fs); err == nil {
		t.Error("a duplicate VM was accepted")
	}
	// Autostart starts a and reports bad's malformed kernel; the
	// manager goes on.
	err := mg.Autostart()
	if err == nil || !strings.Contains(err.Error(), `vm "bad" not started`) || !strings.Contains(err.Error(), "neither a Linux bzImage") {
		t.Fatalf("Autostart: %v", err)
	}
	if in, _ := mg.Info("a"); in.State != "running" {
		t.Fatalf("a is %s, want running", in.State)
	}
	if err := mg.Start("a"); !errors.Is(err, ErrRunning) {
		t.Errorf("second start: %v", err)
	}
	if _, err := mg.Info("nope"); !errors.Is(err, ErrNoVM) || !strings.Contains(err.Error(), "a, bad") {
		t.Errorf("unknown VM: %v", err)
	}
	// The fake guest ignores the power button: Stop forces it.
	graceful, err := mg.Stop("a", 10*time.Millisecond)
	if err != nil || graceful {
		t.Fatalf("Stop = %v, %v; want a forced stop", graceful, err)
	}
	in, _ := mg.Info("a")
	if in.State != "stopped" || in.Reason != "stopped by request" {
		t.Errorf("after stop: %+v", in)
	}
	if got := frames.Stats().Free; got != free {
		t.Errorf("free memory %d after stop, %d before start", got, free)
	}
	if err := mg.Kill("a"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("kill of a stopped VM: %v", err)
	}
	// Start again, then kill.
	if err := mg.Start("a"); err != nil {
		t.Fatal(err)
	}
	if err := mg.Kill("a"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "keel: vm a started") || !strings.Contains(log.String(), "keel: vm a stopped: stopped by request") {
		t.Errorf("log:\n%s", log.String())
	}
}

func TestConsoleAttach(t *testing.T) {
	mg, _, _ := newManager(t)
	fs := files(map[string][]byte{"mb.elf": mbKernel()})
	mg.Define(vmConfig("c", "mb.elf"), fs)
	if err := mg.Start("c"); err != nil {
		t.Fatal(err)
	}
	defer mg.Kill("c")
	mg.mu.Lock()
	m := mg.vms["c"].m
	mg.mu.Unlock()
	// Output while detached is kept for the attach.
	for _, b := range []byte("early\n") {
		m.VM().Ports().Write(machine.COM1_PORT, []byte{b})
	}
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- mg.Console("c", pr, out) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "early") {
		if time.Now().After(deadline) {
			t.Fatalf("attach did not show the history: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
	m.VM().Ports().Write(machine.COM1_PORT, []byte{'Z'})
	// Typed bytes reach the UART's receiver.
	pw.Write([]byte("k"))
	for {
		var lsr [1]byte
		m.VM().Ports().Read(machine.COM1_PORT+5, lsr[:])
		if lsr[0]&1 != 0 {
			var rbr [1]byte
			m.VM().Ports().Read(machine.COM1_PORT, rbr[:])
			if rbr[0] != 'k' {
				t.Fatalf("guest read %q, want k", rbr[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("typed byte never reached the guest")
		}
		time.Sleep(time.Millisecond)
	}
	pw.Write([]byte{ESCAPE})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "Z") || !strings.Contains(s, "detached from c") {
		t.Errorf("console output %q", s)
	}
}

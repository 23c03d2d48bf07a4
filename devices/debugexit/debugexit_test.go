package debugexit

import (
	"bytes"
	"strings"
	"testing"

	"github.com/keel-hv/keel/hv/bus"
)

func newOnBus(t *testing.T, port uint16, width int, got *[]uint64) *bus.PortBus {
	t.Helper()
	d, err := New(port, width, func(s uint64) { *got = append(*got, s) })
	if err != nil {
		t.Fatal(err)
	}
	b := bus.NewPortBus(bus.Policy{Strict: true})
	if err := b.Register(d.Port(), d.Width(), d, "debug-exit"); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWrites(t *testing.T) {
	tests := []struct {
		name   string
		port   uint16
		width  int
		at     uint16 // offset of the write
		data   []byte
		status uint64
	}{
		{"byte 0", 0xf4, 1, 0, []byte{0}, 1},
		{"byte 1", 0xf4, 1, 0, []byte{1}, 3},
		{"byte 0x10", 0xf4, 4, 0, []byte{0x10}, 0x21},
		{"QEMU default port, word", QEMU_DEFAULT_PORT, QEMU_DEFAULT_WIDTH, 0, []byte{0x34, 0x12}, 0x2469},
		{"byte at offset 1", QEMU_DEFAULT_PORT, 2, 1, []byte{0x7f}, 0xff},
		{"dword", 0xf4, 4, 0, []byte{0xff, 0xff, 0xff, 0xff}, 0x1ffffffff},
		{"word in a dword port", 0xf4, 4, 2, []byte{0x01, 0x80}, 0x10003},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []uint64
			b := newOnBus(t, tc.port, tc.width, &got)
			if err := b.Write(tc.port+tc.at, tc.data); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tc.status {
				t.Errorf("exit statuses %#x, want [%#x]", got, tc.status)
			}
		})
	}
}

func TestStatusIsOdd(t *testing.T) {
	for _, v := range []uint32{0, 1, 0x7f, 0x80, 0xffffffff} {
		if s := Status(v); s&1 != 1 || s>>1 != uint64(v) {
			t.Errorf("Status(%#x) = %#x", v, s)
		}
	}
}

func TestReadsAllOnes(t *testing.T) {
	var got []uint64
	b := newOnBus(t, 0xf4, 4, &got)
	d := []byte{0, 0, 0, 0}
	if err := b.Read(0xf4, d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, []byte{0xff, 0xff, 0xff, 0xff}) || len(got) != 0 {
		t.Errorf("read % x, exits %v; want ff ff ff ff and no exit", d, got)
	}
}

func TestNewRejects(t *testing.T) {
	exit := func(uint64) {}
	tests := []struct {
		name  string
		port  uint16
		width int
		exit  func(uint64)
		want  string
	}{
		{"width 3", 0xf4, 3, exit, "use 1, 2 or 4"},
		{"width 8", 0xf4, 8, exit, "use 1, 2 or 4"},
		{"past the port space", 0xfffe, 4, exit, "past port 0xffff"},
		{"no callback", 0xf4, 1, nil, "no exit callback"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(tc.port, tc.width, tc.exit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, %v; want an error containing %q", d, err, tc.want)
			}
		})
	}
	if _, err := New(0xfffc, 4, exit); err != nil {
		t.Errorf("New at the top of the port space: %v", err)
	}
}

func TestNoAllocations(t *testing.T) {
	var n int
	d, _ := New(0xf4, 4, func(uint64) { n++ })
	w := []byte{1, 2, 3, 4}
	if a := testing.AllocsPerRun(100, func() { d.Write(0, w); d.Read(0, w) }); a != 0 {
		t.Errorf("%v allocations per access, want 0", a)
	}
}

// FuzzDebugExit writes random data of random sizes: no panics, every
// status is odd and carries the value cut to the width.
func FuzzDebugExit(f *testing.F) {
	f.Add(uint8(1), uint8(0), []byte{0x10})
	f.Add(uint8(4), uint8(2), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, width, off uint8, data []byte) {
		var got []uint64
		d, err := New(0x501, int(width), func(s uint64) { got = append(got, s) })
		if err != nil {
			if width == 1 || width == 2 || width == 4 {
				t.Fatalf("New(width %d): %v", width, err)
			}
			return
		}
		if len(data) > 8 {
			data = data[:8]
		}
		d.Write(uint64(off), data)
		d.Read(uint64(off), data)
		for _, c := range data {
			if c != 0xff {
				t.Fatalf("read % x", data)
			}
		}
		if len(got) != 1 || got[0]&1 != 1 || got[0]>>1 >= 1<<(8*uint(width)) {
			t.Fatalf("width %d: statuses %#x", width, got)
		}
	})
}

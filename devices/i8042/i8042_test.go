package i8042

import (
	"testing"

	"github.com/keel-hv/keel/devices/irqline"
	"github.com/keel-hv/keel/hv/bus"
)

// rig is a controller and reset register on a port bus, with recording
// IRQ lines and a reset counter.
type rig struct {
	t        *testing.T
	c        *Controller
	b        *bus.PortBus
	kbd, aux *irqline.Recorder
	resets   int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, kbd: &irqline.Recorder{}, aux: &irqline.Recorder{}}
	r.c = New(func() { r.resets++ }, r.kbd, r.aux)
	r.b = bus.NewPortBus(bus.Policy{Strict: true})
	for _, d := range []struct {
		port uint16
		size uint32
		dev  bus.Device
		name string
	}{
		{DATA_PORT, SIZE, r.c.Data(), "i8042-data"},
		{COMMAND_PORT, SIZE, r.c.Command(), "i8042-command"},
		{RST_CNT_PORT, RST_CNT_SIZE, NewResetControl(func() { r.resets++ }), "rst-cnt"},
	} {
		if err := r.b.Register(d.port, d.size, d.dev, d.name); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *rig) out(port uint16, v uint8) {
	r.t.Helper()
	if err := r.b.Write(port, []byte{v}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) in(port uint16) uint8 {
	r.t.Helper()
	d := []byte{0}
	if err := r.b.Read(port, d); err != nil {
		r.t.Fatal(err)
	}
	return d[0]
}

// command sends cmd (and its data bytes) the way Linux's i8042_command
// does and reads n answer bytes, each with the status it came with.
func (r *rig) command(cmd uint8, params []uint8, n int) (answers, status []uint8) {
	r.t.Helper()
	if r.in(COMMAND_PORT)&STR_IBF != 0 {
		r.t.Fatal("input buffer full before a command")
	}
	r.out(COMMAND_PORT, cmd)
	for _, p := range params {
		r.out(DATA_PORT, p)
	}
	for range n {
		s := r.in(COMMAND_PORT)
		if s&STR_OBF == 0 {
			r.t.Fatalf("command %#x: no answer (status %#x)", cmd, s)
		}
		status = append(status, s)
		answers = append(answers, r.in(DATA_PORT))
	}
	return answers, status
}

func (r *rig) command1(cmd uint8, params ...uint8) uint8 {
	r.t.Helper()
	a, _ := r.command(cmd, params, 1)
	return a[0]
}

func (r *rig) empty(what string) {
	r.t.Helper()
	if s := r.in(COMMAND_PORT); s&STR_OBF != 0 {
		r.t.Errorf("%s: output buffer full (status %#x)", what, s)
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name   string
		cmd    uint8
		params []uint8
		want   uint8
	}{
		{"self-test", CMD_SELF_TEST, nil, SELF_TEST_OK},
		{"keyboard interface test", CMD_KBD_TEST, nil, INTERFACE_OK},
		{"aux interface test", CMD_AUX_TEST, nil, INTERFACE_OK},
		{"read command byte", CMD_READ_RAM, nil, CTR_RESET},
		{"read input port", CMD_READ_INPUT, nil, INPUT_PORT},
		{"read output port", CMD_READ_OUTPUT, nil, OUT_RESET_VALUE},
		{"read test inputs", CMD_READ_TEST, nil, 0},
		{"keyboard loopback", CMD_WRITE_KBD_OBUF, []uint8{0x1c}, 0x1c},
		{"aux loopback", CMD_WRITE_AUX_OBUF, []uint8{0x5a}, 0x5a},
		{"write to aux: no device", CMD_WRITE_AUX, []uint8{0xff}, DEVICE_TIMEOUT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			if got := r.command1(tc.cmd, tc.params...); got != tc.want {
				t.Errorf("answer %#x, want %#x", got, tc.want)
			}
			r.empty("after the answer")
		})
	}
}

func TestStatus(t *testing.T) {
	r := newRig(t)
	if got := r.in(COMMAND_PORT); got != STR_KEYLOCK|STR_SYS {
		t.Errorf("status after reset = %#x, want %#x", got, STR_KEYLOCK|STR_SYS)
	}
	r.out(COMMAND_PORT, CMD_KBD_DISABLE)
	if got := r.in(COMMAND_PORT); got&STR_CMD == 0 {
		t.Errorf("status after a command = %#x, want STR_CMD", got)
	}
	// Clearing the command byte's system flag clears the status's.
	r.out(COMMAND_PORT, CMD_WRITE_RAM)
	r.out(DATA_PORT, 0)
	if got := r.in(COMMAND_PORT); got != STR_KEYLOCK {
		t.Errorf("status after data with SYS clear = %#x, want %#x", got, STR_KEYLOCK)
	}
	// The self-test sets it again.
	r.command1(CMD_SELF_TEST)
	if got := r.in(COMMAND_PORT); got&STR_SYS == 0 {
		t.Errorf("status after self-test = %#x, want STR_SYS", got)
	}
	// An empty output buffer reads the last byte again.
	if a, b := r.in(DATA_PORT), r.in(DATA_PORT); a != SELF_TEST_OK || b != SELF_TEST_OK {
		t.Errorf("empty data port reads %#x %#x, want the last byte", a, b)
	}
}

// TestLinuxProbe follows Linux's i8042 driver: self-test, command byte,
// MUX detection, AUX checks and the keyboard probe of atkbd.
func TestLinuxProbe(t *testing.T) {
	r := newRig(t)
	if got := r.command1(CMD_SELF_TEST); got != SELF_TEST_OK {
		t.Fatalf("self-test %#x", got)
	}
	ctr := r.command1(CMD_READ_RAM)
	if again := r.command1(CMD_READ_RAM); again != ctr {
		t.Fatalf("unstable command byte %#x %#x", ctr, again)
	}
	ctr = ctr&^CTR_KBDINT | CTR_KBDDIS
	r.command(CMD_WRITE_RAM, []uint8{ctr}, 0)
	if got := r.command1(CMD_READ_RAM); got != ctr {
		t.Errorf("command byte %#x, want %#x", got, ctr)
	}
	// i8042_set_mux_mode: the third loopback byte must come back
	// unchanged, which means "no MUX".
	for _, v := range []uint8{0xf0, 0x56, 0xa4} {
		a, s := r.command(CMD_WRITE_AUX_OBUF, []uint8{v}, 1)
		if a[0] != v || s[0]&STR_AUXDATA == 0 {
			t.Errorf("aux loopback %#x: got %#x with status %#x", v, a[0], s[0])
		}
	}
	// i8042_toggle_aux.
	r.command(CMD_AUX_DISABLE, nil, 0)
	if r.command1(CMD_READ_RAM)&CTR_AUXDIS == 0 {
		t.Error("AUXDIS not set by disable")
	}
	r.command(CMD_AUX_ENABLE, nil, 0)
	if r.command1(CMD_READ_RAM)&CTR_AUXDIS != 0 {
		t.Error("AUXDIS not cleared by enable")
	}
	// AUX IRQ test: with AUXINT set, a loopback byte raises IRQ 12.
	ctr = r.command1(CMD_READ_RAM) | CTR_AUXINT
	r.command(CMD_WRITE_RAM, []uint8{ctr}, 0)
	r.out(COMMAND_PORT, CMD_WRITE_AUX_OBUF)
	r.out(DATA_PORT, 0xa5)
	if !r.aux.Level() || r.kbd.Level() {
		t.Errorf("aux loopback: aux line %v, kbd line %v; want true, false", r.aux.Level(), r.kbd.Level())
	}
	if s, d := r.in(COMMAND_PORT), r.in(DATA_PORT); s&(STR_OBF|STR_AUXDATA) != STR_OBF|STR_AUXDATA || d != 0xa5 {
		t.Errorf("aux IRQ handler read status %#x data %#x", s, d)
	}
	if r.aux.Level() {
		t.Error("aux line still high after the read")
	}
	// Enable the keyboard port, then atkbd's GETID: the absent
	// keyboard times out with FEh and IRQ 1.
	ctr = ctr&^CTR_KBDDIS | CTR_KBDINT
	r.command(CMD_WRITE_RAM, []uint8{ctr}, 0)
	r.out(DATA_PORT, 0xf2)
	if !r.kbd.Level() {
		t.Error("keyboard line low after a byte to the keyboard")
	}
	if s, d := r.in(COMMAND_PORT), r.in(DATA_PORT); s&(STR_OBF|STR_TIMEOUT|STR_AUXDATA) != STR_OBF|STR_TIMEOUT || d != DEVICE_TIMEOUT {
		t.Errorf("keyboard answer: status %#x data %#x, want time-out and %#x", s, d, DEVICE_TIMEOUT)
	}
	if r.kbd.Level() {
		t.Error("keyboard line high after the read")
	}
	// psmouse: a byte to the absent mouse.
	a, s := r.command(CMD_WRITE_AUX, []uint8{0xf2}, 1)
	if a[0] != DEVICE_TIMEOUT || s[0]&(STR_TIMEOUT|STR_AUXDATA) != STR_TIMEOUT|STR_AUXDATA {
		t.Errorf("mouse answer %#x with status %#x", a[0], s[0])
	}
	r.empty("end of probe")
	if r.resets != 0 {
		t.Errorf("%d resets during the probe", r.resets)
	}
}

func TestInterruptEnables(t *testing.T) {
	r := newRig(t)
	r.command(CMD_WRITE_RAM, []uint8{0}, 0) // no interrupts
	r.out(DATA_PORT, 0xee)
	if r.kbd.Level() {
		t.Error("keyboard line high with KBDINT clear")
	}
	// Enabling the interrupt with the byte waiting raises the line.
	r.out(COMMAND_PORT, CMD_WRITE_RAM)
	r.out(DATA_PORT, CTR_KBDINT) // this byte is for the command: no answer
	if !r.kbd.Level() {
		t.Error("keyboard line low after KBDINT set with a byte waiting")
	}
	// The output port shows IRQ 1 up while the FEh waits.
	r.out(COMMAND_PORT, CMD_READ_OUTPUT)
	if got := r.in(DATA_PORT); got != DEVICE_TIMEOUT {
		t.Errorf("first byte %#x, want %#x", got, DEVICE_TIMEOUT)
	}
	if got := r.in(DATA_PORT); got&OUT_IRQ1 == 0 {
		t.Errorf("output port %#x, want OUT_IRQ1", got)
	}
	if r.kbd.Level() {
		t.Error("keyboard line high with the output buffer empty")
	}
}

func TestReset(t *testing.T) {
	tests := []struct {
		name   string
		port   uint16
		writes []uint8
		resets int
	}{
		{"pulse reset line (FEh)", COMMAND_PORT, []uint8{0xfe}, 1},
		{"pulse all lines (F0h)", COMMAND_PORT, []uint8{0xf0}, 1},
		{"pulse nothing (FFh)", COMMAND_PORT, []uint8{0xff}, 0},
		{"pulse A20 only (FDh)", COMMAND_PORT, []uint8{0xfd}, 0},
		{"Linux reboot loop", COMMAND_PORT, []uint8{0xfe, 0xfe, 0xfe}, 3},
		{"self-test does not reset", COMMAND_PORT, []uint8{0xaa}, 0},
		{"CF9 warm reboot", RST_CNT_PORT, []uint8{0x00 | RST_CNT_SYS_RST, RST_CNT_SYS_RST | RST_CNT_RST_CPU}, 1},
		{"CF9 soft reset", RST_CNT_PORT, []uint8{RST_CNT_RST_CPU}, 1},
		{"CF9 SYS_RST alone", RST_CNT_PORT, []uint8{RST_CNT_SYS_RST, RST_CNT_FULL_RST | RST_CNT_SYS_RST}, 0},
		{"CF9 twice", RST_CNT_PORT, []uint8{0x06, 0x06}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			for _, v := range tc.writes {
				r.out(tc.port, v)
			}
			if r.resets != tc.resets {
				t.Errorf("%d resets, want %d", r.resets, tc.resets)
			}
		})
	}
}

func TestOutputPort(t *testing.T) {
	tests := []struct {
		name   string
		value  uint8
		resets int
	}{
		{"A20 off, running", OUT_RESET, 0},
		{"A20 on, running", OUT_RESET | OUT_A20, 0},
		{"reset line low", OUT_A20, 1},
		{"all zero", 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.command(CMD_WRITE_OUTPUT, []uint8{tc.value}, 0)
			if r.resets != tc.resets {
				t.Errorf("%d resets, want %d", r.resets, tc.resets)
			}
			if got := r.command1(CMD_READ_OUTPUT); got&^OUT_IRQ1 != tc.value {
				t.Errorf("output port reads %#x, want %#x", got, tc.value)
			}
		})
	}
}

func TestRAMAndQueue(t *testing.T) {
	r := newRig(t)
	r.command(CMD_WRITE_RAM+5, []uint8{0x42}, 0)
	if got := r.command1(CMD_READ_RAM + 5); got != 0x42 {
		t.Errorf("RAM byte 5 = %#x, want 0x42", got)
	}
	// Unanswered commands pile up to QUEUE_SIZE bytes.
	for range QUEUE_SIZE + 4 {
		r.out(COMMAND_PORT, CMD_SELF_TEST)
	}
	n := 0
	for ; r.in(COMMAND_PORT)&STR_OBF != 0 && n < 100; n++ {
		r.in(DATA_PORT)
	}
	if n != QUEUE_SIZE {
		t.Errorf("drained %d bytes, want %d", n, QUEUE_SIZE)
	}
	// A command interrupts one waiting for data; unknown commands do
	// nothing.
	r.out(COMMAND_PORT, CMD_WRITE_RAM)
	r.out(COMMAND_PORT, 0x01)
	r.out(DATA_PORT, 0x00) // now for the absent keyboard
	if got := r.in(DATA_PORT); got != DEVICE_TIMEOUT {
		t.Errorf("keyboard answer %#x, want %#x", got, DEVICE_TIMEOUT)
	}
	if got := r.command1(CMD_READ_RAM); got != CTR_RESET {
		t.Errorf("command byte %#x, want %#x", got, CTR_RESET)
	}
	r.c.Reset()
	r.empty("after Reset")
}

func TestResetControlReadBack(t *testing.T) {
	r := newRig(t)
	r.out(RST_CNT_PORT, 0xff)
	if got := r.in(RST_CNT_PORT); got != RST_CNT_SYS_RST|RST_CNT_FULL_RST {
		t.Errorf("RST_CNT = %#x, want %#x", got, RST_CNT_SYS_RST|RST_CNT_FULL_RST)
	}
	if r.resets != 1 {
		t.Errorf("%d resets, want 1", r.resets)
	}
}

func TestNoAllocations(t *testing.T) {
	r := newRig(t)
	d, c := r.c.Data(), r.c.Command()
	aa, b := []byte{CMD_SELF_TEST}, []byte{0}
	allocs := testing.AllocsPerRun(100, func() {
		c.Write(0, aa)
		c.Read(0, b)
		d.Read(0, b)
		d.Write(0, b)
		d.Read(0, b)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
}

// FuzzI8042 sends random bytes to both ports and the reset register: no
// panics, the queue stays bounded, and the IRQ lines match the state.
func FuzzI8042(f *testing.F) {
	f.Add([]byte{0x01, 0xaa, 0x00, 0x00, 0x01, 0x60, 0x03, 0x47, 0x01, 0xd3, 0x03, 0x5a, 0x00, 0x00})
	f.Add([]byte{0x01, 0xd1, 0x03, 0x00, 0x01, 0xfe, 0x05, 0x06, 0x01, 0xd4, 0x03, 0xff})
	f.Fuzz(func(t *testing.T, ops []byte) {
		kbd, aux := &irqline.Recorder{}, &irqline.Recorder{}
		resets := 0
		c := New(func() { resets++ }, kbd, aux)
		rc := NewResetControl(func() { resets++ })
		devs := []bus.Device{c.Data(), c.Command(), rc}
		buf := make([]byte, 8)
		for i := 0; i+1 < len(ops); i += 2 {
			op, v := ops[i], ops[i+1]
			d := devs[int(op>>1)%len(devs)]
			size := 1 << (op >> 6) // beyond the bus's guarantees on purpose
			if op&1 == 0 {
				d.Read(uint64(op>>4&1), buf[:size])
			} else {
				buf[0] = v
				d.Write(uint64(op>>4&1), buf[:size])
			}
			c.mu.Lock()
			if c.qLen < 0 || c.qLen > QUEUE_SIZE {
				t.Fatalf("queue length %d", c.qLen)
			}
			if kbd.Level() != c.kbdLevel || aux.Level() != c.auxLevel {
				t.Fatalf("lines kbd %v aux %v, controller says %v %v", kbd.Level(), aux.Level(), c.kbdLevel, c.auxLevel)
			}
			if c.kbdLevel && c.auxLevel {
				t.Fatal("both IRQ lines high for one output buffer")
			}
			if c.qLen == 0 && (c.kbdLevel || c.auxLevel) {
				t.Fatal("IRQ line high with an empty output buffer")
			}
			c.mu.Unlock()
		}
	})
}

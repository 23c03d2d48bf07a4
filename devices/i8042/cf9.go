package i8042

import "sync"

// The reset control register of Intel chipsets (PIIX3/PIIX4 "RC — Reset
// Control Register"; ICH/PCH "RST_CNT — Reset Control Register", I/O port
// CF9h). Linux's reboot=pci (and its fallback after the keyboard
// controller) writes SYS_RST, then SYS_RST|RST_CPU.
const (
	RST_CNT_PORT = 0xcf9
	// RST_CNT_SIZE is the number of ports ResetControl decodes.
	RST_CNT_SIZE = 1

	// RST_CNT_SYS_RST selects a hard (system) reset for RST_CPU; clear,
	// RST_CPU asks for a soft reset (INIT). Both reset the VM here.
	RST_CNT_SYS_RST = 1 << 1
	// RST_CNT_RST_CPU requests the reset on a 0-to-1 transition.
	RST_CNT_RST_CPU = 1 << 2
	// RST_CNT_FULL_RST asks for a power cycle with a hard reset; it is
	// remembered and otherwise treated as a hard reset.
	RST_CNT_FULL_RST = 1 << 3
	// RST_CNT_MASK is the bits that read back.
	RST_CNT_MASK = RST_CNT_SYS_RST | RST_CNT_RST_CPU | RST_CNT_FULL_RST
)

// ResetControl is the reset control register at RST_CNT_PORT. Its zero
// value is not usable; use NewResetControl. It is safe for concurrent use.
//
// On the PC, 32-bit accesses at CF8h are the PCI configuration address:
// CF9h is this register only for byte accesses. A PCI host bridge that
// claims CF8h-CFFh must pass byte accesses at CF9h here.
type ResetControl struct {
	mu    sync.Mutex
	v     uint8
	reset func()
}

// NewResetControl returns the register, which calls reset (without its
// lock held) when the guest requests a reset. A nil reset is allowed.
func NewResetControl(reset func()) *ResetControl {
	return &ResetControl{reset: reset}
}

// Read implements bus.Device.
func (r *ResetControl) Read(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		data[i] = 0xff
	}
	if offset == 0 && len(data) > 0 {
		data[0] = r.v
	}
}

// Write implements bus.Device. Setting RST_CPU when it was clear requests
// a reset; the register then reads with RST_CPU clear, as after the reset
// it causes, so that the next request is a transition again.
func (r *ResetControl) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	r.mu.Lock()
	v := data[0] & RST_CNT_MASK
	trigger := v&RST_CNT_RST_CPU != 0 && r.v&RST_CNT_RST_CPU == 0
	if trigger {
		v &^= RST_CNT_RST_CPU
	}
	r.v = v
	r.mu.Unlock()
	if trigger && r.reset != nil {
		r.reset()
	}
}

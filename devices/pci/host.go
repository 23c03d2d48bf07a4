// Package pci is a PCI host bridge with configuration mechanism #1, and a
// type 0 configuration-space helper for the functions attached behind it.
//
// Host is one bus.Device of SIZE ports at PORT_BASE (CF8h-CFFh):
// CONFIG_ADDRESS at CF8h, latched only by 32-bit accesses, and CONFIG_DATA
// at CFCh-CFFh, where byte, word and dword accesses reach the selected
// function's configuration dword at the matching byte offset (PCI Local Bus
// Specification 3.0, §3.2.2.3.2 "Software Generation of Configuration
// Transactions"). Bus 0 holds the host bridge at 00:00.0 and whatever
// Functions are attached; every other bus, device and function reads as
// all-ones (master abort) and ignores writes. That is what Linux's
// pci_check_type1 probe and bus scan expect: a dword write of 80000000h
// to CF8h reads back unchanged, and a host bridge class or an Intel
// vendor ID is found on bus 0.
//
// The host bridge identifies as the Intel 82441FX PCI and memory
// controller of the 440FX chipset (8086:1237, revision 02h), class 06h
// subclass 00h, as QEMU's pc machine does: a conventional PCI host bridge
// reached through mechanism #1, which Linux drives without chipset-specific
// code. Its chipset registers (PAM, SMRAM, DRAM rows) are not modelled and
// read as 0.
//
// Byte accesses to port CF9h are the reset control register of Intel
// chipsets (ICH9 datasheet, §13.7.5 "RST_CNT—Reset Control Register"),
// which the ACPI FADT's RESET_REG commonly names; writing RST_CNT_RST_CPU
// calls HostConfig.Reset. Other non-dword accesses to CF8h-CFBh are
// ordinary I/O with nothing behind it.
//
// # Locking
//
// The host's mutex guards CONFIG_ADDRESS and the attachment table. It is
// released before a Function or the Reset callback is called, so they may
// call back into the host.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package pci

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// Ports and CONFIG_ADDRESS layout (PCI 3.0, §3.2.2.3.2, Figure 3-2
// "Layout of CONFIG_ADDRESS Register").
const (
	// PORT_BASE is CONFIG_ADDRESS; CONFIG_DATA is at PORT_BASE+4.
	PORT_BASE = 0xcf8
	// SIZE is the number of ports the host claims.
	SIZE = 8
	// OFFSET_CONFIG_ADDRESS, OFFSET_RESET_CONTROL and OFFSET_CONFIG_DATA
	// are offsets from PORT_BASE.
	OFFSET_CONFIG_ADDRESS = 0
	OFFSET_RESET_CONTROL  = 1
	OFFSET_CONFIG_DATA    = 4

	CONFIG_ADDRESS_ENABLE         = 1 << 31
	CONFIG_ADDRESS_BUS_SHIFT      = 16
	CONFIG_ADDRESS_DEVICE_SHIFT   = 11
	CONFIG_ADDRESS_FUNCTION_SHIFT = 8
	CONFIG_ADDRESS_REGISTER_MASK  = 0xfc
	// CONFIG_ADDRESS_MASK keeps the implemented bits: bits 30-24 are
	// reserved and bits 1-0 read as 0.
	CONFIG_ADDRESS_MASK = 0x80fffffc

	// MAX_DEVICES and MAX_FUNCTIONS bound device and function numbers.
	MAX_DEVICES   = 32
	MAX_FUNCTIONS = 8
)

// Reset control register bits, port CF9h (ICH9 §13.7.5).
const (
	RST_CNT_SYS_RST  = 1 << 1
	RST_CNT_RST_CPU  = 1 << 2
	RST_CNT_FULL_RST = 1 << 3
)

// Host bridge identity (Intel 440FX PCIset datasheet, 82441FX "PCI
// Configuration Registers": VID 8086h, DID 1237h).
const (
	VENDOR_INTEL         = 0x8086
	DEVICE_INTEL_82441FX = 0x1237
	REVISION_82441FX     = 0x02
	HOST_BRIDGE_DEVICE   = 0
	HOST_BRIDGE_FUNCTION = 0
)

// HostConfig configures a Host.
type HostConfig struct {
	// Reset, if not nil, is called when the guest writes
	// RST_CNT_RST_CPU to port CF9h: a platform reset request.
	Reset func()
}

// Host is the PCI host bridge and configuration mechanism #1. It
// implements bus.Device for ports CF8h-CFFh. Use NewHost.
type Host struct {
	mu     sync.Mutex
	addr   uint32
	rstCnt byte
	fns    [MAX_DEVICES * MAX_FUNCTIONS]Function // bus 0
	reset  func()
	bridge *ConfigSpace
}

// NewHost returns a host bridge with itself attached at 00:00.0.
func NewHost(cfg HostConfig) *Host {
	bridge, err := NewType0(Header{
		VendorID:   VENDOR_INTEL,
		DeviceID:   DEVICE_INTEL_82441FX,
		RevisionID: REVISION_82441FX,
		ClassCode:  CLASS_BRIDGE,
		Subclass:   SUBCLASS_BRIDGE_HOST,
		Command:    COMMAND_MEMORY_SPACE | COMMAND_BUS_MASTER,
		Status:     STATUS_DEVSEL_MEDIUM | STATUS_FAST_B2B,
	})
	if err != nil {
		panic("pci: host bridge header: " + err.Error()) // constant input
	}
	h := &Host{reset: cfg.Reset, bridge: bridge}
	h.fns[HOST_BRIDGE_DEVICE*MAX_FUNCTIONS+HOST_BRIDGE_FUNCTION] = bridge
	return h
}

// Bridge returns the host bridge's configuration space.
func (h *Host) Bridge() *ConfigSpace { return h.bridge }

// Attach puts f at bus 0, device dev, function fn.
func (h *Host) Attach(dev, fn int, f Function) error {
	if dev < 0 || dev >= MAX_DEVICES || fn < 0 || fn >= MAX_FUNCTIONS {
		return fmt.Errorf("pci: cannot attach at 00:%02x.%x: device must be 0-%d and function 0-%d",
			dev, fn, MAX_DEVICES-1, MAX_FUNCTIONS-1)
	}
	if f == nil {
		return fmt.Errorf("pci: attach at 00:%02x.%x without a function", dev, fn)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns[dev*MAX_FUNCTIONS+fn] != nil {
		return fmt.Errorf("pci: 00:%02x.%x is already in use; pick a free slot", dev, fn)
	}
	h.fns[dev*MAX_FUNCTIONS+fn] = f
	return nil
}

// Detach removes the function at bus 0, device dev, function fn.
func (h *Host) Detach(dev, fn int) error {
	if dev < 0 || dev >= MAX_DEVICES || fn < 0 || fn >= MAX_FUNCTIONS || (dev == HOST_BRIDGE_DEVICE && fn == HOST_BRIDGE_FUNCTION) {
		return fmt.Errorf("pci: cannot detach 00:%02x.%x", dev, fn)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fns[dev*MAX_FUNCTIONS+fn] == nil {
		return fmt.Errorf("pci: nothing attached at 00:%02x.%x", dev, fn)
	}
	h.fns[dev*MAX_FUNCTIONS+fn] = nil
	return nil
}

// target returns the function CONFIG_ADDRESS selects and the register
// offset, or nil. Called with h.mu held.
func (h *Host) target() (Function, uint16) {
	a := h.addr
	if a&CONFIG_ADDRESS_ENABLE == 0 || (a>>CONFIG_ADDRESS_BUS_SHIFT)&0xff != 0 {
		return nil, 0
	}
	i := (a >> CONFIG_ADDRESS_FUNCTION_SHIFT) & (MAX_DEVICES*MAX_FUNCTIONS - 1)
	return h.fns[i], uint16(a & CONFIG_ADDRESS_REGISTER_MASK)
}

// Read implements bus.Device.
func (h *Host) Read(offset uint64, data []byte) {
	switch {
	case offset == OFFSET_CONFIG_ADDRESS && len(data) == 4:
		h.mu.Lock()
		binary.LittleEndian.PutUint32(data, h.addr)
		h.mu.Unlock()
		return
	case offset == OFFSET_RESET_CONTROL && len(data) == 1:
		h.mu.Lock()
		data[0] = h.rstCnt
		h.mu.Unlock()
		return
	case offset >= OFFSET_CONFIG_DATA && offset+uint64(len(data)) <= SIZE:
		h.mu.Lock()
		f, reg := h.target()
		h.mu.Unlock()
		if f != nil {
			f.ReadConfig(reg+uint16(offset-OFFSET_CONFIG_DATA), data)
			return
		}
	}
	for i := range data {
		data[i] = 0xff
	}
}

// Write implements bus.Device.
func (h *Host) Write(offset uint64, data []byte) {
	switch {
	case offset == OFFSET_CONFIG_ADDRESS && len(data) == 4:
		h.mu.Lock()
		h.addr = binary.LittleEndian.Uint32(data) & CONFIG_ADDRESS_MASK
		h.mu.Unlock()
	case offset == OFFSET_RESET_CONTROL && len(data) == 1:
		v := data[0]
		h.mu.Lock()
		h.rstCnt = v & (RST_CNT_SYS_RST | RST_CNT_FULL_RST) // RST_CPU self-clears
		reset := h.reset
		h.mu.Unlock()
		if v&RST_CNT_RST_CPU != 0 && reset != nil {
			reset()
		}
	case offset >= OFFSET_CONFIG_DATA && offset+uint64(len(data)) <= SIZE:
		h.mu.Lock()
		f, reg := h.target()
		h.mu.Unlock()
		if f != nil {
			f.WriteConfig(reg+uint16(offset-OFFSET_CONFIG_DATA), data)
		}
	}
}

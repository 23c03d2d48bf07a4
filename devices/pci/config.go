package pci

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// Type 0 configuration space header (PCI Local Bus Specification 3.0,
// §6.1 "Configuration Space Organization", Figure 6-1 "Type 00h
// Configuration Space Header").
const (
	CFG_VENDOR_ID           = 0x00
	CFG_DEVICE_ID           = 0x02
	CFG_COMMAND             = 0x04
	CFG_STATUS              = 0x06
	CFG_REVISION_ID         = 0x08
	CFG_PROG_IF             = 0x09
	CFG_SUBCLASS            = 0x0a
	CFG_CLASS_CODE          = 0x0b
	CFG_CACHE_LINE_SIZE     = 0x0c
	CFG_LATENCY_TIMER       = 0x0d
	CFG_HEADER_TYPE         = 0x0e
	CFG_BIST                = 0x0f
	CFG_BAR0                = 0x10
	CFG_CARDBUS_CIS         = 0x28
	CFG_SUBSYSTEM_VENDOR_ID = 0x2c
	CFG_SUBSYSTEM_ID        = 0x2e
	CFG_EXPANSION_ROM       = 0x30
	CFG_CAPABILITIES        = 0x34
	CFG_INTERRUPT_LINE      = 0x3c
	CFG_INTERRUPT_PIN       = 0x3d
	CFG_MIN_GNT             = 0x3e
	CFG_MAX_LAT             = 0x3f
	// CFG_HEADER_SIZE is the end of the standard header; device-specific
	// registers and capabilities follow.
	CFG_HEADER_SIZE = 0x40
	// CONFIG_SPACE_SIZE is the configuration space of a conventional PCI
	// function (PCI Express extends it to 4096 bytes).
	CONFIG_SPACE_SIZE = 256
	// NUM_BARS is the number of base address registers of a type 0
	// header.
	NUM_BARS = 6
)

// Command register bits (PCI 3.0, §6.2.2 "Device Control", Figure 6-2).
const (
	COMMAND_IO_SPACE          = 1 << 0
	COMMAND_MEMORY_SPACE      = 1 << 1
	COMMAND_BUS_MASTER        = 1 << 2
	COMMAND_SPECIAL_CYCLES    = 1 << 3
	COMMAND_MWI_ENABLE        = 1 << 4
	COMMAND_VGA_PALETTE_SNOOP = 1 << 5
	COMMAND_PARITY_ERROR_RESP = 1 << 6
	COMMAND_SERR_ENABLE       = 1 << 8
	COMMAND_FAST_B2B_ENABLE   = 1 << 9
	COMMAND_INTERRUPT_DISABLE = 1 << 10
)

// Status register bits (PCI 3.0, §6.2.3 "Device Status", Figure 6-3).
const (
	STATUS_INTERRUPT       = 1 << 3
	STATUS_CAP_LIST        = 1 << 4
	STATUS_66MHZ           = 1 << 5
	STATUS_FAST_B2B        = 1 << 7
	STATUS_DEVSEL_MEDIUM   = 1 << 9
	STATUS_SIG_TARGET_ABRT = 1 << 11
	STATUS_RCV_TARGET_ABRT = 1 << 12
	STATUS_RCV_MASTER_ABRT = 1 << 13
	STATUS_SIG_SYSTEM_ERR  = 1 << 14
	STATUS_DETECTED_PARITY = 1 << 15
)

// Header type and base address register encoding (PCI 3.0, §6.2.1
// "Device Identification"; §6.2.5.1 "Address Maps").
const (
	HEADER_TYPE_NORMAL         = 0x00
	HEADER_TYPE_MULTI_FUNCTION = 0x80

	BAR_IO_SPACE      = 1 << 0
	BAR_MEM_TYPE_64   = 2 << 1
	BAR_MEM_PREFETCH  = 1 << 3
	BAR_IO_ADDR_MASK  = ^uint32(0x3)
	BAR_MEM_ADDR_MASK = ^uint32(0xf)
	// BAR_MIN_MEM_SIZE and BAR_MIN_IO_SIZE are the smallest decodes a
	// BAR can describe; BAR_MAX_IO_SIZE is the largest an I/O BAR may
	// request.
	BAR_MIN_MEM_SIZE = 16
	BAR_MIN_IO_SIZE  = 4
	BAR_MAX_IO_SIZE  = 256
)

// Class codes used here (PCI Code and ID Assignment Specification 1.x,
// "Base Class 06h").
const (
	CLASS_BRIDGE          = 0x06
	SUBCLASS_BRIDGE_HOST  = 0x00
	SUBCLASS_BRIDGE_ISA   = 0x01
	SUBCLASS_BRIDGE_OTHER = 0x80
)

// Function is one function's configuration space, as seen through a host
// bridge. offset is a byte offset in configuration space (0-255 through
// mechanism #1; up to 4095 for PCI Express), len(data) is 1, 2 or 4 and the
// access does not cross a dword boundary; data is little-endian. The host
// calls Function methods without holding its own lock, possibly from
// several goroutines; they must not panic and should not allocate.
type Function interface {
	// ReadConfig fills data from configuration space at offset.
	ReadConfig(offset uint16, data []byte)
	// WriteConfig writes data to configuration space at offset.
	WriteConfig(offset uint16, data []byte)
}

// BAR describes a base address register a function implements.
type BAR struct {
	// Size is the number of bytes decoded: a power of two, at least
	// BAR_MIN_MEM_SIZE for memory and BAR_MIN_IO_SIZE to
	// BAR_MAX_IO_SIZE for I/O. Zero means the BAR is not implemented.
	Size uint64
	// IO selects I/O space instead of memory space.
	IO bool
	// Mem64 makes a memory BAR 64 bits wide; it then also occupies the
	// next BAR, which must have Size 0.
	Mem64 bool
	// Prefetchable marks a memory BAR prefetchable.
	Prefetchable bool
}

// Header is the identity and resources of a type 0 function.
type Header struct {
	// VendorID and DeviceID identify the function.
	VendorID, DeviceID uint16
	// RevisionID is the function's revision.
	RevisionID uint8
	// ClassCode, Subclass and ProgIF are the class code register.
	ClassCode, Subclass, ProgIF uint8
	// MultiFunction sets bit 7 of the header type (function 0 of a
	// device with more functions).
	MultiFunction bool
	// SubsystemVendorID and SubsystemID identify the board.
	SubsystemVendorID, SubsystemID uint16
	// InterruptPin is 0 for none or 1-4 for INTA#-INTD#.
	InterruptPin uint8
	// BARs are the base address registers; BARs[i].Size 0 leaves BAR i
	// unimplemented (reads 0, ignores writes).
	BARs [NUM_BARS]BAR
	// Command is the command register's initial value; Status holds
	// its read-only bits (STATUS_CAP_LIST is added if CapPointer != 0).
	Command, Status uint16
	// CapPointer is the offset of the first capability, or 0.
	CapPointer uint8
	// Changed, if not nil, is called after a guest write to the command
	// register or a BAR, without the ConfigSpace's lock held, so that the
	// device can move or enable its bus registrations (see BAR).
	Changed func()
}

// ConfigSpace is a type 0 configuration space: the standard header with
// read-only identity, a writable command register, size-probing BARs
// (writing all-ones reads back the size mask, as the address bits below
// the size are hardwired to zero), writable cache line size, latency timer
// and interrupt line, and device-specific bytes added with Define. It
// implements Function and is safe for concurrent use. Use NewType0.
type ConfigSpace struct {
	mu      sync.Mutex
	cfg     [CONFIG_SPACE_SIZE]byte
	wmask   [CONFIG_SPACE_SIZE]byte // bits the guest may write
	bars    [NUM_BARS]BAR
	changed func()
}

// ErrBadBAR is wrapped by NewType0's errors for impossible BARs.
var ErrBadBAR = errors.New("bad BAR")

// NewType0 returns the configuration space of a function with header h.
func NewType0(h Header) (*ConfigSpace, error) {
	c := &ConfigSpace{bars: h.BARs, changed: h.Changed}
	if h.InterruptPin > 4 {
		return nil, fmt.Errorf("pci: interrupt pin %d: want 0 (none) or 1-4 (INTA#-INTD#)", h.InterruptPin)
	}
	if h.CapPointer != 0 && (h.CapPointer < CFG_HEADER_SIZE || h.CapPointer&3 != 0) {
		return nil, fmt.Errorf("pci: capability pointer %#x: want a dword offset from %#x", h.CapPointer, CFG_HEADER_SIZE)
	}
	cmdMask := uint16(COMMAND_BUS_MASTER)
	if h.InterruptPin != 0 {
		cmdMask |= COMMAND_INTERRUPT_DISABLE
	}
	for i := 0; i < NUM_BARS; i++ {
		b := h.BARs[i]
		if b.Size == 0 {
			if b.IO || b.Mem64 || b.Prefetchable {
				return nil, fmt.Errorf("pci: BAR %d has attributes but size 0: %w", i, ErrBadBAR)
			}
			continue
		}
		off := CFG_BAR0 + 4*i
		switch {
		case bits.OnesCount64(b.Size) != 1:
			return nil, fmt.Errorf("pci: BAR %d size %#x is not a power of two: %w", i, b.Size, ErrBadBAR)
		case b.IO && (b.Mem64 || b.Prefetchable):
			return nil, fmt.Errorf("pci: I/O BAR %d cannot be 64-bit or prefetchable: %w", i, ErrBadBAR)
		case b.IO && (b.Size < BAR_MIN_IO_SIZE || b.Size > BAR_MAX_IO_SIZE):
			return nil, fmt.Errorf("pci: I/O BAR %d size %#x: want %d-%d bytes: %w", i, b.Size, BAR_MIN_IO_SIZE, BAR_MAX_IO_SIZE, ErrBadBAR)
		case b.IO:
			c.put32(off, BAR_IO_SPACE)
			c.putMask32(off, uint32(^(b.Size-1))&BAR_IO_ADDR_MASK)
			cmdMask |= COMMAND_IO_SPACE
			continue
		case b.Size < BAR_MIN_MEM_SIZE:
			return nil, fmt.Errorf("pci: memory BAR %d size %#x: want at least %d bytes: %w", i, b.Size, BAR_MIN_MEM_SIZE, ErrBadBAR)
		case !b.Mem64 && b.Size > 1<<31:
			return nil, fmt.Errorf("pci: 32-bit memory BAR %d size %#x exceeds 2 GiB: %w", i, b.Size, ErrBadBAR)
		case b.Mem64 && (i == NUM_BARS-1 || h.BARs[i+1] != BAR{}):
			return nil, fmt.Errorf("pci: 64-bit BAR %d needs BAR %d free for its upper half: %w", i, i+1, ErrBadBAR)
		}
		cmdMask |= COMMAND_MEMORY_SPACE
		flags := uint32(0)
		if b.Prefetchable {
			flags |= BAR_MEM_PREFETCH
		}
		mask := ^(b.Size - 1)
		if b.Mem64 {
			flags |= BAR_MEM_TYPE_64
			c.putMask32(off+4, uint32(mask>>32))
			i++ // the upper half is not a BAR of its own
		}
		c.put32(off, flags)
		c.putMask32(off, uint32(mask)&BAR_MEM_ADDR_MASK)
	}
	c.put16(CFG_VENDOR_ID, h.VendorID)
	c.put16(CFG_DEVICE_ID, h.DeviceID)
	c.put16(CFG_COMMAND, h.Command)
	c.putMask16(CFG_COMMAND, cmdMask)
	status := h.Status
	if h.CapPointer != 0 {
		status |= STATUS_CAP_LIST
	}
	c.put16(CFG_STATUS, status)
	c.cfg[CFG_REVISION_ID] = h.RevisionID
	c.cfg[CFG_PROG_IF] = h.ProgIF
	c.cfg[CFG_SUBCLASS] = h.Subclass
	c.cfg[CFG_CLASS_CODE] = h.ClassCode
	c.wmask[CFG_CACHE_LINE_SIZE] = 0xff
	c.wmask[CFG_LATENCY_TIMER] = 0xff
	if h.MultiFunction {
		c.cfg[CFG_HEADER_TYPE] = HEADER_TYPE_MULTI_FUNCTION
	}
	c.put16(CFG_SUBSYSTEM_VENDOR_ID, h.SubsystemVendorID)
	c.put16(CFG_SUBSYSTEM_ID, h.SubsystemID)
	c.cfg[CFG_CAPABILITIES] = h.CapPointer
	c.wmask[CFG_INTERRUPT_LINE] = 0xff
	c.cfg[CFG_INTERRUPT_LINE] = 0xff // "unknown / not connected" until firmware or the OS assigns one
	c.cfg[CFG_INTERRUPT_PIN] = h.InterruptPin
	return c, nil
}

func (c *ConfigSpace) put16(off int, v uint16) { c.cfg[off], c.cfg[off+1] = byte(v), byte(v>>8) }
func (c *ConfigSpace) putMask16(off int, m uint16) {
	c.wmask[off], c.wmask[off+1] = byte(m), byte(m>>8)
}
func (c *ConfigSpace) put32(off int, v uint32) {
	c.put16(off, uint16(v))
	c.put16(off+2, uint16(v>>16))
}
func (c *ConfigSpace) putMask32(off int, m uint32) {
	c.putMask16(off, uint16(m))
	c.putMask16(off+2, uint16(m>>16))
}
func (c *ConfigSpace) get16(off int) uint16 { return uint16(c.cfg[off]) | uint16(c.cfg[off+1])<<8 }
func (c *ConfigSpace) get32(off int) uint32 {
	return uint32(c.get16(off)) | uint32(c.get16(off+2))<<16
}

// Define adds device-specific registers (capabilities, for instance) at
// offset, between the end of the standard header and the end of the
// configuration space: init gives their values and wmask the bits the
// guest may write. Call it before the function is attached.
func (c *ConfigSpace) Define(offset int, init, wmask []byte) error {
	if len(init) != len(wmask) {
		return fmt.Errorf("pci: Define at %#x: %d initial bytes but %d mask bytes", offset, len(init), len(wmask))
	}
	if offset < CFG_HEADER_SIZE || offset+len(init) > CONFIG_SPACE_SIZE {
		return fmt.Errorf("pci: Define at %#x+%d: device-specific registers live in %#x-%#x",
			offset, len(init), CFG_HEADER_SIZE, CONFIG_SPACE_SIZE-1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(c.cfg[offset:], init)
	copy(c.wmask[offset:], wmask)
	return nil
}

// ReadConfig implements Function. Offsets beyond the 256-byte space read
// as 0.
func (c *ConfigSpace) ReadConfig(offset uint16, data []byte) {
	c.mu.Lock()
	for i := range data {
		o := int(offset) + i
		if o < CONFIG_SPACE_SIZE {
			data[i] = c.cfg[o]
		} else {
			data[i] = 0
		}
	}
	c.mu.Unlock()
}

// WriteConfig implements Function: only writable bits change.
func (c *ConfigSpace) WriteConfig(offset uint16, data []byte) {
	changed := false
	c.mu.Lock()
	for i, v := range data {
		o := int(offset) + i
		if o >= CONFIG_SPACE_SIZE {
			break
		}
		c.cfg[o] = c.cfg[o]&^c.wmask[o] | v&c.wmask[o]
		if o == CFG_COMMAND || o == CFG_COMMAND+1 || (o >= CFG_BAR0 && o < CFG_BAR0+4*NUM_BARS) {
			changed = true
		}
	}
	f := c.changed
	c.mu.Unlock()
	if changed && f != nil {
		f()
	}
}

// Command returns the command register.
func (c *ConfigSpace) Command() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.get16(CFG_COMMAND)
}

// InterruptLine returns the interrupt line register, as the OS or firmware
// wrote it (FFh if never written).
func (c *ConfigSpace) InterruptLine() uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg[CFG_INTERRUPT_LINE]
}

// SetInterruptStatus sets or clears the status register's interrupt bit,
// for a device that asserts INTx.
func (c *ConfigSpace) SetInterruptStatus(pending bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.get16(CFG_STATUS) &^ STATUS_INTERRUPT
	if pending {
		s |= STATUS_INTERRUPT
	}
	c.put16(CFG_STATUS, s)
}

// BARState is where a BAR currently points.
type BARState struct {
	// Base is the address programmed into the BAR.
	Base uint64
	// Size is the BAR's configured size.
	Size uint64
	// IO is set for an I/O space BAR.
	IO bool
	// Enabled reports whether the command register enables decoding of
	// the BAR's space. A device should claim [Base, Base+Size) on its
	// bus only while Enabled; operating systems disable decoding while
	// they probe sizes.
	Enabled bool
}

// BAR returns the state of BAR i, or false if i is not an implemented BAR
// (including the upper half of a 64-bit BAR).
func (c *ConfigSpace) BAR(i int) (BARState, bool) {
	if i < 0 || i >= NUM_BARS || c.bars[i].Size == 0 {
		return BARState{}, false
	}
	b := c.bars[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	off := CFG_BAR0 + 4*i
	lo := c.get32(off)
	cmd := c.get16(CFG_COMMAND)
	if b.IO {
		return BARState{Base: uint64(lo & BAR_IO_ADDR_MASK), Size: b.Size, IO: true, Enabled: cmd&COMMAND_IO_SPACE != 0}, true
	}
	base := uint64(lo & BAR_MEM_ADDR_MASK)
	if b.Mem64 {
		base |= uint64(c.get32(off+4)) << 32
	}
	return BARState{Base: base, Size: b.Size, Enabled: cmd&COMMAND_MEMORY_SPACE != 0}, true
}

// Package debugexit is a port through which a test guest ends its VM with
// a status, compatible with QEMU's isa-debug-exit device so that the same
// guest runs under both.
//
// The device claims Width() consecutive ports (1, 2 or 4) from Port().
// Any write there, of any size and at any offset inside the range, takes
// the value written (little-endian, cut to the width) and calls the exit
// callback with status (value << 1) | 1: QEMU's convention, which makes
// every status odd so that it cannot be mistaken for QEMU's own exit code
// 0. A process that uses it as its exit code only keeps the low 8 bits:
// value 0 exits 1, value 1 exits 3, value 0x10 exits 0x21. Reads return
// all-ones, like an unclaimed port.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package debugexit

import "fmt"

// QEMU's isa-debug-exit defaults (its "iobase" and "iosize" properties).
// Test setups often choose port 0xf4 and width 4 instead.
const (
	QEMU_DEFAULT_PORT  = 0x501
	QEMU_DEFAULT_WIDTH = 2
)

// Status returns the exit status a write of value produces: (value << 1) | 1.
func Status(value uint32) uint64 { return uint64(value)<<1 | 1 }

// Device is the debug-exit port. It has no mutable state and is safe for
// concurrent use; the callback may be called from several goroutines at
// once if several vCPUs write.
type Device struct {
	port  uint16
	width int
	exit  func(status uint64)
}

// New returns a device of width bytes (1, 2 or 4) at port that calls exit
// with the status of each write.
func New(port uint16, width int, exit func(status uint64)) (*Device, error) {
	switch width {
	case 1, 2, 4:
	default:
		return nil, fmt.Errorf("debugexit: width %d at port %#x; use 1, 2 or 4 bytes", width, port)
	}
	if int(port)+width > 0x10000 {
		return nil, fmt.Errorf("debugexit: %d bytes at port %#x run past port 0xffff; choose a lower port", width, port)
	}
	if exit == nil {
		return nil, fmt.Errorf("debugexit: no exit callback for port %#x; pass the function that stops the VM", port)
	}
	return &Device{port: port, width: width, exit: exit}, nil
}

// Port returns the first port of the device, where to register it.
func (d *Device) Port() uint16 { return d.port }

// Width returns the number of ports the device claims, the size to
// register it with.
func (d *Device) Width() uint32 { return uint32(d.width) }

// Read implements bus.Device: all-ones.
func (d *Device) Read(offset uint64, data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}

// Write implements bus.Device: it calls the exit callback with
// Status(value), value being data read little-endian and cut to the
// device's width. The offset does not matter.
func (d *Device) Write(offset uint64, data []byte) {
	var v uint32
	for i := 0; i < len(data) && i < d.width; i++ {
		v |= uint32(data[i]) << (8 * i)
	}
	d.exit(Status(v))
}

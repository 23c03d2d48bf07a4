// Package guests holds Keel's test guests: small programs in GNU as
// (*.S here) that the selftest runs in VMs to prove what the hypervisor
// does. Images is generated from the sources by `make guests` (go run
// gen.go); a host test reassembles them and checks the bytes.
//
// This package is host-testable.
package guests

// LOAD_ADDRESS is where every guest image is loaded and entered (real
// mode, CS:IP = 0000:1000).
const LOAD_ADDRESS = 0x1000

// Names are the guest sources, without .S, in Images order.
var Names = []string{"real", "long", "mmio", "irq", "triple", "outside", "spin", "bench", "bootsect"}

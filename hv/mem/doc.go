// Package mem manages the host RAM that backs guests and Keel's hardware
// structures, and gives each VM a bounds-checked view of its guest-physical
// memory.
//
// Frames is the physical frame allocator. It is built over the host RAM
// ranges the boot loader reported, minus reserved ranges (the kernel image,
// the Go heap, boot modules), and hands out naturally aligned chunks of
// 4 KiB, 2 MiB or 1 GiB, each recorded with an Owner ("keel" or a VM) for
// accounting. Frames never dereferences host memory: it zeroes every chunk
// it allocates through the injected HostMemory, which the kernel implements
// over its identity map and tests implement with SparseHost.
//
// GuestMemory is one VM's RAM map: guest-physical regions (below the PCI
// hole, and above 4 GiB) backed by host chunks, built by Allocate with the
// largest chunks that fit so that the backend can map them with large NPT or
// EPT pages. All access — Read, Write, the ReadN/WriteN helpers and
// Translate — is bounds-checked, and errors name the VM and the GPA. Release
// returns every frame.
//
// The package is pure Go without unsafe and host-testable: it runs under
// plain `go test`.
package mem

//go:build !amd64

package hostalu

// Available reports whether Exec runs instructions on this host.
const Available = false

func lookup(op Op, size int) func(a, b, fl uint64) (r, f uint64) { return nil }

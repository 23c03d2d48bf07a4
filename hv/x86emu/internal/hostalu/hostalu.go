// Package hostalu executes x86 arithmetic and logic instructions on the host
// CPU and returns the result with the RFLAGS the hardware produced. It exists
// only so that x86emu's tests can cross-check the emulator's flag
// computation against real silicon; nothing in Keel imports it otherwise.
//
// It is host-testable but amd64-only: on other architectures Available is
// false and Exec reports ok=false. The assembly is in hostalu_amd64.s, next
// to the prototypes in hostalu_amd64.go.
package hostalu

// Flags that Exec takes from its flags argument and returns: CF, PF, AF, ZF,
// SF, OF (Intel SDM Vol. 1, 3.4.3.1 "Status Flags").
const StatusFlags = 0x8d5

// Op names an instruction Exec can run.
type Op int

// Instructions Exec runs. Binary ones compute a op b (CMP and TEST only set
// flags, r is then a); unary ones use a only.
const (
	ADD Op = iota
	ADC
	SUB
	SBB
	AND
	OR
	XOR
	CMP
	TEST
	INC
	DEC
	NEG
	NumOps
)

// String returns the mnemonic.
func (o Op) String() string {
	names := [...]string{"ADD", "ADC", "SUB", "SBB", "AND", "OR", "XOR", "CMP", "TEST", "INC", "DEC", "NEG"}
	if o < 0 || int(o) >= len(names) {
		return "Op?"
	}
	return names[o]
}

// Exec runs op at size bytes (1, 2, 4 or 8) on the host with the status
// flags of flagsIn (CF matters for ADC/SBB; INC/DEC keep it) and returns the
// result (masked to size) and the status flags the CPU left. ok is false when
// the host is not amd64 or op/size is out of range.
func Exec(op Op, size int, a, b, flagsIn uint64) (r, flags uint64, ok bool) {
	fn := lookup(op, size)
	if fn == nil {
		return 0, 0, false
	}
	r, flags = fn(a, b, flagsIn&StatusFlags|0x2)
	m := ^uint64(0)
	if size < 8 {
		m = uint64(1)<<(8*uint(size)) - 1
	}
	return r & m, flags & StatusFlags, true
}

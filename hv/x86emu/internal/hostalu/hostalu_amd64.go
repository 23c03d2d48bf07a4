//go:build amd64

package hostalu

// Available reports whether Exec runs instructions on this host.
const Available = true

// Each function loads RFLAGS from fl (POPFQ), executes one instruction on
// a (AX) and b (BX), and returns AX and the RFLAGS after it (PUSHFQ).

func add8(a, b, fl uint64) (r, f uint64)
func add16(a, b, fl uint64) (r, f uint64)
func add32(a, b, fl uint64) (r, f uint64)
func add64(a, b, fl uint64) (r, f uint64)
func adc8(a, b, fl uint64) (r, f uint64)
func adc16(a, b, fl uint64) (r, f uint64)
func adc32(a, b, fl uint64) (r, f uint64)
func adc64(a, b, fl uint64) (r, f uint64)
func sub8(a, b, fl uint64) (r, f uint64)
func sub16(a, b, fl uint64) (r, f uint64)
func sub32(a, b, fl uint64) (r, f uint64)
func sub64(a, b, fl uint64) (r, f uint64)
func sbb8(a, b, fl uint64) (r, f uint64)
func sbb16(a, b, fl uint64) (r, f uint64)
func sbb32(a, b, fl uint64) (r, f uint64)
func sbb64(a, b, fl uint64) (r, f uint64)
func and8(a, b, fl uint64) (r, f uint64)
func and16(a, b, fl uint64) (r, f uint64)
func and32(a, b, fl uint64) (r, f uint64)
func and64(a, b, fl uint64) (r, f uint64)
func or8(a, b, fl uint64) (r, f uint64)
func or16(a, b, fl uint64) (r, f uint64)
func or32(a, b, fl uint64) (r, f uint64)
func or64(a, b, fl uint64) (r, f uint64)
func xor8(a, b, fl uint64) (r, f uint64)
func xor16(a, b, fl uint64) (r, f uint64)
func xor32(a, b, fl uint64) (r, f uint64)
func xor64(a, b, fl uint64) (r, f uint64)
func cmp8(a, b, fl uint64) (r, f uint64)
func cmp16(a, b, fl uint64) (r, f uint64)
func cmp32(a, b, fl uint64) (r, f uint64)
func cmp64(a, b, fl uint64) (r, f uint64)
func test8(a, b, fl uint64) (r, f uint64)
func test16(a, b, fl uint64) (r, f uint64)
func test32(a, b, fl uint64) (r, f uint64)
func test64(a, b, fl uint64) (r, f uint64)
func inc8(a, b, fl uint64) (r, f uint64)
func inc16(a, b, fl uint64) (r, f uint64)
func inc32(a, b, fl uint64) (r, f uint64)
func inc64(a, b, fl uint64) (r, f uint64)
func dec8(a, b, fl uint64) (r, f uint64)
func dec16(a, b, fl uint64) (r, f uint64)
func dec32(a, b, fl uint64) (r, f uint64)
func dec64(a, b, fl uint64) (r, f uint64)
func neg8(a, b, fl uint64) (r, f uint64)
func neg16(a, b, fl uint64) (r, f uint64)
func neg32(a, b, fl uint64) (r, f uint64)
func neg64(a, b, fl uint64) (r, f uint64)

var table = [NumOps][4]func(a, b, fl uint64) (r, f uint64){
	ADD:  {add8, add16, add32, add64},
	ADC:  {adc8, adc16, adc32, adc64},
	SUB:  {sub8, sub16, sub32, sub64},
	SBB:  {sbb8, sbb16, sbb32, sbb64},
	AND:  {and8, and16, and32, and64},
	OR:   {or8, or16, or32, or64},
	XOR:  {xor8, xor16, xor32, xor64},
	CMP:  {cmp8, cmp16, cmp32, cmp64},
	TEST: {test8, test16, test32, test64},
	INC:  {inc8, inc16, inc32, inc64},
	DEC:  {dec8, dec16, dec32, dec64},
	NEG:  {neg8, neg16, neg32, neg64},
}

func lookup(op Op, size int) func(a, b, fl uint64) (r, f uint64) {
	if op < 0 || op >= NumOps {
		return nil
	}
	switch size {
	case 1:
		return table[op][0]
	case 2:
		return table[op][1]
	case 4:
		return table[op][2]
	case 8:
		return table[op][3]
	}
	return nil
}

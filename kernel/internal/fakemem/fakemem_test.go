package fakemem

import "testing"

func TestReadAt(t *testing.T) {
	m := (&Mem{}).Add(0x1000, []byte{1, 2, 3, 4})
	p := make([]byte, 2)
	if err := m.ReadAt(p, 0x1002); err != nil || p[0] != 3 || p[1] != 4 {
		t.Errorf("ReadAt(0x1002) = %v, %v", p, err)
	}
	for _, addr := range []uint64{0x1003, 0xfff, 0x2000, ^uint64(0)} {
		if err := m.ReadAt(p, addr); err == nil {
			t.Errorf("ReadAt(%#x) succeeded outside the segment", addr)
		}
	}
}

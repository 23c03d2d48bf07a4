//go:build !tamago

package guests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Assemble builds the image of guest name from dir/name.S with GNU as and
// ld into a flat binary linked at LOAD_ADDRESS.
func Assemble(dir, name string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "keel-guest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	obj, bin := filepath.Join(tmp, name+".o"), filepath.Join(tmp, name+".bin")
	for _, cmd := range [][]string{
		{"as", "--64", "-I", dir, "-o", obj, filepath.Join(dir, name+".S")},
		{"ld", "-m", "elf_x86_64", fmt.Sprintf("-Ttext=%#x", LOAD_ADDRESS), "-e", "_start", "--oformat=binary", "-o", bin, obj},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%v: %v\n%s", cmd, err, out)
		}
	}
	return os.ReadFile(bin)
}

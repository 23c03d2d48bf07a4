package trampoline

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCodeMatchesSource reassembles trampoline.S and compares the bytes, so
// that the source and Code cannot drift apart.
func TestCodeMatchesSource(t *testing.T) {
	for _, tool := range []string{"as", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("GNU binutils not installed (%s): cannot reassemble trampoline.S", tool)
		}
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "t.o"), filepath.Join(dir, "t.bin")
	for _, cmd := range [][]string{
		{"as", "--64", "-o", obj, "trampoline.S"},
		{"ld", "-m", "elf_x86_64", "-Ttext=0", "-e", "0", "--oformat=binary", "-o", bin, obj},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	got, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Code[:]) {
		t.Errorf("Code differs from trampoline.S assembled (%d vs %d bytes): regenerate trampoline.go", len(Code), len(got))
	}
}

// TestLayout checks that the code fits below the data area and the data area
// inside the page.
func TestLayout(t *testing.T) {
	if len(Code) > DATA {
		t.Errorf("code is %d bytes, overlaps the data area at %#x", len(Code), DATA)
	}
	if DATA_ARG+8 > SIZE {
		t.Errorf("data area ends at %#x, beyond SIZE %#x", DATA_ARG+8, SIZE)
	}
	if BASE%0x1000 != 0 || BASE >= 1<<20 {
		t.Errorf("BASE %#x must be page aligned and below 1 MiB", BASE)
	}
}

package guests

import (
	"bytes"
	"os/exec"
	"testing"
)

// TestImagesMatchSources reassembles every guest and compares the bytes,
// so that images.go cannot drift from the sources.
func TestImagesMatchSources(t *testing.T) {
	for _, tool := range []string{"as", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("GNU binutils not installed (%s): cannot reassemble the guests", tool)
		}
	}
	for _, n := range Names {
		t.Run(n, func(t *testing.T) {
			img, err := Assemble(".", n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(img, Images[n]) {
				t.Errorf("images.go is stale for %s (%d bytes, source gives %d): run make guests", n, len(Images[n]), len(img))
			}
		})
	}
}

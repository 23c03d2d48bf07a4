package cpio

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// These tests check the format against GNU cpio in both directions. They
// are skipped where cpio is not installed (Debian: apt-get install cpio).

func needCPIO(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("GNU cpio is not installed (apt-get install cpio)")
	}
	return p
}

// TestGNUExtractsOurs writes an archive and extracts it with `cpio -i`.
func TestGNUExtractsOurs(t *testing.T) {
	cpio := needCPIO(t)
	dir := t.TempDir()
	cmd := exec.Command(cpio, "-i", "--no-absolute-filenames", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(write(t, sample))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}

	for _, e := range sample {
		p := filepath.Join(dir, filepath.FromSlash(e.Name))
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.Name, err)
			continue
		}
		switch {
		case e.IsDir():
			if !st.IsDir() {
				t.Errorf("%s: mode %v, want a directory", e.Name, st.Mode())
			}
		case e.IsSymlink():
			target, err := os.Readlink(p)
			if err != nil || target != string(e.Data) {
				t.Errorf("%s: link to %q (%v), want %q", e.Name, target, err, e.Data)
			}
		default:
			data, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(data, e.Data) {
				t.Errorf("%s: %q (%v), want %q", e.Name, data, err, e.Data)
			}
			if got, want := uint32(st.Mode().Perm()), e.Mode&0o777; got != want {
				t.Errorf("%s: permissions %#o, want %#o", e.Name, got, want)
			}
		}
	}
}

// TestReadGNU reads what `find . | cpio -o -H newc` writes: the root
// entry, "./" names, a symbolic link, an empty directory and hard links
// (whose data GNU cpio writes once, with the last link).
func TestReadGNU(t *testing.T) {
	cpio := needCPIO(t)
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "boot", "empty"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "keel.conf"), []byte("[vm a]\nkernel = boot/vmlinuz\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "boot", "vmlinuz"), bytes.Repeat([]byte("K"), 4097), 0o644))
	must(os.WriteFile(filepath.Join(dir, "boot", "initrd"), []byte("I"), 0o644))
	must(os.Link(filepath.Join(dir, "boot", "initrd"), filepath.Join(dir, "initrd.link")))
	must(os.Symlink("vmlinuz", filepath.Join(dir, "boot", "current")))

	cmd := exec.Command("sh", "-c", `find . | LC_ALL=C sort | "$0" -o -H newc --quiet`, cpio)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("cpio -o: %v\n%s", err, errOut.Bytes())
	}
	if out.Len()%512 != 0 {
		t.Errorf("GNU cpio wrote %d bytes, expected 512-byte blocks", out.Len())
	}

	es, err := Read(out.Bytes())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	got := map[string]string{}
	var names []string
	for _, e := range es {
		names = append(names, e.Name)
		switch {
		case e.IsDir():
			got[e.Name] = "dir"
		case e.IsSymlink():
			got[e.Name] = "-> " + string(e.Data)
		default:
			got[e.Name] = string(e.Data)
		}
	}
	want := map[string]string{
		"boot":         "dir",
		"boot/empty":   "dir",
		"boot/current": "-> vmlinuz",
		"boot/initrd":  "I",
		"boot/vmlinuz": string(bytes.Repeat([]byte("K"), 4097)),
		"initrd.link":  "I",
		"keel.conf":    "[vm a]\nkernel = boot/vmlinuz\n",
	}
	if !reflect.DeepEqual(got, want) {
		sort.Strings(names)
		t.Errorf("entries %q:\n got %q\nwant %q", names, got, want)
	}
}

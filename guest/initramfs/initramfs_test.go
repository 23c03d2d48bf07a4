package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-hv/keel/bundle/cpio"
)

func TestWrite(t *testing.T) {
	init := []byte("\x7fELF pretend init")
	var b bytes.Buffer
	if err := Write(&b, bytes.NewReader(init), int64(len(init))); err != nil {
		t.Fatal(err)
	}
	entries, err := cpio.Read(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"dev", cpio.S_IFDIR | 0o755, ""},
		{"proc", cpio.S_IFDIR | 0o555, ""},
		{"sys", cpio.S_IFDIR | 0o555, ""},
		{"init", cpio.S_IFREG | 0o755, string(init)},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		e := entries[i]
		if e.Name != w.name || e.Mode != w.mode || string(e.Data) != w.data || e.UID != 0 || e.GID != 0 || e.MTime != 0 {
			t.Errorf("entry %d = %q mode %#o uid %d gid %d mtime %d data %q; want %q mode %#o, root, time 0, data %q",
				i, e.Name, e.Mode, e.UID, e.GID, e.MTime, e.Data, w.name, w.mode, w.data)
		}
	}
}

// TestBuild builds the real init, checks that it is a static x86-64 Linux
// executable, and that building twice gives the same archive.
func TestBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command in PATH to build the init with")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "initramfs.cpio")
	var log bytes.Buffer
	if err := Build(context.Background(), Options{Output: out, Log: &log}); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := cpio.Read(first)
	if err != nil {
		t.Fatal(err)
	}
	init := entries[len(entries)-1]
	if init.Name != InitName {
		t.Fatalf("last entry %q, want %q", init.Name, InitName)
	}
	f, err := elf.NewFile(bytes.NewReader(init.Data))
	if err != nil {
		t.Fatalf("init is not an ELF file: %v", err)
	}
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC || f.OSABI != elf.ELFOSABI_NONE {
		t.Errorf("init: machine %v type %v OS ABI %v, want EM_X86_64 ET_EXEC (static, not PIE) ELFOSABI_NONE", f.Machine, f.Type, f.OSABI)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("init has a %v program header: not static", p.Type)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("output: %v, mode %v; want 0644", err, st.Mode())
	}
	if !strings.Contains(log.String(), "wrote "+out) {
		t.Errorf("progress does not name the output:\n%s", log.String())
	}

	if err := Build(context.Background(), Options{Output: out}); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(out); !bytes.Equal(first, second) {
		t.Error("two builds from the same sources differ")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "sub", ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

func TestBuildPrebuiltInit(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "my-init")
	if err := os.WriteFile(init, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initramfs.cpio")
	if err := Build(context.Background(), Options{Output: out, Init: init, Go: "/nonexistent/go"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	entries, err := cpio.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[len(entries)-1]; e.Name != InitName || string(e.Data) != "#!/bin/sh\n" {
		t.Errorf("init entry %q = %q, want the prebuilt program", e.Name, e.Data)
	}

	if err := Build(context.Background(), Options{Output: out, Init: dir}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Build with a directory as init: %v, want an error", err)
	}
	if err := Build(context.Background(), Options{Output: filepath.Join(dir, "x"), Go: "/nonexistent/go"}); err == nil || !strings.Contains(err.Error(), "building the init program") {
		t.Errorf("Build with a missing go command: %v, want an error about building the init", err)
	}
}

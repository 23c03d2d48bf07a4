package toolchain

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestIsTamagoFileName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"os_tamago.go", true},
		{"zgoos_tamago.go", true},
		{"rt0_tamago_amd64.s", true},
		{"defs_tamago_amd64.go", true},
		{"os_tamago_test.go", false}, // not built by go install
		{"tamago.go", false},         // no suffix: an ordinary file
		{"tamago_amd64.s", false},    // an amd64 file
		{"os_linux.go", false},
		{"notes_tamago.txt", false},
		{"mem_sbrk.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTamagoFileName(tt.name); got != tt.want {
				t.Errorf("isTamagoFileName(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestBuiltForHost(t *testing.T) {
	tests := []struct {
		name, src string
		want      bool
	}{
		{"no constraint", "package runtime\n", true},
		{"tamago", "//go:build tamago\n\npackage runtime\n", false},
		{"tamago and amd64", "// Copyright.\n\n//go:build tamago && amd64\n\npackage runtime\n", false},
		{"tamago or linux", "//go:build tamago || linux\n\npackage runtime\n", true},
		{"not tamago", "//go:build !tamago\n\npackage runtime\n", true},
		{"unix", "//go:build unix\n\npackage runtime\n", true},
		{"legacy plus build", "// +build tamago\n\npackage runtime\n", false},
		{"constraint after package is ignored", "package runtime\n//go:build tamago\n", true},
		{"assembly", "//go:build tamago\n\n#include \"textflag.h\"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := builtForHost([]byte(tt.src)); got != tt.want {
				t.Errorf("builtForHost(%q) = %v, want %v", tt.src, got, tt.want)
			}
		})
	}
}

func TestCheckTamagoFiles(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		patch   string
		wantErr []string
	}{
		{
			name:  "tagged",
			files: map[string]string{"src/runtime/os_tamago.go": "//go:build tamago\n\npackage runtime\n"},
			patch: patchTamagoTagged,
		},
		{
			name:    "untagged",
			files:   map[string]string{"src/runtime/os_tamago.go": "package runtime\n"},
			patch:   patchTamagoUntagged,
			wantErr: []string{"src/runtime/os_tamago.go", "//go:build tamago", "stock go"},
		},
		{
			name:  "deleted by the patch",
			files: map[string]string{},
			patch: "diff --git a/src/runtime/os_tamago.go b/src/runtime/os_tamago.go\ndeleted file mode 100644\n--- a/src/runtime/os_tamago.go\n+++ /dev/null\n",
		},
		{
			name:  "not a tamago file",
			files: map[string]string{"src/runtime/extern.go": "package runtime\n"},
			patch: patchEditExtern,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "go")
			writeTree(t, root, tt.files)
			err := CheckTamagoFiles(root, []Patch{{"0001-x.patch", []byte(tt.patch)}})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckTamagoFiles succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

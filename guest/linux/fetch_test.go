package linux

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bzimage "github.com/keel-hv/keel/loader/linux"
)

func TestPinned(t *testing.T) {
	p, err := ParseVersionFile(versionFile)
	if err != nil {
		t.Fatalf("guest/linux/VERSION: %v", err)
	}
	if !strings.HasPrefix(p.Name, "linux-image-") || !strings.Contains(p.Name, "-amd64") || strings.Contains(p.Name, "cloud") {
		t.Errorf("pinned package %q: want Debian's generic amd64 kernel, linux-image-*-amd64[-unsigned]", p.Name)
	}
	if got := Pinned(); got != p {
		t.Errorf("Pinned() = %v, want %v", got, p)
	}
}

func TestParseVersionFile(t *testing.T) {
	tests := []struct {
		name, text string
		want       Package
		wantErr    string
	}{
		{"plain", "linux-image-6.1.0-50-amd64-unsigned 6.1.176-1\n", Package{"linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1"}, ""},
		{"comments", "# pin\n\n  # more\n  a0 1:2.3~rc1+b1  \nignored line\n", Package{"a0", "1:2.3~rc1+b1"}, ""},
		{"empty", "# only a comment\n", Package{}, "no NAME VERSION line"},
		{"one field", "linux-image-6.1.0-50-amd64\n", Package{}, "want NAME VERSION"},
		{"three fields", "a b c\n", Package{}, "want NAME VERSION"},
		{"slash in name", "../x 1.0\n", Package{}, "package name"},
		{"upper-case name", "Linux 1.0\n", Package{}, "package name"},
		{"slash in version", "linux 1.0/2\n", Package{}, "package version"},
		{"version not a digit first", "linux v1\n", Package{}, "package version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersionFile(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVersionFile(%q) = %v, %v; want an error with %q", tt.text, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersionFile(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
			}
		})
	}
}

func TestPath(t *testing.T) {
	p := Package{"linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1"}
	want := "/c/guest-kernel/linux-image-6.1.0-50-amd64-unsigned_6.1.176-1/vmlinuz"
	if got := Path("/c", p); got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
}

// fakeBzImage returns the smallest image that Keel's bzImage parser
// accepts: a setup header of boot protocol 2.12 with the 64-bit entry
// point, and a little protected-mode code.
func fakeBzImage() []byte {
	const setupSects = 4
	img := make([]byte, (setupSects+1)*512+bzimage.STARTUP_64_OFFSET+512)
	le := binary.LittleEndian
	img[bzimage.HDR_SETUP_SECTS] = setupSects
	le.PutUint16(img[bzimage.HDR_BOOT_FLAG:], bzimage.BOOT_FLAG_MAGIC)
	img[bzimage.HDR_JUMP+1] = 0x6a // the header ends at 0x26c
	le.PutUint32(img[bzimage.HDR_HEADER:], bzimage.HDR_MAGIC)
	le.PutUint16(img[bzimage.HDR_VERSION:], bzimage.MIN_VERSION)
	img[bzimage.HDR_LOADFLAGS] = bzimage.LOADED_HIGH
	le.PutUint16(img[bzimage.HDR_XLOADFLAGS:], bzimage.XLF_KERNEL_64)
	return img
}

// fakeDeb returns a tar archive laid out like a linux-image package's data
// (dpkg-deb --fsys-tarfile output), with kernel as /boot/vmlinuz-*. The
// fake dpkg-deb below prints the "package" as it is.
func fakeDeb(t *testing.T, kernel []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name string, typ byte, data []byte) {
		mode := int64(0o644)
		if typ == tar.TypeDir {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Mode: mode, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	add("./", tar.TypeDir, nil)
	add("./boot/", tar.TypeDir, nil)
	add("./boot/System.map-6.1.0-50-amd64", tar.TypeReg, []byte("map"))
	add("./boot/config-6.1.0-50-amd64", tar.TypeReg, []byte("CONFIG_X86_64=y\n"))
	if kernel != nil {
		add("./boot/vmlinuz-6.1.0-50-amd64", tar.TypeReg, kernel)
	}
	add("./lib/", tar.TypeDir, nil)
	add("./lib/modules/", tar.TypeDir, nil)
	add("./lib/modules/big.ko", tar.TypeReg, bytes.Repeat([]byte{1}, 1<<20))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The stand-ins for apt-get and dpkg-deb. FAKE_APT says how apt-get
// behaves; every call is appended to $FAKE_LOG.
const fakeAptGet = `#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
for a; do last=$a; done
case "$FAKE_APT:$1" in
*:update)
	case $FAKE_APT in offline-update)
		echo "Err:1 http://deb.debian.org/debian bookworm InRelease"
		echo "  Temporary failure resolving 'deb.debian.org'" >&2; exit 100;; esac
	touch "$FAKE_DIR/updated"; echo "Reading package lists... Done"; exit 0;;
ok:*) ;;
stale:*|offline-update:*)
	if [ ! -e "$FAKE_DIR/updated" ]; then
		echo "E: Can't select candidate version from package ${last%%=*} as it has no candidate" >&2; exit 100
	fi;;
missing:*)
	echo "E: Version '${last#*=}' for '${last%%=*}' was not found" >&2; exit 100;;
offline:*)
	echo "E: Failed to fetch http://deb.debian.org/debian/pool/x.deb  Temporary failure resolving 'deb.debian.org'" >&2; exit 100;;
*) echo "fake apt-get: bad FAKE_APT=$FAKE_APT" >&2; exit 1;;
esac
echo "Get:1 http://deb.debian.org/debian bookworm/main amd64 $last"
cp "$FAKE_DIR/package.deb" "./$(echo "$last" | tr = _)_amd64.deb"
`

const fakeDpkgDeb = `#!/bin/sh
echo "dpkg-deb $*" >> "$FAKE_LOG"
[ "$1" = --fsys-tarfile ] || { echo "fake dpkg-deb: unexpected $*" >&2; exit 2; }
cat "$2"
`

// fakeTools puts the stand-ins first in PATH, with package.deb holding deb,
// and sets FAKE_APT to mode. It returns the file that logs the calls.
func fakeTools(t *testing.T, mode string, deb []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, script := range map[string]string{"apt-get": fakeAptGet, "dpkg-deb": fakeDpkgDeb} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "package.deb"), deb, 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_DIR", dir)
	t.Setenv("FAKE_LOG", log)
	t.Setenv("FAKE_APT", mode)
	return log
}

func calls(t *testing.T, log string) string {
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

var testPkg = Package{"linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1"}

func TestFetch(t *testing.T) {
	kernel := fakeBzImage()
	asRoot := os.Geteuid() == 0
	tests := []struct {
		name      string
		mode      string
		deb       []byte
		wantErr   []string // substrings of the error; none: success
		wantCalls []string // substrings of the call log, in order
	}{
		{
			name:      "download",
			mode:      "ok",
			deb:       fakeDeb(t, kernel),
			wantCalls: []string{"apt-get -o APT::Sandbox::User=root download " + testPkg.String(), "dpkg-deb --fsys-tarfile"},
		},
		{
			name:      "stale lists",
			mode:      "stale",
			deb:       fakeDeb(t, kernel),
			wantCalls: []string{"download", "apt-get update", "download", "dpkg-deb"},
		},
		{
			name:      "not in the archive",
			mode:      "missing",
			deb:       fakeDeb(t, kernel),
			wantErr:   []string{"do not have " + testPkg.String(), "even after apt-get update", "apt-cache policy " + testPkg.Name, "guest/linux/VERSION"},
			wantCalls: []string{"download", "apt-get update", "download"},
		},
		{
			name:      "offline",
			mode:      "offline",
			deb:       fakeDeb(t, kernel),
			wantErr:   []string{"apt-get download " + testPkg.String(), "no network", "Temporary failure resolving", filepath.Join(CacheSubdir, testPkg.Key(), KernelFile) + " by hand"},
			wantCalls: []string{"download"},
		},
		{
			name:      "offline update",
			mode:      "offline-update",
			deb:       fakeDeb(t, kernel),
			wantErr:   []string{"apt-get update (to find " + testPkg.String() + ")", "no network", "by hand"},
			wantCalls: []string{"download", "apt-get update"},
		},
		{
			name:    "no kernel in the package",
			mode:    "ok",
			deb:     fakeDeb(t, nil),
			wantErr: []string{"has no /boot/vmlinuz-*", "guest/linux/VERSION"},
		},
		{
			name:    "not a bzImage",
			mode:    "ok",
			deb:     fakeDeb(t, []byte("\x7fELF not a bzImage")),
			wantErr: []string{"not a kernel Keel can load", "ELF"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !asRoot {
				switch tt.mode {
				case "stale", "missing", "offline-update":
					tt.wantErr = []string{"sudo apt-get update"}
					tt.wantCalls = []string{"download"}
				}
				if len(tt.wantCalls) > 0 {
					tt.wantCalls[0] = strings.Replace(tt.wantCalls[0], "-o APT::Sandbox::User=root ", "", 1)
				}
			}
			log := fakeTools(t, tt.mode, tt.deb)
			root := t.TempDir()
			var progress bytes.Buffer
			path, err := Fetch(context.Background(), Options{Package: testPkg, CacheRoot: root, Log: &progress})
			got := calls(t, log)
			rest := got
			for _, c := range tt.wantCalls {
				i := strings.Index(rest, c)
				if i < 0 {
					t.Errorf("calls:\n%s\nwant, in order: %q", got, tt.wantCalls)
					break
				}
				rest = rest[i+len(c):]
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Fetch = %q, nil; want an error with %q", path, tt.wantErr)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Fetch error %q does not say %q", err, s)
					}
				}
				if _, serr := os.Stat(Dir(root, testPkg)); serr == nil {
					t.Errorf("a failed fetch left %s", Dir(root, testPkg))
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v\nprogress:\n%s", err, progress.String())
			}
			if want := Path(root, testPkg); path != want {
				t.Errorf("Fetch = %q, want %q", path, want)
			}
			if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, kernel) {
				t.Errorf("cached kernel: %v, equal to the package's: %v", err, bytes.Equal(b, kernel))
			}
			if b, err := os.ReadFile(filepath.Join(Dir(root, testPkg), ConfigFile)); err != nil || string(b) != "CONFIG_X86_64=y\n" {
				t.Errorf("cached config = %q, %v", b, err)
			}
			entries, _ := os.ReadDir(filepath.Join(root, CacheSubdir))
			if len(entries) != 1 {
				t.Errorf("the cache holds %d entries, want 1 (no temporary directories left)", len(entries))
			}

			// The second call is a cache hit and runs nothing.
			os.Remove(log)
			again, err := Fetch(context.Background(), Options{Package: testPkg, CacheRoot: root})
			if err != nil || again != path {
				t.Errorf("second Fetch = %q, %v; want %q", again, err, path)
			}
			if c := calls(t, log); c != "" {
				t.Errorf("second Fetch ran commands:\n%s", c)
			}
		})
	}
}

// TestFetchReplacesBadCache checks that a corrupt cached kernel is fetched
// again, and that a kernel put at the cache path by hand is used.
func TestFetchReplacesBadCache(t *testing.T) {
	kernel := fakeBzImage()
	log := fakeTools(t, "ok", fakeDeb(t, kernel))
	root := t.TempDir()
	path := Path(root, testPkg)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	got, err := Fetch(context.Background(), Options{Package: testPkg, CacheRoot: root, Log: &progress})
	if err != nil || got != path {
		t.Fatalf("Fetch = %q, %v; want %q", got, err, path)
	}
	if !strings.Contains(progress.String(), "unusable") {
		t.Errorf("progress does not mention the unusable cached kernel:\n%s", progress.String())
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, kernel) {
		t.Error("the corrupt cached kernel was not replaced")
	}

	os.Remove(log)
	hand := append(fakeBzImage(), "by hand"...)
	if err := os.WriteFile(path, hand, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Fetch(context.Background(), Options{Package: testPkg, CacheRoot: root}); err != nil || got != path {
		t.Fatalf("Fetch = %q, %v; want %q", got, err, path)
	}
	if c := calls(t, log); c != "" {
		t.Errorf("Fetch with a kernel put in the cache by hand ran commands:\n%s", c)
	}
}

func TestFetchWithoutApt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Fetch(context.Background(), Options{Package: testPkg, CacheRoot: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "needs apt-get") || !strings.Contains(err.Error(), "by hand") {
		t.Fatalf("Fetch without apt-get: %v; want an error that says it needs apt-get and where a kernel can go by hand", err)
	}
}

package cpio

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sample is a set of entries that covers every type and padding length.
var sample = []Entry{
	{Name: "boot", Mode: dir, Ino: 1, NLink: 2},
	{Name: "boot/vmlinuz", Mode: reg, Ino: 2, NLink: 1, Data: []byte("kernel image")},
	{Name: "boot/current", Mode: link, Ino: 3, NLink: 1, Data: []byte("vmlinuz")},
	{Name: "empty", Mode: S_IFREG | 0o600, Ino: 4, NLink: 1, UID: 1000, GID: 100, MTime: 1700000000},
	{Name: "p1", Mode: reg, Ino: 5, NLink: 1, Data: []byte("1")},
	{Name: "p12", Mode: reg, Ino: 6, NLink: 1, Data: []byte("12")},
	{Name: "p123", Mode: reg, Ino: 7, NLink: 1, Data: []byte("123")},
	{Name: "p1234", Mode: reg, Ino: 8, NLink: 1, Data: []byte("1234"), DevMajor: 8, DevMinor: 1},
	{Name: "setuid", Mode: S_IFREG | 0o4755, Ino: 9, NLink: 1, Data: []byte{0, 1, 2, 0xff}},
}

// write writes entries and the trailer with a Writer.
func write(t testing.TB, entries []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for i := range entries {
		if err := w.Add(&entries[i]); err != nil {
			t.Fatalf("Add(%q): %v", entries[i].Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if w.Written() != int64(buf.Len()) {
		t.Errorf("Written = %d, wrote %d", w.Written(), buf.Len())
	}
	return buf.Bytes()
}

func TestWriteRoundTrip(t *testing.T) {
	a := write(t, sample)
	if len(a)%ALIGN != 0 {
		t.Errorf("archive of %d bytes is not padded to %d", len(a), ALIGN)
	}
	got, err := Read(a)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(got, sample) {
		t.Errorf("Read(write(sample)) =\n%+v\nwant\n%+v", got, sample)
	}
}

// TestWriteBytes pins the exact bytes of a small archive.
func TestWriteBytes(t *testing.T) {
	got := write(t, []Entry{{Name: "ab", Mode: reg, Ino: 1, NLink: 1, MTime: 0x12345678, Data: []byte("xyz")}})
	want := "070701" + "00000001" + "000081a4" + "00000000" + "00000000" + "00000001" + "12345678" + "00000003" +
		"00000000" + "00000000" + "00000000" + "00000000" + "00000003" + "00000000" + "ab\x00\x00\x00\x00" + "xyz\x00" +
		"070701" + "00000000" + "00000000" + "00000000" + "00000000" + "00000001" + "00000000" + "00000000" +
		"00000000" + "00000000" + "00000000" + "00000000" + "0000000b" + "00000000" + "TRAILER!!!\x00\x00\x00\x00"
	if string(got) != want {
		t.Errorf("archive\n got %q\nwant %q", got, want)
	}
}

func TestWriterRejects(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"unclean name", Entry{Name: "./a", Mode: reg}, `cpio: "./a" is not a clean name (write "a")`},
		{"trailing slash", Entry{Name: "d/", Mode: dir}, `cpio: "d/" is not a clean name (write "d")`},
		{"root", Entry{Name: ".", Mode: dir}, `cpio: "." is the root directory, which the archive does not list`},
		{"absolute", Entry{Name: "/a", Mode: reg}, `cpio: "/a": absolute name`},
		{"dot-dot", Entry{Name: "../a", Mode: reg}, `cpio: "../a": name with a ".." element`},
		{"trailer", Entry{Name: TRAILER, Mode: reg}, `cpio: "TRAILER!!!": a file named TRAILER!!! would end the archive`},
		{"empty", Entry{Mode: reg}, `cpio: "": empty name`},
		{"device", Entry{Name: "null", Mode: S_IFCHR | 0o666}, `cpio: "null": character device (mode 020666)`},
		{"socket", Entry{Name: "s", Mode: S_IFSOCK | 0o666}, `cpio: "s": socket (mode 0140666)`},
		{"directory with data", Entry{Name: "d", Mode: dir, Data: []byte("x")}, `cpio: "d": directory with 1 bytes of data`},
		{"empty link", Entry{Name: "l", Mode: link}, `cpio: "l": symbolic link target of 0 bytes (want 1 to 4095)`},
		{"duplicate", Entry{Name: "x", Mode: reg}, `cpio: "x" added twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Add(&Entry{Name: "x", Mode: reg}); err != nil {
				t.Fatal(err)
			}
			n := buf.Len()
			err := w.Add(&tt.e)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Add(%+v) = %v, want an error starting %q", tt.e, err, tt.want)
			}
			if buf.Len() != n {
				t.Errorf("a refused entry wrote %d bytes", buf.Len()-n)
			}
			// The writer goes on working after a refused entry.
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(buf.Bytes()); err != nil {
				t.Errorf("Read: %v", err)
			}
		})
	}
}

func TestWriterTooLarge(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.AddFrom(&Entry{Name: "big", Mode: reg}, MaxFileSize+1, strings.NewReader(""))
	if err == nil || !strings.Contains(err.Error(), "newc holds files of at most 4294967295 bytes") {
		t.Errorf("AddFrom(4 GiB) = %v", err)
	}
}

func TestAddFrom(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.AddFrom(&Entry{Name: "f", Mode: reg, NLink: 1, Data: []byte("ignored")}, 5, strings.NewReader("hello, and more")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	es, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || string(es[0].Data) != "hello" {
		t.Errorf("entries %+v, want f = hello", es)
	}
}

// TestAddFromShort checks that a reader that ends early breaks the archive
// for good, with an error that says why.
func TestAddFromShort(t *testing.T) {
	w := NewWriter(io.Discard)
	err := w.AddFrom(&Entry{Name: "f", Mode: reg}, 10, strings.NewReader("abc"))
	want := `cpio: reading the data of "f": 3 of 10 bytes: the file is shorter than its size (did it change while the archive was written?)`
	if err == nil || err.Error() != want {
		t.Fatalf("AddFrom = %v, want %s", err, want)
	}
	if err2 := w.Add(&Entry{Name: "g", Mode: reg}); err2 != err {
		t.Errorf("Add after a failure = %v, want the same error", err2)
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close after a failure = %v, want the same error", err2)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(b []byte) (int, error) {
	if f.after < len(b) {
		n := f.after
		f.after = 0
		return n, errors.New("disk full")
	}
	f.after -= len(b)
	return len(b), nil
}

func TestWriterIOError(t *testing.T) {
	w := NewWriter(&failWriter{after: 200})
	err := w.Add(&Entry{Name: "f", Mode: reg, Data: make([]byte, 1000)})
	if err == nil || err.Error() != "cpio: writing the archive: disk full" {
		t.Fatalf("Add = %v", err)
	}
	if w.Written() != 200 {
		t.Errorf("Written = %d, want 200", w.Written())
	}
	if err2 := w.Close(); err2 != err {
		t.Errorf("Close = %v, want %v", err2, err)
	}
}

func TestAddAfterClose(t *testing.T) {
	w := NewWriter(io.Discard)
	w.Close()
	if err := w.Add(&Entry{Name: "f", Mode: reg}); err == nil || !strings.Contains(err.Error(), "the archive is closed") {
		t.Errorf("Add after Close = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestAddFromLargeAllocs checks that streaming a file costs a fixed number
// of allocations, whatever its size.
func TestAddFromLargeAllocs(t *testing.T) {
	measure := func(size int64) float64 {
		return testing.AllocsPerRun(3, func() {
			w := NewWriter(io.Discard)
			if err := w.AddFrom(&Entry{Name: "initrd", Mode: reg}, size, zeros{}); err != nil {
				t.Fatal(err)
			}
			w.Close()
		})
	}
	small, large := measure(1), measure(64<<20)
	if large > small {
		t.Errorf("AddFrom allocates %v times for 64 MiB and %v for 1 byte", large, small)
	}
}

// TestReadLargeAllocs checks that reading does not copy file data.
func TestReadLargeAllocs(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.AddFrom(&Entry{Name: "initrd", Mode: reg}, 32<<20, zeros{})
	w.Close()
	a := buf.Bytes()
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := Read(a); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 10 {
		t.Errorf("Read of one 32 MiB file made %v allocations", allocs)
	}
}

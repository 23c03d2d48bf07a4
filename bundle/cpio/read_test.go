package cpio

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func TestReadGood(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		want    []Entry
	}{
		{
			name:    "only the trailer",
			archive: trailer(),
		},
		{
			name:    "trailer without its padding",
			archive: trailer()[:HEADER_SIZE+len(TRAILER)+1],
		},
		{
			name:    "trailer and block padding",
			archive: append(arc(ent("a", reg, "x"), trailer()), make([]byte, 512)...),
			want:    []Entry{{Name: "a", Mode: reg, NLink: 1, Data: []byte("x")}},
		},
		{
			name: "every padding length",
			archive: arc(
				ent("a", reg, ""), ent("ab", reg, "1"), ent("abc", reg, "12"),
				ent("abcd", reg, "123"), ent("abcde", reg, "1234"), trailer()),
			want: []Entry{
				{Name: "a", Mode: reg, NLink: 1},
				{Name: "ab", Mode: reg, NLink: 1, Data: []byte("1")},
				{Name: "abc", Mode: reg, NLink: 1, Data: []byte("12")},
				{Name: "abcd", Mode: reg, NLink: 1, Data: []byte("123")},
				{Name: "abcde", Mode: reg, NLink: 1, Data: []byte("1234")},
			},
		},
		{
			name: "find . | cpio -o: root skipped, names cleaned",
			archive: arc(
				ent(".", dir, ""), ent("./boot", dir, ""), ent("./boot/vmlinuz", reg, "kernel"),
				ent("./boot/current", link, "vmlinuz"), ent("a//b/", dir, ""), trailer()),
			want: []Entry{
				{Name: "boot", Mode: dir, NLink: 1},
				{Name: "boot/vmlinuz", Mode: reg, NLink: 1, Data: []byte("kernel")},
				{Name: "boot/current", Mode: link, NLink: 1, Data: []byte("vmlinuz")},
				{Name: "a/b", Mode: dir, NLink: 1},
			},
		},
		{
			name: "every header field kept, upper-case hex",
			archive: arc([]byte(strings.ToUpper(string(entWith("f", reg, "", func(f *fields) {
				*f = fields{1, reg, 0xabc, 0xdef, 1, 0x5f5e0ff, 0, 8, 1, 2, 3, 2, 0xffffffff}
			})))), trailer()),
			want: []Entry{{Name: "F", Mode: reg, Ino: 1, UID: 0xabc, GID: 0xdef, NLink: 1, MTime: 0x5f5e0ff, DevMajor: 8, DevMinor: 1, RDevMajor: 2, RDevMinor: 3}},
		},
		{
			name: "hard links: data with the last link",
			archive: arc(
				entWith("x", reg, "", func(f *fields) { f[fIno], f[fNLink] = 7, 3 }),
				entWith("y", reg, "", func(f *fields) { f[fIno], f[fNLink] = 7, 3 }),
				ent("other", reg, "o"),
				entWith("z", reg, "shared", func(f *fields) { f[fIno], f[fNLink] = 7, 3 }),
				entWith("w", reg, "", func(f *fields) { f[fIno], f[fNLink] = 7, 2 }),
				entWith("v", reg, "", func(f *fields) { f[fIno], f[fNLink], f[fDevMinor] = 7, 2, 1 }),
				trailer()),
			want: []Entry{
				{Name: "x", Mode: reg, Ino: 7, NLink: 3, Data: []byte("shared")},
				{Name: "y", Mode: reg, Ino: 7, NLink: 3, Data: []byte("shared")},
				{Name: "other", Mode: reg, NLink: 1, Data: []byte("o")},
				{Name: "z", Mode: reg, Ino: 7, NLink: 3, Data: []byte("shared")},
				{Name: "w", Mode: reg, Ino: 7, NLink: 2},              // no link after it has data
				{Name: "v", Mode: reg, Ino: 7, NLink: 2, DevMinor: 1}, // other device
			},
		},
		{
			name:    "longest name",
			archive: arc(ent(strings.Repeat("n", MaxNameSize-1), reg, "d"), trailer()),
			want:    []Entry{{Name: strings.Repeat("n", MaxNameSize-1), Mode: reg, NLink: 1, Data: []byte("d")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.archive)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Read =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestReadNoCopy checks that Data is a capacity-limited window on the
// archive.
func TestReadNoCopy(t *testing.T) {
	a := arc(ent("kernel", reg, "0123456789"), trailer())
	es, err := Read(a)
	if err != nil {
		t.Fatal(err)
	}
	d := es[0].Data
	off := align(HEADER_SIZE + len("kernel\x00"))
	if unsafe.SliceData(d) != &a[off] {
		t.Errorf("Data does not point into the archive")
	}
	if cap(d) != len(d) {
		t.Errorf("cap(Data) = %d, want %d", cap(d), len(d))
	}
}

func TestReadErrors(t *testing.T) {
	good := arc(ent("a", reg, "data"), trailer())
	second := len(ent("a", reg, "data")) // offset of the trailer in good

	tests := []struct {
		name    string
		archive []byte
		offset  int
		want    string // the whole message
	}{
		{"empty", nil, 0, "cpio: at byte 0: the archive ends without a TRAILER!!! entry (truncated?)"},
		{"truncated header", good[:50], 0, "cpio: at byte 0: truncated header: 50 bytes left, a newc header has 110 (truncated archive?)"},
		{"missing trailer", good[:second], second, "cpio: at byte 116: the archive ends without a TRAILER!!! entry (truncated?)"},
		{"truncated trailer header", good[:second+20], second, "cpio: at byte 116: truncated header: 20 bytes left, a newc header has 110 (truncated archive?)"},
		{"bad magic", append([]byte("070700"), good[6:]...), 0, `cpio: at byte 0: bad magic "070700": not a newc cpio archive (want magic 070701; write it with cpio -o -H newc)`},
		{"crc format", append([]byte(MAGIC_CRC), good[6:]...), 0, "cpio: at byte 0: new CRC format (magic 070702): write the archive in newc format (cpio -o -H newc)"},
		{"odc format", append([]byte(MAGIC_ODC), good[6:]...), 0, "cpio: at byte 0: old portable format (magic 070707): write the archive in newc format (cpio -o -H newc)"},
		{"gzip", append([]byte("\x1f\x8b\x08\x00"), make([]byte, 200)...), 0, "cpio: at byte 0: the archive is gzip-compressed: Keel reads uncompressed newc archives (decompress it)"},
		{"bad magic later", setAt(good, second+5, "X"), second, `cpio: at byte 116: bad magic "07070X" where the next header should start (want 070701): the previous entry's sizes or padding are wrong, or the archive is corrupt`},
		{"bad hex digit", setField(good, 0, fFileSize, "0000000g"), 0, `cpio: at byte 0: header field c_filesize is "0000000g", not 8 hexadecimal digits`},
		{"sign in hex field", setField(good, 0, fMode, "+00081a4"), 0, `cpio: at byte 0: header field c_mode is "+00081a4", not 8 hexadecimal digits`},
		{"space in hex field", setField(good, 0, fCheck, "       0"), 0, `cpio: at byte 0: header field c_check is "       0", not 8 hexadecimal digits`},
		{"namesize 0", setField(good, 0, fNameSize, "00000000"), 0, "cpio: at byte 0: c_namesize is 0: a name has at least one byte and the NUL that c_namesize counts"},
		{"namesize 1", setField(good, 0, fNameSize, "00000001"), 0, "cpio: at byte 0: c_namesize is 1: a name has at least one byte and the NUL that c_namesize counts"},
		{"oversize name", setField(good, 0, fNameSize, "00001001"), 0, "cpio: at byte 0: c_namesize is 4097: names are at most 4096 bytes with the NUL"},
		{"name past the end", setField(good, 0, fNameSize, "00001000"), 0, "cpio: at byte 0: the name (c_namesize 4096) runs past the end of the archive, 130 bytes on (truncated?)"},
		{"name without NUL", setField(arc(ent("ab", reg, ""), trailer()), 0, fNameSize, "00000002"), 0, `cpio: at byte 0: the name "ab" is not NUL-terminated (c_namesize 2 must count the NUL)`},
		{"NUL inside the name", setField(arc(ent("abcd", reg, ""), trailer()), 0, fNameSize, "00000006"), 0, `cpio: entry "abcd" at byte 0: NUL inside the name: c_namesize 6 is 1 too large`},
		{"misaligned: no padding after the name", arc(rawHeader(MAGIC_NEWC, fields{fMode: reg, fNLink: 1, fFileSize: 4, fNameSize: 3}), []byte("ab\x00data"), trailer()), 0,
			`cpio: entry "ab" at byte 0: the padding after the name is not zero (misaligned archive? newc pads header+name to a multiple of 4 bytes)`},
		{"misaligned: no padding after the data", arc(rawHeader(MAGIC_NEWC, fields{fMode: reg, fNLink: 1, fFileSize: 1, fNameSize: 2}), []byte("a\x00d"), trailer()), 0,
			`cpio: entry "a" at byte 0: the padding after the data is not zero (misaligned archive? newc pads data to a multiple of 4 bytes)`},
		{"size beyond the slice", setField(good, 0, fFileSize, "ffffffff"), 0, `cpio: entry "a" at byte 0: 4294967295 bytes of data (c_filesize) run past the end of the archive, 128 bytes on (truncated?)`},
		{"data cut off", arc(ent("a", reg, "data"))[:HEADER_SIZE+2+2], 0, `cpio: entry "a" at byte 0: 4 bytes of data (c_filesize) run past the end of the archive, 2 bytes on (truncated?)`},
		{"data padding cut off", arc(ent("a", reg, "dat"))[:HEADER_SIZE+2+3], 0, `cpio: entry "a" at byte 0: the padding after the data runs past the end of the archive (truncated?)`},
		{"name padding cut off", arc(ent("ab", reg, ""))[:HEADER_SIZE+3], 0, `cpio: entry "ab" at byte 0: the padding after the name runs past the end of the archive (truncated?)`},
		{"garbage after the trailer", append(arc(good, []byte{0, 0, 0, 0}), 'x'), second + 124 + 4, "cpio: at byte 244: non-zero data after the TRAILER!!! entry (concatenated archives are not accepted)"},
		{"concatenated archives", arc(good, good), second + 124, "cpio: at byte 240: non-zero data after the TRAILER!!! entry (concatenated archives are not accepted)"},
		{"trailer with data", arc(ent(TRAILER, 0, "x")), 0, `cpio: entry "TRAILER!!!" at byte 0: the trailer has 1 bytes of data (it has none)`},
		{"duplicate name", arc(ent("a", reg, ""), ent("b", reg, ""), ent("a", reg, ""), trailer()), 224, `cpio: entry "a" at byte 224: duplicate name: the entry at byte 0 has it too`},
		{"duplicate once cleaned", arc(ent("a/b", dir, ""), ent("./a/b", reg, ""), trailer()), 116, `cpio: entry "./a/b" at byte 116: duplicate name "a/b": the entry at byte 0 has it too`},
		{"absolute name", arc(ent("/etc/passwd", reg, ""), trailer()), 0, `cpio: entry "/etc/passwd" at byte 0: absolute name (archive names are relative: build it from inside the directory, e.g. cd DIR && find . | cpio -o -H newc)`},
		{"dot-dot", arc(ent("a/../../b", reg, ""), trailer()), 0, `cpio: entry "a/../../b" at byte 0: name with a ".." element (names must stay inside the archive)`},
		{"trailer in disguise", arc(ent("./TRAILER!!!", reg, ""), trailer()), 0, `cpio: entry "./TRAILER!!!" at byte 0: a file named TRAILER!!! would end the archive`},
		{"root as a file", arc(ent(".", reg, ""), trailer()), 0, `cpio: entry "." at byte 0: the root is a regular file; it can only be a directory`},
		{"character device", arc(ent("dev/console", S_IFCHR|0o600, ""), trailer()), 0, `cpio: entry "dev/console" at byte 0: character device (mode 020600): an archive here holds only regular files, directories and symbolic links`},
		{"fifo", arc(ent("p", S_IFIFO|0o600, ""), trailer()), 0, `cpio: entry "p" at byte 0: FIFO (mode 010600): an archive here holds only regular files, directories and symbolic links`},
		{"no type", arc(ent("p", 0o644, ""), trailer()), 0, `cpio: entry "p" at byte 0: file of unknown type 0 (mode 0644): an archive here holds only regular files, directories and symbolic links`},
		{"mode above st_mode", arc(ent("p", 0x10000|reg, ""), trailer()), 0, `cpio: entry "p" at byte 0: mode 0300644 has bits above 0177777`},
		{"directory with data", arc(ent("d", dir, "x"), trailer()), 0, `cpio: entry "d" at byte 0: directory with 1 bytes of data (directories have none)`},
		{"symlink without target", arc(ent("l", link, ""), trailer()), 0, `cpio: entry "l" at byte 0: symbolic link target of 0 bytes (want 1 to 4095)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := Read(tt.archive)
			if err == nil {
				t.Fatalf("Read accepted it: %+v", es)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError: %v", err, err)
			}
			if fe.Offset != tt.offset {
				t.Errorf("Offset = %d, want %d", fe.Offset, tt.offset)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"vmlinuz", "vmlinuz", ""},
		{"./boot/vmlinuz", "boot/vmlinuz", ""},
		{"boot//x/./y/", "boot/x/y", ""},
		{"a..b", "a..b", ""},
		{".", "", "the root directory"},
		{"./", "", "the root directory"},
		{"", "", "empty name"},
		{"/x", "", "absolute name"},
		{"a/../b", "", `".." element`},
		{"..", "", `".." element`},
		{"a\x00b", "", "NUL byte"},
		{TRAILER, "", "would end the archive"},
		{strings.Repeat("x", MaxNameSize), "", "name of 4096 bytes (at most 4095)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CleanName(tt.in)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Errorf("CleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CleanName(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
		})
	}
	if _, err := CleanName("."); !errors.Is(err, ErrRoot) {
		t.Errorf("CleanName(.) = %v, want ErrRoot", err)
	}
}

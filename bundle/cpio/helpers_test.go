package cpio

import (
	"bytes"
	"fmt"
)

// The helpers build archives by hand, independently of Writer, so that the
// reader's tests do not depend on the writer.

// fields are a header's 13 values in header order (c_namesize included).
type fields [numFields]uint32

// rawHeader formats a header the way cpio(5) describes it.
func rawHeader(magic string, f fields) []byte {
	s := magic
	for _, v := range f {
		s += fmt.Sprintf("%08x", v)
	}
	return []byte(s)
}

// ent is one well-formed entry: header, name, NUL, padding, data, padding.
func ent(name string, mode uint32, data string) []byte {
	return entWith(name, mode, data, nil)
}

// entWith is ent with a hook that edits the header fields after they are
// computed.
func entWith(name string, mode uint32, data string, edit func(f *fields)) []byte {
	f := fields{fMode: mode, fNLink: 1, fFileSize: uint32(len(data)), fNameSize: uint32(len(name) + 1)}
	if edit != nil {
		edit(&f)
	}
	b := rawHeader(MAGIC_NEWC, f)
	b = append(b, name...)
	b = append(b, 0)
	b = pad4(b)
	b = append(b, data...)
	return pad4(b)
}

// pad4 appends zeros up to a multiple of 4 bytes.
func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// trailer is the TRAILER!!! entry as GNU cpio writes it.
func trailer() []byte { return ent(TRAILER, 0, "") }

// arc concatenates entries.
func arc(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// setField overwrites the text of header field i of the header at off.
func setField(b []byte, off, i int, text string) []byte {
	return setAt(b, off+len(MAGIC_NEWC)+8*i, text)
}

// setAt overwrites b at pos with text, in a copy.
func setAt(b []byte, pos int, text string) []byte {
	b = append([]byte(nil), b...)
	copy(b[pos:], text)
	return b
}

// Modes used in tests.
const (
	reg  = S_IFREG | 0o644
	dir  = S_IFDIR | 0o755
	link = S_IFLNK | 0o777
)

package cpio

import (
	"errors"
	"fmt"
	"io"
)

// Writer writes a newc archive to an io.Writer, one entry at a time, and
// the trailer on Close. It writes every header field as the Entry gives it
// (c_check zero), so that Read of the result returns the same entries; the
// caller chooses inode numbers, link counts and times (zero times make
// reproducible archives). Directories should be added before the files in
// them: `cpio -i` does not create missing directories unless given -d.
//
// A Writer checks each entry as Read would and refuses duplicate names.
// After an error from the underlying writer the archive is incomplete and
// every later call returns that error.
type Writer struct {
	w      io.Writer
	n      int64
	names  map[string]struct{}
	err    error // sticky: set when a write failed
	closed bool
	buf    []byte // header, name and padding of the entry being written
}

// NewWriter returns a Writer that writes an archive to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, names: map[string]struct{}{}}
}

// Written returns the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Add writes e, with e.Data as its contents (a regular file's data or a
// symbolic link's target).
func (w *Writer) Add(e *Entry) error {
	if err := w.begin(e, uint64(len(e.Data))); err != nil {
		return err
	}
	if err := w.write(e.Data); err != nil {
		return err
	}
	return w.pad(len(e.Data))
}

// AddFrom writes e with contents copied from r: exactly size bytes, which
// it reads through a small buffer. e.Data is ignored. If r ends early the
// archive is left incomplete and the error says so.
func (w *Writer) AddFrom(e *Entry, size int64, r io.Reader) error {
	if size < 0 {
		return fmt.Errorf("cpio: %q: negative size %d", e.Name, size)
	}
	if err := w.begin(e, uint64(size)); err != nil {
		return err
	}
	n, err := io.CopyN(writerFunc(w.write), r, size)
	if err != nil {
		if w.err == nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%d of %d bytes: the file is shorter than its size (did it change while the archive was written?)", n, size)
			}
			w.err = fmt.Errorf("cpio: reading the data of %q: %w", e.Name, err)
		}
		return w.err
	}
	return w.pad(int(size % ALIGN))
}

// Close writes the trailer. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return nil
	}
	var f [numFields]uint32
	f[fNLink] = 1
	if err := w.header(&f, TRAILER); err != nil {
		return err
	}
	w.closed = true
	return nil
}

// begin checks e and writes its header, name and name padding.
func (w *Writer) begin(e *Entry, size uint64) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return fmt.Errorf("cpio: adding %q: the archive is closed", e.Name)
	}
	clean, err := CleanName(e.Name)
	switch {
	case errors.Is(err, ErrRoot):
		return fmt.Errorf("cpio: %q is the root directory, which the archive does not list", e.Name)
	case err != nil:
		return fmt.Errorf("cpio: %q: %v", e.Name, err)
	case clean != e.Name:
		return fmt.Errorf("cpio: %q is not a clean name (write %q)", e.Name, clean)
	}
	if err := checkEntry(e.Mode, size); err != nil {
		return fmt.Errorf("cpio: %q: %v", e.Name, err)
	}
	if _, dup := w.names[e.Name]; dup {
		return fmt.Errorf("cpio: %q added twice", e.Name)
	}
	f := [numFields]uint32{
		fIno:       e.Ino,
		fMode:      e.Mode,
		fUID:       e.UID,
		fGID:       e.GID,
		fNLink:     e.NLink,
		fMTime:     e.MTime,
		fFileSize:  uint32(size),
		fDevMajor:  e.DevMajor,
		fDevMinor:  e.DevMinor,
		fRDevMajor: e.RDevMajor,
		fRDevMinor: e.RDevMinor,
	}
	if err := w.header(&f, e.Name); err != nil {
		return err
	}
	w.names[e.Name] = struct{}{}
	return nil
}

// header writes a header for name with fields f (c_namesize is set here),
// the name, its NUL and the padding.
func (w *Writer) header(f *[numFields]uint32, name string) error {
	f[fNameSize] = uint32(len(name) + 1)
	const hex = "0123456789abcdef"
	b := append(w.buf[:0], MAGIC_NEWC...)
	for _, v := range f {
		for shift := 28; shift >= 0; shift -= 4 {
			b = append(b, hex[v>>uint(shift)&0xf])
		}
	}
	b = append(b, name...)
	b = append(b, 0)
	for len(b)%ALIGN != 0 {
		b = append(b, 0)
	}
	w.buf = b
	return w.write(b)
}

// pad writes the zero padding after n bytes of data (n counted modulo
// ALIGN is enough).
func (w *Writer) pad(n int) error {
	var zero [ALIGN]byte
	return w.write(zero[:(ALIGN-n%ALIGN)%ALIGN])
}

// write writes b to the underlying writer, counting and keeping errors.
func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("cpio: writing the archive: %w", err)
	}
	return w.err
}

// writerFunc adapts write to io.Writer for io.CopyN.
type writerFunc func([]byte) error

func (f writerFunc) Write(b []byte) (int, error) {
	if err := f(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

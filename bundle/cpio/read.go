package cpio

import (
	"bytes"
	"errors"
	"fmt"
)

// Read parses the newc archive that archive holds and returns its entries
// in archive order. Each entry's Data is a sub-slice of archive.
//
// Read accepts an archive only if:
//
//   - every header has the magic 070701 and 13 fields of exactly 8
//     hexadecimal digits (either case);
//   - every name is 1 to MaxNameSize-1 bytes followed by the one NUL that
//     c_namesize counts, and is valid for CleanName;
//   - the padding after header+name and after the data is present and
//     zero, so that every header starts at a multiple of 4 bytes;
//   - every name and all data lie inside the slice;
//   - every entry is a regular file, a directory (without data) or a
//     symbolic link (with a target of 1 to MaxNameSize-1 bytes);
//   - no two entries have the same name once cleaned ("./a" and "a" are
//     the same name);
//   - a TRAILER!!! entry without data ends the archive, followed by
//     nothing but zero bytes (GNU cpio pads archives to 512-byte blocks;
//     the trailer's own padding may be cut off).
//
// Names are returned cleaned (see CleanName). The root directory entry
// (".") that `find . | cpio -o` writes is skipped. c_check is ignored, as
// cpio(5) says readers of newc do.
//
// Hard links: for newc, GNU cpio writes the data of a set of hard links
// once, with the last link, and gives the others a size of zero. Read
// gives each empty regular file with c_nlink > 1 the data of the next entry
// with the same c_devmajor, c_devminor and c_ino that has data, if there
// is one.
//
// Errors are *FormatError and give the offset of the entry at fault.
func Read(archive []byte) ([]Entry, error) {
	var (
		entries []Entry
		seen    = map[string]int{} // cleaned name -> header offset
		links   bool               // some regular file has c_nlink > 1
	)
	for off := 0; ; {
		if off == len(archive) {
			return nil, &FormatError{Offset: off, Msg: "the archive ends without a " + TRAILER + " entry (truncated?)"}
		}
		if len(archive)-off < HEADER_SIZE {
			return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("truncated header: %d bytes left, a newc header has %d (truncated archive?)", len(archive)-off, HEADER_SIZE)}
		}
		h := archive[off : off+HEADER_SIZE]
		if string(h[:len(MAGIC_NEWC)]) != MAGIC_NEWC {
			return nil, magicError(h, off)
		}
		var f [numFields]uint32
		for i := range f {
			field := h[len(MAGIC_NEWC)+8*i : len(MAGIC_NEWC)+8*i+8]
			v, ok := parseHex8(field)
			if !ok {
				return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("header field %s is %q, not 8 hexadecimal digits", fieldNames[i], field)}
			}
			f[i] = v
		}

		// The name, with its NUL, right after the header.
		nameSize := f[fNameSize]
		nameStart := off + HEADER_SIZE
		switch {
		case nameSize < 2:
			return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("c_namesize is %d: a name has at least one byte and the NUL that c_namesize counts", nameSize)}
		case nameSize > MaxNameSize:
			return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("c_namesize is %d: names are at most %d bytes with the NUL", nameSize, MaxNameSize)}
		case uint64(nameSize) > uint64(len(archive)-nameStart):
			return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("the name (c_namesize %d) runs past the end of the archive, %d bytes on (truncated?)", nameSize, len(archive)-nameStart)}
		}
		nameEnd := nameStart + int(nameSize)
		raw := archive[nameStart:nameEnd]
		if raw[len(raw)-1] != 0 {
			return nil, &FormatError{Offset: off, Msg: fmt.Sprintf("the name %q is not NUL-terminated (c_namesize %d must count the NUL)", raw, nameSize)}
		}
		raw = raw[:len(raw)-1]
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			return nil, &FormatError{Offset: off, Name: string(raw[:i]), Msg: fmt.Sprintf("NUL inside the name: c_namesize %d is %d too large", nameSize, len(raw)-i)}
		}
		name := string(raw)
		size := uint64(f[fFileSize])

		if name == TRAILER {
			if size != 0 {
				return nil, &FormatError{Offset: off, Name: name, Msg: fmt.Sprintf("the trailer has %d bytes of data (it has none)", size)}
			}
			// Only zero bytes may follow: the trailer's padding and block
			// padding, either of which may be missing.
			if i := firstNonZero(archive[nameEnd:]); i >= 0 {
				return nil, &FormatError{Offset: nameEnd + i, Msg: "non-zero data after the " + TRAILER + " entry (concatenated archives are not accepted)"}
			}
			break
		}

		dataOff := align(nameEnd)
		if dataOff > len(archive) {
			return nil, &FormatError{Offset: off, Name: name, Msg: "the padding after the name runs past the end of the archive (truncated?)"}
		}
		if firstNonZero(archive[nameEnd:dataOff]) >= 0 {
			return nil, &FormatError{Offset: off, Name: name, Msg: "the padding after the name is not zero (misaligned archive? newc pads header+name to a multiple of 4 bytes)"}
		}
		if size > uint64(len(archive)-dataOff) {
			return nil, &FormatError{Offset: off, Name: name, Msg: fmt.Sprintf("%d bytes of data (c_filesize) run past the end of the archive, %d bytes on (truncated?)", size, len(archive)-dataOff)}
		}
		dataEnd := dataOff + int(size)
		next := align(dataEnd)
		if next > len(archive) {
			return nil, &FormatError{Offset: off, Name: name, Msg: "the padding after the data runs past the end of the archive (truncated?)"}
		}
		if firstNonZero(archive[dataEnd:next]) >= 0 {
			return nil, &FormatError{Offset: off, Name: name, Msg: "the padding after the data is not zero (misaligned archive? newc pads data to a multiple of 4 bytes)"}
		}

		mode := f[fMode]
		if err := checkEntry(mode, size); err != nil {
			return nil, &FormatError{Offset: off, Name: name, Msg: err.Error()}
		}
		clean, err := CleanName(name)
		if errors.Is(err, ErrRoot) {
			if mode&S_IFMT != S_IFDIR {
				return nil, &FormatError{Offset: off, Name: name, Msg: fmt.Sprintf("the root is a %s; it can only be a directory", typeName(mode))}
			}
			off = next
			continue
		}
		if err != nil {
			return nil, &FormatError{Offset: off, Name: name, Msg: err.Error()}
		}
		if prev, dup := seen[clean]; dup {
			msg := fmt.Sprintf("duplicate name: the entry at byte %d has it too", prev)
			if clean != name {
				msg = fmt.Sprintf("duplicate name %q: the entry at byte %d has it too", clean, prev)
			}
			return nil, &FormatError{Offset: off, Name: name, Msg: msg}
		}
		seen[clean] = off

		e := Entry{
			Name:      clean,
			Mode:      mode,
			UID:       f[fUID],
			GID:       f[fGID],
			MTime:     f[fMTime],
			Ino:       f[fIno],
			NLink:     f[fNLink],
			DevMajor:  f[fDevMajor],
			DevMinor:  f[fDevMinor],
			RDevMajor: f[fRDevMajor],
			RDevMinor: f[fRDevMinor],
		}
		if size > 0 {
			e.Data = archive[dataOff:dataEnd:dataEnd]
		}
		if e.IsRegular() && e.NLink > 1 {
			links = true
		}
		entries = append(entries, e)
		off = next
	}
	if links {
		resolveHardLinks(entries)
	}
	return entries, nil
}

// resolveHardLinks gives each empty regular file with NLink > 1 the data of
// the next entry of its link set that has data.
func resolveHardLinks(entries []Entry) {
	type key struct{ major, minor, ino uint32 }
	later := map[key][]byte{}
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		if !e.IsRegular() || e.NLink < 2 {
			continue
		}
		k := key{e.DevMajor, e.DevMinor, e.Ino}
		if len(e.Data) > 0 {
			later[k] = e.Data
		} else if d, ok := later[k]; ok {
			e.Data = d
		}
	}
}

// magicError explains a header that does not start with MAGIC_NEWC.
func magicError(h []byte, off int) *FormatError {
	magic := h[:len(MAGIC_NEWC)]
	switch string(magic) {
	case MAGIC_CRC:
		return &FormatError{Offset: off, Msg: "new CRC format (magic 070702): write the archive in newc format (cpio -o -H newc)"}
	case MAGIC_ODC:
		return &FormatError{Offset: off, Msg: "old portable format (magic 070707): write the archive in newc format (cpio -o -H newc)"}
	}
	if off == 0 {
		for _, c := range []struct{ magic, name string }{
			{"\x1f\x8b", "gzip"},
			{"\xfd7zXZ\x00", "xz"},
			{"\x28\xb5\x2f\xfd", "zstd"},
			{"BZh", "bzip2"},
			{"\x04\x22\x4d\x18", "lz4"},
		} {
			if bytes.HasPrefix(h, []byte(c.magic)) {
				return &FormatError{Offset: off, Msg: "the archive is " + c.name + "-compressed: Keel reads uncompressed newc archives (decompress it)"}
			}
		}
		return &FormatError{Offset: off, Msg: fmt.Sprintf("bad magic %q: not a newc cpio archive (want magic 070701; write it with cpio -o -H newc)", magic)}
	}
	return &FormatError{Offset: off, Msg: fmt.Sprintf("bad magic %q where the next header should start (want 070701): the previous entry's sizes or padding are wrong, or the archive is corrupt", magic)}
}

// parseHex8 parses exactly 8 hexadecimal digits of either case.
func parseHex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, len(b) == 8
}

// align rounds n up to a multiple of ALIGN.
func align(n int) int { return (n + ALIGN - 1) &^ (ALIGN - 1) }

// firstNonZero returns the index of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// Package cpio reads and writes cpio archives in the "new ASCII" (newc)
// format, magic "070701": the format of Keel's boot bundle and of Linux
// initramfs images.
//
// Read parses a whole archive held in memory, as a boot module is, and
// returns its entries with their data as sub-slices of the archive: nothing
// is copied, whatever the size of the files. Its checks are strict (see
// Read). Writer produces archives that Read and GNU cpio (`cpio -i`) accept;
// it streams file data from an io.Reader, so that the host tool never holds
// a guest image in memory.
//
// The package is pure Go and host-testable: the kernel (GOOS=tamago) reads
// its boot bundle with it, and `go test` runs it on the host.
package cpio

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// The newc format, as described in cpio(5) ("New ASCII Format") and in
// Linux's Documentation/driver-api/early-userspace/buffer-format.rst.
//
// An entry is a 110-byte header of ASCII text, the name with its
// terminating NUL, zero padding to a multiple of 4 bytes (counted from the
// start of the header), the data, and zero padding to a multiple of 4
// bytes. The header is the magic followed by 13 fields of 8 hexadecimal
// digits each: c_ino, c_mode, c_uid, c_gid, c_nlink, c_mtime, c_filesize,
// c_devmajor, c_devminor, c_rdevmajor, c_rdevminor, c_namesize (which
// counts the NUL) and c_check (zero in newc). The archive ends with an
// entry named TRAILER!!!.
const (
	// MAGIC_NEWC is the magic of the new ASCII format.
	MAGIC_NEWC = "070701"
	// MAGIC_CRC is the magic of the new CRC format, newc with a checksum
	// in c_check; not accepted (write newc).
	MAGIC_CRC = "070702"
	// MAGIC_ODC is the magic of the old portable ASCII format; not
	// accepted.
	MAGIC_ODC = "070707"

	// HEADER_SIZE is the size of a newc header: the 6-byte magic and 13
	// fields of 8 hex digits.
	HEADER_SIZE = 6 + 13*8

	// TRAILER is the name of the entry that ends an archive.
	TRAILER = "TRAILER!!!"

	// ALIGN is the alignment of every header and of every entry's data.
	ALIGN = 4
)

// Indexes of the 13 header fields, in header order.
const (
	fIno = iota
	fMode
	fUID
	fGID
	fNLink
	fMTime
	fFileSize
	fDevMajor
	fDevMinor
	fRDevMajor
	fRDevMinor
	fNameSize
	fCheck
	numFields
)

var fieldNames = [numFields]string{
	"c_ino", "c_mode", "c_uid", "c_gid", "c_nlink", "c_mtime", "c_filesize",
	"c_devmajor", "c_devminor", "c_rdevmajor", "c_rdevminor", "c_namesize", "c_check",
}

// File type bits of c_mode, from POSIX <sys/stat.h>.
const (
	// S_IFMT masks the file type bits.
	S_IFMT = 0o170000
	// S_IFREG is a regular file.
	S_IFREG = 0o100000
	// S_IFDIR is a directory.
	S_IFDIR = 0o040000
	// S_IFLNK is a symbolic link; its data is the target.
	S_IFLNK = 0o120000
	// S_IFCHR is a character device; like the three types below, an
	// archive here must not hold one (they are named in errors).
	S_IFCHR = 0o020000
	// S_IFBLK is a block device.
	S_IFBLK = 0o060000
	// S_IFIFO is a FIFO.
	S_IFIFO = 0o010000
	// S_IFSOCK is a socket.
	S_IFSOCK = 0o140000

	// modeBits are the bits a mode may have: type, set-id, sticky and
	// permission bits.
	modeBits = 0o177777
)

// Limits.
const (
	// MaxNameSize is the largest c_namesize accepted, NUL included: Linux's
	// PATH_MAX.
	MaxNameSize = 4096
	// MaxFileSize is the largest file newc can hold: c_filesize has 32
	// bits.
	MaxFileSize = 1<<32 - 1
)

// Entry is one member of an archive: a regular file, a directory or a
// symbolic link.
type Entry struct {
	// Name is the entry's path inside the archive in the form CleanName
	// returns: relative, slash-separated, without "." or ".." elements.
	Name string
	// Mode is the file type (S_IFREG, S_IFDIR or S_IFLNK) and permission
	// bits, as in st_mode.
	Mode uint32
	// UID and GID are the owner; MTime is the modification time in
	// seconds since 1970.
	UID, GID, MTime uint32
	// Ino and NLink are the inode number and link count. Regular files
	// with NLink > 1 that share DevMajor, DevMinor and Ino are hard links
	// (see Read).
	Ino, NLink uint32
	// DevMajor and DevMinor identify the device the file was on;
	// RDevMajor and RDevMinor are zero for the types Entry can hold.
	DevMajor, DevMinor, RDevMajor, RDevMinor uint32
	// Data is a regular file's contents or a symbolic link's target;
	// nil for a directory and for an empty file. Read returns a sub-slice
	// of the archive (capacity limited to its length, so that appending
	// copies); do not modify it.
	Data []byte
}

// IsRegular reports whether e is a regular file.
func (e *Entry) IsRegular() bool { return e.Mode&S_IFMT == S_IFREG }

// IsDir reports whether e is a directory.
func (e *Entry) IsDir() bool { return e.Mode&S_IFMT == S_IFDIR }

// IsSymlink reports whether e is a symbolic link.
func (e *Entry) IsSymlink() bool { return e.Mode&S_IFMT == S_IFLNK }

// typeName names the file type of a mode for errors.
func typeName(mode uint32) string {
	switch mode & S_IFMT {
	case S_IFREG:
		return "regular file"
	case S_IFDIR:
		return "directory"
	case S_IFLNK:
		return "symbolic link"
	case S_IFCHR:
		return "character device"
	case S_IFBLK:
		return "block device"
	case S_IFIFO:
		return "FIFO"
	case S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of unknown type %#o", mode&S_IFMT)
}

// checkEntry checks what Read and Writer both require of an entry apart
// from its name: a known type, mode bits within st_mode, no data for a
// directory, a target for a symbolic link, and a size newc can hold.
func checkEntry(mode uint32, size uint64) error {
	if mode&^modeBits != 0 {
		return fmt.Errorf("mode %#o has bits above %#o", mode, modeBits)
	}
	switch mode & S_IFMT {
	case S_IFREG:
	case S_IFDIR:
		if size != 0 {
			return fmt.Errorf("directory with %d bytes of data (directories have none)", size)
		}
	case S_IFLNK:
		if size == 0 || size >= MaxNameSize {
			return fmt.Errorf("symbolic link target of %d bytes (want 1 to %d)", size, MaxNameSize-1)
		}
	default:
		return fmt.Errorf("%s (mode %#o): an archive here holds only regular files, directories and symbolic links", typeName(mode), mode)
	}
	if size > MaxFileSize {
		return fmt.Errorf("%d bytes: newc holds files of at most %d bytes (4 GiB - 1)", size, uint64(MaxFileSize))
	}
	return nil
}

// ErrRoot is returned by CleanName for the archive's root directory (".",
// "./" and the like), which archives made with `find . | cpio -o`
// begin with. Read skips such a directory entry.
var ErrRoot = errors.New("the root directory")

// CleanName returns the canonical form of an archive member's name: a
// relative, slash-separated path with no empty, "." or ".." elements
// ("./boot/vmlinuz" and "boot//vmlinuz" become "boot/vmlinuz"). It rejects
// empty names, names with a NUL byte, absolute names, names with a ".."
// element, names of MaxNameSize bytes or more, and the name TRAILER!!!,
// which would end the archive. The root directory gives ErrRoot.
//
// Read stores cleaned names; Writer and the bundle's configuration accept
// only names that are already clean.
func CleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case len(name) >= MaxNameSize:
		return "", fmt.Errorf("name of %d bytes (at most %d)", len(name), MaxNameSize-1)
	case strings.IndexByte(name, 0) >= 0:
		return "", errors.New("name contains a NUL byte")
	case name[0] == '/':
		return "", errors.New("absolute name (archive names are relative: build it from inside the directory, e.g. cd DIR && find . | cpio -o -H newc)")
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", errors.New(`name with a ".." element (names must stay inside the archive)`)
		}
	}
	clean := path.Clean(name)
	switch clean {
	case ".":
		return "", ErrRoot
	case TRAILER:
		return "", errors.New("a file named " + TRAILER + " would end the archive")
	}
	return clean, nil
}

// FormatError describes a malformed archive.
type FormatError struct {
	// Offset is the byte offset in the archive of the header of the entry
	// at fault (or of the problem, when no header could be read).
	Offset int
	// Name is the entry's name as stored, if it was read.
	Name string
	// Msg says what is wrong and, where it helps, what to do.
	Msg string
}

func (e *FormatError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("cpio: entry %q at byte %d: %s", e.Name, e.Offset, e.Msg)
	}
	return fmt.Sprintf("cpio: at byte %d: %s", e.Offset, e.Msg)
}

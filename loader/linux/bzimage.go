package linux

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Setup header fields: their offsets in the kernel image, which are also
// their offsets in struct boot_params, where the header is copied
// (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header"; names
// as there). The protocol version that introduced a field follows it.
const (
	HDR_SETUP_SECTS           = 0x1F1 // u8: size of the setup code in 512-byte sectors, minus one
	HDR_SYSSIZE               = 0x1F4 // u32, 2.04+: size of the protected-mode code in 16-byte units
	HDR_VID_MODE              = 0x1FA // u16: video mode control
	HDR_BOOT_FLAG             = 0x1FE // u16: 0xAA55
	HDR_JUMP                  = 0x200 // u16, 2.00+: jump instruction; its second byte sizes the header
	HDR_HEADER                = 0x202 // u32, 2.00+: magic "HdrS"
	HDR_VERSION               = 0x206 // u16, 2.00+: boot protocol version
	HDR_TYPE_OF_LOADER        = 0x210 // u8, 2.00+: boot loader identifier (written)
	HDR_LOADFLAGS             = 0x211 // u8, 2.00+: boot protocol option flags
	HDR_CODE32_START          = 0x214 // u32, 2.00+: 32-bit entry point (unused by the 64-bit protocol)
	HDR_RAMDISK_IMAGE         = 0x218 // u32, 2.00+: initrd load address (written)
	HDR_RAMDISK_SIZE          = 0x21C // u32, 2.00+: initrd size (written)
	HDR_EXT_LOADER_VER        = 0x226 // u8, 2.02+: extended boot loader version
	HDR_EXT_LOADER_TYPE       = 0x227 // u8, 2.02+: extended boot loader ID
	HDR_CMD_LINE_PTR          = 0x228 // u32, 2.02+: command line address (written)
	HDR_INITRD_ADDR_MAX       = 0x22C // u32, 2.03+: highest byte address the initrd may occupy
	HDR_KERNEL_ALIGNMENT      = 0x230 // u32, 2.05+: physical alignment required for the kernel
	HDR_RELOCATABLE_KERNEL    = 0x234 // u8, 2.05+: nonzero if the kernel is relocatable
	HDR_MIN_ALIGNMENT         = 0x235 // u8, 2.10+: log2 of the minimum alignment
	HDR_XLOADFLAGS            = 0x236 // u16, 2.12+: extended boot protocol flags
	HDR_CMDLINE_SIZE          = 0x238 // u32, 2.06+: maximum command line length, without the NUL
	HDR_HARDWARE_SUBARCH      = 0x23C // u32, 2.07+: hardware subarchitecture (written)
	HDR_HARDWARE_SUBARCH_DATA = 0x240 // u64, 2.07+: subarchitecture data (written)
	HDR_PAYLOAD_OFFSET        = 0x248 // u32, 2.08+: offset of the compressed payload
	HDR_PAYLOAD_LENGTH        = 0x24C // u32, 2.08+: length of the compressed payload
	HDR_SETUP_DATA            = 0x250 // u64, 2.09+: physical address of a setup_data list (written)
	HDR_PREF_ADDRESS          = 0x258 // u64, 2.10+: preferred load address
	HDR_INIT_SIZE             = 0x260 // u32, 2.10+: linear memory the kernel needs from its load address
	HDR_HANDOVER_OFFSET       = 0x264 // u32, 2.11+: EFI handover entry point offset
	HDR_KERNEL_INFO_OFFSET    = 0x268 // u32, 2.15+: offset of kernel_info
)

// Setup header values (boot.rst, "Details of Header Fields").
const (
	// HDR_MAGIC is "HdrS" read as a little-endian u32.
	HDR_MAGIC = 0x53726448
	// BOOT_FLAG_MAGIC is the value of boot_flag.
	BOOT_FLAG_MAGIC = 0xAA55
	// DEFAULT_SETUP_SECTS is the real value of setup_sects when the
	// field holds 0.
	DEFAULT_SETUP_SECTS = 4
	// SECTOR_SIZE is the unit of setup_sects.
	SECTOR_SIZE = 512
	// SYSSIZE_UNIT is the unit of syssize.
	SYSSIZE_UNIT = 16

	// loadflags bits.
	LOADED_HIGH   = 1 << 0 // protected-mode code loads at 0x100000 (bzImage)
	KASLR_FLAG    = 1 << 1 // set by the kernel when KASLR is on
	QUIET_FLAG    = 1 << 5 // suppress early messages
	KEEP_SEGMENTS = 1 << 6 // obsolete
	CAN_USE_HEAP  = 1 << 7 // heap_end_ptr is valid

	// xloadflags bits.
	XLF_KERNEL_64              = 1 << 0 // has the 64-bit entry point at +0x200
	XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1 // kernel, boot_params, cmdline and initrd may lie above 4 GiB
	XLF_EFI_HANDOVER_32        = 1 << 2
	XLF_EFI_HANDOVER_64        = 1 << 3
	XLF_EFI_KEXEC              = 1 << 4

	// LOADER_TYPE_UNDEFINED is type_of_loader for a boot loader without
	// an assigned ID, which Keel is ("If your boot loader has an assigned
	// id ... Otherwise, enter 0xFF here").
	LOADER_TYPE_UNDEFINED = 0xFF

	// STARTUP_64_OFFSET is the offset of the 64-bit entry point in the
	// protected-mode kernel ("64-bit Boot Protocol": the start address
	// of the loaded 64-bit kernel plus 0x200).
	STARTUP_64_OFFSET = 0x200
)

// MIN_VERSION is the oldest boot protocol Keel loads: 2.12 (Linux 3.8),
// the first with xloadflags, whose XLF_KERNEL_64 says the 64-bit entry
// point exists. Everything else Keel reads (cmdline_size 2.06, pref_address
// and init_size 2.10) is older.
const MIN_VERSION = 0x020C

// hdrMinEnd is the end of the last field Keel reads, init_size.
const hdrMinEnd = HDR_INIT_SIZE + 4

// Header is what Keel reads from a bzImage's setup header, with the values
// the protocol derives from it.
type Header struct {
	// Version is the boot protocol version, 0x020F for 2.15.
	Version uint16
	// SetupSects is setup_sects with 0 read as DEFAULT_SETUP_SECTS.
	SetupSects int
	// HeaderEnd is the end of the setup header in the image: 0x202 plus
	// the byte at 0x201.
	HeaderEnd int
	// LoadFlags and XLoadFlags are the flag fields.
	LoadFlags  uint8
	XLoadFlags uint16
	// Relocatable is relocatable_kernel != 0.
	Relocatable bool
	// KernelAlignment is kernel_alignment.
	KernelAlignment uint32
	// InitrdAddrMax is initrd_addr_max: the highest address the initrd
	// may occupy.
	InitrdAddrMax uint32
	// CmdlineSize is cmdline_size: the longest command line, without
	// its NUL.
	CmdlineSize uint32
	// PrefAddress is pref_address.
	PrefAddress uint64
	// InitSize is init_size.
	InitSize uint32
	// KernelOffset is where the protected-mode kernel starts in the
	// image: (SetupSects+1)*512.
	KernelOffset int
	// KernelSize is the number of image bytes from KernelOffset on, all
	// of which are loaded.
	KernelSize int
}

// VersionString formats the protocol version as "2.15".
func (h *Header) VersionString() string { return versionString(h.Version) }

func versionString(v uint16) string { return fmt.Sprintf("%d.%02d", v>>8, v&0xFF) }

// String summarises the header in one line.
func (h *Header) String() string {
	return fmt.Sprintf("bzImage protocol %s, setup %d sectors, kernel %d bytes, init_size %#x, pref_address %#x, kernel_alignment %#x, relocatable %v, xloadflags %#x, cmdline_size %d",
		h.VersionString(), h.SetupSects, h.KernelSize, h.InitSize, h.PrefAddress, h.KernelAlignment, h.Relocatable, h.XLoadFlags, h.CmdlineSize)
}

// elfMagic starts an ELF file: a vmlinux passed in place of a bzImage.
var elfMagic = []byte{0x7F, 'E', 'L', 'F'}

// Parse reads and checks the setup header of image, a bzImage. It fails,
// saying what is wrong, unless the image is a bzImage with boot protocol
// MIN_VERSION or later that has a 64-bit entry point and is as long as its
// header says.
func Parse(image []byte) (*Header, error) {
	le := binary.LittleEndian
	if len(image) < HDR_VERSION+2 {
		if bytes.HasPrefix(image, elfMagic) {
			return nil, fmt.Errorf("bzImage: the file is an ELF file (vmlinux?), not a bzImage: pass arch/x86/boot/bzImage")
		}
		return nil, fmt.Errorf("bzImage: the image is %d bytes, too short to hold the setup header (it ends past %#x)", len(image), HDR_VERSION+2)
	}
	if m := le.Uint32(image[HDR_HEADER:]); m != HDR_MAGIC {
		if bytes.HasPrefix(image, elfMagic) {
			return nil, fmt.Errorf("bzImage: the file is an ELF file (vmlinux?), not a bzImage: pass arch/x86/boot/bzImage")
		}
		return nil, fmt.Errorf("bzImage: setup header magic at %#x is %#08x, want %#08x (\"HdrS\"): not a bzImage, or a kernel older than boot protocol 2.00", HDR_HEADER, m, HDR_MAGIC)
	}
	if f := le.Uint16(image[HDR_BOOT_FLAG:]); f != BOOT_FLAG_MAGIC {
		return nil, fmt.Errorf("bzImage: boot_flag at %#x is %#04x, want %#04x: the image is corrupt", HDR_BOOT_FLAG, f, BOOT_FLAG_MAGIC)
	}
	h := &Header{Version: le.Uint16(image[HDR_VERSION:])}
	if h.Version < MIN_VERSION {
		return nil, fmt.Errorf("bzImage: boot protocol %s too old, need %s+ (Linux 3.8 or later), whose xloadflags announce the 64-bit entry point", h.VersionString(), versionString(MIN_VERSION))
	}
	h.HeaderEnd = HDR_HEADER + int(image[HDR_JUMP+1])
	if h.HeaderEnd < hdrMinEnd {
		return nil, fmt.Errorf("bzImage: the setup header ends at %#x (0x202 + the byte at 0x201), before the end of init_size at %#x, which protocol %s has: the image is corrupt", h.HeaderEnd, hdrMinEnd, h.VersionString())
	}
	h.SetupSects = int(image[HDR_SETUP_SECTS])
	if h.SetupSects == 0 {
		h.SetupSects = DEFAULT_SETUP_SECTS
	}
	h.KernelOffset = (h.SetupSects + 1) * SECTOR_SIZE
	if h.HeaderEnd > h.KernelOffset {
		return nil, fmt.Errorf("bzImage: the setup header ends at %#x, past the %d setup sectors (%#x bytes): the image is corrupt", h.HeaderEnd, h.SetupSects+1, h.KernelOffset)
	}
	if len(image) <= h.KernelOffset {
		return nil, fmt.Errorf("bzImage: truncated: the image is %d bytes, but its setup code alone takes %d (setup_sects %d + 1 sectors)", len(image), h.KernelOffset, h.SetupSects)
	}
	h.KernelSize = len(image) - h.KernelOffset
	if sys := uint64(le.Uint32(image[HDR_SYSSIZE:])) * SYSSIZE_UNIT; sys > uint64(h.KernelSize) {
		return nil, fmt.Errorf("bzImage: truncated: syssize says the protected-mode kernel is %d bytes, the image has %d after the setup code", sys, h.KernelSize)
	}

	h.LoadFlags = image[HDR_LOADFLAGS]
	h.XLoadFlags = le.Uint16(image[HDR_XLOADFLAGS:])
	h.Relocatable = image[HDR_RELOCATABLE_KERNEL] != 0
	h.KernelAlignment = le.Uint32(image[HDR_KERNEL_ALIGNMENT:])
	h.InitrdAddrMax = le.Uint32(image[HDR_INITRD_ADDR_MAX:])
	h.CmdlineSize = le.Uint32(image[HDR_CMDLINE_SIZE:])
	h.PrefAddress = le.Uint64(image[HDR_PREF_ADDRESS:])
	h.InitSize = le.Uint32(image[HDR_INIT_SIZE:])

	if h.LoadFlags&LOADED_HIGH == 0 {
		return nil, fmt.Errorf("bzImage: loadflags %#02x lack LOADED_HIGH: this is a zImage, which loads below 1 MiB; build a bzImage", h.LoadFlags)
	}
	if h.XLoadFlags&XLF_KERNEL_64 == 0 {
		return nil, fmt.Errorf("bzImage: xloadflags %#04x lack XLF_KERNEL_64: the kernel has no 64-bit entry point (a 32-bit kernel?); Keel boots x86-64 kernels through the 64-bit boot protocol", h.XLoadFlags)
	}
	if h.KernelSize <= STARTUP_64_OFFSET {
		return nil, fmt.Errorf("bzImage: the protected-mode kernel is only %d bytes, but its 64-bit entry point is at offset %#x: the image is truncated", h.KernelSize, STARTUP_64_OFFSET)
	}
	if h.Relocatable && (h.KernelAlignment < 4096 || h.KernelAlignment&(h.KernelAlignment-1) != 0) {
		return nil, fmt.Errorf("bzImage: kernel_alignment %#x is not a power of two of at least 4 KiB: the image is corrupt", h.KernelAlignment)
	}
	return h, nil
}

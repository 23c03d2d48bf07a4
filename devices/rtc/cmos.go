package rtc

// CMOS bytes that PC firmware fills in and that boot loaders, BIOSes and
// old operating systems read. Bytes 10h-2Dh and their checksum are the IBM
// PC/AT layout (IBM PC/AT Technical Reference, "CMOS RAM Address Map");
// 34h-35h, 5Bh-5Dh and 5Fh are the layout QEMU writes and SeaBIOS reads to
// learn the RAM size and CPU count (SeaBIOS src/hw/rtc.h, src/fw/paravirt.c).
const (
	// CMOS_BASE_MEM_LOW/HIGH: conventional memory in KiB (640).
	CMOS_BASE_MEM_LOW  = 0x15
	CMOS_BASE_MEM_HIGH = 0x16
	// CMOS_EXT_MEM_LOW/HIGH: KiB of memory above 1 MiB, at most 65535.
	CMOS_EXT_MEM_LOW  = 0x17
	CMOS_EXT_MEM_HIGH = 0x18
	// CMOS_CHECKSUM_HIGH/LOW: big-endian sum of bytes
	// CMOS_CHECKSUM_FIRST-CMOS_CHECKSUM_LAST.
	CMOS_CHECKSUM_HIGH  = 0x2e
	CMOS_CHECKSUM_LOW   = 0x2f
	CMOS_CHECKSUM_FIRST = 0x10
	CMOS_CHECKSUM_LAST  = 0x2d
	// CMOS_EXT_MEM_ACTUAL_LOW/HIGH: the same as CMOS_EXT_MEM, as found
	// by the power-on self test.
	CMOS_EXT_MEM_ACTUAL_LOW  = 0x30
	CMOS_EXT_MEM_ACTUAL_HIGH = 0x31
	// CMOS_MEM_ABOVE_16M_LOW/HIGH: 64 KiB blocks of RAM between 16 MiB
	// and the end of RAM below 4 GiB, at most 65535.
	CMOS_MEM_ABOVE_16M_LOW  = 0x34
	CMOS_MEM_ABOVE_16M_HIGH = 0x35
	// CMOS_MEM_ABOVE_4G_LOW/MID/HIGH: 64 KiB blocks of RAM above 4 GiB,
	// 24 bits.
	CMOS_MEM_ABOVE_4G_LOW  = 0x5b
	CMOS_MEM_ABOVE_4G_MID  = 0x5c
	CMOS_MEM_ABOVE_4G_HIGH = 0x5d
	// CMOS_SMP_COUNT: number of CPUs minus one.
	CMOS_SMP_COUNT = 0x5f
)

// SetMemorySize fills in the CMOS memory-size bytes for below4G bytes of
// RAM from address 0 and above4G bytes from 4 GiB, and updates the
// checksum.
func (r *RTC) SetMemorySize(below4G, above4G uint64) {
	const (
		kib = 1 << 10
		mib = 1 << 20
	)
	ext := uint64(0)
	if below4G > mib {
		ext = min((below4G-mib)/kib, 0xffff)
	}
	above16 := uint64(0)
	if below4G > 16*mib {
		above16 = min((below4G-16*mib)/(64*kib), 0xffff)
	}
	high := min(above4G/(64*kib), 0xffffff)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram[CMOS_BASE_MEM_LOW], r.ram[CMOS_BASE_MEM_HIGH] = 640&0xff, 640>>8
	r.ram[CMOS_EXT_MEM_LOW], r.ram[CMOS_EXT_MEM_HIGH] = byte(ext), byte(ext>>8)
	r.ram[CMOS_EXT_MEM_ACTUAL_LOW], r.ram[CMOS_EXT_MEM_ACTUAL_HIGH] = byte(ext), byte(ext>>8)
	r.ram[CMOS_MEM_ABOVE_16M_LOW], r.ram[CMOS_MEM_ABOVE_16M_HIGH] = byte(above16), byte(above16>>8)
	r.ram[CMOS_MEM_ABOVE_4G_LOW] = byte(high)
	r.ram[CMOS_MEM_ABOVE_4G_MID] = byte(high >> 8)
	r.ram[CMOS_MEM_ABOVE_4G_HIGH] = byte(high >> 16)
	r.checksum()
}

// SetCPUCount records the number of CPUs (1-256) at CMOS_SMP_COUNT.
func (r *RTC) SetCPUCount(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ram[CMOS_SMP_COUNT] = byte(min(max(n, 1), 256) - 1)
}

// checksum recomputes the PC/AT checksum. Called with r.mu held.
func (r *RTC) checksum() {
	sum := uint16(0)
	for i := CMOS_CHECKSUM_FIRST; i <= CMOS_CHECKSUM_LAST; i++ {
		sum += uint16(r.ram[i])
	}
	r.ram[CMOS_CHECKSUM_HIGH], r.ram[CMOS_CHECKSUM_LOW] = byte(sum>>8), byte(sum)
}

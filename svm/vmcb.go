// Package svm is Keel's AMD-V backend: it implements hv.Backend with one
// VMCB per vCPU, nested paging (NPT) and the VMRUN loop.
//
// The VMCB layout, exit decoding, nested page tables and capability checks
// are pure Go and host-testable; entering the guest (run_amd64.s) and the
// MSR and per-CPU set-up are GOOS=tamago only.
//
// Reference: AMD64 Architecture Programmer's Manual Vol. 2, chapter 15
// "Secure Virtual Machine", and Appendix B "Layout of VMCB".
package svm

import (
	"encoding/binary"

	"github.com/keel-hv/keel/hv/arch"
)

// VMCB control area offsets (APM Vol. 2, Appendix B, Table B-1).
const (
	VMCB_INTERCEPT_CR      = 0x000 // u32: CR reads 15:0, writes 31:16
	VMCB_INTERCEPT_DR      = 0x004 // u32: DR reads 15:0, writes 31:16
	VMCB_INTERCEPT_EXC     = 0x008 // u32: exception vectors
	VMCB_INTERCEPT_MISC1   = 0x00c // u32: INTERCEPT_* below
	VMCB_INTERCEPT_MISC2   = 0x010 // u32: INTERCEPT2_* below
	VMCB_IOPM_BASE_PA      = 0x040 // u64
	VMCB_MSRPM_BASE_PA     = 0x048 // u64
	VMCB_TSC_OFFSET        = 0x050 // u64
	VMCB_GUEST_ASID        = 0x058 // u32
	VMCB_TLB_CONTROL       = 0x05c // u8
	VMCB_VINTR             = 0x060 // u64: V_TPR, V_IRQ, V_INTR_PRIO, V_INTR_MASKING, V_INTR_VECTOR (bits 39:32)
	VMCB_INTERRUPT_SHADOW  = 0x068 // u64: bit 0 shadow, bit 1 GUEST_INTERRUPT_MASK
	VMCB_EXITCODE          = 0x070 // u64
	VMCB_EXITINFO1         = 0x078 // u64
	VMCB_EXITINFO2         = 0x080 // u64
	VMCB_EXITINTINFO       = 0x088 // u64
	VMCB_NP_ENABLE         = 0x090 // u64: bit 0
	VMCB_EVENTINJ          = 0x0a8 // u64
	VMCB_N_CR3             = 0x0b0 // u64
	VMCB_CLEAN             = 0x0c0 // u32
	VMCB_NRIP              = 0x0c8 // u64
	VMCB_GUEST_INSN_BYTES  = 0x0d0 // u8 count, then 15 bytes
	VMCB_STATE_SAVE        = 0x400 // start of the state save area
	VMCB_SIZE              = 0x1000
	VMCB_INSN_BYTES_OFFSET = 0x0d1
)

// Intercept bits (APM Vol. 2, Appendix B, Table B-1, offsets 0Ch and 10h).
const (
	INTERCEPT_INTR      = 1 << 0
	INTERCEPT_NMI       = 1 << 1
	INTERCEPT_SMI       = 1 << 2
	INTERCEPT_INIT      = 1 << 3
	INTERCEPT_VINTR     = 1 << 4
	INTERCEPT_CPUID     = 1 << 18
	INTERCEPT_INVD      = 1 << 22
	INTERCEPT_HLT       = 1 << 24
	INTERCEPT_INVLPGA   = 1 << 26
	INTERCEPT_IOIO_PROT = 1 << 27
	INTERCEPT_MSR_PROT  = 1 << 28
	INTERCEPT_SHUTDOWN  = 1 << 31

	INTERCEPT2_VMRUN   = 1 << 0
	INTERCEPT2_VMMCALL = 1 << 1
	INTERCEPT2_VMLOAD  = 1 << 2
	INTERCEPT2_VMSAVE  = 1 << 3
	INTERCEPT2_STGI    = 1 << 4
	INTERCEPT2_CLGI    = 1 << 5
	INTERCEPT2_SKINIT  = 1 << 6
	INTERCEPT2_XSETBV  = 1 << 13
)

// VINTR fields (offset 60h).
const (
	V_IRQ             = 1 << 8
	V_INTR_PRIO_SHIFT = 16
	V_IGN_TPR         = 1 << 20
	V_INTR_MASKING    = 1 << 24
)

// TLB_CONTROL values (APM Vol. 2, 15.16.1).
const (
	TLB_CONTROL_DO_NOTHING = 0
	TLB_CONTROL_FLUSH_ALL  = 1
)

// State save area offsets (APM Vol. 2, Appendix B, Table B-2), from the
// start of the VMCB. Segments are {u16 selector, u16 attrib, u32 limit,
// u64 base}.
const (
	VMCB_ES     = 0x400
	VMCB_CS     = 0x410
	VMCB_SS     = 0x420
	VMCB_DS     = 0x430
	VMCB_FS     = 0x440
	VMCB_GS     = 0x450
	VMCB_GDTR   = 0x460
	VMCB_LDTR   = 0x470
	VMCB_IDTR   = 0x480
	VMCB_TR     = 0x490
	VMCB_CPL    = 0x4cb
	VMCB_EFER   = 0x4d0
	VMCB_CR4    = 0x548
	VMCB_CR3    = 0x550
	VMCB_CR0    = 0x558
	VMCB_DR7    = 0x560
	VMCB_DR6    = 0x568
	VMCB_RFLAGS = 0x570
	VMCB_RIP    = 0x578
	VMCB_RSP    = 0x5d8
	VMCB_RAX    = 0x5f8
	VMCB_CR2    = 0x640
	VMCB_G_PAT  = 0x668
)

// EVENTINJ and EXITINTINFO fields (APM Vol. 2, 15.20, Figure 15-3).
const (
	EVENT_TYPE_INTR      = 0 << 8
	EVENT_TYPE_NMI       = 2 << 8
	EVENT_TYPE_EXCEPTION = 3 << 8
	EVENT_TYPE_SOFT_INT  = 4 << 8
	EVENT_EV             = 1 << 11 // error code valid
	EVENT_VALID          = 1 << 31
)

// EFER bits.
const (
	EFER_LME  = 1 << 8
	EFER_LMA  = 1 << 10
	EFER_SVME = 1 << 12
)

// vmcb is one VMCB page, accessed by offset.
type vmcb []byte

var le = binary.LittleEndian

func (v vmcb) u8(off int) uint8          { return v[off] }
func (v vmcb) u32(off int) uint32        { return le.Uint32(v[off:]) }
func (v vmcb) u64(off int) uint64        { return le.Uint64(v[off:]) }
func (v vmcb) setU8(off int, x uint8)    { v[off] = x }
func (v vmcb) setU32(off int, x uint32)  { le.PutUint32(v[off:], x) }
func (v vmcb) setU64(off int, x uint64)  { le.PutUint64(v[off:], x) }
func (v vmcb) or32(off int, bits uint32) { v.setU32(off, v.u32(off)|bits) }

// segment unpacks the segment at off. The VMCB attribute word is the
// descriptor's attribute bits compressed to 12 bits: type 3:0, S 4, DPL
// 6:5, P 7, AVL 8, L 9, D/B 10, G 11 (APM Vol. 2, 15.5.1).
func (v vmcb) segment(off int) arch.Segment {
	attr := le.Uint16(v[off+2:])
	return arch.Segment{
		Selector: le.Uint16(v[off:]),
		Limit:    le.Uint32(v[off+4:]),
		Base:     le.Uint64(v[off+8:]),
		Type:     uint8(attr & 0xf),
		S:        attr&(1<<4) != 0,
		DPL:      uint8(attr>>5) & 3,
		Present:  attr&(1<<7) != 0,
		AVL:      attr&(1<<8) != 0,
		L:        attr&(1<<9) != 0,
		DB:       attr&(1<<10) != 0,
		G:        attr&(1<<11) != 0,
		Unusable: attr == 0,
	}
}

// setSegment packs s at off.
func (v vmcb) setSegment(off int, s arch.Segment) {
	var attr uint16
	if !s.Unusable {
		attr = uint16(s.Type&0xf) | uint16(s.DPL&3)<<5
		for _, f := range []struct {
			on  bool
			bit uint
		}{{s.S, 4}, {s.Present, 7}, {s.AVL, 8}, {s.L, 9}, {s.DB, 10}, {s.G, 11}} {
			if f.on {
				attr |= 1 << f.bit
			}
		}
	}
	le.PutUint16(v[off:], s.Selector)
	le.PutUint16(v[off+2:], attr)
	le.PutUint32(v[off+4:], s.Limit)
	le.PutUint64(v[off+8:], s.Base)
}

// table reads GDTR/IDTR (limit in the limit field, base in the base field).
func (v vmcb) table(off int) arch.DescriptorTable {
	return arch.DescriptorTable{Limit: uint16(le.Uint32(v[off+4:])), Base: le.Uint64(v[off+8:])}
}

func (v vmcb) setTable(off int, t arch.DescriptorTable) {
	le.PutUint32(v[off+4:], uint32(t.Limit))
	le.PutUint64(v[off+8:], t.Base)
}

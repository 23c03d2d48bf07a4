package bootinfo

import (
	"fmt"

	"github.com/keel-hv/keel/kernel/pc/pvh"
)

// PVH boot ABI (Xen xen/include/public/arch-x86/hvm/start_info.h). The
// start info and memory map layouts are decoded by kernel/pc/pvh.
const (
	// XEN_HVM_START_MAGIC_VALUE is hvm_start_info.magic.
	XEN_HVM_START_MAGIC_VALUE = pvh.XEN_HVM_START_MAGIC_VALUE

	// HVM_MODLIST_ENTRY_SIZE is sizeof(struct hvm_modlist_entry):
	// u64 paddr, u64 size, u64 cmdline_paddr, u64 reserved.
	HVM_MODLIST_ENTRY_SIZE = 32
)

// ParsePVH decodes the struct hvm_start_info at physical address startInfo
// and everything it points to: the command line, the module list with each
// module's command line, and (start info version 1 and later) the memory
// map. The RSDP address is recorded, not followed.
func ParsePVH(mem Memory, startInfo uint64) (*Info, error) {
	raw, err := readBytes(mem, startInfo, pvh.START_INFO_SIZE_V0)
	if err != nil {
		return nil, fmt.Errorf("bootinfo: pvh: cannot read the start info at %#x: %w", startInfo, err)
	}

	if version := le32(raw, pvh.OFF_VERSION); version >= 1 && le32(raw, pvh.OFF_MAGIC) == XEN_HVM_START_MAGIC_VALUE {
		if raw, err = readBytes(mem, startInfo, pvh.START_INFO_SIZE_V1); err != nil {
			return nil, fmt.Errorf("bootinfo: pvh: cannot read the version %d start info at %#x (%d bytes): %w",
				version, startInfo, pvh.START_INFO_SIZE_V1, err)
		}
	}

	si, err := pvh.ParseStartInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("bootinfo: start info at %#x: %w", startInfo, err)
	}

	info := &Info{Protocol: ProtocolPVH, RSDPAddr: si.RsdpPaddr}

	if si.CmdlinePaddr != 0 {
		if info.Cmdline, err = readString(mem, si.CmdlinePaddr, MAX_CMDLINE); err != nil {
			return nil, fmt.Errorf("bootinfo: pvh: command line at %#x: %w", si.CmdlinePaddr, err)
		}
	}

	if err := info.pvhModules(mem, si); err != nil {
		return nil, err
	}

	if si.Version == 0 {
		info.warnf("pvh: start info version 0 has no memory map")
		return info, nil
	}

	if si.MemmapEntries > MAX_MEMORY_ENTRIES {
		return nil, fmt.Errorf("bootinfo: pvh: start info at %#x claims %d memory map entries, at most %d are accepted",
			startInfo, si.MemmapEntries, MAX_MEMORY_ENTRIES)
	}

	if si.MemmapEntries == 0 {
		info.warnf("pvh: start info has an empty memory map")
		return info, nil
	}

	if si.MemmapPaddr == 0 {
		return nil, fmt.Errorf("bootinfo: pvh: start info at %#x has %d memory map entries at address 0", startInfo, si.MemmapEntries)
	}

	n := int(si.MemmapEntries)

	b, err := readBytes(mem, si.MemmapPaddr, n*pvh.MEMMAP_ENTRY_SIZE)
	if err != nil {
		return nil, fmt.Errorf("bootinfo: pvh: cannot read the %d-entry memory map at %#x: %w", n, si.MemmapPaddr, err)
	}

	entries, err := pvh.ParseMemmap(b, n)
	if err != nil {
		return nil, fmt.Errorf("bootinfo: memory map at %#x: %w", si.MemmapPaddr, err)
	}

	regions := make([]Region, len(entries))
	for k, e := range entries {
		regions[k] = Region{Base: e.Addr, Size: e.Size, Type: RegionType(e.Type)}
	}

	info.setMemory(regions)

	return info, nil
}

// pvhModules reads the hvm_modlist_entry array.
func (info *Info) pvhModules(mem Memory, si pvh.StartInfo) error {
	if si.NrModules == 0 {
		return nil
	}

	if si.NrModules > MAX_MODULES {
		return fmt.Errorf("bootinfo: pvh: start info claims %d modules, at most %d are accepted", si.NrModules, MAX_MODULES)
	}

	if si.ModlistPaddr == 0 {
		return fmt.Errorf("bootinfo: pvh: start info has %d modules but the module list address is 0", si.NrModules)
	}

	b, err := readBytes(mem, si.ModlistPaddr, int(si.NrModules)*HVM_MODLIST_ENTRY_SIZE)
	if err != nil {
		return fmt.Errorf("bootinfo: pvh: cannot read the %d-entry module list at %#x: %w", si.NrModules, si.ModlistPaddr, err)
	}

	for k := 0; k < int(si.NrModules); k++ {
		e := b[k*HVM_MODLIST_ENTRY_SIZE:]
		m := Module{Base: le64(e, 0), Size: le64(e, 8)}

		if m.Size != 0 && m.Base+m.Size < m.Base {
			return fmt.Errorf("bootinfo: pvh: module %d at %#x of size %#x wraps past 2^64", k, m.Base, m.Size)
		}

		if cmdline := le64(e, 16); cmdline != 0 {
			if m.Cmdline, err = readString(mem, cmdline, MAX_CMDLINE); err != nil {
				return fmt.Errorf("bootinfo: pvh: module %d command line at %#x: %w", k, cmdline, err)
			}
		}

		info.Modules = append(info.Modules, m)
	}

	return nil
}

// Package msr is Keel's MSR policy: which model-specific registers a guest
// may read and write, and what each access does. It is an allow-list:
// every MSR not in the table raises #GP(0), on reads and writes alike.
//
// Each table row has an action: passthrough (the backend switches the MSR
// with the rest of the guest state and does not intercept it), emulate (a
// per-vCPU value, writes checked against a mask), fixed (reads a constant,
// writes ignored), read-only (reads a constant, writes #GP), tsc, and the
// two MSRs that live in the vCPU's system registers, EFER and
// IA32_APIC_BASE, which the core reads and writes through Sregs after
// CheckEFER / CheckAPICBase. Lookup, Read and Write are binary searches over
// a sorted table and allocate nothing.
//
// The table (DefaultTable, rendered by Render; a test keeps this copy in
// step):
//
//	MSR                    Name                                   Action       Value / mask          Why
//	0x10                   IA32_TIME_STAMP_COUNTER                tsc                                guest TSC; writes ignored
//	0x1b                   IA32_APIC_BASE                         apic-base                          in Sregs; BSP read-only, x2APIC only if exposed
//	0x3a                   IA32_FEATURE_CONTROL                   read-only    0x1                   locked, VMX off
//	0x8b                   IA32_BIOS_SIGN_ID                      fixed        0x0                   microcode revision 0
//	0xce                   MSR_PLATFORM_INFO                      read-only    0x0                   no ratios reported
//	0xfe                   IA32_MTRRCAP                           read-only    0x508                 8 variable, fixed, WC
//	0x174-0x176            IA32_SYSENTER_CS..EIP                  passthrough  0x0                   guest state
//	0x179                  IA32_MCG_CAP                           read-only    0x0                   no machine-check banks
//	0x17a                  IA32_MCG_STATUS                        fixed        0x0
//	0x1a0                  IA32_MISC_ENABLE                       fixed        0x1801                fast strings; no BTS/PEBS
//	0x1d9                  IA32_DEBUGCTL                          fixed        0x0                   no LBR/BTF
//	0x200-0x20f            IA32_MTRR_PHYSBASE0..PHYSMASK7         emulate      0x0/0xffffffffff8ff   stored; NPT/EPT ignore them
//	0x250                  IA32_MTRR_FIX64K_00000                 emulate      0x0/all               stored
//	0x258-0x259            IA32_MTRR_FIX16K_80000..A0000          emulate      0x0/all               stored
//	0x268-0x26f            IA32_MTRR_FIX4K_C0000..F8000           emulate      0x0/all               stored
//	0x277                  IA32_PAT                               passthrough  0x7040600070406       guest state (VMCB g_pat, VMCS guest PAT)
//	0x2ff                  IA32_MTRR_DEF_TYPE                     emulate      0x806/0xcff           stored; starts enabled, write-back
//	0x400-0x47f            IA32_MC0_CTL..MC31_MISC                fixed        0x0                   no MCA banks
//	0xc0000080             IA32_EFER                              efer                               in Sregs; bits per CPUID, LME fixed while paging
//	0xc0000081-0xc0000084  IA32_STAR, LSTAR, CSTAR, FMASK         passthrough  0x0                   guest state
//	0xc0000100-0xc0000102  IA32_FS_BASE, GS_BASE, KERNEL_GS_BASE  passthrough  0x0                   guest state
//	0xc0000103             IA32_TSC_AUX                           emulate      0x0/0xffffffff        stored; RDTSCP/RDPID hidden
//	0xc0010010             MSR_AMD64_SYSCFG                       fixed        0x0                   no SME, no MTRR extensions
//	0xc0010015             MSR_K7_HWCR                            fixed        0x0
//	0xc001001f             MSR_AMD64_NB_CFG                       fixed        0x0
//	0xc0010114             MSR_VM_CR                              fixed        0x18                  SVM disabled and locked unless nested
//	0xc0011029             MSR_AMD64_DE_CFG                       fixed        0x2                   LFENCE serializing
//	everything else                                               #GP
//
// MTRRs are stored but have no effect: with nested paging the hardware
// ignores guest MTRRs (AMD) or the EPT memory type overrides them (Intel).
// With Config.Nested, VM_CR reads 0 (SVM enabled, unlocked); no backend runs
// nested guests yet.
//
// The package is pure Go and host-testable: it runs under plain `go test`.
package msr

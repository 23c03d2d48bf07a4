// Package guest is Keel's reference Linux guest and the default boot
// bundle, built on the host (docs/guests.md):
//
//   - guest/linux fetches Debian's stock kernel, pinned in
//     guest/linux/VERSION, with apt-get and caches it outside the
//     repository;
//   - guest/init is the whole userland: a tiny static Go init that prints
//     "keel-guest: userspace up", the online CPU count and the clocks on
//     the console, then powers off (or reboots);
//   - guest/initramfs packs that init into a newc cpio initramfs;
//   - guest/bundle/keel.conf declares the VM "demo" that `make bundle`
//     (mk/guest.mk) puts into build/keel.bundle.
//
// The package itself has no code. Its test boots the guest directly under
// QEMU (TCG, no KVM, no Keel) with the kernel command line, memory and vCPU
// count of the bundle's demo VM: the reference that Keel's own runs of the
// guest are compared with. It is skipped when qemu-system-x86_64 is missing
// or the kernel cannot be fetched, unless KEEL_REQUIRE_GUEST=1 is set, and
// in -short mode. Host-only.
package guest

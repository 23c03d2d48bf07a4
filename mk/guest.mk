# The reference Linux guest and the default boot bundle (docs/guests.md).
# Included by the Makefile; GNU make.
#
#   make bundle           build/keel.bundle: the demo VM of guest/bundle/keel.conf
#                         with the two files below (what make iso/pxe pick up)
#   make guest-kernel     build/guest/vmlinuz: Debian's kernel, pinned in
#                         guest/linux/VERSION, fetched into the cache
#                         (${KEEL_CACHE:-~/.cache/keel}/guest-kernel/) or found there
#   make guest-initramfs  build/guest/initramfs.cpio: the Go init of guest/init
#   make guest-test       boot the guest directly under QEMU TCG (no Keel) and
#                         check its console; fails rather than skips
#
# The targets always run their commands: the kernel cache, the go command's
# build cache and the small sizes make that cheap, and the tools know better
# than make what changed.

GO ?= go
GUEST_DIR := build/guest
GUEST_KERNEL := $(GUEST_DIR)/vmlinuz
GUEST_INITRAMFS := $(GUEST_DIR)/initramfs.cpio
GUEST_CONF := guest/bundle/keel.conf
GUEST_BUNDLE ?= build/keel.bundle

.PHONY: bundle guest-kernel guest-initramfs guest-test

# Prints the cached kernel's path and copies it next to the initramfs.
guest-kernel:
	$(GO) run ./cmd/keel-guest kernel -o $(GUEST_KERNEL)

guest-initramfs:
	$(GO) run ./cmd/keel-guest initramfs -go "$(GO)" -o $(GUEST_INITRAMFS)

bundle: guest-kernel guest-initramfs
	$(GO) run ./cmd/keel-bundle -o $(GUEST_BUNDLE) -C $(GUEST_DIR) $(GUEST_CONF)

guest-test: deps
	KEEL_REQUIRE_GUEST=1 $(GO) test ./guest -run '^TestReferenceGuestQEMU$$' -v -count=1 -timeout 30m

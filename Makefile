# Keel build (GNU make).
#
#   make run         boot Keel under QEMU, console on this terminal (^A x quits)
#   make test        everything CI runs
#   make toolchain   build (or find in the cache) the GOOS=tamago Go toolchain
#   make kernel      build build/keel.elf
#   make iso         build build/keel.iso: GRUB hybrid image (BIOS, UEFI, USB stick)
#   make pxe         build build/pxe/: TFTP root for PXE (iPXE, GRUB BIOS and UEFI)
#   make bench       exit round-trip costs (SVM under QEMU -icount, VMX under Bochs) and Linux boot times (minutes)
#   make bench-boot  measure boot times over every media path (minutes)
#   make guests      reassemble the selftest guests (kernel/selftest/guests)
#   make clean       remove build/
#
# GO is the host go command. TAMAGO, if set, is the go command of a GOOS=tamago
# toolchain to use instead of ours (e.g. the official TamaGo compiler's bin/go).
# KEEL_CMDLINE is the kernel command line of the boot media, written verbatim
# into grub.cfg and boot.ipxe: make iso KEEL_CMDLINE='keel.run="cpus; mem"'.
# KEEL_BUNDLE is the boot bundle added to the media as a module if it exists.

GO ?= go
TAMAGO ?=

# Debian packages that run, test and the boot media need; scripts/deps.sh
# installs the missing. GRUB for BIOS and UEFI, grub-mkrescue's helpers
# (xorriso, mtools), OVMF (UEFI firmware for QEMU), ipxe-qemu (the NIC boot
# ROMs QEMU loads for PXE), Bochs with its BIOS and VGA BIOS (VMX tests).
DEPS := qemu-system-x86 git grub-pc-bin grub-efi-amd64-bin grub-common xorriso \
	mtools ovmf ipxe-qemu bochs bochsbios vgabios cpio binutils

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
KERNEL := build/keel.elf
ISO := build/keel.iso
PXE := build/pxe
KEEL_CMDLINE ?=
KEEL_BUNDLE ?= build/keel.bundle
export KEEL_CMDLINE
QEMU := qemu-system-x86_64
QEMU_ARGS := -machine q35 -cpu max -m 2G -smp 2 -nographic -no-reboot -nic none \
	-device isa-debug-exit,iobase=0xf4,iosize=0x04

# TAMAGO_GO is the go command that builds the kernel. Ours is looked up (and
# built on first use) only when a recipe needs it, and only once per make run.
ifeq ($(strip $(TAMAGO)),)
TOOLCHAIN_DEP := toolchain
TAMAGO_GO = $(eval TAMAGO_GO := $(shell $(GO) run ./toolchain/cmd/keel-toolchain -go "$(GO)" -print 2>/dev/null))$(TAMAGO_GO)
else
TOOLCHAIN_DEP :=
TAMAGO_GO = $(TAMAGO)
endif

# The kernel's build environment: GOOS=tamago resolved through the library's
# goos package, no cgo, baseline amd64 (cpuinit enables neither XSAVE nor AVX).
TAMAGO_ENV := env -u GOROOT GOOS=tamago GOARCH=amd64 \
	GOOSPKG=github.com/usbarmory/tamago CGO_ENABLED=0 GOAMD64=v1 GOTOOLCHAIN=local
# Text at RamStart+64KiB (RAM_START in kernel/pc/cpuinit.go), 4KiB pages.
KERNEL_LDFLAGS := -T 0x04010000 -R 0x1000 -X main.Version=$(VERSION)
# The PC board (kernel/pc) supplies its own cpuinit and RamStart in place of
# the library's amd64 defaults.
KERNEL_TAGS := linkcpuinit,linkramstart

.DEFAULT_GOAL := kernel

include mk/guest.mk
.PHONY: deps toolchain kernel iso pxe run test bench bench-boot guests clean

deps:
	@./scripts/deps.sh $(DEPS)

toolchain:
	$(GO) run ./toolchain/cmd/keel-toolchain -go "$(GO)"

# Always runs go build: the go command's cache makes an unchanged kernel
# cheap, and it knows better than make which sources matter.
kernel: $(TOOLCHAIN_DEP)
	@test -n "$(TAMAGO_GO)" || { echo "make: no GOOS=tamago go command: the toolchain step failed (see above); retry with make toolchain" >&2; exit 1; }
	@mkdir -p $(dir $(KERNEL))
	$(TAMAGO_ENV) $(TAMAGO_GO) build -trimpath -tags $(KERNEL_TAGS) -ldflags "$(KERNEL_LDFLAGS)" -o $(KERNEL) ./kernel

# The media builder checks for its tools and says which package is missing;
# deps installs them first. KEEL_CMDLINE comes through the environment so
# that its quotes reach the builder untouched.
iso: deps kernel bundle
	@echo "iso: $(ISO) from $(KERNEL), kernel command line: '$$KEEL_CMDLINE'"
	$(GO) run ./boot/cmd/keel-media iso -kernel $(KERNEL) -bundle $(KEEL_BUNDLE) -cmdline "$$KEEL_CMDLINE" -o $(ISO)

pxe: deps kernel bundle
	@echo "pxe: $(PXE)/ from $(KERNEL), kernel command line: '$$KEEL_CMDLINE'"
	$(GO) run ./boot/cmd/keel-media pxe -kernel $(KERNEL) -bundle $(KEEL_BUNDLE) -cmdline "$$KEEL_CMDLINE" -o $(PXE)

run: deps kernel bundle
	$(QEMU) $(QEMU_ARGS) -kernel $(KERNEL) -initrd $(GUEST_BUNDLE)

# KEEL_GOROOT and KEEL_KERNEL enable the tests that check the built toolchain
# and kernel (toolchain/, toolchain/elfcheck, qemu-tests/).
test: deps kernel bundle
	@goroot="$$(env -u GOROOT GOTOOLCHAIN=local $(TAMAGO_GO) env GOROOT)" && \
	echo "KEEL_GOROOT=$$goroot KEEL_KERNEL=$(abspath $(KERNEL)) KEEL_GUEST_DIR=$(abspath $(GUEST_DIR)) $(GO) test -timeout 60m ./..." && \
	KEEL_GOROOT="$$goroot" KEEL_KERNEL="$(abspath $(KERNEL))" KEEL_GUEST_DIR="$(abspath $(GUEST_DIR))" $(GO) test -timeout 60m ./...

# Exit round-trip costs measured by a guest under Keel and directly on
# QEMU, with -icount (exact and repeatable), and allocations per exit.
bench: deps kernel bundle
	KEEL_BENCH=1 KEEL_KERNEL="$(abspath $(KERNEL))" KEEL_GUEST_DIR="$(abspath $(GUEST_DIR))" $(GO) test ./qemu-tests -run '^(TestExitCosts|TestExitCostsBochs|TestLinuxBootTimes)$$' -v -count=1 -timeout 60m

# Boot times over every media path (5 runs each, medians); not part of test.
bench-boot: deps kernel
	KEEL_BENCH_BOOT=1 KEEL_KERNEL="$(abspath $(KERNEL))" $(GO) test ./qemu-tests -run '^TestBootTimes$$' -v -count=1 -timeout 90m

# The selftest guests are GNU as sources; their bytes are committed in
# kernel/selftest/guests/images.go (a host test checks them against the
# sources). Regenerate after editing a guest.
guests:
	cd kernel/selftest/guests && $(GO) run gen.go

clean:
	rm -rf build

# SPDX-License-Identifier: GPL-2.0
# DVM: a distributed hypervisor inside KVM. See README.md.
# Build outputs and caches go to $(DVM_CACHE) (default ~/.cache/dvm).

T := tools

.PHONY: all setup build kernel kernel-debug qemu host-tools selftests guest \
	check check-long lint demo bench deb-pkg clean help

all: build

help:
	@echo "make check   build everything, run every test (last line: N passed, N failed)"
	@echo "make check-long  the long fuzz and teardown runs (after make check)"
	@echo "make demo    boot a 2-host emulated cluster and show KVM, TCP and RDMA"
	@echo "make bench   benchmarks: BENCH/RATIO lines, JSON under \$$DVM_CACHE/bench"
	@echo "make lint    checkpatch on our kernel files and patches"
	@echo "make build   kernels (release, debug), QEMU, initramfs, selftests, the guest"
	@echo "make deb-pkg Debian packages of the release kernel (bindeb-pkg)"

setup:
	@$(T)/setup-deps

kernel: setup
	@$(T)/build-kernel release

kernel-debug: setup
	@$(T)/build-kernel debug

qemu: setup
	@$(T)/build-qemu

host-tools: setup
	@$(T)/build-initramfs
	@$(T)/build-tools

selftests: setup
	@$(T)/build-selftests

guest: setup
	@$(T)/build-guest

build: kernel kernel-debug qemu host-tools selftests guest

check:
	@$(T)/check

check-long:
	@$(T)/check-long

lint: setup
	@$(T)/lint

demo:
	@$(T)/demo

bench:
	@$(T)/bench

deb-pkg: setup
	@$(T)/build-kernel release bindeb-pkg

clean:
	@. $(T)/lib.sh && rm -rf "$$DVM_CACHE"/linux/build-* "$$DVM_CACHE"/qemu/build \
		"$$DVM_CACHE"/selftests "$$DVM_CACHE"/runs "$$DVM_CACHE"/check

# SPDX-License-Identifier: GPL-2.0
# Common settings for DVM's tools. Sourced, never run.

DVM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DVM_CACHE=${DVM_CACHE:-${HOME:-/root}/.cache/dvm}
DVM_LOGS=$DVM_CACHE/logs
mkdir -p "$DVM_CACHE" "$DVM_LOGS"

# Pinned source packages: the series in linux/patches and qemu/patches were
# made against these Debian versions.
DVM_LINUX_PKG=linux-source-6.1
DVM_LINUX_VERSION=$(sed -n 's/^version=//p' "$DVM_TOP/linux/SOURCE")
DVM_QEMU_PKG=qemu
DVM_QEMU_VERSION=$(sed -n 's/^version=//p' "$DVM_TOP/qemu/SOURCE")

DVM_LINUX_ORIG=$DVM_CACHE/linux/orig
DVM_LINUX_TREE=$DVM_CACHE/linux/tree
DVM_QEMU_SRC=$DVM_CACHE/qemu/src
DVM_QEMU_BUILD=$DVM_CACHE/qemu/build
# Seconds an upstream kvm selftest may run in an emulated host before it
# counts as hung. 240 s was too short on 2026-12-02's slower machine:
# access_tracking_perf_test (which passes, and took under 240 s before)
# timed out while the other lane loaded the machine.
UPSTREAM_TIMEOUT=480

export CCACHE_DIR=${CCACHE_DIR:-$DVM_CACHE/ccache}
export QUILT_PATCHES

die() { echo "error: $*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

# Build directory of a kernel flavour (release or debug).
kbuild_dir() { echo "$DVM_CACHE/linux/build-$1"; }
kimage() { echo "$(kbuild_dir "$1")/arch/x86/boot/bzImage"; }

dvm_jobs() { nproc; }

# apply_series TREE PATCHES PC PKG MADE_FOR HAVE: bring TREE to the quilt
# series in PATCHES (fuzz 0), keeping quilt's state in TREE/PC. Re-applies
# only when the series or the source version changed.
apply_series() {
	local tree=$1 patches=$2 pc=$3 pkg=$4 made_for=$5 have=$6
	local stamp_file=$tree/$pc.dvm-series want out
	local -a quilt=(env QUILT_PATCHES="$patches" QUILT_PC="$pc" quilt --quiltrc=-)
	want=$( (echo "$have"; cat "$patches/series";
		 for p in $(sed -e 's/#.*//' "$patches/series"); do
			cat "$patches/$p"; done) | sha256sum | cut -c1-16)
	[ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] && return 0
	rm -f "$stamp_file"
	if [ -d "$tree/$pc" ]; then
		# -f: the series changed, so the patches in the tree no longer
		# match theirs; quilt's backups restore the files regardless.
		(cd "$tree" && "${quilt[@]}" pop -a -f -q >/dev/null 2>&1) || true
		# quilt keeps the patch directory of the first push in .pc and
		# prefers it to QUILT_PATCHES: another checkout's series would
		# be applied. Forget it; the push below records ours.
		rm -f "$tree/$pc/.quilt_patches" "$tree/$pc/.quilt_series"
	fi
	if [ -n "$(sed -e 's/#.*//' "$patches/series" | tr -d '[:space:]')" ]; then
		step "applying ${patches#"$DVM_TOP"/} (fuzz 0)"
		if ! out=$(cd "$tree" && "${quilt[@]}" push -a -q --fuzz=0 2>&1); then
			echo "$out" >&2
			die "${patches#"$DVM_TOP"/} does not apply: the series was made against $pkg $made_for, the source here is $pkg $have"
		fi
	fi
	echo "$want" >"$stamp_file"
}

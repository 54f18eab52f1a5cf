# Shared by the benchmarks (sourced, bash).

# copy_elf ROOT FILE DEST: FILE as ROOT/DEST and the shared libraries it
# needs (ldd) at their own paths under ROOT, for a chroot or image root
copy_elf() {
	local lib
	cp -L "$2" "$1$3"
	ldd "$2" | grep -oE '/[^ ]+' | while read -r lib; do
		mkdir -p "$1$(dirname "$lib")"
		cp -L "$lib" "$1$lib"
	done
}

# vm_bench_setup [FILE...]: for the VM benchmarks, after SRC (the source
# tree) and FORGE (the forge binary of a build) are set, before they source
# tests/kvm/lib-kvm.sh: the companions of FORGE's build exported
# (FORGE_TESTHELPER, FORGE_VMINIT, FORGE_VMM) and EXTRACT (vmboot-extract),
# each checked with FILE... (executables the benchmark needs too)
vm_bench_setup() {
	local build f
	build=$(dirname "$FORGE")/..
	export FORGE FORGE_SRC=$SRC
	export FORGE_TESTHELPER=${FORGE_TESTHELPER:-$build/tests/helper/forge-testhelper}
	export FORGE_VMINIT=${FORGE_VMINIT:-$build/runtime/init/forge-vminit}
	EXTRACT=${VMBOOT_EXTRACT:-$build/tests/vmimage/vmboot-extract}
	export FORGE_VMM=${FORGE_VMM:-$build/runtime/vmm/forge-vmm}
	for f in "$FORGE_VMM" "$FORGE_TESTHELPER" "$FORGE_VMINIT" "$EXTRACT" "$@"; do
		[ -x "$f" ] || { echo "missing $f: cmake --build $build --target forge forge-vmm forge-vminit forge-testhelper vmboot-extract" >&2; exit 1; }
	done
}

# vm_bench_disk SPEC NAME: the image NAME built from SPEC, exported as the
# disk $T/d.img, and what QEMU boots of it (vmboot-extract) in $T/boot
vm_bench_disk() {
	vm_disk "$1" "$2" "$T/d.img"
	mkdir "$T/boot"
	"$EXTRACT" "$T/d.img" "$T/boot" >/dev/null
}

# vm_bench_harness [FILE...]: $T/guest.sh in the harness (console in
# $T/h/serial.log) with the disk, its boot files and FILE...; its status
vm_bench_harness() {
	kvm_harness_run "$T/h" "$T/guest.sh" "$T/d.img" "$T/boot/kernel" "$T/boot/initrd" "$T/boot/cmdline" "$@"
}

# vm_bench_run [FILE...]: vm_bench_harness; unless it exits 0, the console
# from the harness's start on, and exit 1
vm_bench_run() {
	local st=0
	vm_bench_harness "$@" || st=$?
	[ "$st" -ne 0 ] || return 0
	sed -n '/^KVM-HARNESS-READY/,$p' "$T/h/serial.log"
	echo "the benchmark failed in the harness (status $st), see above"
	exit 1
}

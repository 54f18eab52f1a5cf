# Shared by the scripts that run inside the nested-KVM harness's outer guest
# (POSIX sh, busybox): kvm_harness_run puts it at /harness/lib.sh, a script
# sources it with `. /harness/lib.sh`.

# bad MESSAGE: a failed check (counted in nfail; checks_done reports them)
nfail=0
bad() {
	echo "FAIL: $*"
	nfail=$((nfail + 1))
}

# checks_done: the number of failed checks as the marker "failures" (for
# kvm_harness_marker); exits 1 if there were any
checks_done() {
	kvm-mark failures "$nfail"
	[ "$nfail" = 0 ] || exit 1
}

# until_ok STEPS CMD...: runs CMD until it succeeds, every 0.1 s, at most
# STEPS times more; fails if it never does
until_ok() {
	_n=$1
	shift
	while ! "$@"; do
		[ "$_n" -gt 0 ] || return 1
		sleep 0.1
		_n=$((_n - 1))
	done
}

# in_bind_root: the script again, in a chroot of a bind mount of / (virtiofsd
# pivots into the shared directory, which needs a root that is a mount point;
# the harness's root is the initramfs)
in_bind_root() {
	if [ -z "${IN_CHROOT:-}" ]; then
		mkdir -p /tmp/nr
		mount --rbind / /tmp/nr
		exec env IN_CHROOT=1 chroot /tmp/nr sh /harness/script
	fi
}

# passt_uplink PASST: FORGE_PASST set to a wrapper of PASST, and an uplink for
# it, a veth pair ($KVM_FILES/veth.ko) with a default route and nothing
# behind it: the outer guest has no network of its own, all traffic stays on
# its loopback. The outer guest runs from its initramfs, where passt's
# sandbox can neither pivot_root (the kernel never moves rootfs) nor, after a
# chroot, make a user namespace: passt runs in a mount namespace whose root
# is a bind of / moved over rootfs, as switch_root does. A host booted from a
# disk needs none of this.
passt_uplink() {
	mkdir -p /mnt/passt-root
	# shellcheck disable=SC2016 # (the wrapper's own $0 and $@)
	printf '#!/bin/sh\nexec unshare -m --propagation private sh -c '"'"'mount -o rbind / /mnt/passt-root && cd /mnt/passt-root && mount -o move . / && exec chroot . "$0" "$@"'"'"' %s "$@"\n' \
		"$1" >/tmp/passt-wrap
	chmod +x /tmp/passt-wrap
	export FORGE_PASST=/tmp/passt-wrap
	ip link set lo up
	insmod "$KVM_FILES/veth.ko" || return 1
	# (busybox's ip names the peer itself)
	ip link add fnet0 type veth || return 1
	for _l in $(ip -o link show | cut -d: -f2 | cut -d@ -f1); do ip link set "$_l" up; done
	ip addr add 198.51.100.1/24 dev fnet0 && ip route add default via 198.51.100.254 dev fnet0
}

# median DECIMALS: the median of the numbers on stdin, one a line (the mean
# of the middle two, with DECIMALS decimals, for an even count)
median() {
	sort -n | awk -v f="%.$1f\n" '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf f, (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# qemu_boot MACHINE MIB APPEND [QEMU_ARGS...]: execs QEMU/KVM as the
# benchmarks compare forge with: one vCPU, MIB of RAM, the console on stdout,
# the status through isa-debug-exit, booting what vmboot-extract took from
# the disk ($KVM_FILES/kernel, initrd, cmdline; APPEND added to the command
# line) with the disk $KVM_FILES/d.img as virtio-blk-pci (snapshot=on: the
# image stays unchanged, as forge keeps it); QEMU_DISK, QEMU_CMDLINE and
# QEMU_KERNEL name another disk, command line file and kernel. The words after the disk's are forge's
# own without --verbose (cli/cmd-run-vm.c)
qemu_boot() {
	_m=$1 _mem=$2 _app=$3
	shift 3
	exec "$KVM_QEMU" -L "$KVM_QEMU_FW" -enable-kvm -cpu host -M "$_m" -m "$_mem" -smp 1 "$@" \
		-nodefaults -nographic -no-reboot -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "${QEMU_KERNEL:-$KVM_FILES/kernel}" -initrd "$KVM_FILES/initrd" \
		-append "$(cat "${QEMU_CMDLINE:-$KVM_FILES/cmdline}") reboot=t 8250.nr_uarts=1 quiet loglevel=1 $_app" \
		-drive "file=${QEMU_DISK:-$KVM_FILES/d.img},if=none,id=d0,format=raw,snapshot=on" -device virtio-blk-pci,drive=d0
}

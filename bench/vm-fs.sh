#!/bin/bash
# Benchmark: reading a 200 MB tree (2,000 files of 100 KiB in 20 directories)
# from a shared host directory inside the guest: `forge run --as vm -v
# TREE:/mnt/t:ro` against QEMU/KVM `-M pc` with vhost-user-fs-pci, the same
# virtiofsd (cache=auto, the same options forge gives it), kernel,
# initramfs, command line and disk; alternately, RUNS times each. The time is
# taken inside the guest (kvm-clock uptime around `cat` of every file), so
# the boot is not in it; each run boots afresh (guest page cache cold, the
# host's warm for both).
#
#   bench/vm-fs.sh [FORGE] [RUNS]
#
# Runs inside the nested-KVM harness (tests/kvm/harness.sh), so absolute
# figures are slow and only the ratio means something. Needs root,
# qemu-system-x86, qemu-system-common (virtiofsd), busybox-static, the tools
# of `forge export --format disk`, and these targets of FORGE's build: forge
# forge-vmm forge-vminit forge-testhelper vmboot-extract.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=$(realpath "${1:-$SRC/build/cli/forge}")
RUNS=${2:-3}
BUILD=$(dirname "$FORGE")/..
export FORGE FORGE_SRC=$SRC
export FORGE_TESTHELPER=${FORGE_TESTHELPER:-$BUILD/tests/helper/forge-testhelper}
export FORGE_VMINIT=${FORGE_VMINIT:-$BUILD/runtime/init/forge-vminit}
EXTRACT=${VMBOOT_EXTRACT:-$BUILD/tests/vmimage/vmboot-extract}
export FORGE_VMM=${FORGE_VMM:-$BUILD/runtime/vmm/forge-vmm}
for f in "$FORGE_VMM" "$FORGE_TESTHELPER" "$FORGE_VMINIT" "$EXTRACT" /usr/lib/qemu/virtiofsd; do
	[ -x "$f" ] || { echo "missing $f: cmake --build $BUILD --target forge forge-vmm forge-vminit forge-testhelper vmboot-extract; qemu-system-common" >&2; exit 1; }
done
source "$SRC/tests/integration/lib.sh"
source "$SRC/tests/kvm/harness.sh"
kvm_harness_need
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + RUNS * 2 * 120))}
kdeb=$(kernel_deb cloud)

C=$T/ctx
mkdir -p "$C/links" "$C/mnt/t"
ln "$kdeb" "$C/kernel.deb" 2>/dev/null || cp "$kdeb" "$C/kernel.deb"
cp "$SRC"/specs/examples/debs/busybox-static_*.deb "$C/bb.deb"
for a in sh cat wc cut; do ln -s busybox "$C/links/$a"; done
touch "$C/mnt/t/.keep"
cat >"$C/spec.yaml" <<'EOF'
forge: 1
name: vmfsbench
source_date_epoch: 1700000000
layers:
  - deb: bb.deb
  - files:
      - {src: links/, dest: /bin/}
      - {src: mnt/, dest: /mnt/}
config:
  cmd: [/bin/sh]
  env: {PATH: /bin}
vm:
  kernel: {deb: kernel.deb}
  memory: 512M
  cpus: 1
EOF
f build -q "$C/spec.yaml" >/dev/null
f export vmfsbench --format disk -o "$T/d.img" >/dev/null
mkdir "$T/boot"
"$EXTRACT" "$T/d.img" "$T/boot" >/dev/null

WORK='t0=$(cut -d" " -f1 /proc/uptime); n=$(cat /mnt/t/*/* | wc -c); t1=$(cut -d" " -f1 /proc/uptime); echo "read-bytes=$n t0=$t0 t1=$t1"'
cat >"$T/guest.sh" <<EOF
RUNS=$RUNS
ARGS=$(hexargs /bin/sh -c "$WORK")
FS=$(hexargs forge0 /mnt/t ro)
EOF
printf "WORK='%s'\n" "$WORK" >>"$T/guest.sh" # (no single quote in it)
cat >>"$T/guest.sh" <<'GUEST'
# virtiofsd pivots into the shared directory: a root that is a mount point
if [ -z "$IN_CHROOT" ]; then
	mkdir -p /tmp/nr
	mount --rbind / /tmp/nr
	exec env IN_CHROOT=1 chroot /tmp/nr sh /harness/script
fi
B=$KVM_FILES
nfail=0
# the tree: 20 directories of 100 files of 100 KiB (not all zeros)
for d in $(seq -w 1 20); do
	mkdir -p /tmp/tree/$d
	for i in $(seq -w 1 100); do
		head -c 102400 /dev/urandom >/tmp/tree/$d/$i
	done
done
echo "tree: $(du -sk /tmp/tree | cut -f1) KiB"
qemu_fs() {
	rm -f /tmp/vfs.sock
	/usr/lib/qemu/virtiofsd --socket-path=/tmp/vfs.sock -o source=/tmp/tree -o cache=auto -o log_level=err &
	vpid=$!
	while [ ! -S /tmp/vfs.sock ]; do sleep 0.05; done
	$KVM_QEMU -L $KVM_QEMU_FW -enable-kvm -cpu host -M pc -m 512 -smp 1 -global kvm-apic.vapic=false \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev socket,id=c0,path=/tmp/vfs.sock -device vhost-user-fs-pci,chardev=c0,tag=forge0 \
		-nodefaults -nographic -no-reboot -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel $B/kernel -initrd $B/initrd \
		-append "$(cat $B/cmdline) reboot=t quiet loglevel=1 forge.args=$ARGS forge.fs=$FS" \
		-drive file=$B/d.img,if=none,id=d0,format=raw,snapshot=on -device virtio-blk-pci,drive=d0
	st=$?
	wait $vpid 2>/dev/null
	return $st
}
for i in $(seq 1 $RUNS); do
	for n in forge qemu; do
		[ $((i % 2)) = 0 ] && n=$([ $n = forge ] && echo qemu || echo forge)
		st=0
		if [ $n = forge ]; then
			$FORGE --store /tmp/store run --as vm -v /tmp/tree:/mnt/t:ro $B/d.img -- /bin/sh -c "$WORK" \
				>/tmp/out.$n 2>&1 </dev/null || st=$?
		else
			qemu_fs >/tmp/out.$n 2>&1 </dev/null || st=$?
		fi
		# (QEMU's console starts with the firmware's escape sequences)
		line=$(tr -d '\r' </tmp/out.$n | grep -o 'read-bytes=.*' || true)
		bytes=$(echo "$line" | sed -n 's/^read-bytes=\([0-9]*\) .*/\1/p')
		secs=$(echo "$line" | awk '{ split($2, a, "="); split($3, b, "="); printf "%.3f", b[2] - a[2] }')
		if [ "$bytes" != 204800000 ]; then
			echo "FAIL: $n run $i: exit $st, read ${bytes:-nothing}"
			tail -n 20 /tmp/out.$n
			nfail=$((nfail + 1))
			continue
		fi
		echo "run $i $n $secs"
		echo "$secs" >>/tmp/times.$n
	done
done
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for n in forge qemu; do
	[ -s /tmp/times.$n ] && kvm-mark median-$n "$(median </tmp/times.$n)"
done
kvm-mark failures $nfail
[ $nfail = 0 ]
GUEST

st=0
kvm_harness_run "$T/h" "$T/guest.sh" "$T/d.img" "$T/boot/kernel" "$T/boot/initrd" "$T/boot/cmdline" || st=$?
if [ "$st" -ne 0 ]; then
	sed -n '/^KVM-HARNESS-READY/,$p' "$T/h/serial.log"
	echo "the benchmark failed in the harness (status $st), see above"
	exit 1
fi
grep -E '^(tree|run) ' "$T/h/serial.log"
fm=$(kvm_harness_marker "$T/h" median-forge) qm=$(kvm_harness_marker "$T/h" median-qemu)
echo
printf 'reading 200 MB from a shared directory in the guest, median of %d runs each\n' "$RUNS"
printf '(nested KVM under TCG: compare ratios only)\n'
printf '  forge run --as vm -v (virtiofsd):   %7.3f s\n' "$fm"
printf '  qemu -M pc vhost-user-fs-pci (same): %7.3f s   forge/qemu = %.2f\n' "$qm" "$(echo "$fm / $qm" | bc -l)"

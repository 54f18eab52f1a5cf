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
source "$SRC/bench/lib.sh"
vm_bench_setup /usr/lib/qemu/virtiofsd # (qemu-system-common)
source "$SRC/tests/kvm/lib-kvm.sh"
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + RUNS * 2 * 120))}
kdeb=$(kernel_deb cloud)

C=$T/ctx
vm_context "$C" sh cat wc cut
mkdir -p "$C/mnt/t"
touch "$C/mnt/t/.keep"
vm_spec vmfsbench "memory: 512M" "cpus: 1" >"$C/spec.yaml" <<'EOF'
  - files:
      - {src: links/, dest: /bin/}
      - {src: mnt/, dest: /mnt/}
config:
  cmd: [/bin/sh]
  env: {PATH: /bin}
EOF
vm_bench_disk "$C/spec.yaml" vmfsbench

WORK='t0=$(cut -d" " -f1 /proc/uptime); n=$(cat /mnt/t/*/* | wc -c); t1=$(cut -d" " -f1 /proc/uptime); echo "read-bytes=$n t0=$t0 t1=$t1"'
cat >"$T/guest.sh" <<EOF
RUNS=$RUNS
ARGS=$(hexargs /bin/sh -c "$WORK")
FS=$(hexargs forge0 /mnt/t ro)
EOF
printf "WORK='%s'\n" "$WORK" >>"$T/guest.sh" # (no single quote in it)
cat >>"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
in_bind_root # (for virtiofsd)
B=$KVM_FILES
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
	(qemu_boot pc 512 "forge.args=$ARGS forge.fs=$FS" -global kvm-apic.vapic=false \
		-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
		-chardev socket,id=c0,path=/tmp/vfs.sock -device vhost-user-fs-pci,chardev=c0,tag=forge0)
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
for n in forge qemu; do
	[ -s /tmp/times.$n ] && kvm-mark median-$n "$(median 3 </tmp/times.$n)"
done
checks_done
GUEST

vm_bench_run
grep -E '^(tree|run) ' "$T/h/serial.log"
fm=$(kvm_harness_marker "$T/h" median-forge) qm=$(kvm_harness_marker "$T/h" median-qemu)
echo
printf 'reading 200 MB from a shared directory in the guest, median of %d runs each\n' "$RUNS"
printf '(nested KVM under TCG: compare ratios only)\n'
printf '  forge run --as vm -v (virtiofsd):   %7.3f s\n' "$fm"
printf '  qemu -M pc vhost-user-fs-pci (same): %7.3f s   forge/qemu = %.2f\n' "$qm" "$(echo "$fm / $qm" | bc -l)"

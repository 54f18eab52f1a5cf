#!/bin/bash
# Benchmark: `forge run --as vm DISK -- /bin/th true`, boot to workload exit,
# against QEMU/KVM with the same kernel, initramfs, command line and disk
# (`-M microvm,pcie=on,rtc=on` and `-M pc`, the disk as virtio-blk-pci with
# snapshot=on, as forge keeps the image unchanged too), run alternately, RUNS
# times each; and each launcher's memory overhead: peak RSS (VmHWM) minus the
# guest RAM it touched (the resident part of its largest mapping), sampled
# while the guest sleeps.
#
#   bench/vm-boot.sh [FORGE] [RUNS]
#
# Runs inside the nested-KVM harness (tests/kvm/harness.sh: an outer Linux
# guest under QEMU TCG offering /dev/kvm), so absolute times are slow and
# only the ratios mean something. Needs root, qemu-system-x86, busybox-static,
# the tools of `forge export --format disk`, and these targets of FORGE's
# build: forge forge-vmm forge-vminit forge-testhelper vmboot-extract.
#
# QEMU settings found by trying in the harness: microvm needs pcie=on (the
# Debian kernel cannot take virtio-mmio devices from its command line) and
# rtc=on (without an RTC the kernel's rtc_cmos probe spins 4.5 s); pc runs
# with kvm-apic.vapic=false (with the kvmvapic option ROM the guest init's
# ioperm()-granted `out` to 0xf4 faults under nested KVM on TCG, so no status).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=$(realpath "${1:-$SRC/build/cli/forge}")
RUNS=${2:-5}
source "$SRC/bench/lib.sh"
vm_bench_setup
source "$SRC/tests/kvm/lib-kvm.sh"
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + RUNS * 3 * 60))}
kdeb=$(kernel_deb cloud)

# the image: busybox and the test helper, 384 MiB, one vCPU
C=$T/ctx
vm_context "$C" sh sleep
vm_spec vmboot "memory: 384M" "cpus: 1" >"$C/spec.yaml" <<'EOF'
  - files:
      - {src: th, dest: /bin/th, mode: "0755"}
      - {src: links/, dest: /bin/}
config:
  cmd: [/bin/th, "true"]
EOF
vm_bench_disk "$C/spec.yaml" vmboot

cat >"$T/guest.sh" <<EOF
RUNS=$RUNS
TRUE_ARGS=$(hexargs /bin/th true)
SLEEP_ARGS=$(hexargs /bin/sleep 4)
EOF
cat >>"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
B=$KVM_FILES
now() { cut -d' ' -f1 /proc/uptime; }
# QEMU gets the command line forge builds: the disk's (console=ttyS0 ...),
# what forge adds without --verbose, and the arguments
launch() { # launch NAME ARGS_HEX ARGV...: one of the three; execs, so call it in a subshell
	case $1 in
	forge) shift 2; exec $FORGE --store /tmp/store run --as vm $B/d.img -- "$@" ;;
	microvm) qemu_boot microvm,pcie=on,rtc=on 384 "forge.args=$2" ;;
	pc) qemu_boot pc 384 "forge.args=$2" -global kvm-apic.vapic=false ;;
	esac
}
ok_status() { # the launcher's exit status for a workload status 0
	case $1 in forge) echo 0 ;; *) echo 1 ;; esac # QEMU: (0 << 1) | 1
}
names="forge microvm pc"
for i in $(seq 1 $RUNS); do
	# rotate the order each round
	order=$(echo $names | awk -v r=$((i % 3)) '{ for (k = 0; k < 3; k++) printf "%s ", $(((k + r) % 3) + 1) }')
	for n in $order; do
		t0=$(now)
		st=0
		(launch $n $TRUE_ARGS /bin/th true) >/tmp/out.$n 2>&1 </dev/null || st=$?
		t1=$(now)
		s=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }')
		if [ "$st" != "$(ok_status $n)" ]; then
			echo "FAIL: $n run $i: exit $st"
			tail -n 20 /tmp/out.$n
			nfail=$((nfail + 1))
		fi
		echo "run $i $n $s"
		echo $s >>/tmp/times.$n
	done
done
for n in $names; do
	[ -s /tmp/times.$n ] && kvm-mark median-$n "$(median 2 </tmp/times.$n)"
done

# memory: VmHWM and the resident size of the largest mapping (guest RAM)
for n in $names; do
	(launch $n $SLEEP_ARGS /bin/sleep 4) >/tmp/out.$n 2>&1 </dev/null &
	pid=$!
	hwm=0 guest=0 size=0
	while [ -e /proc/$pid/status ]; do
		h=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status 2>/dev/null)
		g=$(awk '/^Size:/ { s = $2 } /^Rss:/ { if (s > max) { max = s; r = $2 } } END { print max + 0, r + 0 }' \
			/proc/$pid/smaps 2>/dev/null)
		# VmHWM only grows; the guest RAM sample is taken from the largest
		# mapping seen (at exit the launcher unmaps it before its process ends)
		[ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
		if [ -n "$g" ] && [ "${g% *}" -ge "$size" ] && [ "${g#* }" -ge "$guest" ]; then
			size=${g% *}
			guest=${g#* }
		fi
		sleep 0.3
	done
	wait $pid || true
	kvm-mark mem-$n "hwm=$hwm guest_rss=$guest guest_map=$size overhead=$((hwm - guest))"
done
checks_done
GUEST

vm_bench_run
grep -E '^run ' "$T/h/serial.log"
m() { kvm_harness_marker "$T/h" "$1"; }
fm=$(m median-forge) mm=$(m median-microvm) pm=$(m median-pc)
echo
printf 'boot to workload exit, median of %d runs each (nested KVM under TCG: compare ratios only)\n' "$RUNS"
printf '  forge run --as vm:          %6.2f s\n' "$fm"
printf '  qemu -M microvm (pcie,rtc): %6.2f s   forge/microvm = %.2f\n' "$mm" "$(echo "$fm / $mm" | bc -l)"
printf '  qemu -M pc:                 %6.2f s   forge/pc      = %.2f\n' "$pm" "$(echo "$fm / $pm" | bc -l)"
echo "memory, KiB (peak RSS, resident guest RAM, overhead = the difference):"
for n in forge microvm pc; do
	printf '  %-8s %s\n' "$n" "$(m mem-$n)"
done

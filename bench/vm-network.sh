#!/bin/bash
# Benchmark: a VM's `--network user` TCP throughput to and from the host's
# loopback: iperf3 in the guest against an iperf3 server on the host's
# 127.0.0.1 through 10.0.2.2, SECONDS guest -> host (tx), then SECONDS
# host -> guest (-R, rx), `forge run --as vm --network user` (virtio-net in
# forge-vmm, passt) against QEMU/KVM `-M pc` with `-netdev user` +
# virtio-net-pci (QEMU's libslirp) and the same kernel, initramfs, command
# line and disk, ROUNDS alternating rounds.
#
#   bench/vm-network.sh [FORGE] [ROUNDS] [SECONDS]
#
# MTUS="65520 1500" adds forge runs with forge-vmm's NIC reporting those
# MTUs (FORGE_VMM_NET_MTU) beside its default.
#
# Runs inside the nested-KVM harness (tests/kvm/harness.sh), whose outer
# guest is "the host" here: only ratios mean something. The outer guest gets
# a veth uplink with nothing behind it (passt needs an interface with a
# default route). Needs what bench/vm-boot.sh needs, plus passt.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=$(realpath "${1:-$SRC/build/cli/forge}")
ROUNDS=${2:-3}
SECS=${3:-10}
MTUS=${MTUS:-}
for t in passt iperf3; do
	command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }
done
source "$SRC/bench/lib.sh"
vm_bench_setup
source "$SRC/tests/kvm/lib-kvm.sh"
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + ROUNDS * 2 * (120 + 2 * SECS)))}
kdeb=$(kernel_deb cloud)

C=$T/ctx
vm_context "$C" sh cat awk
# iperf3 with its libraries, for the guest's image and the host's server
R=$C/iperf
mkdir -p "$R/bin" "$R/tmp" "$R/dev"
copy_elf "$R" "$(command -v iperf3)" /bin/iperf3
# the receiver's Mbit/s of each direction, as IPERF tx|rx VALUE
cat >"$R/bin/netbench" <<EOF
#!/bin/sh
export TMPDIR=/tmp
for d in tx rx; do
	o=; [ \$d = rx ] && o=-R
	/bin/iperf3 -c 10.0.2.2 -p 5201 -t $SECS -f m \$o 2>&1 |
		awk -v d=\$d '/receiver/ { for (i = 1; i <= NF; i++) if (\$i == "Mbits/sec") print "IPERF", d, \$(i - 1) }'
done
EOF
chmod +x "$R/bin/netbench"

vm_spec vmnetbench "memory: 384M" "cpus: 1" >"$C/spec.yaml" <<'EOF'
  - files:
      - {src: links/, dest: /bin/}
      - {src: iperf/, dest: /}
config:
  cmd: [/bin/sh, /bin/netbench]
EOF
vm_bench_disk "$C/spec.yaml" vmnetbench
uplink_files "$T"
cp -a "$R" "$T/iperf"

cat >"$T/guest.sh" <<EOF
ROUNDS=$ROUNDS
VARIANTS="forge $(for m in $MTUS; do printf 'forge-mtu%s ' "$m"; done)qemu"
EOF
cat >>"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
B=$KVM_FILES
passt_uplink "$B/passt" || echo "FAIL: the outer guest's uplink (veth, its address and route)"
mknod $B/iperf/dev/urandom c 1 9
mknod $B/iperf/dev/null c 1 3
chroot $B/iperf /bin/iperf3 -s -B 127.0.0.1 -p 5201 -D
sleep 1
NET="forge.net=10.0.2.100/24,10.0.2.2,10.0.2.3"
launch() {
	case $1 in
	forge) exec $FORGE run --as vm --network user $B/d.img ;;
	forge-mtu*) FORGE_VMM_NET_MTU=${1#forge-mtu} exec $FORGE run --as vm --network user $B/d.img ;;
	qemu) qemu_boot pc 384 "$NET" -global kvm-apic.vapic=false -netdev user,id=n0 -device virtio-net-pci,netdev=n0 ;;
	esac
}
for i in $(seq 1 $ROUNDS); do
	for n in $VARIANTS; do
		(launch $n) >/tmp/out.$n 2>&1 </dev/null || true
		for d in tx rx; do
			t=$(awk -v d=$d '$1 == "IPERF" && $2 == d { print $3 }' /tmp/out.$n)
			if [ -z "$t" ]; then
				echo "FAIL: $n $d round $i"
				tail -n 20 /tmp/out.$n
				continue
			fi
			echo "round $i $n $d $t"
			echo "$t" >>/tmp/t.$n.$d
		done
	done
done
for n in $VARIANTS; do
	for d in tx rx; do
		[ -s /tmp/t.$n.$d ] && kvm-mark median-$n-$d "$(median 2 </tmp/t.$n.$d)"
	done
done
true
GUEST

st=0
vm_bench_harness "$T/veth.ko" "$T/passt" "$T/iperf" || st=$?
grep -E '^round |^FAIL' "$T/h/serial.log" || true
for d in tx rx; do
	fm=$(kvm_harness_marker "$T/h" median-forge-$d)
	qm=$(kvm_harness_marker "$T/h" median-qemu-$d)
	if [ -z "$fm" ] || [ -z "$qm" ]; then
		echo "$d: a figure is missing (forge '$fm', QEMU '$qm'; harness status $st)"
		[ "$st" -ne 0 ] || st=1
		continue
	fi
	echo "$d ($([ $d = tx ] && echo guest '->' host || echo host '->' guest)), median of $ROUNDS x ${SECS}s: forge $fm Mbit/s, QEMU -netdev user $qm Mbit/s; forge/QEMU $(echo "scale=2; $fm / $qm" | bc)"
	for m in $MTUS; do
		vm=$(kvm_harness_marker "$T/h" median-forge-mtu$m-$d)
		[ -n "$vm" ] && echo "  forge with MTU $m: $vm Mbit/s; /QEMU $(echo "scale=2; $vm / $qm" | bc)"
	done
done
exit "$st"

#!/bin/bash
# Benchmark: a VM's `--network user` throughput, guest -> host loopback:
# the guest fetches a SIZE_MB file from busybox httpd on the host's 127.0.0.1
# through 10.0.2.2 (wget to /dev/null, timed inside the guest from
# /proc/uptime), `forge run --as vm --network user` (virtio-net in forge-vmm,
# passt) against QEMU/KVM `-M pc` with `-netdev user` + virtio-net-pci (QEMU's
# libslirp) and the same kernel, initramfs, command line and disk, ROUNDS
# alternating rounds.
#
#   bench/vm-network.sh [FORGE] [ROUNDS] [SIZE_MB]
#
# Runs inside the nested-KVM harness (tests/kvm/harness.sh), whose outer
# guest is "the host" here: only ratios mean something. The outer guest gets
# a veth uplink with nothing behind it (passt needs an interface with a
# default route). Needs what bench/vm-boot.sh needs, plus passt.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=$(realpath "${1:-$SRC/build/cli/forge}")
ROUNDS=${2:-3}
SIZE_MB=${3:-64}
BUILD=$(dirname "$FORGE")/..
export FORGE FORGE_SRC=$SRC
export FORGE_TESTHELPER=${FORGE_TESTHELPER:-$BUILD/tests/helper/forge-testhelper}
export FORGE_VMINIT=${FORGE_VMINIT:-$BUILD/runtime/init/forge-vminit}
EXTRACT=${VMBOOT_EXTRACT:-$BUILD/tests/vmimage/vmboot-extract}
export FORGE_VMM=${FORGE_VMM:-$BUILD/runtime/vmm/forge-vmm}
for f in "$FORGE_VMM" "$FORGE_TESTHELPER" "$FORGE_VMINIT" "$EXTRACT"; do
	[ -x "$f" ] || { echo "missing $f" >&2; exit 1; }
done
command -v passt >/dev/null || { echo "needs passt" >&2; exit 1; }
source "$SRC/tests/integration/lib.sh"
source "$SRC/tests/kvm/harness.sh"
kvm_harness_need
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + ROUNDS * 2 * 120))}
kdeb=$(kernel_deb cloud)
gdeb=$(kernel_deb generic)

C=$T/ctx
mkdir -p "$C/links"
ln "$kdeb" "$C/kernel.deb" 2>/dev/null || cp "$kdeb" "$C/kernel.deb"
cp "$SRC"/specs/examples/debs/busybox-static_*.deb "$C/bb.deb"
for a in sh cat wget; do ln -s busybox "$C/links/$a"; done
cat >"$C/spec.yaml" <<'EOF'
forge: 1
name: vmnetbench
source_date_epoch: 1700000000
layers:
  - deb: bb.deb
  - files:
      - {src: links/, dest: /bin/}
config:
  cmd: [/bin/sh, -c, "a=$(cat /proc/uptime); wget -q -O /dev/null http://10.0.2.2:8081/big; b=$(cat /proc/uptime); echo NETTIME ${a%% *} ${b%% *}"]
vm:
  kernel: {deb: kernel.deb}
  memory: 384M
  cpus: 1
EOF
f build -q "$C/spec.yaml" >/dev/null
f export vmnetbench --format disk -o "$T/d.img" >/dev/null
mkdir "$T/boot"
"$EXTRACT" "$T/d.img" "$T/boot" >/dev/null
dpkg-deb --fsys-tarfile "$gdeb" | tar -x -C "$T" --wildcards './lib/modules/*/kernel/drivers/net/veth.ko'
cp "$T"/lib/modules/*/kernel/drivers/net/veth.ko "$T/veth.ko"
cp "$(command -v passt)" "$T/passt"

cat >"$T/guest.sh" <<EOF
ROUNDS=$ROUNDS
SIZE_MB=$SIZE_MB
EOF
cat >>"$T/guest.sh" <<'GUEST'
B=$KVM_FILES
# passt's sandbox cannot leave an initramfs root (tests/kvm/vm-net.sh)
mkdir -p /mnt/passt-root
printf '#!/bin/sh\nexec unshare -m --propagation private sh -c '"'"'mount -o rbind / /mnt/passt-root && cd /mnt/passt-root && mount -o move . / && exec chroot . "$0" "$@"'"'"' %s "$@"\n' \
	"$B/passt" >/tmp/passt-wrap
chmod +x /tmp/passt-wrap
export FORGE_PASST=/tmp/passt-wrap
ip link set lo up
insmod $B/veth.ko
ip link add fnet0 type veth
for l in $(ip -o link show | cut -d: -f2 | cut -d@ -f1); do ip link set $l up; done
ip addr add 198.51.100.1/24 dev fnet0
ip route add default via 198.51.100.254 dev fnet0
mkdir -p /tmp/www
dd if=/dev/zero of=/tmp/www/big bs=1M count=$SIZE_MB 2>/dev/null
httpd -p 127.0.0.1:8081 -h /tmp/www
NET="forge.net=10.0.2.100/24,10.0.2.2,10.0.2.3"
launch() {
	case $1 in
	forge) exec $FORGE run --as vm --network user $B/d.img ;;
	qemu) exec $KVM_QEMU -L $KVM_QEMU_FW -enable-kvm -cpu host -M pc -m 384 -smp 1 \
		-global kvm-apic.vapic=false -nodefaults -nographic -no-reboot -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel $B/kernel -initrd $B/initrd \
		-append "$(cat $B/cmdline) reboot=t quiet loglevel=1 $NET" \
		-drive file=$B/d.img,if=none,id=d0,format=raw,snapshot=on -device virtio-blk-pci,drive=d0 \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0 ;;
	esac
}
for i in $(seq 1 $ROUNDS); do
	for n in forge qemu; do
		(launch $n) >/tmp/out.$n 2>&1 </dev/null || true
		t=$(awk '/NETTIME/ { printf "%.2f", $3 - $2 }' /tmp/out.$n)
		if [ -z "$t" ]; then
			echo "FAIL: $n round $i"
			tail -n 20 /tmp/out.$n
			continue
		fi
		echo "round $i $n $t"
		echo "$t" >>/tmp/t.$n
	done
done
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for n in forge qemu; do
	[ -s /tmp/t.$n ] && kvm-mark median-$n "$(median </tmp/t.$n)"
done
true
GUEST

st=0
kvm_harness_run "$T/h" "$T/guest.sh" "$T/d.img" "$T/boot/kernel" "$T/boot/initrd" "$T/boot/cmdline" \
	"$T/veth.ko" "$T/passt" || st=$?
grep -E '^round |^FAIL' "$T/h/serial.log" || true
fm=$(kvm_harness_marker "$T/h" median-forge)
qm=$(kvm_harness_marker "$T/h" median-qemu)
[ -n "$fm" ] && [ -n "$qm" ] || { echo "no figures (harness status $st)"; exit 1; }
echo "fetch of $SIZE_MB MiB guest <- host loopback, median of $ROUNDS: forge $fm s, QEMU -netdev user $qm s"
echo "throughput: forge $(echo "scale=1; $SIZE_MB * 8 / $fm" | bc) Mbit/s, QEMU $(echo "scale=1; $SIZE_MB * 8 / $qm" | bc) Mbit/s; forge/QEMU $(echo "scale=2; $qm / $fm" | bc)"

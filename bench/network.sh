#!/bin/bash
# --network user for containers: TCP throughput from the workload to an
# iperf3 server on the host's 127.0.0.1 (through the gateway address every
# stack maps to the host's loopback), forge container vs plain pasta and
# plain slirp4netns (as rootless podman runs them) in the same run, ROUNDS
# alternating rounds of SECONDS each; and forge's start-up cost of
# --network user over --network none (median of RUNS).
#
#   bench/network.sh [FORGE]        (root; iperf3, pasta, slirp4netns)
#
# Every stack gets the same addressing (10.0.2.100/24, gateway 10.0.2.2) and
# the default MTU of its tool (pasta 65520, slirp4netns given 65520 too).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
FORGE=${1:-${FORGE:-build/cli/forge}}
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-5}
RUNS=${RUNS:-20}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for t in iperf3 pasta slirp4netns python3; do
	command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }
done

W=$(mktemp -d /tmp/forge-bench-net.XXXXXX)
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# a root file system holding iperf3 and its libraries (and busybox for sleep)
R=$W/root
mkdir -p "$R/bin" "$R/tmp"
copy_elf "$R" "$(command -v iperf3)" /bin/iperf3
mkdir -p "$R/dev"
mknod "$R/dev/urandom" c 1 9
mknod "$R/dev/null" c 1 3
cp /bin/busybox "$R/bin/busybox"
ln -s busybox "$R/bin/sh"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
server=$!
sleep 0.5

# gbps JSON: the receiver's throughput in Gbit/s
gbps() { python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }

client="iperf3 -c 10.0.2.2 -p $PORT -t $SECONDS_EACH -J"

run_forge() {
	"$FORGE" run --rootfs "$R" --network user -- /bin/$client | gbps
}

# pasta on a namespace (given as an fd: root's /proc/PID/ns/net needs ptrace
# rights pasta drops), as forge and rootful podman attach it
run_pasta() {
	local pid st=0
	unshare -n sh -c "while ! ip -4 addr show eth0 2>/dev/null | grep -q 10.0.2.100; do sleep 0.05; done;
		exec chroot '$R' /bin/$client" >"$W/pasta.json" &
	pid=$!
	sleep 0.2
	pasta --quiet --ipv4-only --runas 0:0 --config-net -a 10.0.2.100 -n 24 -g 10.0.2.2 -t none -u none \
		-T none -U none --ns-ifname eth0 --no-netns-quit --netns /proc/self/fd/7 -P "$W/pasta.pid" \
		7</proc/$pid/ns/net >/dev/null 2>&1
	wait "$pid" || st=$?
	kill "$(cat "$W/pasta.pid")" 2>/dev/null || true
	[ "$st" -eq 0 ] || { echo 0; return; }
	gbps <"$W/pasta.json"
}

run_slirp() {
	local pid out st=0
	unshare -n sh -c "while ! ip -4 addr show tap0 2>/dev/null | grep -q 10.0.2.100; do sleep 0.05; done;
		exec chroot '$R' /bin/$client" >"$W/slirp.json" &
	pid=$!
	sleep 0.2
	slirp4netns --configure --mtu=65520 "$pid" tap0 >/dev/null 2>&1 &
	local sp=$!
	wait "$pid" || st=$?
	kill "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
	[ "$st" -eq 0 ] || { echo 0; return; }
	gbps <"$W/slirp.json"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: >"$W/forge" && : >"$W/pasta" && : >"$W/slirp"
for i in $(seq 1 "$ROUNDS"); do
	run_forge >>"$W/forge"
	run_pasta >>"$W/pasta"
	run_slirp >>"$W/slirp"
done
f=$(median <"$W/forge")
p=$(median <"$W/pasta")
s=$(median <"$W/slirp")
echo "throughput workload -> host loopback (Gbit/s, median of $ROUNDS x ${SECONDS_EACH}s):"
echo "  forge --network user  $f   ($(tr '\n' ' ' <"$W/forge"))"
echo "  pasta                 $p   ($(tr '\n' ' ' <"$W/pasta"))"
echo "  slirp4netns           $s   ($(tr '\n' ' ' <"$W/slirp"))"
echo "  ratio forge/pasta $(echo "scale=2; $f / $p" | bc), forge/slirp4netns $(echo "scale=2; $f / $s" | bc)"

# start-up: --network user over none
ms() { date +%s%N; }
: >"$W/t-user" && : >"$W/t-none"
for i in $(seq 1 "$RUNS"); do
	for net in none user; do
		a=$(ms)
		"$FORGE" run --rootfs "$R" --network $net -- /bin/busybox true
		b=$(ms)
		echo "scale=2; ($b - $a) / 1000000" | bc >>"$W/t-$net"
	done
done
tn=$(median <"$W/t-none")
tu=$(median <"$W/t-user")
echo "start-up (ms, median of $RUNS): --network none $tn, --network user $tu (+$(echo "$tu - $tn" | bc) ms)"

#!/bin/bash
# Container start-up: `forge run --as container IMG /bin/true`-equivalent vs
# `crun run` of an OCI bundle with the same rootfs and argv, `bwrap
# --unshare-all` over the same rootfs, and the floor any tool pays (unshare of
# every namespace + chroot), alternating, RUNS each (default 30): median wall
# times and their ratios (forge also with --upper-tmpfs); peak RSS of forge
# and crun (GNU time); forge start-up with 1, 8 and 32 layers.
#
#   bench/container-start.sh [FORGE] [FORGE_TESTHELPER]
#
# forge runs an image built into a scratch store (`forge build` of a spec
# whose layers are files: layers); if that fails (no store yet), it runs over
# plain layer directories (forge run --rootfs: the same overlay and container
# set-up an image gets once its layers are unpacked) and says so.
# crun 1.8 refuses this machine's hybrid cgroup layout unless a v1 hugetlb
# hierarchy is mounted; the script holds one in a private mount namespace.
set -euo pipefail
FORGE=${1:-${FORGE:-build/cli/forge}}
HELPER=${2:-${FORGE_TESTHELPER:-build/tests/helper/forge-testhelper}}
RUNS=${RUNS:-30}
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for t in crun bwrap unshare; do
	command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }
done

W=$(mktemp -d /tmp/forge-bench.XXXXXX)
holder=
cleanup() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	crun delete -f forge-bench 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/hold"
unshare -m --propagation private sh -c "mount -t cgroup -o hugetlb cgroup $W/hold 2>/dev/null; exec sleep 3600" &
holder=$!
sleep 0.3

mkdir -p "$W/bundle/rootfs/bin" "$W/layers"
cp "$HELPER" "$W/bundle/rootfs/bin/true"
(cd "$W/bundle" && crun spec && jq '.process.args=["/bin/true"] | .process.terminal=false' config.json >c && mv c config.json)

# image_for N: builds an image with N layers (the helper as /bin/true, then
# N-1 small files) and prints its ref; fails when forge cannot build.
image_for() {
	local n=$1 d=$W/spec-$1
	mkdir -p "$d"
	cp "$HELPER" "$d/true"
	{
		echo "forge: 1"
		echo "name: bench$n"
		echo "layers:"
		echo "  - files: [{src: true, dest: /bin/true, mode: \"0755\"}]"
		for i in $(seq 2 "$n"); do
			echo "$i" >"$d/f$i"
			echo "  - files: [{src: f$i, dest: /etc/layer$i}]"
		done
	} >"$d/bench.yaml"
	"$FORGE" --store "$W/store" build -q "$d/bench.yaml" >/dev/null 2>&1 && echo "bench$n"
}
mode=image
img1=$(image_for 1) || mode=rootfs
if [ $mode = image ]; then
	echo "forge runs images from a store ($W/store)"
else
	echo "NOTE: forge build failed: running forge over plain directories (--rootfs)"
fi

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

forge_run() { "$FORGE" --store "$W/store" run --as container "${@}" -- /bin/true; }
# the same with the writable layer on the container's own tmpfs (when this
# forge has --upper-tmpfs; an older one runs the default again)
tmpfs_opt=
"$FORGE" run --help | grep -q -- --upper-tmpfs && tmpfs_opt=--upper-tmpfs
forget_run() { "$FORGE" --store "$W/store" run --as container $tmpfs_opt "${@}" -- /bin/true; }
crun_run() { (cd "$W/bundle" && crun run forge-bench); }
bwrap_run() {
	bwrap --unshare-all --bind "$W/bundle/rootfs" / --proc /proc --dev /dev /bin/true
}
floor_run() { unshare --mount --uts --ipc --net --pid --cgroup --fork chroot "$W/bundle/rootfs" /bin/true; }

for i in $(seq "$RUNS"); do
	if [ $mode = image ]; then set -- "$img1"; else set -- --rootfs "$W/bundle/rootfs"; fi
	t0=$(now); forge_run "$@" >/dev/null; t1=$(now)
	crun_run >/dev/null; t2=$(now)
	bwrap_run >/dev/null; t3=$(now)
	floor_run >/dev/null; t4=$(now)
	forget_run "$@" >/dev/null; t5=$(now)
	echo $(((t5 - t4) / 1000)) >>"$W/forget.us"
	echo $(((t1 - t0) / 1000)) >>"$W/forge.us"
	echo $(((t2 - t1) / 1000)) >>"$W/crun.us"
	echo $(((t3 - t2) / 1000)) >>"$W/bwrap.us"
	echo $(((t4 - t3) / 1000)) >>"$W/floor.us"
done
ms() { awk -v a="$1" 'BEGIN{printf "%.1f ms", a/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
f=$(median <"$W/forge.us"); c=$(median <"$W/crun.us")
b=$(median <"$W/bwrap.us"); u=$(median <"$W/floor.us")
t=$(median <"$W/forget.us")
echo "start (median of $RUNS): forge $(ms "$f"), forge --upper-tmpfs $(ms "$t"), crun $(ms "$c"), bwrap --unshare-all $(ms "$b"), unshare+chroot $(ms "$u")"
echo "ratios: forge/crun $(ratio "$f" "$c"), forge/bwrap $(ratio "$f" "$b"), forge/floor $(ratio "$f" "$u")"
echo "ratios --upper-tmpfs: forge/crun $(ratio "$t" "$c"), forge/bwrap $(ratio "$t" "$b"), forge/floor $(ratio "$t" "$u")"

if [ -x /usr/bin/time ]; then
	if [ $mode = image ]; then set -- "$img1"; else set -- --rootfs "$W/bundle/rootfs"; fi
	fr=$(/usr/bin/time -f %M "$FORGE" --store "$W/store" run "$@" -- /bin/true 2>&1 >/dev/null | tail -1)
	cr=$( (cd "$W/bundle" && /usr/bin/time -f %M crun run forge-bench) 2>&1 >/dev/null | tail -1)
	echo "peak RSS: forge ${fr} KiB, crun ${cr} KiB"
fi

for n in 1 8 32; do
	if [ $mode = image ]; then
		args=("$(image_for "$n")")
	else
		args=(--rootfs "$W/bundle/rootfs")
		for i in $(seq 2 "$n"); do
			mkdir -p "$W/layers/$n-$i/etc"
			echo "$i" >"$W/layers/$n-$i/etc/layer"
			args+=(--rootfs "$W/layers/$n-$i")
		done
	fi
	rm -f "$W/l.us"
	for i in $(seq "$RUNS"); do
		t0=$(now); forge_run "${args[@]}" >/dev/null; t1=$(now)
		echo $(((t1 - t0) / 1000)) >>"$W/l.us"
	done
	m=$(median <"$W/l.us")
	echo "forge with $n layer(s): $((${m%.*} / 1000)).$(((${m%.*} % 1000) / 100)) ms"
done

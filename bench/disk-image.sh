#!/bin/bash
# Benchmark: `forge export --format disk` of an image already in the store
# (the disk not cached) against `mke2fs -t ext4 -d` of the same flattened
# tree alone (the floor: what any ext4-image tool must do), and the disk's
# allocated size against the flattened rootfs. Also the cached export.
#
#   bench/disk-image.sh [FORGE] [RUNS]
# Needs root, the Debian cloud kernel .deb in /var/cache/forge-test (see
# tests/vmimage/vm-disk.sh), busybox-static from specs/examples/debs.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=${1:-$SRC/build/cli/forge}
RUNS=${2:-5}
export FORGE FORGE_SRC=$SRC
source "$SRC/tests/integration/lib.sh" # T (removed at exit), its store, f
export FORGE_VMINIT=${FORGE_VMINIT:-$(dirname "$FORGE")/../runtime/init/forge-vminit}
kdeb=$(ls /var/cache/forge-test/linux-image-*-cloud-amd64_*.deb 2>/dev/null | sort | tail -n1)
[ -n "$kdeb" ] || { echo "no cloud kernel .deb in /var/cache/forge-test (run the vm-disk test once)"; exit 1; }

C=$T/ctx
vm_context "$C"
# some content: busybox plus 40 MB of files of mixed sizes
mkdir -p "$C/data"
for i in $(seq 1 200); do head -c $((i * 1000)) /dev/urandom >"$C/data/f$i"; done
head -c 20000000 /dev/urandom >"$C/data/big"
vm_spec diskbench >"$C/spec.yaml" <<'EOF'
  - files: [{src: data/, dest: /data/}]
config:
  cmd: [/bin/busybox, "true"]
EOF
f build -q "$C/spec.yaml" >/dev/null
f export diskbench --format dir -o "$T/rootfs" >/dev/null
key=$(ls "$T/store/kv/disk" 2>/dev/null || true)

now() { date +%s.%N; }
best() { sort -g | head -n1; }

forge_t=() cold_t=() mke_t=() cached_t=()
for i in $(seq 1 "$RUNS"); do
	# cold: the kernel package unpacked, initramfs and UKI built
	rm -f "$T/disk.img" "$T/store/kv/disk/"* "$T/store/kv/vmkernel/"* 2>/dev/null || true
	s=$(now); f export diskbench --format disk -o "$T/disk.img" >/dev/null; e=$(now)
	cold_t+=("$(echo "$e - $s" | bc)")
	# the kernel artifacts cached (another image with the same kernel was exported before)
	rm -f "$T/disk.img" "$T/store/kv/disk/"* 2>/dev/null || true
	s=$(now); f export diskbench --format disk -o "$T/disk.img" >/dev/null; e=$(now)
	forge_t+=("$(echo "$e - $s" | bc)")
	rm -f "$T/disk2.img"
	s=$(now); f export diskbench --format disk -o "$T/disk2.img" >/dev/null; e=$(now)
	cached_t+=("$(echo "$e - $s" | bc)")
	rm -f "$T/ext4.img"
	s=$(now); mke2fs -q -t ext4 -d "$T/rootfs" "$T/ext4.img" "$(( $(du -sk "$T/rootfs" | cut -f1) * 3 / 2 + 32768 ))k" >/dev/null; e=$(now)
	mke_t+=("$(echo "$e - $s" | bc)")
done
ft=$(printf '%s\n' "${forge_t[@]}" | best)
cl=$(printf '%s\n' "${cold_t[@]}" | best)
mt=$(printf '%s\n' "${mke_t[@]}" | best)
ct=$(printf '%s\n' "${cached_t[@]}" | best)
rootfs_kb=$(du -sk "$T/rootfs" | cut -f1)
disk_kb=$(du -k "$T/disk.img" | cut -f1)
disk_apparent=$(($(stat -c %s "$T/disk.img") / 1024))
printf 'best of %d runs\n' "$RUNS"
printf 'forge export --format disk, cold kernel:  %6.3f s   ratio forge/mke2fs = %.2f\n' "$cl" "$(echo "$cl / $mt" | bc -l)"
printf 'forge export --format disk, kernel cached: %6.3f s\n' "$ft"
printf 'mke2fs -d of the same tree alone:          %6.3f s   ratio forge/mke2fs = %.2f\n' "$mt" "$(echo "$ft / $mt" | bc -l)"
printf 'forge export --format disk, disk cached:   %6.3f s   ratio cached/mke2fs = %.2f\n' "$ct" "$(echo "$ct / $mt" | bc -l)"
printf 'flattened rootfs (du):   %8d KiB\n' "$rootfs_kb"
printf 'disk image allocated:    %8d KiB (apparent %d KiB)   ratio = %.2f\n' "$disk_kb" "$disk_apparent" \
	"$(echo "$disk_kb / $rootfs_kb" | bc -l)"

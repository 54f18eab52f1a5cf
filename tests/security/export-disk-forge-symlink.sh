#!/usr/bin/env bash
# forge export --format disk writes the run configuration to /.forge/run in
# the image's tree: an image whose /.forge is a symlink to a host directory,
# or whose /.forge/run is a symlink to a host file, must not make forge
# write outside that tree.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root
need_disk_tools

HOST=$T/host
mkdir -p "$HOST" "$T/ctx/a/.forge" "$T/ctx/b" "$T/ctx/mods/lib/modules/6.1.0-fake"
echo HOSTFILE >"$HOST/target"
# a stand-in kernel: a bzImage header is all forge checks; modules built in
printf 'kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\nkernel/fs/ext4/ext4.ko\n' \
	>"$T/ctx/mods/lib/modules/6.1.0-fake/modules.builtin"
stand_in_kernel "$T/ctx/vmlinuz"
ln -s "$HOST" "$T/ctx/b/.forge"                 # /.forge -> a host directory
ln -s "$HOST/target" "$T/ctx/a/.forge/run"      # /.forge/run -> a host file
tar -C "$T/ctx/a" -cf "$T/ctx/a.tar" .forge
tar -C "$T/ctx/b" -cf "$T/ctx/b.tar" .forge
for v in a b; do
	cat >"$T/ctx/$v.yaml" <<YAML
forge: 1
name: evil-$v
layers:
  - archive: $v.tar
config:
  cmd: ["/bin/true"]
vm:
  kernel:
    bzimage: vmlinuz
    modules: mods/lib/modules/6.1.0-fake
YAML
	f build -q "$T/ctx/$v.yaml" >/dev/null
	f export "evil-$v" --format disk -o "$T/$v.img" >"$T/$v.out" 2>&1 || { cat "$T/$v.out"; fail "export disk $v"; }
	[ "$(cat "$HOST/target")" = HOSTFILE ] || fail "export of evil-$v overwrote a host file through /.forge/run"
	[ ! -e "$HOST/run" ] || fail "export of evil-$v wrote $HOST/run through the /.forge symlink"
	[ "$(ls -A "$HOST")" = target ] || fail "export of evil-$v left files in the host dir: $(ls -A "$HOST")"
done
# the disk still carries the run configuration, at /.forge/run, as a file
if command -v debugfs >/dev/null && command -v sfdisk >/dev/null; then
	start=$(sfdisk -J "$T/b.img" | jq '.partitiontable.partitions[2].start')
	dd if="$T/b.img" of="$T/root.ext4" bs=512 skip="$start" status=none
	debugfs -R 'stat /.forge/run' "$T/root.ext4" 2>/dev/null | grep -q 'Type: regular' ||
		fail "the disk has no regular /.forge/run"
fi
echo OK

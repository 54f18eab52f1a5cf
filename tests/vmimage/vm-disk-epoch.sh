#!/usr/bin/env bash
# A disk image with source_date_epoch unset (0, the default) is bit-identical
# across two stores built a couple of seconds apart: no wall-clock time in
# the ext4 superblock, inodes, journal or the ESP. The ext4 file system's own
# times are those forge documents (docs/vm-disk.md): 1 for the superblock's,
# 0 for every file's. Names that are not ASCII (Latin-1, UTF-8) are on it
# as bytes.
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
need_root
need_disk_tools sfdisk debugfs
need_kernel_deb

CTX=$T/ctx
vm_context "$CTX"
mkdir -p "$CTX/srv"
echo data >"$CTX/srv/data"
echo latin1 >"$CTX/srv/"$'\xe9t\xe9' # names are bytes on the disk too
echo utf8 >"$CTX/srv/Főtanúsítvány.crt"
echo unit >"$CTX/srv/system-systemd\x2dcryptsetup.slice" # Debian's systemd ships such
# (the spec without its source_date_epoch: the default)
vm_spec epoch0 <<'Y' | grep -v '^source_date_epoch:' >"$CTX/vm.yaml"
  - files: [{src: srv/, dest: /srv/}]
config:
  cmd: [/bin/busybox, "true"]
Y
unset SOURCE_DATE_EPOCH
"$FORGE" --store "$T/s1" build -q "$CTX/vm.yaml" >/dev/null || fail "build (store 1)"
"$FORGE" --store "$T/s1" export epoch0 --format disk -o "$T/d1.img" >/dev/null || fail "export (store 1)"
sleep 2
"$FORGE" --store "$T/s2" build -q "$CTX/vm.yaml" >/dev/null || fail "build (store 2)"
"$FORGE" --store "$T/s2" export epoch0 --format disk -o "$T/d2.img" >/dev/null || fail "export (store 2)"
if ! cmp -s "$T/d1.img" "$T/d2.img"; then
	cmp -l "$T/d1.img" "$T/d2.img" | head -5 >&2
	fail "two stores give different disks at the default source_date_epoch"
fi

# the root file system's times, as documented
start=$(sfdisk -J "$T/d1.img" | jq '.partitiontable.partitions[] | select(.name == "forge-root") | .start')
[ -n "$start" ] || start=$(sfdisk -J "$T/d1.img" | jq '.partitiontable.partitions[1].start')
dd if="$T/d1.img" of="$T/root.img" bs=512 skip="$start" status=none
dumpe2fs -h "$T/root.img" 2>/dev/null >"$T/sb"
for k in "Filesystem created" "Last write time" "Last checked"; do
	v=$(sed -n "s/^$k: *//p" "$T/sb")
	[ "$(date -u -d "$v" +%s)" = 1 ] || fail "superblock '$k' is '$v', not 1 s after the epoch"
done
for n in data 'system-systemd\x2dcryptsetup.slice'; do
	debugfs -R "stat \"/srv/$n\"" "$T/root.img" 2>/dev/null >"$T/inode"
	for k in ctime atime mtime crtime; do
		grep -q "^ *$k: 0x00000000" "$T/inode" || { cat "$T/inode"; fail "/srv/$n $k is not 0"; }
	done
done
for n in $'\xe9t\xe9' 'Főtanúsítvány.crt' 'system-systemd\x2dcryptsetup.slice'; do
	debugfs -R "cat \"/srv/$n\"" "$T/root.img" 2>/dev/null >"$T/content"
	[ -s "$T/content" ] || fail "the disk lacks /srv/$n"
done
echo "vm-disk-epoch: ok"

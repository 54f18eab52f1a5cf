#!/bin/bash
# -v SRC:DST[:ro] where DST in the image is a symlink: resolved inside the
# container's root, never onto the root itself, and ro applies to the mount
# actually made (nodev,nosuid as podman's volumes).
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

vol=$T/vol
mkdir -p "$vol"
echo volume >"$vol/volfile"
ln -s / "$ROOTFS/rootlink"
ln -s ../../etc "$ROOTFS/etclink"
ln -s / "$ROOTFS/host"
mkdir -p "$ROOTFS/data"

# a symlink to / : the volume must not become the container's (writable) root
err=$(r -v "$vol:/rootlink:ro" -- /bin/th write /newfile x 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "-v over a symlink to / ran (status $st): $err"
grep -q "root" <<<"$err" || fail "the error does not say the destination is the root: $err"
[ ! -e "$vol/newfile" ] || fail "the read-only volume was written through a symlink to /"
# -v /:/host:ro over an image's /host -> / : not the host's / as a writable root
err=$(r -v "/:/host:ro" -- /bin/th write /host-escape x 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "-v /:/host:ro over /host -> / ran (status $st): $err"
[ ! -e /host-escape ] || { rm -f /host-escape; fail "the host's / was written"; }

# a symlink leading up and out: resolved inside the root (the container's /etc)
out=$(r -v "$vol:/etclink:ro" -- /bin/sh -c '/bin/th read /etc/volfile; /bin/th write /etc/volfile z; /bin/th mounts')
expect_line "$out" "volume"
expect_line "$out" "write=Read-only file system"
grep -E "^[^ ]+ /etc [^ ]+ ro,nosuid,nodev" <<<"$out" >/dev/null ||
	fail "the volume over /etc is not ro,nosuid,nodev: $(grep ' /etc ' <<<"$out")"
[ "$(cat "$vol/volfile")" = volume ] || fail "the volume was written"

# plain ro volume: ro, nosuid, nodev on the mount made
out=$(r -v "$vol:/data:ro" -- /bin/sh -c '/bin/th write /data/volfile z; /bin/th mounts')
expect_line "$out" "write=Read-only file system"
grep -E "^[^ ]+ /data [^ ]+ ro,nosuid,nodev" <<<"$out" >/dev/null ||
	fail "the volume on /data is not ro,nosuid,nodev: $(grep ' /data ' <<<"$out")"
# rw volume: writable, still nosuid,nodev
out=$(r -v "$vol:/data" -- /bin/sh -c '/bin/th write /data/rw ok; /bin/th mounts')
expect_line "$out" "write=ok"
grep -E "^[^ ]+ /data [^ ]+ rw,nosuid,nodev" <<<"$out" >/dev/null ||
	fail "the volume on /data is not rw,nosuid,nodev: $(grep ' /data ' <<<"$out")"
# a read-only volume over a submount of the source: ro recursively
mkdir -p "$vol/sub"
mount -t tmpfs tmpfs "$vol/sub"
out=$(r -v "$vol:/data:ro" -- /bin/th write /data/sub/x y || true)
umount "$vol/sub" || fail "umount $vol/sub: $(grep " $vol/sub " /proc/mounts)"
expect_line "$out" "write=Read-only file system"
leftover_check
echo PASS

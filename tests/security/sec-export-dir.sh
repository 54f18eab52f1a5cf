#!/bin/bash
# forge export --format dir keeps the image's device nodes and setuid-root
# files (as root): the tree's top directory is 0700, so that no other local
# user reaches them, whatever mode the image gives its /.
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1
source "$(dirname "$0")/lib-oci.sh" || exit 1
command -v jq >/dev/null || { echo "SKIP: jq is not installed" >&2; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv (util-linux) is missing" >&2; exit 77; }

cp "$ROOTFS/bin/busybox" "$ROOTFS/bin/suid-shell"
chmod 4755 "$ROOTFS/bin/suid-shell"
mknod "$ROOTFS/kmsg" c 1 11
chmod 0777 "$ROOTFS"
oci_layout "$T/img" "$ROOTFS" .
f import "$T/img" --tag devs:latest >/dev/null || fail "import"
f export devs --format dir -o "$T/out" || fail "export"
[ "$(stat -c %a "$T/out")" = 700 ] || fail "the exported tree is mode $(stat -c %a "$T/out"), expected 700"
[ "$(stat -c %u "$T/out")" = 0 ] || fail "the exported tree is not owned by root"
# what the mode protects is there
[ "$(stat -c %a "$T/out/bin/suid-shell")" = 4755 ] || fail "setuid bit not kept: $(stat -c %a "$T/out/bin/suid-shell")"
[ -c "$T/out/kmsg" ] || fail "the device node was not kept"
# and another user cannot reach it
chmod 0755 "$T"
# (through a shell: setpriv itself keeps root's capabilities until it execs)
err=$(setpriv --reuid=65534 --regid=65534 --clear-groups /bin/sh -c "exec $T/out/bin/suid-shell true" 2>&1) &&
	fail "another user ran the exported setuid binary"
grep -q "Permission denied" <<<"$err" || fail "unexpected error for another user: $err"
echo PASS

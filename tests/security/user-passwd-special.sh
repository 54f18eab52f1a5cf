#!/usr/bin/env bash
# forge run --user NAME reads the image's /etc/passwd and /etc/group: when
# they are /dev/zero, a FIFO, or a symlink to either, the run fails at once
# (exit 125, the file named) instead of hanging with signals blocked.
source "$FORGE_SRC/tests/runtime/lib-run.sh"

# control: a name from the image's passwd works
out=$(timeout 30 "$FORGE" run --rootfs "$ROOTFS" --user alice -- /bin/th id 2>&1) || fail "control run: $out"

try() {
	local what=$1 st=0
	timeout -k 5 20 "$FORGE" run --rootfs "$ROOTFS" --user alice -- /bin/th true >"$T/out" 2>&1 || st=$?
	[ "$st" != 124 ] && [ "$st" != 137 ] || fail "$what: forge run --user hangs (SIGTERM does not end it)"
	[ "$st" = 125 ] || { cat "$T/out"; fail "$what: exit $st, expected 125"; }
	grep -q "/etc/$2" "$T/out" || { cat "$T/out"; fail "$what: the error does not name /etc/$2"; }
}

cp "$ROOTFS/etc/passwd" "$T/passwd.good"
cp "$ROOTFS/etc/group" "$T/group.good"
rm -f "$ROOTFS/etc/passwd"; mknod "$ROOTFS/etc/passwd" c 1 5
try "passwd is /dev/zero's device node" passwd
rm -f "$ROOTFS/etc/passwd"; ln -s /dev/zero "$ROOTFS/etc/passwd"
try "passwd -> /dev/zero" passwd
rm -f "$ROOTFS/etc/passwd"; mkfifo "$ROOTFS/etc/passwd"
try "passwd is a FIFO" passwd
rm -f "$ROOTFS/etc/passwd"; cp "$T/passwd.good" "$ROOTFS/etc/passwd"
rm -f "$ROOTFS/etc/group"; mkfifo "$ROOTFS/etc/group"
try "group is a FIFO" group
rm -f "$ROOTFS/etc/group"; ln -s /dev/zero "$ROOTFS/etc/group"
try "group -> /dev/zero" group
echo OK

#!/bin/bash
# Siblings of the volume hole, paths an image controls: /proc, /dev or /sys
# as symlinks (would move the kernel's file systems and their masked paths:
# refused, as runc), a FIFO where a volume goes (must not hang), a workdir
# through a symlink (stays inside the container).
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

for d in proc dev sys; do
	rm -rf "${ROOTFS:?}/$d"
	ln -s tmp "$ROOTFS/$d"
	err=$(r -- /bin/th true 2>&1) && st=0 || st=$?
	[ "$st" = 125 ] || fail "/$d as a symlink: ran (status $st): $err"
	grep -q "'/$d' is not a directory" <<<"$err" || fail "/$d as a symlink: $err"
	rm "$ROOTFS/$d"
done

# a FIFO at a volume's destination: not opened (it would block)
mkfifo "$ROOTFS/fifo"
echo vol >"$T/volfile"
expect_line "$(timeout 20 "$FORGE" run --rootfs "$ROOTFS" -v "$T/volfile:/fifo:ro" -- /bin/th read /fifo)" "vol"

# --workdir through an image's symlink leading up: the container's own tree
ln -s ../../../.. "$ROOTFS/up"
expect_line "$(r --workdir /up/etc -- /bin/th read origin)" "image"
expect_line "$(r --workdir /up -- /bin/th cwd)" "cwd=/"
# tmpfs mounts forge makes cap inodes as well as bytes (empty files cost
# kernel memory that size= does not count)
for d in /dev /dev/shm; do
	out=$(r -- /bin/th fill $d 200000)
	expect_line "$out" "fill_error=ENOSPC"
	n=$(sed -n 's/^created=//p' <<<"$out")
	[ "$n" -le 65536 ] || fail "$d took $n empty files"
done
leftover_check
echo PASS

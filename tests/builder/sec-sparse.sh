#!/usr/bin/env bash
# A 10 KiB archive whose member is a 2 GiB sparse file (GNU tar -S): the
# build, `forge run` (the unpacked layer) and `forge export --format dir`
# take disk space for the data only, not the holes: with the store and the
# export target on a 256 MiB tmpfs, all of them work, and the file reads back
# with its size and its data at the end. Before, the build's spool and every
# extraction wrote the holes out as zeros (a small archive could fill the
# disk).
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
mkdir -p "$c/t/big" "$T/small"
truncate -s 2G "$c/t/big/sparse"
echo tail >>"$c/t/big/sparse"
tar -S -cf "$c/sparse.tar" -C "$c/t" big
rm -rf "$c/t"
[ "$(stat -c %s "$c/sparse.tar")" -lt 65536 ] || fail "the test archive is not small"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$c/bb.deb"
printf 'forge: 1\nname: sparse\nlayers:\n  - deb: bb.deb\n  - archive: sparse.tar\nconfig:\n  entrypoint: [/bin/busybox]\n' \
	>"$c/sparse.yaml"

mount -t tmpfs -o size=256m tmpfs "$T/small" || { echo "SKIP: cannot mount a tmpfs" >&2; exit 77; }
S=$T/small/store
"$FORGE" --store "$S" build -q "$c/sparse.yaml" >/dev/null || fail "build on a 256 MiB store"
out=$("$FORGE" --store "$S" run sparse -- sh -c 'wc -c </big/sparse; tail -c 5 /big/sparse') ||
	fail "run: $out"
[ "$out" = $'2147483653\ntail' ] || fail "run read '$out'"
"$FORGE" --store "$S" export sparse --format dir -o "$T/small/x" >/dev/null || fail "export dir"
[ "$(stat -c %s "$T/small/x/big/sparse")" = 2147483653 ] || fail "exported size"
[ "$(tail -c 5 "$T/small/x/big/sparse")" = tail ] || fail "exported content"
used=$(du -sk "$T/small" | cut -f1)
[ "$used" -lt 65536 ] || fail "store and export use $used KiB for 5 bytes of data"
echo "sec-sparse: ok"

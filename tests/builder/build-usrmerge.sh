#!/usr/bin/env bash
# Layers over a merged-/usr base (bin -> usr/bin, lib -> usr/lib, an absolute
# sbin -> /usr/sbin, a chain, a loop): a .deb shipping ./bin/hello, ./lib/...
# and ./sbin/tool, a files: layer with dest /bin/h2 and an archive with
# hardlinks under bin/ land in usr/ as dpkg would put them, so /bin keeps
# what the base has (before, the layer's bin/ directory hid all of /bin in
# the container). A whiteout of the lib symlink makes lib/ a directory again
# for the layers above; a symlink loop leaves the path as it is.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
b=$T/base
mkdir -p "$c" "$b/usr/bin" "$b/usr/lib/real" "$b/usr/sbin"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$c/bb.deb"
dpkg-deb -x "$c/bb.deb" "$T/bb"
cp "$T/bb/bin/busybox" "$b/usr/bin/busybox"
ln -s busybox "$b/usr/bin/sh"
ln -s usr/bin "$b/bin"
ln -s usr/lib "$b/lib"
ln -s /usr/sbin "$b/sbin"
ln -s real "$b/usr/lib/alias"  # lib/alias/x -> usr/lib/real/x
ln -s b "$b/loopa" && ln -s loopa "$b/b"
tar -cf "$c/base.tar" -C "$b" .

d=$T/pkg
mkdir -p "$d/DEBIAN" "$d/bin" "$d/lib/alias" "$d/sbin" "$d/usr/share/doc/hello" "$d/loopa"
printf 'Package: hello\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n' \
	>"$d/DEBIAN/control"
echo hello >"$d/bin/hello"
echo lib >"$d/lib/alias/libfoo.so"
echo tool >"$d/sbin/tool"
echo doc >"$d/usr/share/doc/hello/copyright"
echo loop >"$d/loopa/x"
dpkg-deb --root-owner-group --build "$d" "$c/hello.deb" >/dev/null
echo h2 >"$c/h2"
python3 - "$c" <<'PY'
import io, os, sys, tarfile
ctx = sys.argv[1]
with tarfile.open(os.path.join(ctx, "links.tar"), "w") as t:
    ti = tarfile.TarInfo("bin/a"); ti.size = 2; t.addfile(ti, io.BytesIO(b"a\n"))
    hl = tarfile.TarInfo("bin/b"); hl.type = tarfile.LNKTYPE; hl.linkname = "bin/a"; t.addfile(hl)
with tarfile.open(os.path.join(ctx, "nolib.tar"), "w") as t:
    ti = tarfile.TarInfo(".wh.lib"); ti.size = 0; t.addfile(ti, io.BytesIO(b""))
with tarfile.open(os.path.join(ctx, "newlib.tar"), "w") as t:
    ti = tarfile.TarInfo("lib/own"); ti.size = 4; t.addfile(ti, io.BytesIO(b"own\n"))
PY

cat >"$c/merged.yaml" <<'Y'
forge: 1
name: merged
layers:
  - archive: base.tar
  - deb: hello.deb
  - files: [{src: h2, dest: /bin/h2}]
  - archive: links.tar
  - archive: nolib.tar
  - archive: newlib.tar
config:
  entrypoint: [/bin/sh, -c]
Y
f build -q "$c/merged.yaml" >/dev/null || fail "build"

# layer_list INDEX: the entries of layer INDEX
layer_list() {
	local blob
	blob=$STORE/blobs/sha256/$(f inspect merged | jq -r ".layers[$1].digest" | cut -d: -f2)
	zstd -dc "$blob" | tar -t | sort
}
list=$(layer_list 1)
for want in usr/bin/hello usr/lib/real/libfoo.so usr/sbin/tool usr/share/doc/hello/copyright loopa/x; do
	grep -qx "$want" <<<"$list" || fail "deb layer: no '$want' in:
$list"
done
grep -Eq '^(bin|lib|sbin)(/|$)' <<<"$list" && fail "deb layer: entries under a symlinked directory:
$list"
[ "$(layer_list 2 | grep -v '/$')" = usr/bin/h2 ] || fail "files layer: $(layer_list 2)"
[ "$(layer_list 3 | grep -v '/$')" = $'usr/bin/a\nusr/bin/b' ] || fail "archive layer: $(layer_list 3)"

out=$(f run merged -- 'cd /bin && echo *; cat /lib/own /usr/lib/real/libfoo.so /sbin/tool; test -L /lib || echo lib-is-a-dir') ||
	fail "run: $out"
[ "$out" = $'a b busybox h2 hello sh\nown\nlib\ntool\nlib-is-a-dir' ] || fail "run printed:
$out"
[ "$(f run merged -- 'stat -c %h /usr/bin/a')" = 2 ] || fail "the hardlink is not one"

f export merged --format dir -o "$T/exp" >/dev/null
[ "$(readlink "$T/exp/bin")" = usr/bin ] || fail "export: /bin is not the base's symlink"
[ "$(cat "$T/exp/usr/bin/hello")" = hello ] || fail "export: usr/bin/hello"
f build --check "$c/merged.yaml" >/dev/null 2>&1 || fail "build --check"
echo "build-usrmerge: ok"

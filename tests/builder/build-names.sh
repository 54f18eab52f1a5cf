#!/usr/bin/env bash
# File names are bytes. A .deb (as dpkg-deb builds it), a pax and a GNU tar
# archive and a files: directory with a Latin-1 name that is not UTF-8, a
# UTF-8 name (ca-certificates ships such), a name with a newline and a
# symlink to a non-UTF-8 target build under LANG=C and LANG=C.UTF-8 into the
# same image, and every name comes back bit-exact from the layer tar, from
# `forge export` (dir, tar, oci dir and tar) and through `forge import` into
# another store.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
mkdir -p "$c"
LAT=$'\xe9t\xe9'
UTF='Főtanúsítvány.crt'
NL=$'new\nline'
LONG=$(printf 'ascii%.0s' $(seq 30)) # 150 bytes: a pax path, as before

# the names every source carries, under usr/share/names/
mk_tree() {
	local d=$1/usr/share/names
	mkdir -p "$d/$LAT.d"
	echo latin1 >"$d/$LAT"
	echo utf8 >"$d/$UTF"
	echo newline >"$d/$NL"
	echo inner >"$d/$LAT.d/$UTF"
	ln -s "$LAT" "$d/link-$UTF"
	echo long >"$d/$LONG"
}

mkdir -p "$T/pkg/DEBIAN"
printf 'Package: names\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n' \
	>"$T/pkg/DEBIAN/control"
mk_tree "$T/pkg"
rm "$T/pkg/usr/share/names/$NL" # dpkg-deb refuses newlines in names
dpkg-deb --root-owner-group --build "$T/pkg" "$c/names.deb" >/dev/null
mk_tree "$c/tree"
python3 - "$c" <<'PY'
import io, os, sys, tarfile
ctx = sys.argv[1]
root = os.path.join(ctx, "tree").encode()
for fmt, name in ((tarfile.PAX_FORMAT, "pax.tar"), (tarfile.GNU_FORMAT, "gnu.tar")):
    with tarfile.open(os.path.join(ctx, name), "w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as t:
        t.add(os.path.join(ctx, "tree/usr"), arcname="usr")
PY

# names_in_dir DIR: the names below DIR/usr/share/names, as in $T/want
names_in_dir() {
	python3 - "$1/usr/share/names" <<'PY'
import os, sys
out = []
for dp, dns, fns in os.walk(sys.argv[1].encode()):
    for n in dns + fns:
        out.append(os.path.relpath(os.path.join(dp, n), sys.argv[1].encode()).hex())
print("\n".join(sorted(out)))
PY
}

# names_in_tar TAR: the same from a tar (any compression)
names_in_tar() {
	python3 - "$1" <<'PY'
import sys, tarfile
out = []
with tarfile.open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as t:
    for m in t.getmembers():
        n = m.name.encode("utf-8", "surrogateescape").lstrip(b"./")
        p = b"usr/share/names/"
        if n.startswith(p) and len(n) > len(p):
            out.append(n[len(p):].rstrip(b"/").hex())
print("\n".join(sorted(out)))
PY
}

# the expected names (bytes, hex, sorted), relative to usr/share/names
names_in_dir "$c/tree" >"$T/want"
names_in_dir "$T/pkg" >"$T/want-deb"

# check_tree DIR WHAT: names, contents and the symlink target are as made
check_tree() {
	local d=$1/usr/share/names
	names_in_dir "$1" >"$T/got"
	cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "$2: names differ"; }
	[ "$(cat "$d/$LAT")" = latin1 ] || fail "$2: content of the Latin-1 name"
	[ "$(cat "$d/$UTF")" = utf8 ] || fail "$2: content of the UTF-8 name"
	[ ! -e "$d/$NL" ] || [ "$(cat "$d/$NL")" = newline ] || fail "$2: content of the name with a newline"
	[ "$(cat "$d/$LAT.d/$UTF")" = inner ] || fail "$2: content below the Latin-1 directory"
	[ "$(readlink "$d/link-$UTF")" = "$LAT" ] || fail "$2: symlink target"
}

for src in "deb: names.deb" "archive: pax.tar" "archive: gnu.tar" "files: [{src: tree/usr/, dest: /usr/}]"; do
	printf 'forge: 1\nname: names\nlayers:\n  - %s\n' "$src" >"$c/names.yaml"
	d_c=$(LANG=C LC_ALL=C f build -q --no-cache "$c/names.yaml") || fail "$src: build under LANG=C"
	d_u=$(LANG=C.UTF-8 LC_ALL=C.UTF-8 f build -q --no-cache "$c/names.yaml") ||
		fail "$src: build under LANG=C.UTF-8"
	[ "$d_c" = "$d_u" ] || fail "$src: the image depends on the locale ($d_c, $d_u)"
	blob=$STORE/blobs/sha256/$(f inspect "$d_c" | jq -r '.layers[0].digest' | cut -d: -f2)
	zstd -dc "$blob" >"$T/layer.tar"
	names_in_tar "$T/layer.tar" >"$T/got"
	want=$T/want
	[ "$src" != "deb: names.deb" ] || want=$T/want-deb
	cmp -s "$want" "$T/got" || { diff "$want" "$T/got"; fail "$src: layer names differ"; }
	# hdrcharset=BINARY where a name is not ASCII, and only there
	python3 - "$T/layer.tar" <<'PY' || fail "$src: pax headers"
import sys, tarfile
with tarfile.open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as t:
    for m in t.getmembers():
        raw = m.name.encode("utf-8", "surrogateescape") + m.linkname.encode("utf-8", "surrogateescape")
        binary = m.pax_headers.get("hdrcharset") == "BINARY"
        if binary != (max(raw) > 127):
            sys.exit("%r: hdrcharset %r" % (raw, m.pax_headers.get("hdrcharset")))
PY
	rm -rf "$T/gnu" && mkdir "$T/gnu" && tar --warning=no-unknown-keyword -xf "$T/layer.tar" -C "$T/gnu"
	names_in_dir "$T/gnu" >"$T/got"
	cmp -s "$want" "$T/got" || fail "$src: names extracted by GNU tar differ"
done

# export and import, in both locales, with the files: image
for loc in C C.UTF-8; do
	export LANG=$loc LC_ALL=$loc
	rm -rf "$T/x" && mkdir "$T/x"
	f export names --format dir -o "$T/x/dir" >/dev/null || fail "$loc: export dir"
	check_tree "$T/x/dir" "$loc: export dir"
	f export names --format tar -o "$T/x/root.tar" >/dev/null || fail "$loc: export tar"
	names_in_tar "$T/x/root.tar" >"$T/got"
	cmp -s "$T/want" "$T/got" || { diff "$T/want" "$T/got"; fail "$loc: export tar names"; }
	mkdir "$T/x/t" && tar --warning=no-unknown-keyword -xf "$T/x/root.tar" -C "$T/x/t"
	check_tree "$T/x/t" "$loc: export tar"
	for oci in oci oci.tar; do
		f export names --format oci -o "$T/x/$oci" >/dev/null || fail "$loc: export $oci"
		rm -rf "$T/store2"
		"$FORGE" --store "$T/store2" import "$T/x/$oci" --tag back:1 >/dev/null ||
			fail "$loc: import $oci"
		"$FORGE" --store "$T/store2" export back:1 --format dir -o "$T/x/back-$oci" >/dev/null ||
			fail "$loc: export of the imported $oci"
		check_tree "$T/x/back-$oci" "$loc: $oci exported, imported and exported again"
	done
done
echo "build-names: ok"

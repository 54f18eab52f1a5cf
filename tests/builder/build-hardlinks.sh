#!/usr/bin/env bash
# Hardlinks in layers: from an archive whose link name sorts before its
# target, from a files: directory and from a run: step. Each layer extracts
# with GNU tar (and bsdtar when installed) and with `forge export --format dir`,
# the names share one inode there, and the layer does not depend on the order
# the links were made in.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
mkdir -p "$c"

# same_inode DIR NAME...: all names are one file with that many links
same_inode() {
	local dir=$1 first
	shift
	first=$(stat -c %i "$dir/$1")
	for n in "$@"; do
		[ "$(stat -c %i "$dir/$n")" = "$first" ] || fail "$dir: '$n' is not a hardlink of '$1'"
		[ "$(stat -c %h "$dir/$n")" = "$#" ] || fail "$dir/$n: $(stat -c %h "$dir/$n") links, expected $#"
	done
}

# check_layer IMAGE INDEX NAME...: the layer's tar extracts (GNU tar, bsdtar)
# into names sharing one inode; the first name is a file, the others links to it
check_layer() {
	local img=$1 idx=$2 blob
	shift 2
	blob=$STORE/blobs/sha256/$(f inspect "$img" | jq -r ".layers[$idx].digest" | cut -d: -f2)
	zstd -dc "$blob" >"$T/layer.tar"
	tar -tvf "$T/layer.tar" >"$T/list"
	grep -q "^-.* $1\$" "$T/list" || { cat "$T/list"; fail "$img: '$1' is not a regular file entry"; }
	for n in "${@:2}"; do
		grep -q "^h.* $n link to $1\$" "$T/list" || { cat "$T/list"; fail "$img: '$n' is not a hardlink to '$1'"; }
	done
	rm -rf "$T/gnu" && mkdir "$T/gnu"
	tar -xf "$T/layer.tar" -C "$T/gnu" || fail "$img: GNU tar cannot extract layer $idx"
	same_inode "$T/gnu" "$@"
	if command -v bsdtar >/dev/null; then
		rm -rf "$T/bsd" && mkdir "$T/bsd"
		bsdtar -xf "$T/layer.tar" -C "$T/bsd" || fail "$img: bsdtar cannot extract layer $idx"
		same_inode "$T/bsd" "$@"
	fi
	rm -rf "$T/exp"
	f export "$img" --format dir -o "$T/exp" >/dev/null || fail "$img: forge export --format dir"
	same_inode "$T/exp" "$@"
}

# 1. an archive listing usr/bin/zz, then aa and sbin/x as hardlinks to it:
# sorted, aa comes first and must be the file
python3 - "$c/links.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as t:
    d = b"hello\n"
    ti = tarfile.TarInfo("usr/bin/zz"); ti.size = len(d); ti.mode = 0o755; t.addfile(ti, io.BytesIO(d))
    for n in ("usr/bin/aa", "sbin/x"):
        hl = tarfile.TarInfo(n); hl.type = tarfile.LNKTYPE; hl.linkname = "usr/bin/zz"; t.addfile(hl)
PY
printf 'forge: 1\nname: arch\nlayers:\n  - archive: links.tar\n' >"$c/arch.yaml"
f build -q "$c/arch.yaml" >/dev/null
check_layer arch 0 sbin/x usr/bin/aa usr/bin/zz
[ "$(cat "$T/exp/usr/bin/zz")" = hello ] || fail "archive: content"

# 2. a files: directory with one file under three names
mkdir -p "$c/app/sub"
echo data >"$c/app/z"
ln "$c/app/z" "$c/app/a"
ln "$c/app/z" "$c/app/sub/m"
echo other >"$c/app/solo"
printf 'forge: 1\nname: files\nlayers:\n  - files: [{src: app/, dest: /app/}]\n' >"$c/files.yaml"
d1=$(f build -q "$c/files.yaml")
check_layer files 0 app/a app/sub/m app/z
[ "$(stat -c %h "$T/exp/app/solo")" = 1 ] || fail "files: solo gained links"
# the same tree with the links made the other way round: the same image
rm -rf "$c/app"
mkdir -p "$c/app/sub"
echo data >"$c/app/sub/m"
ln "$c/app/sub/m" "$c/app/z"
echo other >"$c/app/solo"
ln "$c/app/z" "$c/app/a"
[ "$(f build -q --no-cache "$c/files.yaml")" = "$d1" ] || fail "files: digest depends on link order"
# hardlinks are part of the cache key: copies instead give another layer
rm "$c/app/a" && cp "$c/app/z" "$c/app/a"
d2=$(f build -q "$c/files.yaml")
[ "$d2" != "$d1" ] || fail "files: copies and hardlinks give the same image"

# 3. a run: step making hardlinks (in the overlay upper directory)
bb_context "$c"
sh_link_tar "$c/sh.tar"
cat >"$c/run.yaml" <<'Y'
forge: 1
name: runlinks
layers:
  - deb: bb.deb
  - archive: sh.tar
  - run: echo x > /z && busybox mkdir /d && busybox ln /z /d/b && busybox ln /z /a
Y
d3=$(f build -q "$c/run.yaml")
check_layer runlinks 2 a d/b z
f build --check "$c/run.yaml" >"$T/chk" 2>&1 || { cat "$T/chk"; fail "run: --check"; }
[ "$(f build -q "$c/run.yaml")" = "$d3" ] || fail "run: digest moved"
echo "build-hardlinks: ok"

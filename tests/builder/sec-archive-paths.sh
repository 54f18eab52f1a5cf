#!/usr/bin/env bash
# Hostile paths in archives and .debs:
# - a name of PATH_MAX or more bytes, a component over NAME_MAX, a symlink
#   target over PATH_MAX: refused by build and check (exit 2, SPEC:LINE:COL,
#   the name cut short), where before they built into an image that nothing
#   could run or export;
# - an absolute symlink in one layer (usr/share/x -> a host directory) and a
#   file through it in the next layer (a separate .deb), and the same with a
#   relative '../../..' symlink: the build puts the file where the symlink
#   points inside the image (as dpkg would); `forge run`, `forge export
#   --format dir` and `--format tar` show it there, and nothing reaches the
#   host directory; in one archive, a file below a symlink is refused.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
H=$T/hostdir # what the symlinks aim at
mkdir -p "$c" "$H"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$c/bb.deb"
python3 - "$c" "$H" <<'PY'
import io, os, sys, tarfile
ctx, host = sys.argv[1], sys.argv[2]
def tar(name, members):
    with tarfile.open(os.path.join(ctx, name), "w", format=tarfile.PAX_FORMAT) as t:
        for n, kind, link in members:
            ti = tarfile.TarInfo(n)
            if kind == "file":
                ti.size = 6; t.addfile(ti, io.BytesIO(b"pwned\n"))
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
            else:
                ti.type = tarfile.SYMTYPE; ti.linkname = link; t.addfile(ti)
tar("long.tar", [("/".join(["d" * 200] * 25) + "/f", "file", None)])
tar("longcomp.tar", [("a/" + "c" * 256, "file", None)])
tar("longlink.tar", [("l", "link", "x" * 4096)])
tar("maxok.tar", [("a/" + "c" * 255, "file", None)])
tar("abslink.tar", [("usr/share/x", "link", host)])
tar("rellink.tar", [("usr/share/y", "link", "../../../../../../.." + host)])
tar("through.tar", [("usr/share/x/pwned", "file", None), ("usr/share/y/pwned2", "file", None)])
PY

# a .deb of DIR's tar members, for the layers that must be separate packages
deb_of() {
	local name=$1 tarball=$2 d=$T/deb-$1
	mkdir -p "$d/DEBIAN" "$d/root"
	printf 'Package: %s\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: t\n' \
		"$name" >"$d/DEBIAN/control"
	tar -xf "$tarball" -C "$d/root"
	cp -a "$d/root/." "$d/" && rm -rf "$d/root"
	dpkg-deb --root-owner-group --build "$d" "$c/$name.deb" >/dev/null
}
deb_of links "$c/abslink.tar"
tar -xf "$c/rellink.tar" -C "$T/deb-links" && dpkg-deb --root-owner-group --build "$T/deb-links" "$c/links.deb" >/dev/null
deb_of through "$c/through.tar"

for n in long longcomp longlink; do
	printf 'forge: 1\nname: %s\nlayers:\n  - archive: %s.tar\n' "$n" "$n" >"$c/$n.yaml"
	for cmd in check build; do
		expect_status 2 f $cmd "$c/$n.yaml" 2>"$T/err"
		grep -Eq "$n.yaml:4:[0-9]+: archive '$n.tar': (entry|symlink target) '.{48}\.\.\.' \([0-9]+ bytes\) is longer than Linux allows" "$T/err" ||
			{ cat "$T/err"; fail "$cmd $n: message"; }
		[ "$(wc -c <"$T/err")" -lt 400 ] || fail "$cmd $n: the whole name in the message"
	done
done
printf 'forge: 1\nname: maxok\nlayers:\n  - archive: maxok.tar\n' >"$c/maxok.yaml"
f build -q "$c/maxok.yaml" >/dev/null || fail "a 255-byte component is fine"
f export maxok --format dir -o "$T/maxok" >/dev/null || fail "export of a 255-byte component"

cat >"$c/escape.yaml" <<'Y'
forge: 1
name: escape
layers:
  - deb: bb.deb
  - deb: links.deb
  - deb: through.deb
config:
  entrypoint: [/bin/busybox]
Y
f build -q "$c/escape.yaml" >/dev/null || fail "build escape"
# the later layer's files go where the symlinks point, inside the image (as
# dpkg puts them): through usr/share/x to $H and usr/share/y to $H too
out=$(f run escape -- cat /usr/share/x/pwned /usr/share/y/pwned2 "$H/pwned" "$H/pwned2") || fail "run: $out"
[ "$out" = $'pwned\npwned\npwned\npwned' ] || fail "run: '$out'"
f export escape --format dir -o "$T/exp" >/dev/null || fail "export dir"
f export escape --format tar -o "$T/exp.tar" >/dev/null || fail "export tar"
[ -z "$(ls -A "$H")" ] || fail "a layer wrote into the host directory: $(ls "$H")"
for n in pwned pwned2; do
	[ "$(cat "$T/exp/$H/$n")" = pwned ] || fail "export dir: $H/$n is not inside the image"
	grep -qx "${H#/}/$n" <(tar -tf "$T/exp.tar") || fail "export tar: ${H#/}/$n"
done
[ "$(readlink "$T/exp/usr/share/x")" = "$H" ] || fail "export dir: the symlink changed"

# in one archive: a file below a symlink is refused
python3 - "$c/onelayer.tar" "$H" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    ti = tarfile.TarInfo("etc/x"); ti.type = tarfile.SYMTYPE; ti.linkname = sys.argv[2]; t.addfile(ti)
    ti = tarfile.TarInfo("etc/x/pwned"); ti.size = 1; t.addfile(ti, io.BytesIO(b"x"))
PY
printf 'forge: 1\nname: one\nlayers:\n  - archive: onelayer.tar\n' >"$c/one.yaml"
f build "$c/one.yaml" 2>"$T/err" && fail "a file below a symlink in one archive was built"
grep -q "'/etc/x' is not a directory but '/etc/x/pwned' is below it" "$T/err" || { cat "$T/err"; fail "one: message"; }
f check "$c/one.yaml" 2>/dev/null && fail "check accepted a file below a symlink"
[ -z "$(ls -A "$H")" ] || fail "a layer wrote into the host directory"
echo "sec-archive-paths: ok"

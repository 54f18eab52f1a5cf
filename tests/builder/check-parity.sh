#!/usr/bin/env bash
# `forge check` rejects what `forge build` rejects, before anything is
# written, with the same SPEC:LINE:COL message and exit status 2: a fake and a
# truncated .deb, an archive with '..' (also one hidden in a .deb's data.tar
# as './../x'), a hardlink out of the layer, a missing from: image, a from:
# spec that fails, and a from: loop, named in one line. Valid specs still pass.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
bb_context "$c"
echo "not a package" >"$c/fake.deb"
head -c 300000 "$c/bb.deb" >"$c/trunc.deb"
python3 - "$c" <<'PY'
import io, os, sys, tarfile
ctx = sys.argv[1]
def tar(path, members, fmt=tarfile.GNU_FORMAT):
    with tarfile.open(path, "w", format=fmt) as t:
        for name, kind, link in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = 2; t.addfile(ti, io.BytesIO(b"x\n"))
            else:
                ti.type = tarfile.LNKTYPE; ti.linkname = link; t.addfile(ti)
tar(os.path.join(ctx, "ok.tar"), [("ok", "file", None), ("h", "link", "ok")])
tar(os.path.join(ctx, "dotdot.tar"), [("ok", "file", None), ("a/../../x", "file", None)])
tar(os.path.join(ctx, "hardlink.tar"), [("ok", "file", None), ("h", "link", "../../etc/shadow")])
# a .deb whose data.tar has ./../x
os.makedirs(os.path.join(ctx, "evil"), exist_ok=True)
tar(os.path.join(ctx, "evil/data.tar"), [("./usr/ok", "file", None), ("./../x", "file", None)])
with tarfile.open(os.path.join(ctx, "evil/control.tar"), "w") as t:
    d = b"Package: evil\nVersion: 1\nArchitecture: all\nMaintainer: t\nDescription: t\n"
    ti = tarfile.TarInfo("./control"); ti.size = len(d); t.addfile(ti, io.BytesIO(d))
with open(os.path.join(ctx, "evil/debian-binary"), "w") as f:
    f.write("2.0\n")
PY
(cd "$c/evil" && ar rc ../evil.deb debian-binary control.tar data.tar)

spec() { # spec NAME LAYER-LINES...
	local n=$1
	shift
	{
		printf 'forge: 1\nname: %s\n' "$n"
		printf '%s\n' "$@"
	} >"$c/$n.yaml"
}
spec fake 'layers:' '  - deb: fake.deb'
spec trunc 'layers:' '  - deb: trunc.deb'
spec evildeb 'layers:' '  - deb: evil.deb'
spec dotdot 'layers:' '  - archive: dotdot.tar'
spec hardlink 'layers:' '  - archive: hardlink.tar'
spec noimage 'from: nosuch:v1' 'layers:' '  - deb: bb.deb'
spec badbase 'from: ./fake.yaml' 'layers:' '  - deb: bb.deb'
spec loopa 'from: ./loopb.yaml' 'layers:' '  - deb: bb.deb'
spec loopb 'from: ./loopa.yaml' 'layers:' '  - deb: bb.deb'
spec selfloop 'from: ./selfloop.yaml' 'layers:' '  - deb: bb.deb'
spec good 'layers:' '  - deb: bb.deb' '  - archive: ok.tar' '    dest: /sub/dir'
spec goodtop 'from: ./good.yaml' 'layers:' '  - archive: ok.tar'

# rejected NAME PATTERN: check and build both exit 2, say PATTERN (a grep -E
# regex) in one line, and leave the store empty
rejected() {
	local n=$1 want=$2 cmd out
	for cmd in check build; do
		rm -rf "$STORE"
		out=$(f $cmd "$c/$n.yaml" 2>&1 >/dev/null) && fail "$cmd $n: accepted"
		expect_status 2 f $cmd "$c/$n.yaml" 2>/dev/null
		grep -Eq -- "$want" <<<"$out" || fail "$cmd $n: message '$out' does not say '$want'"
		[ "$(wc -l <<<"$out")" = 1 ] || fail "$cmd $n: more than one line: $out"
		[ "${#out}" -lt 400 ] || fail "$cmd $n: a ${#out}-character message"
		if [ -d "$STORE/blobs/sha256" ] && [ -n "$(ls -A "$STORE/blobs/sha256")" ]; then
			fail "$cmd $n: wrote to the store"
		fi
	done
}
rejected fake "fake.yaml:4:[0-9]+: 'fake.deb' is not a Debian package"
rejected trunc "trunc.yaml:4:[0-9]+: .*trunc.deb.*([Tt]runcated|corrupt)"
rejected evildeb "evildeb.yaml:4:[0-9]+: .*'\./\.\./x' leaves the layer"
rejected dotdot "dotdot.yaml:4:[0-9]+: .*'a/\.\./\.\./x' leaves the layer"
rejected hardlink "hardlink.yaml:4:[0-9]+: .*hardlink 'h' -> '\.\./\.\./etc/shadow' leaves the layer"
rejected noimage "noimage.yaml:3:[0-9]+: 'from': .*nosuch:v1"
rejected badbase "fake.yaml:4:[0-9]+: 'fake.deb' is not a Debian package"
rejected loopa "loopb.yaml:3:[0-9]+: from: loop: loopa.yaml -> loopb.yaml -> loopa.yaml$"
rejected selfloop "selfloop.yaml:3:[0-9]+: from: loop: selfloop.yaml -> selfloop.yaml$"

rm -rf "$STORE"
out=$(f check "$c/goodtop.yaml") || fail "check goodtop: $out"
[ ! -d "$STORE/blobs/sha256" ] || [ -z "$(ls -A "$STORE/blobs/sha256")" ] || fail "check wrote to the store"
echo "check-parity: ok"

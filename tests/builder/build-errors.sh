#!/usr/bin/env bash
# Bad input: clear error at SPEC:LINE:COL, exit 2, and the store exactly as it was.
source "$FORGE_SRC/tests/integration/lib.sh"

c=$T/ctx
mkdir -p "$c"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$c/bb.deb"
echo hi >"$c/f"
printf 'forge: 1\nname: ok\nlayers:\n  - files: [{src: f, dest: /f}]\n' >"$c/ok.yaml"
f build -q "$c/ok.yaml" >/dev/null
snapshot() { (cd "$STORE" && find . -path ./lock -prune -o -print | sort && find . -type f ! -name lock -exec sha256sum {} + | sort); }
snapshot >"$T/before"

check_err() { # SPEC-CONTENT EXPECTED-POS EXPECTED-TEXT
	printf '%b' "$1" >"$c/bad.yaml"
	local st=0
	f build "$c/bad.yaml" >"$T/out" 2>"$T/err" || st=$?
	[ "$st" = 2 ] || { cat "$T/err"; fail "exit $st for: $3"; }
	grep -qF "bad.yaml:$2: " "$T/err" || { cat "$T/err"; fail "position $2 for: $3"; }
	grep -qF "$3" "$T/err" || { cat "$T/err"; fail "message: $3"; }
	snapshot >"$T/after"
	cmp -s "$T/before" "$T/after" || { diff "$T/before" "$T/after" || true; fail "store changed after: $3"; }
}

check_err 'forge: 1\nname: x\nlayers:\n  - deb: bb.deb\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n' 5:13 "but the spec pins"
check_err 'forge: 1\nname: x\nfrom: nosuch:v1\n' 3:7 "no image 'nosuch:v1'"
check_err 'forge: 1\nname: x\nlayers:\n  - files: [{src: ../etc, dest: /x}]\n' 4:19 "outside the build context"
check_err 'forge: 1\nname: x\nlayers:\n  - deb: f\n' 4:10 "not a Debian package"
check_err 'forge: 1\nname: x\nunknown: 1\n' 3:1 "unknown key 'unknown'"
check_err 'forge: 1\nname: x\ncontainer: {memory: lots}\n' 3:21 "expected a size"

# a spec error in a later layer, the from: chain or the vm section: found
# before the earlier layers (or the base spec) are built and written
Z=$(printf '0%.0s' $(seq 64))
tar -C "$c" -cf "$c/t.tar" f
check_err "forge: 1\nname: x\nlayers:\n  - deb: bb.deb\n  - files: [{src: f, dest: /g}]\n  - archive: t.tar\n    sha256: $Z\n" 7:13 "'t.tar' has sha256"
printf 'forge: 1\nname: base\nlayers:\n  - deb: bb.deb\n' >"$c/base.yaml"
check_err "forge: 1\nname: x\nfrom: base.yaml\nlayers:\n  - archive: t.tar\n    sha256: $Z\n" 6:13 "'t.tar' has sha256"
printf "forge: 1\nname: base\nlayers:\n  - deb: bb.deb\n  - archive: t.tar\n    sha256: $Z\n" >"$c/badbase.yaml"
check_err 'forge: 1\nname: x\nfrom: badbase.yaml\nlayers:\n  - deb: bb.deb\n' 3:7 "badbase.yaml:6:13: 't.tar' has sha256"
check_err "forge: 1\nname: x\nlayers:\n  - deb: bb.deb\nvm:\n  kernel:\n    bzimage: f\n    sha256: $Z\n" 7:5 "kernel '$c/f' has sha256"
mkdir -p "$c/d" && mkfifo "$c/d/fifo"
check_err 'forge: 1\nname: x\nlayers:\n  - deb: bb.deb\n  - files: [{src: d/, dest: /d/}]\n' 5:13 "is a special file"
rm -r "$c/d"

# hostile archives are refused at build time: names with '..'
python3 - "$c/evil.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for name in ("ok", "../../escape"):
        data = b"x"
        ti = tarfile.TarInfo(name); ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
PY
check_err 'forge: 1\nname: x\nlayers:\n  - archive: evil.tar\n' 4:14 "leaves the layer"
# absolute names and hardlinks to outside are confined
python3 - "$c/abs.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    ti = tarfile.TarInfo("/etc/abs"); ti.size = 1; t.addfile(ti, io.BytesIO(b"x"))
    hl = tarfile.TarInfo("hl"); hl.type = tarfile.LNKTYPE; hl.linkname = "/etc/passwd"; t.addfile(hl)
PY
check_err 'forge: 1\nname: x\nlayers:\n  - archive: abs.tar\n' 4:14 "not a file of this layer"

# usage errors exit 2 too
expect_status 2 f build
expect_status 2 f build --tag 'Bad Tag' "$c/ok.yaml"
printf 'forge: 1\nname: x\nlayers:\n  - deb: bb.deb\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n' >"$c/pin.yaml"
st=0; f check "$c/pin.yaml" 2>"$T/err" || st=$?
[ "$st" = 2 ] && grep -q 'pin.yaml:5:13: .*but the spec pins' "$T/err" || { cat "$T/err"; fail "check verifies pins"; }
printf 'forge: 1\nname: x\nbogus: 1\n' >"$c/bogus.yaml"
expect_status 2 f check "$c/bogus.yaml"
echo "build-errors: ok"

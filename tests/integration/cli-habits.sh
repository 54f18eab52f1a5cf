#!/usr/bin/env bash
# Command-line habits: options after the operand, `forge help CMD`, `-o -`
# for export, errors that name the wrong argument, a tab or a non-UTF-8 byte
# in a spec reported at its line:col, and `--user ''` / a bad `--hostname`
# as usage errors (exit 2).
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
bb_context "$c"
printf 'forge: 1\nname: cli\nlayers:\n  - deb: bb.deb\nconfig:\n  entrypoint: [/bin/busybox]\n' >"$c/cli.yaml"

# expect_err STATUS PATTERN CMD...: CMD exits STATUS and its stderr matches PATTERN
expect_err() {
	local want=$1 pat=$2 got=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || got=$?
	[ "$got" = "$want" ] || { cat "$T/err"; fail "'$*' exited $got, expected $want"; }
	grep -Eq -- "$pat" "$T/err" || { cat "$T/err"; fail "'$*': stderr does not match '$pat'"; }
}

# options after the operand
d=$(f build "$c/cli.yaml" --no-cache -q) || fail "build SPEC --no-cache -q"
[[ $d =~ ^sha256:[0-9a-f]{64}$ ]] || fail "build SPEC -q printed '$d'"
[ "$(f build "$c/cli.yaml" -q --tag cli:two)" = "$d" ] || fail "build SPEC -q --tag"
f inspect cli:two >/dev/null || fail "--tag after the operand was not applied"
grep -q '^usage: forge check' <(f check "$c/cli.yaml" --help) || fail "check SPEC --help"
f export cli -o "$T/x.tar" --format tar >/dev/null || fail "export IMAGE -o PATH --format"
f import "$T/x.tar" --tag nope:1 >/dev/null 2>&1 && fail "importing a rootfs tar succeeded"

# forge help CMD is CMD --help
for cmd in build check run images inspect rmi export import store; do
	a=$(f help $cmd) || fail "forge help $cmd exited $?"
	b=$(f $cmd --help) || fail "forge $cmd --help exited $?"
	[ "$a" = "$b" ] || fail "forge help $cmd differs from forge $cmd --help"
	[[ $a == usage:* ]] || fail "forge help $cmd: '$a'"
done
expect_err 2 "unknown command 'nosuch'" f help nosuch

# -o -: the same bytes as -o FILE, nothing else on stdout
f export cli --format tar -o - >"$T/std.tar" 2>"$T/err" || fail "export tar -o -"
cmp -s "$T/std.tar" "$T/x.tar" || fail "export tar -o - differs from -o FILE"
f export cli --format oci -o "$T/o.tar" >/dev/null
f export cli --format oci -o - >"$T/ostd.tar" 2>/dev/null || fail "export oci -o -"
cmp -s "$T/ostd.tar" "$T/o.tar" || fail "export oci -o - differs from -o FILE.tar"
grep -qx index.json <(tar -tf "$T/ostd.tar") || fail "export oci -o - is not an OCI tar"
expect_err 2 "-o - \\(stdout\\) is for --format tar or oci" f export cli --format dir -o -
# a reader that stops early: an error, and nothing left in the store's tmp/
st=0
f export cli --format tar -o - 2>/dev/null | head -c 10 >/dev/null || st=$?
[ -z "$(ls -A "$STORE/tmp")" ] || fail "export -o - | head left $(ls "$STORE/tmp") in the store"

# errors name the wrong argument
expect_err 2 "unknown option '--bogus'" f build --bogus "$c/cli.yaml"
expect_err 2 "unknown option '--bogus'" f build "$c/cli.yaml" --bogus
expect_err 2 "unknown option '-Z'" f build -Z "$c/cli.yaml"
expect_err 2 "option '--tag' needs a value" f build "$c/cli.yaml" --tag
expect_err 2 "unexpected argument 'extra'" f build "$c/cli.yaml" extra
expect_err 2 "missing SPEC" f check
expect_err 2 "unexpected argument 'b.yaml'" f check a.yaml b.yaml
expect_err 2 "unknown option '--nope'" f inspect cli --nope
expect_err 2 "unknown option '--all'" f rmi --all
expect_err 2 "unknown option '--x'" f export cli --format tar -o "$T/y.tar" --x
expect_err 2 "option '-o' needs a value" f export cli --format tar -o
expect_err 2 "unknown --format 'zip'" f export cli --format zip -o "$T/z"
expect_err 2 "unknown option '--bogus'" f import "$T/x.tar" --bogus
expect_err 2 "option '--memory' needs a value" f run --memory
expect_err 2 "unknown option '--frob'" f run --frob cli

# a tab, a byte that is not UTF-8: at their line:col
printf 'forge: 1\nname: tab\nlayers:\n\t- deb: bb.deb\n' >"$c/tab.yaml"
expect_err 2 "tab.yaml:4:1: a tab character in the indentation" f check "$c/tab.yaml"
printf 'forge: 1\nname: tab\nlayers:\n  - deb: bb.deb\n  \t  dest: /x\n' >"$c/tab2.yaml"
expect_err 2 "tab2.yaml:5:3: a tab character in the indentation" f build "$c/tab2.yaml"
printf 'forge: 1\nname: latin\n# caf\xe9\nlayers: []\n' >"$c/latin.yaml"
expect_err 2 "latin.yaml:3:6: byte 0xe9 is not UTF-8" f check "$c/latin.yaml"
printf 'forge: 1\nname: latin\nlayers:\n  - deb: "bb\xc3.deb"\n' >"$c/latin2.yaml"
expect_err 2 "latin2.yaml:4:13: byte 0xc3 is not UTF-8" f build "$c/latin2.yaml"
printf 'forge: 1\nname: utf\nlayers:\n  - deb: bb.deb\n    name: "caf\xc3\xa9 \xe2\x82\xac"\n' >"$c/utf.yaml"
f check "$c/utf.yaml" >/dev/null || fail "valid UTF-8 in a spec refused"

# --user '' and a bad --hostname: usage errors, the container never starts
expect_err 2 "--user wants a NAME or UID\\[:GID\\], got ''" f run --user '' cli -- true
for h in bad_name -lead trail- a..b "$(printf 'x%.0s' $(seq 65))" ''; do
	expect_err 2 "--hostname wants a host name" f run --hostname "$h" cli -- true
done
# the same for a VM, before any disk is looked for
expect_err 2 "--user wants a NAME or UID" f run --as vm --user '' cli -- true
expect_err 2 "--hostname wants a host name" f run --as vm --hostname bad_name cli -- true
out=$(f run --hostname ok-1.example cli -- hostname) || fail "a valid --hostname"
[ "$out" = ok-1.example ] || fail "hostname printed '$out'"
echo "cli-habits: ok"

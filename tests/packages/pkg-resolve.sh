#!/usr/bin/env bash
# forge lock against a repository the test builds, signs and serves on
# 127.0.0.1: resolution (versions, alternatives, virtual packages, pins,
# recommends), the lock's form, and every way the repository can be wrong.
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"

make_repo
start_server
URL=http://127.0.0.1:$PORT
C=$T/ctx

lockof() { jq -r "$2" "$C/$1.yaml.lock"; }
names() { jq -r '.packages.layers[].packages[] | "\(.name)=\(.version)"' "$C/$1.yaml.lock" | sort | tr '\n' ' '; }

# -- resolve: Depends with a version, Pre-Depends, an alternative
write_spec a "$URL" "  - name: app" "    packages: [app]" "    essential: false"
f lock "$C/a.yaml" >"$T/out" || fail "forge lock failed"
grep -q "a.yaml.lock: 4 packages" "$T/out" || fail "lock output: $(cat "$T/out")"
# (of "tiny-mta | other-mta" the first, as apt chooses, though other-mta sorts first)
got=$(names a)
[ "$got" = "app=1.0 libfoo1=2.0 pre-tool=1.0 tiny-mta=1.0 " ] || fail "resolved set: $got"
# dpkg's order: what app pre-depends on and depends on comes before it
[ "$(lockof a '.packages.layers[0].packages[-1].name')" = app ] || fail "app is not installed last"
# what the lock records, and what it must not
[ "$(lockof a '.packages.layers[0].packages[] | select(.name=="libfoo1") | .filename')" = pool/main/libfoo1_2.0_${ARCH}.deb ] ||
	fail "filename"
want=$(sha256sum "$REPO/pool/main/libfoo1_2.0_${ARCH}.deb" | cut -d' ' -f1)
[ "$(lockof a '.packages.layers[0].packages[] | select(.name=="libfoo1") | .sha256')" = "sha256:$want" ] || fail "sha256"
[ "$(lockof a '.packages.layers[0].packages[] | select(.name=="libfoo1") | .size')" = "$(stat -c %s "$REPO/pool/main/libfoo1_2.0_${ARCH}.deb")" ] ||
	fail "size"
[ "$(lockof a '.packages.repositories[0].inrelease_sha256')" = "sha256:$(sha256sum "$REPO/dists/$SUITE/InRelease" | cut -d' ' -f1)" ] ||
	fail "InRelease digest"
grep -q '"date": "' "$C/a.yaml.lock" || fail "no Date"
! grep -q 127.0.0.1 "$C/a.yaml.lock" || fail "the lock names a host"
# canonical: sorted keys, same bytes when locked again; other owners' keys kept
jq -S . "$C/a.yaml.lock" | cmp -s - "$C/a.yaml.lock" || fail "the lock is not sorted and indented"
cp "$C/a.yaml.lock" "$T/lock1"
jq '. + {"from": {"digest": "sha256:1234"}}' "$T/lock1" >"$C/a.yaml.lock"
f lock "$C/a.yaml" >/dev/null
[ "$(lockof a '.from.digest')" = sha256:1234 ] || fail "forge lock dropped a key it does not own"
jq 'del(.from)' "$C/a.yaml.lock" | cmp -s - <(jq . "$T/lock1") || fail "the lock changed when locked again"

# -- a pin, a virtual package, recommends
write_spec p "$URL" "  - packages: [\"libfoo1 (= 1.0)\"]" "    essential: false"
f lock "$C/p.yaml" >/dev/null
[ "$(names p)" = "libfoo1=1.0 " ] || fail "pin: $(names p)"
write_spec v "$URL" "  - packages: [mail-transport-agent]" "    essential: false"
f lock "$C/v.yaml" >/dev/null
case $(names v) in "tiny-mta=1.0 " | "other-mta=1.0 ") ;; *) fail "virtual: $(names v)" ;; esac
write_spec r "$URL" "  - packages: [suggester]" "    essential: false"
f lock "$C/r.yaml" >/dev/null
[ "$(names r)" = "suggester=1.0 " ] || fail "recommends were installed: $(names r)"
write_spec r "$URL" "  - packages: [suggester]" "    essential: false" "    recommends: true"
f lock "$C/r.yaml" >/dev/null
[ "$(names r)" = "pre-tool=1.0 suggester=1.0 " ] || fail "recommends: $(names r)"
# a second layer builds on the first: nothing twice
write_spec two "$URL" "  - packages: [libfoo1]" "    essential: false" "  - packages: [hello-post]" "    essential: false"
f lock "$C/two.yaml" >/dev/null
[ "$(jq -r '.packages.layers[1].packages[].name' "$C/two.yaml.lock" | tr '\n' ' ')" = "hello-post " ] ||
	fail "second layer: $(jq -c '.packages.layers[1].packages' "$C/two.yaml.lock")"

# -- the same from a file: URL
write_spec fa "file://$REPO" "  - packages: [app]" "    essential: false"
f lock "$C/fa.yaml" >/dev/null || fail "file: repository"
diff <(jq -S ".packages.layers[].packages" "$C/fa.yaml.lock") <(jq -S ".packages.layers[].packages" "$C/a.yaml.lock") >&2 || fail "file: resolves differently"

# -- repositories: [host], the machine's apt configuration (here a root of the test's own)
mkdir -p "$T/apt1/etc/apt/sources.list.d"
echo "deb [signed-by=$C/keys/repo.gpg] $URL $SUITE main" >"$T/apt1/etc/apt/sources.list"
printf 'forge: 1\nname: h\nrepositories: [host]\nlayers:\n  - packages: [app]\n    essential: false\n' >"$C/h.yaml"
FORGE_APT_ROOT=$T/apt1 f lock "$C/h.yaml" >/dev/null || fail "host: one-line sources.list"
diff <(jq -S ".packages.layers[].packages" "$C/h.yaml.lock") <(jq -S ".packages.layers[].packages" "$C/a.yaml.lock") >&2 ||
	fail "host resolves differently"
! grep -q 127.0.0.1 "$C/h.yaml.lock" || fail "the lock names the host's mirror"
# deb822 with the key inline in Signed-By, after a disabled stanza
mkdir -p "$T/apt2/etc/apt/sources.list.d"
{
	printf 'Types: deb\nURIs: http://127.0.0.1:1/\nSuites: x\nComponents: main\nEnabled: no\n\n'
	printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By:\n' "$URL" "$SUITE"
	sed 's/^$/./; s/^/ /' "$C/keys/repo.asc"
} >"$T/apt2/etc/apt/sources.list.d/test.sources"
FORGE_APT_ROOT=$T/apt2 f lock "$C/h.yaml" >/dev/null || fail "host: deb822 with an inline key"
[ "$(jq -r '.packages.repositories | length' "$C/h.yaml.lock")" = 1 ] || fail "host: the disabled stanza was used"
# a host source signed by a key apt does not trust
mkdir -p "$T/apt3/etc/apt"
echo "deb $URL $SUITE main" >"$T/apt3/etc/apt/sources.list"
expect_status 1 env FORGE_APT_ROOT="$T/apt3" "$FORGE" --store "$STORE" lock "$C/h.yaml" 2>"$T/err"
grep -q "no key to check\|signature is not valid" "$T/err" || fail "host without a key: $(cat "$T/err")"

# -- spec errors: exit 2 with SPEC:LINE:COL
write_spec u "$URL" "  - packages: [app, no-such-package]" "    essential: false"
expect_status 2 f lock "$C/u.yaml" 2>"$T/err"
grep -q "u.yaml:9:21: package 'no-such-package' is not in any repository" "$T/err" || fail "unknown: $(cat "$T/err")"
[ ! -e "$C/u.yaml.lock" ] || fail "a lock was written"
write_spec c "$URL" "  - packages: [app, enemy]" "    essential: false"
expect_status 2 f lock "$C/c.yaml" 2>"$T/err"
grep -q "cannot be installed together" "$T/err" && grep -q "enemy" "$T/err" && grep -q "app" "$T/err" ||
	fail "conflict: $(cat "$T/err")"
write_spec b "$URL" "  - packages: [broken]" "    essential: false"
expect_status 2 f lock "$C/b.yaml" 2>"$T/err"
grep -q "nothing provides does-not-exist" "$T/err" || fail "unsatisfiable: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -le 8 ] || fail "the explanation is long: $(cat "$T/err")"
write_spec bad "$URL" "  - packages: [\"app (~ 1)\"]"
expect_status 2 f lock "$C/bad.yaml" 2>"$T/err"
grep -q "bad.yaml:9:16: package 'app (~ 1)' is not valid" "$T/err" || fail "bad request: $(cat "$T/err")"
printf 'forge: 1\nname: norepo\nlayers:\n  - packages: [app]\n' >"$C/norepo.yaml"
expect_status 2 f lock "$C/norepo.yaml" 2>"$T/err"
grep -q "norepo.yaml:4:5: a 'packages' layer needs 'repositories'" "$T/err" || fail "no repositories: $(cat "$T/err")"

# -- a stale lock, --locked
f build -q "$C/a.yaml" >/dev/null || fail "build from the lock"
write_spec a "$URL" "  - name: app" "    packages: [app, hello-post]" "    essential: false"
expect_status 2 f build "$C/a.yaml" 2>"$T/err"
grep -qF "forge: $C/a.yaml.lock is out of date (layer 'app' asks for 'hello-post'): run 'forge lock $C/a.yaml'" "$T/err" ||
	fail "stale: $(cat "$T/err")"
expect_status 2 f build --locked "$C/a.yaml" 2>/dev/null
rm "$C/a.yaml.lock"
expect_status 2 f build --locked "$C/a.yaml" 2>"$T/err"
grep -q "a.yaml.lock is missing" "$T/err" || fail "--locked without a lock: $(cat "$T/err")"
[ ! -e "$C/a.yaml.lock" ] || fail "--locked wrote a lock"
f build -q "$C/a.yaml" >/dev/null || fail "build without a lock"
[ -s "$C/a.yaml.lock" ] || fail "build did not write the lock"
f build -q --locked "$C/a.yaml" >/dev/null || fail "--locked with a fresh lock"

# a lock someone else started (a pinned base image) gets a packages part, keeping theirs
echo '{"from": {"digest": "sha256:1"}}' >"$C/v.yaml.lock"
expect_status 2 f build --locked -q "$C/v.yaml" 2>"$T/err"
grep -q "v.yaml.lock is out of date (it has no packages)" "$T/err" || fail "--locked, no packages part: $(cat "$T/err")"
f build -q "$C/v.yaml" >/dev/null || fail "build with a lock without packages"
[ "$(jq -r .from.digest "$C/v.yaml.lock")" = sha256:1 ] || fail "the build dropped the lock's other keys"
jq -e '.packages.layers[0].packages[0].name' "$C/v.yaml.lock" >/dev/null || fail "no packages part written"

# -- a bad signature: signed by another key
cp -a "$REPO/dists" "$T/dists.good"
GNUPGHOME=$T/other mkdir -p "$T/other" && chmod 700 "$T/other"
GNUPGHOME=$T/other gpg --batch --quiet --passphrase '' --quick-gen-key intruder ed25519 sign never 2>/dev/null
GNUPGHOME=$T/other gpg --batch --yes --clearsign -o "$REPO/dists/$SUITE/InRelease" "$REPO/dists/$SUITE/Release"
expect_status 1 f lock "$C/p.yaml" 2>"$T/err"
grep -q "dists/$SUITE/InRelease': the signature is not valid" "$T/err" || fail "bad signature: $(cat "$T/err")"
# signed text changed after signing
rm -rf "$REPO/dists" && cp -a "$T/dists.good" "$REPO/dists"
sed -i 's/^Suite: testing/Suite: testinh/' "$REPO/dists/$SUITE/InRelease"
expect_status 1 f lock "$C/p.yaml" 2>"$T/err"
grep -q "the signature is not valid" "$T/err" || fail "changed InRelease: $(cat "$T/err")"
# -- a tampered Packages index
rm -rf "$REPO/dists" && cp -a "$T/dists.good" "$REPO/dists"
xz -dc "$REPO/dists/$SUITE/main/binary-$ARCH/Packages.xz" | sed 's/^Version: 2.0/Version: 9.0/' | xz >"$T/P.xz"
cp "$T/P.xz" "$REPO/dists/$SUITE/main/binary-$ARCH/Packages.xz"
expect_status 1 f lock "$C/p.yaml" 2>"$T/err"
grep -q "Packages.xz" "$T/err" || fail "tampered Packages: $(cat "$T/err")"
# -- an expired Valid-Until, and the opt-out for snapshot archives
rm -rf "$REPO/dists" && cp -a "$T/dists.good" "$REPO/dists"
sed -i '/^Date:/a Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC' "$REPO/dists/$SUITE/Release"
gpg --batch --yes --local-user forge-test --clearsign -o "$REPO/dists/$SUITE/InRelease" "$REPO/dists/$SUITE/Release"
expect_status 1 f lock "$C/p.yaml" 2>"$T/err"
grep -q "expired on Sat, 01 Jan 2000" "$T/err" || fail "Valid-Until: $(cat "$T/err")"
sed -i 's|keyring: keys/repo.gpg|keyring: keys/repo.asc\n    check_valid_until: false|' "$C/p.yaml"
f lock "$C/p.yaml" >/dev/null || fail "check_valid_until: false, an armored key"
rm -rf "$REPO/dists" && cp -a "$T/dists.good" "$REPO/dists"

# -- a hostile (but validly signed) index: a Filename leaving the repository, a
# package name that would leave dpkg's info directory
xz -dc "$REPO/dists/$SUITE/main/binary-$ARCH/Packages.xz" >"$T/P"
sed -i 's|^Filename: pool/main/pre-tool_1.0_all.deb|Filename: ../../../etc/pre-tool.deb|' "$T/P"
printf 'Package: ../evil\nVersion: 1.0\nArchitecture: all\nFilename: pool/main/evil.deb\nSize: 1\nSHA256: %064d\nDescription: x\n\n' 0 >>"$T/P"
resign() {
	xz -c "$T/P" >"$REPO/dists/$SUITE/main/binary-$ARCH/Packages.xz"
	cp "$T/P" "$REPO/dists/$SUITE/main/binary-$ARCH/Packages"
	(cd "$REPO/dists/$SUITE" && apt-ftparchive -o APT::FTPArchive::Release::Suite=$SUITE release . >Release)
	gpg --batch --yes --local-user forge-test --clearsign -o "$REPO/dists/$SUITE/InRelease" "$REPO/dists/$SUITE/Release"
}
resign
write_spec e1 "$URL" "  - packages: [pre-tool]" "    essential: false"
expect_status 1 f lock "$C/e1.yaml" 2>"$T/err"
grep -q "Filename '../../../etc/pre-tool.deb' is not a path inside the repository" "$T/err" || fail "hostile Filename: $(cat "$T/err")"
rm -rf "$REPO/dists" && cp -a "$T/dists.good" "$REPO/dists"

# -- the server down
stop_server
expect_status 1 f lock "$C/v.yaml" 2>"$T/err"
grep -q "127.0.0.1:$PORT/dists/$SUITE/InRelease" "$T/err" || fail "server down: $(cat "$T/err")"
echo "pkg-resolve: ok"

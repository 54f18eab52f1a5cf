#!/usr/bin/env bash
# essential: true: the Essential set is unpacked and the image's own dpkg
# installs everything in the build sandbox (no network), maintainer scripts
# included; the same lock gives the same layer in another store, directory
# and umask, and forge build --check passes.
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"
need_root

make_repo essential
start_server
URL=http://127.0.0.1:$PORT
C=$T/ctx

write_spec e "$URL" "  - name: base" "    packages: [hello-post, app]"
f build "$C/e.yaml" >"$T/out" 2>&1 || fail "build: $(cat "$T/out")"
jq -r '.packages.layers[0].packages[] | select(.essential) | .name' "$C/e.yaml.lock" | sort | tr '\n' ' ' >"$T/ess"
[ "$(cat "$T/ess")" = "base-test dpkg-test " ] || fail "Essential set: $(cat "$T/ess")"
f export e --format dir -o "$T/root"
# the postinst ran, in the sandbox
[ "$(cat "$T/root/var/lib/hello-post/state")" = "configured configure" ] || fail "postinst did not run"
[ -e "$T/root/bin/sh" ] || fail "no /bin/sh"
# dpkg's own database, as dpkg left it
dpkg --root="$T/root" -l >"$T/l" 2>&1
for p in app libfoo1:$ARCH pre-tool hello-post base-test dpkg-test; do
	grep -q "^ii  $p " "$T/l" || fail "dpkg -l: no $p: $(cat "$T/l")"
done
# the .debs and the logs are gone; no machine id or aux-cache left behind
[ ! -e "$T/root/var/cache/forge-debs" ] || fail ".debs left in the image"
[ ! -e "$T/root/var/log/dpkg.log" ] || fail "dpkg.log left in the image"
[ ! -e "$T/root/var/lib/dpkg/status-old" ] || fail "status-old left in the image"
# the image's dpkg works inside it
f run e -- /usr/bin/dpkg -S /usr/bin/app >"$T/s" 2>&1 || fail "dpkg -S in the image: $(cat "$T/s")"
grep -q "^app: /usr/bin/app" "$T/s" || fail "dpkg -S: $(cat "$T/s")"
f run e -- /usr/bin/dpkg-query -W -f='${Package} ${Status}\n' hello-post >"$T/q" 2>&1
grep -q "^hello-post install ok installed" "$T/q" || fail "dpkg-query in the image: $(cat "$T/q")"
# no network in the sandbox: a postinst that reaches out fails the build
r=$(pkgroot netcheck 1.0); mkdir -p "$r/DEBIAN"
printf '#!/bin/sh\nset -e\n[ "$(ls /sys/class/net)" = lo ]\n' >"$r/DEBIAN/postinst"; chmod 755 "$r/DEBIAN/postinst"
mkpkg netcheck 1.0 all
r=$(pkgroot failing 1.0); mkdir -p "$r/DEBIAN"
printf '#!/bin/sh\necho failing postinst >&2\nexit 3\n' >"$r/DEBIAN/postinst"; chmod 755 "$r/DEBIAN/postinst"
mkpkg failing 1.0 all
make_index
write_spec n "$URL" "  - packages: [netcheck]"
f build -q "$C/n.yaml" >/dev/null 2>"$T/err" || fail "a postinst saw a network: $(cat "$T/err")"
write_spec x "$URL" "  - packages: [failing]"
expect_status 1 f build -q "$C/x.yaml" 2>"$T/err"
grep -q "failing postinst" "$T/err" && grep -q "dpkg failed" "$T/err" || fail "failing postinst: $(cat "$T/err")"

# -- reproducible: --check, and the same layer from the lock in another store,
# directory and umask
f build --check -q "$C/e.yaml" >/dev/null 2>"$T/err" || fail "--check: $(cat "$T/err")"
layer1=$(f inspect e | grep -o 'sha256:[0-9a-f]\{64\}' | sed -n 2p)
mkdir -p "$T/elsewhere"
cp -r "$C/keys" "$T/elsewhere/"
cp "$C/e.yaml" "$C/e.yaml.lock" "$T/elsewhere/"
(umask 077 && STORE=$T/store3 f build -q "$T/elsewhere/e.yaml" >/dev/null 2>"$T/err") || fail "another store: $(cat "$T/err")"
layer2=$(STORE=$T/store3 f inspect e | grep -o 'sha256:[0-9a-f]\{64\}' | sed -n 2p)
[ -n "$layer1" ] && [ "$layer1" = "$layer2" ] || fail "another store gave another layer: $layer1 vs $layer2"

# -- a later packages: layer uses the dpkg the first one installed
write_spec t "$URL" "  - packages: [libfoo1]" "  - packages: [hello-post]"
f build -q "$C/t.yaml" >/dev/null 2>"$T/err" || fail "two layers: $(cat "$T/err")"
f export t --format dir -o "$T/t"
[ -e "$T/t/var/lib/hello-post/state" ] || fail "the second layer's postinst did not run"
dpkg --root="$T/t" -l | grep -q "^ii  libfoo1:$ARCH" || fail "the second layer lost libfoo1"
echo "pkg-dpkg: ok"

#!/usr/bin/env bash
# What an image built from packages: layers leaves for later use of Debian's
# tools: apt-get update && apt-get install inside it (network host, the test
# repository on the host's 127.0.0.1), and an essential: false layer over a
# from: base whose dpkg database it extends instead of replacing.
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"
need_root
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

make_key
make_packages
make_essential
make_apt
make_index
start_server
URL=http://127.0.0.1:$PORT
C=$T/ctx

# -- apt-get install in the image: apt-test's own dpkg database says apt is
# installed, the image's sources.list names the repository, and apt-get
# verifies InRelease with the image's gpgv against the key in the image
# (/usr/bin/dpkg by its path: busybox's sh prefers its own dpkg applet)
mkdir -p "$C/apt/sources.list.d" "$C/apt/keyrings"
cp "$C/keys/repo.gpg" "$C/apt/keyrings/forge-test.gpg"
echo "deb [signed-by=/etc/apt/keyrings/forge-test.gpg] $URL $SUITE main" >"$C/apt/sources.list.d/test.list"
write_spec apt "$URL" "  - name: apt" "    packages: [apt-test]" \
	"  - files: [{src: apt/, dest: /etc/apt/}]"
f build -q "$C/apt.yaml" >/dev/null 2>"$T/err" || fail "build: $(cat "$T/err")"
f run --network host apt -- /bin/sh -c 'apt-get update && apt-get install -y hello-post && echo ==== &&
	/usr/bin/dpkg -l hello-post && dpkg-query -W -f="\${db:Status-Abbrev}\${binary:Package} \${Version}\n" libfoo1 &&
	/usr/bin/dpkg -S /usr/lib/libfoo.txt && cat /var/lib/hello-post/state' >"$T/apt.out" 2>&1 ||
	fail "apt-get in the image: $(cat "$T/apt.out")"
sed -n '/^====$/,$p' "$T/apt.out" >"$T/after"
grep -q "^ii  hello-post  *1.0 " "$T/after" || fail "dpkg -l hello-post: $(cat "$T/apt.out")"
grep -qx "ii libfoo1:$ARCH 2.0" "$T/after" || fail "apt-get did not install the dependency: $(cat "$T/after")"
grep -qx "libfoo1:$ARCH: /usr/lib/libfoo.txt" "$T/after" || fail "dpkg -S after apt-get: $(cat "$T/after")"
grep -qx "configured configure" "$T/after" || fail "hello-post's postinst did not run under apt-get: $(cat "$T/after")"
grep -q "GET /pool/main/hello-post_1.0_all.deb" "$T/server.log" || fail "apt-get did not fetch from the test repository"
grep -q "GET /pool/main/libfoo1_2.0_$ARCH.deb" "$T/server.log" || fail "apt-get did not fetch libfoo1 2.0"
echo "pkg-apt: apt ok"

# -- essential: false over a from: base with a dpkg database: the layer's
# status keeps the base's packages (and their info/*.list stay), so dpkg
# sees both, and apt-get still works over it
write_spec over "$URL" "  - name: app" "    packages: [app]" "    essential: false"
sed -i '2a from: ./apt.yaml' "$C/over.yaml"
f build -q "$C/over.yaml" >/dev/null 2>"$T/err" || fail "build over the apt image: $(cat "$T/err")"
f export over --format dir -o "$T/over"
dpkg --root="$T/over" -l >"$T/l" 2>&1
for p in base-test dpkg-test apt-test app libfoo1:$ARCH pre-tool tiny-mta; do
	grep -q "^ii  $p " "$T/l" || fail "dpkg -l over the base: no $p: $(cat "$T/l")"
done
[ "$(dpkg --root="$T/over" -S /usr/bin/apt-get)" = "apt-test: /usr/bin/apt-get" ] || fail "dpkg -S of a base file"
[ "$(dpkg --root="$T/over" -S /usr/bin/app)" = "app: /usr/bin/app" ] || fail "dpkg -S of the layer's file"
dpkg --root="$T/over" --audit >"$T/audit" 2>&1
[ ! -s "$T/audit" ] || fail "dpkg --audit over the base: $(cat "$T/audit")"
[ "$(grep -c '^Package: ' "$T/over/var/lib/dpkg/status")" = 7 ] || fail "status: $(grep '^Package: ' "$T/over/var/lib/dpkg/status")"
f run --network host over -- /bin/sh -c 'apt-get update -qq && apt-get install -y -qq hello-post && /usr/bin/dpkg -l hello-post app' \
	>"$T/apt2.out" 2>&1 || fail "apt-get over the merged status: $(cat "$T/apt2.out")"
grep -q "^ii  app " "$T/apt2.out" && grep -q "^ii  hello-post " "$T/apt2.out" || fail "apt-get over the merged status: $(cat "$T/apt2.out")"

# a base forge did not build (an archive with a status and info/*.list): its
# packages stay, one the layer installs again is replaced (libfoo1 1.0 -> 2.0)
B=$T/hand
mkdir -p "$B/var/lib/dpkg/info" "$B/usr/share/handmade"
echo hand >"$B/usr/share/handmade/file"
printf '/usr\n/usr/share\n/usr/share/handmade\n/usr/share/handmade/file\n' >"$B/var/lib/dpkg/info/handmade.list"
printf '/usr/lib/libfoo.txt\n' >"$B/var/lib/dpkg/info/libfoo1:$ARCH.list"
cat >"$B/var/lib/dpkg/status" <<EOS
Package: handmade
Status: install ok installed
Priority: optional
Maintainer: forge tests <tests@forge.invalid>
Architecture: all
Version: 3.1
Description: made by hand
 in a base image

Package: libfoo1
Status: install ok installed
Maintainer: forge tests <tests@forge.invalid>
Architecture: $ARCH
Multi-Arch: same
Version: 1.0
Description: the old libfoo1
EOS
tar -C "$B" -cf "$C/hand.tar" .
printf 'forge: 1\nname: hand\nlayers:\n  - archive: hand.tar\n' >"$C/hand.yaml"
write_spec overhand "$URL" "  - packages: [app]" "    essential: false"
sed -i '2a from: ./hand.yaml' "$C/overhand.yaml"
f build -q "$C/overhand.yaml" >/dev/null 2>"$T/err" || fail "build over the archive base: $(cat "$T/err")"
f export overhand --format dir -o "$T/oh"
[ "$(dpkg-query --root="$T/oh" -W -f='${Version} ${Description}' handmade)" = "3.1 made by hand
 in a base image" ] || fail "handmade: $(dpkg-query --root="$T/oh" -W handmade)"
[ "$(dpkg --root="$T/oh" -S /usr/share/handmade/file)" = "handmade: /usr/share/handmade/file" ] || fail "dpkg -S handmade"
[ "$(dpkg-query --root="$T/oh" -W -f='${Version}' libfoo1)" = 2.0 ] || fail "libfoo1 not replaced"
[ "$(grep -c '^Package: libfoo1$' "$T/oh/var/lib/dpkg/status")" = 1 ] || fail "libfoo1 twice in status"
grep -q '^Package: app$' "$T/oh/var/lib/dpkg/status" || fail "app not in status"

# a status file the layers below deleted (a whiteout) is not brought back
printf 'forge: 1\nname: gone\nfrom: ./apt.yaml\nlayers:\n  - run: rm /var/lib/dpkg/status\n' >"$C/gone.yaml"
write_spec overgone "$URL" "  - packages: [pre-tool]" "    essential: false"
sed -i '2a from: ./gone.yaml' "$C/overgone.yaml"
f build -q "$C/overgone.yaml" >/dev/null 2>"$T/err" || fail "build over a deleted status: $(cat "$T/err")"
f export overgone --format dir -o "$T/og"
[ "$(grep '^Package: ' "$T/og/var/lib/dpkg/status")" = "Package: pre-tool" ] ||
	fail "a deleted status came back: $(grep '^Package: ' "$T/og/var/lib/dpkg/status")"

# a package a run: step purged between two packages: layers stays purged
write_spec purge "$URL" "  - packages: [pre-tool]" "    essential: false" \
	"  - run: /usr/bin/dpkg --purge pre-tool" "  - packages: [tiny-mta]" "    essential: false"
sed -i '2a from: ./apt.yaml' "$C/purge.yaml"
f build -q "$C/purge.yaml" >/dev/null 2>"$T/err" || fail "build with a purge between layers: $(cat "$T/err")"
f export purge --format dir -o "$T/pu"
dpkg --root="$T/pu" -l >"$T/l" 2>&1
grep -q "^ii  tiny-mta " "$T/l" && grep -q "^ii  apt-test " "$T/l" || fail "purge: $(cat "$T/l")"
! grep -q "pre-tool" "$T/l" || fail "a purged package came back: $(cat "$T/l")"

# a hostile base: a stanza that names no valid package is exit 1 naming the file
printf 'Package: ../../etc\nStatus: install ok installed\n' >"$B/var/lib/dpkg/status"
tar -C "$B" -cf "$C/hand.tar" .
expect_status 1 f build -q "$C/overhand.yaml" 2>"$T/err"
grep -q "var/lib/dpkg/status.*stanza 1 has no valid Package field" "$T/err" || fail "hostile status: $(cat "$T/err")"
echo "pkg-apt: ok"

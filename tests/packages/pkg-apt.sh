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

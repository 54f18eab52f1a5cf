#!/usr/bin/env bash
# forge build of packages: layers with essential: false (files and a dpkg
# database, no script runs): what the layer holds, rebuilds from the lock
# (no index fetched, no .deb downloaded twice), a tampered or vanished .deb,
# gc of downloads, and a download killed half way.
source "$FORGE_TESTS/../integration/lib.sh"
source "$FORGE_TESTS/lib-repo.sh"

make_repo
r=$(pkgroot bigdata 1.0)
mkdir -p "$r/usr/share/bigdata"
head -c $((8 << 20)) /dev/urandom >"$r/usr/share/bigdata/blob"
mkpkg bigdata 1.0 all
make_index
start_server
URL=http://127.0.0.1:$PORT
C=$T/ctx

write_spec a "$URL" "  - name: app" "    packages: [app]" "    essential: false"
f build "$C/a.yaml" >"$T/out" 2>&1 || fail "build: $(cat "$T/out")"
grep -q "\[1/1\] app .* built" "$T/out" || fail "build output: $(cat "$T/out")"
[ -s "$C/a.yaml.lock" ] || fail "no lock written"
f export a --format dir -o "$T/root"
# the packages' files, with owners and modes as packaged
[ "$(cat "$T/root/usr/lib/libfoo.txt")" = two ] || fail "libfoo1 2.0 is not installed"
[ -x "$T/root/usr/bin/app" ] || fail "/usr/bin/app"
[ "$(cat "$T/root/etc/app/app.conf")" = colour=blue ] || fail "conffile"
# the dpkg database, read by the host's dpkg
dpkg --root="$T/root" -l >"$T/l" 2>&1
for p in app libfoo1:$ARCH pre-tool; do
	grep -q "^ii  $p " "$T/l" || fail "dpkg -l: no $p: $(cat "$T/l")"
done
[ "$(dpkg --root="$T/root" -S /usr/bin/app)" = "app: /usr/bin/app" ] || fail "dpkg -S"
dpkg --root="$T/root" -L libfoo1:"$ARCH" | grep -qx /usr/lib/libfoo.txt || fail "dpkg -L libfoo1"
[ "$(dpkg-query --root="$T/root" -W -f='${Conffiles}' app)" = " /etc/app/app.conf $(md5sum <"$T/root/etc/app/app.conf" | cut -d' ' -f1)" ] ||
	fail "conffile hash: $(dpkg-query --root="$T/root" -W -f='${Conffiles}' app)"
dpkg --root="$T/root" --audit >"$T/audit" 2>&1
[ ! -s "$T/audit" ] || fail "dpkg --audit: $(cat "$T/audit")"
# sorted by name, as dpkg writes it
[ "$(grep '^Package:' "$T/root/var/lib/dpkg/status" | cut -d' ' -f2 | tr '\n' ' ')" = \
	"$(grep '^Package:' "$T/root/var/lib/dpkg/status" | cut -d' ' -f2 | sort | tr '\n' ' ')" ] || fail "status order"

# -- a second build resolves nothing, downloads nothing
: >"$T/server.log.mark"
n0=$(wc -l <"$T/server.log")
f build --no-cache -q "$C/a.yaml" >/dev/null || fail "rebuild"
[ "$(wc -l <"$T/server.log")" = "$n0" ] || fail "the rebuild fetched: $(tail -n +$((n0 + 1)) "$T/server.log")"
# -- another store: only the .debs, never an index
d1=$(f build -q "$C/a.yaml")
STORE=$T/store2 f build -q "$C/a.yaml" >"$T/d2" || fail "build in another store"
[ "$(cat "$T/d2")" = "$d1" ] || fail "another store gave another image"
tail -n +$((n0 + 1)) "$T/server.log" >"$T/fetched"
! grep -q "InRelease\|Packages" "$T/fetched" || fail "a build from the lock fetched an index: $(cat "$T/fetched")"
[ "$(grep -c '\.deb' "$T/fetched")" = 4 ] || fail "expected 4 .deb downloads: $(cat "$T/fetched")"

# -- gc keeps the downloads an image needs, drops them when none does
deb=$(jq -r '.packages.layers[0].packages[] | select(.name=="app") | .sha256' "$C/a.yaml.lock")
f store gc >/dev/null
[ -e "$STORE/blobs/sha256/${deb#sha256:}" ] || fail "gc dropped a .deb of a kept image"
f rmi a >/dev/null
f store gc >/dev/null
[ ! -e "$STORE/blobs/sha256/${deb#sha256:}" ] || fail "gc kept a .deb no image needs"

# -- a tampered .deb: exit 1 naming it, nothing tagged
cp "$REPO/pool/main/app_1.0_${ARCH}.deb" "$T/app.deb.good"
cp "$REPO/pool/main/pre-tool_1.0_all.deb" "$REPO/pool/main/app_1.0_${ARCH}.deb"
expect_status 1 f build -q "$C/a.yaml" 2>"$T/err"
grep -q "package 'app' 1.0" "$T/err" && grep -q "expected $(stat -c %s "$T/app.deb.good")" "$T/err" || fail "tampered .deb: $(cat "$T/err")"
# the same size, one byte changed
cp "$T/app.deb.good" "$REPO/pool/main/app_1.0_${ARCH}.deb"
printf 'X' | dd of="$REPO/pool/main/app_1.0_${ARCH}.deb" bs=1 seek=700 conv=notrunc 2>/dev/null
expect_status 1 f build -q "$C/a.yaml" 2>"$T/err"
grep -q "package 'app' 1.0" "$T/err" && grep -qi "sha256\|digest" "$T/err" || fail "tampered .deb: $(cat "$T/err")"
expect_status 1 f inspect a 2>/dev/null
[ ! -e "$STORE/blobs/sha256/$(sha256sum "$REPO/pool/main/app_1.0_${ARCH}.deb" | cut -d' ' -f1)" ] ||
	fail "the tampered .deb is in the store"
f store verify >/dev/null || fail "store verify after a tampered download"
# -- a .deb the mirror no longer serves
rm "$REPO/pool/main/app_1.0_${ARCH}.deb"
expect_status 1 f build -q "$C/a.yaml" 2>"$T/err"
grep -qF "package 'app' 1.0 is no longer served by its repository: run 'forge lock $C/a.yaml'" "$T/err" ||
	fail "vanished .deb: $(cat "$T/err")"
cp "$T/app.deb.good" "$REPO/pool/main/app_1.0_${ARCH}.deb"
f build -q "$C/a.yaml" >/dev/null || fail "build once the .deb is back"

# -- a second packages: layer on the first keeps the whole status
write_spec two "$URL" "  - packages: [libfoo1]" "    essential: false" "  - packages: [hello-post]" "    essential: false"
f build -q "$C/two.yaml" >/dev/null || fail "two layers"
f export two --format dir -o "$T/two"
dpkg --root="$T/two" -l | grep -q "^ii  libfoo1:$ARCH" || fail "two layers: libfoo1 left the status"
dpkg --root="$T/two" -l | grep -q "^ii  hello-post" || fail "two layers: hello-post"
[ ! -e "$T/two/var/lib/hello-post/state" ] || fail "essential: false ran a maintainer script"

# -- essential: true (the default) where nothing brings a shell and dpkg
write_spec noess "$URL" "  - packages: [libfoo1]"
expect_status 2 f build -q "$C/noess.yaml" 2>"$T/err"
grep -q "'essential: true' needs a shell and dpkg in the image" "$T/err" || fail "no dpkg: $(cat "$T/err")"

# -- SIGKILL half way through a download: the store stays consistent
stop_server
cat >"$T/slow.py" <<'PY'
import http.server, sys, time
class H(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, src, dst):
        while True:
            b = src.read(1 << 16)
            if not b:
                return
            dst.write(b)
            dst.flush()
            time.sleep(0.05)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
(cd "$REPO" && exec python3 "$T/slow.py" "$PORT") >"$T/slow.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do curl -sf "$URL/dists/$SUITE/InRelease" >/dev/null 2>&1 && break; sleep 0.1; done
write_spec big "$URL" "  - packages: [bigdata]" "    essential: false"
f lock "$C/big.yaml" >/dev/null
big=$(jq -r '.packages.layers[0].packages[0].sha256' "$C/big.yaml.lock")
"$FORGE" --store "$STORE" build -q "$C/big.yaml" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "bigdata_1.0_all.deb" "$T/slow.log" && break; sleep 0.1; done
sleep 0.5
kill -0 $pid 2>/dev/null || fail "the download finished before it could be killed"
kill -KILL $pid
wait $pid 2>/dev/null || true
[ ! -e "$STORE/blobs/sha256/${big#sha256:}" ] || fail "a half download is in the store"
f store verify >/dev/null || fail "store verify after SIGKILL"
expect_status 1 f inspect big 2>/dev/null
stop_server
(cd "$REPO" && exec python3 -m http.server --bind 127.0.0.1 "$PORT") >"$T/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do curl -sf "$URL/dists/$SUITE/InRelease" >/dev/null 2>&1 && break; sleep 0.1; done
f build -q "$C/big.yaml" >/dev/null || fail "build after the killed download"
[ -e "$STORE/blobs/sha256/${big#sha256:}" ] || fail "the .deb is not in the store"
f store gc >/dev/null
f store verify >/dev/null || fail "store verify"
echo "pkg-build: ok"

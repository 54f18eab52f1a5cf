#!/bin/bash
# End to end through the store: a spec with the busybox .deb, the test helper
# (files:), a run: step and container defaults; forge run by ref and by spec
# path; layers unpacked once; spec mounts; image config; per-run upper dir
# under the store's tmp/ removed.
source "$(dirname "$0")/lib-run.sh" || exit 1

ctx=$T/ctx
mkdir -p "$ctx/debs" "$ctx/bin" "$ctx/data"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$ctx/debs/"
cp "$FORGE_TESTHELPER" "$ctx/bin/th"
cp "$BUSYBOX" "$ctx/bin/sh" # the .deb ships /bin/busybox only
echo spec-mount >"$ctx/data/file"
deb=$(cd "$ctx" && ls debs/*.deb)
cat >"$ctx/app.yaml" <<YAML
forge: 1
name: rt-app
layers:
  - deb: $deb
  - files:
      - {src: bin/th, dest: /bin/th, mode: "0755"}
      - {src: bin/sh, dest: /bin/sh, mode: "0755"}
  - run: mkdir -p /etc && echo 'carol:x:2000:2000::/:/bin/sh' > /etc/passwd && echo built > /etc/built
config:
  entrypoint: ["/bin/th"]
  cmd: ["hostname"]
  env: {PATH: /usr/sbin:/usr/bin:/sbin:/bin, GREETING: hi}
  workdir: /etc
  user: carol
  hostname: app-host
container:
  memory: 64M
  pids: 64
  mounts:
    - {src: ./data, dest: /data, ro: true}
YAML
f build -q "$ctx/app.yaml" >/dev/null || fail "forge build"
expect_line "$(f run rt-app)" "hostname=app-host"
expect_line "$(f run rt-app -- cwd)" "cwd=/etc"
expect_line "$(f run rt-app -- env GREETING)" "GREETING=hi"
expect_line "$(f run rt-app -- read /etc/built)" "built"
out=$(f run rt-app -- id)
expect_line "$out" "uid=2000"
# the spec's mounts hold when the spec is run (its own context), not when the
# image is run by name (an image carries no host paths: docs/run.md)
expect_line "$(f run "$ctx/app.yaml" -- read /data/file)" "spec-mount"
expect_line "$(f run "$ctx/app.yaml" -- write /data/x y || true)" "write=Read-only file system"
expect_line "$(f run rt-app -- read /data/file 2>&1 || true)" "cat: /data/file: No such file or directory"
expect_line "$(f run rt-app -- cgroup | grep ^memory=)" "memory=67108864"
expect_line "$(f run --user 0 --hostname other rt-app -- hostname)" "hostname=other"
# by spec path: built first, then run
expect_line "$(f run "$ctx/app.yaml" -- echo via-spec)" "via-spec"
# layers are unpacked once and shared; nothing is left in tmp/
n=$(ls "$STORE/layers" | wc -l)
f run rt-app -- true
[ "$(ls "$STORE/layers" | wc -l)" = "$n" ] || fail "layers unpacked again"
tmp_empty() { [ -z "$(ls -A "$STORE/tmp" 2>/dev/null)" ]; }
eventually tmp_empty || fail "store tmp/ not cleaned: $(ls "$STORE/tmp")"
# the clean-up after a run holds the store's lock: a gc right after the run
# waits for it (and finds the tmp/ it clears already empty)
f run rt-app -- true
f store gc >/dev/null || fail "gc after a run failed"
tmp_empty || fail "store tmp/ not empty after a run and a gc: $(ls "$STORE/tmp")"
expect_status 125 f run no-such-image
echo PASS

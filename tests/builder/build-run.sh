#!/usr/bin/env bash
# run: layers: the step runs in a container over the layers so far, its
# changes (including deletions) become a deterministic layer; a failing step
# stops the build with its status; --check names non-reproducible files.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

c=$T/ctx
bb_context "$c"
# the busybox package has no /bin/sh: a one-symlink archive provides it
sh_link_tar "$c/sh.tar"
cat >"$c/spec.yaml" <<'Y'
forge: 1
name: runs
layers:
  - deb: bb.deb
  - archive: sh.tar
  - run: /bin/busybox --install -s /bin && mkdir -p /etc && echo hi > /etc/greeting && rm -rf /usr/share/doc
  - run: echo "$GREETING" > /etc/env-step && rm /etc/greeting
    env: {GREETING: from-env}
config:
  entrypoint: [/bin/sh, -c]
  cmd: ["cat /etc/env-step; ls /etc/greeting 2>&1 || true; ls /usr/share/doc 2>&1 || true"]
Y
d1=$(f build -q "$c/spec.yaml")
out=$(f run runs)
grep -qx from-env <<<"$out" || fail "env of the step: $out"
grep -q "can't access\|No such file" <<<"$out" || fail "deletion not carried: $out"
# the deletion is an OCI whiteout in layer 4
l3=$(f inspect runs | jq -r '.layers[3].digest')
zstd -dc "$STORE/blobs/sha256/${l3#sha256:}" | tar -tf - >"$T/l3"
grep -qx 'etc/.wh.greeting' "$T/l3" || { cat "$T/l3"; fail "no whiteout for /etc/greeting"; }
# cached on rebuild, and reproducible without cache
f build "$c/spec.yaml" >"$T/re"
[ "$(grep -c ' cached ' "$T/re")" = 4 ] || { cat "$T/re"; fail "run layers not cached"; }
f build --check "$c/spec.yaml" >"$T/chk" 2>&1 || { cat "$T/chk"; fail "--check of deterministic run steps"; }
[ "$(f build -q "$c/spec.yaml")" = "$d1" ] || fail "digest moved"

# network none by default
cat >"$c/net.yaml" <<'Y'
forge: 1
name: net
from: runs
layers:
  - run: ip link 2>/dev/null | grep -c '^[0-9]' > /links; cat /proc/net/dev | tail -n +3 | wc -l > /ifaces
Y
f build -q "$c/net.yaml" >/dev/null
f export net --format dir -o "$T/net"
[ "$(tr -d ' ' <"$T/net/ifaces")" = 1 ] || fail "run step saw host interfaces: $(cat "$T/net/ifaces")"

# a failing step: exit status reported, nothing tagged
cat >"$c/fail.yaml" <<'Y'
forge: 1
name: failing
from: runs
layers:
  - run: echo about to fail; exit 7
Y
st=0
f build "$c/fail.yaml" >"$T/f.out" 2>"$T/f.err" || st=$?
[ "$st" = 1 ] || fail "failing step exit $st"
grep -q "about to fail" "$T/f.err" || fail "step output not shown"
grep -q "exit status 7" "$T/f.err" || { cat "$T/f.err"; fail "step status not in the message"; }
f images >"$T/imgs"
! grep -q '^failing ' "$T/imgs" || fail "a failed build was tagged"
[ -z "$(ls -A "$STORE/tmp")" ] || { ls -la "$STORE/tmp"; fail "a failed step left scratch files"; }

# --check names the file that differs
cat >"$c/nondet.yaml" <<'Y'
forge: 1
name: nondet
from: runs
layers:
  - run: head -c 16 /dev/urandom | od -x > /random.txt
Y
st=0
f build --check "$c/nondet.yaml" >"$T/nd.out" 2>&1 || st=$?
[ "$st" = 1 ] || { cat "$T/nd.out"; fail "--check passed a non-reproducible build"; }
grep -q "/random.txt" "$T/nd.out" || { cat "$T/nd.out"; fail "--check did not name the file"; }
echo "build-run: ok"

#!/bin/bash
# A `run:` build step with `network: user` gets its own stack: it fetches
# from an HTTP server this test runs on the host's 127.0.0.1, through
# host.forge.internal; a step without it (network: none, the default) cannot,
# and nothing (pasta) outlives the build. Traffic goes only to that server.
source "$(dirname "$0")/lib-net.sh" || exit 1

host_token_server build

ctx=$T/bctx
mkdir -p "$ctx/bin"
cp "$BUSYBOX" "$ctx/bin/busybox"
for a in sh wget cat timeout grep; do ln -s busybox "$ctx/bin/$a"; done
spec() { # NAME NETWORK-LINE
	cat <<YAML
forge: 1
name: $1
layers:
  - files:
      - {src: bin/, dest: /bin/, mode: "0755"}
  - run: timeout 10 wget -q -O /fetched http://host.forge.internal:$HPORT/token.txt
$2
config:
  cmd: [/bin/cat, /fetched]
YAML
}

spec fetch-user "    network: user" >"$ctx/user.yaml"
f build -q "$ctx/user.yaml" >/dev/null || fail "a run: step with network: user could not fetch from host.forge.internal:$HPORT"
got=$(f run fetch-user) || fail "forge run of the built image"
[ "$got" = "$token" ] || fail "the step fetched '$got', expected '$token'"
leftover_check

# the default and an explicit none: no route to the host, the step fails
spec fetch-none "" >"$ctx/none.yaml"
err=$(f build -q "$ctx/none.yaml" 2>&1) && fail "a run: step without network reached the host: $err"
[[ "$err" == *"exit status"* ]] || fail "no failed-step message: $err"
spec fetch-none2 "    network: none" >"$ctx/none2.yaml"
f build -q "$ctx/none2.yaml" >/dev/null 2>&1 && fail "a run: step with network: none reached the host"
leftover_check

# the key is checked: a bad value names the choices
spec bad "    network: bogus" >"$ctx/bad.yaml"
err=$(f build -q "$ctx/bad.yaml" 2>&1) && fail "network: bogus was accepted"
[[ "$err" == *"expected none, host or user"* ]] || fail "the error does not name the choices: $err"
echo PASS

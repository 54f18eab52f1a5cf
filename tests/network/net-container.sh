#!/bin/bash
# forge run --network user for containers: own address and route, the host's
# loopback through host.forge.internal, published ports (-p) answered from
# the host, a port in use (125), --network none keeps loopback only, and
# nothing (pasta, ports) outlives the run, also when forge is SIGKILLed.
# Traffic goes only to servers this test starts on 127.0.0.1.
source "$(dirname "$0")/lib-net.sh" || exit 1

# ---- own address, route, /etc files ----
out=$(r --network user -- /bin/sh -c 'ip -4 -o addr show; ip route; cat /etc/hosts /etc/resolv.conf')
grep -qE '^[0-9]+: eth0 +inet 10\.0\.2\.100/24 ' <<<"$out" || fail "no 10.0.2.100/24 on eth0:
$out"
expect_line "$out" "default via 10.0.2.2 dev eth0 "
grep -qE 'inet (192\.0\.2|172|10\.255)' <<<"$out" && fail "the host's address leaked in: $out"
expect_line "$out" "nameserver 10.0.2.3"
grep -qxP '10\.0\.2\.2\thost\.forge\.internal' <<<"$out" || fail "no host.forge.internal in /etc/hosts: $out"
grep -qxP '10\.0\.2\.100\tbox7' <<<"$(r --network user --hostname box7 -- /bin/cat /etc/hosts)" ||
	fail "the hostname is not in /etc/hosts"
# the image's own files are not changed (bound over, per run)
[ ! -e "$ROOTFS/etc/hosts" ] || fail "the run wrote /etc/hosts into the lower layer"

# ---- --network none: loopback only; host: the host's interfaces ----
out=$(r --network none -- /bin/sh -c 'ip -4 -o addr show')
links=$(r --network none -- /bin/sh -c 'ip -o link show' | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "--network none has interfaces besides lo: $links"
grep -q 'inet 10.0.2' <<<"$out" && fail "--network none got an address: $out"
expect_status 2 r --network bogus -- /bin/th true
expect_status 2 r --network none -p 8080:80 -- /bin/th true
expect_status 2 r --network host -p 8080:80 -- /bin/th true
expect_status 2 r --network user -p 80 -- /bin/th true
expect_status 2 r --network user -p 0:80 -- /bin/th true
expect_status 2 r --network user -p 8080:70000 -- /bin/th true
expect_status 2 r --network user -p 8080:80/sctp -- /bin/th true
expect_status 2 r --network user -p 300.1.1.1:8080:80 -- /bin/th true

# without pasta: 125 and what to install; the tool's own error is passed on
err=$(FORGE_PASTA=/nonexistent/pasta r --network user -- /bin/th true 2>&1) && fail "ran without pasta"
[[ "$err" == *"passt"* ]] || fail "no hint at the passt package: $err"
expect_status 125 env FORGE_PASTA=/nonexistent/pasta "$FORGE" run --rootfs "$ROOTFS" --network user -- /bin/th true
printf '#!/bin/sh\necho "pasta: something is wrong" >&2\nexit 1\n' >"$T/badpasta"
chmod +x "$T/badpasta"
err=$(FORGE_PASTA=$T/badpasta r --network user -- /bin/th true 2>&1) && fail "ran with a failing pasta"
[[ "$err" == *"pasta: something is wrong"* ]] || fail "pasta's message is not passed on: $err"
leftover_check

# ---- host.forge.internal reaches the host's 127.0.0.1 ----
host_token_server host
out=$(r --network user -- /bin/timeout 5 /bin/wget -q -O - "http://host.forge.internal:$HPORT/token.txt") ||
	fail "the container could not fetch from host.forge.internal:$HPORT"
[ "$out" = "$token" ] || fail "host.forge.internal: got '$out', expected '$token'"
# the container's own 127.0.0.1 is its own: the host's loopback is not there
expect_status 1 r --network user -- /bin/timeout 3 /bin/wget -q -O /dev/null "http://127.0.0.1:$HPORT/token.txt"

# ---- -p: a server in the container answered from the host ----
mkdir -p "$ROOTFS/www"
ctoken=container-$RANDOM$RANDOM
echo "$ctoken" >"$ROOTFS/www/index.html"
PPORT=$(free_port)
rbg --network user -p "$PPORT:8080" -- /bin/httpd -f -p 8080 -h /www &
FORGE_PID=$!
got=$(fetch "http://127.0.0.1:$PPORT/index.html") || fail "-p $PPORT:8080: no answer from the container"
[ "$got" = "$ctoken" ] || fail "-p: got '$got', expected '$ctoken'"
# a second run cannot have the same host port: 125, the port named
err=$(r --network user -p "$PPORT:80" -- /bin/th true 2>&1) && fail "a port in use was accepted"
expect_status 125 r --network user -p "$PPORT:80" -- /bin/th true
[[ "$err" == *"127.0.0.1:$PPORT/tcp"*"in use"* ]] || fail "the port in use is not named: $err"
# the published port binds 127.0.0.1 only, not the host's other addresses
ss -ltnH "sport = :$PPORT" | awk '{print $4}' | grep -qvx "127.0.0.1:$PPORT" &&
	fail "-p without IP bound more than 127.0.0.1: $(ss -ltnH "sport = :$PPORT")"
kids=$(descendants $FORGE_PID | tr '\n' ' ')
[ -n "$kids" ] || fail "no processes under forge while it runs"
kill -TERM $FORGE_PID
st=0
wait $FORGE_PID || st=$?
[ "$st" -eq 143 ] || fail "SIGTERM: forge exited $st, expected 143"
for k in $kids; do
	[ ! -e /proc/$k ] || fail "process $k ($(tr '\0' ' ' </proc/$k/cmdline)) outlived the run"
done
port_bound "$PPORT" && fail "host port $PPORT still bound after the run"

# UDP: a datagram to the published port reaches the container
UPORT=$(free_port)
(for i in $(seq 1 40); do
	sleep 0.2
	python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello\n", ("127.0.0.1", int(sys.argv[1])))' "$UPORT"
done) >/dev/null 2>&1 &
SENDER=$!
out=$(r --network user -p "$UPORT:9999/udp" -- /bin/th udp-recv 9999 10) || true
kill $SENDER 2>/dev/null || true
wait $SENDER 2>/dev/null || true
grep -q '^udp=hello from=' <<<"$out" || fail "-p $UPORT:9999/udp: the container got: $out"

# ---- SIGKILLed forge leaves nothing: no pasta, no keeper, no bound port ----
KPORT=$(free_port)
rbg --network user -p "$KPORT:8080" -- /bin/httpd -f -p 8080 -h /www &
FORGE_PID=$!
fetch "http://127.0.0.1:$KPORT/index.html" >/dev/null || fail "-p $KPORT: no answer"
kids=$(descendants $FORGE_PID | tr '\n' ' ')
grep -q . <<<"$kids" || fail "no processes under forge"
kill -KILL $FORGE_PID
wait $FORGE_PID 2>/dev/null || true
for i in $(seq 1 50); do
	left=""
	for k in $kids; do [ -e /proc/$k ] && left="$left $k"; done
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || fail "after SIGKILL of forge these outlived it:$left ($(ps -o pid,cmd -p ${left// /,}))"
for i in $(seq 1 30); do port_bound "$KPORT" || break; sleep 0.1; done
port_bound "$KPORT" && fail "host port $KPORT still bound after forge was SIGKILLed"
grep -F " $RUNTMP/" /proc/mounts | awk '{print $2}' | xargs -r -n1 umount -l 2>/dev/null || true
rm -rf "${RUNTMP:?}"/*

# ---- forge run SPEC applies the spec's container.network: user and ports
# (an image never carries them: docs/run.md) ----
ctx=$T/ctx
mkdir -p "$ctx/bin" "$ctx/www"
cp "$FORGE_TESTHELPER" "$ctx/bin/th"
cp "$BUSYBOX" "$ctx/bin/busybox"
echo spec-page >"$ctx/www/index.html"
SPORT=$(free_port)
cat >"$ctx/net.yaml" <<YAML
forge: 1
name: net-app
layers:
  - files:
      - {src: bin/, dest: /bin/, mode: "0755"}
      - {src: www/, dest: /www/}
config:
  entrypoint: ["/bin/busybox"]
  cmd: ["httpd", "-f", "-p", "8080", "-h", "/www"]
container:
  network: user
  ports: ["$SPORT:8080"]
YAML
f build -q "$ctx/net.yaml" >/dev/null || fail "forge build of a spec with network: user"
"$FORGE" --store "$STORE" run "$ctx/net.yaml" &
FORGE_PID=$!
got=$(fetch "http://127.0.0.1:$SPORT/index.html") || fail "the spec's ports: no answer on $SPORT"
[ "$got" = spec-page ] || fail "the spec's ports: got '$got'"
kill -TERM $FORGE_PID
wait $FORGE_PID || true
port_bound "$SPORT" && fail "host port $SPORT still bound after the spec's run"
# the command line wins: --network none has no published port
expect_status 2 "$FORGE" --store "$STORE" run --network none -p "$SPORT:8080" "$ctx/net.yaml"
links=$("$FORGE" --store "$STORE" run --network none "$ctx/net.yaml" -- ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "--network none over the spec's user: interfaces $links"
# the image built from it has none of it: run by name it has lo only
links=$("$FORGE" --store "$STORE" run net-app -- ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
[ "$links" = "lo " ] || fail "the image carried the spec's network: interfaces $links"

# ---- and after a normal exit ----
before=$(pgrep -c -f '^pasta .*--netns /proc/self/fd/3' || true)
r --network user -- /bin/th true
after=$(pgrep -c -f '^pasta .*--netns /proc/self/fd/3' || true)
[ "$after" -le "$before" ] || fail "a pasta process outlived a run ($before before, $after after)"
leftover_check
echo PASS

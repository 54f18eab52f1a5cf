#!/bin/bash
# forge run --network user: DNS answers from the host's resolvers. The test
# makes its own host: a new network and mount namespace (unshare) with an
# uplink of its own (a veth pair, nothing behind it), a resolv.conf naming
# 127.0.0.1, and dnsmasq on 127.0.0.1:53 serving test.forge. No query leaves
# that namespace.
if [ -z "${FORGE_NET_DNS_INSIDE:-}" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root" >&2; exit 77; }
	command -v dnsmasq >/dev/null || { echo "SKIP: dnsmasq (dnsmasq-base) is missing" >&2; exit 77; }
	FORGE_NET_DNS_INSIDE=1 exec unshare --net --mount bash "$0" "$@"
fi
source "$(dirname "$0")/lib-net.sh" || exit 1

ip link set lo up
ip link add fdns0 type veth peer name fdns1
ip link set fdns0 up
ip link set fdns1 up
ip addr add 198.51.100.1/24 dev fdns0
ip route add default via 198.51.100.254 dev fdns0
mount --make-rprivate /
printf 'nameserver 127.0.0.1\n' >"$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf

dnsmasq --keep-in-foreground --listen-address=127.0.0.1 --bind-interfaces --port=53 \
	--no-resolv --no-hosts --address=/test.forge/192.0.2.77 --pid-file="$T/dnsmasq.pid" \
	--log-facility=- 2>"$T/dnsmasq.log" &
DNSMASQ=$!
trap 'kill $DNSMASQ 2>/dev/null; cleanup_t' EXIT
for i in $(seq 1 50); do
	[ -s "$T/dnsmasq.pid" ] && break
	sleep 0.1
done

out=$(r --network user -- /bin/nslookup -type=a test.forge) || fail "nslookup test.forge failed: $out"
grep -q '192\.0\.2\.77' <<<"$out" || fail "test.forge did not resolve to 192.0.2.77: $out"
grep -q '10\.0\.2\.3' <<<"$out" || fail "the query did not go to the forwarder 10.0.2.3: $out"
# an unknown name fails (dnsmasq has no upstream): the answer is the resolver's
expect_status 1 r --network user -- /bin/nslookup -type=a nosuchname.invalid
# --network none: no resolver reachable
expect_status 1 r --network none -- /bin/timeout 5 /bin/nslookup -type=a test.forge 10.0.2.3
leftover_check
echo PASS

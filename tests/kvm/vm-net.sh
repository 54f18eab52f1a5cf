# `forge run --as vm --network user` (docs/network.md) in one nested-KVM
# harness boot: the guest's own address and route through forge-vmm's
# virtio-net and passt, /etc/hosts and /etc/resolv.conf, DNS of a name the
# test's resolver (the test helper on the outer guest's 127.0.0.1:53)
# serves, forge-vmm's memory beyond guest RAM with a NIC, an HTTP server on
# the outer guest's 127.0.0.1 fetched through host.forge.internal, a -p
# published server in the guest answered from the outer guest, --network
# none has no interface but lo, nothing (passt, the port) left after the run
# or after forge-vmm is SIGKILLed. The outer guest has no network of its own:
# it gets an uplink with nothing behind it (a veth pair) so passt has an
# interface; all traffic stays on its loopback. On the host: --network host
# for a VM is a usage error naming user.
source "$(dirname "${BASH_SOURCE[0]}")/lib-kvm.sh" || exit 1
need_disk_tools passt
need_kernel_deb

# ---- on the host: usage errors ----
expect_status 2 "$FORGE" run --as vm --network host "$T/none.img"
err=$("$FORGE" run --as vm --network host "$T/none.img" 2>&1) || true
[[ "$err" == *"none or user"* ]] || fail "--network host for a VM does not name user: $err"
expect_status 2 "$FORGE" run --as vm --network none -p 8080:80 "$T/none.img"
expect_status 2 "$FORGE" run --as vm --network user -p 80 "$T/none.img"

# ---- the image and its disk ----
CTX=$T/ctx
vm_context "$CTX" sh cat grep ip wget httpd sleep nslookup
mkdir -p "$CTX/www"
echo guest-page >"$CTX/www/index.html"
kvm_vm_spec vmnet "memory: 256M" "cpus: 1" >"$CTX/vm.yaml" <<'EOF'
      - {src: www/, dest: /www/}
config:
  cmd: [/bin/sh]
  env: {PATH: /bin:/usr/bin:/sbin:/usr/sbin}
EOF
vm_disk "$CTX/vm.yaml" vmnet "$T/d.img"
# the outer guest's uplink (veth from the outer kernel's package) and passt
uplink_files "$T"

cat >"$T/inner.sh" <<'EOF'
. /harness/lib.sh
fail() { echo "VMNET-FAIL: $*"; exit 1; }
# passt's processes (the daemon keeps its command line: ... --fd 3)
passt_running() {
	for p in /proc/[0-9]*; do
		case "$(tr '\0' ' ' <$p/cmdline 2>/dev/null)" in
		*/passt\ *--fd\ 3*) return 0 ;;
		esac
	done
	return 1
}
F=$FORGE
D=$KVM_FILES/d.img
passt_uplink "$KVM_FILES/passt" || fail "the outer guest's uplink (veth, its address and route)"
mkdir -p /tmp/www && echo outer-token-4711 >/tmp/www/t.txt
httpd -p 127.0.0.1:8081 -h /tmp/www || fail "httpd"
# the outer guest's resolver: the test helper on 127.0.0.1:53 (passt forwards 10.0.2.3 there)
echo 'nameserver 127.0.0.1' >/etc/resolv.conf
forge-testhelper dns-serve 127.0.0.1 53 test.forge 192.0.2.77 &

# own address, route, the etc files, host.forge.internal
out=$($F run --as vm --network user --hostname vmbox $D -- /bin/sh -c \
	'ip -4 -o addr show; ip route; cat /etc/hosts /etc/resolv.conf; wget -q -O - http://host.forge.internal:8081/t.txt;
	nslookup -type=a test.forge' 2>&1) ||
	fail "run with --network user: $out"
echo "$out"
echo "$out" | grep -qE 'eth0 +inet 10\.0\.2\.100/24' || fail "no 10.0.2.100/24 on eth0"
echo "$out" | grep -q '^default via 10\.0\.2\.2 dev eth0' || fail "no default route via 10.0.2.2"
echo "$out" | grep -qE '^10\.0\.2\.2[[:space:]]+host\.forge\.internal$' || fail "no host.forge.internal in /etc/hosts"
echo "$out" | grep -qE '^10\.0\.2\.100[[:space:]]+vmbox$' || fail "the hostname is not in /etc/hosts"
echo "$out" | grep -q '^nameserver 10\.0\.2\.3$' || fail "resolv.conf"
echo "$out" | grep -q '^outer-token-4711$' || fail "no fetch through host.forge.internal"
echo "$out" | grep -q '^Address: 192\.0\.2\.77' || fail "test.forge did not resolve through 10.0.2.3"
passt_running && fail "passt outlived a run"

# --network none: loopback only
out=$($F run --as vm $D -- /bin/sh -c 'ip -o link show' 2>&1) || fail "run with --network none: $out"
echo "$out" | grep -q eth0 && fail "--network none has eth0: $out"

# -p: a server in the guest answered here; a second run cannot take the port
$F run --as vm --network user -p 18080:8080 $D -- /bin/httpd -f -p 8080 -h /www >/tmp/p.out 2>&1 &
VM=$!
got=
for i in $(seq 1 300); do
	got=$(wget -q -O - http://127.0.0.1:18080/index.html 2>/dev/null) && break
	sleep 0.2
done
[ "$got" = guest-page ] || fail "-p 18080:8080: got '$got'"
# forge-vmm's memory beyond guest RAM with a NIC and traffic: peak RSS minus
# the resident part of the largest mapping (as bench/vm-boot.sh measures it)
for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O /dev/null http://127.0.0.1:18080/index.html; done
hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$VM/status)
guest=$(awk '/^Size:/ { s = $2 } /^Rss:/ { if (s > max) { max = s; r = $2 } } END { print r + 0 }' /proc/$VM/smaps)
echo "VMNET-MEM hwm=$hwm guest_rss=$guest overhead=$((hwm - guest))"
[ $((hwm - guest)) -lt 5120 ] || fail "forge-vmm with a NIC: $((hwm - guest)) KiB beyond guest RAM (at most 5 MiB)"
st=0
err=$($F run --as vm --network user -p 18080:80 $D -- /bin/th true 2>&1) || st=$?
[ "$st" = 125 ] || fail "a port in use: exit $st: $err"
echo "$err" | grep -q '127.0.0.1:18080/tcp' || fail "the port in use is not named: $err"
# SIGKILL of the launcher: passt goes, the port is free again
passt_running || fail "no passt while the VM runs"
kill -9 $VM
wait $VM
no_passt() { ! passt_running; }
until_ok 50 no_passt
passt_running && fail "passt outlived a SIGKILLed forge-vmm"
wget -q -O - http://127.0.0.1:18080/index.html 2>/dev/null && fail "port 18080 still answers"
echo VMNET-PASS
EOF

kvm_run_guest "$T/inner.sh" "$T/d.img" "$T/veth.ko" "$T/passt"
if [ "$st" -ne 0 ] || ! grep -q '^VMNET-PASS' "$T/h/serial.log"; then
	grep -E 'VMNET-|forge|passt' "$T/h/serial.log" | tail -n 40 >&2
	fail "nested run exited $st"
fi
grep '^VMNET-MEM' "$T/h/serial.log"
echo PASS

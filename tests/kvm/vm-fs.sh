# Host directories in VMs (docs/vm.md, "Shared directories") and --read-only,
# end to end in ONE nested-KVM harness boot (tests/kvm/harness.sh) with two
# VM boots:
#  1. -v DIR:/mnt/share -v RODIR:/mnt/ro:ro --read-only: a 1 MiB host file
#     read in the guest is byte-identical (sha256), a script on the share
#     runs, a guest write appears on the host, writes to the :ro share and to
#     the root fail with EROFS, also when the guest remounts the share rw (the
#     host refuses), the ro share's host files are unchanged; once
#     forge returns no virtiofsd is left.
#  2. -v DIR:/new/dir (the mount point is created): the guest writes, then
#     forge-vmm is SIGKILLed: no virtiofsd outlives it.
# On the host: -v with a missing source or a file is refused before any VM.
source "$(dirname "${BASH_SOURCE[0]}")/lib-kvm.sh" || exit 1
[ -x /usr/lib/qemu/virtiofsd ] || { echo "SKIP: no /usr/lib/qemu/virtiofsd (qemu-system-common)" >&2; exit 77; }
need_disk_tools
need_kernel_deb

CTX=$T/ctx
vm_context "$CTX" sh cat sha256sum touch mkdir ls sleep sync rm mount
mkdir -p "$CTX/mnt/share" "$CTX/mnt/ro" "$CTX/root"
touch "$CTX/mnt/share/.keep" "$CTX/mnt/ro/.keep" "$CTX/root/.keep"
vm_spec vmfs "memory: 256M" >"$CTX/vm.yaml" <<'EOF'
  - files:
      - {src: links/, dest: /bin/}
      - {src: mnt/, dest: /mnt/}
      - {src: root/, dest: /root/}
config:
  cmd: [/bin/sh, -c, "echo hello"]
  env: {PATH: /bin:/usr/bin:/sbin:/usr/sbin}
EOF
vm_disk "$CTX/vm.yaml" vmfs "$T/d.img"

# ---- on the host: bad sources are refused before anything starts ----
st=0
out=$("$FORGE" --store "$STORE" run --as vm -v "$T/nope:/x" "$T/d.img" 2>&1 </dev/null) || st=$?
[ "$st" -eq 125 ] && grep -q "volume source" <<<"$out" || fail "-v missing source: exit $st: $out"
st=0
out=$("$FORGE" --store "$STORE" run --as vm -v "$T/d.img:/x" "$T/d.img" 2>&1 </dev/null) || st=$?
[ "$st" -eq 125 ] && grep -q "directories only" <<<"$out" || fail "-v of a file: exit $st: $out"
st=0
out=$("$FORGE" --store "$STORE" run --as vm -v "$T:rel" "$T/d.img" 2>&1 </dev/null) || st=$?
[ "$st" -eq 2 ] || fail "-v with a relative DST: exit $st: $out"
st=0
out=$("$FORGE" --store "$STORE" run --as vm --read-only --persist "$T/d.img" 2>&1 </dev/null) || st=$?
[ "$st" -eq 2 ] || fail "--read-only --persist: exit $st: $out"

cat >"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
in_bind_root # (for virtiofsd)
D=$KVM_FILES/d.img
F="$FORGE --store /tmp/store"
nvfsd() { ps -o comm= 2>/dev/null | grep -c virtiofsd; }
no_vfsd() { [ "$(nvfsd)" = 0 ]; }
mkdir -p /tmp/share /tmp/ro /tmp/new
head -c 1048576 /dev/urandom >/tmp/share/data
sum=$(sha256sum /tmp/share/data | cut -d' ' -f1)
echo keep >/tmp/ro/kept
cat >/tmp/share/check.sh <<'EOF'
echo sum=$(sha256sum /mnt/share/data | cut -d' ' -f1)
echo from-guest >/mnt/share/out && echo wrote-share
# (the root is read-only: error messages are captured, not written to files)
e=$( (echo x >/mnt/ro/new) 2>&1) || echo "ro-share-refused: $e"
e=$(rm -f /mnt/ro/kept 2>&1) || echo "ro-share-rm-refused: $e"
e=$( (echo x >/root/f) 2>&1) || echo "root-refused: $e"
cat /mnt/ro/kept
# a guest that mounts the share read-write is still refused, by the host
mount -o remount,rw /mnt/ro && echo ro-share-remounted-rw
e=$( (echo x >/mnt/ro/new2) 2>&1) || echo "ro-host-refused: $e"
e=$(mount -o remount,rw / 2>&1) || echo "root-remount-refused: $e"
EOF
st=0
$F run --as vm --read-only -v /tmp/share:/mnt/share -v /tmp/ro:/mnt/ro:ro $D -- sh /mnt/share/check.sh \
	>/tmp/out1 2>/tmp/err1 </dev/null || st=$?
n=$(nvfsd)
echo "--- boot 1: exit $st"
sed 's/^/  out| /' /tmp/out1
sed 's/^/  err| /' /tmp/err1
[ ! -s /tmp/err1 ] || bad "boot 1: messages on stderr"
[ "$st" = 0 ] || bad "boot 1: exit $st"
grep -qx "sum=$sum" /tmp/out1 || bad "the guest read different bytes (host $sum)"
grep -qx wrote-share /tmp/out1 || bad "the guest could not write to the share"
[ "$(cat /tmp/share/out 2>/dev/null)" = from-guest ] || bad "the guest's write is not on the host"
grep -q '^ro-share-refused: .*Read-only file system' /tmp/out1 || bad "a write to the :ro share was not refused with EROFS"
grep -q '^ro-share-rm-refused: .*Read-only file system' /tmp/out1 || bad "an unlink on the :ro share was not refused with EROFS"
grep -q '^root-refused: .*Read-only file system' /tmp/out1 || bad "--read-only: a write to the root was not refused with EROFS"
grep -qx keep /tmp/out1 || bad "the :ro share's file is not readable"
grep -qx ro-share-remounted-rw /tmp/out1 || bad "the guest could not remount the :ro share rw (the next check needs it)"
grep -q '^ro-host-refused: .*Read-only file system' /tmp/out1 || bad "a :ro share remounted rw in the guest was writable"
grep -q '^root-remount-refused: ' /tmp/out1 || bad "--read-only: the guest could remount its root read-write"
[ -e /tmp/ro/kept ] && [ ! -e /tmp/ro/new ] && [ ! -e /tmp/ro/new2 ] || bad "the :ro share changed on the host"
[ "$n" = 0 ] || bad "$n virtiofsd left after the VM exited"

# a mount point the guest creates; forge-vmm SIGKILLed mid-run
$F run --as vm -v /tmp/new:/new/dir $D -- sh -c 'echo guest >/new/dir/w && echo ready; exec sleep 1000' \
	>/tmp/out2 2>&1 </dev/null &
pid=$!
until_ok 900 grep -q ready /tmp/out2
echo "--- boot 2:"
sed 's/^/  out| /' /tmp/out2
grep -q ready /tmp/out2 || bad "boot 2: the workload did not start"
[ "$(cat /tmp/new/w 2>/dev/null)" = guest ] || bad "boot 2: the write under a created mount point is not on the host"
[ "$(nvfsd)" -ge 1 ] || bad "boot 2: no virtiofsd while the VM runs"
kill -KILL $pid
wait $pid
until_ok 50 no_vfsd
[ "$(nvfsd)" = 0 ] || bad "virtiofsd outlived a SIGKILLed forge-vmm: $(ps | grep virtiofsd)"
checks_done
GUEST

kvm_run_guest "$T/guest.sh" "$T/d.img"
sed -n '/^--- boot/,$p' "$T/h/serial.log" | grep -v '^KVM-HARNESS' || true
[ "$st" -eq 0 ] || kvm_guest_failed
echo "ok: -v (bytes equal, guest writes on the host, :ro refused with EROFS, mount point created)," \
	"--read-only root refused with EROFS, no virtiofsd after the VM ends or after SIGKILL"

# The nested-KVM harness itself (one outer boot): inside it /dev/kvm works
# (kvm-smoke: KVM_EXIT_IO then KVM_EXIT_HLT, irqchip, capabilities), the
# forge binary, the test helper and qemu run with the libraries the harness
# copied, files arrive intact, /tmp is a large tmpfs, and the guest
# script's exit status comes back to the host.
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh" || exit 1
need_root
kvm_harness_need
: "${KVM_SMOKE:?KVM_SMOKE must point at the kvm-smoke binary}"

head -c 3000000 /dev/urandom >"$T/blob"
want_sum=$(sha256sum <"$T/blob" | cut -d' ' -f1)
cat >"$T/guest.sh" <<'GUEST'
set -e
kvm-mark kvm-dev "$(ls -l /dev/kvm | cut -c1)$(stat -c '%t:%T' /dev/kvm)"
$KVM_FILES/kvm-smoke >smoke.out 2>&1 || { cat smoke.out; exit 1; }
cat smoke.out
kvm-mark smoke "$(tail -n1 smoke.out)"
kvm-mark blob "$(sha256sum $KVM_FILES/blob | cut -d' ' -f1)"
kvm-mark forge "$($FORGE --version 2>&1 | head -n1)"
kvm-mark helper "$($FORGE_TESTHELPER echo helper-runs)"
kvm-mark qemu "$($KVM_QEMU -L $KVM_QEMU_FW -version | head -n1)"
kvm-mark tmp-kb "$(df -k /tmp | awk 'NR==2 {print $2}')"
dmesg | grep -iE 'nested (virt|paging)' || true
exit 42
GUEST

st=0
kvm_harness_run "$T/h" "$T/guest.sh" "$KVM_SMOKE" "$T/blob" || st=$?
grep -E '^(kvm-smoke|KVM-)' "$T/h/serial.log" || true
[ "$st" -ne 125 ] || fail "the harness failed (see above)"
[ "$st" -eq 42 ] || { tail -n 30 "$T/h/serial.log"; fail "guest script exited $st, expected 42"; }
[ "$(kvm_harness_marker "$T/h" kvm-dev)" = "ca:e8" ] || fail "/dev/kvm is not char 10:232: $(kvm_harness_marker "$T/h" kvm-dev)"
[ "$(kvm_harness_marker "$T/h" smoke)" = "kvm-smoke: ok" ] || fail "kvm-smoke did not pass"
grep -qx 'kvm-smoke: KVM_EXIT_HLT at rip=0x.*' "$T/h/serial.log" || fail "no KVM_EXIT_HLT line"
[ "$(kvm_harness_marker "$T/h" blob)" = "$want_sum" ] || fail "file passed to the guest differs"
"$FORGE" --version | head -n1 >"$T/v"
[ "$(kvm_harness_marker "$T/h" forge)" = "$(cat "$T/v")" ] || fail "forge --version in the guest: $(kvm_harness_marker "$T/h" forge)"
[ "$(kvm_harness_marker "$T/h" helper)" = helper-runs ] || fail "test helper in the guest"
kvm_harness_marker "$T/h" qemu | grep -q '^QEMU emulator version' || fail "qemu in the guest: $(kvm_harness_marker "$T/h" qemu)"
tmpkb=$(kvm_harness_marker "$T/h" tmp-kb)
[ "${tmpkb:-0}" -gt $((2 * 1024 * 1024)) ] || fail "/tmp in the guest is only ${tmpkb} KiB"
echo "ok: nested /dev/kvm works (kvm-smoke), forge, helper and qemu run, files and status pass"

#!/bin/bash
# The services parity suite (parity.sh) against --as vm, in one nested-KVM
# harness boot (tests/kvm/harness.sh): the same cases and expectations as
# for containers, on an image with a vm: section built on the host.
source "$(dirname "$0")/lib-services.sh" || exit 1
source "$FORGE_SRC/tests/kvm/lib-kvm.sh" || exit 1
need_disk_tools
need_kernel_deb

svc_context "$T/ctx"
ln "$kdeb" "$T/ctx/kernel.deb" 2>/dev/null || cp "$kdeb" "$T/ctx/kernel.deb"
svc_spec "$T/ctx" svcimg "memory: 256M" "cpus: 1"
# the disk image is built on the host and cached in the store
vm_disk "$T/ctx/svcimg.yaml" svcimg "$T/d.img"
rm -f "$T/d.img"
cp "$FORGE_VMINIT" "$T/forge-vminit"
cp /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$T/linuxx64.efi.stub"
cp "$(dirname "$0")/parity.sh" "$T/parity.sh"

cat >"$T/guest.sh" <<'GUEST'
mkdir -p /usr/lib/systemd/boot/efi
cp $KVM_FILES/linuxx64.efi.stub /usr/lib/systemd/boot/efi/
export FORGE_VMINIT=$KVM_FILES/forge-vminit
st=0
KIND=vm IMAGE=svcimg POLL=1 WAIT_STEPS=240 F="$FORGE --store $KVM_FILES/store" sh $KVM_FILES/parity.sh || st=$?
kvm-mark failures "$st"
exit $st
GUEST
kvm_run_guest "$T/guest.sh" "$STORE" "$T/forge-vminit" "$T/linuxx64.efi.stub" "$T/parity.sh"
grep -E '^(FAIL|PARITY|KNOWN GAP)' "$T/h/serial.log" || true
[ "$st" -eq 0 ] || fail "$(kvm_harness_marker "$T/h" failures) parity check(s) failed for VMs"
echo PASS

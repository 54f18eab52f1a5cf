#!/bin/bash
# The services parity suite (parity.sh) against --as vm, in one nested-KVM
# harness boot (tests/kvm/harness.sh): the same cases and expectations as
# for containers, on an image with a vm: section built on the host.
source "$(dirname "$0")/lib-services.sh" || exit 1
source "$FORGE_SRC/tests/kvm/harness.sh" || exit 1
kvm_harness_need
export FORGE_VMINIT=${FORGE_VMINIT:-$(dirname "$FORGE")/../runtime/init/forge-vminit}
for tool in mke2fs mkfs.fat mcopy objcopy; do
	command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (forge export --format disk)" >&2; exit 77; }
done
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ -r $stub ] || { echo "SKIP: systemd-boot-efi missing" >&2; exit 77; }
kdeb=$(kernel_deb cloud) || { echo "SKIP: cannot get the Debian cloud kernel package" >&2; exit 77; }

svc_context "$T/ctx"
ln "$kdeb" "$T/ctx/kernel.deb" 2>/dev/null || cp "$kdeb" "$T/ctx/kernel.deb"
svc_spec "$T/ctx" svcimg "vm:
  kernel: {deb: kernel.deb}
  memory: 256M
  cpus: 1"
f build -q "$T/ctx/svcimg.yaml" >/dev/null
# the disk image is built on the host and cached in the store
f export svcimg --format disk -o "$T/d.img" >/dev/null
rm -f "$T/d.img"
cp "$FORGE_VMINIT" "$T/forge-vminit"
cp $stub "$T/linuxx64.efi.stub"
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
st=0
kvm_harness_run "$T/h" "$T/guest.sh" "$STORE" "$T/forge-vminit" "$T/linuxx64.efi.stub" "$T/parity.sh" || st=$?
[ "$st" -ne 125 ] || fail "the harness failed (see above)"
grep -E '^(FAIL|PARITY|KNOWN GAP)' "$T/h/serial.log" || true
[ "$st" -eq 0 ] || fail "$(kvm_harness_marker "$T/h" failures) parity check(s) failed for VMs"
echo PASS

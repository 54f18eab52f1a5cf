# Shared by the tests that run VMs in the nested-KVM harness (sourced, bash):
# tests/integration/lib.sh (unless already sourced), tests/kvm/harness.sh,
# and what each of them needs first: root, a host that can run the harness,
# the static test helper.
declare -F need_root >/dev/null || source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh" || exit 1
need_root
kvm_harness_need
: "${FORGE_TESTHELPER:?}"

# kvm_run_guest SCRIPT [FILE...]: kvm_harness_run in $T/h (the console in
# $T/h/serial.log); st is SCRIPT's exit status. Fails if the harness itself
# failed.
kvm_run_guest() {
	st=0
	kvm_harness_run "$T/h" "$@" || st=$?
	[ "$st" -ne 125 ] || fail "the harness failed (see above)"
}

# kvm_guest_failed: fails with the guest's FAIL lines and the number of its
# failed checks (checks_done of /harness/lib.sh)
kvm_guest_failed() {
	grep '^FAIL: ' "$T/h/serial.log" >&2 || true
	fail "$(kvm_harness_marker "$T/h" failures) check(s) failed in the guest (status $st)"
}

# uplink_files DIR: what passt_uplink of /harness/lib.sh needs, into DIR: the
# veth module of the outer guest's kernel, passt
uplink_files() {
	local gdeb
	gdeb=$(kernel_deb generic) || { echo "SKIP: cannot get the Debian kernel package" >&2; exit 77; }
	dpkg-deb --fsys-tarfile "$gdeb" | tar -x -C "$1" --wildcards './lib/modules/*/kernel/drivers/net/veth.ko'
	cp "$1"/lib/modules/*/kernel/drivers/net/veth.ko "$1/veth.ko"
	cp "$(command -v passt)" "$1/passt"
}

# kvm_vm_spec NAME [KEY...] <BODY: vm_spec NAME KEY... whose layer after the
# busybox package is a files: layer installing the test helper (th, see
# vm_context) as /bin/th and the applet links into /bin; BODY goes on with
# more entries of that list, then config:
kvm_vm_spec() {
	{
		printf '  - files:\n'
		printf '      - {src: th, dest: /bin/th, mode: "0755"}\n'
		printf '      - {src: links/, dest: /bin/}\n'
		cat
	} | vm_spec "$@"
}

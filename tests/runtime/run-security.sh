#!/bin/bash
# Isolation: capabilities and masked paths equal crun's defaults (`crun spec`),
# seccomp, no_new_privs, namespaces, escape attempts, CVE-2024-21626 class.
source "$(dirname "$0")/lib-run.sh" || exit 1
command -v crun >/dev/null || { echo "SKIP: crun (the reference) is not installed" >&2; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq is not installed" >&2; exit 77; }

(cd "$T" && crun spec)
capmask() { # CAP_NAME... -> hex mask as in /proc/self/status
	local m=0 n
	for c in "$@"; do
		n=$(grep -w "define $c" /usr/include/linux/capability.h | awk '{print $3}')
		[ -n "$n" ] || fail "unknown capability $c"
		m=$((m | (1 << n)))
	done
	printf '%016x\n' "$m"
}
want_eff=$(capmask $(jq -r '.process.capabilities.effective[]' "$T/config.json"))
want_bnd=$(capmask $(jq -r '.process.capabilities.bounding[]' "$T/config.json"))
out=$(r -- /bin/th caps)
expect_line "$out" "CapEff=$want_eff"
expect_line "$out" "CapPrm=$want_eff"
expect_line "$out" "CapBnd=$want_bnd"
expect_line "$out" "CapInh=0000000000000000"
expect_line "$out" "NoNewPrivs=1"
expect_line "$out" "Seccomp=2"
# non-root users get no effective capabilities at all
out=$(r --user 1000 -- /bin/th caps)
expect_line "$out" "CapEff=0000000000000000"
expect_line "$out" "CapBnd=$want_bnd"

# masked and read-only paths: crun's lists
mounts=$(r -- /bin/th mounts)
for p in $(jq -r '.linux.maskedPaths[]' "$T/config.json"); do
	[ -e "$p" ] || continue # not on this kernel: nothing to mask
	awk '{print $2}' <<<"$mounts" | grep -qxF "$p" || fail "$p is not masked"
done
for p in $(jq -r '.linux.readonlyPaths[]' "$T/config.json"); do
	[ -e "$p" ] || continue
	grep -E "^[^ ]+ $p [^ ]+ ro[ ,]" <<<"$mounts" >/dev/null || fail "$p is not read-only"
done
grep -E '^sysfs /sys sysfs ro[ ,]' <<<"$mounts" >/dev/null || fail "/sys is not read-only"
grep -E '^devpts /dev/pts devpts .*ptmxmode=666' <<<"$mounts" >/dev/null || fail "no private devpts"
for d in null zero full random urandom tty ptmx shm pts fd stdin stdout stderr; do
	r -- /bin/sh -c "test -e /dev/$d" || fail "/dev/$d missing"
done
expect_line "$(r -- /bin/sh -c 'echo x > /dev/null && echo ok')" "ok"
# a masked file reads as empty
[ -z "$(r -- /bin/th cat /proc/keys 2>/dev/null)" ] || fail "/proc/keys is readable"

# escape attempts: every one must be blocked
out=$(r -- /bin/th escape $$)
echo "$out"
! grep -q ESCAPED <<<"$out" || fail "escape attempt succeeded: $(grep ESCAPED <<<"$out")"
for k in mount kcore kill init_module finit_module keyctl bpf unshare setns open_by_handle_at ptrace reboot; do
	grep -q "^$k=blocked" <<<"$out" || fail "no result for $k"
done
# writing outside the root: the host's files are not reachable
echo host >"$T/host-file"
r -- /bin/th write "$T/host-file" changed >/dev/null || true
[ "$(cat "$T/host-file")" = host ] || fail "container wrote a host file"

# PID 1's executable is the host's forge-init on a detached read-only mount:
# neither a path nor a descriptor of it opens for writing (CVE-2019-5736),
# and the container learns no host path from it
init=${FORGE_INIT:-$FORGE_BUILD/runtime/init/forge-init}
before=$(sha256sum <"$init")
out=$(r -- /bin/sh -c 'readlink /proc/1/exe; /bin/th write /proc/1/exe x; /bin/th write /proc/self/fd/9 x 9</proc/1/exe' || true)
[ "$(head -n1 <<<"$out")" = / ] || fail "PID 1's executable shows a path: $out"
[ "$(grep -c '^write=Read-only file system$' <<<"$out")" = 2 ] || fail "PID 1's executable is not read-only: $out"
[ "$(sha256sum <"$init")" = "$before" ] || fail "the container changed the host's forge-init"
# a forge-init another user may write is refused before anything runs
cp "$init" "$T/init-gw"
chmod 0775 "$T/init-gw"
st=0
FORGE_INIT=$T/init-gw "$FORGE" run --rootfs "$ROOTFS" -- /bin/th true 2>"$T/gw.err" || st=$?
[ "$st" = 125 ] || fail "a group-writable forge-init ran (status $st)"
grep -q "may be written by another user" "$T/gw.err" || fail "no message for a group-writable forge-init: $(cat "$T/gw.err")"

# namespaces: all different from the host's, except user
for ns in mnt pid uts ipc net cgroup; do
	host=$(readlink /proc/self/ns/$ns)
	inner=$(r -- /bin/sh -c "readlink /proc/self/ns/$ns")
	[ "$host" != "$inner" ] || fail "$ns namespace is shared with the host"
done
# network none: only loopback, and it is up
out=$(r -- /bin/sh -c 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "')
[ "$out" = lo ] || fail "unexpected interfaces: $out"
flags=$(r -- /bin/th cat /sys/class/net/lo/flags)
(( (flags & 1) == 1 )) || fail "loopback is not up (flags $flags)"
# --network host shares it
[ "$(r --network host -- /bin/sh -c 'readlink /proc/self/ns/net')" = "$(readlink /proc/self/ns/net)" ] ||
	fail "--network host did not share the host's network namespace"

# CVE-2024-21626 class: a workdir through /proc/self/fd must not reach a host fd
for fd in 3 4 5 6 7 8 9; do
	out=$(r --workdir /proc/self/fd/$fd -- /bin/th cwd 2>&1) && fail "workdir /proc/self/fd/$fd worked: $out"
	[[ "$out" != *"cwd=/"*"$T"* ]] || fail "host directory exposed: $out"
done
# foreign architectures (x32, i386 int 0x80) are killed by the filter
out=$(r -- /bin/th foreign-arch)
expect_line "$out" "x32=killed (Bad system call)"
expect_line "$out" "i386=killed (Bad system call)"
# clone3 is ENOSYS (libc falls back to clone, whose flags are checked): fork works
expect_line "$(r -- /bin/sh -c '/bin/th true && echo native-ok')" "native-ok"
leftover_check
echo PASS

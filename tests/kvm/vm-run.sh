# `forge run --as vm` end to end (docs/vm.md), on a disk made by `forge
# export --format disk` on the host. On the host: without /dev/kvm a DISK, an
# IMAGE and a SPEC each fail with 125 and one line naming /dev/kvm. In ONE
# nested-KVM harness boot (tests/kvm/harness.sh): the image's own command
# (only its output on stdout; cpus and memory from vm:), exit statuses (3,
# 128+9, 127), --verbose, --cpus, --memory, -e, stdin, SIGTERM forwarded to
# the workload, guest writes that leave the disk untouched (and no scratch
# file behind), --persist, --timeout (124), -t (a shell on the test helper's
# pty), --user/--workdir/--hostname, and IMAGE booted from a copy of the
# store (its cached disk; the store still verifies).
source "$(dirname "${BASH_SOURCE[0]}")/lib-kvm.sh" || exit 1
# about twenty boots in one harness (ctest allows 900 s)
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-840}
need_disk_tools
need_kernel_deb

# ---- the image and its disk, made on the host ----
CTX=$T/ctx
vm_context "$CTX" sh cat nproc grep sleep sync
mkdir -p "$CTX/root"
kvm_vm_spec vmrun "memory: 384M" "cpus: 1" >"$CTX/vm.yaml" <<'EOF'
      - {src: root/, dest: /root/}
config:
  cmd: [/bin/sh, -c, "echo hello-from-vm; echo cpus=$(nproc); grep MemTotal /proc/meminfo"]
  env: {PATH: /bin:/usr/bin:/sbin:/usr/sbin, FROM_IMAGE: image}
EOF
vm_disk "$CTX/vm.yaml" vmrun "$T/d.img"

# ---- on the host: no /dev/kvm (hidden in a mount namespace if there is one) ----
nokvm() {
	if [ -e /dev/kvm ]; then
		unshare -m sh -c 'mount -t tmpfs -o mode=755 none "$1" && touch "$1/null" "$1/zero" &&
			mount --bind /dev/null "$1/null" && mount --bind /dev/zero "$1/zero" && mount --rbind "$1" /dev &&
			shift && exec "$@"' sh "$T/dev" "$@"
	else
		"$@"
	fi
}
mkdir -p "$T/dev"
st=0
nokvm "$FORGE" --store "$STORE" run --as vm "$T/d.img" >"$T/nokvm.out" 2>"$T/nokvm.err" </dev/null || st=$?
[ "$st" -eq 125 ] || fail "without /dev/kvm: exit $st, expected 125: $(cat "$T/nokvm.err")"
[ "$(wc -l <"$T/nokvm.err")" -eq 1 ] || fail "without /dev/kvm: expected one line on stderr, got: $(cat "$T/nokvm.err")"
grep -q /dev/kvm "$T/nokvm.err" || fail "without /dev/kvm: message does not name /dev/kvm: $(cat "$T/nokvm.err")"
[ ! -s "$T/nokvm.out" ] || fail "without /dev/kvm: output on stdout: $(cat "$T/nokvm.out")"
# IMAGE and SPEC get as far (their disk is found or built first)
for target in vmrun "$CTX/vm.yaml"; do
	st=0
	out=$(nokvm "$FORGE" --store "$STORE" run --as vm "$target" 2>&1 </dev/null) || st=$?
	[ "$st" -eq 125 ] && grep -q /dev/kvm <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ] ||
		fail "run --as vm $target without /dev/kvm: exit $st, expected 125 and one line naming /dev/kvm: $out"
done
# a SPEC's container.mounts are the VM's shared directories: a directory gets
# as far as /dev/kvm, a file is refused (a VM shares directories), naming the
# spec's line
mkdir -p "$CTX/shared"
echo data >"$CTX/afile"
for m in shared afile; do
	{ sed 's/^name: vmrun/name: vmmnt/' "$CTX/vm.yaml"; printf 'container:\n  mounts:\n    - {src: %s, dest: /mnt/x, ro: true}\n' "$m"; } >"$CTX/mnt-$m.yaml"
	st=0
	out=$(nokvm "$FORGE" --store "$STORE" run --as vm "$CTX/mnt-$m.yaml" 2>&1 </dev/null) || st=$?
	if [ $m = shared ]; then
		[ "$st" -eq 125 ] && grep -q /dev/kvm <<<"$out" ||
			fail "spec mount of a directory: exit $st, expected 125 naming /dev/kvm: $out"
	else
		[ "$st" -eq 125 ] && grep -q "directories only" <<<"$out" && grep -q "mnt-afile.yaml:" <<<"$out" ||
			fail "spec mount of a file: exit $st, expected 125 naming the spec and 'directories only': $out"
	fi
done
st=0
out=$(nokvm "$FORGE" --store "$STORE" run --as vm no-such-image 2>&1 </dev/null) || st=$?
[ "$st" -ne 0 ] && grep -q no-such-image <<<"$out" || fail "run --as vm no-such-image: exit $st: $out"

# bad memory sizes and a corrupt image: exit 125 and one line saying what (before /dev/kvm matters)
for m in 100T 16M; do
	st=0
	out=$(nokvm "$FORGE" --store "$STORE" run --as vm --memory $m "$T/d.img" 2>&1 </dev/null) || st=$?
	[ "$st" -eq 125 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -qE 'not enough memory|too small' <<<"$out" ||
		fail "--memory $m: exit $st, expected 125 and one line about memory: $out"
done
cp "$T/d.img" "$T/bad.img"
dd if=/dev/zero of="$T/bad.img" bs=512 seek=2 count=32 conv=notrunc 2>/dev/null # the GPT entries
st=0
out=$(nokvm "$FORGE" --store "$STORE" run --as vm "$T/bad.img" 2>&1 </dev/null) || st=$?
[ "$st" -eq 125 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q corrupt <<<"$out" ||
	fail "corrupt disk image: exit $st, expected 125 and one line saying corrupt: $out"
rm -f "$T/bad.img"

# what the guest needs to find the store's cached disk of IMAGE (its key
# covers forge-vminit and the EFI stub); the store itself goes in as a copy
cp "$FORGE_VMINIT" "$T/forge-vminit"
cp /usr/lib/systemd/boot/efi/linuxx64.efi.stub "$T/linuxx64.efi.stub"

# ---- in the harness ----
cat >"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
D=$KVM_FILES/d.img
F="$FORGE --store /tmp/store"
# forge's copy-on-write scratch files go to TMPDIR: one of its own, to see
# that none is left behind
export TMPDIR=/tmp/scratch
mkdir -p $TMPDIR /tmp/t
now() { cut -d' ' -f1 /proc/uptime; }
# vm ARGS...: forge run --as vm ARGS, stdin /dev/null unless IN is set;
# sets st, out (stdout), err (stderr), secs (wall time)
vm() {
	local t0
	t0=$(now)
	st=0
	if [ -n "${IN+x}" ]; then
		printf '%s\n' "$IN" | $F run --as vm "$@" >/tmp/t/out 2>/tmp/t/err || st=$?
	else
		$F run --as vm "$@" >/tmp/t/out 2>/tmp/t/err </dev/null || st=$?
	fi
	secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
	out=$(cat /tmp/t/out)
	err=$(cat /tmp/t/err)
	echo "--- forge run --as vm $* -> $st in $secs s"
	sed 's/^/  out| /' /tmp/t/out | tail -n 15
	sed 's/^/  err| /' /tmp/t/err | tail -n 15
}
has() { printf '%s\n' "$out" | grep -qx "$1"; }
# memtotal_ok KB MIB: MemTotal at most MIB MiB and at most 48 MiB less: the
# kernel keeps a roughly fixed amount (its image, reserved ranges; 38-41 MiB
# for the Debian cloud kernel at 256M and 384M), so vm.memory 384M and
# --memory 256M cannot be mistaken for each other
memtotal_ok() {
	awk -v kb="$1" -v mib="$2" 'BEGIN { exit !(kb <= mib * 1024 && kb >= (mib - 48) * 1024) }'
}
memtotal() { printf '%s\n' "$out" | awk '/^MemTotal:/ {print $2}'; }

sum0=$(sha256sum $D | cut -d' ' -f1)

# the image's own command, cpus and memory from its vm: section
vm $D
[ "$st" = 0 ] || bad "default run: exit $st, expected 0"
has hello-from-vm || bad "default run: no 'hello-from-vm' in the output"
[ "$(printf '%s\n' "$out" | wc -l)" = 3 ] || bad "default run: stdout is not only the workload's 3 lines"
has cpus=1 || bad "default run: vm.cpus 1 but nproc says: $out"
mt=$(memtotal)
memtotal_ok "${mt:-0}" 384 || bad "default run: vm.memory 384M but MemTotal is ${mt:-?} kB"
kvm-mark boot-secs "$secs"
boot=$secs

export FORGE_VMM_BOOTSTAT=1
vm --verbose $D -- sh -c 'exit 3'
unset FORGE_VMM_BOOTSTAT
[ "$st" = 3 ] || bad "exit 3: forge exited $st"
printf '%s\n' "$out" "$err" | grep -q 'Linux version' || bad "--verbose: no kernel messages"
# FORGE_VMM_BOOTSTAT=1: forge-vmm's steps and the guest init's, in order
printf '%s\n' "$out" "$err" | awk '
	function v(k,   i, e) { for (i = 3; i <= NF; i++) { e = index($i, "="); if (substr($i, 1, e - 1) == k) return substr($i, e + 1) + 0 } return -1 }
	/^forge-vmm: bootstat / { h = v("proc_start") >= 0 && v("create") + 0.02 >= v("proc_start") && v("first_run") >= v("create") && v("end") >= v("first_run") && v("destroyed") >= v("end") }
	/^forge-vminit: bootstat kernel_init=[0-9]/ { g = v("init") > 0 && v("modules") >= v("init") && v("root") >= v("modules") && v("workload") >= v("root") && v("exit") >= v("workload") }
	END { exit !(h && g) }' || bad "FORGE_VMM_BOOTSTAT=1: no ordered bootstat lines from forge-vmm and forge-vminit: $err $out"
vm $D -- sh -c 'kill -9 $$'
[ "$st" = 137 ] || bad "SIGKILL: forge exited $st, expected 137"
vm $D -- /no/such/command
[ "$st" = 127 ] || bad "missing command: forge exited $st, expected 127"

# (several options per boot: each boot costs seconds under nested TCG)
vm --cpus 2 --memory 256M -e GREETING=hi -e FROM_IMAGE=over $D -- \
	sh -c 'echo cpus=$(nproc); grep MemTotal /proc/meminfo; echo g=$GREETING i=$FROM_IMAGE'
[ "$st" = 0 ] || bad "--cpus 2 --memory 256M: exit $st"
has cpus=2 || bad "--cpus 2: nproc says: $out"
mt=$(memtotal)
memtotal_ok "${mt:-0}" 256 || bad "--memory 256M: MemTotal is ${mt:-?} kB"
has "g=hi i=over" || bad "-e: got: $out"

# SIGTERM to forge reaches the workload, whose status comes back
rm -f /tmp/t/sig.out
$F run --as vm $D -- sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 1; done' \
	>/tmp/t/sig.out 2>&1 </dev/null &
pid=$!
until_ok 600 grep -q ready /tmp/t/sig.out
kill -TERM $pid
st=0
wait $pid || st=$?
echo "--- SIGTERM: exit $st"
sed 's/^/  out| /' /tmp/t/sig.out
[ "$st" = 7 ] || bad "SIGTERM: forge exited $st, expected the workload's 7"
grep -q got-term /tmp/t/sig.out || bad "SIGTERM did not reach the workload's trap"

# without --persist, guest writes do not reach the image, and no scratch file stays
vm $D -- sh -c 'echo x > /root/f; sync; cat /root/f'
[ "$st" = 0 ] || bad "write: exit $st"
has x || bad "write: the guest could not read back its write: $out"
[ "$(sha256sum $D | cut -d' ' -f1)" = "$sum0" ] || bad "the disk image changed without --persist"
IN=hello-stdin vm $D -- sh -c 'read l; echo got:$l; cat /root/f 2>/dev/null || echo absent'
unset IN
[ "$st" = 0 ] || bad "stdin: exit $st"
has got:hello-stdin || bad "stdin did not reach the guest: $out"
has absent || bad "a write of an earlier run is visible without --persist: $out"
[ -z "$(ls -A $TMPDIR)" ] || bad "files left in TMPDIR: $(ls -A $TMPDIR)"

# --persist: the write is in the image and seen by the next run
cp $D /tmp/p.img
vm --persist /tmp/p.img -- sh -c 'echo persisted > /root/p; sync'
[ "$st" = 0 ] || bad "--persist write: exit $st"
[ "$(sha256sum /tmp/p.img | cut -d' ' -f1)" != "$sum0" ] || bad "--persist: the image did not change"
vm /tmp/p.img -- cat /root/p
has persisted || bad "--persist: the next run does not see the write: $out"
rm -f /tmp/p.img

# --timeout: longer than a boot, so the workload is running when it fires
to=$(awk -v b="$boot" 'BEGIN { t = int(b) + 4; print (t < 5 ? 5 : t) }')
vm --timeout "$to" $D -- sh -c 'echo sleeping; exec sleep 1000'
kvm-mark timeout-status "$st"
[ "$st" = 124 ] || bad "--timeout $to: exit $st, expected 124"
has sleeping || bad "--timeout $to: the workload never started (boot $boot s)"
printf '%s\n' "$err" | grep -qiE 'time.?out|timed out' || bad "--timeout: no message saying so: $err"
awk -v s="$secs" -v t="$to" 'BEGIN { exit !(s >= t && s < t + 20) }' || bad "--timeout $to: took $secs s"

[ "$(sha256sum $D | cut -d' ' -f1)" = "$sum0" ] || bad "the disk image changed"

# -t: an interactive shell on a terminal of the host's size (the test
# helper's pty types into it); the host terminal's modes come back
st=0
$FORGE_TESTHELPER pty 30 100 'busybox stty size; echo typed-$((6*7))\nexit 5\n' \
	$F run --as vm -t $D -- sh >/tmp/t/pty.out 2>&1 </dev/null || st=$?
echo "--- -t: exit $st"
sed 's/^/  pty| /' /tmp/t/pty.out | tail -n 12
[ "$st" = 5 ] || bad "-t: exit $st, expected the shell's 5"
grep -q '^30 100' /tmp/t/pty.out || bad "-t: the guest's terminal is not 30x100"
grep -q '^typed-42' /tmp/t/pty.out || bad "-t: the typed command did not run in the guest's shell"
grep -q 'terminal-restored=1' /tmp/t/pty.out || bad "-t: the host terminal's modes were not restored"

# the kernel: uncompressed from the disk with KASLR by default (its _text
# moves between boots: a third boot if two share one of the ~500 slots), the
# bzImage with FORGE_VM_BOOT=bzimage (the kernel decompresses itself)
ktext() { # KIND: boots, checks forge-vmm loaded the kernel as KIND; sets kt
	FORGE_VMM_BOOTSTAT=1 vm $D -- sh -c 'echo 0 >/proc/sys/kernel/kptr_restrict; grep " _text$" /proc/kallsyms'
	[ "$st" = 0 ] || bad "kallsyms ($1): exit $st"
	printf '%s\n' "$err" | grep -q "^forge-vmm: bootstat .* kernel=$1\$" || bad "expected the kernel booted as $1: $err"
	kt=$(printf '%s\n' "$out" | awk '$3 == "_text" { print $1 }')
}
ktext vmlinux-kaslr
t1=$kt
ktext vmlinux-kaslr
t2=$kt
[ "$t1" != "$t2" ] || { ktext vmlinux-kaslr; t2=$kt; }
kvm-mark kaslr "$t1 $t2"
case "$t1 $t2" in ffffffff*\ ffffffff*) ;; *) bad "no kernel _text address read: '$t1' '$t2'" ;; esac
[ "$t1" != "$t2" ] || bad "KASLR: _text at $t1 in three boots"
export FORGE_VM_BOOT=bzimage
ktext bzimage
unset FORGE_VM_BOOT
case "$kt" in ffffffff*) ;; *) bad "FORGE_VM_BOOT=bzimage: no _text: '$kt'" ;; esac

# --user, --workdir, --hostname reach the guest init
vm --user 1000:1000 --workdir /tmp --hostname vmhost $D -- \
	sh -c 'echo u=$(busybox id -u):$(busybox id -g) w=$(pwd) h=$(busybox hostname)'
has "u=1000:1000 w=/tmp h=vmhost" || bad "--user/--workdir/--hostname: $out"

# IMAGE: the disk cached in the store, booted from there, the store unchanged
mkdir -p /usr/lib/systemd/boot/efi
cp $KVM_FILES/linuxx64.efi.stub /usr/lib/systemd/boot/efi/
export FORGE_VMINIT=$KVM_FILES/forge-vminit
F="$FORGE --store $KVM_FILES/store"
vm vmrun -- sh -c 'echo via-image'
[ "$st" = 0 ] || bad "IMAGE: exit $st"
has via-image || bad "IMAGE: no output: $out"
$F store verify >/tmp/t/verify 2>&1 || bad "IMAGE: store verify after the run: $(cat /tmp/t/verify)"
checks_done
GUEST

kvm_run_guest "$T/guest.sh" "$T/d.img" "$STORE" "$T/forge-vminit" "$T/linuxx64.efi.stub"
sed -n '/^--- forge run/,$p' "$T/h/serial.log" | grep -v '^KVM-HARNESS' || true
[ "$st" -eq 0 ] || kvm_guest_failed
echo "ok: forge run --as vm: output, statuses, --verbose, --cpus, --memory, -e, stdin, SIGTERM, copy-on-write," \
	"--persist, --timeout, -t, --user/--workdir/--hostname, IMAGE from the store;" \
	"boot to exit $(kvm_harness_marker "$T/h" boot-secs) s nested"

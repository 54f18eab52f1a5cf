# forge export --format disk: structure (sfdisk, fsck), reproducibility
# across stores, the store cache, clear errors for missing/broken kernels and
# too small disks, and two QEMU (TCG) boots: UEFI firmware with nothing but
# the disk, and direct kernel boot with what vmimage_boot_load() extracts,
# checking the workload's output and exit status against `forge run --as
# container` of the same image (args, env, user, cwd, hostname, exit status).
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
need_root
: "${FORGE_TESTHELPER:?}" "${VMBOOT_EXTRACT:?}"
export FORGE_VMINIT=${FORGE_VMINIT:-$(dirname "$FORGE")/../runtime/init/forge-vminit}

for tool in sfdisk fsck.ext4 fsck.fat mkfs.fat mcopy objcopy mke2fs qemu-system-x86_64; do
	command -v $tool >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
done
[ -r /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || { echo "SKIP: systemd-boot-efi missing" >&2; exit 77; }
[ -r /usr/share/ovmf/OVMF.fd ] || { echo "SKIP: ovmf missing" >&2; exit 77; }

# The Debian cloud kernel: resolved with apt-cache, downloaded once into the cache.
KCACHE=${FORGE_TEST_CACHE:-/var/cache/forge-test}
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "SKIP: apt-cache knows no linux-image-cloud-amd64 (no Debian apt lists)" >&2; exit 77; }
kdeb=$(ls "$KCACHE/${kpkg}"_*_amd64.deb 2>/dev/null | sort | tail -n1 || true)
if [ -z "$kdeb" ]; then
	mkdir -p "$KCACHE"
	(cd "$KCACHE" && apt-get download "$kpkg" >/dev/null) ||
		{ echo "SKIP: cannot download $kpkg (offline?)" >&2; exit 77; }
	kdeb=$(ls "$KCACHE/${kpkg}"_*_amd64.deb | sort | tail -n1)
fi

CTX=$T/ctx
mkdir -p "$CTX/etc"
ln "$kdeb" "$CTX/kernel.deb" 2>/dev/null || cp "$kdeb" "$CTX/kernel.deb"
cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$CTX/bb.deb"
cp "$FORGE_TESTHELPER" "$CTX/th"
printf 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n' >"$CTX/etc/passwd"
printf 'root:x:0:\nalice:x:1001:\n' >"$CTX/etc/group"
mkdir -p "$CTX/srv"
echo data >"$CTX/srv/data"
cat >"$CTX/vm.yaml" <<'EOF'
forge: 1
name: vmtest
source_date_epoch: 1700000000
layers:
  - deb: bb.deb
  - files:
      - {src: th, dest: /bin/th, mode: "0755"}
      - {src: etc/passwd, dest: /etc/passwd}
      - {src: etc/group, dest: /etc/group}
      - {src: srv/, dest: /srv/}
config:
  cmd: [/bin/th, args, hello, "two words"]
  env: {GREETING: hi, PATH: /bin:/usr/bin}
  workdir: /srv
  user: alice
  hostname: vmhost
vm:
  kernel: {deb: kernel.deb}
  memory: 512M
  cpus: 1
EOF
# the same without vm: / with a kernel that is no kernel / a tiny disk
sed '/^vm:/,$d; s/^name: vmtest/name: novm/' "$CTX/vm.yaml" >"$CTX/novm.yaml"
sed 's/^name: vmtest/name: badk/; s/{deb: kernel.deb}/{deb: bb.deb}/' "$CTX/vm.yaml" >"$CTX/badk.yaml"
sed 's/^name: vmtest/name: notbz/; s/{deb: kernel.deb}/{bzimage: th}/' "$CTX/vm.yaml" >"$CTX/notbz.yaml"
sed 's/^name: vmtest/name: tiny/; s/^  cpus: 1/  cpus: 1\n  disk_size: 8M/' "$CTX/vm.yaml" >"$CTX/tiny.yaml"

f build -q "$CTX/vm.yaml" >/dev/null

# ---- export, structure ----
start=$(date +%s.%N)
f export vmtest --format disk -o "$T/d1.img" >/dev/null
t1=$(echo "$(date +%s.%N) - $start" | bc)
sfdisk --verify "$T/d1.img" >"$T/verify.txt" 2>&1 || { cat "$T/verify.txt"; fail "sfdisk --verify"; }
grep -qi "problem" "$T/verify.txt" && ! grep -q "No errors detected" "$T/verify.txt" && fail "sfdisk: $(cat "$T/verify.txt")"
sfdisk --json "$T/d1.img" >"$T/pt.json"
[ "$(jq -r .partitiontable.label "$T/pt.json")" = gpt ] || fail "not GPT: $(cat "$T/pt.json")"
[ "$(jq '.partitiontable.partitions | length' "$T/pt.json")" = 3 ] || fail "want 3 partitions"
[ "$(jq -r '.partitiontable.partitions[0].type' "$T/pt.json")" = C12A7328-F81F-11D2-BA4B-00A0C93EC93B ] ||
	fail "partition 1 is not an EFI system partition"
[ "$(jq -r '.partitiontable.partitions[2].name' "$T/pt.json")" = forge-root ] || fail "no forge-root"
# the forge boot partition only points into the ESP's UKI (no second copy of
# the bzImage or initramfs): header and command line pages, then the kernel
# uncompressed (an x86-64 ELF), the partition 1 MiB aligned around them
bstart=$(jq '.partitiontable.partitions[1].start' "$T/pt.json")
bsize=$(jq '.partitiontable.partitions[1].size' "$T/pt.json")
hdr() { od -An -t u8 -j $((bstart * 512 + $1)) -N 8 "$T/d1.img" | tr -d ' '; } # a u64 of the header
voff=$(hdr 72) vlen=$(hdr 80)
[ "$vlen" -gt 1048576 ] || fail "forge-boot has no uncompressed kernel (vmlinux_len $vlen)"
[ "$voff" = $((bstart * 512 + 8192)) ] || fail "the uncompressed kernel is at $voff, not after the command line"
[ "$(od -An -tx1 -j "$voff" -N 4 "$T/d1.img" | tr -d ' ')" = 7f454c46 ] || fail "the uncompressed kernel is not an ELF"
[ "$bsize" = $(((8192 + vlen + 1048575) / 1048576 * 2048)) ] || fail "forge-boot holds a copy ($bsize sectors for $vlen bytes)"
part() { # part N OUT: partition N of d1.img into OUT
	local start size
	start=$(jq ".partitiontable.partitions[$(($1 - 1))].start" "$T/pt.json")
	size=$(jq ".partitiontable.partitions[$(($1 - 1))].size" "$T/pt.json")
	dd if="$T/d1.img" of="$2" bs=512 skip="$start" count="$size" conv=sparse status=none
}
part 1 "$T/esp.img"
part 3 "$T/root.img"
fsck.fat -n "$T/esp.img" >"$T/fsck.txt" 2>&1 || { cat "$T/fsck.txt"; fail "fsck.fat -n"; }
mdir -i "$T/esp.img" ::/EFI/BOOT/BOOTX64.EFI >/dev/null || fail "no \\EFI\\BOOT\\BOOTX64.EFI"
fsck.ext4 -fn "$T/root.img" >"$T/fsck.txt" 2>&1 || { cat "$T/fsck.txt"; fail "fsck.ext4 -fn"; }
debugfs -R "cat /.forge/run" "$T/root.img" 2>/dev/null | grep -q '^hostname=vmhost$' || fail "no /.forge/run"
debugfs -R "stat /bin/th" "$T/root.img" 2>/dev/null | grep -q "ctime: 0x6553f100" || fail "timestamps not fixed"
rm -f "$T/esp.img" "$T/root.img"
# the disk is sparse
alloc=$(du -k "$T/d1.img" | cut -f1)
apparent=$(($(stat -c %s "$T/d1.img") / 1024))
[ "$alloc" -lt "$apparent" ] || fail "disk image not sparse ($alloc KiB of $apparent KiB)"

# ---- cache, reproducibility across stores ----
start=$(date +%s.%N)
f export vmtest --format disk -o "$T/d1b.img" >/dev/null
t2=$(echo "$(date +%s.%N) - $start" | bc)
cmp "$T/d1.img" "$T/d1b.img" || fail "cached export differs"
echo "export: first $t1 s, cached $t2 s"
[ "$(echo "$t2 < $t1" | bc)" = 1 ] || fail "cached export not faster ($t2 s vs $t1 s)"
rm -f "$T/d1b.img"
# store2 first exports another image with the same kernel: the kernel
# artifacts come from its cache, and the disk must still be the same bytes
sed 's/^name: vmtest/name: other/; s/hostname: vmhost/hostname: other/' "$CTX/vm.yaml" >"$CTX/other.yaml"
"$FORGE" --store "$T/store2" build -q "$CTX/other.yaml" >/dev/null
"$FORGE" --store "$T/store2" export other --format disk -o "$T/other.img" >/dev/null
[ -n "$(ls "$T/store2/kv/vmkernel")" ] || fail "kernel artifacts not cached"
rm -f "$T/other.img"
"$FORGE" --store "$T/store2" build -q "$CTX/vm.yaml" >/dev/null
"$FORGE" --store "$T/store2" export vmtest --format disk -o "$T/d2.img" >/dev/null
h1=$(sha256sum <"$T/d1.img" | cut -d' ' -f1)
h2=$(sha256sum <"$T/d2.img" | cut -d' ' -f1)
[ "$h1" = "$h2" ] || fail "two stores, same image: disks differ ($h1 vs $h2)"
rm -rf "$T/store2" "$T/d2.img"
expect_status 2 f export vmtest --format disk -o "$T/d1.img" 2>/dev/null # exists

# ---- clear errors ----
experr() { # experr STATUS PATTERN SPEC
	local st=0 out
	f build -q "$CTX/$3" >/dev/null
	out=$(f export "${3%.yaml}" --format disk -o "$T/x.img" 2>&1) || st=$?
	[ "$st" -eq "$1" ] || fail "$3: exit $st, expected $1: $out"
	grep -q -- "$2" <<<"$out" || fail "$3: expected '$2' in: $out"
	[ ! -e "$T/x.img" ] || fail "$3: output written despite the error"
	ls "$T" | grep -q forge-tmp && fail "$3: temp file left behind"
	true
}
# vm.disk_size is honoured exactly
sed 's/^name: vmtest/name: sized/; s/^  cpus: 1/  cpus: 1\n  disk_size: 300M/' "$CTX/vm.yaml" >"$CTX/sized.yaml"
f build -q "$CTX/sized.yaml" >/dev/null
f export sized --format disk -o "$T/sized.img" >/dev/null
[ "$(stat -c %s "$T/sized.img")" = $((300 << 20)) ] || fail "disk_size 300M: got $(stat -c %s "$T/sized.img") bytes"
sfdisk --verify "$T/sized.img" >/dev/null 2>&1 || fail "sized disk: sfdisk --verify"
rm -f "$T/sized.img"
experr 2 "has no vm section" novm.yaml
experr 1 "no boot/vmlinuz" badk.yaml
experr 1 "not a bzImage" notbz.yaml
experr 2 "too small.*MiB" tiny.yaml

# ---- bzImage + modules tree: compressed modules, missing drivers ----
dpkg-deb -x "$kdeb" "$T/kx"
kver=$(ls "$T/kx/lib/modules")
cp "$T/kx/boot/vmlinuz-$kver" "$CTX/vmlinuz"
m=$CTX/mods/$kver
mkdir -p "$m/kernel/drivers/block" "$CTX/nomods/$kver"
cp "$T/kx/lib/modules/$kver/modules.builtin" "$m/"
cp "$T/kx/lib/modules/$kver/modules.builtin" "$CTX/nomods/$kver/"
cp -r "$T/kx/lib/modules/$kver/kernel/drivers/virtio" "$m/kernel/drivers/"
cp "$T/kx/lib/modules/$kver/kernel/drivers/block/virtio_blk.ko" "$m/kernel/drivers/block/"
find "$m" -name '*.ko' -exec xz -q {} +
rm -rf "$T/kx"
sed "s/^name: vmtest/name: bz/; s|{deb: kernel.deb}|{bzimage: vmlinuz, modules: mods/$kver}|" "$CTX/vm.yaml" >"$CTX/bz.yaml"
sed "s/^name: vmtest/name: nomods/; s|{deb: kernel.deb}|{bzimage: vmlinuz, modules: nomods/$kver}|" "$CTX/vm.yaml" >"$CTX/nomods.yaml"
f build -q "$CTX/bz.yaml" >/dev/null
f export bz --format disk -o "$T/bz.img" >/dev/null
mkdir "$T/bzboot" "$T/bzinitrd"
"$VMBOOT_EXTRACT" "$T/bz.img" "$T/bzboot" >/dev/null
(cd "$T/bzinitrd" && cpio -id --quiet <"$T/bzboot/initrd")
for mod in virtio virtio_ring virtio_pci virtio_blk; do
	ko=$(ls "$T/bzinitrd/modules/"*-"$mod".ko 2>/dev/null) || fail "initramfs lacks $mod: $(ls "$T/bzinitrd/modules")"
	[ "$(head -c4 "$ko" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || fail "$mod not decompressed"
done
# dependencies before dependents
order=$(tr '\n' ' ' <"$T/bzinitrd/modules/order")
[[ "$order" =~ -virtio_ring\.ko.*-virtio_pci\.ko.*-virtio_blk\.ko ]] || fail "module order: $order"
cmp "$T/bzboot/kernel" "$CTX/vmlinuz" || fail "kernel differs"
rm -rf "$T/bz.img" "$T/bzboot" "$T/bzinitrd"
experr 1 "lacks module 'virtio_pci'" nomods.yaml

# ---- boots (QEMU TCG) ----
hex() { printf '%s\0' "$@" | od -An -v -tx1 | tr -d ' \n' | sed 's/00$//'; }
qemu() { # qemu LOG ARGS...: QEMU's exit status ((v << 1) | 1 from isa-debug-exit)
	local log=$1 st=0
	shift
	timeout 300 qemu-system-x86_64 -m 512 -nographic -no-reboot -nodefaults -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-drive file="$T/d1.img",format=raw,if=${QEMU_DISK_IF:-virtio},snapshot=on "$@" >"$log" 2>&1 </dev/null || st=$?
	# the console text without firmware noise (escape sequences, SeaBIOS banner)
	tr -d '\r' <"$log" | sed -E 's/^.*\x1b(\[[0-9;?]*[a-zA-Z]|c)//; s/^Booting from ROM\.*//; s/^\.+([A-Za-z])/\1/' >"$log.txt"
	return $st
}
# 1. UEFI: nothing but the disk; the image's own cmd, exit 0
st=0
qemu "$T/uefi.log" -bios /usr/share/ovmf/OVMF.fd || st=$?
grep -q '^FORGE-EXIT: 0$' "$T/uefi.log.txt" || { tail -40 "$T/uefi.log.txt"; fail "UEFI boot: no FORGE-EXIT: 0"; }
[ "$st" -eq 1 ] || fail "UEFI boot: qemu exit $st, expected 1 (status 0 on port 0xf4)"
for l in argc=2 arg1=hello "arg2=two words"; do
	grep -qxF "$l" "$T/uefi.log.txt" || fail "UEFI boot: no '$l' in output"
done

# 2. direct kernel boot with vmimage_boot_load's kernel/initrd/cmdline;
#    forge.args/forge.env override; compared with the container run.
mkdir "$T/boot"
"$VMBOOT_EXTRACT" "$T/d1.img" "$T/boot" | grep -qx "memory=536870912 cpus=1" || fail "vm settings"
script='th args "$@"; th env GREETING; th env EXTRA; th cwd; th id; th hostname; exit 7'
args=(/bin/busybox sh -c "$script" sh a "b c")
st=0
qemu "$T/direct.log" -kernel "$T/boot/kernel" -initrd "$T/boot/initrd" \
	-append "$(cat "$T/boot/cmdline") quiet forge.args=$(hex "${args[@]}") forge.env=$(hex EXTRA=x GREETING=over)" || st=$?
grep -q '^FORGE-EXIT: 7$' "$T/direct.log.txt" || { tail -40 "$T/direct.log.txt"; fail "direct boot: no FORGE-EXIT: 7"; }
[ "$st" -eq 15 ] || fail "direct boot: qemu exit $st, expected 15 (status 7 on port 0xf4)"
vmout=$(sed -n '/^argc=/,/^FORGE-EXIT/p' "$T/direct.log.txt" | grep -v '^FORGE-EXIT' | grep -E '^[A-Za-z0-9_]+=' || true)
st=0
ctout=$(f run --as container -e EXTRA=x -e GREETING=over vmtest -- "${args[@]}" 2>&1) || st=$?
[ "$st" -eq 7 ] || fail "container run: exit $st, expected 7: $ctout"
[ -n "$vmout" ] || { tail -30 "$T/direct.log.txt"; fail "direct boot: no workload output"; }
diff <(echo "$ctout") <(echo "$vmout") >"$T/parity.diff" || fail "container/VM parity:
$(cat "$T/parity.diff")"
for l in uid=1000 gid=1001 cwd=/srv hostname=vmhost GREETING=over EXTRA=x arg2="b c"; do
	grep -qxF "$l" <<<"$vmout" || fail "VM: no '$l' in: $vmout"
done

# 3. the command line is read as common/vmproto.c says (docs/vm-protocol.md):
#    of a key given twice the last counts, a quoted word is not forge's; a
#    malformed value ends the run with 125 naming the key
st=0
qemu "$T/last.log" -kernel "$T/boot/kernel" -initrd "$T/boot/initrd" \
	-append "$(cat "$T/boot/cmdline") quiet forge.args=$(hex /bin/busybox sh -c 'exit 3') forge.args=$(hex /bin/busybox sh -c 'exit 4') x=\"a forge.args=zz\"" || st=$?
grep -q '^FORGE-EXIT: 4$' "$T/last.log.txt" || { tail -30 "$T/last.log.txt"; fail "the last forge.args did not count"; }
st=0
qemu "$T/bad.log" -kernel "$T/boot/kernel" -initrd "$T/boot/initrd" \
	-append "$(cat "$T/boot/cmdline") quiet forge.args=$(hex /bin/busybox true) forge.user=zz" || st=$?
grep -q '^FORGE-EXIT: 125$' "$T/bad.log.txt" || { tail -30 "$T/bad.log.txt"; fail "a malformed forge.user: no FORGE-EXIT: 125"; }
grep -q 'malformed forge.user' "$T/bad.log.txt" || { tail -30 "$T/bad.log.txt"; fail "a malformed forge.user is not named"; }
[ "$st" -eq $((125 << 1 | 1)) ] || fail "malformed forge.user: qemu exit $st, expected 251"
# 4. the disk on IDE: forge-vminit loads the IDE/SCSI modules only when the
#    virtio ones brought no root partition; the workload still runs
st=0
QEMU_DISK_IF=ide qemu "$T/ide.log" -kernel "$T/boot/kernel" -initrd "$T/boot/initrd" \
	-append "$(cat "$T/boot/cmdline") quiet forge.args=$(hex /bin/busybox sh -c 'exit 5')" || st=$?
grep -q '^FORGE-EXIT: 5$' "$T/ide.log.txt" || { tail -40 "$T/ide.log.txt"; fail "IDE boot: no FORGE-EXIT: 5"; }
[ "$st" -eq 11 ] || fail "IDE boot: qemu exit $st, expected 11 (status 5 on port 0xf4)"
echo "ok: disk structure, fsck, reproducibility, cache, errors, UEFI, direct and IDE boots, parity, command line rules"

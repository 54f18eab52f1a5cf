# Nested-KVM test harness (sourced, after tests/integration/lib.sh).
#
# The test machines have no /dev/kvm. QEMU's TCG emulates AMD SVM with nested
# paging (-cpu max), so an outer Linux guest booted under TCG can load kvm.ko
# and kvm-amd.ko and offers a working /dev/kvm.
# kvm_harness_run boots such an outer guest from
# an initramfs holding busybox, the KVM modules, the forge binary and its
# launcher forge-vmm (FORGE_VMM, else found next to FORGE or in its build
# tree) with their shared libraries, the static test helper, qemu-system-x86_64 (for
# comparisons) and the files a test passes, and runs a shell script in it.
#
#   kvm_harness_need                   skip (77) unless the host can do this
#   kvm_harness_run WORKDIR SCRIPT [FILE...]
#                                      returns SCRIPT's exit status, or 125 when
#                                      the harness itself failed (no /dev/kvm,
#                                      no status, timeout); the console is in
#                                      WORKDIR/serial.log (\r stripped)
#   kvm_harness_marker WORKDIR NAME    value of the last "KVM-MARK NAME=VALUE"
#
# Inside, SCRIPT runs with sh (busybox) in /tmp, a tmpfs of most of the
# guest's memory, stdin /dev/null, and the environment
#   FORGE=/usr/bin/forge (forge-vmm next to it)  FORGE_TESTHELPER=/usr/bin/forge-testhelper
#   KVM_FILES=/files (FILE... by their base names, writable; directories
#   whole; sparse files arrive dense: the initramfs has no holes)
#   KVM_QEMU=/usr/bin/qemu-system-x86_64  KVM_QEMU_FW=/usr/share/qemu-fw (-L)
#   (and /usr/lib/qemu/virtiofsd when the host has it)
# and `kvm-mark NAME VALUE...` prints a marker line for kvm_harness_marker.
# /harness/lib.sh is tests/kvm/guest-lib.sh: functions for SCRIPT to source.
#
# Tunables: KVM_HARNESS_TIMEOUT (s, default 600), KVM_HARNESS_MEM (MiB, 4096),
# KVM_HARNESS_SMP (2), KVM_HARNESS_CACHE (default /var/cache/forge-test/kvm-harness).
# The outer kernel and the part of the initramfs that does not depend on the
# build (busybox, modules, qemu) are cached there, keyed by their inputs.

KVM_HARNESS_SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
KVM_HARNESS_CACHE=${KVM_HARNESS_CACHE:-${FORGE_TEST_CACHE:-/var/cache/forge-test}/kvm-harness}
KVM_HARNESS_QEMU=${KVM_HARNESS_QEMU:-$(command -v qemu-system-x86_64 || true)}

kvm_harness_need() {
	local tool
	for tool in cpio ldd dpkg-deb flock timeout; do
		command -v $tool >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
	done
	[ -n "$KVM_HARNESS_QEMU" ] || { echo "SKIP: qemu-system-x86_64 is not installed (qemu-system-x86)" >&2; exit 77; }
	KVM_HARNESS_BUSYBOX=${KVM_HARNESS_BUSYBOX:-$(command -v busybox || true)}
	if [ -z "$KVM_HARNESS_BUSYBOX" ] || ldd "$KVM_HARNESS_BUSYBOX" >/dev/null 2>&1; then
		echo "SKIP: no static busybox (busybox-static)" >&2
		exit 77
	fi
	apt-cache show linux-image-amd64 >/dev/null 2>&1 ||
		{ echo "SKIP: apt-cache knows no linux-image-amd64 (no Debian apt lists)" >&2; exit 77; }
}

# _kvm_copy_elf STAGE FILE DEST: FILE to STAGE/DEST and every shared library
# it needs (ldd) to STAGE under /usr (the guest has /lib -> usr/lib).
_kvm_copy_elf() {
	local stage=$1 file=$2 dest=$3 lib
	mkdir -p "$stage$(dirname "$dest")"
	cp -L "$file" "$stage$dest"
	ldd "$file" 2>/dev/null | grep -oE '(/[^ ]+)' | while read -r lib; do
		local to=$lib
		case $to in
		/usr/*) ;;
		*) to=/usr$to ;;
		esac
		[ -e "$stage$to" ] && continue
		mkdir -p "$stage$(dirname "$to")"
		cp -L "$lib" "$stage$to"
	done
}

# _kvm_cpio DIR OUT: DIR as a newc archive, root-owned, sorted
_kvm_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"
}

# _kvm_init: the outer guest's /init
_kvm_init() {
	cat <<'EOF'
#!/bin/sh
export PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /root
mount -t devpts devpts /dev/pts
mount -t tmpfs -o size=85% tmpfs /tmp
echo 1 >/proc/sys/kernel/printk
for m in irqbypass ccp kvm kvm-amd; do
	insmod /lib/modules/harness/$m.ko || echo "KVM-HARNESS-ERROR: insmod $m.ko failed"
done
if [ ! -c /dev/kvm ]; then
	echo "KVM-HARNESS-ERROR: no /dev/kvm after loading the modules"
	dmesg | grep -iE 'kvm|svm|ccp' | tail -n 10
	poweroff -f
fi
echo "KVM-HARNESS-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
cd /tmp
st=0
FORGE=/usr/bin/forge FORGE_TESTHELPER=/usr/bin/forge-testhelper KVM_FILES=/files \
	KVM_QEMU=/usr/bin/qemu-system-x86_64 KVM_QEMU_FW=/usr/share/qemu-fw TMPDIR=/tmp \
	sh /harness/script </dev/null || st=$?
if [ "$st" != 0 ]; then
	dmesg | grep -iE 'kvm|segfault|oom|killed' | grep -v 'Unhandled WRMSR' | tail -n 10
fi
echo "KVM-HARNESS-EXIT: $st uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
sleep 0.2 # let the UART drain the last line before QEMU exits
# isa-debug-exit: QEMU exits with (st << 1) | 1
printf "\\$(printf %03o "$st")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
EOF
}

# kvm_harness_base: prints the cache directory holding vmlinuz and base.cpio
# (busybox, KVM modules, qemu with its libraries and firmware, /init),
# building it when its inputs changed.
kvm_harness_base() {
	local kdeb key dir stage tmp f kdir
	kdeb=$(kernel_deb generic) || return 1
	key=$( {
		basename "$kdeb"
		ls -lL --time-style=+%s "$KVM_HARNESS_QEMU" "$KVM_HARNESS_BUSYBOX"
		sha256sum <"$KVM_HARNESS_SELF"
	} | sha256sum | cut -c1-16)
	dir=$KVM_HARNESS_CACHE/$key
	if [ -s "$dir/base.cpio" ]; then
		touch "$dir" # in use: not pruned
		echo "$dir"
		return 0
	fi
	mkdir -p "$KVM_HARNESS_CACHE"
	(
		flock 9
		[ -s "$dir/base.cpio" ] && exit 0
		tmp=$(mktemp -d "$KVM_HARNESS_CACHE/tmp.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		dpkg-deb -x "$kdeb" "$tmp/k"
		stage=$tmp/stage
		mkdir -p "$stage"/{bin,usr/bin,usr/lib,usr/lib64,usr/sbin,sbin,proc,sys,dev,tmp,root,etc,files,harness}
		mkdir -p "$stage/lib/modules/harness"
		ln -s usr/lib64 "$stage/lib64"
		mkdir -p "$stage/var"
		ln -s ../tmp "$stage/var/tmp" # QEMU's snapshot=on files go to /var/tmp
		cp "$KVM_HARNESS_BUSYBOX" "$stage/bin/busybox"
		for f in $("$KVM_HARNESS_BUSYBOX" --list); do
			[ "$f" = busybox ] || ln -s busybox "$stage/bin/$f"
		done
		kdir=$(echo "$tmp"/k/lib/modules/*/kernel)
		for f in virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd; do
			if [ -e "$kdir/$f.ko" ]; then
				cp "$kdir/$f.ko" "$stage/lib/modules/harness/"
			elif [ -e "$kdir/$f.ko.xz" ]; then
				xz -dc "$kdir/$f.ko.xz" >"$stage/lib/modules/harness/$(basename "$f").ko"
			elif [ -e "$kdir/$f.ko.zst" ]; then
				zstd -qdc "$kdir/$f.ko.zst" >"$stage/lib/modules/harness/$(basename "$f").ko"
			else
				echo "kvm harness: $(basename "$kdeb") has no $f.ko" >&2
				exit 1
			fi
		done
		# /lib is usr/lib in the guest as on the host (merged /usr); the
		# modules directory stays a real directory under it
		mv "$stage/lib/modules" "$stage/usr/lib/modules"
		rmdir "$stage/lib"
		ln -s usr/lib "$stage/lib"
		_kvm_copy_elf "$stage" "$KVM_HARNESS_QEMU" /usr/bin/qemu-system-x86_64
		# virtiofsd serves shared directories (forge-vmm's -v, QEMU's vhost-user-fs)
		if [ -x /usr/lib/qemu/virtiofsd ]; then
			_kvm_copy_elf "$stage" /usr/lib/qemu/virtiofsd /usr/lib/qemu/virtiofsd
		fi
		local moddir=/usr/lib/x86_64-linux-gnu/qemu
		if [ -e "$moddir/accel-tcg-x86_64.so" ]; then
			_kvm_copy_elf "$stage" "$moddir/accel-tcg-x86_64.so" "$moddir/accel-tcg-x86_64.so"
		fi
		mkdir -p "$stage/usr/share/qemu-fw"
		for f in bios-256k.bin bios.bin bios-microvm.bin kvmvapic.bin linuxboot.bin linuxboot_dma.bin \
			multiboot.bin multiboot_dma.bin pvh.bin efi-virtio.rom; do
			local d
			for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
				if [ -e "$d/$f" ]; then
					cp -L "$d/$f" "$stage/usr/share/qemu-fw/$f"
					break
				fi
			done
		done
		printf 'root:x:0:0:root:/root:/bin/sh\n' >"$stage/etc/passwd"
		printf 'root:x:0:\n' >"$stage/etc/group"
		printf '#!/bin/sh\nn=$1\nshift\necho "KVM-MARK $n=$*"\n' >"$stage/usr/bin/kvm-mark"
		_kvm_init >"$stage/init"
		chmod 0755 "$stage/init" "$stage/usr/bin/kvm-mark"
		mkdir -p "$tmp/out"
		cp "$tmp"/k/boot/vmlinuz-* "$tmp/out/vmlinuz"
		_kvm_cpio "$stage" "$tmp/out/base.cpio"
		rm -rf "$dir"
		mv "$tmp/out" "$dir"
		# bases of other inputs (older harness, qemu or kernel), unused for an hour
		find "$KVM_HARNESS_CACHE" -mindepth 1 -maxdepth 1 -type d -name '????????????????' \
			! -name "$key" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
	) 9>"$KVM_HARNESS_CACHE/.lock" || return 1
	echo "$dir"
}

# kvm_harness_run WORKDIR SCRIPT [FILE...]
kvm_harness_run() {
	local work=$1 script=$2 base stage f st=0 start secs v mark qpid wedged=
	shift 2
	: "${FORGE:?}" "${FORGE_TESTHELPER:?}"
	[ -n "${KVM_HARNESS_BUSYBOX:-}" ] || kvm_harness_need
	base=$(kvm_harness_base) || { echo "kvm harness: cannot build the outer initramfs" >&2; return 125; }
	mkdir -p "$work"
	stage=$work/stage
	rm -rf "$stage"
	mkdir -p "$stage/harness" "$stage/files" "$stage/usr/bin"
	_kvm_copy_elf "$stage" "$FORGE" /usr/bin/forge
	# forge execs its launcher, forge-vmm, to run a VM: next to forge in the guest
	local vmm
	for vmm in "${FORGE_VMM:-}" "$(dirname "$FORGE")/forge-vmm" "$(dirname "$FORGE")/../runtime/vmm/forge-vmm"; do
		if [ -n "$vmm" ] && [ -x "$vmm" ]; then
			_kvm_copy_elf "$stage" "$vmm" /usr/bin/forge-vmm
			break
		fi
	done
	cp "$FORGE_TESTHELPER" "$stage/usr/bin/forge-testhelper"
	cp "$script" "$stage/harness/script"
	cp "$(dirname "$KVM_HARNESS_SELF")/guest-lib.sh" "$stage/harness/lib.sh"
	for f in "$@"; do
		if [ -d "$f" ]; then
			cp -a "$f" "$stage/files/"
		else
			ln "$f" "$stage/files/$(basename "$f")" 2>/dev/null || cp "$f" "$stage/files/"
		fi
	done
	_kvm_cpio "$stage" "$work/run.cpio"
	rm -rf "$stage"
	# the kernel unpacks concatenated archives one after the other
	cat "$base/base.cpio" "$work/run.cpio" >"$work/initrd"
	rm -f "$work/run.cpio"
	# tsc=reliable: TCG's TSCs follow the host clock, but the guest's warp
	# check would mark them unstable and fall back to HPET, whose every read
	# is an emulated MMIO access
	start=$(date +%s.%N)
	: >"$work/serial.raw"
	timeout -k 10 "${KVM_HARNESS_TIMEOUT:-600}" "$KVM_HARNESS_QEMU" \
		-cpu max -m "${KVM_HARNESS_MEM:-4096}" -smp "${KVM_HARNESS_SMP:-2}" -accel tcg,thread=multi \
		-nographic -nodefaults -no-reboot -monitor none -serial "file:$work/serial.raw" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$base/vmlinuz" -initrd "$work/initrd" \
		-append 'console=ttyS0 quiet panic=-1 tsc=reliable' </dev/null >"$work/qemu.out" 2>&1 &
	qpid=$!
	# an outer kernel whose CPUs are stuck for minutes will not recover: stop
	# it instead of waiting for the timeout (seen once, a vCPU thread and the
	# kvm-pit thread of the nested guest both stuck)
	while kill -0 "$qpid" 2>/dev/null; do
		if grep -qaE 'soft lockup - CPU#[0-9]+ stuck for [0-9]{3,}s' "$work/serial.raw"; then
			wedged=1
			kill "$qpid" 2>/dev/null || true
			break
		fi
		sleep 2
	done
	wait "$qpid" || st=$?
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	rm -f "$work/initrd"
	tr -d '\r' <"$work/serial.raw" >"$work/serial.log"
	mark=$(sed -n 's/^KVM-HARNESS-EXIT: \([0-9]*\).*/\1/p' "$work/serial.log" | tail -n1)
	echo "kvm harness: outer guest ran $secs s (qemu exit $st)" >&2
	if [ -n "$wedged" ] || [ "$st" -eq 124 ] || [ "$st" -eq 137 ]; then
		if [ -n "$wedged" ]; then
			echo "kvm harness: the outer guest's CPUs are stuck (soft lockup), stopped it; console:" >&2
		else
			echo "kvm harness: timed out after ${KVM_HARNESS_TIMEOUT:-600} s; console:" >&2
		fi
		# the first lockup report, and the rest without the repeats
		grep -m1 -A25 'soft lockup' "$work/serial.log" >&2 || true
		grep -v 'soft lockup' "$work/serial.log" | tail -n 60 >&2
		return 125
	fi
	if grep -q '^KVM-HARNESS-ERROR' "$work/serial.log"; then
		grep -A10 '^KVM-HARNESS-ERROR' "$work/serial.log" >&2
		return 125
	fi
	if [ $((st & 1)) -eq 1 ]; then
		v=$((st >> 1))
	elif [ -n "$mark" ]; then
		v=$mark
	else
		echo "kvm harness: the outer guest reported no status (qemu exit $st); console tail:" >&2
		tail -n 30 "$work/serial.log" >&2
		cat "$work/qemu.out" >&2
		return 125
	fi
	if [ -n "$mark" ] && [ "$mark" != "$v" ]; then
		echo "kvm harness: status port says $v, console says $mark" >&2
		return 125
	fi
	return "$v"
}

# kvm_harness_marker WORKDIR NAME: the value of the last KVM-MARK NAME=VALUE
kvm_harness_marker() {
	sed -n "s/^KVM-MARK $2=//p" "$1/serial.log" | tail -n1
}

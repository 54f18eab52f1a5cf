#!/bin/bash
# Benchmark: `forge run --as vm DISK -- /bin/th true`, boot to workload exit,
# against QEMU/KVM with the same kernel, initramfs, command line and disk
# (`-M microvm,pcie=on,rtc=on` and `-M pc` booting the bzImage, and microvm
# booting the disk's uncompressed kernel as forge does, through its PVH
# entry point: `microvm-elf`; the disk as virtio-blk-pci with
# snapshot=on, as forge keeps the image unchanged too), run alternately, RUNS
# times each; and each launcher's memory overhead: peak RSS (VmHWM) minus the
# guest RAM it touched (the resident part of its largest mapping), sampled
# while the guest sleeps.
#
#   bench/vm-boot.sh [FORGE] [RUNS]
#
# Every run reports its boot timestamps (FORGE_VMM_BOOTSTAT=1: forge-vmm's own
# steps on the host's CLOCK_BOOTTIME; forge.bootstat=1: the guest init's, on
# the guest kernel's clock, for QEMU too) and the bench prints the median of
# each phase. VMBOOT_DIAG=1 also boots a disk with initcall_debug once under
# forge and under microvm, the workload `busybox dmesg`, and prints the
# slowest initcalls and the kernel's milestones of each.
#
# Runs inside the nested-KVM harness (tests/kvm/harness.sh: an outer Linux
# guest under QEMU TCG offering /dev/kvm), so absolute times are slow and
# only the ratios mean something. Needs root, qemu-system-x86, busybox-static,
# the tools of `forge export --format disk`, and these targets of FORGE's
# build: forge forge-vmm forge-vminit forge-testhelper vmboot-extract.
#
# QEMU settings found by trying in the harness: microvm needs pcie=on (the
# Debian kernel cannot take virtio-mmio devices from its command line) and
# rtc=on (without an RTC the kernel's rtc_cmos probe spins 4.5 s); pc runs
# with kvm-apic.vapic=false (with the kvmvapic option ROM the guest init's
# ioperm()-granted `out` to 0xf4 faults under nested KVM on TCG, so no status).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
FORGE=$(realpath "${1:-$SRC/build/cli/forge}")
RUNS=${2:-5}
source "$SRC/bench/lib.sh"
vm_bench_setup
source "$SRC/tests/kvm/lib-kvm.sh"
export KVM_HARNESS_TIMEOUT=${KVM_HARNESS_TIMEOUT:-$((300 + RUNS * 4 * 60))}
kdeb=$(kernel_deb cloud)

# the image: busybox and the test helper, 384 MiB, one vCPU
C=$T/ctx
vm_context "$C" sh sleep
vm_spec vmboot "memory: 384M" "cpus: 1" >"$C/spec.yaml" <<'EOF'
  - files:
      - {src: th, dest: /bin/th, mode: "0755"}
      - {src: links/, dest: /bin/}
config:
  cmd: [/bin/th, "true"]
EOF
vm_bench_disk "$C/spec.yaml" vmboot

DIAG=${VMBOOT_DIAG:-0}
diag_files=()
if [ "$DIAG" = 1 ]; then
	sed 's/^  cpus: 1$/  cpus: 1\n  cmdline: "initcall_debug log_buf_len=4M"/' "$C/spec.yaml" >"$C/diag.yaml"
	sed -i 's/^name: vmboot$/name: vmbootdiag/' "$C/diag.yaml"
	f build -q "$C/diag.yaml" >/dev/null
	f export vmbootdiag --format disk -o "$T/dd.img" >/dev/null
	mkdir "$T/diag"
	"$EXTRACT" "$T/dd.img" "$T/diag" >/dev/null
	cp "$T/diag/cmdline" "$T/cmdline.diag"
	diag_files=("$T/dd.img" "$T/cmdline.diag")
fi

# the launchers, in the order of the first round (rotated each round)
names="forge microvm pc microvm-elf"
cat >"$T/guest.sh" <<EOF
RUNS=$RUNS
DIAG=$DIAG
names="$names"
DMESG_ARGS=$(hexargs /bin/busybox dmesg)
TRUE_ARGS=$(hexargs /bin/th true)
SLEEP_ARGS=$(hexargs /bin/sleep 4)
EOF
cat >>"$T/guest.sh" <<'GUEST'
. /harness/lib.sh
B=$KVM_FILES
now() { cut -d' ' -f1 /proc/uptime; }
# boot timestamps: forge-vmm's (host) and forge-vminit's (guest), on stderr;
# QEMU gets the command line forge builds: the disk's (console=ttyS0 ...),
# what forge adds without --verbose (qemu_boot), forge.bootstat=1 and the
# arguments
export FORGE_VMM_BOOTSTAT=1
launch() { # launch NAME ARGS_HEX ARGV...: one of the three; execs, so call it in a subshell
	case $1 in
	forge) shift 2; exec $FORGE --store /tmp/store run --as vm "${QEMU_DISK:-$B/d.img}" -- "$@" ;;
	microvm) qemu_boot microvm,pcie=on,rtc=on 384 "forge.bootstat=1 forge.args=$2" ;;
	microvm-elf) QEMU_KERNEL=$B/vmlinux qemu_boot microvm,pcie=on,rtc=on 384 "forge.bootstat=1 forge.args=$2" ;;
	pc) qemu_boot pc 384 "forge.bootstat=1 forge.args=$2" -global kvm-apic.vapic=false ;;
	esac
}
ok_status() { # the launcher's exit status for a workload status 0
	case $1 in forge) echo 0 ;; *) echo 1 ;; esac # QEMU: (0 << 1) | 1
}
# phases T0 T1 < OUTPUT: one run's phases in ms (see bench/README.md); all
# guest stamps are the guest kernel's CLOCK_BOOTTIME, forge-vmm's the host's
phases() {
	awk -v t0=$1 -v t1=$2 '
	function kv(line, out,   i, n, f, e) {
		n = split(line, f, " ")
		for (i = 3; i <= n; i++) { e = index(f[i], "="); out[substr(f[i], 1, e - 1)] = substr(f[i], e + 1) }
	}
	function ms(x) { return sprintf("%.0f", x * 1000) }
	/^forge-vmm: bootstat / { kv($0, h); hv = 1 }
	/^forge-vminit: bootstat / { kv($0, g); gv = 1 }
	END {
		if (!gv) exit
		out = "total=" ms(t1 - t0) " outside_guest_clock=" ms(t1 - t0 - g["exit"])
		if (g["kernel_init"] != "-") out = out " kernel_to_init=" ms(g["kernel_init"])
		out = out " init_start=" ms(g["init"]) " modules=" ms(g["modules"] - g["init"]) \
			" root=" ms(g["root"] - g["modules"]) " root_to_exec=" ms(g["workload"] - g["root"]) \
			" workload=" ms(g["exit"] - g["workload"])
		if (hv) {
			# the host clock from the first KVM_RUN to the guest exit,
			# less the guest clock from init to exit: the time before init
			# as the host saw it (bzImage decompression, early boot)
			out = out " launcher_setup=" ms(h["first_run"] - t0) " cli=" ms(h["create"] - t0) \
				" vmm_setup=" ms(h["first_run"] - h["create"]) " vm_devices=" ms(h["devices"] - h["create"]) \
				" kernel_load=" ms(h["loaded"] - h["devices"]) " vcpus=" ms(h["first_run"] - h["loaded"]) \
				" first_run_to_init=" ms(h["end"] - h["first_run"] - (g["exit"] - g["init"])) \
				" shutdown=" ms(t1 - h["end"])
		}
		print out
	}'
}
# medians FILE: the median of each key=value over the lines of FILE
medians() {
	awk '{ for (i = 1; i <= NF; i++) { e = index($i, "="); k = substr($i, 1, e - 1); v[k, ++n[k]] = substr($i, e + 1); if (!(k in seen)) { seen[k] = 1; keys[++nk] = k } } }
	END {
		for (j = 1; j <= nk; j++) {
			k = keys[j]; m = n[k]
			for (a = 1; a <= m; a++) x[a] = v[k, a] + 0
			for (a = 2; a <= m; a++) { y = x[a]; for (b = a - 1; b >= 1 && x[b] > y; b--) x[b + 1] = x[b]; x[b + 1] = y }
			printf "%s%s=%s", (j > 1 ? " " : ""), k, (m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2)
		}
		print ""
	}' "$1"
}
kvm-mark thp "$(cat /sys/kernel/mm/transparent_hugepage/enabled) / $(cat /sys/kernel/mm/transparent_hugepage/defrag)"
for i in $(seq 1 $RUNS); do
	# rotate the order each round
	order=$(echo $names | awk -v i=$i '{ for (k = 0; k < NF; k++) printf "%s ", $(((k + i) % NF) + 1) }')
	for n in $order; do
		t0=$(now)
		st=0
		(launch $n $TRUE_ARGS /bin/th true) >/tmp/out.$n 2>&1 </dev/null || st=$?
		t1=$(now)
		s=$(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.2f", b - a }')
		if [ "$st" != "$(ok_status $n)" ]; then
			echo "FAIL: $n run $i: exit $st"
			tail -n 20 /tmp/out.$n
			nfail=$((nfail + 1))
		fi
		echo "run $i $n $s"
		echo $s >>/tmp/times.$n
		p=$(phases $t0 $t1 </tmp/out.$n)
		[ -n "$p" ] && echo "$p" >>/tmp/phases.$n && echo "phases $i $n $p"
	done
done
for n in $names; do
	[ -s /tmp/times.$n ] && kvm-mark median-$n "$(median 2 </tmp/times.$n)"
	[ -s /tmp/phases.$n ] && kvm-mark phases-$n "$(medians /tmp/phases.$n)"
done

# VMBOOT_DIAG=1: the kernel log of one boot with initcall_debug under each
if [ "$DIAG" = 1 ]; then
	export QEMU_DISK=$B/dd.img QEMU_CMDLINE=$B/cmdline.diag
	for n in forge microvm; do
		(launch $n $DMESG_ARGS /bin/busybox dmesg) >/tmp/dmesg.$n 2>&1 </dev/null || true
		sed "s/^/DMESG-$n /" /tmp/dmesg.$n
	done
	unset QEMU_DISK QEMU_CMDLINE
fi

# memory: VmHWM and the resident size of the largest mapping (guest RAM)
for n in $names; do
	(launch $n $SLEEP_ARGS /bin/sleep 4) >/tmp/out.$n 2>&1 </dev/null &
	pid=$!
	hwm=0 guest=0 size=0
	while [ -e /proc/$pid/status ]; do
		h=$(awk '/^VmHWM:/ { print $2 }' /proc/$pid/status 2>/dev/null)
		g=$(awk '/^Size:/ { s = $2 } /^Rss:/ { if (s > max) { max = s; r = $2 } } END { print max + 0, r + 0 }' \
			/proc/$pid/smaps 2>/dev/null)
		# VmHWM only grows; the guest RAM sample is taken from the largest
		# mapping seen (at exit the launcher unmaps it before its process ends)
		[ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
		if [ -n "$g" ] && [ "${g% *}" -ge "$size" ] && [ "${g#* }" -ge "$guest" ]; then
			size=${g% *}
			guest=${g#* }
		fi
		sleep 0.3
	done
	wait $pid || true
	kvm-mark mem-$n "hwm=$hwm guest_rss=$guest guest_map=$size overhead=$((hwm - guest))"
done
checks_done
GUEST

vm_bench_run "$T/boot/vmlinux" "${diag_files[@]}"
grep -E '^run ' "$T/h/serial.log"
m() { kvm_harness_marker "$T/h" "$1"; }
fm=$(m median-forge) mm=$(m median-microvm) pm=$(m median-pc) em=$(m median-microvm-elf)
echo
printf 'boot to workload exit, median of %d runs each (nested KVM under TCG: compare ratios only)\n' "$RUNS"
printf '  forge run --as vm:          %6.2f s\n' "$fm"
printf '  qemu -M microvm (pcie,rtc): %6.2f s   forge/microvm = %.2f\n' "$mm" "$(echo "$fm / $mm" | bc -l)"
printf '  qemu -M pc:                 %6.2f s   forge/pc      = %.2f\n' "$pm" "$(echo "$fm / $pm" | bc -l)"
printf '  qemu -M microvm, the uncompressed kernel (PVH entry):\n'
printf '                              %6.2f s   forge/microvm-elf = %.2f\n' "$em" "$(echo "$fm / $em" | bc -l)"
echo "phases, ms, medians (bench/README.md explains them; the guest side from forge-vminit's"
echo "timestamps on the guest kernel's clock, forge's launcher side from forge-vmm's):"
for n in $names; do
	printf '  %-11s %s\n' "$n" "$(m phases-$n)"
done
echo "memory, KiB (peak RSS, resident guest RAM, overhead = the difference):"
for n in $names; do
	printf '  %-11s %s\n' "$n" "$(m mem-$n)"
done
if [ "$DIAG" = 1 ]; then
	for n in forge microvm; do
		echo
		echo "$n, initcall_debug boot: the slowest initcalls (usecs)"
		grep "^DMESG-$n " "$T/h/serial.log" | sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\2 \1/p' |
			sort -rn | head -n 15 | sed 's/^/  /'
		echo "$n: milestones"
		grep "^DMESG-$n " "$T/h/serial.log" | grep -E 'Run /init|Freeing unused|Unpacking initramfs|Trying to unpack|clocksource|virtio_blk|vda|tsc:|Calibrating|i8042|rtc_cmos|serial8250|ACPI: Interpreter|PCI: Using|smpboot|Write protecting' |
			sed "s/^DMESG-$n /  /" | head -n 40
	done
fi

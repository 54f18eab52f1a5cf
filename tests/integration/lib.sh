# Shared helpers for integration tests (sourced).
set -euo pipefail

: "${FORGE:?FORGE must point at the forge binary}"
: "${FORGE_SRC:?}"

T=$(mktemp -d /tmp/forge-test.XXXXXX)
STORE=$T/store
cleanup_t() {
	# unmount anything a failed run left behind before removing
	grep -F " $T/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup_t EXIT

f() { "$FORGE" --store "$STORE" "$@"; }

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect_status N CMD...: runs CMD, fails unless it exits N.
expect_status() {
	local want=$1 got=0
	shift
	"$@" || got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root" >&2
		exit 77
	fi
}

# need_busybox: skip (77) without busybox (busybox-static) at BUSYBOX
# (default /bin/busybox)
need_busybox() {
	BUSYBOX=${BUSYBOX:-/bin/busybox}
	[ -x "$BUSYBOX" ] || { echo "SKIP: $BUSYBOX (busybox-static) is missing" >&2; exit 77; }
}

# kernel_deb [cloud|generic]: path of a Debian kernel package, downloaded once
# into /var/cache/forge-test (the current version, resolved through the meta
# package; nothing is installed).
kernel_deb() {
	local flavour=${1:-cloud} meta pkg cache=/var/cache/forge-test f
	meta=linux-image-$([ "$flavour" = cloud ] && echo cloud-amd64 || echo amd64)
	mkdir -p "$cache"
	pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || { echo "cannot resolve $meta (apt-cache)" >&2; return 1; }
	f=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | tail -n1)
	if [ -z "$f" ]; then
		(cd "$cache" && apt-get download -qq "$pkg" >/dev/null 2>&1) ||
			(apt-get update -qq >/dev/null 2>&1 && cd "$cache" && apt-get download -qq "$pkg" >/dev/null)
		f=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | tail -n1)
	fi
	[ -n "$f" ] || { echo "cannot download $pkg" >&2; return 1; }
	echo "$f"
}

# hexargs ARG...: the docs/vm-protocol.md encoding (NUL-joined, hex)
hexargs() {
	local first=1 a
	for a in "$@"; do
		[ $first = 1 ] || printf '00'
		printf '%s' "$a" | od -An -tx1 -v | tr -d ' \n'
		first=0
	done
}

# bb_context DIR [APPLET...]: a build context DIR (created) with the busybox
# package of specs/examples as bb.deb and, for each APPLET, a link
# links/APPLET -> busybox (installed by a files: entry {src: links/, dest: /bin/})
bb_context() {
	local d=$1 a
	shift
	mkdir -p "$d"
	cp "$FORGE_SRC"/specs/examples/debs/busybox-static_*.deb "$d/bb.deb"
	[ $# -eq 0 ] || mkdir -p "$d/links"
	for a in "$@"; do ln -sf busybox "$d/links/$a"; done
}

# sh_link_tar FILE: an archive of one entry, the symlink bin/sh -> busybox
# (the busybox package has no /bin/sh)
sh_link_tar() {
	python3 - "$1" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    ti = tarfile.TarInfo("bin/sh"); ti.type = tarfile.SYMTYPE; ti.linkname = "busybox"; t.addfile(ti)
PY
}

# bb_spec NAME <BODY: a spec on stdout: NAME, source_date_epoch 1700000000,
# the busybox package (bb.deb) as the first layer, then BODY (the other
# layers, config:)
bb_spec() {
	printf 'forge: 1\nname: %s\nsource_date_epoch: 1700000000\nlayers:\n  - deb: bb.deb\n' "$1"
	cat
}

# vm_spec NAME [KEY...] <BODY: bb_spec NAME and a vm: section booting
# kernel.deb (see vm_context), with KEY... ("memory: 256M" "cpus: 1")
vm_spec() {
	local k
	bb_spec "$1"
	shift
	printf 'vm:\n  kernel: {deb: kernel.deb}\n'
	for k in "$@"; do printf '  %s\n' "$k"; done
}

# need_disk_tools [TOOL...]: skip (77) unless `forge export --format disk`
# can run here (its tools, TOOL..., systemd-boot's EFI stub); FORGE_VMINIT
# defaults to the build's
need_disk_tools() {
	local tool
	for tool in mke2fs mkfs.fat mcopy objcopy "$@"; do
		command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed" >&2; exit 77; }
	done
	[ -r /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || { echo "SKIP: systemd-boot-efi missing" >&2; exit 77; }
	export FORGE_VMINIT=${FORGE_VMINIT:-$(dirname "$FORGE")/../runtime/init/forge-vminit}
}

# need_kernel_deb: skip (77) without the Debian cloud kernel package; sets kdeb
need_kernel_deb() {
	kdeb=$(kernel_deb cloud) || { echo "SKIP: cannot get the Debian cloud kernel package" >&2; exit 77; }
}

# vm_context DIR [APPLET...]: bb_context DIR APPLET..., the cloud kernel
# package ($kdeb, see need_kernel_deb) as kernel.deb, and the static test
# helper as th when FORGE_TESTHELPER is set
vm_context() {
	bb_context "$@"
	ln "$kdeb" "$1/kernel.deb" 2>/dev/null || cp "$kdeb" "$1/kernel.deb"
	[ -z "${FORGE_TESTHELPER:-}" ] || cp "$FORGE_TESTHELPER" "$1/th"
}

# vm_disk SPEC NAME DISK: builds SPEC and exports its image NAME as DISK
vm_disk() {
	f build -q "$1" >/dev/null
	f export "$2" --format disk -o "$3" >/dev/null
}

# docker_archive IMAGE TAG OUT: IMAGE of the store as a docker-archive (the
# `docker save` layout, made by hand: plain tars) tagged TAG, at OUT
docker_archive() {
	local da l n=0 cfg layers=
	da=$(mktemp -d "$T/da.XXXXXX")
	chmod 755 "$da"
	for l in $(f inspect "$1" | jq -r '.layers[].digest'); do
		n=$((n + 1))
		mkdir -p "$da/l$n"
		zstd -qdc "$STORE/blobs/sha256/${l#sha256:}" >"$da/l$n/layer.tar"
		layers=$layers${layers:+,}\"l$n/layer.tar\"
	done
	cfg=$(f inspect "$1" | jq -r '.manifest.config.digest')
	cp "$STORE/blobs/sha256/${cfg#sha256:}" "$da/config.json"
	printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":[%s]}]\n' "$2" "$layers" >"$da/manifest.json"
	tar -C "$da" -cf "$3" .
}

# stand_in_kernel FILE: a bzImage header and nothing else (all forge checks
# of a kernel before it boots one)
stand_in_kernel() {
	python3 - "$1" <<'PY'
import struct, sys
k = bytearray(0x10000)
k[0x1f1] = 4
k[0x202:0x206] = b'HdrS'
k[0x206:0x208] = struct.pack('<H', 0x020f)
k[0x236:0x238] = struct.pack('<H', 1)
open(sys.argv[1], 'wb').write(k)
PY
}

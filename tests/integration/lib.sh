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

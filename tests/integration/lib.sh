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

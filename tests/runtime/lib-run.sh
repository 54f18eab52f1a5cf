# Shared by the runtime integration tests (sourced): a test root file system
# as a plain directory with the static helper and busybox, driven through the
# hidden `forge run --rootfs DIR` option (see docs/run.md).
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" || exit 1
need_root
: "${FORGE_TESTHELPER:?}"
need_busybox

# make_rootfs DIR: helper as /bin/th, busybox as /bin/sh, passwd/group.
make_rootfs() {
	local d=$1
	mkdir -p "$d/bin" "$d/etc" "$d/home/alice" "$d/tmp"
	cp "$FORGE_TESTHELPER" "$d/bin/th"
	cp "$BUSYBOX" "$d/bin/busybox"
	ln -sf busybox "$d/bin/sh"
	ln -sf busybox "$d/bin/cat"
	ln -sf busybox "$d/bin/echo"
	ln -sf busybox "$d/bin/seq"
	printf 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n' >"$d/etc/passwd"
	printf 'root:x:0:\nalice:x:1001:\nstaff:x:50:alice\nwheel:x:10:bob\n' >"$d/etc/group"
	echo image >"$d/etc/origin"
}

ROOTFS=$T/rootfs
make_rootfs "$ROOTFS"
# per-run dirs go here so a test can check they are removed
RUNTMP=$T/runtmp
mkdir -p "$RUNTMP"
export TMPDIR=$RUNTMP

# r [forge run options] -- CMD...: runs in the test rootfs
r() { "$FORGE" run --rootfs "$ROOTFS" "$@"; }

# expect_line OUTPUT LINE: OUTPUT contains LINE exactly
expect_line() {
	grep -qxF -- "$2" <<<"$1" || fail "expected line '$2' in output:
$1"
}

# eventually CMD...: CMD succeeds within 10 s. forge reports a run's status
# first and removes its directories and cgroup in a detached process after.
eventually() {
	local i
	for i in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

runtmp_empty() { [ -z "$(ls -A "$RUNTMP")" ]; }
leftover_check() {
	eventually runtmp_empty || fail "per-run directories left behind: $(ls "$RUNTMP")"
}

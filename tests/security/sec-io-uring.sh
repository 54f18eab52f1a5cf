#!/bin/bash
# seccomp denies io_uring as Docker's default profile does: its submissions
# run system calls the filter never sees.
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

host=$("$FORGE_TESTHELPER" io-uring)
grep -qx 'io_uring=ok' <<<"$host" ||
	{ echo "SKIP: io_uring is not available on this host ($host)" >&2; exit 77; }
out=$(r -- /bin/th io-uring)
expect_line "$out" "io_uring=EPERM"
expect_line "$out" "io_uring_enter=EPERM"
expect_line "$out" "io_uring_register=EPERM"
echo PASS

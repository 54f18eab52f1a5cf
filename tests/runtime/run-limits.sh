#!/bin/bash
# cgroup limits: readback inside, OOM -> 137 + "out of memory", fork bomb
# contained by the pids limit, cgroup removed afterwards.
source "$(dirname "$0")/lib-run.sh" || exit 1

# the run's cgroups are named forge-PID-*, PID being forge's
cgroups_of() { find /sys/fs/cgroup -maxdepth 6 -type d -name "forge-$1-*" 2>/dev/null; }
no_cgroups_of() { [ -z "$(cgroups_of "$1")" ]; }

"$FORGE" run --rootfs "$ROOTFS" --memory 64M --pids 50 --cpus 0.5 -- /bin/th cgroup >"$T/cg.out" &
pid=$!
wait $pid || fail "limits run failed"
eventually no_cgroups_of $pid || fail "cgroups left behind: $(cgroups_of $pid)"
out=$(cat "$T/cg.out")
expect_line "$out" "memory=67108864"
expect_line "$out" "pids=50"
grep -qxE 'cpu_quota=50000|cpu=50000 100000' <<<"$out" || fail "cpu limit not visible: $out"

# memory: the workload is killed, forge says so and exits 137
got=0
"$FORGE" run --rootfs "$ROOTFS" --memory 32M -- /bin/th memhog 256 >/dev/null 2>"$T/oom.err" &
pid=$!
wait $pid || got=$?
[ "$got" -eq 137 ] || fail "memhog over the limit exited $got, expected 137"
grep -q "out of memory" "$T/oom.err" || fail "no 'out of memory' message: $(cat "$T/oom.err")"
eventually no_cgroups_of $pid || fail "cgroups left behind after OOM: $(cgroups_of $pid)"
# under the limit it runs normally
expect_status 0 r --memory 64M -- /bin/th memhog 16

# fork bomb: stops at the pids limit
out=$(r --pids 32 -- /bin/th forkbomb || true)
n=$(sed -n 's/^forked=//p' <<<"$out")
[ -n "$n" ] && [ "$n" -lt 32 ] || fail "fork bomb not contained: $out"
grep -q '^fork_error=Resource temporarily unavailable' <<<"$out" || fail "fork did not fail: $out"

expect_status 2 "$FORGE" run --rootfs "$ROOTFS" --memory lots -- /bin/th true
leftover_check
echo PASS

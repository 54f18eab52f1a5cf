#!/bin/bash
# `forge run -t` with stdin not a terminal answers as docker does (125, "the
# input device is not a TTY"); SIGTERM/SIGINT always end a run: forwarded
# first, then a second signal or the grace period (--stop-timeout) kills the
# container, status 128+N. A workload that handles the signal keeps its status.
source "$(dirname "$0")/../runtime/lib-run.sh" || exit 1

err=$(r -t -- /bin/sh </dev/null 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "-t on /dev/null exited $st: $err"
grep -q "the input device is not a TTY" <<<"$err" || fail "unexpected message: $err"
err=$(echo exit | r -t -- /bin/sh 2>&1) && st=0 || st=$?
[ "$st" = 125 ] || fail "-t on a pipe exited $st: $err"

# stubborn: a shell that ignores SIGTERM and SIGINT
stubborn='trap "" TERM INT; echo ready; while :; do /bin/th sleep 1; done'
start() { # OPTIONS...: forge in the background, waits for "ready"
	"$FORGE" run --rootfs "$ROOTFS" "$@" -- /bin/sh -c "$stubborn" >"$T/out" 2>&1 &
	pid=$!
	for _ in $(seq 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$T/out" || fail "the workload did not start: $(cat "$T/out")"
}
finish() { # EXPECTED_STATUS
	local st=0
	wait $pid || st=$?
	[ "$st" = "$1" ] || fail "forge exited $st, expected $1: $(cat "$T/out")"
}
# a second SIGTERM kills it: 143
start
kill -TERM $pid
sleep 0.3
kill -0 $pid 2>/dev/null || fail "forge ended on the first SIGTERM although the workload ignores it"
kill -TERM $pid
finish 143
# SIGINT twice: 130
start
kill -INT $pid
sleep 0.3
kill -INT $pid
finish 130
# one SIGTERM and the grace period: 143 (bounded by timeout, not timed)
"$FORGE" run --rootfs "$ROOTFS" --stop-timeout 1 -- /bin/sh -c "$stubborn" >"$T/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q ready "$T/out" 2>/dev/null && break; sleep 0.1; done
kill -TERM $pid
finish 143
expect_status 2 r --stop-timeout 0 -- /bin/th true

# with -t too (the shell that SIGTERM did not end)
if command -v script >/dev/null; then
	mkfifo "$T/in"
	exec 3<>"$T/in" # input that stays open and says nothing
	script -qec "sh -c 'echo \$\$ >$T/pid; exec $FORGE run --rootfs $ROOTFS -t --stop-timeout 2 -- /bin/sh'" /dev/null \
		<"$T/in" >"$T/tty.out" 2>&1 &
	spid=$!
	for _ in $(seq 100); do [ -s "$T/pid" ] && break; sleep 0.1; done
	sleep 0.5
	fpid=$(cat "$T/pid")
	kill -TERM "$fpid"
	st=0
	timeout 60 tail --pid="$fpid" -f /dev/null || st=$?
	[ "$st" = 0 ] || { kill -KILL "$fpid" 2>/dev/null; fail "forge -t did not end on SIGTERM"; }
	wait $spid || true
	exec 3>&-
fi
leftover_check
echo PASS

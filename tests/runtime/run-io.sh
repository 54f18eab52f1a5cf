#!/bin/bash
# Terminal (-t), stdin, volumes (-v ro/rw), --read-only, signal forwarding.
source "$(dirname "$0")/lib-run.sh" || exit 1

# signals sent to forge reach the workload
for sig in TERM INT HUP USR1 USR2 QUIT; do
	"$FORGE" run --rootfs "$ROOTFS" -- /bin/th signals 10 >"$T/sig.out" &
	pid=$!
	# a loaded machine can take seconds to start it: wait for its handlers
	for _ in $(seq 300); do grep -q ready "$T/sig.out" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$T/sig.out" || fail "SIG$sig: the workload did not start in 30 s"
	kill -$sig $pid
	st=0
	wait $pid || st=$?
	grep -q '^signal=' "$T/sig.out" || fail "SIG$sig: no report: $(cat "$T/sig.out")"
	grep -q '^signal=none' "$T/sig.out" && fail "SIG$sig was not forwarded"
	[ "$st" -eq 0 ] || fail "SIG$sig: forge exited $st"
done

# -t: the workload gets a terminal from the container's devpts
command -v script >/dev/null || { echo "SKIP: script (util-linux) missing" >&2; exit 77; }
out=$(script -qec "$FORGE run --rootfs $ROOTFS -t -- /bin/th tty" /dev/null | tr -d '\r\0' | sed 's/\^@//g')
expect_line "$out" "isatty=1"
expect_line "$out" "ttyname=/dev/pts/0"
# typed input reaches the workload through the pty, and its status comes back
out=$( (sleep 0.5; printf 'hello-pty\n') | script -qec "$FORGE run --rootfs $ROOTFS -t -- /bin/sh -c 'read x; echo got=\$x; exit 3'" /dev/null | tr -d '\r\0' | sed 's/\^@//g') || true
grep -q '^got=hello-pty' <<<"$out" || fail "pty input not relayed: $out"
# everything the workload writes before exiting arrives
out=$(script -qec "$FORGE run --rootfs $ROOTFS -t -- /bin/sh -c 'seq 1 5000'" /dev/null | tr -d '\r\0' | sed 's/\^@//g')
[ "$(grep -c . <<<"$out")" = 5000 ] && [ "$(tail -n1 <<<"$out")" = 5000 ] ||
	fail "pty output truncated: $(grep -c . <<<"$out") lines, last '$(tail -n1 <<<"$out")'"
# window size: initial and on SIGWINCH
python3 "$(dirname "$0")/tty-winsize.py" "$FORGE" "$ROOTFS" || fail "window size not relayed"
# without -t there is no terminal
expect_line "$(r -- /bin/th tty </dev/null)" "isatty=0"

# stdin
expect_line "$(printf 'line1\n' | r -- /bin/th cat)" "line1"

# volumes
mkdir -p "$T/vol"
echo from-host >"$T/vol/file"
expect_line "$(r -v "$T/vol:/data:ro" -- /bin/th cat /data/file)" "from-host"
out=$(r -v "$T/vol:/data:ro" -- /bin/th write /data/new x || true)
expect_line "$out" "write=Read-only file system"
expect_line "$(r -v "$T/vol:/data" -- /bin/th write /data/new x)" "write=ok"
[ -f "$T/vol/new" ] || fail "rw volume write did not reach the host"
expect_line "$(r -v "$T/vol/file:/etc/one:ro" -- /bin/th cat /etc/one)" "from-host"
expect_status 2 "$FORGE" run --rootfs "$ROOTFS" -v "$T/vol:relative" -- /bin/th true
# a symlink in the image cannot redirect a mount point to the host
ln -s /tmp/forge-escape-target "$ROOTFS/evil"
r -v "$T/vol:/evil/x:ro" -- /bin/th true || true
[ ! -e /tmp/forge-escape-target ] || { rm -rf /tmp/forge-escape-target; fail "mount point created on the host"; }

# --read-only
expect_line "$(r --read-only -- /bin/th write /etc/x y || true)" "write=Read-only file system"
expect_line "$(r --read-only -- /bin/th write /dev/shm/x y)" "write=ok"
leftover_check
echo PASS

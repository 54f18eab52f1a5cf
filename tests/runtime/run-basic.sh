#!/bin/bash
# forge run basics: PID 1 supervision, hostname, exit statuses, env, workdir,
# user lookup in the image, stdin, per-run directories removed.
source "$(dirname "$0")/lib-run.sh" || exit 1

out=$(r -- /bin/th pid)
expect_line "$out" "pid=2"
expect_line "$out" "ppid=1"
out=$(r -- /bin/sh -c 'cat /proc/1/cmdline | tr "\0" " "')
[[ "$out" == forge-init* ]] || fail "PID 1 is not forge-init: $out"

expect_line "$(r -- /bin/th hostname)" "hostname=forge"
expect_line "$(r --hostname box1 -- /bin/th hostname)" "hostname=box1"

# exit statuses per contract
expect_status 0 r -- /bin/th true
expect_status 1 r -- /bin/th false
expect_status 42 r -- /bin/th exit 42
expect_status 143 r -- /bin/th kill-self 15
expect_status 137 r -- /bin/th kill-self 9
expect_status 127 r -- /no/such/command
expect_status 127 r -- no-such-command-in-path
expect_status 126 r -- /etc/passwd
err=$(r -- /no/such/command 2>&1 >/dev/null || true)
[[ "$err" == *"cannot execute '/no/such/command'"* ]] || fail "no message for a missing command: $err"
expect_status 125 r --user nosuchuser -- /bin/th true
expect_status 2 "$FORGE" run --rootfs "$ROOTFS" --network bogus -- /bin/th true

# environment, PATH lookup, workdir
out=$(r -e FOO=bar -e FOO=baz -- th env FOO)
expect_line "$out" "FOO=baz"
expect_line "$(r --workdir /etc -- /bin/th cwd)" "cwd=/etc"
expect_line "$(r --workdir /new/dir -- /bin/th cwd)" "cwd=/new/dir"

# user: names from the image's /etc/passwd and /etc/group (not the host's)
out=$(r --user alice -- /bin/th id)
expect_line "$out" "uid=1000"
expect_line "$out" "gid=1001"
expect_line "$out" "groups=50,1001"
out=$(r --user alice:wheel -- /bin/th id)
expect_line "$out" "gid=10"
out=$(r --user 1234:5678 -- /bin/th id)
expect_line "$out" "uid=1234"
expect_line "$out" "gid=5678"

# stdin passes through without -t
expect_line "$(echo piped-input | r -- /bin/th cat)" "piped-input"

# nothing inherited: only 0, 1, 2 are open in the workload
out=$(r -- /bin/sh -c 'ls /proc/self/fd | tr "\n" " "' 3</dev/null 7</dev/null)
[ "$out" = "0 1 2 3 " ] || fail "unexpected open fds in the workload: $out (3 is ls's own)"

# the upper dir is per run and removed afterwards
r -- /bin/th write /etc/scratch x >/dev/null
[ ! -e "$ROOTFS/etc/scratch" ] || fail "a write reached the lower layer"
expect_status 1 r -- /bin/th read /etc/scratch
# --upper-tmpfs: the writes live in the container's own tmpfs, the host's run
# directory holds no upper, and nothing reaches the lower layer
"$FORGE" run --upper-tmpfs --rootfs "$ROOTFS" -- /bin/sh -c 'echo in-memory >/etc/scratch; cat /etc/scratch; exec /bin/th sleep 2' >"$T/tu.out" &
pid=$!
for _ in $(seq 50); do grep -q in-memory "$T/tu.out" 2>/dev/null && break; sleep 0.1; done
grep -qx in-memory "$T/tu.out" || fail "--upper-tmpfs: write not read back: $(cat "$T/tu.out")"
run_dir=$(ls -d "$RUNTMP"/run-* | head -n1)
[ -d "$run_dir" ] || fail "--upper-tmpfs: no run directory while running"
[ -z "$(ls -A "$run_dir")" ] || fail "--upper-tmpfs: files of the run on the host: $(ls -R "$run_dir")"
wait $pid || fail "--upper-tmpfs run failed"
[ ! -e "$ROOTFS/etc/scratch" ] || fail "--upper-tmpfs: a write reached the lower layer"
# the provided /etc files come from that tmpfs, and a -v still replaces them
expect_line "$(r --upper-tmpfs --hostname tmpfs-host -- /bin/th cat /etc/hostname)" "tmpfs-host"
grep -q "127.0.1.1.tmpfs-host" <<<"$(r --upper-tmpfs --hostname tmpfs-host -- /bin/th cat /etc/hosts)" ||
	fail "--upper-tmpfs: /etc/hosts lacks the hostname"
echo "from -v" >"$T/myhosts"
expect_line "$(r --upper-tmpfs -v "$T/myhosts:/etc/hosts:ro" -- /bin/th cat /etc/hosts)" "from -v"
leftover_check
echo PASS

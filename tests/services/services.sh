#!/bin/bash
# Detached containers beyond the parity suite: exec confinement (the same
# namespaces, cgroup, capabilities, seccomp, no_new_privs, fds, user, env,
# workdir as the run's workload; -t), a supervisor killed with SIGKILL, a
# reboot and a reused pid never shown as up, concurrent names, log rotation,
# logs -f, stop escalating to SIGKILL, --entrypoint, usage errors.
source "$(dirname "$0")/lib-services.sh" || exit 1
svc_context "$T/ctx"
svc_spec "$T/ctx" svcimg
f build -q "$T/ctx/svcimg.yaml" >/dev/null
RUNS=$STORE/run
trap 'for p in $(f ps -q 2>/dev/null); do f rm -f $p >/dev/null 2>&1; done; cleanup_t' EXIT

state_of() { awk -v k="$2" '$1 == k {print $2}' "$RUNS/$1/state"; }
full_id() { basename "$(readlink "$RUNS/names/$1")"; }
wait_log() {
	for _ in $(seq 100); do f logs "$1" 2>/dev/null | grep -q "$2" && return 0; sleep 0.1; done
	fail "no '$2' in the log of $1: $(f logs "$1" 2>&1)"
}

# ---- exec: the same confinement as the workload ----
f run -d --name box --hostname boxhost --memory 64M -e FOO=run --workdir /tmp svcimg \
	-- sh -c 'echo box-up; sleep 1000' >/dev/null
wait_log box box-up
id=$(full_id box)
init=$(state_of "$id" init_pid)
probe='grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status'
want=$(f run --memory 64M svcimg -- sh -c "$probe")
got=$(f exec box sh -c "$probe")
[ "$got" = "$want" ] || fail "exec's confinement differs from a run's:
run:  $want
exec: $got"
grep -q "Seccomp:	2" <<<"$got" || fail "no seccomp filter in exec: $got"
grep -q "NoNewPrivs:	1" <<<"$got" || fail "no no_new_privs in exec: $got"
for ns in mnt uts ipc net cgroup pid; do
	a=$(readlink /proc/"$init"/ns/$ns)
	b=$(f exec box sh -c "readlink /proc/self/ns/$ns")
	[ "$a" = "$b" ] || fail "exec is not in the container's $ns namespace: $b vs init's $a"
done
[ "$(f exec box hostname)" = boxhost ] || fail "exec: hostname"
[ "$(f exec box sh -c 'cat /proc/self/cgroup')" = "$(f exec box sh -c 'cat /proc/1/cgroup')" ] ||
	fail "exec is not in the container's cgroup: $(f exec box sh -c 'cat /proc/self/cgroup; cat /proc/1/cgroup')"
out=$(f exec box sh -c 'ls /proc/self/fd | tr "\n" " "' 5</dev/null 7</dev/null)
[ "$out" = "0 1 2 3 " ] || fail "exec: unexpected open fds: $out (3 is ls's own)"
[ "$(f exec box sh -c 'cat /proc/1/cmdline | tr "\0" " " | cut -c1-10')" = "forge-init" ] ||
	fail "exec does not see the container's PID 1"
[ "$(f exec box sh -c 'readlink /proc/self/root')" = / ] || fail "exec: root"
[ "$(f exec box sh -c 'echo $FOO')" = run ] || fail "exec: the run's environment"
[ "$(f exec -e FOO=exec box sh -c 'echo $FOO $FROM_IMAGE')" = "exec image" ] || fail "exec -e"
[ "$(f exec box sh -c pwd)" = /tmp ] || fail "exec: the run's workdir"
[ "$(f exec --workdir /etc box sh -c pwd)" = /etc ] || fail "exec --workdir"
out=$(f exec --user alice box th id)
grep -qx uid=1000 <<<"$out" && grep -qx gid=1001 <<<"$out" || fail "exec --user alice: $out"
expect_status 125 f exec --user nosuch box true
expect_status 125 f exec --workdir /no/such box true
expect_status 127 f exec box /no/such
expect_status 126 f exec box /etc/passwd
expect_status 3 f exec box sh -c 'exit 3'
[ "$(echo piped | f exec box cat)" = piped ] || fail "exec: stdin"
# a file the container writes is seen by exec (same mount namespace, same upper)
f exec box sh -c 'echo shared > /tmp/x'
[ "$(f exec box cat /tmp/x)" = shared ] || fail "exec: writes not shared"
# -t: a pty of the container's devpts, sized like ours
if command -v python3 >/dev/null; then
	python3 "$(dirname "$0")/exec-tty.py" "$FORGE" "$STORE" box || fail "exec -t"
fi

# a reused pid: the state names a live process with another start time
cp "$RUNS/$id/state" "$T/state.saved"
sed -i "s/^init_pid .*/init_pid $$/" "$RUNS/$id/state"
expect_status 1 f exec box true
sed -i "s/^sup_pid .*/sup_pid $$/" "$RUNS/$id/state"
f ps -a | grep " box " | grep -q "exited (unknown)" || fail "a reused supervisor pid shown as up: $(f ps -a)"
expect_status 1 f kill -s TERM box
cp "$T/state.saved" "$RUNS/$id/state"
# a reboot: another boot id
sed -i "s/^boot .*/boot 00000000-0000-0000-0000-000000000000/" "$RUNS/$id/state"
f ps -a | grep " box " | grep -q "exited (unknown)" || fail "a run of another boot shown as up: $(f ps -a)"
cp "$T/state.saved" "$RUNS/$id/state"
f ps | grep -q " box .* up " || fail "box not up again: $(f ps -a)"

# ---- SIGKILL of the supervisor: the workload ends, ps says so, rm cleans ----
sup=$(state_of "$id" sup_pid)
work=$(state_of "$id" work_pid)
# the run's own cgroups (--memory), which nobody removes when the supervisor dies
cgdirs=$(cat "$RUNS/$id/cgroups")
[ -n "$cgdirs" ] || fail "no cgroups recorded for a run with --memory"
for d in $cgdirs; do [ -d "$d" ] || fail "recorded cgroup $d does not exist"; done
kill -KILL "$sup"
gone() { [ ! -e /proc/$1 ] || grep -q '^State:.*[ZX]' /proc/$1/status; }
for _ in $(seq 100); do gone "$init" && gone "$work" && break; sleep 0.1; done
gone "$work" || fail "the workload process outlived its supervisor"
gone "$init" || fail "the container's init outlived its supervisor"
f ps -a | grep " box " | grep -q "exited (unknown)" || fail "after SIGKILL of the supervisor: $(f ps -a)"
[ -z "$(f ps -q)" ] || fail "ps lists a dead run as up: $(f ps)"
expect_status 1 f wait box
expect_status 1 f exec box true
expect_status 1 f stop box
f rm box >/dev/null
[ ! -e "$RUNS/$id" ] && [ ! -e "$RUNS/names/box" ] || fail "rm left $(ls "$RUNS" "$RUNS/names")"
for d in $cgdirs; do [ ! -d "$d" ] || fail "rm left the run's cgroup $d"; done
f run -d --name box svcimg -- sh -c 'exit 0' >/dev/null || fail "the name was not freed"
f wait box >/dev/null
f rm box >/dev/null

# ---- two runs asking for one name at once: exactly one wins ----
for i in $(seq 8); do
	(f run -d --name race svcimg -- sleep 1000 >"$T/race.$i" 2>"$T/race.$i.err"; echo $? >"$T/race.$i.st") &
done
wait
wins=$(cat "$T"/race.*.st | grep -cx 0 || true)
[ "$wins" = 1 ] || fail "$wins of 8 concurrent runs named 'race' started"
grep -l "already in use" "$T"/race.*.err | wc -l | grep -qx 7 || fail "losers' messages: $(cat "$T"/race.*.err)"
[ "$(f ps -q | wc -l)" = 1 ] || fail "ps after the race: $(f ps -a)"
f rm -f race >/dev/null

# ---- logs: rotation caps the size; -f follows until the end ----
f run -d --name big --log-max 8K svcimg -- sh -c 'seq 1 20000; echo last-line' >/dev/null
[ "$(f wait big)" = 0 ] || fail "big"
bid=$(full_id big)
for l in log log.1; do
	[ "$(stat -c %s "$RUNS/$bid/$l")" -le 8192 ] || fail "$l is over the cap: $(stat -c %s "$RUNS/$bid/$l")"
done
[ "$(f logs --tail 2 big)" = "20000
last-line" ] || fail "logs --tail 2: $(f logs --tail 2 big)"
[ "$(f logs big | wc -c)" -le 16384 ] || fail "logs printed more than two files' worth"
f rm big >/dev/null
f run -d --name slow svcimg -- sh -c 'for i in 1 2 3; do echo tick$i; sleep 0.3; done' >/dev/null
out=$(f logs -f slow)
[ "$out" = "tick1
tick2
tick3" ] || fail "logs -f: $out"
f rm slow >/dev/null
# a detached run's stdin is /dev/null
f run -d --name in svcimg -- sh -c 'cat; echo eof' >/dev/null
[ "$(f wait in)" = 0 ] && [ "$(f logs in)" = eof ] || fail "stdin of a detached run"
f rm in >/dev/null

# ---- stop: SIGKILL after the timeout when SIGTERM is ignored; kill ----
f run -d --name stubborn svcimg -- sh -c 'trap "" TERM; echo armed; while :; do sleep 1; done' >/dev/null
wait_log stubborn armed
f stop -t 1 stubborn >/dev/null
[ "$(f wait stubborn)" = 137 ] || fail "stop of a run ignoring SIGTERM: $(f wait stubborn)"
f run -d --name t svcimg -- sleep 1000 >/dev/null
f kill -s TERM t >/dev/null
[ "$(f wait t)" = 143 ] || fail "kill -s TERM: $(f wait t)"
expect_status 2 f kill -s NOSUCH t
f rm stubborn t >/dev/null
f run -d --name up svcimg -- sleep 1000 >/dev/null
expect_status 1 f rm up
f rm -f up >/dev/null
[ -z "$(f ps -a -q)" ] || fail "runs left: $(f ps -a)"

# ---- --entrypoint, attached and detached; the image's cmd is dropped ----
[ "$(f run --entrypoint /bin/th svcimg -- hostname)" = hostname=forge ] || fail "run --entrypoint"
[ "$(f run --entrypoint /bin/echo svcimg)" = "" ] || fail "--entrypoint keeps the image's cmd"
f run -d --name ep --entrypoint /bin/echo svcimg -- via-entrypoint >/dev/null
f wait ep >/dev/null
[ "$(f logs ep)" = via-entrypoint ] || fail "run -d --entrypoint: $(f logs ep)"
f rm ep >/dev/null

# ---- relative paths are the caller's: a SPEC by a relative path ----
(cd "$T/ctx" && f run -d --name rel svcimg.yaml -- sh -c 'echo relative-spec') >/dev/null
[ "$(f wait rel)" = 0 ] && [ "$(f logs rel)" = relative-spec ] || fail "run -d of a relative SPEC: $(f logs rel)"
f rm rel >/dev/null

# ---- failures to start leave nothing ----
expect_status 127 f run -d --name nope svcimg -- /no/such
err=$(f run -d svcimg -- /no/such 2>&1 || true)
grep -q "cannot execute '/no/such'" <<<"$err" || fail "run -d of a missing command: $err"
expect_status 125 f run -d --user nosuch svcimg -- true
expect_status 125 f run -d no-such-image
[ -z "$(ls "$RUNS" | grep -v names)" ] && [ -z "$(ls "$RUNS/names")" ] ||
	fail "a failed start left $(ls -R "$RUNS")"

# ---- usage errors ----
expect_status 2 f run -d -t svcimg
expect_status 2 f run --name x svcimg -- true
expect_status 2 f run -d --name 'bad/name' svcimg
expect_status 2 f run -d --log-max lots svcimg
expect_status 2 f stop -t soon x
expect_status 2 f exec
expect_status 1 f logs nosuch
echo PASS

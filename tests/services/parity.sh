#!/bin/sh
# The services parity suite: one script, the same cases and expectations for
# --as container (on the host: parity-container.sh) and --as vm (inside the
# nested-KVM harness: parity-vm.sh). POSIX sh: it also runs under busybox.
#
#   KIND=container|vm IMAGE=NAME F="forge --store DIR" sh parity.sh
#
# IMAGE has busybox (sh, sleep) on its PATH. Prints "FAIL: ..." per failed
# check and "PARITY KIND: N failures"; exits with the number of failures.
: "${KIND:?}" "${IMAGE:?}" "${F:?}"
# polls every POLL seconds, WAIT_STEPS times. parity-vm.sh polls once a
# second: in the nested harness every forge started costs the guest's vCPU
# CPU time, and a loaded harness has reset a booting guest (docs/vm.md)
POLL=${POLL:-0.2}
WAIT_STEPS=${WAIT_STEPS:-600}
nfail=0
bad() {
	echo "FAIL: [$KIND] $*"
	nfail=$((nfail + 1))
}
# run CMD...: $out (stdout), $err (stderr), $st (status); the files are this
# run's own (another test may run parity.sh at the same time)
RUN_OUT=$(mktemp) && RUN_ERR=$(mktemp) || exit 1
trap 'rm -f "$RUN_OUT" "$RUN_ERR"' EXIT
run() {
	st=0
	"$@" >"$RUN_OUT" 2>"$RUN_ERR" || st=$?
	out=$(cat "$RUN_OUT")
	err=$(cat "$RUN_ERR")
}
# until_log NAME TEXT: waits until the run's log has TEXT
until_log() {
	i=0
	while [ $i -lt "$WAIT_STEPS" ]; do
		$F logs "$1" 2>/dev/null | grep -q "$2" && return 0
		sleep "$POLL"
		i=$((i + 1))
	done
	return 1
}
ps_line() { $F ps -a | grep " $1 " || true; }

# ---- a service: run -d, ps, logs, name taken, stop with a trap, wait, rm ----
run $F run -d --as "$KIND" --name svc "$IMAGE" -- sh -c \
	'echo service-started; trap "echo got-term; exit 7" TERM; while :; do sleep 1; done'
[ "$st" = 0 ] || bad "run -d: status $st: $err"
id=$out
echo "$id" | grep -qxE '[0-9a-f]{64}' || bad "run -d did not print a 64-hex id: '$id'"
until_log svc service-started || bad "the log never showed the service's output: $($F logs svc 2>&1)"
line=$(ps_line svc)
echo "$line" | grep -q "^$(echo "$id" | cut -c1-12)  svc " || bad "ps: no line for svc with the 12-char id: $line"
echo "$line" | grep -q " $KIND " || bad "ps: kind is not $KIND: $line"
echo "$line" | grep -q " up " || bad "ps: svc is not up: $line"
run $F ps -q
[ "$out" = "$(echo "$id" | cut -c1-12)" ] || bad "ps -q: '$out'"
run $F run -d --as "$KIND" --name svc "$IMAGE" -- sh -c 'exit 0'
[ "$st" = 125 ] || bad "second run -d --name svc: status $st, expected 125"
echo "$err" | grep -q "already in use" || bad "second run -d --name svc: message: $err"
run $F logs --tail 1 svc
[ "$out" = service-started ] || bad "logs --tail 1: '$out'"
run $F logs "$(echo "$id" | cut -c1-8)"
echo "$out" | grep -qx service-started || bad "logs by id prefix: '$out' $err"
run $F exec svc sh -c 'echo in-exec; echo to-stderr >&2; exit 5'
[ "$st" = 5 ] && [ "$out" = in-exec ] && [ "$err" = to-stderr ] ||
	bad "exec: status $st, stdout '$out', stderr '$err'"
run $F exec -e EXTRA=x --workdir /bin svc sh -c 'echo $EXTRA $FROM_IMAGE $(pwd)'
[ "$out" = "x image /bin" ] || bad "exec -e/--workdir: '$out' $err"
run $F exec --user alice svc id -u
[ "$out" = 1000 ] || bad "exec --user alice: '$out' $err"
out=$(echo piped-in | $F exec svc cat 2>&1)
[ "$out" = piped-in ] || bad "exec: stdin: '$out'"
# -t: a terminal of the caller's size; the test helper's pty types into it
if [ -n "${FORGE_TESTHELPER:-}" ]; then
	run "$FORGE_TESTHELPER" pty 30 100 'busybox stty size; echo typed-$((6*7))\nexit 5\n' $F exec -t svc sh
	[ "$st" = 5 ] || bad "exec -t: status $st: $out"
	echo "$out" | grep -q "30 100" || bad "exec -t: the terminal is not 30x100: $out"
	echo "$out" | grep -q "typed-42" || bad "exec -t: input not passed on: $out"
	echo "$out" | grep -q "terminal-restored=1" || bad "exec -t: the caller's terminal modes not restored: $out"
fi
run $F exec svc no-such-command
[ "$st" = 127 ] || bad "exec of a missing command: status $st"
run $F exec svc sh -c 'kill -TERM $$; sleep 5'
[ "$st" = 143 ] || bad "exec of a command killed by SIGTERM: status $st"
run $F stop -t 60 svc
[ "$st" = 0 ] || bad "stop: status $st: $err"
run $F wait svc
[ "$st" = 0 ] && [ "$out" = 7 ] || bad "wait after stop: status $st, printed '$out' (want 7, the trap's)"
line=$(ps_line svc)
echo "$line" | grep -q "exited (7)" || bad "ps -a after stop: $line"
[ -z "$($F ps -q)" ] || bad "ps (without -a) still lists an ended run: $($F ps)"
$F logs svc | grep -qx got-term || bad "the trap's output is not in the log: $($F logs svc)"
run $F stop svc
[ "$st" = 1 ] || bad "stop of an ended run: status $st, expected 1"
run $F exec svc true
[ "$st" = 1 ] || bad "exec into an ended run: status $st, expected 1"
run $F rm svc
[ "$st" = 0 ] || bad "rm: status $st: $err"
[ -z "$(ps_line svc)" ] || bad "rm: svc still listed"
run $F rm svc
[ "$st" = 1 ] || bad "rm of a removed run: status $st, expected 1"
for c in "logs svc" "stop svc" "exec svc true" "wait svc" "kill svc"; do
	run $F $c
	[ "$st" = 1 ] || bad "$c of an unknown run: status $st, expected 1"
	echo "$err" | grep -q "no run 'svc'" || bad "$c of an unknown run: message '$err'"
done

# ---- exit statuses: a workload's own, and a kill ----
run $F run -d --as "$KIND" --name three "$IMAGE" -- sh -c 'echo three; exit 3'
[ "$st" = 0 ] || bad "run -d three: $st $err"
run $F wait three
[ "$out" = 3 ] || bad "wait three: '$out' (status $st)"
$F logs three | grep -qx three || bad "logs three: $($F logs three)"
run $F run -d --as "$KIND" --name k "$IMAGE" -- sh -c 'echo k-up; while :; do sleep 1; done'
until_log k k-up || bad "k never started"
run $F kill -s KILL k
[ "$st" = 0 ] || bad "kill -s KILL: status $st: $err"
run $F wait k
[ "$out" = 137 ] || bad "wait after kill -s KILL: '$out', want 137"
run $F rm three k
[ "$st" = 0 ] || bad "rm three k: $st $err"

# ---- --entrypoint replaces the image's entrypoint and drops its cmd ----
run $F run -d --as "$KIND" --name ep --entrypoint /bin/echo "$IMAGE" -- via-entrypoint
[ "$st" = 0 ] || bad "run -d --entrypoint: $st $err"
run $F wait ep
[ "$out" = 0 ] || bad "wait ep: '$out'"
run $F logs ep
[ "$out" = via-entrypoint ] || bad "run -d --entrypoint: log '$out'"
run $F rm ep

# ---- --rm: the run goes when it ends ----
run $F run -d --as "$KIND" --rm --name gone "$IMAGE" -- sh -c 'echo bye'
[ "$st" = 0 ] || bad "run -d --rm: $st $err"
i=0
while [ $i -lt "$WAIT_STEPS" ] && [ -n "$(ps_line gone)" ]; do
	sleep "$POLL"
	i=$((i + 1))
done
[ -z "$(ps_line gone)" ] || bad "--rm: the run is still listed after it ended: $(ps_line gone)"
[ -z "$($F ps -a -q)" ] || bad "runs left behind: $($F ps -a)"

echo "PARITY $KIND: $nfail failures"
exit $nfail

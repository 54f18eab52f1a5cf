#!/usr/bin/env bash
# Pull and push progress against docker-registry on 127.0.0.1, reached
# through a proxy started here that slows transfers down (so that they last
# seconds): on a terminal (the test helper's pty) a line per layer in flight
# with its bytes done / total, redrawn in place (cursor up), and a final line
# per layer; -q prints only the digest; not on a terminal, one plain line per
# layer and no escape sequence.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"
need_registry
: "${FORGE_TESTHELPER:?}"

start_registry r1
PP=$(free_port)
python3 "$FORGE_SRC/tests/registry/throttle-proxy.py" "$PP" "$REG_PORT" $((1 << 20)) &
REG_PIDS+=($!)
wait_port "$PP" $! || fail "the proxy did not start"
SLOW=127.0.0.1:$PP

# two layers of 6 MiB that do not compress (more than socket buffers hold)
mkdir -p "$T/ctx"
head -c $((6 << 20)) /dev/urandom >"$T/ctx/a.bin"
head -c $((6 << 20)) /dev/urandom >"$T/ctx/b.bin"
cat >"$T/ctx/p.yaml" <<'Y'
forge: 1
name: prog
layers:
  - files: [{src: a.bin, dest: /a.bin}]
  - files: [{src: b.bin, dest: /b.bin}]
Y
d=$(f build -q "$T/ctx/p.yaml")
ESC=$(printf '\033')
pty() { "$FORGE_TESTHELPER" pty 40 120 '' "$@"; }

# check_tty FILE VERB FINAL: in-place per-layer progress in FILE
check_tty() {
	local out=$1 verb=$2 final=$3
	# the text without \r and escape sequences
	tr -d '\r' <"$out" | sed -E "s/${ESC}\[[0-9]*[A-Za-z]//g" >"$out.txt"
	grep -aq "${ESC}\[[0-9]*A" "$out" || { cat -v "$out"; fail "$verb: nothing redrawn in place"; }
	for n in 1 2; do
		# a moving line: "layer N/2 sha256:HEX  DONE / TOTAL VERB", DONE < TOTAL
		grep -aoE "layer $n/2 sha256:[0-9a-f]{12} +[0-9.]+ [KM]iB / [0-9.]+ [KM]iB +$verb" "$out.txt" |
			awk '{ if ($4 $5 != $7 $8) p = 1 } END { exit !p }' ||
			{ cat -v "$out"; fail "$verb: no partial progress line for layer $n"; }
		grep -aqE "^layer $n/2 sha256:[0-9a-f]{12} +[0-9.]+ MiB $final" "$out.txt" ||
			{ cat -v "$out"; fail "$verb: no final line for layer $n"; }
	done
	grep -aq '/2 layers  ' "$out.txt" || { cat -v "$out"; fail "$verb: no total line"; }
	[ "$(grep -av '^terminal-restored=' "$out.txt" | grep -av '^$' | tail -n1)" = "$d" ] ||
		{ cat -v "$out"; fail "$verb: the digest is not the last line"; }
}

# push on a terminal
pty "$FORGE" --store "$STORE" push prog "$SLOW/p/img:v1" >"$T/push.out" || { cat -v "$T/push.out"; fail "push on a terminal"; }
check_tty "$T/push.out" uploading pushed

# pull on a terminal, into an empty store
pty "$FORGE" --store "$T/s1" pull "$SLOW/p/img:v1" >"$T/pull.out" || { cat -v "$T/pull.out"; fail "pull on a terminal"; }
check_tty "$T/pull.out" downloading done
"$FORGE" --store "$T/s1" store verify >/dev/null

# -q on a terminal: the digest only
pty "$FORGE" --store "$T/s2" pull -q "$SLOW/p/img:v1" >"$T/q.out"
[ "$(tr -d '\r' <"$T/q.out" | grep -v '^terminal-restored=' | grep -v '^$')" = "$d" ] ||
	{ cat -v "$T/q.out"; fail "pull -q printed more than the digest"; }
pty "$FORGE" --store "$STORE" push -q prog "$SLOW/p/img:v2" >"$T/qp.out"
[ "$(tr -d '\r' <"$T/qp.out" | grep -v '^terminal-restored=' | grep -v '^$')" = "$d" ] ||
	{ cat -v "$T/qp.out"; fail "push -q printed more than the digest"; }
# a remote ref in inspect -q on a terminal: the JSON only
pty "$FORGE" --store "$T/s3" inspect -q "$SLOW/p/img:v1" >"$T/qi.out"
[ "$(tr -d '\r' <"$T/qi.out" | grep -v '^terminal-restored=' | jq -r .digest)" = "$d" ] ||
	{ cat -v "$T/qi.out"; fail "inspect -q printed more than the JSON"; }
! grep -aq "$ESC" "$T/qi.out" || { cat -v "$T/qi.out"; fail "inspect -q showed progress"; }

# not a terminal: one plain line per layer, no escapes
"$FORGE" --store "$T/s4" pull "$SLOW/p/img:v1" 2>"$T/plain.err" >"$T/plain.out"
[ "$(cat "$T/plain.out")" = "$d" ] || fail "plain pull stdout"
! grep -aq "$ESC" "$T/plain.err" || { cat -v "$T/plain.err"; fail "escape sequences when not a terminal"; }
[ "$(grep -cE '^layer [12]/2 sha256:[0-9a-f]{12} +[0-9.]+ MiB done$' "$T/plain.err")" -eq 2 ] ||
	{ cat "$T/plain.err"; fail "not one line per layer when not a terminal"; }
! grep -q 'downloading' "$T/plain.err" || { cat "$T/plain.err"; fail "moving lines when not a terminal"; }
echo ok

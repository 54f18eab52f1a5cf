#!/usr/bin/env bash
# A registry that lies (tests/registry/hostile-registry.py on 127.0.0.1):
# each lie gives exit 1 and a clear message, and nothing half-written: the
# store verifies, no tag, no blob named by a digest it does not have. Then a
# pull SIGKILLed mid-layer leaves the store consistent and the next pull
# resumes the layer with a Range request.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"

export FORGE_REGISTRY_STALL_SECONDS=2
HD=$T/hostile
mkdir -p "$HD"
HPORT=$(free_port)
python3 "$FORGE_TESTS/hostile-registry.py" "$HPORT" "$HD" 2>"$HD/stderr" &
REG_PIDS+=($!)
wait_port "$HPORT" $! || fail "hostile registry did not start"
R=127.0.0.1:$HPORT

# clean_store: the store verifies, holds no tag and no layer blob
clean_store() {
	f store verify >/dev/null || fail "$1: store verify"
	[ -z "$(ls "$STORE/tags")" ] || fail "$1: a tag was written"
	local n
	n=$(find "$STORE/blobs/sha256" -type f -size +100k | wc -l)
	[ "$n" -eq 0 ] || fail "$1: $n layer blobs in the store"
}

# lie SCENARIO MESSAGE-PART
lie() {
	local out
	out=$(f pull -q "$R/$1:v1" 2>&1) && fail "$1: pull succeeded"
	expect_status 1 f pull -q "$R/$1:v1" 2>/dev/null
	[[ $out == *"$2"* ]] || fail "$1: message '$out' lacks '$2'"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "$1: more than one line: $out"
	clean_store "$1"
	echo "$1: $out"
}

lie baddigest "the registry sent content that hashes to"
lie baddcd "Docker-Content-Digest"
lie bigmanifest "larger than 4194304 bytes"
lie bigconfig "at most 4194304"
lie redirect "too many redirects"
lie truncated "transfer closed with"
lie error500 "HTTP 500"
lie endless "larger than"
lie slow "eration"  # "Operation timed out" / "Operation too slow"
lie liesize "larger than"
lie badpath "not sha256"
# the truncated layer's bytes wait in tmp/ for a resume, outside blobs/
ls "$STORE"/tmp/pull-* >/dev/null 2>&1 || fail "no partial download kept"
f store gc >/dev/null
[ -z "$(ls "$STORE/tmp")" ] || fail "gc left tmp/"

# blob storage on another host: followed, without the registry's credentials
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$R" "$(printf 'u:offsite-pw' | base64)" >"$T/auth.json"
: >"$HD/log"
REGISTRY_AUTH_FILE=$T/auth.json f pull -q --tag offsite:v1 "$R/offsite:v1" >/dev/null || fail "pull with a redirect to storage"
grep -q '^GET /storage/sha256:[0-9a-f]*  noauth$' "$HD/log" || { cat "$HD/log"; fail "credentials went to the storage host"; }
grep -q '^GET /v2/offsite/blobs/sha256:[0-9a-f]*  auth$' "$HD/log" || fail "no authenticated blob request"
f rmi offsite:v1 >/dev/null
f store gc >/dev/null

# the good image pulls
good=$(f pull -q "$R/good:v1") || fail "good pull"
f store verify >/dev/null

# two pulls of the same image into one store at once: one downloads, the
# other waits for it (the partial file is locked) and finds the blob
S3=$T/two-store
"$FORGE" --store "$S3" pull -q "$R/good:v1" >"$T/p1" 2>&1 &
p1=$!
"$FORGE" --store "$S3" pull -q "$R/good:v1" >"$T/p2" 2>&1 || fail "second concurrent pull: $(cat "$T/p2")"
wait $p1 || fail "first concurrent pull: $(cat "$T/p1")"
[ "$(cat "$T/p1")" = "$good" ] && [ "$(cat "$T/p2")" = "$good" ] || fail "concurrent pulls"
"$FORGE" --store "$S3" store verify >/dev/null || fail "verify after concurrent pulls"

# SIGKILL mid-layer, then resume
S2=$T/kill-store
touch "$HD/throttle"
: >"$HD/log"
"$FORGE" --store "$S2" pull -q "$R/good:v1" >/dev/null 2>&1 &
pp=$!
for i in $(seq 1 200); do
	sz=$(stat -c %s "$S2"/tmp/pull-* 2>/dev/null | head -n1 || true)
	[ -n "$sz" ] && [ "$sz" -gt 1048576 ] && break
	sleep 0.05
done
[ -n "$sz" ] && [ "$sz" -gt 1048576 ] || fail "the pull did not start downloading"
kill -9 $pp
wait $pp 2>/dev/null || true
rm -f "$HD/throttle"
"$FORGE" --store "$S2" store verify >/dev/null || fail "store inconsistent after SIGKILL"
[ -z "$(ls "$S2/tags")" ] || fail "a killed pull tagged"
have=$(stat -c %s "$S2"/tmp/pull-*)
: >"$HD/log"
got=$("$FORGE" --store "$S2" pull -q "$R/good:v1") || fail "pull after SIGKILL"
[ "$got" = "$good" ] || fail "resumed pull: $got"
grep -q "GET /v2/good/blobs/sha256:[0-9a-f]* bytes=$have-" "$HD/log" || { cat "$HD/log"; fail "no Range resume from $have"; }
"$FORGE" --store "$S2" store verify >/dev/null || fail "verify after resume"
[ -z "$(ls "$S2"/tmp/ 2>/dev/null)" ] || fail "tmp/ not empty after the resumed pull"
echo ok

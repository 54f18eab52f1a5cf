#!/usr/bin/env bash
# Registry transfer: `forge pull` of a 50-layer image into an empty store
# versus `skopeo copy docker://... oci:DIR` from the same local registry
# (Debian's docker-registry on 127.0.0.1), alternating, same run; then a
# push of the same image with every blob present, counting the registry's
# requests (only HEADs and the manifest PUT are expected).
# Usage: bench/registry-pull.sh [FORGE] [LAYERS] [MB_PER_LAYER] [RUNS]
set -euo pipefail
forge=$(readlink -f "${1:-build/cli/forge}")
layers=${2:-50}
mb=${3:-2}
runs=${4:-5}
w=$(mktemp -d /tmp/forge-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$w"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$w/reg"
cat >"$w/reg.yml" <<Y
version: 0.1
log: {level: warn, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $w/reg}}
http: {addr: 127.0.0.1:$port}
Y
env -u REGISTRY_AUTH_FILE docker-registry serve "$w/reg.yml" >"$w/reg.log" 2>&1 &
pid=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
reg=127.0.0.1:$port

echo "== $layers layers of $mb MiB (half random, half compressible)"
python3 - "$w/ctx" "$layers" "$mb" <<'PY'
import os, random, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
os.makedirs(root, exist_ok=True)
spec = ["forge: 1", "name: big", "layers:"]
for i in range(n):
    half = mb * 1024 * 1024 // 2
    with open(os.path.join(root, "f%02d" % i), "wb") as f:
        f.write(rnd.randbytes(half) + (b"forge %d " % i) * (half // 8))
    spec.append("  - files: [{src: f%02d, dest: /data/f%02d}]" % (i, i))
open(os.path.join(root, "big.yaml"), "w").write("\n".join(spec) + "\n")
PY
"$forge" --store "$w/src" build -q "$w/ctx/big.yaml" >/dev/null
"$forge" --store "$w/src" push -q big "$reg/bench/big:v1" >/dev/null

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
fr=() sr=()
for r in $(seq "$runs"); do
	rm -rf "$w/st" "$w/oci"
	sync
	fr+=("$(t "$forge" --store "$w/st" pull -q "$reg/bench/big:v1")")
	sr+=("$(t skopeo copy -q --src-tls-verify=false "docker://$reg/bench/big:v1" "oci:$w/oci:v1")")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fm=$(med "${fr[@]}")
sm=$(med "${sr[@]}")
echo "forge pull:   ${fr[*]}  median $fm s"
echo "skopeo copy:  ${sr[*]}  median $sm s"
echo "forge/skopeo: $(echo "scale=2; $fm / $sm" | bc)"

mark=$(wc -c <"$w/reg.log")
"$forge" --store "$w/src" push -q big "$reg/bench/big:v1" >/dev/null
tail -c +$((mark + 1)) "$w/reg.log" | grep -ao '"[A-Z]\+ /v2/[^ ]*' | awk '{print $1}' | tr -d '"' | sort | uniq -c |
	awk '{printf "push with all blobs present: %s %s\n", $1, $2}'

echo "== a second machine's --cache-from build of a 5-layer spec vs its cold build"
python3 - "$w/cctx" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(11)
for i in range(5):
    d = os.path.join(root, "t%d" % i)
    os.makedirs(d, exist_ok=True)
    for j in range(400):
        with open(os.path.join(d, "f%03d" % j), "wb") as f:
            f.write(rnd.randbytes(4096) + b"x" * rnd.randrange(4096, 40960))
spec = ["forge: 1", "name: five", "layers:"] + ["  - files: [{src: t%d/, dest: /t%d/}]" % (i, i) for i in range(5)]
open(os.path.join(root, "five.yaml"), "w").write("\n".join(spec) + "\n")
PY
cr=() wr=()
for r in $(seq "$runs"); do
	rm -rf "$w/ca" "$w/cb"
	cr+=("$(t "$forge" --store "$w/ca" build -q --no-cache --cache-to "$reg/bench/cache:c$r" "$w/cctx/five.yaml")")
	wr+=("$(t "$forge" --store "$w/cb" build -q --cache-from "$reg/bench/cache:c$r" "$w/cctx/five.yaml")")
done
cm=$(med "${cr[@]}")
wm=$(med "${wr[@]}")
echo "cold build (+ --cache-to):      ${cr[*]}  median $cm s"
echo "empty store, --cache-from:      ${wr[*]}  median $wm s"
echo "cache-from/cold: $(echo "scale=2; $wm / $cm" | bc)"

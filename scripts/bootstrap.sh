#!/usr/bin/env bash
# Fresh Debian 12 machine, as root: install dependencies, build forge, and run
# its main job on the bundled example (build, list, inspect, export).
# forge is installed under /usr/local (on PATH afterwards; man forge).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake --install build >/dev/null # /usr/local: bin/forge, libexec/forge/*, man pages
hash -r

store=${FORGE_STORE:-$top/out/store}
forge="forge --store $store"
echo "== installed $(command -v forge) ($(forge --version))"
echo "== forge build specs/examples/hello.yaml"
$forge build specs/examples/hello.yaml
echo "== forge images"
$forge images
echo "== forge inspect hello"
$forge inspect hello:latest
echo "== forge run hello -- forge"
$forge run hello:latest -- forge
echo "== forge export hello --format tar"
rm -rf out/hello.tar out/hello-oci
$forge export hello:latest --format tar -o out/hello.tar
$forge export hello:latest --format oci -o out/hello-oci
ls -l out/hello.tar
echo "== exported to out/hello.tar and out/hello-oci (OCI layout)"

#!/usr/bin/env bash
# forge export builds its output at PATH.forge-tmp.PID next to PATH. Someone
# who can write there (a shared /tmp) and plants a symlink at that name must
# not make forge write through it: a tar export would overwrite the file it
# points to, an OCI export would fill the directory it points to.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root

f build -q "$FORGE_SRC/specs/examples/hello.yaml" >/dev/null
HOST=$T/host
mkdir -p "$HOST/dir" "$T/out"
echo VICTIM >"$HOST/victim"
# the wrapper's PID is the one forge will have after exec
for fmt in tar oci-tar oci; do
	case $fmt in
	tar) out=$T/out/a.tar target=$HOST/victim args=(--format tar) ;;
	oci-tar) out=$T/out/b.tar target=$HOST/victim args=(--format oci) ;;
	oci) out=$T/out/c target=$HOST/dir args=(--format oci) ;;
	esac
	st=0
	bash -c 'ln -s "$1" "$2.forge-tmp.$$"; shift 2; exec "$@"' planted "$target" "$out" \
		"$FORGE" --store "$STORE" export hello "${args[@]}" -o "$out" >"$T/out.log" 2>&1 || st=$?
	[ "$(cat "$HOST/victim")" = VICTIM ] || fail "$fmt export wrote through a planted symlink"
	[ -z "$(ls -A "$HOST/dir")" ] || fail "$fmt export wrote into a planted directory symlink"
	[ "$st" = 0 ] || [ "$st" = 1 ] || { cat "$T/out.log"; fail "$fmt export: exit $st"; }
	[ ! -L "$out" ] || fail "$fmt export renamed the planted symlink to its output"
	rm -rf "$T/out"/*
done
echo OK

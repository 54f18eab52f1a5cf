#!/usr/bin/env bash
# An imported image's "dev.forge".vm section is data: a section without a
# kernel (once a SIGSEGV, strdup(NULL)), kernels that are not digests or not
# strings, absurd sizes and a multi-line cmdline each give a clear error
# (exit 1, the field named) from 'forge export --format disk', never a crash.
source "$FORGE_SRC/tests/integration/lib.sh"
need_root
export FORGE_VMINIT=${FORGE_VMINIT:-$FORGE_BUILD/runtime/init/forge-vminit}

mkdir -p "$T/da/empty"
tar -C "$T/da/empty" -cf "$T/da/l.tar" .
diff=sha256:$(sha256sum "$T/da/l.tar" | cut -d' ' -f1)
n=0
check() {
	local vm=$1 want=$2 st=0
	n=$((n + 1))
	printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/x"]},"dev.forge":{"vm":%s},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$vm" "$diff" >"$T/da/c.json"
	printf '[{"Config":"c.json","RepoTags":["vm%d:v1"],"Layers":["l.tar"]}]' "$n" >"$T/da/manifest.json"
	tar -C "$T/da" -cf "$T/vm$n.tar" c.json manifest.json l.tar
	f import "$T/vm$n.tar" >/dev/null || fail "import vm$n"
	f export "vm$n:v1" --format disk -o "$T/vm$n.img" >"$T/out" 2>&1 || st=$?
	[ "$st" -lt 128 ] || { cat "$T/out"; fail "vm section $vm: forge died of signal $((st - 128))"; }
	[ "$st" = 1 ] || { cat "$T/out"; fail "vm section $vm: exit $st, expected 1"; }
	grep -q -- "$want" "$T/out" || { cat "$T/out"; fail "vm section $vm: error does not say '$want'"; }
	[ ! -e "$T/vm$n.img" ] || fail "vm section $vm: a disk was written"
}
check '{}' 'exactly one kernel'
check '{"memory":536870912}' 'exactly one kernel'
check '{"kernel_bzimage":null}' 'exactly one kernel'
check '{"kernel_bzimage":42}' 'vm.kernel_bzimage is not a sha256 digest'
check '{"kernel_deb":"../../etc/passwd"}' 'vm.kernel_deb is not a sha256 digest'
check '{"kernel_deb":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}' 'not in the store'
check "{\"kernel_bzimage\":\"$diff\",\"kernel_deb\":\"$diff\"}" 'exactly one kernel'
check "{\"kernel_bzimage\":\"$diff\",\"memory\":-1}" 'vm.memory must be'
check "{\"kernel_bzimage\":\"$diff\",\"disk_size\":1e30}" 'vm.disk_size must be'
check "{\"kernel_bzimage\":\"$diff\",\"cpus\":\"many\"}" 'vm.cpus must be'
check "{\"kernel_bzimage\":\"$diff\",\"cmdline\":\"a\\nb\"}" 'vm.cmdline must be one line'
check "{\"kernel_bzimage\":\"$diff\",\"kernel_modules\":[]}" 'vm.kernel_modules is not'
check '"kernel"' 'not an object'
# a kernel blob that is not a bzImage (the layer itself)
check "{\"kernel_bzimage\":\"$diff\"}" 'not a bzImage'
echo OK

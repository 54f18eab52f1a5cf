#!/usr/bin/env bash
# Installs everything forge needs to build, run and be tested on Debian 12.
# Idempotent; run as root.
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config git clang-format
	libyaml-dev libarchive-dev libssl-dev libzstd-dev libjansson-dev libseccomp-dev libcap-dev
	libcmocka-dev zlib1g-dev libcurl4-openssl-dev
	# run time: overlayfs is in the kernel; disk images
	e2fsprogs dosfstools mtools fdisk binutils systemd-boot-efi zstd cpio
	# tests and benchmarks: peers and checkers
	skopeo umoci crun jq busybox-static qemu-system-x86 ovmf clang llvm libclang-rt-14-dev hyperfine time bc
	iproute2 util-linux procps python3
	podman # transfer-names: podman load/save of forge's OCI archives
	# run time: virtiofsd serves -v directories to VMs
	qemu-system-common
	# registry tests: the registry, htpasswd, a test CA, a manifest PUT by hand
	docker-registry apache2-utils openssl curl
	# packages: layers (libsolv, libcurl, gpgv); their tests build and sign a repository
	libsolv-dev libsolvext-dev gpgv gnupg apt-utils dpkg-dev xz-utils curl mmdebstrap
	# --network user (pasta for containers, passt for VMs); its tests and benchmark
	passt dnsmasq-base slirp4netns iperf3
	# bench/rebuild.sh: task-clock of a no-change rebuild and of the stat floor
	linux-perf
)
# node and npm for the CycloneDX validator: the machine's own when it has them
# (a node package that provides npm conflicts with Debian's npm), else Debian's
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# forge sbom's test validates CycloneDX with the CycloneDX project's own library
cdx=/var/cache/forge-test/cyclonedx
if [ ! -d "$cdx/node_modules/@cyclonedx/cyclonedx-library" ]; then
	mkdir -p "$cdx"
	(cd "$cdx" && npm install --no-audit --no-fund --silent @cyclonedx/cyclonedx-library ajv ajv-formats ajv-formats-draft2019)
fi

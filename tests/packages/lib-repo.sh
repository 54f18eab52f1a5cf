# A Debian repository made by the tests (sourced after tests/integration/lib.sh):
# tiny packages built with dpkg-deb, indexed with apt-ftparchive, InRelease
# clear-signed with a key made for the test in a temporary GNUPGHOME, served
# by python3 -m http.server on 127.0.0.1 (stopped by its PID) or as file:.

REPO=$T/repo
SUITE=testing
ARCH=$(dpkg --print-architecture)
export GNUPGHOME=$T/gnupg

# mkpkg NAME VERSION [ARCH] [FIELD: VALUE]... reads files to add from $T/pkgsrc/NAME/root
mkpkg() {
	local name=$1 ver=$2 arch=$3 d
	shift 3
	d=$T/pkgsrc/$name-$ver
	mkdir -p "$d/DEBIAN" "$d/usr/share/doc/$name"
	{
		echo "Package: $name"
		echo "Version: $ver"
		echo "Architecture: $arch"
		echo "Maintainer: forge tests <tests@forge.invalid>"
		for fld in "$@"; do echo "$fld"; done
		echo "Description: $name for forge's tests"
	} >"$d/DEBIAN/control"
	echo "$name $ver" >"$d/usr/share/doc/$name/README"
	mkdir -p "$REPO/pool/main"
	dpkg-deb --root-owner-group -Zgzip --build "$d" "$REPO/pool/main/${name}_${ver}_${arch}.deb" >/dev/null
}

# pkgroot NAME VERSION: the tree a package is built from
pkgroot() { echo "$T/pkgsrc/$1-$2"; }

make_packages() {
	local r
	# versions: two of libfoo1; app needs the newer
	r=$(pkgroot libfoo1 1.0); mkdir -p "$r/usr/lib"; echo one >"$r/usr/lib/libfoo.txt"
	mkpkg libfoo1 1.0 "$ARCH" "Multi-Arch: same"
	r=$(pkgroot libfoo1 2.0); mkdir -p "$r/usr/lib"; echo two >"$r/usr/lib/libfoo.txt"
	mkpkg libfoo1 2.0 "$ARCH" "Multi-Arch: same"
	# a virtual package (mail-transport-agent) two packages provide; an alternative
	mkpkg tiny-mta 1.0 all "Provides: mail-transport-agent" "Conflicts: other-mta"
	mkpkg other-mta 1.0 all "Provides: mail-transport-agent" "Conflicts: tiny-mta"
	r=$(pkgroot app 1.0); mkdir -p "$r/usr/bin" "$r/etc/app"
	printf '#!/bin/sh\necho app\n' >"$r/usr/bin/app"; chmod 755 "$r/usr/bin/app"
	echo "colour=blue" >"$r/etc/app/app.conf"
	mkdir -p "$r/DEBIAN"; echo /etc/app/app.conf >"$r/DEBIAN/conffiles"
	mkpkg app 1.0 "$ARCH" "Depends: libfoo1 (>= 2.0), tiny-mta | other-mta" "Pre-Depends: pre-tool"
	mkpkg pre-tool 1.0 all
	# a conflict
	mkpkg enemy 1.0 all "Conflicts: app"
	# needs what nothing provides
	mkpkg broken 1.0 all "Depends: does-not-exist"
	# recommends
	mkpkg suggester 1.0 all "Recommends: pre-tool"
	# a postinst that writes a file (runs only with essential: true)
	r=$(pkgroot hello-post 1.0); mkdir -p "$r/DEBIAN"
	printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then mkdir -p /var/lib/hello-post; echo "configured $1" >/var/lib/hello-post/state; fi\n' >"$r/DEBIAN/postinst"
	chmod 755 "$r/DEBIAN/postinst"
	mkpkg hello-post 1.0 all "Depends: libfoo1"
}

# An Essential: yes base with a shell and the host's own dpkg (and what it
# links against), so that essential: true layers run real maintainer scripts.
make_essential() {
	local r bb lib f
	r=$(pkgroot base-test 1.0)
	mkdir -p "$r/bin" "$r/usr/bin" "$r/sbin" "$r/etc" "$r/tmp"
	dpkg-deb --fsys-tarfile "$FORGE_SRC/specs/examples/debs/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb" |
		tar -x -C "$T" ./bin/busybox
	cp "$T/bin/busybox" "$r/bin/busybox"
	for a in $(busybox --list); do
		case $a in busybox | dpkg | dpkg-deb | ldconfig | tar) continue ;; esac
		ln -s busybox "$r/bin/$a"
	done
	printf '#!/bin/sh\nexit 0\n' >"$r/sbin/ldconfig"; chmod 755 "$r/sbin/ldconfig"
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "root:x:0:" >"$r/etc/group"
	mkpkg base-test 1.0 "$ARCH" "Essential: yes" "Priority: required"
	r=$(pkgroot dpkg-test 1.0)
	mkdir -p "$r/usr/bin"
	# dpkg-deb runs GNU tar
	cp /usr/bin/dpkg /usr/bin/dpkg-deb /usr/bin/dpkg-query /usr/bin/dpkg-split /usr/bin/tar "$r/usr/bin/"
	for lib in $(ldd /usr/bin/dpkg /usr/bin/dpkg-deb /usr/bin/dpkg-query /usr/bin/dpkg-split /usr/bin/tar | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u); do
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib"
	done
	mkpkg dpkg-test 1.0 "$ARCH" "Essential: yes" "Priority: required" "Depends: base-test"
}

# apt-test: the host's apt-get, its http/gpgv/store/file/copy methods and gpgv,
# with what they link against that dpkg-test does not already ship (after
# make_essential), so apt-get runs inside an image built from the test repo.
make_apt() {
	local r lib bins ess
	r=$(pkgroot apt-test 1.0)
	ess=$(pkgroot dpkg-test 1.0)
	bins="/usr/bin/apt-get /usr/bin/apt-cache /usr/bin/apt-config /usr/bin/gpgv"
	mkdir -p "$r/usr/bin" "$r/usr/lib/apt/methods" "$r/etc/apt/apt.conf.d" "$r/etc/apt/sources.list.d" \
		"$r/etc/apt/preferences.d" "$r/etc/apt/trusted.gpg.d" "$r/var/lib/apt/lists/partial" \
		"$r/var/cache/apt/archives/partial" "$r/var/log/apt"
	cp $bins "$r/usr/bin/"
	# apt-get checks signatures through apt-key (a shell script) and gpgv
	cp /usr/bin/apt-key "$r/usr/bin/"
	# apt reads dpkg's architecture tables
	mkdir -p "$r/usr/share/dpkg"
	cp /usr/share/dpkg/cputable /usr/share/dpkg/ostable /usr/share/dpkg/tupletable "$r/usr/share/dpkg/"
	for m in http gpgv store file copy; do
		cp /usr/lib/apt/methods/$m "$r/usr/lib/apt/methods/"
		bins="$bins /usr/lib/apt/methods/$m"
	done
	for lib in $(ldd $bins | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | sort -u); do
		[ -e "$ess$lib" ] && continue
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib"
	done
	mkpkg apt-test 1.0 "$ARCH" "Depends: dpkg-test"
}

make_index() {
	mkdir -p "$REPO/dists/$SUITE/main/binary-$ARCH"
	(cd "$REPO" && apt-ftparchive packages pool >"dists/$SUITE/main/binary-$ARCH/Packages")
	xz -k -f "$REPO/dists/$SUITE/main/binary-$ARCH/Packages"
	(cd "$REPO/dists/$SUITE" && apt-ftparchive \
		-o APT::FTPArchive::Release::Suite=$SUITE -o APT::FTPArchive::Release::Codename=$SUITE \
		-o "APT::FTPArchive::Release::Architectures=$ARCH" -o APT::FTPArchive::Release::Components=main \
		release . >Release)
	gpg --batch --yes --local-user forge-test --clearsign -o "$REPO/dists/$SUITE/InRelease" "$REPO/dists/$SUITE/Release"
}

make_key() {
	mkdir -p "$GNUPGHOME" "$T/ctx/keys"
	chmod 700 "$GNUPGHOME"
	gpg --batch --quiet --passphrase '' --quick-gen-key forge-test ed25519 sign never 2>/dev/null
	gpg --batch --export forge-test >"$T/ctx/keys/repo.gpg"
	gpg --batch --armor --export forge-test >"$T/ctx/keys/repo.asc"
}

# make_repo [essential]: the whole repository
make_repo() {
	make_key
	make_packages
	[ "${1:-}" = essential ] && make_essential
	make_index
}

SERVER_PID=
stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=
	return 0
}
trap 'stop_server; cleanup_t' EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server: serves $REPO on 127.0.0.1:$PORT, logging requests to $T/server.log
start_server() {
	PORT=$(free_port)
	(cd "$REPO" && exec python3 -m http.server --bind 127.0.0.1 "$PORT") >"$T/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$PORT/dists/$SUITE/InRelease" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "the test repository server did not start"
}

# spec NAME URL LAYERS...: writes $T/ctx/NAME.yaml with the repository and layers (YAML text)
write_spec() {
	local name=$1 url=$2
	shift 2
	{
		echo "forge: 1"
		echo "name: $name"
		echo "repositories:"
		echo "  - url: $url"
		echo "    suite: $SUITE"
		echo "    components: [main]"
		echo "    keyring: keys/repo.gpg"
		echo "layers:"
		printf '%s\n' "$@"
	} >"$T/ctx/$name.yaml"
}

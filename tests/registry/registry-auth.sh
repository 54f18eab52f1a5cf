#!/usr/bin/env bash
# Registry authentication and TLS against docker-registry on 127.0.0.1:
# - htpasswd (Basic) behind TLS with a CA made here: refused without the CA,
#   accepted with --cert-dir DIR/HOST/ca.crt or --tls-verify=false; login
#   checks the password and writes the auth file 0600; logout removes it;
# - Bearer tokens from a token server started here (realm/service/scope),
#   one token request per scope for a whole pull;
# - the password never appears in argv (ps), forge's output or the store.
source "$FORGE_SRC/tests/integration/lib.sh"
source "$FORGE_SRC/tests/registry/lib-registry.sh"
need_registry tls
need_root

PW='S3cr3t-pw-7f1e9c-unique'
USER_=forgeuser
export REGISTRY_AUTH_FILE=$T/auth/auth.json
ALL=$T/all-output.log   # everything forge printed
g() { "$FORGE" --store "$STORE" "$@" 2>>"$ALL"; }

d=$(f build -q "$FORGE_SRC/specs/examples/hello.yaml")

# ---- a CA, a server certificate for 127.0.0.1, htpasswd ----
start_tls_registry tls "$USER_" "$PW"
H=$REG

# untrusted certificate: refused, saying why
expect_status 1 g pull "$H/a/b:c"
tail -n1 "$ALL" | grep -qi 'certificate' || { tail -n1 "$ALL"; fail "no certificate error"; }

# no credentials: 401 with a hint
expect_status 1 g pull --cert-dir "$T/certs" "$H/a/b:c"
tail -n1 "$ALL" | grep -q 'authentication required' || { tail -n1 "$ALL"; fail "no auth hint"; }

# a wrong password: login fails and writes nothing
echo wrong-password | expect_status 1 g login --cert-dir "$T/certs" -u "$USER_" --password-stdin "$H"
[ ! -e "$REGISTRY_AUTH_FILE" ] || fail "a failed login wrote the auth file"

# login with the password on stdin (held back on a fifo while ps is checked)
mkfifo "$T/pwfifo"
g login --cert-dir "$T/certs" -u "$USER_" --password-stdin "$H" <"$T/pwfifo" &
lp=$!
exec 7>"$T/pwfifo"
sleep 0.3
for c in /proc/[0-9]*/cmdline; do
	if tr '\0' ' ' 2>/dev/null <"$c" | grep -qF "$PW"; then fail "the password is in the argv of $(dirname "$c")"; fi
done
tr '\0' '\n' <"/proc/$lp/environ" 2>/dev/null | grep -qF "$PW" && fail "the password is in forge's environment"
echo "$PW" >&7
exec 7>&-
wait $lp || fail "login failed"
[ "$(stat -c %a "$REGISTRY_AUTH_FILE")" = 600 ] || fail "auth file mode $(stat -c %a "$REGISTRY_AUTH_FILE")"
jq -e --arg h "$H" '.auths[$h].auth' "$REGISTRY_AUTH_FILE" >/dev/null || fail "no auths entry"

# push and pull over TLS with the saved credentials; skopeo agrees
pushed=$(g push -q --cert-dir "$T/certs" hello "$H/sec/hello:v1")
[ "$pushed" = "$d" ] || fail "push over TLS"
sd=$(skopeo inspect --cert-dir "$T/certs/$H" --creds "$USER_:$PW" "docker://$H/sec/hello:v1" | jq -r .Digest)
[ "$sd" = "$d" ] || fail "skopeo sees $sd"
got=$("$FORGE" --store "$T/s2" pull -q --cert-dir "$T/certs" "$H/sec/hello:v1" 2>>"$ALL")
[ "$got" = "$d" ] || fail "pull with credentials"
got=$("$FORGE" --store "$T/s3" pull -q --tls-verify=false "$H/sec/hello:v1" 2>>"$ALL")
[ "$got" = "$d" ] || fail "pull with --tls-verify=false"
# podman's convention without --cert-dir: /etc/containers/certs.d/HOST/ca.crt
# (made for this registry's port only, removed at once)
sysd=/etc/containers/certs.d/$H
if [ ! -e "$sysd" ]; then
	had_certs_d=$([ -d /etc/containers/certs.d ] && echo 1 || echo 0)
	mkdir -p "$sysd" && cp "$T/pki/ca.crt" "$sysd/ca.crt"
	st=0
	got=$("$FORGE" --store "$T/s4" pull -q "$H/sec/hello:v1" 2>>"$ALL") || st=$?
	rm -rf "$sysd"
	[ "$had_certs_d" = 1 ] || rmdir /etc/containers/certs.d 2>/dev/null || true
	[ "$st" = 0 ] && [ "$got" = "$d" ] || fail "pull with the CA in /etc/containers/certs.d/$H: $st"
fi

# credentials through a credential helper (credHelpers), not the file
mkdir -p "$T/bin"
cat >"$T/bin/docker-credential-forgetest" <<EOF
#!/bin/sh
read -r host
[ "\$1" = get ] && [ "\$host" = "$H" ] || { echo 'credentials not found'; exit 1; }
printf '{"ServerURL":"%s","Username":"$USER_","Secret":"%s"}\n' "\$host" "\$(cat $T/bin/pw)"
EOF
chmod +x "$T/bin/docker-credential-forgetest"
echo "$PW" >"$T/bin/pw"
printf '{"credHelpers":{"%s":"forgetest"}}\n' "$H" >"$T/helper-auth.json"
got=$(PATH=$T/bin:$PATH "$FORGE" --store "$T/s4" pull -q --cert-dir "$T/certs" --authfile "$T/helper-auth.json" "$H/sec/hello:v1" 2>>"$ALL")
[ "$got" = "$d" ] || fail "pull with a credential helper"

# logout: the entry goes, pulls need credentials again
g logout "$H"
jq -e --arg h "$H" '.auths[$h] == null' "$REGISTRY_AUTH_FILE" >/dev/null || fail "logout left the entry"
expect_status 1 g pull --cert-dir "$T/certs" "$H/sec/hello:v1"
expect_status 1 g logout "$H"

# ---- client certificates: certs.d/HOST/client.cert + client.key ----
(
	cd "$T/pki"
	openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr -subj /CN=forge-client 2>/dev/null
	openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out cli.crt -days 2 2>/dev/null
)
start_registry mtls "" "  tls:
    certificate: $T/pki/srv.crt
    key: $T/pki/srv.key
    clientcas: [$T/pki/ca.crt]"
M=$REG
mkdir -p "$T/mcerts/$M"
cp "$T/pki/ca.crt" "$T/mcerts/$M/ca.crt"
expect_status 1 g push --cert-dir "$T/mcerts" hello "$M/m/hello:v1"
cp "$T/pki/cli.crt" "$T/mcerts/$M/client.cert"
expect_status 1 g push --cert-dir "$T/mcerts" hello "$M/m/hello:v1"   # a cert without its key
tail -n1 "$ALL" | grep -q 'client.key' || { tail -n1 "$ALL"; fail "no message about the missing key"; }
cp "$T/pki/cli.key" "$T/mcerts/$M/client.key"
[ "$(g push -q --cert-dir "$T/mcerts" hello "$M/m/hello:v1")" = "$d" ] || fail "push with a client certificate"

# ---- Bearer: a token server and the registry's token auth ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/pki/tok.key" -out "$T/pki/tok.crt" -days 2 -subj /CN=forge-token 2>/dev/null
TPORT=$(free_port)
python3 "$FORGE_TESTS/token-server.py" "$TPORT" "$T/pki/tok.key" "$USER_" "$PW" "$T/token.log" &
REG_PIDS+=($!)
wait_port "$TPORT" $! || fail "token server did not start"
start_registry bearer "auth:
  token:
    realm: http://127.0.0.1:$TPORT/token
    service: forge-test
    issuer: forge-test-issuer
    rootcertbundle: $T/pki/tok.crt"
B=$REG
# anonymous: pull-only tokens, so a push is refused
expect_status 1 g push hello "$B/tok/hello:v1"
echo "$PW" | g login -u "$USER_" --password-stdin "$B" || fail "login (bearer)"
: >"$T/token.log"
pushed=$(g push -q hello "$B/tok/hello:v1")
[ "$pushed" = "$d" ] || fail "push (bearer)"
n=$(grep -c '^/token creds$' "$T/token.log")
[ "$n" -eq 1 ] || { cat "$T/token.log"; fail "push asked for $n tokens, expected 1 (one scope)"; }
# anonymous pull in another store (no credentials: a pull-only token)
: >"$T/token.log"
got=$(REGISTRY_AUTH_FILE=$T/none.json "$FORGE" --store "$T/s5" pull -q "$B/tok/hello:v1" 2>>"$ALL")
[ "$got" = "$d" ] || fail "anonymous bearer pull"
[ "$(grep -c '^/token anon$' "$T/token.log")" -eq 1 ] || { cat "$T/token.log"; fail "pull: not one token for its scope"; }
# an identity token (auths.HOST.identitytoken): the OAuth2 refresh-token grant
printf '{"auths":{"%s":{"identitytoken":"idtoken-%s"}}}\n' "$B" "$PW" >"$T/idtoken.json"
: >"$T/token.log"
pushed=$(REGISTRY_AUTH_FILE=$T/idtoken.json "$FORGE" --store "$STORE" push -q hello "$B/tok/idt:v1" 2>>"$ALL")
[ "$pushed" = "$d" ] || fail "push with an identity token"
grep -q '^POST /token refresh_token$' "$T/token.log" || { cat "$T/token.log"; fail "no refresh-token grant"; }
printf '{"auths":{"%s":{"identitytoken":"wrong"}}}\n' "$B" >"$T/idtoken.json"
REGISTRY_AUTH_FILE=$T/idtoken.json expect_status 1 "$FORGE" --store "$STORE" push -q hello "$B/tok/idt:v2" 2>>"$ALL"

# a wrong password at the token server: refused, the password is not echoed
echo "not-$PW" | expect_status 1 g login -u "$USER_" --password-stdin "$B"

# ---- the password appears nowhere forge writes ----
grep -rqF "$PW" "$STORE" "$T/s2" "$T/s3" "$T/s4" "$T/s5" && fail "the password is in a store"
grep -qF "$PW" "$ALL" && fail "the password is in forge's output"
grep -qF "not-$PW" "$ALL" && fail "a wrong password is in forge's output"
echo ok

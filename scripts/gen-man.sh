#!/usr/bin/env bash
# Writes forge(1) and forge-COMMAND(1) man pages into OUTDIR from forge's own
# --help texts, so the pages say exactly what the binary says.
# usage: gen-man.sh FORGE OUTDIR VERSION
set -euo pipefail
forge=$1 out=$2 version=$3
mkdir -p "$out"
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%d 2>/dev/null || echo 1970-01-01)

# roff-escape a plain text block: backslashes, and lines starting with . or '
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

page() { # page NAME SUMMARY HELPTEXT-FILE SEE-ALSO
	local name=$1 summary=$2 text=$3 see=$4 up
	up=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
	{
		printf '.TH %s 1 "%s" "forge %s" "forge manual"\n' "$up" "$date" "$version"
		printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
		printf '.SH DESCRIPTION\n.nf\n'
		esc <"$text"
		printf '.fi\n'
		printf '.SH EXIT STATUS\n0 success, 1 failure, 2 usage or spec error; forge run returns the\n'
		printf "workload's status (128+N for signal N; 125 forge failed, 126 not executable, 127 not found).\n"
		printf '.SH SEE ALSO\n%s\n' "$see"
	} >"$out/$name.1"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$forge" --help >"$tmp/forge.txt"
# the command table: two-space indented lines under "commands:"
awk '/^commands:/ {on=1; next} on && /^$/ {exit} on && /^  [a-z]/ {name=$1; $1=""; sub(/^ +/, ""); print name "\t" $0}' \
	"$tmp/forge.txt" >"$tmp/commands"
see=$(awk -F'\t' '{printf "%sforge-%s(1)", (NR>1 ? ", " : ""), $1}' "$tmp/commands")
page forge "one spec: reproducible OCI images, containers and microVMs" "$tmp/forge.txt" "$see"
while IFS=$'\t' read -r cmd summary; do
	"$forge" "$cmd" --help >"$tmp/$cmd.txt" 2>&1 || true
	[ -s "$tmp/$cmd.txt" ] || { echo "gen-man: 'forge $cmd --help' printed nothing" >&2; exit 1; }
	page "forge-$cmd" "$summary" "$tmp/$cmd.txt" "forge(1)"
done <"$tmp/commands"

#!/usr/bin/env bash
# deps.sh PACKAGE... installs the Debian packages among PACKAGE that are not
# installed yet: with apt-get when run as root, through sudo when sudo works
# without a password, otherwise it stops and prints the command to run.
# Used by `make run` and `make test` (the list is DEPS in the Makefile).
set -euo pipefail

if [ "$#" -eq 0 ]; then
	echo "usage: $0 PACKAGE..." >&2
	exit 2
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: no dpkg-query: this is not a Debian-based system; install the equivalents of these packages yourself: $*" >&2
	exit 1
fi

missing=()
for pkg in "$@"; do
	if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$pkg")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root=(sudo -n)
else
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them (needs root), then rerun make:" >&2
	echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

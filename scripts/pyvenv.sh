#!/usr/bin/env bash
# Usage: scripts/pyvenv.sh NAME REQUIREMENTS_FILE
#
# Creates (if missing) a Python virtual environment cached outside the repo at
#   ${HEIMDALL_CACHE:-$HOME/.cache/heimdall}/venv/<NAME>-<first 12 hex of sha256(REQUIREMENTS_FILE)>
# installs the requirements into it, and prints its path on stdout (all other
# output goes to stderr). Idempotent: an existing, completed venv is reused.
# A venv is marked complete only after pip succeeded, so an interrupted
# install is redone on the next call.
set -euo pipefail

if [ "$#" -ne 2 ]; then
	echo "usage: $0 NAME REQUIREMENTS_FILE" >&2
	exit 2
fi
name=$1
req=$2
if [ ! -f "$req" ]; then
	echo "pyvenv: requirements file not found: $req" >&2
	exit 2
fi

python=${PYTHON:-python3}
hash=$(sha256sum "$req" | cut -c1-12)
cache=${HEIMDALL_CACHE:-$HOME/.cache/heimdall}
dir="$cache/venv/$name-$hash"

if [ ! -f "$dir/.complete" ]; then
	rm -rf "$dir"
	mkdir -p "$cache/venv"
	"$python" -m venv "$dir" >&2
	"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
	touch "$dir/.complete"
fi
echo "$dir"

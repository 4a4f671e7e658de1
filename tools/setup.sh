#!/usr/bin/env bash
# Set up everything logrca needs on a fresh machine: system packages, a
# virtualenv in .venv with the pinned dependencies, and logrca itself.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=$(grep -v '^#' tools/system-packages.txt | tr '\n' ' ' || true)
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing system packages:$missing" >&2
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PY" >&2
    "$PY" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
stamp=.venv/.logrca-setup
want=$(cat requirements.txt test-requirements.txt upper-constraints.txt setup.cfg setup.py pyproject.toml logrca/parsing/_speedups.c logrca/detectors/_kernels.c | sha1sum | cut -d' ' -f1)
if [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python dependencies (torch pinned to 2.13.0 CPU)" >&2
    # upper-constraints.txt pins torch==2.13.0: pip takes the CPU build
    # from this machine's disk and never resolves a newer (CUDA) torch.
    log=.venv/setup.log
    if ! { .venv/bin/pip install -q -c upper-constraints.txt \
               -r requirements.txt -r test-requirements.txt &&
           .venv/bin/pip install -q -c upper-constraints.txt --no-deps \
               -e . ; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "setup: pip failed; the whole output is in $log" >&2
        exit 1
    fi
    echo "$want" > $stamp
fi
echo "setup: ready (.venv)" >&2

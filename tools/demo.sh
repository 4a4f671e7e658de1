#!/usr/bin/env bash
# The README's first command: set everything up on a fresh machine, then run
# logrca on embedded defaults (SQLite, no broker) over one real failure run
# of the shared fault-injection data, list what it found and show one
# anomaly with its evidence.
#
#   tools/demo.sh                 # Nova test 33 (volume attach fails)
#   tools/demo.sh Cinder 12       # another campaign and test
#   tools/demo.sh PATH...         # your own log files or folders
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh

work=${LOGRCA_DEMO_DIR:-$PWD/state/demo}
mkdir -p "$work"
conf=$work/logrca.conf
cat > "$conf" <<CONF
[DEFAULT]
state_path = $work
[database]
connection = sqlite:///$work/logrca.sqlite
CONF
rm -f "$work"/logrca.sqlite*

data=${LOGRCA_SHARED_DATA:-$PWD/../shared/data}/dessertlab-openstack-fault-injection
if [ $# -ge 1 ] && [ -e "$1" ]; then
    paths=("$@")
else
    campaign=${1:-Nova}
    test_id=${2:-33}
    run="$work/run/$campaign/Test_$test_id"
    if [ ! -d "$run" ]; then
        archive="$data/logs/$campaign-round_1.tar.xz"
        if [ ! -f "$archive" ]; then
            echo "demo: $archive not found; give log paths instead" >&2
            exit 1
        fi
        echo "demo: extracting the service logs of $campaign Test_$test_id (round 1)" >&2
        mkdir -p "$work/run"
        # Only the service logs: workload logs and trigger_log are labels.
        tar -xJf "$archive" -C "$work/run" --wildcards \
            "$campaign/Test_$test_id/logs/round_1/nova/*" \
            "$campaign/Test_$test_id/logs/round_1/cinder/*" \
            "$campaign/Test_$test_id/logs/round_1/neutron/*" \
            "$campaign/Test_$test_id/logs/round_1/glance/*" \
            "$campaign/Test_$test_id/logs/round_1/heat/*"
    fi
    paths=("$run/logs/round_1")
fi

manage() { .venv/bin/logrca-manage --config-file "$conf" "$@"; }
manage db sync
manage replay "${paths[@]}"
echo
echo "== logrca-manage anomaly list"
manage anomaly list --limit 20
first=$(manage anomaly list --limit 1 --sort score:desc --format json 2>/dev/null |
        .venv/bin/python -c 'import json, sys; d = json.load(sys.stdin); print(d[0]["uuid"] if d else "")')
if [ -n "$first" ]; then
    echo
    echo "== logrca-manage anomaly show $first"
    manage anomaly show "$first"
    shared=${LOGRCA_SHARED_DATA:-$PWD/../shared/data}
    if [ ! -f "$work/kb/entries.json" ] && [ -d "$shared/openstack-ops-docs" ]; then
        echo
        echo "== logrca-manage kb build (operator docs and gate failure signatures)"
        manage kb build --docs "$shared/openstack-ops-docs" \
            --queries "$shared/elastic-recheck-queries/elastic_recheck_queries.jsonl"
    fi
    echo
    echo "== logrca-manage explain $first"
    manage explain "$first"
fi

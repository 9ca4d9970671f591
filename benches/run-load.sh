#!/usr/bin/env bash
# Runs the relay benchmarks of issue #6 with `weft-load` against `weft-relay`
# on 127.0.0.1 and prints one table row per scenario (docs/benchmarks.md,
# "Relay (issue #6)").
#
#   benches/run-load.sh                 # all four scenarios (~2-3 min)
#   benches/run-load.sh fanout idle     # a subset: fanout rooms find-max idle catchup
#
# Each scenario spawns its own relay (fresh temporary --data directory,
# --insecure-no-auth, --listen 127.0.0.1:0) and stops it afterwards.
# Environment:
#   CARGO_TARGET_DIR  where to build (default: the workspace's target/)
#   RELAY_ARGS        relay flags (default: the raised limits below)
#   OUT               also append the rows to this file
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# The open-file limit: 10,000 client sockets here plus 10,000 in the relay
# (which inherits this limit). Raised here, not in the code.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    ulimit -Hn "$want" 2>/dev/null || want=$hard
fi
ulimit -Sn "$want"
echo "# open-file limit: $(ulimit -Sn) (hard $(ulimit -Hn))" >&2

cargo build --release -p weft-relay -p weft-benches --bin weft-relay --bin weft-load >&2
LOAD="$CARGO_TARGET_DIR/release/weft-load"

# Relay flags for every scenario: all load comes from one IP (127.0.0.1) and
# the catch-up writer sends 10k updates as fast as they are acked, so the
# per-IP connection limit (default 1024) and the per-connection update rate
# (default 1000/s, burst 2000) are raised. Override with RELAY_ARGS.
if [ -z "${RELAY_ARGS+set}" ]; then
    RELAY_ARGS="--max-connections-per-ip 20000 --updates-per-sec 100000 --update-burst 100000"
fi
read -r -a relay_args <<<"$RELAY_ARGS"
common=()
for a in "${relay_args[@]}"; do common+=("--relay-arg=$a"); done

run() {
    echo "# weft-load $*" >&2
    local out
    if out=$("$LOAD" "${common[@]}" "$@"); then :; else
        echo "# FAILED (exit $?): weft-load $*" >&2
    fi
    printf '%s\n' "$out"
    if [ -n "${OUT:-}" ]; then printf '%s\n' "$out" >>"$OUT"; fi
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(fanout rooms find-max idle catchup)

echo "| scenario | parameters | weft-relay |"
echo "|---|---|---|"
for s in "${scenarios[@]}"; do
    case $s in
    fanout)
        for n in 10 100 1000; do
            run fanout --readers "$n" --rate 100 --updates 1000
        done
        ;;
    rooms) run rooms --rooms 1000 --clients 2 --rate 10000 --duration 10 ;;
    find-max) run rooms --rooms 1000 --clients 2 --duration 5 --find-max ;;
    idle)
        # 500 handshakes in flight overflow the relay's listen backlog (128,
        # tokio's default) and some SYNs are retried after 1 s; 100 do not.
        run idle --connections 10000 --docs 100 --concurrency 500
        run idle --connections 10000 --docs 100 --concurrency 100
        ;;
    catchup) run catchup --inserts 10000 --chars 10 ;;
    *)
        echo "unknown scenario $s (fanout rooms find-max idle catchup)" >&2
        exit 2
        ;;
    esac
done

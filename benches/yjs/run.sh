#!/usr/bin/env bash
# Runs benches/yjs/bench.mjs with everything it needs: the npm peers from the
# checked-in lockfile, y-sweet (install-y-sweet.sh), the release relay, and
# a raised open-files limit (10,000 idle sockets = 10,000 fds on each side).
#   bash benches/yjs/run.sh              # full set (~10-15 min on 2 cores)
#   QUICK=1 bash benches/yjs/run.sh      # small sizes, under a minute
# Other knobs (SERVERS, SCENARIOS, FANOUT, RATES, …): see bench.mjs's header.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
ulimit -n "$(ulimit -Hn)"
need=$(( ${IDLE:-10000} + 500 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "warning: open-files limit is $(ulimit -n); the idle scenario needs ~$need per process" >&2
fi
# progress to stderr: stdout is the results table
[ -d node_modules/@hocuspocus/server ] && [ -d node_modules/@y/websocket-server ] || npm ci --no-audit --no-fund >&2
bash "$here/install-y-sweet.sh" >&2
if [ -z "${WEFT_RELAY_BIN:-}" ]; then
  WEFT_RELAY_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/weft-relay"
  [ -x "$WEFT_RELAY_BIN" ] || (cd "$repo" && cargo build --release -p weft-relay)
fi
export WEFT_RELAY_BIN
exec node bench.mjs

#!/usr/bin/env bash
# Installs what the Yjs tests use: the npm packages of tests/yjs (yjs +
# y-websocket clients) and web/editor (the editor's build + playwright-core),
# from their checked-in lockfiles, and Debian's chromium for the browser
# test. Idempotent and quick when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm are required (node v20)" >&2
  exit 1
fi
for dir in tests/yjs web/editor; do
  if [ -d "$dir/node_modules" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    echo "$dir: node_modules up to date"
    continue
  fi
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
bash .ci/install-chromium.sh

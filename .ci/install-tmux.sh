#!/usr/bin/env bash
# tmux for weft-edit's terminal test (crates/edit/tests/tmux.rs). Idempotent:
# nothing to do when tmux is already installed.
set -euo pipefail
if command -v tmux >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq tmux >/dev/null
command -v tmux >/dev/null

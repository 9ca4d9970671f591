#!/usr/bin/env bash
# Installs the y-sweet server (the Rust crate `y-sweet`, pinned) for
# bench.mjs into benches/yjs/.y-sweet/bin/y-sweet. Idempotent: does nothing
# when that binary already reports the pinned version.
#   bash benches/yjs/install-y-sweet.sh
set -euo pipefail
VERSION=0.9.1
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.y-sweet"
bin="$root/bin/y-sweet"
if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null)" = "$VERSION" ]; then
  echo "y-sweet $VERSION already installed at $bin"
  exit 0
fi
# a separate target dir, removed afterwards: the build needs ~2 GB
target="${Y_SWEET_TARGET_DIR:-$root/target}"
CARGO_TARGET_DIR="$target" cargo install --locked y-sweet --version "$VERSION" --root "$root"
rm -rf "$target"
"$bin" version

#!/usr/bin/env bash
# Installs the servers the cluster-mode tests start for themselves
# (PostgreSQL and Redis, Debian packages). Idempotent: quick when present.
# The tests start their own instances on free loopback ports in temporary
# directories; nothing here starts a service.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's packages start a system instance on install; the tests never use it.
ls /usr/lib/postgresql/*/bin/initdb
command -v redis-server

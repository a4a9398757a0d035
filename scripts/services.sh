#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are running, for the
# tests of the production backends. Starts them when they are installed but stopped.
source "$(dirname "$0")/lib.sh"

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  step "Starting PostgreSQL"
  if ! ls /etc/postgresql >/dev/null 2>&1; then apt_install postgresql; fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  step "Starting Redis"
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
  redis-cli -h 127.0.0.1 ping >/dev/null
fi

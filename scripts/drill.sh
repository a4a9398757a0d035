#!/usr/bin/env bash
# The failover drill: the production topology of deploy/ run as processes on 127.0.0.1 with
# Debian's packages (PostgreSQL primary + synchronous standby behind HAProxy, Redis + replica
# + Sentinel, three idp replicas behind HAProxy, Prometheus with deploy/prometheus/alerts.yml,
# Alertmanager with deploy/prometheus/alertmanager.yml), under steady load, through a rolling
# restart, a kill -9 of a replica, a PostgreSQL failover and a Redis failover. Prints a table
# (docs/operations.md) and fails when a bound is broken. About five minutes; run as root (the
# PostgreSQL servers run as the postgres user). Usage: scripts/drill.sh [results.md]
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
apt_install postgresql haproxy redis-server redis-sentinel prometheus prometheus-alertmanager
drill_prepare drill
step "Failover drill (logs in $WORK while it runs)"
if ! timeout 900 python3 scripts/drill/run.py "$IDP_BIN" "$ROOT" "$WORK" "${1:-}"; then
  drill_logs "$WORK"/*.log
  exit 1
fi

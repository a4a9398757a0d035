#!/usr/bin/env bash
# The disaster-recovery drill: PostgreSQL archiving with deploy/pgbackrest's configuration to
# two encrypted repositories (the second stands for off-site object storage), the IdP on it
# under load through its own HTTP API, then the data directory and the in-cluster repository
# destroyed and the database restored from the off-site copy: to a point in time T, then to
# the latest state; retention enforced. Prints RTO and RPO (docs/backup.md). About a minute
# for the default 10,000 users; run as root (PostgreSQL runs as the postgres user).
# Usage: scripts/dr-drill.sh [--users N] [results.md]
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
USERS=10000
if [ "${1:-}" = "--users" ]; then USERS="$2"; shift 2; fi
apt_install postgresql pgbackrest
drill_prepare dr-drill
step "Disaster-recovery drill, $USERS users (logs in $WORK while it runs)"
if ! timeout 900 python3 scripts/drill/dr.py "$IDP_BIN" "$ROOT" "$WORK" "$USERS" "${1:-}"; then
  drill_logs "$WORK"/*.log "$WORK"/pgbackrest-log/*.log
  exit 1
fi

#!/usr/bin/env python3
"""pgBackRest and WAL-archiving metrics for node_exporter's textfile collector.

Run every minute by deploy/pgbackrest/pgbackrest.cron as the postgres user; writes
$TEXTFILE_DIR/pgbackrest.prom (default /var/lib/prometheus/node-exporter) atomically.
The alerts on them are in deploy/prometheus/alerts.yml (group idp-postgres-backups).

  pgbackrest_up                                  1 when `pgbackrest info` read every repository
  pgbackrest_backup_last_completion_timestamp_seconds{repo,type}   newest backup of each type
  pgbackrest_backup_count{repo}                  backups in the repository (retention at work)
  pgbackrest_wal_last_archived_timestamp_seconds  pg_stat_archiver.last_archived_time
  pgbackrest_wal_last_failed_timestamp_seconds    pg_stat_archiver.last_failed_time (0: never)
  pgbackrest_wal_archive_failures_total           pg_stat_archiver.failed_count
  pgbackrest_wal_ready_segments                   segments waiting for archive_command
  pgbackrest_metrics_timestamp_seconds            when this file was written

Usage: pgbackrest-metrics.py [--stanza idp] [--psql psql] [--output FILE] (FILE - is stdout)"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ARCHIVER = ("select coalesce(extract(epoch from last_archived_time), 0), "
            "coalesce(extract(epoch from last_failed_time), 0), failed_count, "
            "(select count(*) from pg_ls_archive_statusdir() where name like '%.ready') from pg_stat_archiver")


def backup_metrics(stanza):
    lines = []
    try:
        out = subprocess.run(["pgbackrest", f"--stanza={stanza}", "--output=json", "info"], check=True,
                             capture_output=True, text=True, timeout=120).stdout
        info = json.loads(out)[0]
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as error:
        print(f"pgbackrest info failed: {error}", file=sys.stderr)
        return ["pgbackrest_up 0"]
    repos = info.get("repo", [])
    # A repository that holds no backup yet says so with a non-zero code but is readable.
    healthy = bool(repos) and all(repo["status"]["code"] in (0, 2) for repo in repos)
    lines.append(f"pgbackrest_up {int(healthy)}")
    newest, count = {}, {}
    for backup in info.get("backup", []):
        repo = str(backup["database"]["repo-key"])
        count[repo] = count.get(repo, 0) + 1
        if backup.get("error"):
            continue
        key = (repo, backup["type"])
        newest[key] = max(newest.get(key, 0), backup["timestamp"]["stop"])
    for repo in sorted(str(r["key"]) for r in repos):
        lines.append(f'pgbackrest_backup_count{{repo="{repo}"}} {count.get(repo, 0)}')
    for (repo, kind), stop in sorted(newest.items()):
        lines.append(f'pgbackrest_backup_last_completion_timestamp_seconds{{repo="{repo}",type="{kind}"}} {stop}')
    return lines


def archiver_metrics(psql):
    try:
        row = subprocess.run([psql, "-X", "-qtA", "-F", " ", "-d", "postgres", "-c", ARCHIVER], check=True,
                             capture_output=True, text=True, timeout=30).stdout.split()
        archived, failed, failures, ready = (float(v) for v in row)
    except (subprocess.SubprocessError, OSError, ValueError) as error:
        print(f"reading pg_stat_archiver failed: {error}", file=sys.stderr)
        return []
    return [f"pgbackrest_wal_last_archived_timestamp_seconds {archived:.0f}",
            f"pgbackrest_wal_last_failed_timestamp_seconds {failed:.0f}",
            f"pgbackrest_wal_archive_failures_total {failures:.0f}",
            f"pgbackrest_wal_ready_segments {ready:.0f}"]


HELP = {
    "pgbackrest_up": ("gauge", "1 when pgbackrest info read every repository"),
    "pgbackrest_backup_count": ("gauge", "Backups in the repository"),
    "pgbackrest_backup_last_completion_timestamp_seconds": ("gauge", "When the newest backup of the type finished"),
    "pgbackrest_wal_last_archived_timestamp_seconds": ("gauge", "When the last WAL segment was archived"),
    "pgbackrest_wal_last_failed_timestamp_seconds": ("gauge", "When archive_command last failed (0: never)"),
    "pgbackrest_wal_archive_failures_total": ("counter", "Failed archive_command runs since the statistics reset"),
    "pgbackrest_wal_ready_segments": ("gauge", "WAL segments waiting to be archived"),
    "pgbackrest_metrics_timestamp_seconds": ("gauge", "When this file was written"),
}


def exposition(samples):
    """Prometheus text format, each family with its HELP and TYPE before its first sample."""
    lines, seen = [], set()
    for sample in samples:
        family = sample.split("{")[0].split(" ")[0]
        if family not in seen:
            seen.add(family)
            kind, text = HELP[family]
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}"]
        lines.append(sample)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stanza", default="idp")
    parser.add_argument("--psql", default="psql")
    parser.add_argument("--output", default=os.path.join(
        os.environ.get("TEXTFILE_DIR", "/var/lib/prometheus/node-exporter"), "pgbackrest.prom"))
    args = parser.parse_args()
    lines = backup_metrics(args.stanza) + archiver_metrics(args.psql)
    lines.append(f"pgbackrest_metrics_timestamp_seconds {time.time():.0f}")
    text = exposition(lines)
    if args.output == "-":
        sys.stdout.write(text)
        return
    # Written beside the target and renamed: node_exporter never reads half a file.
    directory = os.path.dirname(os.path.abspath(args.output))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.chmod(f.name, 0o644)
    os.replace(f.name, args.output)


if __name__ == "__main__":
    main()

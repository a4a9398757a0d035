#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/ (committed). Run after editing:
python3 deploy/grafana/generate.py. A test checks that every metric they query exists."""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, x, y, w=12, h=8, unit="short", kind="timeseries", legend=None):
    targets = [{"datasource": DS, "expr": e, "legendFormat": (legend or [""] * len(exprs))[i], "refId": chr(65 + i)}
               for i, e in enumerate(exprs)]
    return {"id": pid, "type": kind, "title": title, "datasource": DS, "targets": targets,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}


def dashboard(uid, title, panels):
    return {
        "uid": uid, "title": title, "tags": ["idp"], "timezone": "utc", "schemaVersion": 39, "version": 1,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"}]},
        "panels": [dict(p, id=i + 1) for i, p in enumerate(panels)],
    }


R = 'sum(rate({m}[5m]))'
dashboards = {
    "system-health.json": dashboard("idp-system", "IdP · System health", [
        panel(0, "Instances up", ['sum(up{job="idp"})'], 0, 0, 6, 6, kind="stat"),
        panel(0, "Error ratio (5xx)", ['sum(rate(idp_http_requests_total{status=~"5.."}[5m])) / sum(rate(idp_http_requests_total[5m]))'], 6, 0, 6, 6, unit="percentunit", kind="stat"),
        panel(0, "Requests by status", ['sum by (status) (rate(idp_http_requests_total[5m]))'], 12, 0, 12, 6, unit="reqps", legend=["{{status}}"]),
        panel(0, "CPU", ['sum by (instance) (rate(process_cpu_seconds_total{job="idp"}[5m]))'], 0, 6, 8, 8, legend=["{{instance}}"]),
        panel(0, "Resident memory", ['process_resident_memory_bytes{job="idp"}'], 8, 6, 8, 8, unit="bytes", legend=["{{instance}}"]),
        panel(0, "Database pool in use", ['sum by (instance) (idp_db_pool_connections{state="in_use"}) / sum by (instance) (idp_db_pool_max_connections)'], 16, 6, 8, 8, unit="percentunit", legend=["{{instance}}"]),
        panel(0, "Deny-list (Redis) errors", ['sum(rate(idp_denylist_errors_total[5m]))'], 0, 14, 12, 6),
        panel(0, "Housekeeping: rows deleted", ['sum by (kind) (increase(idp_cleanup_rows_deleted_total[1h]))'], 12, 14, 12, 6, legend=["{{kind}}"]),
        panel(0, "Database statement latency p99", ['histogram_quantile(0.99, sum by (le, statement) (rate(idp_db_query_duration_seconds_bucket[5m])))'], 0, 20, 12, 8, unit="s", legend=["{{statement}}"]),
        panel(0, "Database pool: wait for a connection", ['histogram_quantile(0.99, sum by (le) (rate(idp_db_pool_acquire_duration_seconds_bucket[5m])))', 'histogram_quantile(0.5, sum by (le) (rate(idp_db_pool_acquire_duration_seconds_bucket[5m])))'], 12, 20, 12, 8, unit="s", legend=["p99", "p50"]),
        panel(0, "Hours since the last backup", ['(time() - max(idp_backup_last_success_timestamp_seconds)) / 3600'], 0, 28, 8, 6, unit="h", kind="stat"),
        panel(0, "Signing keys by state", ['max by (state) (idp_signing_keys{state!="published"})'], 8, 28, 16, 6, legend=["{{state}}"]),
    ]),
    "authentication.json": dashboard("idp-auth", "IdP · Authentication", [
        panel(0, "Logins by outcome", ['sum by (outcome) (rate(idp_login_attempts_total[5m]))'], 0, 0, 12, 8, unit="ops", legend=["{{outcome}}"]),
        panel(0, "Failures by reason", ['sum by (reason) (rate(idp_login_attempts_total{outcome="failure"}[5m]))'], 12, 0, 12, 8, unit="ops", legend=["{{reason}}"]),
        panel(0, "Tokens issued", ['sum by (grant_type, token_type) (rate(idp_tokens_issued_total[5m]))'], 0, 8, 12, 8, unit="ops", legend=["{{grant_type}} {{token_type}}"]),
        panel(0, "Introspections", ['sum by (result) (rate(idp_introspections_total[5m]))'], 12, 8, 12, 8, unit="ops", legend=["{{result}}"]),
        panel(0, "Password hashes in progress", ['sum(idp_password_hashes_in_progress)'], 0, 16, 12, 6),
        panel(0, "Refresh rotations", ['sum(rate(idp_refresh_rotations_total[5m]))'], 12, 16, 12, 6, unit="ops"),
        panel(0, "Users with a second factor", ['max(idp_mfa_users)'], 0, 22, 8, 6, kind="stat"),
        panel(0, "Second-factor checks by factor and outcome", ['sum by (factor, outcome) (rate(idp_mfa_verifications_total[5m]))'], 8, 22, 10, 6, unit="ops", legend=["{{factor}} {{outcome}}"]),
        panel(0, "Second factors enrolled", ['sum(increase(idp_mfa_enrolments_total[1h]))'], 18, 22, 6, 6),
        panel(0, "Sign-ins through identity providers, by provider and outcome", ['sum by (upstream, outcome) (rate(idp_upstream_logins_total[5m]))'], 0, 28, 16, 8, unit="ops", legend=["{{upstream}} {{outcome}}"]),
        panel(0, "Back-channel logouts from identity providers", ['sum by (upstream) (increase(idp_upstream_logouts_total[1h]))'], 16, 28, 8, 8, legend=["{{upstream}}"]),
    ]),
    "security-events.json": dashboard("idp-security", "IdP · Security events", [
        panel(0, "Security events by type", ['sum by (type) (increase(idp_security_events_total[15m]))'], 0, 0, 24, 8, legend=["{{type}}"]),
        panel(0, "Refresh-token reuse", ['sum(increase(idp_refresh_token_reuse_total[15m]))'], 0, 8, 8, 8),
        panel(0, "Authorization-code reuse", ['sum(increase(idp_code_reuse_total[15m]))'], 8, 8, 8, 8),
        panel(0, "Revocations", ['sum(increase(idp_token_revocations_total[15m]))'], 16, 8, 8, 8),
        panel(0, "Failed logins for unknown users", ['sum(rate(idp_login_attempts_total{reason="unknown_user"}[5m]))'], 0, 16, 12, 8, unit="ops"),
        panel(0, "Administrative changes", ['sum by (type) (increase(idp_security_events_total{type=~"user_.*|client_.*|key_rotated"}[1h]))'], 12, 16, 12, 8, legend=["{{type}}"]),
    ]),
    "performance.json": dashboard("idp-performance", "IdP · Performance", [
        panel(0, "p50 / p99 latency by route", [
            'histogram_quantile(0.5, sum by (le, route) (rate(idp_http_request_duration_seconds_bucket[5m])))',
            'histogram_quantile(0.99, sum by (le, route) (rate(idp_http_request_duration_seconds_bucket[5m])))'],
            0, 0, 24, 9, unit="s", legend=["p50 {{route}}", "p99 {{route}}"]),
        panel(0, "Request rate by route", ['sum by (route) (rate(idp_http_requests_total[5m]))'], 0, 9, 12, 8, unit="reqps", legend=["{{route}}"]),
        panel(0, "Token issuance rate", ['sum(rate(idp_tokens_issued_total{token_type="access_token"}[5m]))'], 12, 9, 12, 8, unit="ops"),
        panel(0, "Signing time p99 by algorithm", ['histogram_quantile(0.99, sum by (le, alg) (rate(idp_token_signing_duration_seconds_bucket[5m])))'], 0, 17, 12, 8, unit="s", legend=["{{alg}}"]),
        panel(0, "Password hash time p99", ['histogram_quantile(0.99, sum by (le) (rate(idp_password_hash_duration_seconds_bucket[5m])))'], 12, 17, 12, 8, unit="s"),
    ]),
}

here = os.path.dirname(os.path.abspath(__file__))
for name, board in dashboards.items():
    with open(os.path.join(here, "dashboards", name), "w") as f:
        json.dump(board, f, indent=2)
        f.write("\n")

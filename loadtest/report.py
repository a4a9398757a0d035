"""The verdict and the report of a load test run (loadtest/run.py writes its inputs):
every request Locust made (requests-*.tsv), and the IdP's metrics and the CPU time of each
group of processes sampled every two seconds (samples.json).

Writes OUT_DIR/summary.md (per request name: count, rate, p50/p95/p99 against the
objective, error rate; the cost of a request: IdP CPU, database queries, Redis commands;
for a ramp, one row per step and the knee) and the charts throughput.png, latency.png and
resources.png; prints the summary; exits 1 when an objective of loadtest/slas.toml is missed.

Usage: report.py OUT_DIR"""
import glob
import json
import math
import os
import re
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
# The first seconds of a window are the users arriving: left out of its statistics.
SETTLE_S = 5
# Fewer requests of a name in a window than this: its p99 is not judged (one slow request
# out of five says nothing about the 99th percentile).
MIN_SAMPLES = 20


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def objectives(shape):
    with open(os.path.join(HERE, "slas.toml"), "rb") as f:
        slas = tomllib.load(f)
    merged = {**slas["default"], **slas.get(shape, {})}
    scale = merged["p99_scale"]
    merged["p99_ms"] = {name: bound * scale for name, bound in slas["default"]["p99_ms"].items()}
    return merged


def windows(shape_name, started, ended):
    """(label, users, start, end) of each window the objectives are judged in: a ramp's
    steps, or the whole run."""
    with open(os.path.join(HERE, "shapes.toml"), "rb") as f:
        shape = tomllib.load(f).get(shape_name, {"kind": "constant"})
    if shape["kind"] != "steps":
        return [("whole run", shape.get("users", 0), started + SETTLE_S, ended)]
    result = []
    for step in range(shape["steps"]):
        start = started + step * shape["step_s"]
        if start >= ended:
            break
        result.append((f"step {step + 1}", shape["start_users"] + step * shape["step_users"],
                       start + SETTLE_S, min(ended, start + shape["step_s"])))
    return result


def load_requests(out):
    requests = []
    for path in glob.glob(os.path.join(out, "requests-*.tsv")):
        with open(path) as f:
            for line in f:
                t, name, ms, ok = line.rstrip("\n").split("\t")
                requests.append((float(t), name, float(ms), ok == "1"))
    requests.sort()
    return requests


def sample_at(samples, t):
    """The sample nearest to time t."""
    return min(samples, key=lambda s: abs(s["t"] - t))


def metric_total(sample, prefix):
    return sum(v for k, v in sample["metrics"].items() if k.startswith(prefix))


def costs(samples, start, end, request_count):
    """Resources used between start and end, per request and per second."""
    a, b = sample_at(samples, start), sample_at(samples, end)
    seconds = max(b["t"] - a["t"], 1e-9)
    per_request = max(request_count, 1)
    cpu = {group: (b["cpu"].get(group, 0) - a["cpu"].get(group, 0)) / seconds for group in b["cpu"]}
    queries = metric_total(b, "idp_db_query_duration_seconds_count") - metric_total(a, "idp_db_query_duration_seconds_count")
    redis = metric_total(b, "idp_redis_command_duration_seconds_count") - metric_total(
        a, "idp_redis_command_duration_seconds_count")
    acquires = metric_total(b, "idp_db_pool_acquire_duration_seconds_count") - metric_total(
        a, "idp_db_pool_acquire_duration_seconds_count")
    acquire_s = metric_total(b, "idp_db_pool_acquire_duration_seconds_sum") - metric_total(
        a, "idp_db_pool_acquire_duration_seconds_sum")
    in_window = [s for s in samples if start <= s["t"] <= end] or [b]
    return {
        "cpu_cores": cpu,
        "peak_connections_in_use": max(s["metrics"].get('idp_db_pool_connections{state="in_use"}', 0)
                                       for s in in_window),
        "idp_cpu_ms_per_request": cpu.get("idp", 0) * seconds * 1000 / per_request,
        "db_queries_per_request": queries / per_request,
        "redis_commands_per_request": redis / per_request,
        "pool_wait_ms": acquire_s * 1000 / acquires if acquires else 0.0,
    }


def server_latency(samples, start, end):
    """Per route and method: requests and p99 in ms from the IdP's own histogram
    (idp_http_request_duration_seconds, all replicas), as Prometheus' histogram_quantile
    computes it: linear within the bucket."""
    a, b = sample_at(samples, start), sample_at(samples, end)
    buckets = {}
    for key, value in b["metrics"].items():
        if key.startswith("idp_http_request_duration_seconds_bucket"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            le = float(labels.pop("le"))
            route = (labels.get("method", ""), labels.get("route", ""))
            buckets.setdefault(route, []).append((le, value - a["metrics"].get(key, 0.0)))
    result = {}
    for route, counts in buckets.items():
        counts.sort()
        total = counts[-1][1]
        if total <= 0:
            continue
        rank, lower, below = 0.99 * total, 0.0, 0.0
        for le, cumulative in counts:
            if cumulative >= rank:
                upper = le if le != float("inf") else lower
                within = (rank - below) / max(cumulative - below, 1e-9)
                result[route] = (int(total), (lower + (upper - lower) * within) * 1000)
                break
            lower, below = le, cumulative
    return result


def is_attack(name):
    return "replayed" in name or "wrong password" in name or "revoked family" in name


def attack_let_through(miss):
    return is_attack(miss.split(":")[0]) and " failed " in miss


def judge(requests, start, end, goals):
    """Per name in [start, end): statistics and the objectives it misses."""
    by_name = {}
    for t, name, ms, ok in requests:
        if start <= t < end:
            by_name.setdefault(name, []).append((ms, ok))
    rows, misses = [], []
    for name, results in sorted(by_name.items()):
        times = sorted(ms for ms, _ in results)
        failures = sum(1 for _, ok in results if not ok)
        p99, bound = percentile(times, 0.99), goals["p99_ms"].get(name)
        error_rate = failures / len(results)
        if bound is not None and len(times) >= MIN_SAMPLES and p99 > bound:
            misses.append(f"{name}: p99 {p99:.0f} ms > {bound:.0f} ms")
        # An attack let through is a miss however few there were.
        if error_rate > goals["max_error_rate"] or is_attack(name) and failures:
            misses.append(f"{name}: {failures} of {len(results)} failed ({error_rate:.2%})")
        rows.append({"name": name, "count": len(results), "rate": len(results) / max(end - start, 1e-9),
                     "p50": percentile(times, 0.5), "p95": percentile(times, 0.95), "p99": p99,
                     "bound": bound, "failures": failures})
    return rows, misses


def charts(out, requests, samples, started):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not requests:
        return
    seconds = int(requests[-1][0] - started) + 1
    rate, fail = [0] * seconds, [0] * seconds
    latency = {}
    for t, name, ms, ok in requests:
        i = int(t - started)
        if 0 <= i < seconds:
            rate[i] += 1
            fail[i] += 0 if ok else 1
            latency.setdefault(name, {}).setdefault(i // 10, []).append(ms)

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(range(seconds), rate, label="requests/s", linewidth=0.8)
    ax.plot(range(seconds), fail, label="failed/s", color="red", linewidth=0.8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests per second")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput.png"), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 5))
    busiest = sorted(latency, key=lambda n: -sum(len(v) for v in latency[n].values()))[:8]
    for name in busiest:
        buckets = sorted(latency[name])
        ax.plot([b * 10 for b in buckets], [percentile(sorted(latency[name][b]), 0.99) for b in buckets],
                label=name, linewidth=0.9)
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("p99 over 10 s (ms)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "latency.png"), dpi=100)
    plt.close(fig)

    fig, (cpu_ax, db_ax, pool_ax) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    times = [s["t"] - started for s in samples[1:]]
    for group in samples[-1]["cpu"]:
        cpu_ax.plot(times, [(b["cpu"].get(group, 0) - a["cpu"].get(group, 0)) / (b["t"] - a["t"])
                            for a, b in zip(samples, samples[1:])], label=group, linewidth=0.9)
    cpu_ax.set_ylabel("CPU (cores)")
    cpu_ax.legend(fontsize=8, loc="upper left")
    for prefix, label in (("idp_db_query_duration_seconds_count", "database queries/s"),
                          ("idp_redis_command_duration_seconds_count", "Redis commands/s")):
        db_ax.plot(times, [(metric_total(b, prefix) - metric_total(a, prefix)) / (b["t"] - a["t"])
                           for a, b in zip(samples, samples[1:])], label=label, linewidth=0.9)
    db_ax.legend(fontsize=8, loc="upper left")

    def mean_wait_ms(a, b):
        count = metric_total(b, "idp_db_pool_acquire_duration_seconds_count") - metric_total(
            a, "idp_db_pool_acquire_duration_seconds_count")
        total = metric_total(b, "idp_db_pool_acquire_duration_seconds_sum") - metric_total(
            a, "idp_db_pool_acquire_duration_seconds_sum")
        return total * 1000 / count if count else 0.0

    pool_ax.plot(times, [mean_wait_ms(a, b) for a, b in zip(samples, samples[1:])], linewidth=0.9)
    pool_ax.set_ylabel("pool wait (ms, mean)")
    pool_ax.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "resources.png"), dpi=100)
    plt.close(fig)


def fmt(value):
    return "-" if value is None or value != value else f"{value:.0f}"


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "samples.json")) as f:
        run = json.load(f)
    samples, started = run["samples"], run["started"]
    requests = load_requests(out)
    if not requests or len(samples) < 2:
        sys.exit("no requests were made: see locust.log")
    goals = objectives(run["shape"])
    ended = requests[-1][0]
    lines = [f"# Load test: {run['shape']} on {run['backend']} ({run['replicas']} replica(s))", ""]

    steps, knee, failed = [], None, []
    for label, users, start, end in windows(run["shape"], started, ended):
        rows, misses = judge(requests, start, end, goals)
        count = sum(r["count"] for r in rows)
        steps.append((label, users, start, end, rows, misses, count, costs(samples, start, end, count)))
        if misses and not failed:
            failed = misses
        if not failed:
            knee = (label, users, count / (end - start))

    # The table: the whole run, or a ramp's knee (its busiest step within the objectives).
    shown = next((s for s in steps if knee and s[0] == knee[0]), steps[0])
    label, _, start, end, rows, misses, count, cost = shown
    lines += [f"Requests in `{label}`: {count} ({count / (end - start):.0f}/s).", "",
              "| request | count | per s | p50 ms | p95 ms | p99 ms | p99 objective | failed |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['count']} | {r['rate']:.1f} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} "
              f"| {fmt(r['bound'])} | {r['failures']} |" for r in rows]
    server = server_latency(samples, start, end)
    lines += ["", "The IdP's own view (idp_http_request_duration_seconds, all replicas; the difference with "
              "the table above is time spent in the load generator and the network):", "",
              "| route | requests | p99 ms |", "|---|---|---|"]
    lines += [f"| {method} {route} | {count} | {p99:.1f} |"
              for (method, route), (count, p99) in sorted(server.items(), key=lambda item: -item[1][0])]
    cores = ", ".join(f"{group} {value:.2f}" for group, value in cost["cpu_cores"].items())
    lines += ["", f"CPU in cores: {cores}.",
              f"Per request: {cost['idp_cpu_ms_per_request']:.2f} ms of IdP CPU, "
              f"{cost['db_queries_per_request']:.2f} database queries, "
              f"{cost['redis_commands_per_request']:.2f} Redis commands; mean pool wait {cost['pool_wait_ms']:.2f} ms; "
              f"at most {cost['peak_connections_in_use']:.0f} database connections in use (all replicas)."]

    if len(steps) > 1:
        lines += ["", "| step | users | requests/s | IdP CPU (cores) | IdP CPU ms/request | DB queries/request "
                  "| objectives |", "|---|---|---|---|---|---|---|"]
        for label, users, start, end, _, misses, count, cost in steps:
            lines.append(f"| {label} | {users} | {count / (end - start):.0f} | {cost['cpu_cores'].get('idp', 0):.2f} "
                         f"| {cost['idp_cpu_ms_per_request']:.2f} | {cost['db_queries_per_request']:.2f} "
                         f"| {'; '.join(misses) or 'met'} |")
        lines += ["", f"Knee: {knee[0]} at {knee[1]} users, {knee[2]:.0f} requests/s." if knee
                  else "Knee: none (the first step already misses an objective)."]

    verdict = []
    if len(steps) == 1:
        verdict = steps[0][5]
    elif knee is None or knee[1] < goals["min_knee_users"]:
        verdict = [f"the knee is below {goals['min_knee_users']} users ({'; '.join(failed)})"]
    # Attacks let through fail the run at any load.
    verdict += [m for s in steps for m in s[5] if attack_let_through(m) and m not in verdict]
    lines += ["", "Verdict: " + ("PASS" if not verdict else "FAIL: " + "; ".join(verdict))]

    charts(out, requests, samples, started)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    sys.exit(1 if verdict else 0)


if __name__ == "__main__":
    main()

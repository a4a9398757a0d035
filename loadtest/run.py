"""Runs one load test (scripts/loadtest.sh is the entry point): starts the IdP on the chosen
backend, fills it with representative data (the data generator, idp/examples/loadtest_data.rs),
gets an admin API token the way the portal does, runs Locust with the chosen shape while it
samples the IdP's /metrics and the CPU time of every process involved, then writes the
report (loadtest/report.py) and exits non-zero when an objective of loadtest/slas.toml is
missed.

Backends:
- sqlite: one `idp serve` with no configuration but its port (the embedded default: SQLite,
  in-process rate limits and deny-lists).
- postgres: the production topology of scripts/drill/topology.py (PostgreSQL with a
  synchronous standby, Redis with a replica and Sentinels over TLS, HAProxy) with 1 to 3
  replicas behind HAProxy.

Usage: run.py SHAPE OUT_DIR --idp BIN --datagen BIN --locust BIN [--backend ...] [sizes]"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts", "drill"))
from topology import PORTS, Topology, http_status, wait_until  # noqa: E402

ADMIN_PASSWORD = "load-test-admin-password"
# Series of the IdP's /metrics the report uses (counters and histograms' _count and _sum),
# summed over the replicas.
SCRAPED = re.compile(r"^(idp_http_request_duration_seconds_bucket|idp_db_query_duration_seconds_(count|sum)"
                     r"|idp_db_pool_acquire_duration_seconds_(count|sum)|idp_redis_command_duration_seconds_count"
                     r"|idp_password_hash_duration_seconds_(count|sum)|idp_db_pool_connections)(\{.*\})? ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def processes():
    """pid -> (ppid, command name, CPU seconds) of every process."""
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(pid)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


def tree_cpu(table, roots):
    """CPU seconds of the processes in `roots` and all their descendants."""
    children = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, list(roots)
    while todo:
        pid = todo.pop()
        if pid in table:
            total += table[pid][2]
            todo.extend(children.get(pid, []))
    return total


class Sampler(threading.Thread):
    """Every `interval_s`: the scraped series and the CPU seconds of each group of processes."""

    def __init__(self, metrics_urls, groups, interval_s=2.0):
        super().__init__(daemon=True)
        self.metrics_urls, self.groups, self.interval_s = metrics_urls, groups, interval_s
        self.samples, self.stopping = [], threading.Event()

    def scrape(self):
        series = {}
        for url in self.metrics_urls:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if SCRAPED.match(line):
                    key, value = line.rsplit(" ", 1)
                    series[key] = series.get(key, 0.0) + float(value)
        return series

    def run(self):
        while not self.stopping.is_set():
            table = processes()
            cpu = {name: tree_cpu(table, roots()) for name, roots in self.groups.items()}
            self.samples.append({"t": time.time(), "cpu": cpu, "metrics": self.scrape()})
            self.stopping.wait(self.interval_s)

    def stop(self):
        self.stopping.set()
        self.join()
        return self.samples


class Embedded:
    """The embedded default: one `idp serve`, SQLite, nothing else."""

    def __init__(self, work, idp_bin):
        self.work, self.idp_bin = work, idp_bin
        self.port, self.metrics_port = PORTS["idp"][0], PORTS["idp_metrics"][0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.metrics_urls = [f"http://127.0.0.1:{self.metrics_port}/metrics"]
        self.process = None

    def env(self):
        return {
            "PATH": os.environ["PATH"], "HOME": self.work, "IDP_ISSUER": self.base,
            "IDP_LISTEN": f"127.0.0.1:{self.port}", "IDP_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            "IDP_DATA_DIR": os.path.join(self.work, "data"), "IDP_LOG_LEVEL": "warn",
            "IDP_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD, **UNTHROTTLED,
        }

    def start(self):
        log = open(os.path.join(self.work, "idp.log"), "ab")
        self.process = subprocess.Popen([self.idp_bin, "serve"], env=self.env(), cwd=self.work,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until("idp ready", lambda: http_status(f"{self.base}/readyz") == 200, timeout_s=60)

    def groups(self):
        return {"idp": lambda: [self.process.pid]}

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# One load generator on one address: the per-address limits would throttle it, and the
# administrator's requests would be limited too. The per-account login protections stay on.
UNTHROTTLED = {
    "IDP_RATE_LIMIT_LOGIN_IP_PER_MINUTE": "0", "IDP_LOGIN_FAILURES_IP_PER_MINUTE": "0",
    "IDP_RATE_LIMIT_TOKEN_PER_MINUTE": "0", "IDP_RATE_LIMIT_INTROSPECT_PER_MINUTE": "0",
    "IDP_RATE_LIMIT_ADMIN_PER_MINUTE": "0", "IDP_ACCESS_TOKEN_TTL_S": "3600",
}


class Production:
    """The production topology (scripts/drill/topology.py) with `replicas` IdP replicas."""

    def __init__(self, work, idp_bin, replicas):
        self.topology = Topology(work, idp_bin, ROOT)
        self.replicas = replicas
        self.base = f"http://127.0.0.1:{PORTS['ingress']}"
        self.metrics_urls = [f"http://127.0.0.1:{p}/metrics" for p in PORTS["idp_metrics"][:replicas]]

        drill_env = self.topology.idp_env
        self.topology.idp_env = lambda index=None: {**drill_env(index), **UNTHROTTLED,
                                                    "IDP_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD}

    def env(self):
        return self.topology.idp_env()

    def start(self):
        t = self.topology
        t.start_postgres()
        t.start_redis()
        t.start_haproxy()
        t.psql(PORTS["pg_rw"], "create database idp")
        t.idp_cli(["migrate"])
        for index in range(self.replicas):
            t.start_idp(index)
            t.wait_in_rotation(index)

    def groups(self):
        p = self.topology.processes
        return {
            "idp": lambda: [p[f"idp{i + 1}"].pid for i in range(self.replicas)],
            "postgres": lambda: [p["pg1"].pid, p["pg2"].pid],
            "redis": lambda: [proc.pid for name, proc in p.items() if name.startswith(("redis", "sentinel"))],
            "haproxy": lambda: [p["haproxy"].pid],
        }

    def stop(self):
        self.topology.stop_all()


def admin_token(base):
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "admin-token.py"), base, "admin"],
                          input=ADMIN_PASSWORD, capture_output=True, text=True, check=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("shape")
    parser.add_argument("out")
    parser.add_argument("--idp", required=True)
    parser.add_argument("--datagen", required=True)
    parser.add_argument("--locust", required=True)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--replicas", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--processes", type=int, default=1, help="Locust processes")
    parser.add_argument("--classes", default="Browser Service Admin Attacker")
    parser.add_argument("--data", default="", help="data generator arguments, e.g. '--users 100000'")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="aimpact-loadtest.", dir="/var/tmp")
    backend = Embedded(work, args.idp) if args.backend == "sqlite" else Production(work, args.idp, args.replicas)
    try:
        print(f"==> starting the IdP ({args.backend}) in {work}", flush=True)
        backend.start()
        print(f"==> generating data ({args.data or 'defaults'})", flush=True)
        generated = subprocess.run([args.datagen, *args.data.split()], env=backend.env(), cwd=work,
                                   capture_output=True, text=True)
        sys.stderr.write(generated.stderr)
        if generated.returncode != 0:
            sys.exit("the data generator failed")
        fixture = {**json.loads(generated.stdout), "admin_token": admin_token(backend.base)}
        fixture_path = os.path.join(work, "fixture.json")
        with open(fixture_path, "w") as f:
            json.dump(fixture, f)

        locust_log = open(os.path.join(args.out, "locust.log"), "w")
        command = [args.locust, "-f", os.path.join(HERE, "locustfile.py"), "--headless", "--host", backend.base,
                   "--csv", os.path.join(args.out, "locust"), "--csv-full-history",
                   "--html", os.path.join(args.out, "locust-report.html"), "--exit-code-on-error", "0",
                   "--loglevel", "WARNING", *args.classes.split()]
        if args.processes > 1:
            command += ["--processes", str(args.processes)]
        env = dict(os.environ, LOADTEST_FIXTURE=fixture_path, LOADTEST_SHAPE=args.shape,
                   LOADTEST_PROCESSES=str(args.processes), LOADTEST_REQUEST_LOG=args.out)
        print(f"==> running Locust: shape {args.shape}, {args.classes}", flush=True)
        locust = subprocess.Popen(command, env=env, stdout=locust_log, stderr=subprocess.STDOUT)
        groups = {**backend.groups(), "locust": lambda: [locust.pid]}
        sampler = Sampler(backend.metrics_urls, groups)
        sampler.start()
        started = time.time()
        locust.wait()
        samples = sampler.stop()
        with open(os.path.join(args.out, "samples.json"), "w") as f:
            json.dump({"started": started, "backend": args.backend, "shape": args.shape,
                       "replicas": 1 if args.backend == "sqlite" else args.replicas, "samples": samples}, f)
        if locust.returncode != 0:
            sys.exit(f"Locust exited with {locust.returncode}: see {args.out}/locust.log")
    except BaseException:
        for log in sorted(os.listdir(work)):
            if log.endswith(".log"):
                with open(os.path.join(work, log), errors="replace") as f:
                    print(f"== {log} (last lines)\n" + "".join(f.readlines()[-10:]), file=sys.stderr)
        raise
    finally:
        backend.stop()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()

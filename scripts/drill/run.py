"""The failover drill (scripts/drill.sh): the production topology as processes on 127.0.0.1,
under steady load, through four incidents. Prints a table and exits 1 when a bound is broken.

Usage: run.py IDP_BIN REPO WORK_DIR [RESULTS_FILE]"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from load import Client, Failed, Load, Recorder  # noqa: E402
from topology import PORTS, Topology, http_status, wait_until, write_table  # noqa: E402

PASSWORD = "drill-user-password-1"
CHAINS = 6
# Bounds: what "passes" means for each scenario.
MAX_FAILED_ON_CRASH = 10  # only requests in flight on the killed replica may fail
MAX_DATABASE_RTO_S = 30
# No request waits much longer than IDP_DATABASE_ACQUIRE_TIMEOUT_MS (2 s) for a database.
MAX_REQUEST_S = 5
ALERT_DEADLINE_S = 200  # IdpInstanceDown has `for: 2m`, then Alertmanager's group_wait


class Drill:
    def __init__(self, topology):
        self.t = topology
        self.rows = []
        self.broken = []

    def row(self, scenario, failed, recovery, alerts, lost, bound_ok, why=""):
        self.rows.append((scenario, failed, recovery, alerts, lost))
        if not bound_ok:
            self.broken.append(f"{scenario}: {why}")
        print(f"--- {scenario}: failed {failed}, recovered in {recovery}, alerts {alerts}, lost {lost}"
              + ("" if bound_ok else f"  BOUND BROKEN: {why}"), flush=True)

    def failures(self, start, end, kinds=None):
        return self.recorder.failures(start, end, kinds)

    def setup(self):
        t = self.t
        print("starting PostgreSQL (primary + synchronous standby), Redis (+ replica, 3 Sentinels), HAProxy", flush=True)
        t.start_postgres()
        t.start_redis()
        t.start_haproxy()
        wait_until("HAProxy to find the PostgreSQL primary", lambda: t.haproxy_up("pg_primary", "pg1"))
        t.psql(PORTS["pg_rw"], "create database idp")
        t.idp_cli(["migrate"])
        print("starting Prometheus, Alertmanager and three idp replicas", flush=True)
        t.start_monitoring()
        for index in range(3):
            t.start_idp(index)
        for index in range(3):
            t.wait_in_rotation(index)
        users = [f"chain{i}" for i in range(CHAINS)] + [f"login{i}" for i in range(3)]
        for user in users:
            t.idp_cli(["user", "add", user, "--password-stdin"], stdin=PASSWORD)
        client = json.loads(t.idp_cli(["client", "add", "--name", "drill", "--redirect-uri",
                                       "http://127.0.0.1:9/cb", "--first-party", "--json"]))
        self.limited = json.loads(t.idp_cli(["client", "add", "--name", "limited", "--grant-type",
                                             "client_credentials", "--scope", "api", "--rate-limit-token", "5",
                                             "--json"]))
        self.recorder = Recorder()
        self.client = Client(f"http://127.0.0.1:{PORTS['ingress']}", client["client_id"], client["client_secret"],
                             self.recorder)
        self.load = Load(self.client, users[:CHAINS], PASSWORD, users[CHAINS:])
        self.load.start()

    def baseline(self):
        start = time.time()
        time.sleep(8)
        failed = self.failures(start, time.time())
        done = len(self.recorder.window(start, time.time()))
        self.row("steady load (baseline)", f"{len(failed)} of {done}", "-", "-", 0, not failed and done > 20,
                 f"{failed[:3]} of {done} requests")

    def rolling_restart(self):
        t, start = self.t, time.time()
        for index in range(3):
            t.kill(f"idp{index + 1}", signal.SIGTERM)  # drains for IDP_SHUTDOWN_DRAIN_S, then exits
            t.start_idp(index)
            t.wait_in_rotation(index)
        time.sleep(2)
        failed = self.failures(start, time.time())
        done = len(self.recorder.window(start, time.time()))
        self.row("1. rolling restart (SIGTERM, ready, next)", f"{len(failed)} of {done}",
                 f"{time.time() - start:.0f} s for the three",
                 "none", 0, not failed, f"{failed[:3]}")

    def crash_replica(self):
        """kill -9 of idp3: it stays down until IdpInstanceDown reaches the pager (checked
        later, as it takes `for: 2m`); the next scenarios run on two replicas meanwhile."""
        t = self.t
        self.crash_at = time.time()
        t.kill("idp3", signal.SIGKILL)
        t.wait_in_rotation(2, up=False)
        dropped = time.time() - self.crash_at
        time.sleep(3)
        self.crash_failed = self.failures(self.crash_at, time.time())
        self.crash_dropped = dropped

    def crash_replica_alert(self):
        t = self.t
        try:
            wait_until("IdpInstanceDown at the pager",
                       lambda: t.webhook.alerts("/idp-pager", "IdpInstanceDown"),
                       timeout_s=max(1, self.crash_at + ALERT_DEADLINE_S - time.time()), interval_s=1)
            at = t.webhook.alerts("/idp-pager", "IdpInstanceDown")[0][0]
            alert = f"IdpInstanceDown paged after {at - self.crash_at:.0f} s"
            paged = True
        except TimeoutError:
            alert, paged = "IdpInstanceDown never reached the pager", False
        t.start_idp(2)
        t.wait_in_rotation(2)
        failed = self.crash_failed
        self.row("2. kill -9 of one replica", len(failed), f"dropped by the LB in {self.crash_dropped:.1f} s", alert,
                 0, paged and len(failed) <= MAX_FAILED_ON_CRASH, f"{len(failed)} failed, paged={paged}: {failed[:3]}")

    def database_failover(self):
        t = self.t
        start = time.time()
        t.kill("pg1", signal.SIGKILL)
        t.promote_standby()
        wait_until("HAProxy to route to the new primary", lambda: t.haproxy_up("pg_primary", "pg2"), timeout_s=30)
        # Recovered: writes (refresh rotations) succeed again through the load balancer.
        wait_until("a refresh rotation after the failover", lambda: any(
            e[2] for e in self.recorder.window(time.time() - 0.5, time.time() + 1, {"refresh"})), timeout_s=60,
            interval_s=0.1)
        rto = time.time() - start
        time.sleep(3)
        self.db_window = (start, time.time())
        self.db_rto = rto
        self.db_failed = self.failures(start, time.time())

    def database_failover_breakdown(self):
        """Who answered the failures of the switch, and the slowest request in it."""
        idp = [e for e in self.db_failed if " idp " in e[3]]
        lb = [e for e in self.db_failed if " lb " in e[3]]
        no_retry_after = [e for e in idp if "retry-after=None" in e[3]]
        slowest = max((e[4] for e in self.recorder.window(*self.db_window)), default=0.0)
        text = (f"{len(self.db_failed)} ({len(idp)} 503 + Retry-After from the IdP, {len(lb)} from the load balancer "
                f"while no replica was ready, {len(self.db_failed) - len(idp) - len(lb)} other); slowest {slowest:.1f} s")
        return text, no_retry_after, slowest

    def database_failover_report(self):
        t = self.t
        fired = bool(t.webhook.alerts("/idp-pager", "IdpDatabaseUnavailable"))
        try:
            wait_until("IdpDatabaseUnavailable to resolve", lambda: not t.prometheus_alerts("IdpDatabaseUnavailable"),
                       timeout_s=120, interval_s=1)
            resolved = True
        except TimeoutError:
            resolved = False
        self.load.stop()
        lost = self.load.verify_every_token()
        answers_lost = sum(chain.answers_lost for chain in self.load.chains)
        failed, no_retry_after, slowest = self.database_failover_breakdown()
        alerts = "IdpDatabaseUnavailable paged" if fired else "IdpDatabaseUnavailable NOT paged"
        alerts += ", resolved" if resolved else ", NOT resolved"
        self.row("3. PostgreSQL primary killed, standby promoted", failed, f"{self.db_rto:.1f} s (RTO)",
                 alerts, f"{len(lost)} commits ({answers_lost} answers lost, reported as rotated)",
                 fired and resolved and not lost and self.db_rto <= MAX_DATABASE_RTO_S and not no_retry_after
                 and slowest <= MAX_REQUEST_S,
                 f"fired={fired} resolved={resolved} lost={lost[:3]} rto={self.db_rto:.1f} "
                 f"without Retry-After={no_retry_after[:2]} slowest={slowest:.1f}")

    def redis_failover(self):
        t = self.t
        start = time.time()
        not_ready = []
        t.kill("redis1", signal.SIGKILL)
        deadline = time.time() + 40
        while t.redis_master_port() != PORTS["redis"][1] or not t.haproxy_up("redis_master", "redis2"):
            if time.time() > deadline:
                break
            for index in (0, 1):
                if http_status(f"http://127.0.0.1:{PORTS['idp'][index]}/readyz") != 200:
                    not_ready.append(f"idp{index + 1}")
            time.sleep(0.5)
        switched = time.time() - start
        time.sleep(3)
        failed = self.failures(start, time.time(), {"login", "refresh"})
        other = self.failures(start, time.time(), {"introspect"})
        # Rate limits continue (from Redis, or in-process meanwhile): a burst over a client's
        # own token limit is refused.
        throttled = self.burst_is_throttled()
        ok = not failed and not not_ready and throttled and switched < 40
        done = len(self.recorder.window(start, time.time(), {"login", "refresh"}))
        self.row("4. Redis primary killed, Sentinel fails over",
                 f"{len(failed)} of {done} logins and refreshes; {len(other)} introspections (deny-list fails closed)",
                 f"{switched:.1f} s (Sentinel + LB)", "none expected", 0, ok,
                 f"failed={failed[:3]} not_ready={not_ready[:3]} throttled={throttled}")

    def burst_is_throttled(self):
        limited = self.limited
        probe = Client(self.client.base, limited["client_id"], limited["client_secret"], Recorder())
        refused = 0
        for _ in range(12):
            try:
                probe.post_form("/token", {"grant_type": "client_credentials"}, "probe")
            except Failed as error:
                refused += "429" in str(error)
        return refused > 0

    def print_table(self, results_file):
        # Reported in the order they ran, not the order their checks finished.
        rows = sorted(self.rows, key=lambda row: row[0][0] if row[0][0].isdigit() else "0")
        write_table(["Scenario", "Failed requests", "Time to recover", "Alerts", "Data lost"], rows, results_file)


def main():
    idp_bin, repo, work = sys.argv[1:4]
    results = sys.argv[4] if len(sys.argv) > 4 else None
    drill = Drill(Topology(work, idp_bin, repo))
    try:
        drill.setup()
        drill.baseline()
        drill.rolling_restart()
        drill.crash_replica()
        drill.database_failover()
        drill.redis_failover()
        drill.crash_replica_alert()
        drill.database_failover_report()
    finally:
        if hasattr(drill, "load"):
            drill.load.stop()
        drill.t.stop_all()
    drill.print_table(results)
    if drill.broken:
        print("\nThe drill broke its bounds:\n  " + "\n  ".join(drill.broken))
        sys.exit(1)
    print("\nThe drill passed every bound.")


if __name__ == "__main__":
    main()

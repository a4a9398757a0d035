"""The production topology of deploy/ as processes on 127.0.0.1 (Debian's packages):

    PostgreSQL primary + synchronous streaming standby   -> HAProxy "pg-rw" (the CNPG -rw Service)
    Redis primary + replica, three Sentinels             -> HAProxy "redis" (routes to the master)
    three `idp serve` replicas                           -> HAProxy "ingress" (polls /readyz)
    Prometheus (deploy/prometheus/alerts.yml) -> Alertmanager (alertmanager.yml) -> webhook

HAProxy finds the PostgreSQL primary with an HTTP check answered here (pg_is_in_recovery(),
like Patroni's REST API) and the Redis master with a tcp-check of `INFO replication`."""
import http.server
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

PG_BIN = "/usr/lib/postgresql/{}/bin"
PORTS = {
    "pg": [25432, 25433], "pg_check": [25452, 25453], "pg_rw": 25440,
    "redis": [25379, 25380], "sentinel": [25381, 25382, 25383], "redis_lb": 25390,
    "idp": [25801, 25802, 25803], "idp_metrics": [25901, 25902, 25903], "ingress": 25800,
    "prometheus": 25090, "alertmanager": 25093, "webhook": 25094,
}


def write_table(header, rows, results_file=None):
    """Prints a Markdown table (the drills' results, as docs/ shows them) and writes it to
    results_file when one is given."""
    lines = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    lines += [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    table = "\n".join(lines)
    print("\n" + table)
    if results_file:
        with open(results_file, "w") as f:
            f.write(table + "\n")


def wait_until(what, predicate, timeout_s=30, interval_s=0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - not there yet
            pass
        time.sleep(interval_s)
    raise TimeoutError(f"timed out waiting for {what}")


def http_status(url, timeout_s=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


class QuietServer(http.server.ThreadingHTTPServer):
    """A peer closing its connection early (HAProxy's checks do) is not worth a traceback."""

    def handle_error(self, request, client_address):
        pass


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Webhook:
    """Alertmanager's receivers: every notification kept with the path it came to."""

    def __init__(self, port):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.append((time.time(), self.path, body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path, name, status="firing"):
        return [(at, alert) for at, p, body in self.received if p == path
                for alert in body["alerts"] if alert["labels"]["alertname"] == name and alert["status"] == status]


class Topology:
    def __init__(self, root, idp_bin, repo):
        self.root, self.idp_bin, self.repo = root, idp_bin, repo
        self.processes = {}  # name -> Popen
        self.pg_version = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
        self.postgres = pwd.getpwnam("postgres")
        self.master_key = subprocess.run([idp_bin, "keys", "generate-master"], check=True,
                                         capture_output=True, text=True).stdout.strip()
        self.checks = []

    # -- processes -------------------------------------------------------------------------
    def spawn(self, name, args, env=None, as_postgres=False):
        log = open(os.path.join(self.root, f"{name}.log"), "ab")
        kwargs = {"user": self.postgres.pw_uid, "group": self.postgres.pw_gid} if as_postgres else {}
        self.processes[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True, **kwargs)
        return self.processes[name]

    def kill(self, name, sig=signal.SIGKILL):
        process = self.processes[name]
        process.send_signal(sig)
        process.wait(timeout=60)

    def stop_all(self):
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        for check in self.checks:
            check.shutdown()

    def pg(self, tool):
        return os.path.join(PG_BIN.format(self.pg_version), tool)

    def as_postgres(self, args):
        subprocess.run(args, check=True, capture_output=True, cwd=self.root,
                       user=self.postgres.pw_uid, group=self.postgres.pw_gid)

    def psql(self, port, sql, database="postgres"):
        return subprocess.run(
            [self.pg("psql"), "-X", "-qtA", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database,
             "-c", sql], check=True, capture_output=True, text=True, timeout=10).stdout.strip()

    # -- PostgreSQL ------------------------------------------------------------------------
    def start_postgres(self):
        primary, standby = (os.path.join(self.root, d) for d in ("pg1", "pg2"))
        os.chown(self.root, self.postgres.pw_uid, self.postgres.pw_gid)
        self.as_postgres([self.pg("initdb"), "-D", primary, "-U", "postgres", "--auth=trust", "--no-sync"])
        with open(os.path.join(primary, "postgresql.auto.conf"), "a") as conf:
            conf.write(f"port = {PORTS['pg'][0]}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nwal_level = replica\n"
                       # Synchronous commit to the standby: an acknowledged commit survives the
                       # primary's loss (CNPG: minSyncReplicas 1).
                       "synchronous_standby_names = 'standby'\nsynchronous_commit = on\n"
                       "max_connections = 100\nshared_buffers = 64MB\n")
        self.spawn("pg1", [self.pg("postgres"), "-D", primary], as_postgres=True)
        wait_until("the primary", lambda: self.psql(PORTS["pg"][0], "select 1") == "1")
        self.as_postgres([self.pg("pg_basebackup"), "-h", "127.0.0.1", "-p", str(PORTS["pg"][0]), "-U", "postgres",
                          "-D", standby, "-X", "stream", "--no-sync"])
        with open(os.path.join(standby, "postgresql.auto.conf"), "a") as conf:
            conf.write(f"port = {PORTS['pg'][1]}\nsynchronous_standby_names = ''\n"
                       f"primary_conninfo = 'host=127.0.0.1 port={PORTS['pg'][0]} user=postgres application_name=standby'\n")
        open(os.path.join(standby, "standby.signal"), "w").close()
        os.chown(os.path.join(standby, "standby.signal"), self.postgres.pw_uid, self.postgres.pw_gid)
        self.spawn("pg2", [self.pg("postgres"), "-D", standby], as_postgres=True)
        wait_until("the synchronous standby", lambda: self.psql(
            PORTS["pg"][0], "select sync_state from pg_stat_replication where application_name = 'standby'") == "sync")
        for node, port in zip(PORTS["pg"], PORTS["pg_check"]):
            self.checks.append(self._primary_check(node, port))

    def _primary_check(self, node, port):
        topology = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                try:
                    primary = topology.psql(node, "select pg_is_in_recovery()") == "f"
                except (subprocess.SubprocessError, OSError):
                    primary = False
                self.send_response(200 if primary else 503)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = QuietServer(("127.0.0.1", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def promote_standby(self):
        """What the operator does on the primary's loss: promote the synchronous standby."""
        self.as_postgres([self.pg("pg_ctl"), "promote", "-w", "-D", os.path.join(self.root, "pg2")])

    # -- Redis -----------------------------------------------------------------------------
    # -- Redis -----------------------------------------------------------------------------
    REDIS_PASSWORD = "drill-redis-password"

    def _redis_tls(self):
        """A test CA and a certificate for 127.0.0.1, as cert-manager issues redis-tls."""
        tls = os.path.join(self.root, "tls")
        os.makedirs(tls, exist_ok=True)
        run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-subj", "/CN=drill CA", "-keyout", f"{tls}/ca.key", "-out", f"{tls}/ca.crt")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=redis",
            "-keyout", f"{tls}/tls.key", "-out", f"{tls}/tls.csr")
        with open(f"{tls}/ext", "w") as ext:
            ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("x509", "-req", "-in", f"{tls}/tls.csr", "-CA", f"{tls}/ca.crt", "-CAkey", f"{tls}/ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", f"{tls}/ext", "-out", f"{tls}/tls.crt")
        return tls

    def redis_cli(self, port, *command):
        return subprocess.run(["redis-cli", "--tls", "--cacert", f"{self.tls}/ca.crt", "-p", str(port),
                               "--no-auth-warning", *command], capture_output=True, text=True, timeout=5).stdout

    def start_redis(self):
        """As deploy/k8s/redis.yaml runs it: TLS only, a password, a replica, three Sentinels."""
        self.tls = tls = self._redis_tls()
        primary, replica = PORTS["redis"]
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.root,
                  "--port", "0", "--tls-replication", "yes", "--tls-auth-clients", "no",
                  "--tls-cert-file", f"{tls}/tls.crt", "--tls-key-file", f"{tls}/tls.key",
                  "--tls-ca-cert-file", f"{tls}/ca.crt",
                  "--requirepass", self.REDIS_PASSWORD, "--masterauth", self.REDIS_PASSWORD]
        self.spawn("redis1", ["redis-server", "--tls-port", str(primary), *common])
        self.spawn("redis2", ["redis-server", "--tls-port", str(replica), "--replicaof", "127.0.0.1", str(primary),
                              *common])
        for index, port in enumerate(PORTS["sentinel"]):
            path = os.path.join(self.root, f"sentinel{index}.conf")
            with open(path, "w") as conf:
                conf.write(f"port 0\ntls-port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                           f"tls-replication yes\ntls-auth-clients no\ntls-cert-file {tls}/tls.crt\n"
                           f"tls-key-file {tls}/tls.key\ntls-ca-cert-file {tls}/ca.crt\n"
                           f"sentinel monitor idp 127.0.0.1 {primary} 2\n"
                           f"sentinel auth-pass idp {self.REDIS_PASSWORD}\n"
                           "sentinel down-after-milliseconds idp 2000\nsentinel failover-timeout idp 10000\n")
            self.spawn(f"sentinel{index}", ["redis-server", path, "--sentinel"])
        wait_until("the Redis replica in sync", lambda: "master_link_status:up" in self.redis_cli(
            replica, "-a", self.REDIS_PASSWORD, "info", "replication"))
        # A Sentinel that has not yet discovered the replica would abort a failover (no good
        # replica) and wait 2 × failover-timeout before the next try.
        for port in PORTS["sentinel"]:
            wait_until(f"Sentinel {port} to know the replica", lambda port=port: str(replica) in self.redis_cli(
                port, "sentinel", "replicas", "idp"), timeout_s=30, interval_s=0.5)

    def redis_master_port(self):
        out = self.redis_cli(PORTS["sentinel"][0], "sentinel", "get-master-addr-by-name", "idp").split()
        return int(out[1]) if len(out) == 2 else None

    def redis_check(self):
        """The master-following check of deploy/k8s/redis.yaml's HAProxy, as it is written there."""
        with open(os.path.join(self.repo, "deploy/k8s/redis.yaml")) as f:
            manifest = f.read()
        backend = manifest[manifest.index("    backend redis_master"):].splitlines()[1:]
        lines = []
        for line in (line.strip() for line in backend):
            if not line.startswith(("option tcp-check", "tcp-check")):
                break
            lines.append(line)
        if len(lines) < 8:
            raise RuntimeError("deploy/k8s/redis.yaml: no tcp-check found in the redis_master backend")
        return lines

    # -- HAProxy ---------------------------------------------------------------------------
    def start_haproxy(self):
        pg = "\n".join(f"    server pg{i + 1} 127.0.0.1:{port} check port {check}"
                       for i, (port, check) in enumerate(zip(PORTS["pg"], PORTS["pg_check"])))
        redis = "\n".join(f"    server redis{i + 1} 127.0.0.1:{port} check verify required ca-file {self.tls}/ca.crt"
                          for i, port in enumerate(PORTS["redis"]))
        redis_check = "\n".join(f"    {line}" for line in self.redis_check())
        idp = "\n".join(f"    server idp{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(PORTS["idp"]))
        config = f"""global
    stats socket {self.root}/haproxy.sock mode 600 level admin
    maxconn 2000
defaults
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    default-server inter 500ms fall 2 rise 2
frontend pg_rw
    mode tcp
    bind 127.0.0.1:{PORTS['pg_rw']}
    default_backend pg_primary
backend pg_primary
    mode tcp
    # A node that stops being primary loses its sessions at once (not so the IdP replicas,
    # whose in-flight requests finish while they drain).
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
    option httpchk GET /
    http-check expect status 200
{pg}
frontend redis
    mode tcp
    bind 127.0.0.1:{PORTS['redis_lb']}
    default_backend redis_master
backend redis_master
    mode tcp
    default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions
{redis_check}
{redis}
frontend ingress
    mode http
    bind 127.0.0.1:{PORTS['ingress']}
    option forwardfor
    default_backend idp
backend idp
    mode http
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # A connection refused before anything was sent is retried on another replica.
    retries 2
    option redispatch
{idp}
"""
        path = os.path.join(self.root, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        env = dict(os.environ, REDIS_PASSWORD=self.REDIS_PASSWORD)
        subprocess.run(["haproxy", "-c", "-q", "-f", path], check=True, env=env)
        self.spawn("haproxy", ["haproxy", "-db", "-f", path], env=env)
        wait_until("HAProxy", lambda: port_open(PORTS["ingress"]))

    def haproxy_up(self, backend, server):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(os.path.join(self.root, "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        for line in data.decode().splitlines():
            fields = line.split(",")
            if len(fields) > 17 and fields[0] == backend and fields[1] == server:
                return fields[17] == "UP"
        return False

    # -- the IdP ---------------------------------------------------------------------------
    def idp_env(self, index=None):
        env = {
            "PATH": os.environ["PATH"], "HOME": self.root,
            "IDP_ISSUER": f"http://127.0.0.1:{PORTS['ingress']}",
            "IDP_DATABASE_URL": f"postgres://postgres@127.0.0.1:{PORTS['pg_rw']}/idp",
            "IDP_DATABASE_MAX_CONNECTIONS": "10", "IDP_DATABASE_ACQUIRE_TIMEOUT_MS": "2000",
            "IDP_REDIS_URL": f"rediss://:{self.REDIS_PASSWORD}@127.0.0.1:{PORTS['redis_lb']}",
            "IDP_REDIS_CA_FILE": f"{self.tls}/ca.crt", "IDP_MASTER_KEY": self.master_key,
            "IDP_BOOTSTRAP_ADMIN_PASSWORD": "drill-admin-password", "IDP_LOG_FORMAT": "json", "IDP_LOG_LEVEL": "warn",
            "IDP_MIGRATE_ON_START": "false", "IDP_SHUTDOWN_DRAIN_S": "2",
            # One load generator on one address: the per-address limits would throttle it.
            "IDP_RATE_LIMIT_LOGIN_IP_PER_MINUTE": "0", "IDP_LOGIN_FAILURES_IP_PER_MINUTE": "0",
            "IDP_RATE_LIMIT_TOKEN_PER_MINUTE": "0", "IDP_RATE_LIMIT_INTROSPECT_PER_MINUTE": "0",
        }
        if index is not None:
            env["IDP_LISTEN"] = f"127.0.0.1:{PORTS['idp'][index]}"
            env["IDP_METRICS_LISTEN"] = f"127.0.0.1:{PORTS['idp_metrics'][index]}"
        return env

    def idp_cli(self, args, stdin=None):
        return subprocess.run([self.idp_bin, *args], env=self.idp_env(), input=stdin, check=True,
                              capture_output=True, text=True, cwd=self.root).stdout

    def start_idp(self, index):
        self.spawn(f"idp{index + 1}", [self.idp_bin, "serve"], env=self.idp_env(index))
        wait_until(f"idp{index + 1} ready",
                   lambda: http_status(f"http://127.0.0.1:{PORTS['idp'][index]}/readyz") == 200, timeout_s=60)

    def wait_in_rotation(self, index, up=True):
        wait_until(f"HAProxy to mark idp{index + 1} {'up' if up else 'down'}",
                   lambda: self.haproxy_up("idp", f"idp{index + 1}") == up, timeout_s=30)

    # -- monitoring ------------------------------------------------------------------------
    def start_monitoring(self):
        rules = os.path.join(self.repo, "deploy/prometheus/alerts.yml")
        targets = [f"127.0.0.1:{p}" for p in PORTS["idp_metrics"]]
        prometheus = {
            # The drill's only change to production: scrape and evaluate every second.
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{PORTS['alertmanager']}"]}]}]},
            "scrape_configs": [{
                "job_name": "idp", "static_configs": [{"targets": targets}],
                "relabel_configs": [{"source_labels": ["__address__"], "regex": "127.0.0.1:2590([1-3])",
                                     "target_label": "instance", "replacement": "idp-$1"}],
            }],
        }
        with open(os.path.join(self.root, "prometheus.yml"), "w") as f:
            json.dump(prometheus, f)  # JSON is YAML
        # The production routing, with each receiver's URL pointed at the local webhook.
        routing, receiver = [], None
        with open(os.path.join(self.repo, "deploy/prometheus/alertmanager.yml")) as f:
            for line in f:
                if match := re.match(r"\s*- name: (\S+)", line):
                    receiver = match.group(1)
                if match := re.match(r"(\s*- url: )\S+", line):
                    line = f"{match.group(1)}http://127.0.0.1:{PORTS['webhook']}/{receiver}\n"
                routing.append(line)
        with open(os.path.join(self.root, "alertmanager.yml"), "w") as f:
            f.writelines(routing)
        self.webhook = Webhook(PORTS["webhook"])
        shutil.rmtree(os.path.join(self.root, "am"), ignore_errors=True)
        self.spawn("alertmanager", ["prometheus-alertmanager", f"--config.file={self.root}/alertmanager.yml",
                                    f"--storage.path={self.root}/am", "--cluster.listen-address=",
                                    f"--web.listen-address=127.0.0.1:{PORTS['alertmanager']}"])
        self.spawn("prometheus", ["prometheus", f"--config.file={self.root}/prometheus.yml",
                                  f"--storage.tsdb.path={self.root}/tsdb",
                                  f"--web.listen-address=127.0.0.1:{PORTS['prometheus']}"])
        wait_until("Prometheus", lambda: http_status(f"http://127.0.0.1:{PORTS['prometheus']}/-/ready") == 200)
        wait_until("Alertmanager", lambda: http_status(f"http://127.0.0.1:{PORTS['alertmanager']}/-/ready") == 200)

    def prometheus_alerts(self, name):
        """States of the alert `name` in Prometheus (pending, firing), by instance."""
        with urllib.request.urlopen(f"http://127.0.0.1:{PORTS['prometheus']}/api/v1/alerts", timeout=5) as r:
            alerts = json.loads(r.read())["data"]["alerts"]
        return {a["labels"].get("instance", ""): a["state"] for a in alerts if a["labels"]["alertname"] == name}

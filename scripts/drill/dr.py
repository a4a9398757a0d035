"""The disaster-recovery drill (scripts/dr-drill.sh): PostgreSQL with deploy/pgbackrest's
configuration (WAL archived to two encrypted repositories, the second standing for off-site
object storage), the IdP on it, a point-in-time recovery and a latest-state recovery from the
off-site repository after the data directory and the in-cluster repository are gone, and the
retention of the tool at work. Prints the measured RTO and RPO; exits 1 when a check fails.

Usage: dr.py IDP_BIN REPO WORK_DIR USERS [RESULTS_FILE]"""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from load import REDIRECT, Client, Failed, Recorder  # noqa: E402
from topology import Topology, http_status, wait_until, write_table  # noqa: E402

PG_PORT, IDP_PORT, METRICS_PORT = 26432, 26801, 26901
BASE = f"http://127.0.0.1:{IDP_PORT}"
PASSWORD = "dr-drill-user-password-1"
ADMIN_PASSWORD = "dr-drill-admin-password"
STANZA = "idp"


class Check(Exception):
    """A check of the drill that did not hold."""


def expect(condition, what):
    if not condition:
        raise Check(what)
    print(f"  ok: {what}", flush=True)


class Site(Topology):
    """One PostgreSQL server archiving with pgBackRest, and one IdP replica on it."""

    def __init__(self, work, idp_bin, repo):
        super().__init__(work, idp_bin, repo)
        self.data = os.path.join(work, "pgdata")
        self.repo1 = os.path.join(work, "repo1-in-cluster")
        self.repo2 = os.path.join(work, "repo2-off-site")
        os.chown(work, self.postgres.pw_uid, self.postgres.pw_gid)
        for directory in ("spool", "pgbackrest-log", "lock", "no-conf.d"):
            path = os.path.join(work, directory)
            os.makedirs(path, exist_ok=True)
            os.chown(path, self.postgres.pw_uid, self.postgres.pw_gid)
        # deploy/pgbackrest's files installed on the "host", as /etc/pgbackrest and the cron
        # job hold them: the postgres user reads them (the clone may be in a private directory).
        self.installed = {}
        for name in ("pgbackrest.conf", "pgbackrest-metrics.py"):
            self.installed[name] = os.path.join(work, name)
            shutil.copyfile(os.path.join(self.repo, "deploy/pgbackrest", name), self.installed[name])
            os.chmod(self.installed[name], 0o644)
        # The repositories' passphrases, as the Secret (or secrets.conf) supplies them.
        self.cipher = {1: base64.b64encode(os.urandom(36)).decode(), 2: base64.b64encode(os.urandom(36)).decode()}

    # -- pgBackRest ------------------------------------------------------------------------
    def backrest_env(self, **overrides):
        """deploy/pgbackrest/pgbackrest.conf as it is, with the host's paths pointed here and
        the S3 repository replaced by a directory (PGBACKREST_* variables override the file)."""
        env = {
            "PATH": os.environ["PATH"], "HOME": self.root,
            "PGBACKREST_CONFIG": self.installed["pgbackrest.conf"],
            "PGBACKREST_CONFIG_INCLUDE_PATH": os.path.join(self.root, "no-conf.d"),
            "PGBACKREST_REPO1_PATH": self.repo1, "PGBACKREST_REPO1_CIPHER_PASS": self.cipher[1],
            "PGBACKREST_REPO2_TYPE": "posix", "PGBACKREST_REPO2_PATH": self.repo2,
            "PGBACKREST_REPO2_CIPHER_PASS": self.cipher[2],
            "PGBACKREST_SPOOL_PATH": os.path.join(self.root, "spool"),
            "PGBACKREST_LOG_PATH": os.path.join(self.root, "pgbackrest-log"),
            "PGBACKREST_LOCK_PATH": os.path.join(self.root, "lock"),
            "PGBACKREST_PG1_PATH": self.data, "PGBACKREST_PG1_PORT": str(PG_PORT),
            "PGBACKREST_PG1_SOCKET_PATH": self.root,
        }
        env.update({f"PGBACKREST_{k.upper()}": str(v) for k, v in overrides.items()})
        return env

    def backrest(self, *args, check=True, **overrides):
        # errors="replace": a wrong passphrase makes pgBackRest quote the undecryptable bytes.
        result = subprocess.run(["pgbackrest", f"--stanza={STANZA}", *args], env=self.backrest_env(**overrides),
                                capture_output=True, text=True, errors="replace", cwd=self.root, timeout=600,
                                user=self.postgres.pw_uid, group=self.postgres.pw_gid)
        if check and result.returncode != 0:
            raise Check(f"pgbackrest {' '.join(args)} failed: {result.stdout[-500:]} {result.stderr[-500:]}")
        return result

    def rebuild_repositories(self):
        """stanza-create for a lost repository. It needs the archive lock, which an
        archive-push in flight holds for a moment (error 050): retried, as an operator would."""
        for _ in range(20):
            result = self.backrest("stanza-create", check=False)
            if result.returncode == 0:
                return
            if "[050]" not in result.stderr + result.stdout:
                break
            time.sleep(0.5)
        raise Check(f"pgbackrest stanza-create failed: {result.stderr[-500:]}")

    def backups(self, repo):
        info = json.loads(self.backrest("--output=json", f"--repo={repo}", "info").stdout)[0]
        return [(b["label"], b["type"]) for b in info["backup"]]

    def metrics(self):
        """deploy/pgbackrest/pgbackrest-metrics.py, as cron runs it on the database host."""
        env = dict(self.backrest_env(), PGHOST=self.root, PGPORT=str(PG_PORT), PGUSER="postgres")
        out = subprocess.run(["python3", self.installed["pgbackrest-metrics.py"],
                              "--psql", self.pg("psql"), "--output", "-"], env=env, check=True,
                             capture_output=True, text=True, user=self.postgres.pw_uid,
                             group=self.postgres.pw_gid).stdout
        values = {}
        for line in out.splitlines():
            if not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    # -- PostgreSQL ------------------------------------------------------------------------
    def init_postgres(self):
        self.as_postgres([self.pg("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync"])
        with open(os.path.join(self.repo, "deploy/pgbackrest/postgresql.conf")) as f:
            archiving = f.read()
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"\n# scripts/dr-drill.sh\nport = {PG_PORT}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nshared_buffers = 64MB\n"
                       f"# deploy/pgbackrest/postgresql.conf\n{archiving}")

    def start_postgres(self):
        # archive_command and restore_command run pgbackrest with the server's environment.
        self.spawn("postgres", [self.pg("postgres"), "-D", self.data], env=self.backrest_env(), as_postgres=True)
        wait_until("PostgreSQL to accept connections", lambda: self.psql(PG_PORT, "select 1") == "1", timeout_s=300)
        wait_until("PostgreSQL to finish recovery", lambda: self.psql(PG_PORT, "select pg_is_in_recovery()") == "f",
                   timeout_s=300)

    def sql(self, query):
        return self.psql(PG_PORT, query, database="idp")

    def archive_everything(self):
        """Closes the current WAL segment and waits for the archiver to have pushed it."""
        segment = self.psql(PG_PORT, "select pg_walfile_name(pg_switch_wal())")
        wait_until(f"WAL segment {segment} archived", lambda: self.psql(
            PG_PORT, "select last_archived_wal from pg_stat_archiver") >= segment, timeout_s=60)

    def destroy(self):
        """The disaster: the server dies, its data directory and the in-cluster repository
        are gone. Only the off-site repository and the secrets remain."""
        for name in ("idp", "postgres"):
            if name in self.processes and self.processes[name].poll() is None:
                self.kill(name)
        shutil.rmtree(self.data)
        os.makedirs(self.data, mode=0o700)
        os.chown(self.data, self.postgres.pw_uid, self.postgres.pw_gid)
        shutil.rmtree(self.repo1, ignore_errors=True)
        shutil.rmtree(os.path.join(self.root, "spool"))
        os.makedirs(os.path.join(self.root, "spool"))
        os.chown(os.path.join(self.root, "spool"), self.postgres.pw_uid, self.postgres.pw_gid)

    # -- the IdP ---------------------------------------------------------------------------
    def idp_env(self, index=None):
        return {
            "PATH": os.environ["PATH"], "HOME": self.root, "IDP_ISSUER": BASE,
            "IDP_LISTEN": f"127.0.0.1:{IDP_PORT}", "IDP_METRICS_LISTEN": f"127.0.0.1:{METRICS_PORT}",
            "IDP_DATABASE_URL": f"postgres://postgres@127.0.0.1:{PG_PORT}/idp",
            "IDP_MASTER_KEY": self.master_key, "IDP_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "IDP_LOG_FORMAT": "json", "IDP_LOG_LEVEL": "warn",
            "IDP_RATE_LIMIT_LOGIN_IP_PER_MINUTE": "0", "IDP_LOGIN_FAILURES_IP_PER_MINUTE": "0",
            "IDP_RATE_LIMIT_TOKEN_PER_MINUTE": "0", "IDP_RATE_LIMIT_ADMIN_PER_MINUTE": "0",
        }

    def start_idp(self, index=0):
        self.spawn("idp", [self.idp_bin, "serve"], env=self.idp_env())
        wait_until("the IdP ready", lambda: http_status(f"{BASE}/readyz") == 200, timeout_s=120)


class Admin:
    """The admin API, with a token obtained the way the portal does (scripts/admin-token.py)."""

    def __init__(self, repo):
        self.script, self.totp_key, self.token = os.path.join(repo, "scripts/admin-token.py"), None, None

    def login(self):
        env = dict(os.environ, **({"IDP_TOTP_KEY": self.totp_key} if self.totp_key else {}))
        run = lambda: subprocess.run(["python3", self.script, BASE, "admin"], input=ADMIN_PASSWORD,  # noqa: E731
                                     env=env, capture_output=True, text=True, timeout=60)
        result = run()
        if result.returncode != 0:
            # A one-time code is accepted once: the last login may have spent this window's.
            time.sleep(31 - time.time() % 30)
            result = run()
        if result.returncode != 0:
            raise Check(f"the administrator's login failed: {result.stderr[-300:]}")
        for line in result.stderr.splitlines():
            if line.startswith("totp-key: "):
                self.totp_key = line.split(": ", 1)[1]
        self.token = result.stdout.strip()

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            f"{BASE}/admin/api/v1{path}", None if body is None else json.dumps(body).encode(),
            {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, None

    def create_user(self, username):
        status, user = self.call("POST", "/users", {"username": username, "password": PASSWORD,
                                                    "email": f"{username}@example.test"})
        if status != 201:
            raise Check(f"creating {username} answered {status}")
        return user["id"]

    def user_exists(self, username):
        status, page = self.call("GET", f"/users?q={username}")
        if status != 200:
            raise Check(f"listing users answered {status}")
        return any(u["username"] == username for u in page["items"])


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rs256_verifies(token, jwks):
    """The ID token's RS256 signature checked against the published key (RFC 8017 §8.2.2:
    EMSA-PKCS1-v1_5 with SHA-256), with nothing but the standard library."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64url(header_b64))
    key = next((k for k in jwks["keys"] if k["kid"] == header["kid"]), None)
    if key is None or header["alg"] != "RS256":
        return header["kid"], False
    n, e = (int.from_bytes(b64url(key[p]), "big") for p in ("n", "e"))
    size = (n.bit_length() + 7) // 8
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    digest = hashlib.sha256(f"{header_b64}.{payload_b64}".encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - 3 - len(digest_info) - len(digest)) + b"\x00" + digest_info + digest
    signed = pow(int.from_bytes(b64url(signature_b64), "big"), e, n).to_bytes(size, "big")
    return header["kid"], signed == expected


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


FINGERPRINT = """select count(*) filter (where t = 'u'), count(*) filter (where t = 'r'),
    md5(string_agg(x, ',' order by x)) from (
  select 'u' t, 'u:' || id || ':' || username x from users
  union all select 'p', 'p:' || user_id || ':' || phc from password_credentials
  union all select 'c', 'c:' || id || ':' || name from clients
  union all select 'g', 'g:' || id from grants
  union all select 'r', 'r:' || token_hash || ':' || state from refresh_tokens
  union all select 'k', 'k:' || kid || ':' || md5(private_key_enc) from signing_keys) rows"""

# Users as the API creates them (a UUID, the password hash of a real user), in bulk: the
# database's size, not the API's speed, is what a restore's time depends on.
BULK_USERS = """with created as (
  insert into users (id, username, username_key, email, email_key, status, roles, created_at, updated_at)
  select gen_random_uuid()::text, 'bulk' || i, 'bulk' || i, 'bulk' || i || '@example.test',
         'bulk' || i || '@example.test', 'active', '[]', {now}, {now} from generate_series(1, {n}) i
  returning id)
insert into password_credentials (user_id, phc, updated_at)
  select id, (select phc from password_credentials limit 1), {now} from created"""


class Drill:
    def __init__(self, site, users):
        self.s, self.users = site, users
        self.admin = Admin(site.repo)
        self.rows = []
        self.chains = {}  # username -> the refresh token of its last 200

    def step(self, text):
        print(f"--- {text}", flush=True)

    def setup(self):
        s = self.s
        self.step("PostgreSQL with deploy/pgbackrest's archiving, stanza on both repositories, full backups")
        s.init_postgres()
        s.start_postgres()
        s.backrest("stanza-create")
        s.backrest("check")
        s.psql(PG_PORT, "create database idp")
        s.idp_cli(["migrate"])
        for repo in (1, 2):
            s.backrest(f"--repo={repo}", "--type=full", "backup")
        s.start_idp()
        self.admin.login()
        status, client = self.admin.call("POST", "/clients", {
            "name": "dr-drill", "redirect_uris": [REDIRECT], "first_party": True})
        if status != 201:
            raise Check(f"registering the client answered {status}")
        self.client = Client(BASE, client["client"]["client_id"], client["client_secret"], Recorder())

    def login(self, username):
        return self.client.login(username, PASSWORD)

    def refresh(self, token):
        return self.client.post_form("/token", {"grant_type": "refresh_token", "refresh_token": token}, "refresh")

    def rotate_all(self):
        for username, token in self.chains.items():
            status, body = self.refresh(token)
            if status != 200:
                raise Check(f"refreshing {username}'s token answered {status} {body}")
            self.chains[username] = body["refresh_token"]

    def load_before_t(self):
        s = self.s
        self.step(f"load through the HTTP API, {self.users} more users in bulk, an incremental backup")
        for i in range(8):
            self.admin.create_user(f"before{i}")
        now = s.sql("select max(created_at) from users")
        s.sql(BULK_USERS.format(n=self.users, now=now))
        for i in range(6):
            self.chains[f"before{i}"] = self.login(f"before{i}")["refresh_token"]
        self.rotate_all()
        s.backrest("--repo=2", "--type=incr", "backup")
        self.rotate_all()
        self.users_at_t = int(s.sql("select count(*) from users"))

    def mark_t(self):
        s = self.s
        self.fingerprint_at_t = s.sql(FINGERPRINT)
        self.t = s.sql("select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
        self.tokens_at_t = dict(self.chains)
        self.kids_at_t = {k["kid"] for k in get_json(f"{BASE}/jwks")["keys"]}
        self.step(f"T = {self.t}: {self.users_at_t} users, fingerprint {self.fingerprint_at_t.split('|')[-1]}")
        time.sleep(1.1)  # every write below commits after T

    def write_after_t(self):
        self.step("writes after T: users created, every refresh token rotated; WAL archived")
        for i in range(4):
            self.admin.create_user(f"after{i}")
        self.rotate_all()
        self.s.archive_everything()

    def restore(self, label, *target):
        """Destroys the site and restores it from the off-site repository; returns the timings."""
        s = self.s
        self.step(f"disaster: PostgreSQL killed, data directory and in-cluster repository deleted ({label})")
        self.size_mb = int(s.psql(PG_PORT, "select pg_database_size('idp')")) / 1e6
        started = time.time()
        s.destroy()
        s.backrest("--repo=2", *target, "restore")
        restored = time.time()
        s.start_postgres()
        recovered = time.time()
        fingerprint = s.sql(FINGERPRINT)
        s.start_idp()
        wait_until("a login on the restored IdP", lambda: self.login("before0"), timeout_s=120, interval_s=0.5)
        back = time.time()
        timings = {"restore": restored - started, "recovery": recovered - restored, "idp": back - recovered,
                   "rto": back - started}
        print(f"  restore {timings['restore']:.1f} s, WAL replay {timings['recovery']:.1f} s, IdP start and first "
              f"login {timings['idp']:.1f} s: RTO {timings['rto']:.1f} s", flush=True)
        return fingerprint, timings

    def point_in_time(self):
        fingerprint, timings = self.restore("point-in-time to T", "--type=time", f"--target={self.t}",
                                            "--target-action=promote")
        expect(fingerprint == self.fingerprint_at_t,
               "the database restored to T is the database at T (users, credentials, clients, grants, refresh "
               "tokens, signing keys: same fingerprint)")
        self.admin.login()
        expect(all(self.admin.user_exists(f"before{i}") for i in range(8)), "users created before T exist")
        expect(not any(self.admin.user_exists(f"after{i}") for i in range(4)), "users created after T do not")
        # A refresh token valid at T works once; its reuse revokes the grant (RFC 9700 §4.14.2).
        for username, token in self.tokens_at_t.items():
            status, body = self.refresh(token)
            expect(status == 200, f"{username}'s refresh token of T refreshes")
            successor = body["refresh_token"]
            status, body = self.refresh(token)
            expect(status == 400 and body.get("error") == "invalid_grant", f"{username}'s token of T is spent")
            status, body = self.refresh(successor)
            expect(status == 400 and body.get("error") == "invalid_grant",
                   f"reuse detection revoked {username}'s grant (its successor is refused)")
            break  # one user shows the rule; the others keep their chains for the next scenario
        self.chains = {u: t for u, t in self.tokens_at_t.items() if u != "before0"}
        tokens = self.login("before1")
        kid, verified = rs256_verifies(tokens["id_token"], get_json(f"{BASE}/jwks"))
        expect(kid in self.kids_at_t and verified,
               "the signing key of T decrypts under the master key: a new ID token is signed with it and verifies")
        self.rows.append(("point-in-time to T (off-site repository)", timings, self.users_at_t, self.size_mb,
                          "0 committed before T lost; 4 users and 6 rotations after T absent, as asked"))

    def rebuild_in_cluster_repository(self):
        """After the disaster the in-cluster repository is gone: archive_command fails, the
        metric says so (pgBackRestWalArchiveFailing); stanza-create rebuilds it."""
        s = self.s
        self.step("archiving to the lost in-cluster repository fails until it is rebuilt")
        s.psql(PG_PORT, "select pg_switch_wal()")

        def archive_failing():
            m = s.metrics()
            return m["pgbackrest_wal_last_failed_timestamp_seconds"] > m["pgbackrest_wal_last_archived_timestamp_seconds"]

        try:
            wait_until("archive_command to fail", archive_failing, timeout_s=60)
        except TimeoutError:
            pass  # judged below, by the check that says what was expected
        expect(archive_failing(),
               "pgbackrest-metrics.py reports the failing archive_command (last failure after last success)")
        s.rebuild_repositories()
        s.archive_everything()
        m = s.metrics()
        expect(m["pgbackrest_wal_last_archived_timestamp_seconds"] >= m["pgbackrest_wal_last_failed_timestamp_seconds"]
               and m["pgbackrest_up"] == 1, "with the repository rebuilt, archiving succeeds again and the metric clears")

    def latest_state(self):
        self.step("writes after the restore, then the latest state restored (no target)")
        for i in range(4):
            self.admin.create_user(f"latest{i}")
        self.rotate_all()
        acknowledged = dict(self.chains)
        self.s.archive_everything()
        users = int(self.s.sql("select count(*) from users"))
        _, timings = self.restore("latest state")
        self.s.rebuild_repositories()  # the in-cluster repository, lost again
        self.admin.login()
        expect(all(self.admin.user_exists(f"latest{i}") for i in range(4)), "every user created before the loss exists")
        for username, token in acknowledged.items():
            status, body = self.refresh(token)
            expect(status == 200, f"{username}'s last acknowledged refresh token works (its rotation was kept)")
        self.rows.append(("latest state (off-site repository)", timings, users, self.size_mb,
                          "0 committed writes lost (4 users, 5 rotations after the first restore)"))

    def retention(self):
        s = self.s
        self.step("retention: a new full backup with the window set to one full backup expires the rest")
        before = s.backups(2)
        s.backrest("--repo=2", "--type=full", "backup", repo2_retention_full_type="count", repo2_retention_full=1)
        after = s.backups(2)
        gone = [label for label, _ in before if label not in {label for label, _ in after}]
        expect(len(after) == 1 and len(gone) == len(before), f"pgBackRest expired {', '.join(gone)}")
        expect(not any(os.path.exists(os.path.join(s.repo2, "backup", STANZA, label)) for label in gone),
               "the expired backups' files are gone from the repository")
        scratch = os.path.join(s.root, "scratch-restore")
        os.makedirs(scratch, mode=0o700)
        os.chown(scratch, s.postgres.pw_uid, s.postgres.pw_gid)
        refused = s.backrest("--repo=2", f"--set={gone[0]}", "restore", check=False, pg1_path=scratch)
        expect(refused.returncode != 0 and gone[0] in refused.stderr + refused.stdout,
               f"a restore of the expired {gone[0]} is refused ({(refused.stderr or refused.stdout).strip()[:120]})")
        wrong = s.backrest("--repo=2", "restore", check=False, pg1_path=scratch, repo2_cipher_pass="not-the-key")
        expect(wrong.returncode != 0 and "unable to load info file" in wrong.stderr + wrong.stdout
               and not os.listdir(scratch), "with a wrong passphrase the off-site repository cannot be read")
        expect(s.metrics()['pgbackrest_backup_count{repo="2"}'] == 1, "pgbackrest_backup_count{repo=\"2\"} is 1")

    def report(self, results_file):
        rows = [(name, f"{users} users, {size:.0f} MB", f"{t['restore']:.1f} s", f"{t['recovery']:.1f} s",
                 f"{t['idp']:.1f} s", f"{t['rto']:.1f} s", rpo) for name, t, users, size, rpo in self.rows]
        write_table(["Restore", "Database", "pgBackRest restore", "WAL replay", "IdP start + first login", "RTO",
                     "RPO"], rows, results_file)


def main():
    idp_bin, repo, work, users = sys.argv[1:5]
    results = sys.argv[5] if len(sys.argv) > 5 else None
    drill = Drill(Site(work, idp_bin, repo), int(users))
    try:
        drill.setup()
        drill.load_before_t()
        drill.mark_t()
        drill.write_after_t()
        drill.point_in_time()
        drill.rebuild_in_cluster_repository()
        drill.latest_state()
        drill.retention()
    except (Check, Failed, TimeoutError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or ""
        print(f"\nThe disaster-recovery drill failed: {error} {detail}")
        sys.exit(1)
    finally:
        drill.s.stop_all()
    drill.report(results)
    print("\nThe disaster-recovery drill passed.")


if __name__ == "__main__":
    main()

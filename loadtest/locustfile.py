"""The IdP's callers, as Locust users (https://locust.io), in the mix of loadtest/mix.toml:

- Browser: a person in a web app: the authorization-code flow with PKCE through the real
  login page (and the TOTP page for the users the data generator gave a factor), the code
  exchange, then userinfo and refreshes with think time between them, and RP-initiated
  logout after a few refreshes; then again. Think times are compressed: a few seconds here
  stand for the minutes between a real user's refreshes.
- Service: a resource server: client_credentials tokens, and introspection of the bearer
  tokens it is shown (the browsers' access tokens and its own), at a high rate.
- Admin: an administrator in the portal, through the admin API: searches users, reviews
  security events, creates a user and disables it.
- Attacker: wrong passwords against a set of victim accounts, and refresh-token replay.
  Each attack must be refused (a refusal is a success here; being let in is a failure).

Every request is named after its endpoint and purpose (e.g. `POST /token (refresh)`), the
names loadtest/slas.toml sets objectives for. The fixture (LOADTEST_FIXTURE) is the data
generator's JSON plus the admin API token; the shape (LOADTEST_SHAPE) is a section of
loadtest/shapes.toml."""
import base64
import collections
import hashlib
import hmac
import html
import itertools
import json
import os
import random
import re
import secrets
import struct
import time
import tomllib
import urllib.parse
import uuid

from locust import FastHttpUser, LoadTestShape, between, events, task

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.environ.get("LOADTEST_MIX", os.path.join(HERE, "mix.toml")), "rb") as f:
    MIX = tomllib.load(f)
with open(os.path.join(HERE, "shapes.toml"), "rb") as f:
    SHAPES = tomllib.load(f)
with open(os.environ["LOADTEST_FIXTURE"]) as f:
    FIXTURE = json.load(f)

BROWSER_CLIENT = FIXTURE["browser_client"]
SERVICE_CLIENT = FIXTURE["service_client"]
REDIRECT_URI = BROWSER_CLIENT["redirect_uri"]
# Locust processes (--processes): each takes its own stripe of accounts, so that no two
# simulated users share one (two logins with one TOTP code would rightly be refused).
PROCESSES = int(os.environ.get("LOADTEST_PROCESSES", "1"))
# The browsers' recent access tokens: what the services are shown and introspect.
RECENT_ACCESS_TOKENS = collections.deque(maxlen=500)


def think(kind):
    low, high = MIX[kind]["think_time_s"]
    return between(low, high)


def basic_auth(client):
    credentials = f"{client['client_id']}:{client['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def totp(key_base32, step):
    """RFC 6238 with SHA-1, six digits, the code of a 30-second step."""
    key = base64.b32decode(key_base32 + "=" * (-len(key_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def hidden_fields(page):
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html.unescape(page)))


class Account:
    """One seeded account, used by one simulated user at a time."""

    _counter = itertools.count()

    def __init__(self, worker_index):
        n = (worker_index + PROCESSES * next(self._counter)) % FIXTURE["users"]
        self.username = f"{FIXTURE['user_prefix']}{n}"
        self.totp_key = FIXTURE["totp_keys"].get(str(n))
        self.last_step = 0

    @classmethod
    def without_totp(cls, worker_index):
        """The next account that has no second factor (a password login alone)."""
        account = cls(worker_index)
        while account.totp_key:
            account = cls(worker_index)
        return account

    def next_code(self):
        """The code of the current step, or of the next (accepted: ±1 step) when the current
        one was used; waits when both were."""
        step = int(time.time()) // 30
        if self.last_step >= step + 1:
            time.sleep(30 - time.time() % 30 + 0.5)
            step = int(time.time()) // 30
        self.last_step = max(step, self.last_step + 1)
        return totp(self.totp_key, self.last_step)


class OAuthUser(FastHttpUser):
    abstract = True

    def worker_index(self):
        return getattr(self.environment.runner, "worker_index", 0) or 0

    def login_form(self):
        """A new authorization request with PKCE: its login form's fields, and the verifier."""
        self.client.cookiejar.clear()
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": BROWSER_CLIENT["client_id"], "redirect_uri": REDIRECT_URI,
            "scope": "openid profile offline_access", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256",
        })
        with self.client.get(f"/authorize?{query}", name="GET /authorize", catch_response=True) as page:
            if page.status_code != 200:
                page.failure(f"login page: {page.status_code}")
                return None, None
            return hidden_fields(page.text), verifier

    def log_in(self, username, password, totp_code=None):
        """The authorization-code flow with PKCE through the login page (and the TOTP page
        when `totp_code` is given: a function returning the code); returns the token
        response, or None when a step failed."""
        fields, verifier = self.login_form()
        if fields is None:
            return None
        fields.update(username=username, password=password)
        with self.client.post("/login", data=fields, name="POST /login", allow_redirects=False,
                              catch_response=True) as answer:
            location = answer.headers.get("Location", "")
            # A user with a second factor gets its page as the answer to the password.
            second_factor = answer.status_code == 200 and 'action="/mfa"' in html.unescape(answer.text) and totp_code
            if not second_factor and (answer.status_code not in (302, 303) or not location.startswith(REDIRECT_URI)):
                answer.failure(f"login: {answer.status_code} {location[:80]}")
                return None
        if second_factor:
            location = self.second_factor(hidden_fields(answer.text), totp_code)
            if location is None:
                return None
        code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("code", [""])[0]
        return self.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                           "code_verifier": verifier}, BROWSER_CLIENT, "POST /token (authorization_code)")

    def second_factor(self, fields, totp_code):
        fields["code"] = totp_code()
        with self.client.post("/mfa", data=fields, name="POST /mfa", allow_redirects=False,
                              catch_response=True) as answer:
            location = answer.headers.get("Location", "")
            if answer.status_code not in (302, 303) or not location.startswith(REDIRECT_URI):
                answer.failure(f"mfa: {answer.status_code} {location[:80]}")
                return None
        return location

    def refresh(self, tokens):
        """Returns the new tokens, or None when the refresh failed."""
        body = self.token({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                          BROWSER_CLIENT, "POST /token (refresh_token)")
        return {**tokens, **body} if body else None

    def log_out(self, tokens):
        """RP-initiated logout with the ID token as the hint; returns None (no tokens)."""
        query = urllib.parse.urlencode({
            "id_token_hint": tokens["id_token"], "state": "bye",
            "post_logout_redirect_uri": BROWSER_CLIENT["post_logout_redirect_uri"],
        })
        with self.client.get(f"/logout?{query}", name="GET /logout", allow_redirects=False,
                             catch_response=True) as answer:
            if answer.status_code not in (302, 303) or not answer.headers.get("Location", "").startswith(
                    BROWSER_CLIENT["post_logout_redirect_uri"]):
                answer.failure(f"logout: {answer.status_code}")
        return None

    def token(self, form, client, name, refusal_expected=False):
        """POSTs to /token; returns the JSON of a 200 (None otherwise). With
        `refusal_expected`, only `400 invalid_grant` counts as a success."""
        with self.client.post("/token", data=form, headers=basic_auth(client), name=name,
                              catch_response=True) as answer:
            body = answer.json() if answer.text.startswith("{") else {}
            if refusal_expected:
                if answer.status_code == 400 and body.get("error") == "invalid_grant":
                    answer.success()
                else:
                    answer.failure(f"an attack was answered {answer.status_code}")
                return None
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code} {body.get('error')}")
                return None
            return body


class Browser(OAuthUser):
    weight = MIX["weights"]["browser"]
    wait_time = think("browser")

    def on_start(self):
        self.account = Account(self.worker_index())
        self.tokens = None
        self.refreshes = 0

    @task
    def next_step(self):
        if self.tokens is None:
            code = self.account.next_code if self.account.totp_key else None
            self.tokens = self.log_in(self.account.username, FIXTURE["password"], code)
            self.refreshes = 0
        elif self.refreshes >= MIX["browser"]["refreshes_per_session"]:
            self.tokens = self.log_out(self.tokens)
        else:
            self.userinfo()
            self.tokens = self.refresh(self.tokens)
            self.refreshes += 1
        if self.tokens:
            RECENT_ACCESS_TOKENS.append(self.tokens["access_token"])

    def userinfo(self):
        with self.client.get("/userinfo", headers={"Authorization": f"Bearer {self.tokens['access_token']}"},
                             name="GET /userinfo", catch_response=True) as answer:
            if answer.status_code != 200 or "sub" not in answer.text:
                answer.failure(f"userinfo: {answer.status_code}")

class Service(OAuthUser):
    weight = MIX["weights"]["service"]
    wait_time = think("service")

    def on_start(self):
        self.access_token = None

    @task(1)
    def client_credentials(self):
        body = self.token({"grant_type": "client_credentials", "scope": "api"}, SERVICE_CLIENT,
                          "POST /token (client_credentials)")
        if body:
            self.access_token = body["access_token"]

    @task(MIX["service"]["introspections_per_token"])
    def introspect(self):
        if self.access_token is None:
            return self.client_credentials()
        token = random.choice(RECENT_ACCESS_TOKENS) if RECENT_ACCESS_TOKENS else self.access_token
        with self.client.post("/introspect", data={"token": token}, headers=basic_auth(SERVICE_CLIENT),
                              name="POST /introspect", catch_response=True) as answer:
            if answer.status_code != 200 or '"active"' not in answer.text:
                answer.failure(f"introspect: {answer.status_code}")


class Admin(FastHttpUser):
    fixed_count = MIX["admin"]["users"]
    wait_time = think("admin")

    def api(self, method, path, name, **kwargs):
        headers = {"Authorization": f"Bearer {FIXTURE['admin_token']}"}
        with self.client.request(method, f"/admin/api/v1{path}", headers=headers, name=name,
                                 catch_response=True, **kwargs) as answer:
            if answer.status_code >= 300:
                answer.failure(f"{answer.status_code} {answer.text[:80]}")
                return None
            return answer.json() if answer.text else {}

    @task(5)
    def search_users(self):
        fragment = f"{FIXTURE['user_prefix']}{random.randrange(FIXTURE['users'])}"
        self.api("GET", f"/users?q={urllib.parse.quote(fragment)}&limit=20", "GET /admin/api/v1/users?q")

    @task(3)
    def review_events(self):
        kind = random.choice(["", "&type=login_failed", "&outcome=failure"])
        self.api("GET", f"/events?limit=50{kind}", "GET /admin/api/v1/events")

    @task(1)
    def create_and_disable_user(self):
        created = self.api("POST", "/users", "POST /admin/api/v1/users", json={
            "username": f"lt-admin-made-{uuid.uuid4().hex[:12]}", "password": secrets.token_urlsafe(16)})
        if created:
            self.api("POST", f"/users/{created['id']}/disable", "POST /admin/api/v1/users/{id}/disable")


class Attacker(OAuthUser):
    weight = MIX["weights"]["attacker"]
    wait_time = think("attacker")

    def on_start(self):
        self.account = Account(self.worker_index())

    @task(3)
    def guess_password(self):
        fields, _ = self.login_form()
        if fields is None:
            return
        fields.update(username=f"{FIXTURE['victim_prefix']}{random.randrange(FIXTURE['victims'])}",
                      password=secrets.token_urlsafe(12))
        with self.client.post("/login", data=fields, name="POST /login (wrong password)", allow_redirects=False,
                              catch_response=True) as answer:
            # Refused: the login page again (401), or slowed down (429). Anything else lets them in.
            if answer.status_code in (401, 429):
                answer.success()
            else:
                answer.failure(f"a wrong password was answered {answer.status_code}")

    @task(1)
    def replay_refresh_token(self):
        """A stolen refresh token used after its owner rotated it: refused, and the whole
        family revoked with it (RFC 9700 §4.14.2). The attacker plays both parts, with an
        account of its own."""
        if self.account.totp_key:
            return
        tokens = self.log_in(self.account.username, FIXTURE["password"])
        stolen = tokens and tokens["refresh_token"]
        rotated = tokens and self.refresh(tokens)
        if not rotated:
            return
        self.token({"grant_type": "refresh_token", "refresh_token": stolen}, BROWSER_CLIENT,
                   "POST /token (replayed refresh_token)", refusal_expected=True)
        self.token({"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]}, BROWSER_CLIENT,
                   "POST /token (refresh_token of a revoked family)", refusal_expected=True)


class Shape(LoadTestShape):
    """The run's users over time, from the LOADTEST_SHAPE section of loadtest/shapes.toml:
    `steps` (a ramp: users added every step_s until max_users), `constant` (soak, smoke)
    or `spike` (a base load, a sudden peak, the base again)."""

    def __init__(self):
        super().__init__()
        self.shape = SHAPES[os.environ.get("LOADTEST_SHAPE", "smoke")]

    def tick(self):
        t, s = self.get_run_time(), self.shape
        if s["kind"] == "steps":
            step = int(t // s["step_s"])
            if step >= s["steps"]:
                return None
            return s["start_users"] + step * s["step_users"], s["spawn_rate"]
        if t >= s["duration_s"]:
            return None
        if s["kind"] == "spike" and s["spike_at_s"] <= t < s["spike_at_s"] + s["spike_s"]:
            return s["peak_users"], s["spawn_rate"]
        return s["users"], s["spawn_rate"]


# -- One operation at a time, as fast as it goes (scripts/loadtest.sh capacity): the cost of
# each operation alone, for docs/capacity.md. Not part of the mix.

class LoginOnly(OAuthUser):
    """A whole login (authorize, password, code exchange) and its logout."""
    wait_time = between(0, 0)

    def on_start(self):
        self.account = Account.without_totp(self.worker_index())

    @task
    def login_and_logout(self):
        tokens = self.log_in(self.account.username, FIXTURE["password"])
        if tokens:
            self.log_out(tokens)


class RefreshOnly(OAuthUser):
    wait_time = between(0, 0)

    def on_start(self):
        self.account = Account.without_totp(self.worker_index())
        self.tokens = self.log_in(self.account.username, FIXTURE["password"])

    @task
    def refresh_again(self):
        self.tokens = self.refresh(self.tokens) if self.tokens else self.log_in(self.account.username,
                                                                                 FIXTURE["password"])


class ClientCredentialsOnly(OAuthUser):
    wait_time = between(0, 0)

    def on_start(self):
        self.access_token = None

    @task
    def client_credentials(self):
        Service.client_credentials(self)


class IntrospectOnly(OAuthUser):
    """Introspection of its own client_credentials token (fetched once)."""
    wait_time = between(0, 0)

    def on_start(self):
        self.access_token = None
        self.client_credentials()

    def client_credentials(self):
        Service.client_credentials(self)

    @task
    def introspect(self):
        Service.introspect(self)


# -- Every request, one line each (LOADTEST_REQUEST_LOG): the report's exact percentiles
# per step of a ramp. One file per Locust process.
REQUEST_LOG = None


@events.request.add_listener
def log_request(name, response_time, exception, start_time=None, **_):
    global REQUEST_LOG
    if "LOADTEST_REQUEST_LOG" not in os.environ:
        return
    if REQUEST_LOG is None:
        REQUEST_LOG = open(os.path.join(os.environ["LOADTEST_REQUEST_LOG"], f"requests-{os.getpid()}.tsv"), "a")
    REQUEST_LOG.write(f"{start_time or time.time():.3f}\t{name}\t{response_time:.2f}\t{0 if exception else 1}\n")


@events.quitting.add_listener
def close_request_log(**_):
    if REQUEST_LOG is not None:
        REQUEST_LOG.close()

"""The drill's steady load, from one process: refresh-token chains (each user logged in once
through the login form, then refreshing with the newest token and introspecting each access
token) and a stream of fresh browser logins. Every request is recorded with its time and
outcome, so each scenario counts the failures in its own window.

A refresh token is the record of a committed rotation: the chain holds the token of the last
200 it received. Where a refresh failed (503, connection reset), the chain keeps its token
and retries it: either the rotation never committed (the token still works), or it did and
only the answer was lost (the token is correctly reported as rotated: `invalid_grant`). A
token from a 200 that is refused without such a failure before it is a lost commit."""
import base64
import hashlib
import html
import http.cookiejar
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REDIRECT = "http://127.0.0.1:9/cb"
TIMEOUT_S = 10


class StopAtClient(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if newurl.startswith(REDIRECT):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Failed(Exception):
    """A request that did not get the answer it should have."""


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []  # (time, kind, ok, detail, seconds taken)

    def record(self, kind, ok, detail="", seconds=0.0):
        with self.lock:
            self.events.append((time.time(), kind, ok, detail, seconds))

    def window(self, start, end, kinds=None):
        with self.lock:
            return [e for e in self.events if start <= e[0] < end and (kinds is None or e[1] in kinds)]

    def failures(self, start, end, kinds=None):
        return [e for e in self.window(start, end, kinds) if not e[2]]


class Client:
    def __init__(self, base, client_id, secret, recorder):
        self.base, self.client_id, self.secret, self.recorder = base, client_id, secret, recorder
        self.basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def post_form(self, path, fields, kind):
        """POSTs with client authentication; returns (status, json body). Connection errors
        and 5xx are recorded as failures and raised."""
        started = time.time()
        request = urllib.request.Request(
            f"{self.base}{path}", urllib.parse.urlencode(fields).encode(),
            {"Authorization": self.basic, "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                body = json.loads(response.read())
                self.recorder.record(kind, True, seconds=time.time() - started)
                return response.status, body
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            if error.code >= 500 or error.code == 429:
                # Who answered: the IdP (JSON, with Retry-After) or the load balancer (HTML).
                source = "idp" if text.startswith("{") else "lb"
                retry = error.headers.get("Retry-After")
                self.recorder.record(kind, False, f"{error.code} {source} retry-after={retry} {text[:100]}",
                                     time.time() - started)
                raise Failed(f"{path}: {error.code}") from None
            self.recorder.record(kind, True, f"{error.code}", time.time() - started)
            return error.code, json.loads(text) if text.startswith("{") else {}
        except (OSError, ValueError) as error:
            self.recorder.record(kind, False, f"{type(error).__name__}: {error}", time.time() - started)
            raise Failed(f"{path}: {error}") from None

    def login(self, username, password, scope="openid offline_access"):
        """The browser's authorization-code flow with PKCE, then the code exchange; returns
        the token response. Recorded as one `login`."""
        try:
            opener = urllib.request.build_opener(
                urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), StopAtClient())
            verifier = secrets.token_urlsafe(32)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            query = urllib.parse.urlencode({
                "response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                "scope": scope, "state": "drill", "code_challenge": challenge, "code_challenge_method": "S256",
            })
            page = html.unescape(opener.open(f"{self.base}/authorize?{query}", timeout=TIMEOUT_S).read().decode())
            fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
            fields.update({"username": username, "password": password})
            try:
                opener.open(f"{self.base}/login", urllib.parse.urlencode(fields).encode(), timeout=TIMEOUT_S)
                raise Failed("the login form did not redirect to the client")
            except urllib.error.HTTPError as redirect:
                location = redirect.headers.get("Location", "")
                if redirect.code not in (302, 303) or not location.startswith(REDIRECT):
                    raise Failed(f"login answered {redirect.code}") from None
            code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query).get("code", [""])[0]
            if not code:
                raise Failed(f"no code in {location[:200]}")
        except (OSError, ValueError, urllib.error.HTTPError) as error:
            self.recorder.record("login", False, f"{type(error).__name__}: {error}")
            raise Failed(f"login: {error}") from None
        except Failed as error:
            self.recorder.record("login", False, str(error))
            raise
        status, body = self.post_form("/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
        }, "login")
        if status != 200:
            raise Failed(f"code exchange answered {status}: {body}")
        return body


class Chain:
    """One user's refresh-token chain."""

    def __init__(self, client, username, password):
        self.client, self.username, self.password = client, username, password
        self.refresh_token = None
        self.access_token = None
        self.unconfirmed = False  # the last refresh with this token failed: it may have rotated
        self.rotations = 0
        self.answers_lost = 0  # rotated, but the answer never arrived (reported as rotated)
        self.lost_commits = []  # a token from a 200 refused: a committed rotation lost

    def start(self):
        tokens = self.client.login(self.username, self.password)
        self.refresh_token, self.access_token = tokens["refresh_token"], tokens["access_token"]
        self.unconfirmed = False

    def step(self):
        if self.refresh_token is None:
            self.start()
            return
        try:
            status, body = self.client.post_form(
                "/token", {"grant_type": "refresh_token", "refresh_token": self.refresh_token}, "refresh")
        except Failed:
            self.unconfirmed = True
            raise
        if status == 200:
            self.refresh_token, self.access_token = body["refresh_token"], body["access_token"]
            self.unconfirmed = False
            self.rotations += 1
        elif body.get("error") == "invalid_grant" and self.unconfirmed:
            self.answers_lost += 1
            self.refresh_token = None
            return
        else:
            self.lost_commits.append(f"{self.username}: {status} {body}")
            self.refresh_token = None
            return
        status, body = self.client.post_form("/introspect", {"token": self.access_token}, "introspect")
        if status != 200 or body.get("active") is not True:
            self.client.recorder.record("introspect", False, f"{status} {body}")


class Load:
    def __init__(self, client, users, password, login_users):
        self.client = client
        self.chains = [Chain(client, user, password) for user in users]
        self.login_users, self.password = login_users, password
        self.stopping = threading.Event()
        self.threads = []

    def _chain_loop(self, chain):
        while not self.stopping.is_set():
            try:
                chain.step()
            except Failed:
                time.sleep(0.2)
            time.sleep(0.1)

    def _login_loop(self):
        index = 0
        while not self.stopping.is_set():
            try:
                self.client.login(self.login_users[index % len(self.login_users)], self.password, "openid")
            except Failed:
                pass
            index += 1
            time.sleep(0.5)

    def start(self):
        for chain in self.chains:
            chain.start()
        self.threads = [threading.Thread(target=self._chain_loop, args=(c,), daemon=True) for c in self.chains]
        self.threads.append(threading.Thread(target=self._login_loop, daemon=True))
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=TIMEOUT_S + 5)

    def verify_every_token(self):
        """After the drill: every token a chain holds must still refresh. Returns the lost ones."""
        lost = [loss for chain in self.chains for loss in chain.lost_commits]
        for chain in self.chains:
            if chain.refresh_token is None:
                continue
            status, body = self.client.post_form(
                "/token", {"grant_type": "refresh_token", "refresh_token": chain.refresh_token}, "final")
            if status != 200 and not (chain.unconfirmed and body.get("error") == "invalid_grant"):
                lost.append(f"{chain.username}: final refresh {status} {body}")
        return lost

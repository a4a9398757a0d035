#!/usr/bin/env python3
"""The cost of a browser login, with and without a second factor, measured from outside:
the whole authorization-code flow (authorize, login page, password, [code page, TOTP code],
redirect with the code), one user after another, sequentially. For each kind of login it
prints the median and p95 time, the HTTP requests a browser makes, and the argon2 runs the
server did per login (from /metrics). Standard library only.

Usage: bench-login.py BASE_URL CLIENT_ID MFA_CLIENT_ID USERS_PREFIX COUNT PASSWORD
The users USERS_PREFIX0..COUNT-1 exist with PASSWORD and no second factor; CLIENT_ID is a
public, first-party client with redirect URI http://127.0.0.1:9/cb and the deployment's MFA
policy (`optional`), MFA_CLIENT_ID the same with `--mfa required`."""
import base64
import hashlib
import hmac
import html
import http.cookiejar
import re
import secrets
import statistics
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REDIRECT = "http://127.0.0.1:9/cb"


class StopAtClient(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if newurl.startswith(REDIRECT):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Counting(urllib.request.BaseHandler):
    """Counts every request the browser sends, redirects included."""

    def __init__(self):
        self.sent = 0

    def http_request(self, req):
        self.sent += 1
        return req


def totp(key: str, step: int) -> str:
    key = key.replace(" ", "").upper()
    raw = base64.b32decode(key + "=" * (-len(key) % 8))
    digest = hmac.new(raw, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def hashes(base: str) -> float:
    text = urllib.request.urlopen(f"{base}/metrics").read().decode()
    match = re.search(r"^idp_password_hash_duration_seconds_count(?:\{\})? (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def login(base: str, client_id: str, username: str, password: str, answer) -> tuple[float, int, str]:
    """One login in a fresh browser; `answer(page)` gives the fields of a second-factor page.
    Returns the seconds it took, the requests sent, and the last page seen."""
    counter = Counting()
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), StopAtClient(), counter
    )
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    started = time.perf_counter()
    page = html.unescape(opener.open(f"{base}/authorize?{query}").read().decode())
    action, extra = "/login", {"username": username, "password": password}
    for _ in range(4):
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
        fields.update(extra)
        try:
            page = html.unescape(opener.open(f"{base}{action}", urllib.parse.urlencode(fields).encode()).read().decode())
        except urllib.error.HTTPError as redirect:
            if redirect.code in (302, 303) and redirect.headers.get("Location", "").startswith(REDIRECT):
                return time.perf_counter() - started, counter.sent, ""
            raise
        action, extra = answer(page)
        if action is None:
            break
    return time.perf_counter() - started, counter.sent, page


def main() -> None:
    base, client_id, mfa_client_id = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    prefix, count, password = sys.argv[4], int(sys.argv[5]), sys.argv[6]
    users = [f"{prefix}{i}" for i in range(count)]
    keys = {}

    def no_second_factor(page):
        sys.exit(f"unexpected page after the password: {page[:300]}")

    def enrol(user):
        def answer(page):
            key = re.search(r'id="manual-key">([A-Z2-7 ]+)<', page)
            if key:
                keys[user] = key.group(1)
                return "/mfa/enrol", {"code": totp(keys[user], int(time.time()) // 30)}
            if 'id="recovery-codes"' in page:
                return "/mfa/recovery-codes", {}
            sys.exit(f"unexpected enrolment page: {page[:300]}")
        return answer

    def code(user):
        def answer(page):
            if 'action="/mfa"' not in page:
                sys.exit(f"expected the code page: {page[:300]}")
            # The enrolment used this step's code: the next one (one step of drift is allowed).
            return "/mfa", {"code": totp(keys[user], int(time.time()) // 30 + 1)}
        return answer

    results = {}
    for kind, client, answer_for in [
        ("password only", client_id, lambda u: no_second_factor),
        ("enrolment (password, QR page, first code, recovery codes)", mfa_client_id, enrol),
        ("password + TOTP code", client_id, code),
    ]:
        before = hashes(base)
        times, sent = [], 0
        for user in users:
            took, requests, page = login(base, client, user, password, answer_for(user))
            if page:
                sys.exit(f"{kind}: the login did not reach the client: {page[:300]}")
            times.append(took)
            sent = requests
        results[kind] = (times, sent, (hashes(base) - before) / len(users))
    for kind, (times, sent, per_login) in results.items():
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"{kind}: median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
              f"{sent} HTTP requests, {per_login:.2f} argon2 runs per login ({len(times)} logins)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints an access token for the admin API, obtained the way the portal does: the
authorization code flow with PKCE as the `admin-portal` client, through the provider's
own login page, with a second factor: an administrator without one is enrolled (the key is
read off the enrolment page and printed to standard error as `totp-key: ...`); one with one
needs IDP_TOTP_KEY (base32). Standard library only. Usage: admin-token.py BASE_URL USERNAME
(password on standard input)."""
import base64
import hashlib
import hmac
import html
import os
import struct
import time
import http.cookiejar
import json
import re
import secrets
import sys
import urllib.error
import urllib.parse
import urllib.request


class StopAtCallback(urllib.request.HTTPRedirectHandler):
    """Follows the provider's own redirects, stops at the redirect back to the portal."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if "/admin/callback" in newurl:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def totp(key_base32: str, at: float) -> str:
    """RFC 6238 with SHA-1, six digits, 30-second steps."""
    key = base64.b32decode(key_base32.replace(" ", "").upper() + "=" * (-len(key_base32.replace(" ", "")) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def fields_of(page: str) -> dict:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))


def main() -> None:
    base, username = sys.argv[1].rstrip("/"), sys.argv[2]
    password = sys.stdin.read().rstrip("\n")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), StopAtCallback()
    )
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = f"{base}/admin/callback"
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": "admin-portal", "redirect_uri": redirect_uri,
        "scope": "openid offline_access", "state": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    page = opener.open(f"{base}/authorize?{query}").read().decode()
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    fields.update(username=username, password=password)
    action, key = "/login", os.environ.get("IDP_TOTP_KEY")
    location = None
    for _ in range(4):
        try:
            landed = opener.open(f"{base}{action}", urllib.parse.urlencode(fields).encode())
        except urllib.error.HTTPError as redirect:
            location = redirect.headers.get("Location", "")
            break
        page, url = html.unescape(landed.read().decode()), landed.geturl()
        fields = fields_of(page)
        enrol_key = re.search(r'id="manual-key">([A-Z2-7 ]+)<', page)
        if enrol_key:
            key = enrol_key.group(1)
            print(f"totp-key: {key.replace(' ', '')}", file=sys.stderr)
            action, fields["code"] = "/mfa/enrol", totp(key, time.time())
        elif 'id="recovery-codes"' in page or 'action="/mfa/recovery-codes"' in page:
            action = "/mfa/recovery-codes"
        elif 'action="/mfa"' in page and key:
            # The enrolment code used this step: the next step's code (one step of drift).
            action, fields["code"] = "/mfa", totp(key, time.time() + 30)
        else:
            sys.exit(f"login did not redirect back to the portal (ended at {url})")
    if location is None:
        sys.exit("login did not finish")
    params = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    if "code" not in params:
        sys.exit(f"login did not return a code (redirected to {location})")
    form = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": params["code"][0], "redirect_uri": redirect_uri,
        "client_id": "admin-portal", "code_verifier": verifier,
    }).encode()
    tokens = json.load(opener.open(f"{base}/token", form))
    print(tokens["access_token"])


if __name__ == "__main__":
    main()

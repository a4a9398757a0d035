#!/usr/bin/env python3
"""Prints an access token for the admin API, obtained the way the portal does: the
authorization code flow with PKCE as the `admin-portal` client, through the provider's
own login page. Standard library only. Usage: admin-token.py BASE_URL USERNAME (password
on standard input)."""
import base64
import hashlib
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
    try:
        landed = opener.open(f"{base}/login", urllib.parse.urlencode(fields).encode())
        sys.exit(f"login did not redirect back to the portal (ended at {landed.geturl()})")
    except urllib.error.HTTPError as redirect:
        location = redirect.headers.get("Location", "")
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

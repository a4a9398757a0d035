// A relying party built on panva's openid-client (a certified OpenID Connect client), driven
// by the Rust tests one step at a time: the test does the browser part between the steps.
//
//   node rp.mjs keygen                 -> {"private": JWK, "jwks": {"keys": [public JWK]}}
//   node rp.mjs authorize STATE_FILE   -> {"url": authorization URL}  (state saved in the file)
//   node rp.mjs callback STATE_FILE    -> {"id_token_claims", "access_token", "refresh_token", ...}
//   node rp.mjs client-credentials     -> the token response
//
// Configuration comes from the environment: ISSUER, CLIENT_ID, REDIRECT_URI, SCOPE,
// AUTH (client_secret_basic | client_secret_post | client_secret_jwt | private_key_jwt | none),
// CLIENT_SECRET, PRIVATE_JWK (JSON), PAR=1 (push the authorization request), JAR=1 (sign it
// as a request object with PRIVATE_JWK), DPOP=1 (sender-constrained tokens: a fresh ES256 key,
// kept in the state file between the steps), CALLBACK_URL, RESOURCE (RFC 8707 resource
// indicators for the authorization or client credentials request, space-separated; the
// token is then not for userinfo) and TOKEN_RESOURCE (the one asked for at the token
// endpoint, for the code and the refresh).
// Errors print {"error": ..., "error_description": ...} and exit 1.

import { readFileSync, writeFileSync } from 'node:fs';
import * as client from 'openid-client';

const env = (name, fallback) => process.env[name] ?? fallback;

async function privateKey() {
  const jwk = JSON.parse(env('PRIVATE_JWK'));
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  return { key, kid: jwk.kid };
}

async function clientAuth() {
  switch (env('AUTH', 'client_secret_basic')) {
    case 'client_secret_basic': return client.ClientSecretBasic(env('CLIENT_SECRET'));
    case 'client_secret_post': return client.ClientSecretPost(env('CLIENT_SECRET'));
    case 'client_secret_jwt': return client.ClientSecretJwt(env('CLIENT_SECRET'));
    case 'none': return client.None();
    case 'private_key_jwt': return client.PrivateKeyJwt(await privateKey());
    default: throw new Error(`unknown AUTH ${env('AUTH')}`);
  }
}

async function configuration() {
  return client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'), undefined, await clientAuth(), {
    // The test server speaks plain HTTP on loopback.
    execute: [client.allowInsecureRequests],
  });
}

async function keygen() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const kid = `k-${Date.now()}`;
  const priv = { ...(await crypto.subtle.exportKey('jwk', pair.privateKey)), kid, alg: 'ES256' };
  const pub = { ...(await crypto.subtle.exportKey('jwk', pair.publicKey)), kid, alg: 'ES256', use: 'sig' };
  delete pub.key_ops;
  delete pub.ext;
  return { private: priv, jwks: { keys: [pub] } };
}

// RFC 9449: one key per flow; the library handles nonces (use_dpop_nonce, DPoP-Nonce).
async function dpopOptions(saved) {
  if (env('DPOP') !== '1') return {};
  const keyPair = saved?.dpopKey
    ? {
        privateKey: await crypto.subtle.importKey('jwk', saved.dpopKey.private, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']),
        publicKey: await crypto.subtle.importKey('jwk', saved.dpopKey.public, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']),
      }
    : await client.randomDPoPKeyPair('ES256', { extractable: true });
  return { keyPair, DPoP: client.getDPoPHandle(await configuration(), keyPair) };
}

async function authorize(stateFile) {
  const config = await configuration();
  const { keyPair, DPoP } = await dpopOptions(null);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: env('REDIRECT_URI'),
    scope: env('SCOPE', 'openid profile offline_access'),
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  // RFC 8707: `resource` may be repeated, so the parameters go as URLSearchParams.
  const search = new URLSearchParams(parameters);
  for (const resource of resources()) search.append('resource', resource);
  // A signed request object (RFC 9101) carries the parameters; pushed, it goes in the push.
  const signed = env('JAR') === '1'
    ? (await client.buildAuthorizationUrlWithJAR(config, search, await privateKey())).searchParams
    : search;
  const url = env('PAR') === '1'
    ? await client.buildAuthorizationUrlWithPAR(config, signed, { DPoP })
    : client.buildAuthorizationUrl(config, signed);
  const dpopKey = keyPair && {
    private: await crypto.subtle.exportKey('jwk', keyPair.privateKey),
    public: await crypto.subtle.exportKey('jwk', keyPair.publicKey),
  };
  writeFileSync(stateFile, JSON.stringify({ verifier, state, nonce, dpopKey }));
  return { url: url.href };
}

const resources = () => env('RESOURCE', '').split(' ').filter((r) => r);

async function callback(stateFile) {
  const config = await configuration();
  const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
  const { DPoP } = await dpopOptions(saved);
  const tokenParameters = env('TOKEN_RESOURCE') ? { resource: env('TOKEN_RESOURCE') } : undefined;
  const tokens = await client.authorizationCodeGrant(config, new URL(env('CALLBACK_URL')), {
    pkceCodeVerifier: saved.verifier,
    expectedState: saved.state,
    expectedNonce: saved.nonce,
    idTokenExpected: true,
  }, tokenParameters, { DPoP });
  const claims = tokens.claims();
  // A token for a resource server is not for the userinfo endpoint.
  const userinfo = resources().length === 0
    ? await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP })
    : null;
  const refreshed = tokens.refresh_token
    ? await client.refreshTokenGrant(config, tokens.refresh_token, tokenParameters, { DPoP })
    : null;
  const introspection = await client.tokenIntrospection(config, tokens.access_token);
  return {
    id_token_claims: claims,
    userinfo,
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    refreshed: refreshed !== null,
    refreshed_access_token: refreshed?.access_token ?? null,
    introspection,
  };
}

async function clientCredentials() {
  const config = await configuration();
  const parameters = new URLSearchParams({ scope: env('SCOPE', '') });
  for (const resource of resources()) parameters.append('resource', resource);
  return client.clientCredentialsGrant(config, parameters);
}

const [command, arg] = process.argv.slice(2);
const commands = {
  keygen,
  authorize: () => authorize(arg),
  callback: () => callback(arg),
  'client-credentials': clientCredentials,
};
try {
  if (!commands[command]) throw new Error(`unknown command ${command}`);
  console.log(JSON.stringify(await commands[command]()));
} catch (e) {
  // A 401 with WWW-Authenticate (RFC 6749 §5.2 after HTTP Basic) is reported by the library as
  // a challenge; the error code is still in the response body.
  let body = {};
  if (e.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE' && e.response) {
    body = await e.response.json().catch(() => ({}));
  }
  console.log(JSON.stringify({
    error: body.error ?? e.error ?? e.code ?? e.name,
    error_description: body.error_description ?? e.error_description ?? e.message,
    status: e.response?.status ?? e.status,
  }));
  process.exit(1);
}

// Drives a real partnermesh identity with panva's openid-client (v6), one case after another.
//
//   node interop.mjs <config.json>
//
// config: {"issuer", "public": {"client_id", "redirect_uri"}, "backend": {"client_id",
// "client_secret"}, "device": {"client_id"}}. Where a person must act in a browser, the
// script asks its parent on stdout ({"need": "login" | "login_mfa" | "device", "url"}; for
// login_mfa a person with an authenticator app signs in with a password and a code)
// and reads the answer from stdin ({"callback": url} or {"done": true}); the Python test
// (tests/identity/test_interop_openid_client.py) signs the person in with an HTTP client.
// The last line is {"results": {case: "ok" | error message}}.
//
// The login answer is {"callback": url} for a redirect, {"form": {field: value}} for a
// response_mode=form_post page. To add a case, write `async function name(ctx)` that throws
// on failure, add it to CASES, and list its name in the Python test's CASES.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import * as client from "openid-client";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const insecure = { execute: [client.allowInsecureRequests] }; // the test issuer is http://

async function ask(question) {
  process.stdout.write(JSON.stringify(question) + "\n");
  const { value } = await lines.next();
  return JSON.parse(value);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function claimsOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

async function discover(clientId, metadata, auth) {
  return client.discovery(new URL(config.issuer), clientId, metadata, auth, insecure);
}

// --- the cases -----------------------------------------------------------------------------

async function discovery(ctx) {
  ctx.public = await discover(config.public.client_id, undefined, client.None());
  const meta = ctx.public.serverMetadata();
  check(meta.issuer === config.issuer, "issuer");
  for (const key of ["device_authorization_endpoint", "registration_endpoint"]) {
    check(typeof meta[key] === "string", `no ${key}`);
  }
  check(meta.supportsPKCE(), "PKCE S256 not advertised");
}

async function authorizationCodePkce(ctx) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(ctx.public, {
    redirect_uri: config.public.redirect_uri,
    scope: "openid profile directory:read",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  const { callback } = await ask({ need: "login", url: url.href });
  const tokens = await client.authorizationCodeGrant(ctx.public, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const id = tokens.claims();
  check(id && id.sub && id.nonce === nonce, "ID token");
  check(tokens.refresh_token, "no refresh token");
  const info = await client.fetchUserInfo(ctx.public, tokens.access_token, id.sub);
  check(info.sub === id.sub, "userinfo");
  ctx.person = tokens;
}

async function refresh(ctx) {
  const tokens = await client.refreshTokenGrant(ctx.public, ctx.person.refresh_token);
  check(tokens.access_token !== ctx.person.access_token, "same access token");
  check(tokens.refresh_token && tokens.refresh_token !== ctx.person.refresh_token, "no rotation");
  ctx.person = tokens;
}

async function clientCredentials(ctx) {
  const { client_id, client_secret } = config.backend;
  ctx.backend = await discover(client_id, undefined, client.ClientSecretBasic(client_secret));
  const tokens = await client.clientCredentialsGrant(ctx.backend, { scope: "directory:read" });
  const claims = claimsOf(tokens.access_token);
  check(claims.client_id === client_id && claims.partner, "claims");
  check(tokens.token_type.toLowerCase() === "bearer", "token type");
}

async function tokenExchange(ctx) {
  const tokens = await client.genericGrantRequest(
    ctx.backend,
    "urn:ietf:params:oauth:grant-type:token-exchange",
    {
      subject_token: ctx.person.access_token,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
      scope: "directory:read",
    },
  );
  const claims = claimsOf(tokens.access_token);
  check(claims.sub === claimsOf(ctx.person.access_token).sub, "subject kept");
  check(claims.act && claims.act.sub === config.backend.client_id, "act");
}

async function dpop(ctx) {
  const keys = await client.randomDPoPKeyPair("ES256");
  const handle = client.getDPoPHandle(ctx.backend, keys);
  const tokens = await client.clientCredentialsGrant(
    ctx.backend,
    { scope: "directory:read" },
    { DPoP: handle },
  );
  check(tokens.token_type.toLowerCase() === "dpop", "not DPoP-bound");
  check(claimsOf(tokens.access_token).cnf?.jkt, "no cnf.jkt");
}

async function deviceFlow(ctx) {
  const device = await discover(config.device.client_id, undefined, client.None());
  const started = await client.initiateDeviceAuthorization(device, {
    scope: "openid profile:read offline_access",
  });
  check(/^[A-Z]{4}-[A-Z]{4}$/.test(started.user_code), "user code");
  await ask({ need: "device", url: started.verification_uri_complete });
  const tokens = await client.pollDeviceAuthorizationGrant(device, started);
  check(tokens.scope.split(" ").includes("offline_access"), "offline_access");
  check(tokens.claims()?.aud === config.device.client_id, "ID token");
  const again = await client.refreshTokenGrant(device, tokens.refresh_token);
  check(again.access_token, "refresh");
}

async function codeRequest(extra) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const params = {
    redirect_uri: config.public.redirect_uri,
    scope: "openid directory:read",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    ...extra,
  };
  return { verifier, state, params };
}

async function pushedAuthorizationRequest(ctx) {
  const { verifier, state, params } = await codeRequest({});
  const url = await client.buildAuthorizationUrlWithPAR(ctx.public, params);
  const uri = url.searchParams.get("request_uri") || "";
  check(uri.startsWith("urn:ietf:params:oauth:request_uri:"), "no pushed request_uri");
  check(!url.searchParams.has("scope"), "the request travelled in the URL");
  const { callback } = await ask({ need: "login", url: url.href });
  const tokens = await client.authorizationCodeGrant(ctx.public, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  check(tokens.access_token && tokens.claims()?.sid, "tokens from the pushed request");
}

async function formPost(ctx) {
  const { verifier, state, params } = await codeRequest({ response_mode: "form_post" });
  const url = client.buildAuthorizationUrl(ctx.public, params);
  const { form } = await ask({ need: "login", url: url.href });
  check(form && form.code && form.state === state, "no form_post answer");
  const posted = new Request(config.public.redirect_uri, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  const tokens = await client.authorizationCodeGrant(ctx.public, posted, {
    pkceCodeVerifier: verifier,
    expectedState: state,
  });
  check(tokens.access_token, "tokens from the form_post answer");
}

async function authorizationResponseIss(ctx) {
  const meta = ctx.public.serverMetadata();
  check(meta.authorization_response_iss_parameter_supported === true, "not advertised");
  const { verifier, state, params } = await codeRequest({});
  const url = client.buildAuthorizationUrl(ctx.public, params);
  const { callback } = await ask({ need: "login", url: url.href });
  const genuine = new URL(callback);
  check(genuine.searchParams.get("iss") === config.issuer, "iss missing or wrong");
  const checks = { pkceCodeVerifier: verifier, expectedState: state };
  for (const tamper of [(u) => u.searchParams.set("iss", "https://evil.example"),
                        (u) => u.searchParams.delete("iss")]) {
    const forged = new URL(genuine);
    tamper(forged);
    let refused = false;
    try {
      await client.authorizationCodeGrant(ctx.public, forged, checks);
    } catch {
      refused = true;
    }
    check(refused, `accepted a response with iss=${forged.searchParams.get("iss")}`);
  }
  const tokens = await client.authorizationCodeGrant(ctx.public, genuine, checks);
  check(tokens.access_token, "the genuine response");
}

async function acrStepUp(ctx) {
  const mfa = "urn:partnermesh:acr:mfa";
  const meta = ctx.public.serverMetadata();
  check((meta.acr_values_supported || []).includes(mfa), "acr_values_supported");
  const nonce = client.randomNonce();
  const { verifier, state, params } = await codeRequest({ acr_values: mfa, max_age: "300", nonce });
  const url = client.buildAuthorizationUrl(ctx.public, params);
  const { callback } = await ask({ need: "login_mfa", url: url.href });
  const tokens = await client.authorizationCodeGrant(ctx.public, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    maxAge: 300,
    idTokenExpected: true,
  });
  const id = tokens.claims();
  check(id.acr === mfa, `acr ${id.acr}`);
  check(Array.isArray(id.amr) && ["pwd", "otp", "mfa"].every((m) => id.amr.includes(m)), "amr");
  check(typeof id.auth_time === "number", "auth_time");
}

const CASES = {
  discovery,
  authorizationCodePkce,
  refresh,
  clientCredentials,
  tokenExchange,
  dpop,
  deviceFlow,
  pushedAuthorizationRequest,
  formPost,
  authorizationResponseIss,
  acrStepUp,
};

const results = {};
const ctx = {};
for (const [name, run] of Object.entries(CASES)) {
  try {
    await run(ctx);
    results[name] = "ok";
  } catch (error) {
    results[name] = `${error.name}: ${error.message}${error.code ? ` (${error.code})` : ""}`;
  }
}
process.stdout.write(JSON.stringify({ results }) + "\n");
process.exit(0);

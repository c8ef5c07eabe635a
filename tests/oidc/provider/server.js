// A real OpenID Connect provider on loopback, for the portal's tests only (panva/oidc-provider,
// OpenID Certified). Started by tests/oidc/provider.py with one argument: a JSON config file
// (see that module). Prints one JSON line {"issuer": ...} on stdout once it listens.
//
// Besides the standard endpoints it serves:
//   GET/POST /interaction/:uid         a plain login page (username or e-mail, password)
//   POST     /test-admin/users/:sub    change a user between sign-ins (groups, disabled, email…)
//   POST     /test-admin/fault         make the next token response misbehave once:
//                                      {"fault": "tamper" | "audience" | "expired" | "issuer"}
// The test-admin endpoints need `Authorization: Bearer <admin_token>` from the config.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import * as jose from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(config.users.map((user) => [user.sub, { ...user }]));
let pendingFault = null;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
const signingKey = await jose.importJWK(signingJwk, 'RS256');

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function findUser(login) {
  const wanted = String(login || '').trim().toLowerCase();
  for (const user of users.values()) {
    if (user.username.toLowerCase() === wanted || (user.email || '').toLowerCase() === wanted) {
      return user;
    }
  }
  return undefined;
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

function loginPage(uid, clientName, error = '', login = '') {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider · Sign in</title></head>
<body><main><h1>Test identity provider</h1><p>Sign in to continue to ${escapeHtml(clientName)}.</p>
${error ? `<p role="alert" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label for="login">Username or e-mail</label> <input id="login" name="login" value="${escapeHtml(login)}" required autofocus>
<label for="password">Password</label> <input id="password" name="password" type="password" required>
<button type="submit">Sign in</button></form></main></body></html>`;
}

const server = createServer();
await new Promise((resolve) => server.listen(config.port || 0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

// A person disabled since their last sign-in must log in again (and is refused there), as when an
// IdP ends a disabled account's sessions.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'account_disabled',
  'the account was disabled',
  (ctx) => {
    const id = ctx.oidc.session.accountId;
    return id && users.get(id)?.disabled
      ? interactionPolicy.Check.REQUEST_PROMPT
      : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  },
));

const provider = new Provider(issuer, {
  clients: config.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Every client, confidential or not, must use PKCE (S256 is the only method offered).
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      // The default page loads a web font from the internet; this one is self-contained.
      async logoutSource(ctx, form) {
        ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign out</title></head>
<body><main><h1>Sign out of the test identity provider?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button></main></body></html>`;
      },
    },
  },
  ttl: { IdToken: 300, AccessToken: 300, Session: 3600, Interaction: 600, Grant: 3600 },
  async findAccount(ctx, sub) {
    const user = users.get(sub);
    if (!user) return undefined;
    // No tokens for a disabled person (the login prompt refuses them; see the policy above).
    if (user.disabled && ctx?.oidc?.route !== 'authorization' && ctx?.oidc?.route !== 'resume') {
      return undefined;
    }
    return {
      accountId: sub,
      async claims() {
        const current = users.get(sub);
        return {
          sub,
          email: current.email,
          email_verified: Boolean(current.email_verified),
          name: current.name || current.username,
          preferred_username: current.username,
          groups: current.groups || [],
        };
      },
    };
  },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!doctype html><html><body><h1>Provider error</h1><pre id="error">${escapeHtml(JSON.stringify(out))}</pre></body></html>`;
  },
});

provider.on('server_error', (ctx, error) => process.stderr.write(`server_error: ${error.stack}\n`));

// The misbehaving provider: rewrite the next ID token once, after the real one was issued.
provider.use(async (ctx, next) => {
  await next();
  if (!pendingFault || ctx.path !== '/token' || ctx.status !== 200 || !ctx.body?.id_token) return;
  const fault = pendingFault;
  pendingFault = null;
  const [header, payload] = ctx.body.id_token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  if (fault === 'tamper') {
    // Same signature, different content: a forger who changed who the token is for.
    const forged = { ...claims, sub: 'someone-else', email: 'attacker@example.com' };
    const parts = ctx.body.id_token.split('.');
    parts[1] = Buffer.from(JSON.stringify(forged)).toString('base64url');
    ctx.body = { ...ctx.body, id_token: parts.join('.') };
    return;
  }
  const now = Math.floor(Date.now() / 1000);
  const changed = { ...claims };
  if (fault === 'audience') changed.aud = 'another-relying-party';
  if (fault === 'expired') Object.assign(changed, { iat: now - 3600, exp: now - 1800 });
  if (fault === 'issuer') changed.iss = 'http://127.0.0.1:1/not-the-issuer';
  const protectedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  const resigned = await new jose.CompactSign(Buffer.from(JSON.stringify(changed)))
    .setProtectedHeader(protectedHeader)
    .sign(signingKey);
  ctx.body = { ...ctx.body, id_token: resigned };
});

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch', 'text/plain');
  const client = await provider.Client.find(details.params.client_id);
  const clientName = client?.clientName || details.params.client_id;
  if (details.prompt.name === 'login') {
    if (action !== 'login' || req.method !== 'POST') {
      return send(res, 200, loginPage(uid, clientName));
    }
    const form = new URLSearchParams(await readBody(req));
    const user = findUser(form.get('login'));
    if (!user || user.password !== form.get('password')) {
      return send(res, 200, loginPage(uid, clientName, 'Wrong username or password.', form.get('login')));
    }
    if (user.disabled) {
      return send(res, 200, loginPage(uid, clientName, 'This account is disabled.', form.get('login')));
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'consent') {
    // A first-party client: consent is implied, as a company's IdP does for its own apps.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, `unexpected prompt ${details.prompt.name}`, 'text/plain');
}

async function testAdmin(req, res, path) {
  if (req.headers.authorization !== `Bearer ${config.admin_token}`) {
    return send(res, 401, '{"error":"unauthorized"}', 'application/json');
  }
  const body = JSON.parse((await readBody(req)) || '{}');
  const userMatch = path.match(/^\/test-admin\/users\/([^/]+)$/);
  if (userMatch && req.method === 'POST') {
    const user = users.get(decodeURIComponent(userMatch[1]));
    if (!user) return send(res, 404, '{"error":"no such user"}', 'application/json');
    for (const field of ['groups', 'disabled', 'email', 'email_verified', 'password', 'name']) {
      if (field in body) user[field] = body[field];
    }
    return send(res, 200, JSON.stringify(user), 'application/json');
  }
  if (path === '/test-admin/fault' && req.method === 'POST') {
    if (![null, 'tamper', 'audience', 'expired', 'issuer'].includes(body.fault)) {
      return send(res, 400, '{"error":"unknown fault"}', 'application/json');
    }
    pendingFault = body.fault;
    return send(res, 200, JSON.stringify({ fault: pendingFault }), 'application/json');
  }
  return send(res, 404, '{"error":"not found"}', 'application/json');
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  try {
    const match = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
    if (match) return await interaction(req, res, match[1], match[2]);
    if (path.startsWith('/test-admin/')) return await testAdmin(req, res, path);
    return callback(req, res);
  } catch (error) {
    return send(res, 400, `error: ${escapeHtml(error.message)}`, 'text/plain');
  }
});

process.stdout.write(`${JSON.stringify({ issuer })}\n`);
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

// Verifies JWTs with jwks-rsa (keys by kid from the JWKS URL) and jsonwebtoken, one JSON request per stdin line,
// one JSON answer per stdout line: the Express/Auth0 pattern (express-jwt and passport-jwt use the same pair).
//
// Request:  {"token", "alg", "issuer", "audience", "jwksUrl", "cacheMaxAge", "requestsPerMinute"?, "client"?}
// Answer:   {"ok": true, "claims", "header"} or {"ok": false, "name", "message"}
//
// A client is created once per (client, jwksUrl, cacheMaxAge, requestsPerMinute) and reused, so jwks-rsa's
// per-kid cache and its rate limit act as in a long-running server. Tokens are never printed.
import { createInterface } from 'node:readline';
import jwksRsa from 'jwks-rsa';
import jsonwebtoken from 'jsonwebtoken';

const clients = new Map();

function clientFor(request) {
  const requestsPerMinute = request.requestsPerMinute ?? 10;
  const id = JSON.stringify([request.client ?? 'default', request.jwksUrl, request.cacheMaxAge, requestsPerMinute]);
  let client = clients.get(id);
  if (!client) {
    client = jwksRsa({
      jwksUri: request.jwksUrl,
      cache: true,
      cacheMaxAge: request.cacheMaxAge,
      rateLimit: true,
      jwksRequestsPerMinute: requestsPerMinute,
      timeout: 5000,
    });
    clients.set(id, client);
  }
  return client;
}

function verify(request) {
  const client = clientFor(request);
  const getKey = (header, callback) => {
    client.getSigningKey(header.kid).then((key) => callback(null, key.getPublicKey()), (error) => callback(error));
  };
  return new Promise((resolve) => {
    jsonwebtoken.verify(
      request.token,
      getKey,
      { algorithms: [request.alg], issuer: request.issuer, audience: request.audience, complete: true },
      (error, decoded) => {
        if (error) {
          resolve({ ok: false, name: error?.name ?? typeof error, message: String(error?.message ?? error) });
        } else {
          resolve({ ok: true, claims: decoded.payload, header: decoded.header });
        }
      },
    );
  });
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
// Answer strictly in order: each request waits for the previous one.
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let answer;
    try {
      answer = await verify(JSON.parse(line));
    } catch (error) {
      answer = { ok: false, name: 'BAD_REQUEST', message: String(error?.message ?? error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});

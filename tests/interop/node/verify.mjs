// Verifies JWTs with jose's remote JWKS, one JSON request per stdin line, one JSON answer per stdout line.
//
// Request:  {"token", "alg", "issuer", "audience", "jwksUrl", "cacheMaxAge", "cooldownDuration", "client"?}
// Answer:   {"ok": true, "claims", "header"} or {"ok": false, "code", "name", "message", "claim"?}
//
// A remote key set is created once per (client, jwksUrl, cacheMaxAge, cooldownDuration) and reused, so
// jose's cache and cooldown act as they would in a long-running verifier. Tokens are never printed.
import { createInterface } from 'node:readline';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const keySets = new Map();

function keySetFor(request) {
  const id = JSON.stringify([request.client ?? 'default', request.jwksUrl, request.cacheMaxAge, request.cooldownDuration]);
  let keySet = keySets.get(id);
  if (!keySet) {
    keySet = createRemoteJWKSet(new URL(request.jwksUrl), {
      cacheMaxAge: request.cacheMaxAge,
      cooldownDuration: request.cooldownDuration,
    });
    keySets.set(id, keySet);
  }
  return keySet;
}

async function verify(request) {
  try {
    const { payload, protectedHeader } = await jwtVerify(request.token, keySetFor(request), {
      issuer: request.issuer,
      audience: request.audience,
      algorithms: [request.alg],
      requiredClaims: ['exp', 'iat', 'sub'],
    });
    return { ok: true, claims: payload, header: protectedHeader };
  } catch (error) {
    const answer = { ok: false, code: error?.code ?? 'UNKNOWN', name: error?.name ?? typeof error, message: String(error?.message ?? error) };
    if (error?.claim !== undefined) answer.claim = error.claim;
    return answer;
  }
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
      answer = { ok: false, code: 'BAD_REQUEST', name: 'Error', message: String(error?.message ?? error) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});

// Ask a jwks-rotator sign function for a token from Node.js (AWS SDK v3).
//
// The function wants a proof of who is calling: an sts:GetCallerIdentity POST signed (SigV4) with the caller's
// own credentials but never sent. The function replays it to its STS endpoint and learns the caller's role from
// STS's answer. The signed header X-Jwks-Rotator-Signer binds the proof to one function (its name or ARN exactly as
// it is invoked). A proof is accepted for 5 minutes and the function caches the identity, so a long-lived caller
// should reuse one proof for about 4 minutes (see reusableProof) instead of signing one per token.
//
//   node sign.mjs --function jwks-rotator-sign --sub user-42 --aud payments-api [--ttl 300] [--profile orders] [--claims '{"roles":["reader"]}']
//   node sign.mjs --function jwks-rotator-sign --proof-only        # print {"proof": ...} and invoke nothing
//
// Credentials and region come from the SDK's default chain (environment, shared config/SSO, container, instance).
// The STS endpoint is https://sts.REGION.amazonaws.com, or STS_ENDPOINT_URL when the function is configured with one
// (a local stack): the proof's Host must be the host the function replays to.
// Prints the function's answer ({"token", ...} or {"error", "message"}); exits 1 on an error answer.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Sha256 } from '@aws-crypto/sha256-js';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';

export const SIGNER_HEADER = 'X-Jwks-Rotator-Signer';
export const GET_CALLER_IDENTITY_BODY = 'Action=GetCallerIdentity&Version=2011-06-15';
export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded; charset=utf-8';
export const PROOF_REUSE_MS = 240_000; // a minute short of the function's 5-minute window

// The header names as the proof presents them (SigV4 signs them lower-cased, so the case changes nothing).
const PRESENTED_NAMES = {
  host: 'Host',
  'x-amz-date': 'X-Amz-Date',
  'content-type': 'Content-Type',
  'x-jwks-rotator-signer': SIGNER_HEADER,
  'x-amz-security-token': 'X-Amz-Security-Token',
  authorization: 'Authorization',
};

/** The default STS endpoint of a region, or STS_ENDPOINT_URL when set. */
export function stsEndpointFor(region, env = process.env) {
  if (env.STS_ENDPOINT_URL) return env.STS_ENDPOINT_URL;
  return `https://sts.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

/**
 * The sign function's `proof` field: a signed, unsent GetCallerIdentity request.
 * `credentials` = {accessKeyId, secretAccessKey, sessionToken?}; `signer` = the function's name or ARN as invoked.
 */
export async function buildCallerProof({ credentials, stsEndpointUrl, region, signer, signingDate = new Date() }) {
  const url = new URL(stsEndpointUrl);
  if (!['http:', 'https:'].includes(url.protocol) || !url.hostname || !['', '/'].includes(url.pathname) || url.search) {
    throw new Error('the STS endpoint must be http(s)://host[:port]');
  }
  const sigv4 = new SignatureV4({ service: 'sts', region, credentials, sha256: Sha256, applyChecksum: false });
  const signed = await sigv4.signRequest(
    {
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: '/',
      query: {},
      // url.host omits the scheme's default port, as every SigV4 client writes Host.
      headers: { host: url.host, 'content-type': FORM_CONTENT_TYPE, 'x-jwks-rotator-signer': signer },
      body: GET_CALLER_IDENTITY_BODY,
    },
    { signingDate },
  );
  const headers = {};
  for (const [name, value] of Object.entries(signed.headers)) {
    const presented = PRESENTED_NAMES[name.toLowerCase()];
    if (!presented) throw new Error(`unexpected header in the signed proof: ${name}`);
    headers[presented] = value;
  }
  return { headers, body: GET_CALLER_IDENTITY_BODY };
}

/**
 * A proof source that signs once and reuses the proof for PROOF_REUSE_MS, as a long-lived caller should.
 * Resolves to {proof, reused}.
 */
export function reusableProof({ credentialProvider, stsEndpointUrl, region, signer, reuseMs = PROOF_REUSE_MS }) {
  let proof = null;
  let madeAt = 0;
  return async ({ fresh = false } = {}) => {
    if (!fresh && proof !== null && Date.now() - madeAt < reuseMs) return { proof, reused: true };
    proof = await buildCallerProof({ credentials: await credentialProvider(), stsEndpointUrl, region, signer });
    madeAt = Date.now();
    return { proof, reused: false };
  };
}

/** The invoke produced no answer of the contract: the function crashed (Lambda's FunctionError). */
export class SignInvokeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SignInvokeError';
  }
}

/** Invoke the function with `request` plus `proof`; its JSON answer. `abortSignal` cancels the call. */
export async function invokeSign(lambda, functionName, request, proof, { abortSignal } = {}) {
  const answer = await lambda.send(
    new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify({ ...request, proof })) }),
    abortSignal ? { abortSignal } : undefined,
  );
  const text = Buffer.from(answer.Payload ?? []).toString('utf-8');
  if (answer.FunctionError) throw new SignInvokeError(`the sign function failed (${answer.FunctionError})`);
  return JSON.parse(text);
}

/**
 * `sign(request)` for one function: reuses a proof, and when a reused proof is answered `unauthenticated`
 * (it expired, or the credentials rotated) signs a fresh one and retries once.
 */
export function signClient({ lambda, functionName, region, stsEndpointUrl = stsEndpointFor(region) }) {
  const proofs = reusableProof({ credentialProvider: () => lambda.config.credentials(), stsEndpointUrl, region, signer: functionName });
  return {
    proof: async () => (await proofs()).proof,
    async sign(request, { abortSignal } = {}) {
      const { proof, reused } = await proofs();
      const answer = await invokeSign(lambda, functionName, request, proof, { abortSignal });
      if (!reused || answer.error !== 'unauthenticated') return answer;
      return invokeSign(lambda, functionName, request, (await proofs({ fresh: true })).proof, { abortSignal });
    },
  };
}

// Several regions: the same rules as the Python client's RegionalSignClient (docs/design/regions.md).
export const UNAVAILABLE_ANSWERS = new Set([
  'signing_unavailable', 'store_unavailable', 'key_vault_unavailable', 'internal_error', 'invalid_configuration',
]);
export const OUTAGE_AWS_CODES = new Set([
  'ServiceException', 'ServiceUnavailable', 'ServiceUnavailableException', 'InternalFailure', 'InternalError',
  'TooManyRequestsException', 'ThrottlingException', 'Throttling', 'RequestLimitExceeded', 'EC2ThrottledException',
  'ResourceNotReadyException', 'RequestTimeout', 'RequestTimeoutException', 'SnapStartNotReadyException',
  'SnapStartTimeoutException',
]);
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

/** No region answered within the deadline; `failures` = [{region, kind, code, detail}] in the order tried. */
export class RegionsUnavailableError extends Error {
  constructor(failures) {
    const summary = failures.map((f) => `${f.region}: ${f.kind}${f.code ? ` ${f.code}` : ''}`).join(', ');
    super(`no region's sign function answered (${summary})`);
    this.name = 'RegionsUnavailableError';
    this.failures = failures;
  }
}

/** The failure an error of one region stands for ({region, kind, code, detail}), or null when it is the caller's own. */
export function outageOf(region, error) {
  if (error instanceof SignInvokeError) return { region, kind: 'function_error', code: '', detail: 'the sign function failed' };
  const status = error?.$metadata?.httpStatusCode;
  if (OUTAGE_AWS_CODES.has(error?.name) || (Number.isInteger(status) && (status >= 500 || status === 429))) {
    return { region, kind: 'aws_error', code: String(error.name ?? ''), detail: `HTTP ${status}` };
  }
  if (CONNECTION_CODES.has(error?.code) || CONNECTION_CODES.has(error?.cause?.code) || error?.name === 'TimeoutError') {
    return { region, kind: 'connection', code: String(error.code ?? error.cause?.code ?? error.name), detail: "the region's Lambda endpoint did not answer" };
  }
  return null;
}

class AttemptTimeout extends Error {}

/**
 * `sign(request)` over several regions' sign functions, in order of preference, within `deadlineMs` per call.
 * `regions` = [{region, functionName, lambda?, stsEndpointUrl?}]; without `lambda` a LambdaClient is made for the
 * region with the attempt timeout and no retries (the next region is the retry). Each region keeps its own proof
 * (scoped to its STS, naming its function). Fails over on UNAVAILABLE_ANSWERS, a crashed function, an AWS error of
 * OUTAGE_AWS_CODES or HTTP 5xx/429, a connection failure, or an attempt past `attemptTimeoutMs` (or the rest of the
 * deadline: the call is aborted and left behind). Any other answer, refusals included, is returned; any other error is
 * thrown. A region that failed is tried last for `demoteMs`. `signDetailed` also says which region answered.
 */
export function regionalSignClient({ regions, deadlineMs = 10_000, attemptTimeoutMs = 3_000, demoteMs = 30_000, now = () => performance.now() }) {
  if (!Array.isArray(regions) || regions.length === 0) throw new Error('at least one regional sign function is required');
  if (!(deadlineMs > 0) || !(attemptTimeoutMs > 0) || !(demoteMs >= 0)) throw new Error('deadlineMs and attemptTimeoutMs must be positive');
  const names = regions.map((r) => r.region);
  if (new Set(names).size !== names.length) throw new Error('each region may be listed once');
  const clients = new Map();
  for (const { region, functionName, lambda, stsEndpointUrl } of regions) {
    if (!region || !functionName) throw new Error('a regional sign function needs a region and a function name');
    const parts = functionName.split(':');
    if (functionName.startsWith('arn:') && parts.length >= 7 && parts[3] !== region) {
      throw new Error(`the function ARN is in ${parts[3]}, not in ${region}`);
    }
    const timeout = Math.min(attemptTimeoutMs, deadlineMs);
    const client = lambda ?? new LambdaClient({ region, maxAttempts: 1, requestHandler: { connectionTimeout: timeout, requestTimeout: timeout } });
    clients.set(region, signClient({ lambda: client, functionName, region, stsEndpointUrl: stsEndpointUrl ?? stsEndpointFor(region) }));
  }
  const failedAt = new Map();
  const order = () => {
    const t = now();
    const demoted = new Set([...failedAt].filter(([, at]) => t - at < demoteMs).map(([region]) => region));
    return [...names.filter((r) => !demoted.has(r)), ...names.filter((r) => demoted.has(r))];
  };

  async function attempt(region, request, timeoutMs) {
    const controller = new AbortController();
    let timer;
    const expired = new Promise((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new AttemptTimeout());
      }, timeoutMs);
    });
    const call = clients.get(region).sign(request, { abortSignal: controller.signal });
    call.catch(() => {}); // an abandoned call's late failure is nobody's
    try {
      return await Promise.race([call, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function signDetailed(request, { deadlineMs: budget = deadlineMs } = {}) {
    if (!(budget > 0)) throw new Error('the deadline must be positive');
    const started = now();
    const failures = [];
    const tried = order();
    for (const [index, region] of tried.entries()) {
      const remaining = budget - (now() - started);
      // Node's timers may fire up to a millisecond before performance.now() says the delay passed: less than 1 ms
      // left is the deadline, not a sub-millisecond attempt that an answer already on its way could win after it.
      if (remaining < 1) {
        for (const r of tried.slice(index)) failures.push({ region: r, kind: 'deadline', code: '', detail: 'not tried: the deadline passed' });
        break;
      }
      const timeoutMs = Math.min(attemptTimeoutMs, remaining);
      let failure;
      try {
        const answer = await attempt(region, request, timeoutMs);
        if (typeof answer?.error === 'string' && UNAVAILABLE_ANSWERS.has(answer.error)) {
          failure = { region, kind: 'answer', code: answer.error, detail: 'the region cannot sign right now' };
        } else {
          failedAt.delete(region);
          return { region, answer, failures };
        }
      } catch (error) {
        failure = error instanceof AttemptTimeout
          ? { region, kind: 'timeout', code: '', detail: `no answer within ${Math.round(timeoutMs)} ms` }
          : outageOf(region, error);
        if (failure === null) throw error;
      }
      failures.push(failure);
      failedAt.set(region, now());
    }
    throw new RegionsUnavailableError(failures);
  }

  return {
    regions: names,
    order,
    client: (region) => clients.get(region),
    signDetailed,
    async sign(request, options) {
      return (await signDetailed(request, options)).answer;
    },
  };
}

export const USAGE = `Usage: node sign.mjs [--function NAME] --sub SUBJECT [--aud AUDIENCE]... [--ttl SECONDS] [--profile NAME] [--claims JSON]
       node sign.mjs [--function NAME] --proof-only
Asks a jwks-rotator sign function for a token, proving the caller's AWS identity; prints the function's JSON answer.

Options:
  --function NAME   the sign function's name or ARN, exactly as invoked [default: SIGN_FUNCTION_NAME, else jwks-rotator-sign]
  --sub SUBJECT     the token's subject
  --aud AUDIENCE    an audience (repeat for several) [default: the function's default audience]
  --ttl SECONDS     lifetime, at most the profile's max_ttl
  --profile NAME    the issuance profile, when the caller's role is in several
  --claims JSON     custom claims, a JSON object
  --proof-only      print {"proof": ...} and invoke nothing
  -h, --help        this help

Environment:
  SIGN_FUNCTION_NAME  the default for --function
  STS_ENDPOINT_URL    the STS endpoint the function replays proofs to (a local stack's); default https://sts.REGION.amazonaws.com
  AWS_REGION          the region (or from the SDK's shared config)
  AWS_ENDPOINT_URL    where Lambda is invoked (a local stack's one AWS endpoint); default: AWS
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or any source of the SDK's default chain): the caller
Against a local stack: eval "$(jwks-rotator local env)" sets all of these.
Exit: 0 with a token, 1 on an error answer, 2 on bad usage or a failed call.`;

async function main() {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', short: 'h', default: false },
      function: { type: 'string', default: process.env.SIGN_FUNCTION_NAME ?? 'jwks-rotator-sign' },
      sub: { type: 'string' },
      aud: { type: 'string', multiple: true },
      ttl: { type: 'string' },
      profile: { type: 'string' },
      claims: { type: 'string' },
      'proof-only': { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const lambda = new LambdaClient({});
  const region = values.function.startsWith('arn:') ? values.function.split(':')[3] : await lambda.config.region();
  const client = signClient({ lambda, functionName: values.function, region });
  if (values['proof-only']) {
    process.stdout.write(JSON.stringify({ proof: await client.proof() }) + '\n');
    return;
  }
  const request = {};
  if (values.sub !== undefined) request.sub = values.sub;
  if (values.aud !== undefined) request.aud = values.aud.length === 1 ? values.aud[0] : values.aud;
  if (values.ttl !== undefined) request.ttl = Number(values.ttl);
  if (values.profile !== undefined) request.profile = values.profile;
  if (values.claims !== undefined) request.claims = JSON.parse(values.claims);
  const answer = await client.sign(request);
  process.stdout.write(JSON.stringify(answer) + '\n');
  if (answer.error) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    const usage = error?.code?.startsWith?.('ERR_PARSE_ARGS') ? ' (node sign.mjs --help)' : '';
    process.stderr.write(`${error?.name ?? 'Error'}: ${error?.message ?? error}${usage}\n`);
    process.exitCode = 2;
  });
}

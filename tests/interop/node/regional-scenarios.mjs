// Runs the Node example's regionalSignClient against stub Lambda clients of several regions and prints, per scenario,
// what happened as one JSON object: the region that answered, the failures, and what each region was sent (its
// proofs). tests/interop/test_node_regional.py checks it, the proofs with the Python signer's own checks.
import { regionalSignClient, RegionsUnavailableError } from '../../../examples/node-sign-client/sign.mjs';

const CREDENTIALS = { accessKeyId: 'ASIAEXAMPLEKEY123456', secretAccessKey: 'secret', sessionToken: 'tok' };
const FUNCTION = 'jwks-rotator-sign';
const TOKEN = { token: 't', kid: 'k1' };

const awsError = (name, status) => Object.assign(new Error(name), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
const HANG = 'hang'; // never settles, and ignores the abort: only the client's own timer can end the attempt
const CRASH = { functionError: 'Unhandled' };

function stubLambda(region, ...steps) {
  const stub = {
    region,
    payloads: [],
    aborted: 0,
    config: { credentials: async () => CREDENTIALS, region: async () => region },
    async send(command, options) {
      stub.payloads.push(JSON.parse(Buffer.from(command.input.Payload).toString('utf-8')));
      options?.abortSignal?.addEventListener('abort', () => { stub.aborted += 1; });
      const step = steps.length > 1 ? steps.shift() : steps[0];
      if (step === HANG) return new Promise(() => {});
      if (step instanceof Error) throw step;
      if (step === CRASH) return { FunctionError: 'Unhandled', Payload: Buffer.from('{"errorMessage":"boom"}') };
      return { Payload: Buffer.from(JSON.stringify(step)) };
    },
  };
  return stub;
}

function clientOf(lambdas, options = {}) {
  return regionalSignClient({ regions: lambdas.map((l) => ({ region: l.region, functionName: FUNCTION, lambda: l })), ...options });
}

async function outcome(client, lambdas, request = { sub: 'a' }, options) {
  const sent = () => Object.fromEntries(lambdas.map((l) => [l.region, { proofs: l.payloads, aborted: l.aborted }]));
  try {
    const { region, answer, failures } = await client.signDetailed(request, options);
    return { region, answer, failures, sent: sent() };
  } catch (error) {
    if (error instanceof RegionsUnavailableError) return { unavailable: error.message, failures: error.failures, sent: sent() };
    return { thrown: error.name, sent: sent() };
  }
}

const scenarios = {
  async failover() {
    const l = [stubLambda('eu-west-1', awsError('ServiceException', 500)), stubLambda('us-east-1', awsError('TooManyRequestsException', 429)), stubLambda('ap-south-1', TOKEN)];
    return outcome(clientOf(l), l);
  },
  async kinds() {
    const results = {};
    const kinds = { '5xx': awsError('SomethingNew', 503), connection: refused(), crash: CRASH, signing_unavailable: { error: 'signing_unavailable', message: 'x' } };
    for (const [name, failure] of Object.entries(kinds)) {
      const l = [stubLambda('eu-west-1', failure), stubLambda('us-east-1', TOKEN)];
      results[name] = await outcome(clientOf(l), l);
    }
    return results;
  },
  async refusal() {
    const l = [stubLambda('eu-west-1', { error: 'caller_not_allowed', message: 'no' }), stubLambda('us-east-1', TOKEN)];
    return outcome(clientOf(l), l);
  },
  async callersFault() {
    const l = [stubLambda('eu-west-1', awsError('AccessDeniedException', 403)), stubLambda('us-east-1', TOKEN)];
    return outcome(clientOf(l), l);
  },
  async hang() {
    const l = [stubLambda('eu-west-1', HANG), stubLambda('us-east-1', TOKEN)];
    return outcome(clientOf(l, { attemptTimeoutMs: 200, deadlineMs: 30_000 }), l);
  },
  async deadline() {
    const l = [stubLambda('eu-west-1', HANG), stubLambda('us-east-1', TOKEN)];
    return outcome(clientOf(l, { attemptTimeoutMs: 60_000, deadlineMs: 250 }), l);
  },
  async demotion() {
    let t = 0;
    const l = [stubLambda('eu-west-1', awsError('ServiceException', 500), TOKEN), stubLambda('us-east-1', TOKEN)];
    const client = clientOf(l, { demoteMs: 30_000, now: () => t });
    const first = (await client.signDetailed({ sub: 'a' })).region;
    t = 29_999;
    const whileDemoted = client.order();
    const second = (await client.signDetailed({ sub: 'a' })).region;
    t = 30_000;
    const after = (await client.signDetailed({ sub: 'a' })).region;
    return { first, whileDemoted, second, after, euCalls: l[0].payloads.length };
  },
  async proofReuse() {
    const l = [stubLambda('eu-west-1', TOKEN), stubLambda('us-east-1', TOKEN)];
    const client = clientOf(l);
    for (let i = 0; i < 3; i += 1) await client.sign({ sub: 'a' });
    const us = await client.client('us-east-1').proof();
    return { euProofs: l[0].payloads.map((p) => p.proof), usProof: us };
  },
  async validation() {
    const refusals = [];
    for (const regions of [[], [{ region: 'eu-west-1', functionName: FUNCTION }, { region: 'eu-west-1', functionName: FUNCTION }],
      [{ region: 'eu-west-1', functionName: 'arn:aws:lambda:us-east-1:123456789012:function:x' }]]) {
      try {
        regionalSignClient({ regions });
        refusals.push(null);
      } catch (error) {
        refusals.push(error.message);
      }
    }
    return refusals;
  },
};

const name = process.argv[2];
process.stdout.write(JSON.stringify(await scenarios[name]()) + '\n');

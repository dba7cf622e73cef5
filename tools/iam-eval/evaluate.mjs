// Decides AWS requests against IAM policies with @cloud-copilot/iam-simulate (development only; see README.md).
// stdin:  {"cases": [{"id", "identityPolicies": [{"name", "policy"}], "resourcePolicy": policy|null,
//                     "request": {"principal", "action", "resource", "resourceAccount", "context": {...}}}]}
// stdout: {"results": [{"id", "decision": "Allowed"|"ExplicitlyDenied"|"ImplicitlyDenied"|"Error",
//                       "reason": "which statements decided, or why nothing allowed", "errors": [...]}]}
import { loadPolicy } from '@cloud-copilot/iam-policy'
import { runSimulation } from '@cloud-copilot/iam-simulate'

// The engine's own modules, for the one case its checked entry point cannot decide (see decideKeepingAllKeys).
const engine = (path) => import(new URL(`./node_modules/@cloud-copilot/iam-simulate/dist/esm/${path}`, import.meta.url))
const { authorize } = await engine('core_engine/CoreSimulatorEngine.js')
const { AwsRequestImpl } = await engine('request/request.js')
const { RequestContextImpl } = await engine('requestContext.js')
const { DiscoveryContextKeyConstraints } = await engine('context_keys/discoveryContextKeyConstraints.js')

// The same evaluation as runSimulation, without its input checks, every context key kept. (The package's own
// runUnsafeSimulation loads the resource policy without a name, which its engine then fails to read.)
function decideKeepingAllKeys(simulation) {
  return authorize({
    request: new AwsRequestImpl(simulation.request.principal, simulation.request.resource, simulation.request.action,
      new RequestContextImpl(simulation.request.contextVariables)),
    sessionPolicy: undefined,
    identityPolicies: simulation.identityPolicies.map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: simulation.resourcePolicy ? loadPolicy(simulation.resourcePolicy, { name: 'ResourcePolicy' }) : undefined,
    permissionBoundaries: undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: { simulationMode: 'Strict', discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]) },
    serviceSettings: { s3: {} },
  })
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))

function sids(statements) {
  return (statements || []).map((s) => s.statement?.Sid || s.explain?.identifier || '?')
}

function reason(result) {
  const a = result.analysis || {}
  const parts = []
  for (const [name, analysis] of [['identity', a.identityAnalysis], ['resource', a.resourceAnalysis]]) {
    if (!analysis) continue
    const deny = sids(analysis.denyStatements)
    const allow = sids(analysis.allowStatements)
    if (deny.length) parts.push(`${name} policy denies (${deny.join(', ')})`)
    else if (allow.length) parts.push(`${name} policy allows (${allow.join(', ')})`)
  }
  return parts.length ? parts.join('; ') : 'no statement allows it'
}

const results = []
for (const c of input.cases) {
  const simulation = {
    identityPolicies: c.identityPolicies || [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy || undefined,
    request: {
      principal: c.request.principal,
      action: c.request.action,
      resource: { resource: c.request.resource, accountId: c.request.resourceAccount },
      contextVariables: c.request.context || {},
    },
  }
  try {
    const response = await runSimulation(simulation, {})
    if (response.resultType === 'error') {
      results.push({ id: c.id, decision: 'Error', reason: 'the simulator refused the input', errors: [response.errors] })
    } else if (response.resultType === 'single') {
      const ignored = response.result.ignoredContextKeys || []
      // The simulator matches variable condition keys only when the variable follows a '/' (aws:PrincipalTag/X),
      // so it drops kms:EncryptionContext:<key>, which KMS documents for Decrypt, GenerateDataKey and the rest.
      // Such a request is decided again with every key kept, by the same engine without its input checks.
      const encryptionContext = ignored.filter((k) => k.toLowerCase().startsWith('kms:encryptioncontext:'))
      const other = ignored.filter((k) => !encryptionContext.includes(k))
      if (other.length) {
        results.push({ id: c.id, decision: 'Error', reason: `context keys the simulator does not know for this action: ${other.join(', ')}`, errors: other })
      } else if (encryptionContext.length) {
        const analysis = decideKeepingAllKeys(simulation)
        results.push({ id: c.id, decision: analysis.result, reason: `${reason({ analysis })} (${encryptionContext.join(', ')} kept)`, errors: [] })
      } else {
        results.push({ id: c.id, decision: response.overallResult, reason: reason(response.result), errors: [] })
      }
    } else {
      results.push({ id: c.id, decision: response.overallResult, reason: 'wildcard resource', errors: [] })
    }
  } catch (error) {
    results.push({ id: c.id, decision: 'Error', reason: String(error), errors: [String(error)] })
  }
}
process.stdout.write(JSON.stringify({ results }) + '\n')

"""The checks ``jwks-rotator doctor`` makes, as small pure functions of what it observed.

Each returns a :class:`Check`: ``ok``, ``warn`` or ``fail``, what was seen and, unless ok, what to do. A healthy
stack's normal states are never ``fail``: a key published moments ago, a cache that may hold the previous
document for one max-age, alarms without data yet. Gathering the facts (HTTP, AWS) is :mod:`.doctor`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt

from jwks_rotator.core.errors import UnsupportedAlgorithmError
from jwks_rotator.core.keys.algorithms import get_algorithm
from jwks_rotator.core.keys.checks import thumbprint
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState

Result = Literal["ok", "warn", "fail"]

REQUIRED_OUTPUTS = ("Issuer", "IssuerUrl", "JwksUrl", "SignFunctionName", "RotateFunctionName", "KeyringSecretArn", "JwksBucketName")
JWKS_CONTENT_TYPES = ("application/json", "application/jwk-set+json")
AUTHENTICATED_REFUSALS = frozenset({
    "caller_not_allowed", "subject_not_allowed", "claims_not_allowed", "audience_not_allowed", "ttl_too_long",
})
"""Answers the sign function gives only after it verified the proof with STS, read its key and loaded its policy."""
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
"""JWK members that hold a private or symmetric key (RFC 7518 6.2.2, 6.3.2, 6.4): never in a public JWKS."""
SKEW_WARN = timedelta(seconds=5)
SKEW_FAIL = timedelta(minutes=4)
"""STS accepts a proof signed within 5 minutes of its clock: past 4, proofs from this machine start failing."""
FAILING_ALARM_STATES = frozenset({"ALARM"})
ALARM_SETTLE = timedelta(hours=1)
"""Longer than any template alarm takes to leave INSUFFICIENT_DATA after it is created."""
WARN_ONLY_ALARMS = ("RefusalBurst",)
"""An alarm on refusals says callers are refused, not that the stack is broken."""


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name``, ``result``, what was seen (``detail``) and what to do (``todo``, unless ok)."""

    name: str
    result: Result
    detail: str
    todo: str = ""

    def line(self) -> str:
        todo = f"  -> {self.todo}" if self.todo and self.result != "ok" else ""
        return f"{self.result:<4}  {self.name:<22} {self.detail}{todo}"

    def document(self) -> dict[str, str]:
        return {"name": self.name, "result": self.result, "detail": self.detail, "todo": self.todo}


def worst(checks: Iterable[Check]) -> Result:
    """``fail`` if any failed, else ``warn`` if any warned, else ``ok``."""
    results = {check.result for check in checks}
    return "fail" if "fail" in results else "warn" if "warn" in results else "ok"


def check_outputs(stack_name: str, outputs: Mapping[str, str]) -> Check:
    """The outputs the CLI, callers and verifiers rely on are all there."""
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        return Check("stack outputs", "fail", f"stack {stack_name} lacks {', '.join(missing)}",
                     "deploy the project's template.yaml (sam deploy); a stack from another template is not this project's")
    return Check("stack outputs", "ok", f"stack {stack_name}: {len(outputs)} outputs, none missing")


def cache_directives(cache_control: str) -> dict[str, list[str]]:
    """A Cache-Control header's directives by lower-cased name, each with every value given (a name may repeat)."""
    directives: dict[str, list[str]] = {}
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip():
            directives.setdefault(name.strip().lower(), []).append(value.strip().strip('"'))
    return directives


def _seconds(values: Sequence[str]) -> int | None:
    """The longest of a directive's delta-seconds values (caches differ on which repeat they obey), None when none parses."""
    numbers = [int(value) for value in values if value.isdigit()]
    return max(numbers) if numbers else None


def max_age_of(cache_control: str) -> int | None:
    """``max-age`` of a Cache-Control header (the longest, when repeated), None when absent or malformed."""
    return _seconds(cache_directives(cache_control).get("max-age", []))


def check_document(name: str, url: str, status: int | None, content_type: str, cache_control: str, max_age: timedelta,
                   error: str = "") -> Check:
    """A published document answers 200 as JSON with the stack's ``max-age``."""
    label = f"{name} document"
    if status is None:
        return Check(label, "fail", f"{url}: {error or 'no answer'}", "check the distribution (or custom domain) serves the bucket; DNS and TLS")
    if status != 200:
        return Check(label, "fail", f"{url} answered {status}",
                     "403/404: the bucket is empty or the distribution cannot read it: run `jwks-rotator publish`, check the origin access")
    if content_type.split(";")[0].strip().lower() not in JWKS_CONTENT_TYPES:
        return Check(label, "fail", f"{url}: Content-Type {content_type or 'missing'}", "publish again (`jwks-rotator publish`): documents are JSON")
    directives = cache_directives(cache_control)
    seen = _seconds(directives.get("max-age", []))
    shared = _seconds(directives.get("s-maxage", []))
    wanted = int(max_age.total_seconds())
    if seen is None:
        return Check(label, "fail", f"{url}: Cache-Control {cache_control or 'missing'} has no max-age",
                     "a distribution or proxy rewrites Cache-Control: let it pass the origin's header through")
    if seen > wanted:
        return Check(label, "fail", f"{url}: max-age={seen}, the stack's jwks-max-age is {wanted}s",
                     "verifiers would cache keys past the publish lead: remove the cache policy override, or `jwks-rotator publish`")
    if shared is not None and shared > wanted:
        return Check(label, "fail", f"{url}: s-maxage={shared}, the stack's jwks-max-age is {wanted}s",
                     "shared caches (CloudFront) would serve old keys past the publish lead: remove s-maxage from the header or cache policy")
    stale = _seconds(directives.get("stale-while-revalidate", []))
    if stale and seen + stale > wanted:
        return Check(label, "fail", f"{url}: max-age={seen}, stale-while-revalidate={stale}, the stack's jwks-max-age is {wanted}s",
                     "caches may serve old keys past the publish lead: remove stale-while-revalidate from the header or cache policy")
    if "no-store" in directives or "no-cache" in directives:
        return Check(label, "warn", f"{url}: Cache-Control {cache_control}", "verifiers may not cache it: harmless, costs fetches")
    if seen < wanted:
        return Check(label, "warn", f"{url}: max-age={seen}, the stack's jwks-max-age is {wanted}s", "a cache policy shortens it: harmless, costs fetches")
    return Check(label, "ok", f"{url}: 200, {content_type.split(';')[0]}, max-age={seen}")


def check_discovery(discovery: Mapping[str, Any], issuer: str, jwks_url: str) -> Check:
    """The discovery document names the stack's issuer exactly and its JWKS URL."""
    if discovery.get("issuer") != issuer:
        return Check("discovery issuer", "fail", f"issuer {discovery.get('issuer')!r}, the stack's is {issuer!r}",
                     "verifiers compare iss exactly: set the Issuer parameter to the URL verifiers use, then `jwks-rotator publish`")
    if discovery.get("jwks_uri") != jwks_url:
        return Check("discovery issuer", "fail", f"jwks_uri {discovery.get('jwks_uri')!r}, the stack's JwksUrl is {jwks_url!r}",
                     "publish again (`jwks-rotator publish`) after fixing Issuer / DomainName")
    return Check("discovery issuer", "ok", f"issuer {issuer}, jwks_uri {jwks_url}")


def check_jwks_keys(jwks: Mapping[str, Any], algorithm: str) -> Check:
    """Every published kid is its key's RFC 7638 thumbprint, every key names an algorithm, and the stack's algorithm is there."""
    members = jwks.get("keys")
    keys = [key for key in members if isinstance(key, Mapping)] if isinstance(members, list) else []
    if not keys:
        return Check("published keys", "fail", "the JWKS holds no key", "the rotate function has not published: check its last run (below), then `jwks-rotator publish`")
    leaked = sorted({f"{key.get('kid')} ({member})" for key in keys for member in PRIVATE_MEMBERS if member in key})
    if leaked:
        return Check("published keys", "fail", f"the JWKS holds private key material: {', '.join(leaked)}",
                     "the key is compromised: `jwks-rotator rotate --now`, revoke it (docs/RUNBOOK.md), and find what wrote the JWKS")
    wrong = []
    for key in keys:
        try:
            if thumbprint(key) != key.get("kid"):
                wrong.append(str(key.get("kid")))
        except Exception:  # a key whose members do not make a thumbprint is as wrong as one that differs
            wrong.append(str(key.get("kid")))
    if wrong:
        return Check("published keys", "fail", f"kid is not the key's RFC 7638 thumbprint: {', '.join(wrong)}",
                     "something other than the rotate function wrote the JWKS: `jwks-rotator publish` restores it")
    mismatched = [f"{key.get('kid')} ({key.get('alg')})" for key in keys if key.get("alg") is not None and not _can_sign(key)]
    if mismatched:
        return Check("published keys", "fail", f"a key's alg is not one its type signs with: {', '.join(mismatched)}",
                     "verifiers may accept it under that algorithm: `jwks-rotator publish` restores the JWKS; find what wrote it")
    algorithms = sorted({str(key.get("alg")) for key in keys})
    if algorithm not in algorithms or "None" in algorithms:
        return Check("published keys", "warn", f"algorithms {', '.join(algorithms)}; the stack's is {algorithm}",
                     "expected right after changing the algorithm, until the next rotation; otherwise `jwks-rotator publish`")
    return Check("published keys", "ok", f"{len(keys)} key(s), kids are thumbprints, algorithms {', '.join(algorithms)}")


def _can_sign(jwk: Mapping[str, Any]) -> bool:
    """Whether ``jwk``'s ``alg`` is a supported algorithm for its key type (and curve)."""
    try:
        algorithm = get_algorithm(str(jwk.get("alg")))
    except UnsupportedAlgorithmError:
        return False
    return jwk.get("kty") == algorithm.kty and (algorithm.crv is None or jwk.get("crv") == algorithm.crv)


def check_active_key(keyring: Keyring | None, published_kids: Sequence[str], publish_lead: timedelta, unreadable: str = "") -> Check:
    """The active key is in the public JWKS and was published at least the lead before it signed (unless waived)."""
    if keyring is None:
        return Check("active key", "warn", f"keyring not readable here ({unreadable or 'no access'})",
                     "run doctor as the break-glass role (BreakGlassRoleArn) to check the active key's publication")
    active = keyring.active
    if active is None:
        return Check("active key", "fail", "no active key: nothing can be signed", "run `jwks-rotator rotate` (the first tick creates one)")
    if active.kid not in published_kids:
        return Check("active key", "fail", f"active kid {active.kid} is not in the public JWKS",
                     "verifiers refuse its tokens: `jwks-rotator publish`, then check the distribution serves the new document")
    if active.lead_waived and all(key.created_at >= active.created_at for key in keyring.keys):
        return Check("active key", "ok", f"{active.kid}: the stack's first key (no verifier held an older set)")
    if active.lead_waived:
        return Check("active key", "warn", f"{active.kid} activated without the publish lead (emergency rotation)",
                     "expected after `rotate --now`; verifiers with an older cache refuse its tokens for up to jwks-max-age")
    if active.published_at is None or active.activated_at is None:
        return Check("active key", "fail", f"{active.kid} has no publication or activation time", "the keyring was edited by hand: restore it")
    lead = active.activated_at - active.published_at
    if lead < publish_lead:
        return Check("active key", "fail", f"{active.kid} was published {lead.total_seconds():.0f}s before it signed; the lead is {publish_lead.total_seconds():.0f}s",
                     "verifiers may not have it yet: check the schedule and the rotate function's errors")
    return Check("active key", "ok", f"{active.kid} published {lead.total_seconds():.0f}s before it signed (lead {publish_lead.total_seconds():.0f}s)")


def check_rotation_on_time(keyring: Keyring | None, rotation_period: timedelta, schedule: timedelta, now: datetime) -> Check:
    """The rotate function's last runs did their work: the active key is not older than a rotation period and a few ticks."""
    if keyring is None or keyring.active is None or keyring.active.activated_at is None:
        return Check("rotation on time", "warn", "no active key to date its last run", "see the active key check")
    age = now - keyring.active.activated_at
    grace = rotation_period + 3 * schedule + timedelta(minutes=1)
    if age <= grace:
        return Check("rotation on time", "ok", f"running: the active key is {age.total_seconds():.0f}s old (rotation-period {rotation_period.total_seconds():.0f}s)")
    result: Result = "warn" if age <= 2 * rotation_period + 3 * schedule else "fail"
    return Check("rotation on time", result, f"the active key is {age.total_seconds():.0f}s old, past rotation-period + 3 schedules",
                 "the schedule is not running or the function fails: see its alarms, its log group and its dead-letter queue")


def last_tick(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest scheduled run's audit line among log ``events`` (``{"timestamp", "message"}``), with ``_at`` added."""
    newest: dict[str, Any] | None = None
    for event in events:
        line = parse_json(str(event.get("message", "")).encode())
        if not isinstance(line, dict) or line.get("type") != "jwks-rotator.audit" or line.get("operation") != "tick":
            continue
        if newest is None or int(event.get("timestamp", 0)) > newest["_ms"]:
            newest = {**line, "_ms": int(event.get("timestamp", 0))}
    return newest


def check_last_run(tick: Mapping[str, Any] | None, window: timedelta, stack_age: timedelta | None, now: datetime) -> Check:
    """The rotate function's last scheduled run (its audit line): recent, and without an error."""
    name = "rotate last run"
    if tick is None:
        if stack_age is not None and stack_age < window:
            return Check(name, "warn", f"no scheduled run yet (the stack is {stack_age.total_seconds():.0f}s old)", "run doctor again after one schedule")
        return Check(name, "fail", f"no scheduled run in the last {window.total_seconds():.0f}s",
                     "the schedule does not fire: check the stack's schedule (EventBridge Scheduler) and the function's errors")
    at = datetime.fromtimestamp(tick["_ms"] / 1000, tz=now.tzinfo)
    age = max(0.0, (now - at).total_seconds())  # an HTTP Date is whole seconds: it may trail the event
    if tick.get("error"):
        return Check(name, "fail", f"{age:.0f}s ago, failed: {tick.get('error')}", "read the rotate function's log group; see docs/RUNBOOK.md")
    return Check(name, "ok", f"{age:.0f}s ago: tick {tick.get('decision', 'done')}")


def token_against_jwks(token: str, jwks: Mapping[str, Any]) -> str:
    """Why ``token``'s signature does not verify with the published key its ``kid`` names; empty when it does.

    Expiry and audience are not judged (the token lives 1 s); the token itself never enters the answer.
    """
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        return f"the issued token is not a JWS ({type(exc).__name__})"
    members = jwks.get("keys")
    key = next((k for k in members if isinstance(k, Mapping) and k.get("kid") == kid), None) if isinstance(members, list) else None
    if key is None:
        return f"the issued token's kid {kid} is not in the public JWKS"
    try:
        jwt.decode(token, jwt.PyJWK(dict(key)).key, algorithms=[str(key.get("alg"))],
                   options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False, "verify_iss": False})
    except jwt.PyJWTError as exc:
        return f"the issued token does not verify with the published key {kid} ({type(exc).__name__})"
    return ""


def check_signer(answer: Mapping[str, Any] | None, caller: str, error: str = "", *, jwks: Mapping[str, Any] | None = None) -> Check:
    """A proof from the current credentials, sent to the deployed signer, was authenticated (issued, or refused after authentication).

    An issued token must verify with the ``jwks`` published (when it was fetched): a signer whose key verifiers lack fails.
    """
    if answer is None:
        return Check("signer", "fail", f"could not invoke the sign function: {error}", "grant this caller lambda:InvokeFunction (the SignInvokePolicyArn output)")
    if answer.get("token"):
        why = token_against_jwks(str(answer["token"]), jwks) if jwks is not None else ""
        if why:
            return Check("signer", "fail", f"{why}: verifiers refuse its tokens",
                         "the signer signs with a key not published: `jwks-rotator publish`, then check the keyring (docs/RUNBOOK.md)")
        return Check("signer", "ok", f"issued a 1 s token to {caller} (kid {answer.get('kid')}): STS, the key and the policy all work")
    code = str(answer.get("error", ""))
    if code in AUTHENTICATED_REFUSALS:
        return Check("signer", "ok", f"{code} for {caller}: STS accepted the proof's binding header and the policy loaded "
                     "(only a caller with a profile proves the key read: an issued token)")
    if code in ("invalid_request", "invalid_claims"):
        return Check("signer", "warn", f"{code}: {answer.get('message', '')}", "the signer refused the request's shape, which it may check before the proof")
    todo = {
        "unauthenticated": "STS refused the proof: check the function's STS endpoint (STS_ENDPOINT_URL) and that this machine's clock is right",
        "signing_unavailable": "the signer cannot read its key: check the Parameters and Secrets extension layer and its role's secret access",
        "keyring_behind_publication": "the keyring was restored: `jwks-rotator publish --accept-restore` after reading docs/RUNBOOK.md",
        "clock_skew_detected": "a clock is off: compare this machine's clock with AWS (below)",
    }.get(code, "read the sign function's log group for this request")
    return Check("signer", "fail", f"{code or 'no answer'}: {answer.get('message', error)}", todo)


def check_policy(policy_text: str | None, disabled: bool | None, error: str = "") -> Check:
    """The deployed issuance policy loads and is enabled (a disabled policy issues nothing)."""
    if policy_text is None:
        return Check("issuance policy", "warn", f"not read ({error})", "run `jwks-rotator policy check --stack NAME` where the code package is readable")
    if disabled:
        return Check("issuance policy", "warn", "disabled: the signer issues nothing",
                     "write profiles in the policy file (IssuancePolicyFile) and deploy; see docs/first-deployment.md")
    return Check("issuance policy", "ok", "enabled")


def check_operator_roles(operator_roles: Sequence[str]) -> Check:
    """Someone may rotate, revoke and publish."""
    if not operator_roles:
        return Check("operator roles", "warn", "none: nobody can revoke a key or rotate at once",
                     "set the OperatorRoles parameter to your operators' role ARNs")
    return Check("operator roles", "ok", ", ".join(operator_roles))


def check_break_glass(role_arn: str | None) -> Check:
    """A role may read the keyring (status, restores)."""
    if not role_arn:
        return Check("break-glass role", "warn", "none: `jwks-rotator status` cannot read the keyring",
                     "set the BreakGlassRoleArn parameter to a role only incident responders assume")
    return Check("break-glass role", "ok", role_arn)


def check_alarms(alarms: Sequence[Mapping[str, Any]], expected: int, alarm_email: str | None,
                 stack_age: timedelta | None = None) -> list[Check]:
    """The template's alarms exist; one in ALARM fails (a refusal burst warns); no alarm email warns.

    Each template alarm treats missing data as OK or breaching, so one still ``INSUFFICIENT_DATA`` past
    :data:`ALARM_SETTLE` after deployment cannot evaluate its metric and would never page: warn.
    """
    checks: list[Check] = []
    if stack_age is not None and stack_age > ALARM_SETTLE:
        stuck = sorted(str(a.get("AlarmName")) for a in alarms if a.get("StateValue") == "INSUFFICIENT_DATA")
        if stuck:
            checks.append(Check("alarm", "warn", f"still without data {stack_age.total_seconds() / 3600:.0f}h after deployment: {', '.join(stuck)}",
                                "it cannot evaluate its metric, so it never pages: compare it with template.yaml's and deploy again"))
    if expected == 0:
        checks.append(Check("alarms", "warn", "the stack has no alarms", "deploy the project's template.yaml: it creates them"))
    elif len(alarms) < expected:
        checks.append(Check("alarms", "fail", f"{len(alarms)} of {expected} alarms exist", "deploy the template again: alarms were removed"))
    firing = [a for a in alarms if a.get("StateValue") in FAILING_ALARM_STATES]
    for alarm in firing:
        name = str(alarm.get("AlarmName"))
        result: Result = "warn" if any(marker in name for marker in WARN_ONLY_ALARMS) else "fail"
        checks.append(Check("alarm", result, f"{name} is in ALARM: {alarm.get('StateReason', '')}".strip(), "see docs/RUNBOOK.md for this alarm"))
    if not firing and len(alarms) >= expected > 0:
        states = sorted({str(a.get("StateValue")) for a in alarms})
        checks.append(Check("alarms", "ok", f"{len(alarms)} alarms, states {', '.join(states)}"))
    if not alarm_email:
        checks.append(Check("alarm email", "warn", "no AlarmEmail: alarms notify nobody", "set the AlarmEmail parameter (or subscribe to the alarm topic)"))
    return checks


def check_kms_custody(keys: Sequence[tuple[str, str, bool]]) -> Check:
    """Under KMS custody only the active key's KMS key is enabled: ``keys`` = ``[(kid, state, enabled)]``.

    A retired key enabled means two keys can sign (fail). A pending key enabled (mid-creation, or a failed run) and an
    active key still disabled (the hand-over waits ``kms-handover-wait`` before the enable) are passing states: warn.
    """
    active = KeyState.ACTIVE.value
    wrong = [f"{kid} ({state}, enabled)" for kid, state, enabled in keys if enabled and state not in (active, KeyState.PENDING.value)]
    if wrong:
        return Check("kms custody", "fail", f"a key other than the active one can sign: {', '.join(wrong)}",
                     "run `jwks-rotator rotate` (its sweep disables every other key), see docs/RUNBOOK.md")
    passing = [f"{kid} ({state}, {'enabled' if enabled else 'disabled'})" for kid, state, enabled in keys if enabled != (state == active)]
    if passing:
        return Check("kms custody", "warn", f"between states: {', '.join(passing)}",
                     "normal for a moment during a rotation; if it stays, run `jwks-rotator rotate` and see docs/RUNBOOK.md")
    return Check("kms custody", "ok", f"{len(keys)} KMS key(s); only the active one enabled")


def check_clock(local: datetime, remote: datetime | None, source: str) -> Check:
    """This machine's clock against AWS's (an HTTP Date header): proofs are signed with the local clock."""
    if remote is None:
        return Check("clock", "warn", f"no Date header from {source}", "compare the clock with an NTP source")
    skew = abs(local - remote)
    if skew >= SKEW_FAIL:
        return Check("clock", "fail", f"{skew.total_seconds():.0f}s off {source}", "proofs will be refused: synchronise this machine's clock (NTP)")
    if skew >= SKEW_WARN:
        return Check("clock", "warn", f"{skew.total_seconds():.0f}s off {source}", "synchronise this machine's clock (NTP)")
    return Check("clock", "ok", f"within {SKEW_WARN.total_seconds():.0f}s of {source}")


def parse_json(body: bytes) -> Any:
    """A document body as JSON, or None."""
    try:
        return json.loads(body)
    except ValueError:
        return None

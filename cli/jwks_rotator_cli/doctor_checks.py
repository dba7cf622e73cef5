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
SKEW_WARN = timedelta(seconds=5)
SKEW_FAIL = timedelta(minutes=4)
"""STS accepts a proof signed within 5 minutes of its clock: past 4, proofs from this machine start failing."""
FAILING_ALARM_STATES = frozenset({"ALARM"})
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


def max_age_of(cache_control: str) -> int | None:
    """``max-age`` of a Cache-Control header, None when absent or malformed."""
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "max-age" and value.strip().isdigit():
            return int(value.strip())
    return None


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
    seen = max_age_of(cache_control)
    wanted = int(max_age.total_seconds())
    if seen is None:
        return Check(label, "fail", f"{url}: Cache-Control {cache_control or 'missing'} has no max-age",
                     "a distribution or proxy rewrites Cache-Control: let it pass the origin's header through")
    if seen > wanted:
        return Check(label, "fail", f"{url}: max-age={seen}, the stack's jwks-max-age is {wanted}s",
                     "verifiers would cache keys past the publish lead: remove the cache policy override, or `jwks-rotator publish`")
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
    keys = [key for key in jwks.get("keys", []) if isinstance(key, Mapping)]
    if not keys:
        return Check("published keys", "fail", "the JWKS holds no key", "the rotate function has not published: check its last run (below), then `jwks-rotator publish`")
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
    algorithms = sorted({str(key.get("alg")) for key in keys})
    if algorithm not in algorithms or "None" in algorithms:
        return Check("published keys", "warn", f"algorithms {', '.join(algorithms)}; the stack's is {algorithm}",
                     "expected right after changing the algorithm, until the next rotation; otherwise `jwks-rotator publish`")
    return Check("published keys", "ok", f"{len(keys)} key(s), kids are thumbprints, algorithms {', '.join(algorithms)}")


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


def check_signer(answer: Mapping[str, Any] | None, caller: str, error: str = "") -> Check:
    """A proof from the current credentials, sent to the deployed signer, was authenticated (issued, or refused after authentication)."""
    if answer is None:
        return Check("signer", "fail", f"could not invoke the sign function: {error}", "grant this caller lambda:InvokeFunction (the SignInvokePolicyArn output)")
    if answer.get("token"):
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


def check_alarms(alarms: Sequence[Mapping[str, Any]], expected: int, alarm_email: str | None) -> list[Check]:
    """The template's alarms exist; one in ALARM fails (a refusal burst warns); no alarm email warns."""
    checks: list[Check] = []
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

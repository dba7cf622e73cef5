"""``jwks-rotator doctor``: check a deployed (or local) stack end to end, one line per check, ``ok``/``warn``/``fail``.

It reads the stack by name like every command (``--stack``, ``--endpoint-url``), fetches both public documents
as a verifier would, reads the keyring where it may, sends a proof made from the current credentials to the
deployed signer (against a local stack: as its demo caller role), reads the deployed policy, the stack's
parameters and alarms, and compares this machine's clock with AWS's. The checks themselves are the pure
functions of :mod:`.doctor_checks`; this module gathers what they judge. Exit 1 on any ``fail``.
"""

from __future__ import annotations

import email.utils
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.text import Text

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.callers.principals import identity_from_arn
from jwks_rotator.core.errors import ConfigurationError, JwksRotatorError
from jwks_rotator.core.issuance.profiles import IssuancePolicy
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.settings import Settings

from .context import CliContext, emit_json, json_option
from .deployed_policy import deployed_policy
from .doctor_checks import (
    REQUIRED_OUTPUTS,
    Check,
    check_active_key,
    check_alarms,
    check_break_glass,
    check_clock,
    check_discovery,
    check_document,
    check_jwks_keys,
    check_kms_custody,
    check_last_run,
    check_operator_roles,
    check_outputs,
    check_policy,
    check_rotation_on_time,
    check_signer,
    last_tick,
    parse_json,
    worst,
)
from .output import console
from .policy import caller_sts_arn, decide_request, load_policy_for, stack_option
from .stack import StackError, StackInfo, function_environment
from .tokens import caller_session

Clock = Callable[[], datetime]
DOCTOR_SUBJECT = "jwks-rotator-doctor"
DOCTOR_AUDIENCE = "jwks-rotator-doctor"
"""An audience no policy should grant: the answer is a refusal after authentication (audience_not_allowed), rarely a token."""
HTTP_TIMEOUT = 10.0
HTTP_DEADLINE = 20.0
_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@dataclass
class Fetched:
    """One HTTP GET: status (None: no answer), headers, body, or why it failed."""

    url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")


def fetch(url: str) -> Fetched:
    """GET ``url`` as a verifier would (no credentials); an HTTP error is an answer, a network error is not.

    ``HTTP_TIMEOUT`` bounds each socket read, not a server that answers a byte at a time (nor a DNS lookup): the GET
    runs in a daemon thread, and one not done within ``HTTP_DEADLINE`` is a failed fetch (the thread ends with the CLI).
    """
    done: queue.Queue[Fetched] = queue.Queue(maxsize=1)
    threading.Thread(target=lambda: done.put(_get(url)), name="doctor-fetch", daemon=True).start()
    try:
        return done.get(timeout=HTTP_DEADLINE)
    except queue.Empty:
        return Fetched(url, error=f"no complete answer within {HTTP_DEADLINE:.0f}s")


def _get(url: str) -> Fetched:
    request = urllib.request.Request(url, headers={"User-Agent": "jwks-rotator-doctor", "Cache-Control": "no-cache"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as answer:  # a verifier's GET of a public URL
            return Fetched(url, answer.status, dict(answer.headers.items()), answer.read(1_000_000))
    except urllib.error.HTTPError as exc:
        return Fetched(url, exc.code, dict(exc.headers.items()) if exc.headers else {}, b"")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Fetched(url, error=str(getattr(exc, "reason", exc)))


def http_date(value: str) -> datetime | None:
    """An HTTP ``Date`` header as an aware datetime, None when absent or malformed."""
    try:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed is not None else None


def served_at(fetched: Fetched) -> datetime | None:
    """When the server answered, by its clock: ``Date`` plus ``Age`` (a CDN's cached answer keeps the origin's Date)."""
    date = http_date(fetched.header("Date"))
    age = fetched.header("Age").strip()
    return date + timedelta(seconds=int(age)) if date is not None and age.isdigit() else date


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    if isinstance(exc, JwksRotatorError):
        return exc.code
    return type(exc).__name__


NOT_A_DOCUMENT = "something in front of the bucket answers for it (an error page?): check the distribution, then `jwks-rotator publish`"


def document_checks(stack: StackInfo, settings: Settings) -> tuple[list[Check], dict[str, Any] | None, Fetched]:
    """Both documents at their public URLs; the JWKS (when it parsed) and its fetch (for its Date header)."""
    checks = []
    jwks_fetch = fetch(stack.jwks_url)
    discovery_fetch = fetch(stack.outputs["IssuerUrl"])
    for name, fetched in (("JWKS", jwks_fetch), ("discovery", discovery_fetch)):
        checks.append(check_document(name, fetched.url, fetched.status, fetched.header("Content-Type"), fetched.header("Cache-Control"),
                                     settings.jwks_max_age, fetched.error))
    jwks = parse_json(jwks_fetch.body) if jwks_fetch.status == 200 else None
    discovery = parse_json(discovery_fetch.body) if discovery_fetch.status == 200 else None
    if isinstance(discovery, dict):
        checks.append(check_discovery(discovery, stack.issuer, stack.jwks_url))
    elif discovery_fetch.status == 200:
        checks.append(Check("discovery issuer", "fail", f"{discovery_fetch.url}: the body is not a JSON object", NOT_A_DOCUMENT))
    if isinstance(jwks, dict):
        checks.append(check_jwks_keys(jwks, settings.algorithm))
    elif jwks_fetch.status == 200:
        checks.append(Check("published keys", "fail", f"{jwks_fetch.url}: the body is not a JSON object", NOT_A_DOCUMENT))
    return checks, jwks if isinstance(jwks, dict) else None, jwks_fetch


def doctor_request(policy: IssuancePolicy | None, settings: Settings, caller: str) -> dict[str, Any]:
    """A request the policy would grant ``caller`` (a 1 s token: only an issued token proves the signer read its key),
    else one with an audience no policy grants (refused after the proof is verified)."""
    if policy is not None:
        for profile in policy.profiles_for(identity_from_arn(caller_sts_arn(caller))):
            for audience in sorted(profile.audiences):
                request = {"sub": DOCTOR_SUBJECT, "aud": audience, "profile": profile.name, "ttl": 1}
                if decide_request(policy, settings, caller, request)["decision"] == "issued":
                    return request
    return {"sub": DOCTOR_SUBJECT, "aud": DOCTOR_AUDIENCE}


def signer_check(obj: CliContext, stack: StackInfo, settings: Settings, policy: IssuancePolicy | None,
                 jwks: dict[str, Any] | None = None) -> Check:
    """A proof from the current credentials (a local stack: its demo caller role) sent to the deployed signer; a token it
    issues must verify with the JWKS served after it (``jwks``, the one fetched first, when that fetch fails)."""
    from jwks_rotator_client import SignClient, SignInvokeError

    role = stack.demo_caller_role_arn
    try:
        lambda_client = obj.client("lambda", endpoint_url=obj.lambda_endpoint())
        sts_endpoint = function_environment(lambda_client, stack.sign_function_name).get("STS_ENDPOINT_URL") or None
        session = caller_session(obj, role)
        caller = role or str(obj.client("sts", endpoint_url=sts_endpoint, session=session).get_caller_identity()["Arn"])
        client = SignClient(stack.sign_function_name, obj.client("lambda", endpoint_url=obj.lambda_endpoint(), session=session), session,
                            sts_endpoint_url=sts_endpoint)
        answer = client.sign(doctor_request(policy, settings, caller))
    except (SignInvokeError, ClientError, BotoCoreError) as exc:
        return check_signer(None, role or "this caller", f"{_aws_error(exc)}: {exc}")
    if answer.get("token"):  # fetched after the token: a key activated since the first fetch is published by now
        fresh = fetch(stack.jwks_url)
        parsed = parse_json(fresh.body) if fresh.status == 200 else None
        jwks = parsed if isinstance(parsed, dict) else jwks
    return check_signer(answer, caller, jwks=jwks)


def policy_check(obj: CliContext, stack: StackInfo, settings: Settings) -> tuple[Check, IssuancePolicy | None]:
    """The deployed policy loads with the stack's settings; disabled warns."""
    try:
        _, text = deployed_policy(obj.client("lambda", endpoint_url=obj.lambda_endpoint()), stack.sign_function_name)
    except (ConfigurationError, ClientError, BotoCoreError, OSError) as exc:
        return check_policy(None, None, _aws_error(exc) if not isinstance(exc, ConfigurationError) else exc.message), None
    try:
        loaded = load_policy_for(text, settings)
    except ConfigurationError as exc:
        return Check("issuance policy", "fail", f"does not load: {exc.message}", "fix the file (`jwks-rotator policy check FILE`) and deploy"), None
    return check_policy(text, loaded.disabled), loaded


def alarm_checks(obj: CliContext, stack: StackInfo, parameters: dict[str, str], stack_age: timedelta | None = None) -> list[Check]:
    """The stack's alarms (from its resources) exist in CloudWatch; their states; the alarm email."""
    try:
        resources = obj.client("cloudformation").describe_stack_resources(StackName=stack.name)["StackResources"]
        names = [str(r["PhysicalResourceId"]) for r in resources if r.get("ResourceType") == "AWS::CloudWatch::Alarm" and r.get("PhysicalResourceId")]
        alarms = obj.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
    except (ClientError, BotoCoreError) as exc:
        return [Check("alarms", "warn", f"not readable here ({_aws_error(exc)})", "grant cloudwatch:DescribeAlarms to check them")]
    return check_alarms(alarms, len(names), parameters.get("AlarmEmail"), stack_age)


LAST_RUN_PAGES = 20


def last_run_check(obj: CliContext, stack: StackInfo, settings: Settings, now: datetime, created: datetime | None) -> Check:
    """The rotate function's newest scheduled run, from the audit lines of its log group within three schedules."""
    window = max(3 * settings.schedule, timedelta(minutes=2))
    group = stack.outputs.get("OperationsLogGroupName")
    if not group:
        return Check("rotate last run", "warn", "the stack names no operations log group", "deploy the project's template.yaml")
    logs = obj.client("logs")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": int((now - window).timestamp() * 1000), "filterPattern": '"jwks-rotator.audit"'}
    try:
        for _ in range(LAST_RUN_PAGES):
            page = logs.filter_log_events(**kwargs)
            events += page.get("events", [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except (ClientError, BotoCoreError) as exc:
        return Check("rotate last run", "warn", f"log group not readable here ({_aws_error(exc)})", "grant logs:FilterLogEvents on it")
    return check_last_run(last_tick(events), window, now - created if created else None, now)


def kms_check(obj: CliContext, keyring: Keyring) -> Check:
    """Under KMS custody: each key's KMS key enabled only when it is the active one (not readable here: warn)."""
    kms = obj.client("kms")
    keys = []
    try:
        for key in keyring.keys:
            if key.kms_key_arn:
                enabled = bool(kms.describe_key(KeyId=key.kms_key_arn)["KeyMetadata"].get("Enabled"))
                keys.append((key.kid, key.state.value, enabled))
    except (ClientError, BotoCoreError) as exc:
        return Check("kms custody", "warn", f"KMS keys not readable here ({_aws_error(exc)})",
                     "run doctor as a role with kms:DescribeKey on the stack's keys (the break-glass role)")
    return check_kms_custody(keys)


def run_checks(obj: CliContext, clock: Clock = lambda: datetime.now(UTC)) -> tuple[str, list[Check]]:
    """Every check against the stack ``obj`` names: ``(stack name, checks)``."""
    try:
        stack = obj.require_stack()
    except StackError as exc:
        return obj.stack_name or "?", [Check("stack outputs", "fail", exc.message, "name the stack: --stack NAME (the banner's or sam deploy's)")]
    outputs_check = check_outputs(stack.name, stack.outputs)
    if outputs_check.result == "fail" and any(not stack.outputs.get(k) for k in ("RotateFunctionName", "JwksUrl", "IssuerUrl", "Issuer")):
        return stack.name, [outputs_check]
    settings = obj.settings({})
    checks = [outputs_check]
    document, jwks, jwks_fetch = document_checks(stack, settings)
    checks += document
    members = (jwks or {}).get("keys")
    published = [str(k.get("kid")) for k in members if isinstance(k, dict)] if isinstance(members, list) else []
    keyring: Keyring | None = None
    unreadable = ""
    try:
        keyring = SecretsManagerKeyringStore(obj.client("secretsmanager"), settings.keyring_secret_id).load().keyring
    except (JwksRotatorError, ClientError, BotoCoreError) as exc:
        unreadable = _aws_error(exc)
    source = obj.endpoint_url or f"https://sts.{obj.region_name()}.amazonaws.com"
    local_now = clock()
    remote = http_date(fetch(source).header("Date")) or served_at(jwks_fetch)
    checks.append(check_active_key(keyring, published, settings.publish_lead, unreadable))
    checks.append(check_rotation_on_time(keyring, settings.rotation_period, settings.schedule, remote or local_now))
    described = describe(obj, stack)
    created = described.get("CreationTime")
    checks.append(last_run_check(obj, stack, settings, remote or local_now, created if isinstance(created, datetime) else None))
    if stack.outputs.get("SignFunctionName"):
        policy_result, policy = policy_check(obj, stack, settings)
        checks.append(signer_check(obj, stack, settings, policy, jwks))
        checks.append(policy_result)
    parameters = {str(p["ParameterKey"]): str(p.get("ParameterValue", "")) for p in described.get("Parameters", [])}
    checks.append(check_operator_roles(list(settings.operator_roles)))
    checks.append(check_break_glass(parameters.get("BreakGlassRoleArn")))
    deployed = max((t for t in (created, described.get("LastUpdatedTime")) if isinstance(t, datetime)), default=None)
    checks += alarm_checks(obj, stack, parameters, (remote or local_now) - deployed if deployed is not None else None)
    if settings.key_custody == "kms" and keyring is not None:
        checks.append(kms_check(obj, keyring))
    checks.append(check_clock(local_now, remote, source))
    return stack.name, checks


def describe(obj: CliContext, stack: StackInfo) -> dict[str, Any]:
    """The stack's DescribeStacks entry (parameters, creation time); empty when not readable."""
    try:
        return dict(obj.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0])
    except (ClientError, BotoCoreError, IndexError):
        return {}


@click.command()
@stack_option
@json_option
@click.pass_obj
def doctor(obj: CliContext, /) -> None:
    """Check the stack end to end: outputs, documents, keys, signer, policy, roles, alarms, clock (exit 1 on any fail)."""
    name, checks = run_checks(obj)
    overall = worst(checks)
    if obj.json_output:
        emit_json(obj, {"stack": name, "result": overall, "checks": [check.document() for check in checks]})
    else:
        out = console()
        for check in checks:
            out.print(Text.assemble((f"{check.result:<4}", _STYLES[check.result]), check.line()[4:]))
        out.print(f"doctor: {overall} ({len(checks)} checks on stack {name})")
    if overall == "fail":
        raise click.exceptions.Exit(1)


__all__ = ["REQUIRED_OUTPUTS", "doctor", "run_checks"]

"""``jwks-rotator policy check FILE`` and ``policy test FILE --caller ARN --request JSON``: the issuance policy offline.

``check`` loads a policy as the sign function does (against the settings'
max-token-ttl, default-token-ttl and allowed-audiences) and summarises it;
``test`` says what the sign function would answer a caller's request, check
by check in the function's order (see :mod:`jwks_rotator.core.issuance.service`),
without a proof, a key or AWS.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from jwks_rotator.core.callers.principals import identity_from_arn
from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.errors import CallerRefusedError, ConfigurationError, JwksRotatorError
from jwks_rotator.core.issuance.limits import TokenPolicy, parse_request
from jwks_rotator.core.issuance.profiles import IssuancePolicy, Profile, load_issuance_policy, split_sign_payload
from jwks_rotator.core.settings import Settings

from .app import fail
from .context import CliContext, emit_json, given_settings, json_option, settings_options
from .deployed_policy import deployed_policy

_ROLE_ARN = re.compile(r"arn:(?P<partition>[a-z-]{1,16}):iam::(?P<account>\d{12}):role/(?:[\x21-\x7e]*/)?(?P<name>[\w+=,.@-]{1,64})", re.ASCII)
TEST_SESSION_NAME = "policy-test"
PLACEHOLDER_ISSUER = "https://issuer.invalid"
"""Stands in for an unset issuer: ``policy test`` decides nothing on it, but the request parser's settings need one."""


def load_policy_for(text: str, settings: Settings) -> IssuancePolicy:
    """Load a policy as the sign function would with these settings; a fault raises ``ConfigurationError``.

    Besides the loader's own checks, every profile's audiences must lie within
    ``allowed-audiences`` when that is set (the function refuses to start otherwise).
    """
    policy = load_issuance_policy(
        text,
        max_token_ttl=int(settings.max_token_ttl.total_seconds()),
        default_token_ttl=int(settings.default_token_ttl.total_seconds()),
    )
    policy.require_audiences_within(frozenset(settings.allowed_audiences))
    return policy


def read_policy_file(path: str | Path) -> str:
    """The text of a policy file; an unreadable one raises ``ConfigurationError`` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"issuance policy: cannot read {path} ({type(exc).__name__})") from None


def caller_sts_arn(caller: str) -> str:
    """The ARN STS would report for ``caller``: an IAM role ARN becomes a session of that role (path dropped, as STS does)."""
    match = _ROLE_ARN.fullmatch(caller)
    if match is None:
        return caller
    return f"arn:{match['partition']}:sts::{match['account']}:assumed-role/{match['name']}/{TEST_SESSION_NAME}"


def describe_profile(profile: Profile) -> str:
    """One line: name, callers, audiences, subjects, claims, max_ttl (and whether it is disabled)."""
    parts = [
        f"callers={','.join(profile.callers)}",
        f"audiences={','.join(sorted(profile.audiences))}",
        f"subjects={','.join(pattern.pattern for pattern in profile.subjects)}",
        f"claims={','.join(sorted(profile.claims)) or '-'}",
        f"max_ttl={format_duration(timedelta(seconds=profile.max_ttl))}",
    ]
    return f"  {profile.name}{' (disabled)' if profile.disabled else ''}  " + "  ".join(parts)


def decision_line(decision: dict[str, Any]) -> str:
    """``issued under profile X, ttl N`` or ``refused: CODE (REASON): MESSAGE``."""
    if decision["decision"] == "issued":
        return f"issued under profile {decision['profile']}, ttl {decision['ttl']}"
    reason = f" ({decision['reason']})" if decision.get("reason") else ""
    return f"refused: {decision['code']}{reason}: {decision['message']}"


def decide_request(policy: IssuancePolicy, settings: Settings, caller: str, payload: Any) -> dict[str, Any]:
    """What the sign function would answer, as a document: ``decision`` issued (profile, ttl) or refused (code, reason, message).

    The checks run in the function's order: the caller's identity, a profile
    naming its role, the request's shape, the chosen profile's limits.
    """
    shape = TokenPolicy.from_settings(settings).without_limits()
    try:
        identity = identity_from_arn(caller_sts_arn(caller))
        policy.require_caller(identity)
        split = split_sign_payload(payload)
        request = parse_request(split.request, shape)
        profile = policy.choose_profile(identity, split.profile)
        decided = policy.check(profile, request, ttl_given=split.ttl_given)
    except JwksRotatorError as exc:
        reason = exc.reason if isinstance(exc, CallerRefusedError) and exc.reason else None
        return {"decision": "refused", "code": exc.code, "reason": reason, "message": exc.message}
    return {"decision": "issued", "profile": decided.profile.name, "ttl": decided.ttl}


def decide(policy: IssuancePolicy, settings: Settings, caller: str, payload: Any) -> tuple[str, int]:
    """What the sign function would answer: ``("issued under profile X, ttl N", 0)`` or ``("refused: ...", 1)``."""
    decision = decide_request(policy, settings, caller, payload)
    return decision_line(decision), 0 if decision["decision"] == "issued" else 1


POLICY_SETTINGS = ("max_token_ttl", "default_token_ttl", "allowed_audiences", "default_audience")
"""The settings a policy is judged against: the stack's token limits and audiences."""


def stack_option(func: Any) -> Any:
    """``--stack NAME`` on the subcommand too: the stack's settings and, without FILE, its deployed policy."""

    def remember(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        obj = ctx.find_object(CliContext)
        if obj is not None and value:
            obj.stack_name = value
        return value

    return click.option(
        "--stack", "policy_stack", default=None, metavar="NAME", expose_value=False, callback=remember, is_eager=True,
        help="The stack to act on (as the global --stack).",
    )(func)


def policy_and_settings(obj: CliContext, file: Path | None, given: dict[str, str], *, placeholder_issuer: bool = False) -> tuple[str, IssuancePolicy, Settings]:
    """Where the policy comes from, the policy loaded as the sign function would, and the settings it was judged with."""
    if placeholder_issuer and not obj.stack_name:
        settings = obj.settings(given)
        if not settings.issuer:
            settings = obj.settings({"issuer": PLACEHOLDER_ISSUER, **given})
    else:
        settings = obj.settings(given)
    stack = obj.stack(fallback=True) if file is None else None
    if file is None and stack is None:
        fail("name the policy FILE, or the stack whose deployed policy to judge (--stack NAME)", 2)
    try:
        if stack is None:
            where, text = str(file), read_policy_file(str(file))
        else:
            where, text = deployed_policy(obj.client("lambda", endpoint_url=obj.lambda_endpoint()), stack.sign_function_name)
        return where, load_policy_for(text, settings), settings
    except ConfigurationError as exc:
        fail(exc.message, 2, error=exc.code)


@click.group()
def policy() -> None:
    """Check an issuance policy and ask how it decides a request (offline; --stack: the stack's settings and policy)."""


@policy.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@stack_option
@settings_options(only=POLICY_SETTINGS)
@click.pass_obj
def check(obj: CliContext, /, file: Path | None, **values: Any) -> None:
    """Validate FILE (or the stack's deployed policy) as the sign function would; print its profiles and digest (exit 2 when invalid)."""
    where, loaded, _ = policy_and_settings(obj, file, given_settings(values))
    state = "disabled: issues nothing" if loaded.disabled else f"{len(loaded.profiles)} profile(s)"
    click.echo(f"valid: {where} ({state})")
    for profile in loaded.profiles:
        click.echo(describe_profile(profile))
    click.echo(f"digest: {loaded.digest}")


@policy.command("test")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--caller", required=True, help="The caller's ARN as STS reports it (assumed-role/ROLE/SESSION); an IAM role ARN stands for a session of it.")
@click.option("--request", "request_json", required=True, help='The sign request as JSON, e.g. \'{"sub": "alice", "aud": "demo", "profile": "demo"}\'.')
@stack_option
@settings_options(only=POLICY_SETTINGS)
@json_option
@click.pass_obj
def test_request(obj: CliContext, /, file: Path | None, caller: str, request_json: str, **values: Any) -> None:
    """Say whether the sign function would issue REQUEST to CALLER under FILE (or the stack's policy), and why not (exit 1 when refused)."""
    where, loaded, settings = policy_and_settings(obj, file, given_settings(values), placeholder_issuer=True)
    try:
        payload = json.loads(request_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg})", param_hint="--request") from None
    decision = decide_request(loaded, settings, caller, payload)
    if obj.json_output:
        emit_json(obj, {**decision, "policy": where, "digest": loaded.digest})
    else:
        click.echo(decision_line(decision))
    if decision["decision"] != "issued":
        raise click.exceptions.Exit(1)

"""``jwks-rotator sign`` (ask the sign function for a token) and ``verify`` (check one against the published JWKS)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from jwks_rotator.core.keys.algorithms import algorithm_names
from jwks_rotator.core.settings import Settings

from .app import fail
from .context import CliContext, emit_json, given_settings, json_option, refuse_stack_options, session_for_role, settings_options
from .local_state import SIGN_FUNCTION
from .output import console, human
from .stack import function_environment

CLI_SESSION_NAME = "jwks-rotator-cli"


@click.command()
@click.option(
    "--function-name",
    default=None,
    envvar="SIGN_FUNCTION_NAME",
    help="Name or ARN of the sign function [default: the stack's SignFunctionName output, or the local stack's].",
)
@click.option(
    "--lambda-endpoint-url",
    default=None,
    help="Lambda API endpoint [default: the local stack's when --endpoint-url names it, else --endpoint-url, else AWS].",
)
@click.option(
    "--role-arn",
    default=None,
    help="Assume this role and prove its identity [default: the default credential chain; against the local stack "
    "(state file or its stack's DemoCallerRoleArn output), its demo caller role].",
)
@click.option(
    "--issuance-profile",
    default=None,
    help="Issuance profile to sign under (the request's 'profile'); needed when the caller's role is in several.",
)
@click.option(
    "--sts-endpoint-url",
    default=None,
    help="STS endpoint the sign function checks proofs with [default: the local stack's, else the sign function's "
    "STS_ENDPOINT_URL, else the region's; AWS_ENDPOINT_URL_STS honoured].",
)
@click.option("--sub", required=True, help="Subject of the token.")
@click.option("--aud", multiple=True, help="Audience (repeat for several); omitted: the function's default audience.")
@click.option("--ttl", type=int, default=None, help="Lifetime in seconds (at most the profile's max_ttl).")
@click.option("--claims", default=None, help="Custom claims as a JSON object.")
@json_option
@click.pass_obj
def sign(
    obj: CliContext,
    /,
    function_name: str | None,
    lambda_endpoint_url: str | None,
    role_arn: str | None,
    issuance_profile: str | None,
    sts_endpoint_url: str | None,
    sub: str,
    aud: tuple[str, ...],
    ttl: int | None,
    claims: str | None,
) -> None:
    """Ask the sign function for a token, proving the caller's AWS identity; print the token (details on stderr).

    The issuance profile is ``--issuance-profile``, not ``--profile``: in AWS
    tools ``--profile`` names a credentials profile.
    """
    from jwks_rotator_client import SignClient, SignInvokeError

    refuse_stack_options(obj, "function_name")
    request: dict[str, Any] = {"sub": sub}
    if aud:
        request["aud"] = aud[0] if len(aud) == 1 else list(aud)
    if ttl is not None:
        request["ttl"] = ttl
    if claims is not None:
        try:
            request["claims"] = json.loads(claims)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON ({exc.msg})", param_hint="--claims") from None
    if issuance_profile is not None:
        request["profile"] = issuance_profile
    state = obj.local_state()
    local_function = str(state.get("sign_function") or SIGN_FUNCTION) if state is not None else None
    stack = obj.stack() if state is not None else obj.stack(fallback=function_name is None)
    if state is not None:
        # The local stack's STS accepts only credentials moto issued: act as a role session, never with ambient keys.
        role_arn = role_arn or state.get("demo_caller_role")
        sts_endpoint_url = sts_endpoint_url or state.get("sts_endpoint")
        if not role_arn or not sts_endpoint_url:
            fail("the local stack's state file names no STS endpoint or demo caller role: restart `jwks-rotator local`", 1)
    elif stack is not None:
        role_arn = role_arn or stack.demo_caller_role_arn
        if sts_endpoint_url is None:
            sign_environment = function_environment(
                obj.client("lambda", endpoint_url=lambda_endpoint_url or obj.lambda_endpoint()), stack.sign_function_name
            )
            sts_endpoint_url = sign_environment.get("STS_ENDPOINT_URL") or None
    if function_name is None:
        function_name = stack.sign_function_name if stack is not None else local_function or obj.require_stack().sign_function_name
    session = caller_session(obj, role_arn)
    endpoint = lambda_endpoint_url or (state or {}).get("lambda_endpoint") or None
    client = SignClient(function_name, obj.client("lambda", endpoint_url=endpoint, session=session), session, sts_endpoint_url=sts_endpoint_url)
    try:
        payload = client.sign(request)
    except SignInvokeError as exc:
        fail(f"{function_name}: {exc}", 1)
    if "token" not in payload:
        fail(f"sign refused: {payload.get('error', 'error')}: {payload.get('message', '')}", 1, error=str(payload.get("error", "error")))
    if obj.json_output:
        emit_json(obj, payload)
        return
    click.echo(payload["token"])
    click.echo(f"kid={payload.get('kid')} alg={payload.get('alg')} expires_at={payload.get('expires_at')}", err=True)


def caller_session(obj: CliContext, role_arn: str | None) -> Any:
    """The boto3 session whose credentials sign the proof: a session of ``role_arn``, else the default chain's."""
    import boto3

    if role_arn is None:
        return boto3.Session(region_name=obj.region_name())
    return session_for_role(obj.client("sts"), role_arn, region=obj.region_name(), session_name=CLI_SESSION_NAME)


def explain_verification_error(exc: Exception, token: str, *, audience: tuple[str, ...], issuer: str, jwks_url: str, algorithms: list[str]) -> str:
    """A PyJWT failure as one line saying why the token is refused."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        header = {}
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        claims = {}
    now = datetime.now(UTC).timestamp()
    if isinstance(exc, jwt.ExpiredSignatureError):
        exp = claims.get("exp")
        when = f" at {datetime.fromtimestamp(exp, UTC):%Y-%m-%d %H:%M:%S}Z ({human(now - exp)} ago)" if isinstance(exp, (int, float)) else ""
        return f"expired: the token expired{when}"
    if isinstance(exc, jwt.ImmatureSignatureError):
        nbf = claims.get("nbf", claims.get("iat"))
        when = f" until {datetime.fromtimestamp(nbf, UTC):%H:%M:%S}Z (in {human(nbf - now)})" if isinstance(nbf, (int, float)) else ""
        return f"not yet valid{when}"
    if isinstance(exc, jwt.InvalidAudienceError):
        if not audience:
            return f"bad audience: the token is for {claims.get('aud')!r}; pass --audience to accept it"
        return f"bad audience: the token is for {claims.get('aud')!r}, expected {', '.join(audience)}"
    if isinstance(exc, jwt.InvalidIssuerError):
        return f"bad issuer: the token says {claims.get('iss')!r}, expected {issuer!r}"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing claim: {exc.claim}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return f"bad signature: the token was not signed by key {header.get('kid')!r} of {jwks_url}"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return f"algorithm not allowed: {header.get('alg')!r} is not one of {', '.join(algorithms)}"
    if isinstance(exc, jwt.PyJWKClientConnectionError):
        return f"cannot fetch the JWKS from {jwks_url}: {exc}"
    if isinstance(exc, jwt.PyJWKClientError):
        if "kid" not in header:
            return "unknown kid: the token has no kid header"
        return f"unknown kid: {header.get('kid')!r} is not in the JWKS at {jwks_url}"
    if isinstance(exc, jwt.DecodeError):
        return f"malformed token: {exc}"
    return f"invalid token: {type(exc).__name__}: {exc}"


@click.command()
@click.argument("token")
@click.option(
    "--jwks-url",
    default=None,
    help="JWKS to verify against [default: the stack's JwksUrl output, the local stack's edge, else ISSUER/.well-known/jwks.json].",
)
@click.option("--audience", multiple=True, help="Accepted audience (repeat for several); required when the token has one.")
@click.option("--algorithms", default=",".join(algorithm_names()), show_default=True, help="Comma-separated algorithms accepted.")
@click.option("--leeway", default=None, help="Clock skew tolerated [default: the stack's clock-skew-leeway].")
@settings_options(only=("issuer",))
@json_option
@click.pass_obj
def verify(obj: CliContext, /, token: str, jwks_url: str | None, audience: tuple[str, ...], algorithms: str, leeway: str | None, **values: Any) -> None:
    """Verify TOKEN against the published JWKS; print its claims or why it is refused."""
    import jwt

    refuse_stack_options(obj, "jwks_url", "leeway")
    settings = obj.settings(given_settings(values), require=("issuer",))
    state = obj.local_state()
    stack = obj.stack()
    url = str(jwks_url or (stack.jwks_url if stack is not None else None) or (state or {}).get("jwks_url") or settings.jwks_uri)
    allowed = [a.strip() for a in algorithms.split(",") if a.strip()]
    tolerance = Settings.from_mapping({"clock_skew_leeway": leeway}).clock_skew_leeway if leeway is not None else settings.clock_skew_leeway
    try:
        signing_key = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=10).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key,
            algorithms=allowed,
            audience=list(audience) if audience else None,
            issuer=settings.issuer,
            leeway=timedelta(seconds=tolerance.total_seconds()),
            options={"require": ["exp", "iss"]},
        )
    except jwt.PyJWTError as exc:
        reason = explain_verification_error(exc, token, audience=audience, issuer=settings.issuer, jwks_url=url, algorithms=allowed)
        if obj.json_output:
            emit_json(obj, {"valid": False, "reason": reason, "jwks_url": url})
            click.echo(f"error: {reason}", err=True)
            raise click.exceptions.Exit(1) from None
        fail(reason, 1)
    header = jwt.get_unverified_header(token)
    if obj.json_output:
        emit_json(obj, {"valid": True, "kid": header.get("kid"), "alg": header.get("alg"), "claims": claims, "jwks_url": url})
        return
    out = console()
    out.print(f"[green]valid[/green]: kid={header.get('kid')} alg={header.get('alg')}")
    out.print_json(json.dumps(claims))

"""``jwks-rotator``: the operator CLI and the local stack.

Every setting of :data:`jwks_rotator.core.settings.SETTINGS` is an option of each
command (``--rotation-period 20s``), also read from the environment variable
the template gives the functions (``ROTATION_PERIOD``, ``KEYRING_SECRET_ID``).
Commands talk to AWS with the default credential chain, or to another
endpoint with the global ``--endpoint-url``. ``jwks-rotator local`` writes a
state file (``.jwks-rotator-local.json`` in the working directory, or
``--state-file``) with its endpoints, resource names and settings; when
``--endpoint-url`` names that stack's AWS endpoint, commands take their
defaults from it (explicit options and environment variables still win), use
dummy credentials and reach its Lambda API and JWKS URL::

    jwks-rotator local --port 8080 --rotation-period 20s --publish-lead 5s ...
    jwks-rotator --endpoint-url http://127.0.0.1:5000 status

Failures print one line on stderr: exit 2 for invalid settings, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table

from jwks_rotator.adapters.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.algorithms import algorithm_names
from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.errors import ConfigurationError, JwksRotatorError
from jwks_rotator.core.keyring import Keyring
from jwks_rotator.core.keys import KeyRecord, KeyState
from jwks_rotator.core.lifecycle import deletion_time
from jwks_rotator.core.operations import RotateCommand, run_command
from jwks_rotator.core.rotation import RunReport
from jwks_rotator.core.settings import SETTINGS, Settings
from jwks_rotator.wiring import build_rotation_service

from .local_stack import (
    REGION,
    SIGN_FUNCTION,
    STATE_FILE_NAME,
    LocalStack,
    read_state_file,
)

_MANAGED = ("keyring_secret_id", "jwks_bucket", "distribution_id")
_ENV_TO_ATTRIBUTE = {spec.env: spec.attribute for spec in SETTINGS}
_CHANGE_STYLES = {
    "created": "cyan",
    "published": "blue",
    "activated": "bold green",
    "retired": "yellow",
    "deleted": "magenta",
    "revoked": "bold red",
}


# --- output -----------------------------------------------------------------
def console(*, stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal so kids are never cut."""
    probe = Console(stderr=stderr)
    return Console(stderr=stderr, highlight=False, emoji=False, width=None if probe.is_terminal else 200)


def human(seconds: float) -> str:
    """``90`` -> ``1m30s``; whole seconds, largest two units."""
    total = int(round(abs(seconds)))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size or (unit == "s" and not parts):
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts[:2])


def relative(when: datetime, now: datetime) -> str:
    delta = (when - now).total_seconds()
    return f"in {human(delta)}" if delta > 0 else f"{human(delta)} ago"


def change_line(kind: str, kid: str, reason: str, at: datetime | None = None) -> str:
    """One lifecycle change as rich markup."""
    stamp = (at or datetime.now()).strftime("%H:%M:%S")
    style = _CHANGE_STYLES.get(kind, "white")
    return f"[dim]{stamp}[/dim]  [{style}]{kind:<9}[/{style}] {kid}  [dim]({reason})[/dim]"


class _Cli(click.Group):
    """Turns every product, AWS and OS failure into one line on stderr; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            _fail(f"invalid settings: {exc.message}", 2)
        except JwksRotatorError as exc:
            _fail(f"{exc.code}: {exc.message}", 1)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            _fail(f"AWS {exc.operation_name}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": "), 1)
        except BotoCoreError as exc:
            _fail(f"AWS: {exc}", 1)
        except OSError as exc:
            _fail(f"{type(exc).__name__}: {exc.strerror or exc}", 1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get("JWKS_ROTATOR_DEBUG"):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(code)


# --- options and context ------------------------------------------------------
def settings_options(*, exclude: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One option per setting (``--rotation-period``), read from ``ROTATION_PERIOD`` too; None when not given."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(SETTINGS):
            if spec.attribute in exclude:
                continue
            default = spec.default or "empty"
            func = click.option(
                f"--{spec.kebab}",
                spec.attribute,
                envvar=spec.env,
                show_envvar=True,
                default=None,
                metavar="TEXT",
                help=f"{spec.doc} [default: {default}]",
            )(func)
        return func

    return decorate


def _given(values: dict[str, Any]) -> dict[str, str]:
    attributes = {spec.attribute for spec in SETTINGS}
    return {k: v for k, v in values.items() if k in attributes and v is not None}


def _same_endpoint(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return url.strip().rstrip("/").lower().replace("://localhost:", "://127.0.0.1:")

    return bool(a) and bool(b) and norm(a) == norm(b)


@dataclass
class CliContext:
    """Global options and what follows from them."""

    endpoint_url: str | None
    region: str | None
    state_file: str

    def local_state(self) -> dict[str, Any] | None:
        """The running local stack's state when ``--endpoint-url`` points at it."""
        if not self.endpoint_url:
            return None
        state = read_state_file(self.state_file)
        if state and any(_same_endpoint(self.endpoint_url, str(state.get(k, ""))) for k in ("moto_endpoint", "aws_endpoint")):
            return state
        return None

    def settings(self, given: dict[str, str], *, require: tuple[str, ...] = ()) -> Settings:
        """Settings from options/env over the local state file over the defaults, validated."""
        mapping: dict[str, str] = {}
        state = self.local_state()
        if state:
            for env_name, value in dict(state.get("settings", {})).items():
                if env_name in _ENV_TO_ATTRIBUTE:
                    mapping[_ENV_TO_ATTRIBUTE[env_name]] = str(value)
        mapping.update(given)
        settings = Settings.from_mapping(mapping)
        settings.require(*require)
        return settings

    def client(self, service: str, *, endpoint_url: str | None = None) -> Any:
        """A boto3 client: the default chain for AWS, dummy credentials for the local stack."""
        import boto3
        from botocore.config import Config

        state = self.local_state()
        region = self.region or (state or {}).get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION
        kwargs: dict[str, Any] = {
            "region_name": region,
            "config": Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}),
        }
        url = endpoint_url or self.endpoint_url
        if url:
            kwargs["endpoint_url"] = url
        if state:
            kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
        return boto3.client(service, **kwargs)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None, help="AWS endpoint (the local stack's moto URL); default: AWS itself.")
@click.option("--region", default=None, help="AWS region [default: AWS_REGION, AWS_DEFAULT_REGION, the local stack's, us-east-1].")
@click.option(
    "--state-file",
    envvar="JWKS_ROTATOR_LOCAL_STATE",
    default=STATE_FILE_NAME,
    show_default=True,
    help="State file `local` writes; read when --endpoint-url names its endpoint.",
)
@click.pass_context
def cli(ctx: click.Context, endpoint_url: str | None, region: str | None, state_file: str) -> None:
    """Rotate signing keys, publish the JWKS, issue and verify tokens; run the whole system locally."""
    ctx.obj = CliContext(endpoint_url or None, region, state_file)


# --- local ----------------------------------------------------------------------
@cli.command()
@settings_options(exclude=_MANAGED)
@click.option("--port", type=int, default=8080, show_default=True, help="Port of the edge serving the JWKS and discovery documents (0: any).")
@click.option("--moto-port", type=int, default=5000, show_default=True, help="Port of the moto server standing in for AWS (0: any).")
@click.option("--lambda-port", type=int, default=3001, show_default=True, help="Port of the Lambda Invoke API (0: any).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C or SIGTERM).")
@click.option("--edge-cache/--no-edge-cache", default=True, show_default=True, help="Cache documents at the edge for their max-age, like CloudFront.")
@click.option("--verbose", is_flag=True, help="Show the functions' own JSON logs (INFO).")
@click.pass_obj
def local(obj: CliContext, port: int, moto_port: int, lambda_port: int, duration: float | None, edge_cache: bool, verbose: bool, **values: Any) -> None:
    """Run moto, the functions, the schedule and a caching edge in this process."""
    out = console()
    err = console(stderr=True)

    def on_report(summary: dict[str, Any]) -> None:
        for change in summary.get("changes", []):
            out.print(change_line(change["change"], change["kid"], change["reason"]))
        for paths in summary.get("published", []):
            if paths:
                out.print(f"[dim]{datetime.now():%H:%M:%S}  published {', '.join(paths)}[/dim]")

    def on_error(message: str) -> None:
        err.print(f"[red]{datetime.now():%H:%M:%S}  {message}[/red]")

    stack = LocalStack(
        _given(values),
        port=port,
        moto_port=moto_port,
        lambda_port=lambda_port,
        state_file=obj.state_file,
        edge_cache=edge_cache,
        function_log_level="INFO" if verbose else "WARNING",
        on_report=on_report,
        on_error=on_error,
    )
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        _print_banner(out, stack, obj.state_file)
        deadline = None if duration is None else datetime.now().timestamp() + duration
        while not stopping.is_set():
            remaining = 0.5 if deadline is None else min(0.5, deadline - datetime.now().timestamp())
            if remaining <= 0:
                break
            stopping.wait(remaining)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()
    out.print("[dim]stopped[/dim]")


def _print_banner(out: Console, stack: LocalStack, state_file: str) -> None:
    s = stack.settings
    out.print("[bold]jwks-rotator local stack[/bold] is serving")
    out.print(f"  JWKS URL        {stack.jwks_url}")
    out.print(f"  discovery       {stack.discovery_url}")
    out.print(f"  issuer          {stack.issuer}")
    out.print(f"  Lambda endpoint {stack.lambda_endpoint}  (functions: {', '.join(stack.functions)})")
    out.print(f"  AWS endpoint    {stack.moto_endpoint}  (moto; state in {state_file})")
    out.print(
        f"  settings        algorithm={s.algorithm} rotation-period={format_duration(s.rotation_period)} "
        f"publish-lead={format_duration(s.publish_lead)} schedule={format_duration(s.schedule)} "
        f"max-token-ttl={format_duration(s.max_token_ttl)} jwks-max-age={format_duration(s.jwks_max_age)} "
        f"retention={format_duration(s.effective_retention)}"
    )
    out.print("  operator        jwks-rotator --endpoint-url " + stack.moto_endpoint + " status")
    out.print("[dim]# sign a token from Python (unchanged service code):[/dim]")
    out.print(
        "import boto3, json\n"
        f'lam = boto3.client("lambda", endpoint_url="{stack.lambda_endpoint}", region_name="{stack.region}",\n'
        '                   aws_access_key_id="testing", aws_secret_access_key="testing")\n'
        f'resp = lam.invoke(FunctionName="{SIGN_FUNCTION}", Payload=json.dumps({{"sub": "alice", "aud": "demo"}}))\n'
        'print(json.loads(resp["Payload"].read()))',
        markup=False,
    )
    out.print("[dim]Ctrl-C to stop[/dim]")


# --- status -------------------------------------------------------------------
def next_transition(key: KeyRecord, keyring: Keyring, settings: Settings) -> tuple[str, datetime | None]:
    """What happens to a key next and when (None: at the next tick)."""
    if key.state is KeyState.PENDING:
        if key.published_at is None:
            return "published at the next tick", None
        if key.lead_waived:
            return "activates at the next tick (lead waived)", None
        active = keyring.active
        if active is None or active.activated_at is None:
            return "activates at the next tick (no active key)", None
        return "activates", max(key.published_at + settings.publish_lead, active.activated_at + settings.rotation_period)
    if key.state is KeyState.ACTIVE:
        if key.activated_at is None:
            return "due at the next tick", None
        return "due (retires when the next key is ready)", key.activated_at + settings.rotation_period
    return "deleted", deletion_time(key, settings)


@cli.command()
@settings_options()
@click.pass_obj
def status(obj: CliContext, **values: Any) -> None:
    """The keys with state, age and next transition, and a timeline."""
    settings = obj.settings(_given(values), require=("keyring_secret_id",))
    keyring = SecretsManagerKeyringStore(obj.client("secretsmanager"), settings.keyring_secret_id).load().keyring
    now = datetime.now(UTC)
    out = console()
    active = keyring.active
    out.print(f"keyring [bold]{settings.keyring_secret_id}[/bold]  active: [bold green]{active.kid if active else 'none'}[/bold green]")
    table = Table(show_header=True, header_style="bold")
    for column in ("kid", "state", "alg", "age", "published", "next transition"):
        table.add_column(column, no_wrap=True)
    events: list[tuple[datetime, str, str]] = []
    for key in keyring.publication_order():
        what, when = next_transition(key, keyring, settings)
        style = {"active": "green", "pending": "cyan", "retired": "yellow"}[key.state.value]
        when_text = "next tick" if when is None else f"{when.astimezone():%H:%M:%S} ({relative(when, now)})"
        if when is not None and when <= now:
            when_text = f"next tick (was due {relative(when, now)})"
        table.add_row(
            key.kid,
            f"[{style}]{key.state.value}[/{style}]",
            key.alg,
            human((now - key.created_at).total_seconds()),
            relative(key.published_at, now) if key.published_at else "not yet",
            f"{what} {when_text}",
        )
        events.append((when or now, key.kid, what))
    out.print(table)
    if not keyring.keys:
        out.print("no keys yet: the first tick creates and publishes one")
        return
    out.print("[bold]timeline[/bold]")
    out.print(f"  now {now.astimezone():%H:%M:%S}")
    for when, kid, what in sorted(events):
        offset = (when - now).total_seconds()
        mark = f"+{human(offset)}" if offset > 0 else "next tick"
        out.print(f"  ├─ {mark:>9}  {kid}  {what.split(' (')[0]}")


# --- rotate / revoke / publish -----------------------------------------------------
def _run(obj: CliContext, values: dict[str, Any], command: RotateCommand) -> RunReport:
    settings = obj.settings(_given(values), require=("keyring_secret_id", "jwks_bucket", "issuer"))
    service = build_rotation_service(settings, obj.client)
    return run_command(service, command)


def _print_report(report: RunReport, *, nothing: str) -> None:
    out = console()
    for change in report.changes:
        out.print(change_line(change.kind, change.kid, change.reason))
    for publication in report.publications:
        if publication.uploaded:
            out.print(f"published {', '.join(publication.uploaded)}" + (f" (invalidation {publication.invalidation_id})" if publication.invalidation_id else ""))
        elif publication.invalidation_id:
            out.print(f"invalidated the documents again (invalidation {publication.invalidation_id})")
    if not report.changes and not report.publications:
        out.print(nothing)
    active = report.keyring.active
    out.print(f"active kid: {active.kid if active else 'none'}")
    if not report.converged:
        out.print("[yellow]did not converge (concurrent writers); run again[/yellow]")


@cli.command()
@click.option("--now", "emergency", is_flag=True, help="Emergency rotation: a fresh key signs as soon as it is published (skips the publish lead).")
@settings_options()
@click.pass_obj
def rotate(obj: CliContext, emergency: bool, **values: Any) -> None:
    """Run one tick (apply what is due), or rotate at once with --now."""
    report = _run(obj, values, RotateCommand("rotate-now" if emergency else "tick"))
    _print_report(report, nothing="nothing was due")


@cli.command()
@click.argument("kid")
@settings_options()
@click.pass_obj
def revoke(obj: CliContext, kid: str, **values: Any) -> None:
    """Remove KID from the keyring and the published JWKS at once."""
    report = _run(obj, values, RotateCommand("revoke", kid))
    _print_report(report, nothing="nothing changed")


@cli.command()
@settings_options()
@click.pass_obj
def publish(obj: CliContext, **values: Any) -> None:
    """Write the documents if they differ from the keyring, and invalidate them."""
    report = _run(obj, values, RotateCommand("publish"))
    _print_report(report, nothing="documents already up to date")


# --- sign / verify ----------------------------------------------------------------
@cli.command()
@click.option("--function-name", default=SIGN_FUNCTION, show_default=True, envvar="SIGN_FUNCTION_NAME", help="Name or ARN of the sign function.")
@click.option("--lambda-endpoint-url", default=None, help="Lambda API endpoint [default: the local stack's when --endpoint-url names it, else AWS].")
@click.option("--sub", required=True, help="Subject of the token.")
@click.option("--aud", multiple=True, help="Audience (repeat for several); omitted: the function's default audience.")
@click.option("--ttl", type=int, default=None, help="Lifetime in seconds (at most max-token-ttl).")
@click.option("--claims", default=None, help="Custom claims as a JSON object.")
@click.pass_obj
def sign(obj: CliContext, function_name: str, lambda_endpoint_url: str | None, sub: str, aud: tuple[str, ...], ttl: int | None, claims: str | None) -> None:
    """Ask the sign function for a token and print it (details on stderr)."""
    request: dict[str, Any] = {"sub": sub}
    if aud:
        request["aud"] = aud[0] if len(aud) == 1 else list(aud)
    if ttl is not None:
        request["ttl"] = ttl
    if claims is not None:
        try:
            request["claims"] = json.loads(claims)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON ({exc.msg})", param_hint="--claims") from None
    state = obj.local_state()
    endpoint = lambda_endpoint_url or (state or {}).get("lambda_endpoint") or None
    client = obj.client("lambda", endpoint_url=endpoint) if endpoint else obj.client("lambda")
    response = client.invoke(FunctionName=function_name, Payload=json.dumps(request).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        _fail(f"{function_name} failed: {payload.get('errorType', 'error')}: {payload.get('errorMessage', '')}", 1)
    if not isinstance(payload, dict) or "token" not in payload:
        reason = payload if not isinstance(payload, dict) else f"{payload.get('error', 'error')}: {payload.get('message', '')}"
        _fail(f"sign refused: {reason}", 1)
    click.echo(payload["token"])
    click.echo(f"kid={payload.get('kid')} alg={payload.get('alg')} expires_at={payload.get('expires_at')}", err=True)


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


@cli.command()
@click.argument("token")
@click.option("--jwks-url", default=None, help="JWKS to verify against [default: the local stack's edge, else ISSUER/.well-known/jwks.json].")
@click.option("--audience", multiple=True, help="Accepted audience (repeat for several); required when the token has one.")
@click.option("--algorithms", default=",".join(algorithm_names()), show_default=True, help="Comma-separated algorithms accepted.")
@click.option("--leeway", default=None, help="Clock skew tolerated [default: clock-skew-leeway].")
@settings_options()
@click.pass_obj
def verify(obj: CliContext, token: str, jwks_url: str | None, audience: tuple[str, ...], algorithms: str, leeway: str | None, **values: Any) -> None:
    """Verify TOKEN against the published JWKS; print its claims or why it is refused."""
    import jwt

    settings = obj.settings(_given(values), require=("issuer",))
    state = obj.local_state()
    url = jwks_url or (state or {}).get("jwks_url") or settings.jwks_uri
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
        _fail(explain_verification_error(exc, token, audience=audience, issuer=settings.issuer, jwks_url=url, algorithms=allowed), 1)
        return
    header = jwt.get_unverified_header(token)
    out = console()
    out.print(f"[green]valid[/green]: kid={header.get('kid')} alg={header.get('alg')}")
    out.print_json(json.dumps(claims))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="jwks-rotator")


if __name__ == "__main__":
    main()

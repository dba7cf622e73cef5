"""``jwks-rotator --endpoint-url URL fault``: start or end a regional outage in the local cloud.

``fault region-outage REGION`` makes every AWS call signed for REGION fail at once (HTTP 503; Lambda invokes
``ServiceException``), as an outage does; ``fault clear REGION`` ends it; ``fault replica-lag REGION SECONDS``
makes REGION's replica secrets show what their primary held SECONDS ago (0 ends it); ``fault list`` shows both. Only a local cloud on this machine takes them (the switch is its AWS endpoint's control path, see
``jwks_rotator_local.faults``): the command refuses any other endpoint and never reaches AWS.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import click

from .app import fail
from .context import CliContext, is_loopback

CONTROL_PATH = "/_jwks-rotator/faults"
REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
TIMEOUT_SECONDS = 10.0
"""The control call answers at once; past this the local cloud is not answering (never a hang)."""


def _control_url(cli_context: CliContext) -> str:
    """The local cloud's AWS endpoint (the one the faults are served on), from --endpoint-url and its state file."""
    endpoint = cli_context.endpoint_url
    if not endpoint or not is_loopback(endpoint):
        fail("fault needs --endpoint-url of a local cloud on this machine (it never acts on AWS)", 2)
    state = cli_context.local_state()
    return str(state.get("aws_endpoint") or endpoint) if state else endpoint


def _call(cli_context: CliContext, method: str, suffix: str = "") -> dict[str, Any]:
    """Send one control request; the faults in force afterwards (``region-outage`` list, ``replica-lag`` map)."""
    request = urllib.request.Request(_control_url(cli_context).rstrip("/") + CONTROL_PATH + suffix, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            answer: Any = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 400:
            fail(f"the local cloud refused the fault: {_message(exc)}", 2)
        fail(f"the local cloud refused the fault (HTTP {exc.code}): is --endpoint-url its AWS endpoint?", 1)
    except ValueError:
        fail("the local cloud's answer is not JSON: is --endpoint-url its AWS endpoint?", 1)
    regions = answer.get("region-outage") if isinstance(answer, dict) else None
    if not isinstance(regions, list):
        fail("the local cloud's answer has no region-outage list", 1)
    lags = answer.get("replica-lag")
    return {"region-outage": [str(region) for region in regions], "replica-lag": lags if isinstance(lags, dict) else {}}


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read())
    except ValueError:
        return f"HTTP {exc.code}"
    return str(answer.get("message", f"HTTP {exc.code}")) if isinstance(answer, dict) else f"HTTP {exc.code}"


def _region(value: str) -> str:
    if not REGION.fullmatch(value):
        raise click.BadParameter("not a region name (like eu-west-1)")
    return value


def _print(state: dict[str, Any], *, lags: bool = False) -> None:
    """The regions in outage; the replica lags too when asked for or any is set."""
    regions = state["region-outage"]
    click.echo(f"regions in outage: {', '.join(regions) if regions else 'none'}")
    lagging = state["replica-lag"]
    if lags or lagging:
        shown = ", ".join(f"{region} {float(seconds):g}s" for region, seconds in sorted(lagging.items()))
        click.echo(f"replica lag: {shown or 'none'}")


@click.group("fault")
def fault() -> None:
    """Regional faults of the local cloud (needs --endpoint-url of a local stack)."""


@fault.command("region-outage")
@click.argument("region", callback=lambda _ctx, _param, value: _region(value))
@click.pass_obj
def region_outage(cli_context: CliContext, region: str) -> None:
    """Every AWS call in REGION fails at once (HTTP 503; Lambda invokes: ServiceException) until `fault clear REGION`."""
    _print(_call(cli_context, "PUT", f"/region-outage/{region}"))


@fault.command("clear")
@click.argument("region", callback=lambda _ctx, _param, value: _region(value))
@click.pass_obj
def clear(cli_context: CliContext, region: str) -> None:
    """End REGION's outage (safe to run again)."""
    _print(_call(cli_context, "DELETE", f"/region-outage/{region}"))


@fault.command("replica-lag")
@click.argument("region", callback=lambda _ctx, _param, value: _region(value))
@click.argument("seconds", type=click.FloatRange(0, 3600))
@click.pass_obj
def replica_lag(cli_context: CliContext, region: str, seconds: float) -> None:
    """REGION's replica secrets show what their primary held SECONDS ago (0 ends it: caught up at once)."""
    _print(_call(cli_context, "PUT", f"/replica-lag/{region}/{seconds:g}"), lags=True)


@fault.command("list")
@click.pass_obj
def list_faults(cli_context: CliContext) -> None:
    """The regions in outage."""
    _print(_call(cli_context, "GET"))

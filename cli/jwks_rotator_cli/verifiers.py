"""``jwks-rotator verifiers``: the cache settings each verifier in front of a service needs for this stack's settings.

Reads publish-lead, jwks-max-age and clock-skew-leeway the way ``status`` does (with ``--stack`` the stack's rotate
function's configuration alone, an option beside it refused; else the local stack's state with ``--endpoint-url``,
options and environment over it, else the defaults) and prints :func:`jwks_rotator.core.lifecycle.verifier_caches.recommend`'s answer: the rule, the
largest cache it allows, and per verifier the value to set, its revocation bound and its rotate-now window.
Nothing is written; the stack is only read. The rule and each verifier's options: docs/verifiers.md.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click
from rich.table import Table

from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.lifecycle.verifier_caches import CacheGuidance, Recommendation, recommend
from jwks_rotator.core.settings import Settings

from .context import CliContext, given_settings, settings_options
from .output import console

VERIFIER_SETTINGS = ("publish_lead", "jwks_max_age", "clock_skew_leeway", "rotation_period", "schedule")
"""The settings the rule reads, and rotation-period and schedule, which a publish-lead given here is validated against."""


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _short(value: timedelta | None) -> str:
    """``2h18m53s``: every unit, never rounded (a bound or a minimum shown shorter than it is would mislead)."""
    if value is None:
        return "-"
    if value <= timedelta(0):
        return "0s"
    total, parts = value.days * 86_400 + value.seconds, []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or value.microseconds or not parts:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        parts.append(f"{total}{fraction}s")
    return "".join(parts)


def guidance_document(guidance: CacheGuidance, settings: Settings, source: str) -> dict[str, Any]:
    """The ``--json`` answer: the settings read, the rule's numbers and one entry per verifier (durations in seconds)."""

    def entry(rec: Recommendation) -> dict[str, Any]:
        v = rec.verifier
        return {
            "verifier": v.name,
            "setting": v.setting,
            "configurable": v.configurable,
            "default_seconds": v.default.total_seconds(),
            "recommended_seconds": _seconds(rec.cache),
            "cooldown_setting": v.cooldown_setting or None,
            "cooldown_seconds": _seconds(rec.cooldown),
            "fits": rec.fits,
            "revocation_bound_seconds": _seconds(rec.revocation_bound),
            "rotate_now_window_seconds": _seconds(rec.rotate_now_window),
            "refetches_unknown_kid": v.refetches_unknown_kid,
            "minimum_publish_lead_seconds": _seconds(rec.minimum_publish_lead),
            "note": v.note,
        }

    return {
        "source": source,
        "publish_lead_seconds": guidance.publish_lead.total_seconds(),
        "jwks_max_age_seconds": guidance.jwks_max_age.total_seconds(),
        "clock_skew_leeway_seconds": settings.clock_skew_leeway.total_seconds(),
        "rule": "verifier cache + jwks-max-age + margin <= publish-lead; margin = max(publish-lead / 10, clock-skew-leeway, 1 s)",
        "margin_seconds": guidance.margin.total_seconds(),
        "max_cache_seconds": guidance.max_cache.total_seconds(),
        "verifiers": [entry(rec) for rec in guidance.recommendations],
    }


@click.command()
@click.option("--stack", "stack_here", default=None, metavar="NAME", help="The stack to read the settings of (as the global --stack).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@settings_options(only=VERIFIER_SETTINGS)
@click.pass_obj
def verifiers(obj: CliContext, /, stack_here: str | None, as_json: bool, **values: Any) -> None:
    """Cache settings for Envoy, PyJWT, jose, jwks-rsa and API Gateway that fit the stack's publish-lead and jwks-max-age."""
    if stack_here:
        obj.stack_name = stack_here
    settings = obj.settings(given_settings(values))
    stack = obj.stack()
    source = f"stack {stack.name}" if stack is not None else "local stack" if obj.local_state() is not None else "options and defaults"
    guidance = recommend(settings.publish_lead, settings.jwks_max_age, settings.clock_skew_leeway)
    if as_json:
        click.echo(json.dumps(guidance_document(guidance, settings, source), indent=2))
        return
    out = console()
    out.print(
        f"settings ({source})  publish-lead={format_duration(settings.publish_lead)} jwks-max-age={format_duration(settings.jwks_max_age)} "
        f"clock-skew-leeway={format_duration(settings.clock_skew_leeway)}",
        markup=False,
    )
    out.print(
        f"rule: verifier cache + jwks-max-age ({_short(guidance.jwks_max_age)}) + margin ({_short(guidance.margin)}) "
        f"<= publish-lead ({_short(guidance.publish_lead)}): largest verifier cache {_short(guidance.max_cache)}",
        markup=False,
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("verifier", "setting", "set to", "cooldown", "revocation bound", "rotate-now window", "note"):
        table.add_column(column)
    for rec in guidance.recommendations:
        v = rec.verifier
        if rec.fits:
            value = _short(rec.cache) + ("" if rec.cache != v.default else " (default)" if v.configurable else " (fixed)")
        elif v.configurable and rec.cache is None:
            value = f"[red]none fits[/red]: publish-lead >= {_short(rec.minimum_publish_lead)} keeps the default"
        else:
            value = f"[red]{_short(v.default)}, fixed: does not fit[/red]: publish-lead >= {_short(rec.minimum_publish_lead)}"
        cooldown = f"{v.cooldown_setting} {_short(rec.cooldown)}" if rec.cooldown is not None else v.cooldown_setting or "-"
        table.add_row(v.name, v.setting, value, cooldown, _short(rec.revocation_bound), _short(rec.rotate_now_window), v.note)
    out.print(table)

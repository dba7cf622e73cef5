"""``jwks-rotator status``: the settings the stack runs with, the keys with state, age and next transition, and a timeline.

Against a stack the settings are the rotate function's own (its configuration's
environment), so the next transitions shown are the ones the stack will make;
the keyring is only read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.durations import format_duration
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.lifecycle.rules import next_transition
from jwks_rotator.core.settings import Settings

from .context import CliContext, emit_json, given_settings, json_option, settings_options
from .output import console, human, relative

_STATE_STYLES = {"active": "green", "pending": "cyan", "retired": "yellow"}


def settings_line(settings: Settings) -> str:
    """The settings that decide the keys' transitions, as written on a command line."""
    return (
        f"algorithm={settings.algorithm} rotation-period={format_duration(settings.rotation_period)} "
        f"publish-lead={format_duration(settings.publish_lead)} max-token-ttl={format_duration(settings.max_token_ttl)} "
        f"jwks-max-age={format_duration(settings.jwks_max_age)} schedule={format_duration(settings.schedule)} "
        f"retention={format_duration(settings.effective_retention)}"
    )


STATUS_SETTINGS = ("keyring_secret_id", "rotation_period", "publish_lead", "max_token_ttl", "jwks_max_age", "schedule", "retention")
"""The settings status reads: the keyring's name and what decides each key's next transition."""


def status_document(source: str, settings: Settings, keyring: Keyring, now: datetime) -> dict[str, Any]:
    """``status --json``: the settings, the active kid and each key with its state, times and next transition."""
    keys = []
    for key in keyring.publication_order():
        what, when = next_transition(key, keyring, settings)
        keys.append({
            "kid": key.kid, "state": key.state.value, "alg": key.alg, "created_at": key.created_at.isoformat(),
            "published_at": key.published_at.isoformat() if key.published_at else None,
            "next": what, "next_at": when.isoformat() if when else None,
        })
    active = keyring.active
    return {
        "source": source, "settings": settings.describe(), "keyring": settings.keyring_secret_id,
        "active_kid": active.kid if active else None, "keys": keys, "now": now.isoformat(),
    }


@click.command()
@settings_options(only=STATUS_SETTINGS)
@json_option
@click.pass_obj
def status(obj: CliContext, /, **values: Any) -> None:
    """The stack's settings, the keys with state, age and next transition, and a timeline."""
    settings = obj.settings(given_settings(values), require=("keyring_secret_id",))
    stack = obj.stack()
    source = f"stack {stack.name}" if stack is not None else "local stack" if obj.local_state() is not None else "options and defaults"
    keyring = SecretsManagerKeyringStore(obj.client("secretsmanager"), settings.keyring_secret_id).load().keyring
    now = datetime.now(UTC)
    if obj.json_output:
        emit_json(obj, status_document(source, settings, keyring, now))
        return
    out = console()
    active = keyring.active
    out.print(f"settings ({source})  {settings_line(settings)}", markup=False)
    out.print(f"keyring [bold]{settings.keyring_secret_id}[/bold]  active: [bold green]{active.kid if active else 'none'}[/bold green]")
    table = Table(show_header=True, header_style="bold")
    for column in ("kid", "state", "alg", "age", "published", "next transition"):
        table.add_column(column, no_wrap=True)
    events: list[tuple[datetime, str, str]] = []
    for key in keyring.publication_order():
        what, when = next_transition(key, keyring, settings)
        style = _STATE_STYLES[key.state.value]
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

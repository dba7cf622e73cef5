"""``jwks-rotator rotate [--now]``, ``revoke KID`` and ``publish [--accept-restore]``: one rotation run each, as the rotate function does it."""

from __future__ import annotations

from typing import Any

import click

from jwks_rotator.core.operations import RotateCommand, run_command
from jwks_rotator.core.rotation import RunReport
from jwks_rotator.wiring import build_rotation_service

from .context import CliContext, given_settings, settings_options
from .output import console, print_report

_REQUIRED = ("keyring_secret_id", "jwks_bucket", "issuer")


def print_accepted(report: RunReport) -> None:
    """Say that the keyring secret as it is now is what the documents and the signer follow."""
    active = report.keyring.active
    console().print(f"keyring accepted as it is: the documents follow it; active kid {active.kid if active else 'none'}")


def _run(obj: CliContext, values: dict[str, Any], command: RotateCommand) -> RunReport:
    settings = obj.settings(given_settings(values), require=_REQUIRED)
    service = build_rotation_service(settings, obj.client)
    return run_command(service, command)


@click.command()
@click.option("--now", "emergency", is_flag=True, help="Emergency rotation: a fresh key signs as soon as it is published (skips the publish lead).")
@settings_options()
@click.pass_obj
def rotate(obj: CliContext, /, emergency: bool, **values: Any) -> None:
    """Run one tick (apply what is due), or rotate at once with --now."""
    report = _run(obj, values, RotateCommand("rotate-now" if emergency else "tick"))
    print_report(report, nothing="nothing was due")


@click.command()
@click.argument("kid")
@settings_options()
@click.pass_obj
def revoke(obj: CliContext, /, kid: str, **values: Any) -> None:
    """Remove KID from the keyring and the published JWKS at once."""
    report = _run(obj, values, RotateCommand("revoke", kid))
    print_report(report, nothing="nothing changed")


_ACCEPT_RESTORE_HELP = (
    "Accept a keyring secret restored to an older version: overwrite the published JWKS and discovery documents, "
    "which come from a newer keyring, with the restored keyring's. Keys only the newer keyring held leave the JWKS and "
    "tokens they signed stop verifying; the signer, which refuses to sign while a restore waits, signs again."
)


@click.command()
@click.option("--accept-restore", is_flag=True, help=_ACCEPT_RESTORE_HELP)
@settings_options()
@click.pass_obj
def publish(obj: CliContext, /, accept_restore: bool, **values: Any) -> None:
    """Write the documents if they differ from the keyring, and invalidate them.

    When the keyring secret was restored to an older version the rotator stops
    (keyring_behind_publication) and holds the signer; --accept-restore is the
    operator's consent to publish the restored keyring over the newer documents.
    """
    report = _run(obj, values, RotateCommand("publish", accept_restore=accept_restore))
    print_report(report, nothing="documents already up to date")
    if accept_restore:
        print_accepted(report)

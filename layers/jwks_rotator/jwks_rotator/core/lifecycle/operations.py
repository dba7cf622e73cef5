"""The rotate function's operations: an event (scheduled, or ``{"operation": ...}``) parsed into a :class:`RotateCommand`, then run.

Shared by the rotate Lambda handler, the CLI and the local stack so that all
three accept the same commands (the service itself comes from :mod:`jwks_rotator.bootstrap.rotate`).
Parsing is pure; running calls the rotation service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jwks_rotator.core.errors import InvalidEventError
from jwks_rotator.core.lifecycle.rotation import RotationService, RunReport

OPERATIONS = ("tick", "rotate-now", "revoke", "publish", "promote", "step-down")
REGION_OPERATIONS = frozenset({"promote", "step-down"})
"""Operations that name a region: ``promote`` the region this function runs in, ``step-down`` the one to hand over to."""
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")


@dataclass(frozen=True)
class RotateCommand:
    """One operation of the rotate function."""

    operation: str
    kid: str | None = None
    accept_restore: bool = False  # publish only: overwrite documents of a newer keyring (a restored secret)
    region: str | None = None  # promote: the region to promote (this function's); step-down: the region taking over
    check: bool = False  # promote only: run the checks that change nothing and answer what a promote would do


def is_scheduled_event(event: Mapping[str, Any]) -> bool:
    """An EventBridge rule's or Scheduler's event: a tick."""
    return event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event"


def parse_rotate_event(event: Any) -> RotateCommand:
    """Accept a scheduled event (EventBridge rule or Scheduler) or ``{"operation": ...}``.

    ``{"operation": "publish", "accept_restore": true}`` (a JSON boolean) is
    the operator's consent to overwrite documents of a newer keyring.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError("rotate event must be a JSON object")
    if is_scheduled_event(event):
        return RotateCommand("tick")
    operation = event.get("operation")
    if operation not in OPERATIONS:
        raise InvalidEventError(f"rotate event: 'operation' must be one of {', '.join(OPERATIONS)}")
    extra = set(event) - {"operation", "kid", "accept_restore", "region", "check"}
    if extra:
        raise InvalidEventError(f"rotate event: unexpected field(s) {', '.join(sorted(map(str, extra)))}")
    if operation == "revoke":
        kid = event.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise InvalidEventError("revoke needs 'kid': the key id to remove")
        return RotateCommand("revoke", kid)
    if "kid" in event:
        raise InvalidEventError(f"{operation} takes no 'kid'")
    if operation in REGION_OPERATIONS:
        region = event.get("region")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise InvalidEventError(f"{operation} needs 'region': an AWS region name such as eu-west-1")
        if "accept_restore" in event:
            raise InvalidEventError(f"{operation} takes no 'accept_restore' (only publish does)")
        check = event.get("check", False)
        if "check" in event and (operation != "promote" or not isinstance(check, bool)):
            raise InvalidEventError("'check' is promote's only, a JSON boolean (true: run its checks, change nothing)")
        return RotateCommand(str(operation), region=region, check=check)
    if "check" in event:
        raise InvalidEventError(f"{operation} takes no 'check' (only promote does)")
    if "region" in event:
        raise InvalidEventError(f"{operation} takes no 'region' (only promote and step-down do)")
    if "accept_restore" in event:
        if operation != "publish":
            raise InvalidEventError(f"{operation} takes no 'accept_restore' (only publish does)")
        if not isinstance(event["accept_restore"], bool):
            raise InvalidEventError("publish: 'accept_restore' must be a JSON boolean (true or false)")
        return RotateCommand("publish", accept_restore=event["accept_restore"])
    return RotateCommand(str(operation))


def run_command(service: RotationService, command: RotateCommand, *, coalesce_ticks: bool = False) -> RunReport:
    """Carry out one command; ``publish`` is the idempotent ``tick``, optionally accepting a restored keyring.

    ``promote`` and ``step-down`` are not the rotation service's: the handler runs them (core.lifecycle.promote).

    ``coalesce_ticks``: the command came without a proof, so a tick right after a completed one is skipped.
    Outside the writer's region (``is_writer``) the service refuses each of these (``not_primary_region``; an unproven
    tick does nothing): an operation meant to run there (``promote``) must not go through the service's write methods.
    """
    if command.operation == "rotate-now":
        return service.rotate_now()
    if command.operation == "revoke":
        assert command.kid is not None
        return service.revoke(command.kid)
    if command.operation == "publish":
        return service.publish(accept_restore=command.accept_restore)
    if command.operation in REGION_OPERATIONS:
        raise InvalidEventError(f"{command.operation} is run by the handler, not by the rotation service")
    return service.tick(coalesce=coalesce_ticks)


def report_summary(command: RotateCommand, report: RunReport) -> dict[str, Any]:
    """The response body: what changed, and the keys now held (public facts only)."""
    active = report.keyring.active
    return {
        **({"skipped": True} if report.skipped else {}),
        **({"reason": "not_primary_region"} if report.not_primary else {}),
        "operation": command.operation,
        "converged": report.converged,
        "conflicts": report.conflicts,
        "changes": [{"change": c.kind, "kid": c.kid, "reason": c.reason} for c in report.changes],
        "published": [list(p.uploaded) for p in report.publications],
        "active_kid": active.kid if active else None,
        "keys": [{"kid": k.kid, "alg": k.alg, "state": k.state.value} for k in report.keyring.publication_order()],
        **({"missing_origins": list(report.missing_origins)} if report.missing_origins else {}),
        **({"origins_ahead": list(report.origins_ahead)} if report.origins_ahead else {}),
        **({"lagging_replicas": list(report.lagging_replicas)} if report.lagging_replicas else {}),
        **({"replication_lag": {r: round(s, 3) for r, s in sorted(report.replication_lag.items())}} if report.replication_lag else {}),
        **({"unreadable_replicas": list(report.unreadable_replicas)} if report.unreadable_replicas else {}),
    }

"""The rotate function's events: a scheduled event or ``{"operation": ...}``, parsed into a :class:`RotateCommand` (pure).

Kept apart from :mod:`.operations` (which runs commands on the rotation
service) so that judging an event loads no rotation code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidEventError

OPERATIONS = ("tick", "rotate-now", "revoke", "publish")


@dataclass(frozen=True)
class RotateCommand:
    """One operation of the rotate function."""

    operation: str
    kid: str | None = None
    accept_restore: bool = False  # publish only: overwrite documents of a newer keyring (a restored secret)


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
    extra = set(event) - {"operation", "kid", "accept_restore"}
    if extra:
        raise InvalidEventError(f"rotate event: unexpected field(s) {', '.join(sorted(map(str, extra)))}")
    if operation == "revoke":
        kid = event.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise InvalidEventError("revoke needs 'kid': the key id to remove")
        return RotateCommand("revoke", kid)
    if "kid" in event:
        raise InvalidEventError(f"{operation} takes no 'kid'")
    if "accept_restore" in event:
        if operation != "publish":
            raise InvalidEventError(f"{operation} takes no 'accept_restore' (only publish does)")
        if not isinstance(event["accept_restore"], bool):
            raise InvalidEventError("publish: 'accept_restore' must be a JSON boolean (true or false)")
        return RotateCommand("publish", accept_restore=event["accept_restore"])
    return RotateCommand(str(operation))

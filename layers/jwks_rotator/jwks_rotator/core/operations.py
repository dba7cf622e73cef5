"""The rotate function's operations: event shapes in (:mod:`.operation_events`), service calls out.

Shared by the rotate Lambda handler, the CLI and the local stack so that all
three accept the same commands (the service itself comes from :mod:`jwks_rotator.wiring`).
"""

from __future__ import annotations

from typing import Any

from .operation_events import RotateCommand
from .rotation import RotationService, RunReport


def run_command(service: RotationService, command: RotateCommand) -> RunReport:
    """Carry out one command; ``publish`` is the idempotent ``tick``, optionally accepting a restored keyring."""
    if command.operation == "rotate-now":
        return service.rotate_now()
    if command.operation == "revoke":
        assert command.kid is not None
        return service.revoke(command.kid)
    if command.operation == "publish":
        return service.publish(accept_restore=command.accept_restore)
    return service.tick()


def report_summary(command: RotateCommand, report: RunReport) -> dict[str, Any]:
    """The response body: what changed, and the keys now held (public facts only)."""
    active = report.keyring.active
    return {
        "operation": command.operation,
        "converged": report.converged,
        "conflicts": report.conflicts,
        "changes": [{"change": c.kind, "kid": c.kid, "reason": c.reason} for c in report.changes],
        "published": [list(p.uploaded) for p in report.publications],
        "active_kid": active.kid if active else None,
        "keys": [{"kid": k.kid, "alg": k.alg, "state": k.state.value} for k in report.keyring.publication_order()],
    }

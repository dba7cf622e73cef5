"""The audit trail: one JSON line per sign decision, written straight to the function's log stream.

Lambda sends stdout to the function's log group (the template points the sign
function's logs at a dedicated audit log group), so a line costs no AWS call.
A line holds the time, the decision and error code, the caller's STS ARN and
role, the profile, the policy digest and the function version; an issued
token adds ``jti``, ``sub`` (bounded), ``aud``, ``kid`` and ``exp``. Never the
token, the proof or another claim value (see :class:`~jwks_rotator.core.issuance.AuditRecord`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from jwks_rotator.core.issuance import AuditRecord

AUDIT_TYPE = "jwks-rotator.audit"
"""The ``type`` of every audit line: ``jwks-rotator audit`` selects lines by it."""

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


class AuditLog:
    """Writes :class:`AuditRecord` s as JSON lines to a stream (stdout in Lambda)."""

    def __init__(self, *, stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._clock = clock
        self.function_version = ""  # set by the handler from its first invocation's context

    def write(self, record: AuditRecord) -> None:
        """One line for one decision; flushed so a crash right after it loses nothing."""
        line = {
            "type": AUDIT_TYPE,
            "time": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "function_version": self.function_version,
            **record.fields(),
        }
        stream = self._stream or sys.stdout
        stream.write(_encode(line) + "\n")
        stream.flush()

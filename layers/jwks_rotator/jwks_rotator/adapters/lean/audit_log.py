"""The audit trail: one JSON line per sign decision and per rotate operation, written straight to the function's log stream.

Lambda sends stdout to the function's log group (the template points the sign
function's logs at a dedicated audit log group), so a line costs no AWS call.
A line holds the time, the decision and error code, the caller's STS ARN and
role, the profile, the policy digest and the function version; an issued
token adds ``jti``, ``sub`` (bounded), ``aud``, ``kid`` and ``exp``. Never the
token, the proof or another claim value (see :class:`~jwks_rotator.core.issuance.service.AuditRecord`).

The rotate function's lines (:meth:`AuditLog.write_operation`) say
``"function": "rotate"`` and hold the operation, the revoked ``kid`` and
``accept_restore`` in place of the token's fields (see
:class:`~jwks_rotator.core.lifecycle.operator_gate.OperationRecord`); the sign
function's lines are unchanged.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from .telemetry import OUTPUT_LOCK

if TYPE_CHECKING:  # type checks only: the rotate function writes its lines without the issuance core
    from jwks_rotator.core.issuance.service import AuditRecord
    from jwks_rotator.core.lifecycle.operator_gate import OperationRecord

AUDIT_TYPE = "jwks-rotator.audit"
"""The ``type`` of every audit line: ``jwks-rotator audit`` selects lines by it."""

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode
_quote: Callable[[str], str] = json.encoder.encode_basestring_ascii
_MAX_PREFIXES = 256


_BOUNDED_SUB: list[Callable[[str | None], str | None]] = []


def _bounded(sub: str | None) -> str | None:
    """The issuance core's ``bounded_sub``, looked up once (an import statement costs ~1.7 µs per token)."""
    if not _BOUNDED_SUB:
        # Measured reason: the issuance service module pulls in the issuance core (~70 ms, python -X importtime),
        # which the rotate function (whose lines never hold a token) need not load; the sign handler loads it at INIT.
        from jwks_rotator.core.issuance.service import bounded_sub

        _BOUNDED_SUB.append(bounded_sub)
    return _BOUNDED_SUB[0](sub)


class AuditLog:
    """Writes :class:`AuditRecord` s as JSON lines to a stream (stdout in Lambda).

    A line is written on the signing path of every token, so the parts that
    repeat for a warm caller (who asked, under which profile and policy, the
    decision) are encoded once and reused; only the time and the token's own
    fields are encoded per line.
    """

    def __init__(self, *, stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self._stream = stream
        self._clock = clock
        self.function_version = ""  # set by the handler from its first invocation's context
        self._prefixes: dict[tuple[str | None, ...], str] = {}
        self._stamp = (-1, "")  # (second, its text), replaced as one: threads never pair a second with another's text

    def write(self, record: AuditRecord) -> None:
        """One line for one decision; flushed so a crash right after it loses nothing."""
        now = self._clock()
        second = int(now)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        line = f'{self._prefix(record)},"time":"{stamp[1]}.{int((now - second) * 1000):03d}Z"'
        issued = record.issued
        if issued is not None:
            aud = _quote(issued.aud) if type(issued.aud) is str else _encode(issued.aud)
            sub = _bounded(record.sub)
            line += (
                f',"jti":{_quote(issued.jti)},"sub":{_quote(sub) if sub is not None else "null"},"aud":{aud}'
                f',"kid":{_quote(issued.kid)},"exp":{int(issued.expires_at)}'
            )
        stream = self._stream or sys.stdout
        with OUTPUT_LOCK:
            stream.write(line + "}\n")
            stream.flush()

    def write_operation(self, record: OperationRecord) -> None:
        """One line for one rotate operation decision (rare: encoded whole each time)."""
        line = {"type": AUDIT_TYPE, "function": "rotate", "time": self._timestamp(), "function_version": self.function_version, **record.fields()}
        text = _encode(line) + "\n"
        stream = self._stream or sys.stdout
        with OUTPUT_LOCK:
            stream.write(text)
            stream.flush()

    def _timestamp(self) -> str:
        now = self._clock()
        second = int(now)
        return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{int((now - second) * 1000):03d}Z"

    def _prefix(self, record: AuditRecord) -> str:
        key = (self.function_version, record.decision, record.error, record.reason, record.caller, record.role, record.profile, record.policy)
        prefix = self._prefixes.get(key)
        if prefix is None:
            if len(self._prefixes) >= _MAX_PREFIXES:
                self._prefixes.clear()
            fixed = {
                "type": AUDIT_TYPE,
                "function_version": self.function_version,
                "decision": record.decision,
                "error": record.error,
                "reason": record.reason,
                "caller": record.caller,
                "role": record.role,
                "profile": record.profile,
                "policy": record.policy,
            }
            prefix = self._prefixes[key] = _encode(fixed)[:-1]
        return prefix

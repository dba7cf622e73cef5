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
        # (function version, its lines' fixed parts by the record's first seven fields), replaced as one: a line never
        # pairs one version with parts encoded under another.
        self._fixed: tuple[str, dict[tuple[str | None, ...], str]] = ("", {})
        self._stamp = (-1, "")  # (second, its text), replaced as one: threads never pair a second with another's text
        self._max_sub = -1  # the issuance core's bound on ``sub`` and its function, looked up at the first issued line
        self._bound_sub: Callable[[str], str | None] = self._load_bounded_sub

    @property
    def function_version(self) -> str:
        """The function version every line names (the handler sets it from its first invocation's context)."""
        return self._fixed[0]

    @function_version.setter
    def function_version(self, version: str) -> None:
        if version != self._fixed[0]:
            self._fixed = (version, {})

    def write(self, record: AuditRecord) -> None:
        """One line for one decision; flushed so a crash right after it loses nothing."""
        now = self._clock()
        second = int(now)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        version, prefixes = self._fixed
        prefix = prefixes.get(record[:7])  # decision, error, reason, caller, role, profile, policy
        if prefix is None:
            prefix = self._prefix(version, prefixes, record)
        issued = record.issued
        if issued is None:
            line = f'{prefix},"time":"{stamp[1]}.{int((now - second) * 1000):03d}Z"}}\n'
        else:
            aud = issued.aud
            sub = record.sub
            if sub is not None and len(sub) > self._max_sub:
                sub = self._bound_sub(sub)
            line = (
                f'{prefix},"time":"{stamp[1]}.{int((now - second) * 1000):03d}Z","jti":{_quote(issued.jti)}'
                f',"sub":{_quote(sub) if sub is not None else "null"},"aud":{_quote(aud) if type(aud) is str else _encode(aud)}'
                f',"kid":{_quote(issued.kid)},"exp":{int(issued.expires_at)}}}\n'
            )
        stream = self._stream or sys.stdout
        with OUTPUT_LOCK:
            stream.write(line)
            stream.flush()

    def _load_bounded_sub(self, sub: str) -> str | None:
        """The issuance core's ``bounded_sub`` and its bound, looked up once (an import statement costs ~1.7 µs per token)."""
        # Measured reason: the issuance service module pulls in the issuance core (~70 ms, python -X importtime),
        # which the rotate function (whose lines never hold a token) need not load; the sign handler loads it at INIT.
        from jwks_rotator.core.issuance.service import MAX_AUDIT_SUB_CHARS, bounded_sub

        self._bound_sub = bounded_sub
        self._max_sub = MAX_AUDIT_SUB_CHARS
        return bounded_sub(sub)

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

    @staticmethod
    def _prefix(version: str, prefixes: dict[tuple[str | None, ...], str], record: AuditRecord) -> str:
        """The line's fixed part, up to the time, encoded once per version and record fields (at most 256 kept)."""
        if len(prefixes) >= _MAX_PREFIXES:
            prefixes.clear()
        fixed = {
            "type": AUDIT_TYPE,
            "function_version": version,
            "decision": record.decision,
            "error": record.error,
            "reason": record.reason,
            "caller": record.caller,
            "role": record.role,
            "profile": record.profile,
            "policy": record.policy,
        }
        prefix = prefixes[record[:7]] = _encode(fixed)[:-1]
        return prefix

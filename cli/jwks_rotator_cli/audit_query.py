"""Which audit lines answer a question: parsing ``--since``, the server-side filter pattern, the client-side check.

Pure (no AWS, no product core), so the rules can be tested on their own. An
audit line is a JSON object with ``"type": "jwks-rotator.audit"`` (written by
the sign function's audit log, one per decision, and by the rotate function's,
one per operation with ``"function": "rotate"``). CloudWatch Logs filters
with a JSON pattern; a server that ignores it (moto returns every event) must
change nothing, so every line is checked again here before it is shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

AUDIT_TYPE = "jwks-rotator.audit"
"""The ``type`` of every audit line (the sign function's audit log writes it)."""
AUDIT_SUB_BOUND = 128
"""Longer subjects are cut to this many characters in an audit line, the last one ``…``."""
DECISIONS = ("issued", "refused", "performed", "failed")
"""The sign function decides issued or refused; the rotate function performed, refused or failed."""
OPERATIONS = ("tick", "rotate-now", "revoke", "publish", "promote", "step-down")
"""The rotate function's operations an audit line may name."""
MAX_PATTERN_CHARS = 1024  # CloudWatch Logs' limit on a filter pattern

_DURATION = re.compile(r"^\s*((?:\d+(?:\.\d+)?\s*[smhdw]\s*)+)$", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_IAM_ROLE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:[^/]*/)*(?P<name>[^/]+)$")
_PATTERN_SAFE = re.compile(r'^[^"\\*\x00-\x1f]{1,256}$')  # values quoted in a JSON pattern as they are


def parse_when(text: str, now: datetime) -> datetime:
    """``2h``, ``30m``, ``1d12h`` (that long before ``now``) or an ISO 8601 time (no zone: UTC), as an aware datetime."""
    duration = _DURATION.match(text)
    if duration:
        seconds = sum(float(n) * _UNIT_SECONDS[unit.lower()] for n, unit in _DURATION_PART.findall(duration.group(1)))
        return now - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a time (2026-11-26T10:00:00Z) nor a duration (2h, 30m, 1d)") from None
    return when.astimezone(UTC) if when.tzinfo is not None else when.replace(tzinfo=UTC)


def caller_field(arn: str) -> tuple[str, str]:
    """The audit field a caller ARN is compared with and the value: an IAM role matches ``role``, anything else ``caller``.

    A role ARN loses its path, as in the audit line (STS does not say the path).
    """
    role = _IAM_ROLE.match(arn.strip())
    if role:
        return "role", f"arn:{role['partition']}:iam::{role['account']}:role/{role['name']}"
    return "caller", arn.strip()


def parse_audit_line(message: str) -> dict[str, Any] | None:
    """The audit line's fields, or None when the message is not an audit line."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("type") == AUDIT_TYPE else None


def record_time(record: Mapping[str, Any]) -> datetime | None:
    """The decision's time (the line's ``time``), or None when it has none."""
    value = record.get("time")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def sub_matches(recorded: Any, wanted: str) -> bool:
    """Equal, or the line holds ``wanted`` cut to :data:`AUDIT_SUB_BOUND` characters."""
    if not isinstance(recorded, str):
        return False
    if recorded == wanted:
        return True
    return len(recorded) == AUDIT_SUB_BOUND and recorded.endswith("…") and len(wanted) >= AUDIT_SUB_BOUND and wanted.startswith(recorded[:-1])


@dataclass(frozen=True)
class AuditQuery:
    """Decisions made between ``since`` and ``until`` (inclusive), narrowed by any of the other fields."""

    since: datetime
    until: datetime
    jti: str | None = None
    caller: str | None = None
    sub: str | None = None
    decision: str | None = None
    operation: str | None = None
    kid: str | None = None

    def __post_init__(self) -> None:
        if self.since > self.until:
            raise ValueError(f"since ({self.since:%Y-%m-%dT%H:%M:%SZ}) is after until ({self.until:%Y-%m-%dT%H:%M:%SZ})")
        if self.decision is not None and self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
        if self.operation is not None and self.operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")

    def equalities(self) -> list[tuple[str, str]]:
        """The fields an audit line must hold exactly (``sub`` aside: it may be cut)."""
        fields = [("jti", self.jti), ("decision", self.decision), ("operation", self.operation), ("kid", self.kid)]
        out = [(name, value) for name, value in fields if value is not None]
        if self.caller is not None:
            out.append(caller_field(self.caller))
        return out

    def matches(self, record: Mapping[str, Any], event_time: datetime | None = None) -> bool:
        """Whether an audit line answers the query; the event's timestamp decides the window (the line's own ``time``,
        which is whatever its writer printed, only for an event without one)."""
        if record.get("type") != AUDIT_TYPE:
            return False
        if any(record.get(name) != value for name, value in self.equalities()):
            return False
        if self.sub is not None and not sub_matches(record.get("sub"), self.sub):
            return False
        when = event_time or record_time(record)  # CloudWatch's timestamp; the line's text only when there is none
        return when is not None and self.since <= when <= self.until

    def filter_pattern(self) -> str:
        """A CloudWatch Logs JSON filter pattern selecting (at least) the matching lines.

        Values a pattern cannot carry as they are (quotes, backslashes, ``*``, control
        characters, very long) are left to the client-side check.
        """
        terms = [("type", AUDIT_TYPE), *self.equalities()]
        if self.sub is not None and len(self.sub) < AUDIT_SUB_BOUND:
            terms.append(("sub", self.sub))
        pattern = ""
        for name, value in terms:
            if not _PATTERN_SAFE.match(value):
                continue
            candidate = f'{pattern} && $.{name} = "{value}"' if pattern else f'$.{name} = "{value}"'
            if len(candidate) + 4 > MAX_PATTERN_CHARS:
                break
            pattern = candidate
        return "{ " + pattern + " }"

    def time_range_ms(self, slack: timedelta = timedelta(minutes=1)) -> tuple[int, int]:
        """``startTime``/``endTime`` for the server: the window widened by ``slack`` (a line's event is stamped as it is delivered)."""
        return int((self.since - slack).timestamp() * 1000), int((self.until + slack).timestamp() * 1000)


def function_log_group(function_name: str) -> str:
    """``/aws/lambda/NAME`` for a function given by name, ``NAME:QUALIFIER`` or ARN."""
    name = function_name.strip()
    if name.startswith("arn:"):
        parts = name.split(":")
        name = parts[6] if len(parts) > 6 else name
    return "/aws/lambda/" + name.split(":")[0]


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """A CloudWatch Logs event's timestamp as an aware datetime."""
    stamp = event.get("timestamp")
    return datetime.fromtimestamp(stamp / 1000, UTC) if isinstance(stamp, (int, float)) else None


def select(events: Iterable[Mapping[str, Any]], query: AuditQuery) -> list[dict[str, Any]]:
    """The audit lines among ``events`` that answer ``query``, oldest first; every other event is skipped."""
    found: list[tuple[datetime, int, dict[str, Any]]] = []
    for index, event in enumerate(events):
        record = parse_audit_line(str(event.get("message", "")))
        stamp = event_time(event)
        if record is not None and query.matches(record, stamp):
            if stamp is not None:  # shown and sorted by the event's timestamp; the line's own kept as line_time
                record = {**record, "time": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
                          "line_time": record.get("time")}
            found.append((stamp or record_time(record) or query.since, index, record))
    found.sort(key=lambda item: item[:2])
    return [record for _, _, record in found]

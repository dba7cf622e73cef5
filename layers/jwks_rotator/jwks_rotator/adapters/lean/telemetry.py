"""The sign function's logs and metrics, written directly: JSON log lines and EMF records, no powertools.

Importing aws-lambda-powertools' Logger and Metrics costs ~25 ms at every cold start (and pulls in botocore); the sign
function writes the same two shapes itself, with the same fields, so its logs and metrics read exactly as the rotate
function's:

* a log line: ``{"level", "location", "message", "timestamp", "service", "function", ...extra}`` (powertools' default
  keys and order; ``extra`` carries kid, trigger, outcome, reason, error: never a token, a claim value, a secret value
  or key material). The level comes from ``POWERTOOLS_LOG_LEVEL`` (else ``AWS_LAMBDA_LOG_LEVEL``, else INFO).
* an EMF record: ``{"_aws": {"Timestamp", "CloudWatchMetrics": [{"Namespace", "Dimensions": [["service"]], "Metrics":
  [{"Name", "Unit"}]}]}, "service", name: [value]}``, at most 100 metrics per record (CloudWatch's limit), as
  powertools writes it. ``POWERTOOLS_METRICS_DISABLED=true`` drops records.

Both write one line per call to stdout (Lambda sends it to the function's log group) unless given another stream,
under :data:`OUTPUT_LOCK`, which the audit writer shares: invocations running at once on threads never interleave two
lines.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

SERVICE = "jwks-rotator"
NAMESPACE = "JwksRotator"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
MAX_METRICS_PER_RECORD = 100
OUTPUT_LOCK = threading.Lock()
"""Held while one line (or one EMF flush) is written and flushed: lines from concurrent invocations stay whole."""
# A fork waits for a line being written and the copy starts with the lock free (no thread of the copy holds it).
os.register_at_fork(before=OUTPUT_LOCK.acquire, after_in_parent=OUTPUT_LOCK.release, after_in_child=OUTPUT_LOCK.release)

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str).encode


def _level_from(environ: Mapping[str, str]) -> int:
    name = (environ.get("POWERTOOLS_LOG_LEVEL") or environ.get("AWS_LAMBDA_LOG_LEVEL") or "INFO").upper()
    return LEVELS.get(name, LEVELS["INFO"])


class JsonLogger:
    """Structured JSON lines for one function, in powertools' shape (see module doc)."""

    def __init__(
        self,
        function: str,
        *,
        stream: TextIO | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.function = function
        self.stream = stream  # None: sys.stdout at each write (tests and the local stack swap it)
        self.level = _level_from(environ)
        self._clock = clock

    def debug(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._log(10, "DEBUG", message, extra)

    def info(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._log(20, "INFO", message, extra)

    def warning(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._log(30, "WARNING", message, extra)

    def error(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        self._log(40, "ERROR", message, extra)

    def _log(self, level: int, name: str, message: str, extra: Mapping[str, Any] | None) -> None:
        if level < self.level:
            return
        frame = sys._getframe(2)
        now = self._clock()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S") + f",{int(now * 1000) % 1000:03d}+0000"
        record = {
            "level": name,
            "location": f"{frame.f_code.co_name}:{frame.f_lineno}",
            "message": message,
            "timestamp": stamp,
            "service": SERVICE,
            "function": self.function,
        }
        if extra:
            record.update(extra)
        line = _encode(record) + "\n"
        stream = self.stream or sys.stdout
        with OUTPUT_LOCK:
            stream.write(line)
            stream.flush()


class EmfMetrics:
    """Counts written as CloudWatch embedded metric format records, in powertools' shape (see module doc)."""

    def __init__(
        self,
        *,
        namespace: str = NAMESPACE,
        stream: TextIO | None = None,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.stream = stream
        self.disabled = (environ.get("POWERTOOLS_METRICS_DISABLED") or "").lower() in ("1", "true", "yes", "on")
        self._clock = clock
        self._values: dict[str, float] = {}

    def add_count(self, name: str, value: float) -> None:
        """Add ``value`` to the count called ``name`` (unit ``Count``) until the next flush."""
        self._values[name] = self._values.get(name, 0.0) + float(value)

    def clear_metrics(self) -> None:
        """Drop every count not flushed yet."""
        self._values.clear()

    def flush_metrics(self) -> None:
        """Write the counts (one record per 100 metrics) and clear them; nothing when there are none or metrics are off."""
        values, self._values = self._values, {}
        if not values or self.disabled:
            return
        timestamp = int(self._clock() * 1000)
        names = list(values)
        lines = []
        for start in range(0, len(names), MAX_METRICS_PER_RECORD):
            chunk = names[start : start + MAX_METRICS_PER_RECORD]
            record: dict[str, Any] = {
                "_aws": {
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [
                        {"Namespace": self.namespace, "Dimensions": [["service"]], "Metrics": [{"Name": n, "Unit": "Count"} for n in chunk]}
                    ],
                },
                "service": SERVICE,
            }
            for name in chunk:
                record[name] = [values[name]]
            lines.append(_encode(record) + "\n")
        stream = self.stream or sys.stdout
        with OUTPUT_LOCK:
            stream.write("".join(lines))
            stream.flush()

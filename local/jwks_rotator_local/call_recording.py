"""A local stack's functions' AWS calls, recorded at the local cloud's front and written to a file when it stops.

:class:`FunctionCallRecording` is the hook :class:`~.front.AwsFront` calls for every request (the
:mod:`.call_record` parser behind a filter). Only the **functions'** calls are kept: a request counts when
its SigV4 access key id is one the local stack issued to a function (:meth:`add_function`), and it is
recorded under that role's ARN; every other request (test harness, operator CLI, other callers) is only
counted (``left_out``), because the least-privilege check judges the functions' roles only.

:meth:`write` puts one JSON document per stack into the directory (``STACK-PID-N.json``), which
``tests/privilege/matrix.py --recorded DIR`` decides against that file's own deployment. Switched on by
``LocalStack(record_calls=DIR)`` or :data:`RECORD_ENV`; when off no hook is attached and nothing is parsed.
The file format and the secrets extension's recorded reads: docs/design/local-cloud.md, "Recorded calls".
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .call_record import CallRecorder, CloudFacts, credential_scope

if TYPE_CHECKING:
    from .template_stack import DeployedTemplate

RECORD_ENV = "JWKS_ROTATOR_RECORD_CALLS"
"""A directory: every LocalStack started without ``record_calls`` records its functions' calls into it."""
FORMAT = "jwks-rotator-recorded-calls/1"
_sequence = itertools.count(1)


def recording_directory(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """``explicit``, else :data:`RECORD_ENV` (unset or empty: recording off)."""
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(RECORD_ENV, "")
    return Path(value) if value else None


class FunctionCallRecording:
    """Records the requests signed by the functions' own credentials; counts the rest."""

    def __init__(self, directory: Path, facts: CloudFacts) -> None:
        self.directory = directory
        self.recorder = CallRecorder(facts)
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # access key id -> role ARN
        self.requests = 0
        self.function_requests = 0
        self.left_out = 0

    def add_function(self, role_arn: str, access_key_id: str) -> None:
        """A function's credentials: requests they sign are recorded under ``role_arn``."""
        with self._lock:
            self._keys[access_key_id] = role_arn
        self.recorder.name_principal(access_key_id, role_arn)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        """The front's hook."""
        access_key, _ = credential_scope(path, headers)
        with self._lock:
            self.requests += 1
            mine = access_key in self._keys
            if mine:
                self.function_requests += 1
            else:
                self.left_out += 1
        if mine:
            self.recorder(method, path, headers, body)

    def document(self, deployed: DeployedTemplate) -> dict[str, Any]:
        """What :meth:`write` writes: identical calls once (with a count), the deployment they ran against."""
        counts: dict[str, int] = {}
        for call in self.recorder.calls:
            line = json.dumps(call.to_dict(), sort_keys=True)
            counts[line] = counts.get(line, 0) + 1
        calls = [{**json.loads(line), "count": n} for line, n in counts.items()]
        with self._lock:
            return {
                "format": FORMAT, "stack": deployed.stack_name, "requests": self.requests,
                "function_requests": self.function_requests, "left_out": self.left_out,
                "unparsed": list(self.recorder.unparsed), "deployment": deployed.as_dict(), "calls": calls,
            }

    def write(self, deployed: DeployedTemplate) -> Path:
        """Write this stack's file into the directory (created if missing); returns its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{deployed.stack_name}-{os.getpid()}-{next(_sequence)}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.document(deployed), sort_keys=True) + "\n", encoding="utf-8")
        temporary.replace(path)
        return path

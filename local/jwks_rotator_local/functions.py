"""The Lambda handlers in ``functions/`` as in-process callables, and the scheduled event the rotate function gets.

Used by the local stack, the tests and the benchmarks. ``FUNCTIONS_DIR`` is the
source checkout's ``functions/`` (this package is installed editable from it).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from jwks_rotator_cli.local_state import DEFAULT_REGION

from .lambda_api import ACCOUNT_ID

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"

Handler = Callable[[Any, Any], Any]


LOCAL_MARKER = ".jwks-rotator-local"
"""The file that marks a function's code directory as the local stack's (jwks_rotator.adapters.lean.sts_identity):
only then does the function honour STS_ENDPOINT_URL, STS_CA_BUNDLE and a policy file outside its directory. It is
git-ignored, and ``make build`` leaves it out of the artifact."""


def mark_local(code_dir: Path) -> None:
    """Add the local marker to a function's code directory (idempotent)."""
    marker = code_dir / LOCAL_MARKER
    if not marker.exists():
        marker.write_text("This function runs on the jwks-rotator local stack. make build leaves this file out.\n")


def load_function_module(function_dir: str, module_name: str | None = None) -> ModuleType:
    """A fresh import of ``functions/<function_dir>/app.py`` under a module name of its own.

    Every handler module keeps its settings and clients at module level (as a
    warm Lambda container does), so each call gives a new, cold copy that reads
    the environment as it is now.
    """
    mark_local(FUNCTIONS_DIR / function_dir)
    path = FUNCTIONS_DIR / function_dir / "app.py"
    name = module_name or f"jwks_rotator_{function_dir}_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    return module


def load_handler(function_dir: str, module_name: str, *, keep_metrics: bool) -> Handler:
    """``functions/<dir>/app.py``'s ``handler``, imported under ``module_name``.

    Without ``keep_metrics`` the function's metrics are dropped after each call:
    with POWERTOOLS_METRICS_DISABLED, powertools skips the flush but keeps the
    values, and prints them anyway once 100 accumulate; the local stack wants none.
    """
    module = load_function_module(function_dir, module_name)
    handler: Handler = module.handler
    if keep_metrics:
        return handler

    def run(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            module.metrics.clear_metrics()

    return run


def scheduled_event(region: str = DEFAULT_REGION) -> dict[str, Any]:
    """An EventBridge scheduled event, as the template's schedule sends it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/jwks-rotator-local-schedule"],
        "detail": {},
    }

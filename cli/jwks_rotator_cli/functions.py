"""Import the Lambda handlers in ``functions/`` as modules, for the local stack, tests and benchmarks."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_function_module(function_dir: str, module_name: str | None = None) -> ModuleType:
    """A fresh import of ``functions/<function_dir>/app.py`` under a module name of its own.

    Every handler module keeps its settings and clients at module level (as a
    warm Lambda container does), so each call gives a new, cold copy that reads
    the environment as it is now.
    """
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

"""End-to-end soak of the local stack: signing callers, caching verifiers (PyJWT, jose), rotation and injected faults.

``python -m soak`` runs it per algorithm and writes the summary; ``tests/soak`` runs a short one.
"""

from .config import SoakConfig
from .harness import run_soak
from .proxy import FaultProxy, FaultRates

__all__ = ["FaultProxy", "FaultRates", "SoakConfig", "run_soak"]

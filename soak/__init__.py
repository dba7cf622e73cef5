"""End-to-end soak of the local stack: signing, caching verifiers, rotation and injected faults (issue 5)."""

from .harness import SoakConfig, run_soak
from .proxy import FaultProxy, FaultRates

__all__ = ["FaultProxy", "FaultRates", "SoakConfig", "run_soak"]

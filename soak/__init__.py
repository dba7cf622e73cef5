"""End-to-end soak of the local stack: signing callers, caching verifiers (PyJWT, jose), rotation and injected faults.

``python -m soak`` runs it per algorithm and writes the summary; ``python -m soak --regions A,B`` runs the soak in
several regions (:mod:`soak.regions`); ``tests/soak`` runs a short one of each.
"""

from .config import SoakConfig
from .harness import run_soak
from .proxy import FaultProxy, FaultRates
from .regions import RegionsConfig, run_regions_soak

__all__ = ["FaultProxy", "FaultRates", "RegionsConfig", "SoakConfig", "run_regions_soak", "run_soak"]

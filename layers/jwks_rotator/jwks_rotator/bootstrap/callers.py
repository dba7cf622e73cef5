"""The caller verifier both functions use: proofs replayed to the function's own STS endpoint over HTTP.

The STS endpoint comes from the function's region (``AWS_REGION``) or the ``STS_ENDPOINT_URL`` override, never
from a request; an unusable endpoint raises :class:`~jwks_rotator.core.errors.ConfigurationError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from jwks_rotator.adapters.lean.sts_identity import StsEndpoint, StsIdentityReplayer
from jwks_rotator.core.callers.proof import DEFAULT_MAX_AGE
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.settings import Settings


def build_caller_verifier(
    settings: Settings, environ: Mapping[str, str], *, on_proof_event: Callable[[str], None] | None = None, local: bool = False
) -> CallerVerifier:
    """A verifier replaying proofs to AWS's STS for the function's region (``STS_ENDPOINT_URL`` only when ``local``)."""
    endpoint = StsEndpoint.from_environment(environ, local=local)
    return CallerVerifier(
        StsIdentityReplayer.for_endpoint(endpoint),
        wall_clock=time.time,
        monotonic_clock=time.monotonic,
        max_age=DEFAULT_MAX_AGE,
        leeway=settings.clock_skew_leeway.total_seconds(),
        sts_host=endpoint.host,
        sts_region=endpoint.region,
        on_event=on_proof_event,
    )

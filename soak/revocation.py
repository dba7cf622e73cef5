"""The soak's last step: revoke the active key and see Envoy refuse its token within the bound docs/verifiers.md gives.

After the traffic has drained, one more token is signed (the active key), Envoy must accept it, and the key is
revoked through the second rotator's rotation service (the stack's own resources, through the proxy: the keyring
drops the kid and keeps its tombstone, and the JWKS is published and invalidated). The bound is Envoy's
``cache_duration`` + ``jwks-max-age`` + one fetch (``FETCH_MARGIN``). The probe notes when Envoy first refused the
token (a figure for the report, polled every ``POLL`` s) and, what the check uses, whether it is refused once
the bound has passed.
"""

from __future__ import annotations

import time
from typing import Any

from jwks_rotator.core.settings import Settings
from jwks_rotator_client import SignClient
from jwks_rotator_testkit.envoy import EnvoyVerifier

from .config import AUDIENCE
from .rotators import SecondRotator
from .traffic import ENVOY_PROVIDER, ENVOY_REASONS

FETCH_MARGIN = 1.0
POLL = 0.05
REVOKE_ATTEMPTS = 5


def probe_envoy_revocation(client: SignClient, envoy: EnvoyVerifier, second: SecondRotator, settings: Settings, cache: float) -> dict[str, Any]:
    """Sign (a subject of the soak policy's pattern that no caller uses), check, revoke, then check until the bound; the figures as a dict."""
    body = client.sign({"sub": "soak-9999-1", "aud": AUDIENCE, "ttl": int(settings.max_token_ttl.total_seconds())})
    if "token" not in body:
        return {"accepted_before": False, "refused_at_bound": False, "error": f"sign refused: {body.get('error')}"}
    token, kid = str(body["token"]), str(body["kid"])
    bound = cache + settings.jwks_max_age.total_seconds() + FETCH_MARGIN
    accepted_before = envoy.check(ENVOY_PROVIDER, token).ok
    error = ""
    for _ in range(REVOKE_ATTEMPTS):  # the proxy may still fail a call; a revoke is safe to repeat
        try:
            second.service.revoke(kid)
            break
        except Exception as exc:  # an injected fault, reported below if every attempt failed
            error = f"{type(exc).__name__}"
    else:
        return {"accepted_before": accepted_before, "refused_at_bound": False, "bound_s": bound, "error": f"revoke failed: {error}"}
    revoked_at = time.time()
    first_refused: float | None = None
    while time.time() < revoked_at + bound:
        answer = envoy.check(ENVOY_PROVIDER, token)
        if not answer.ok and first_refused is None:
            first_refused = time.time() - revoked_at
        time.sleep(POLL)
    final = envoy.check(ENVOY_PROVIDER, token)
    unexpired = time.time() < int(body["expires_at"])
    reason = ENVOY_REASONS.get(final.reason, final.reason)
    return {
        "accepted_before": accepted_before,
        "bound_s": round(bound, 2),
        "first_refused_after_s": None if first_refused is None else round(first_refused, 2),
        "refused_at_bound": not final.ok and reason == "kid not in JWKS",
        "token_unexpired_at_bound": unexpired,
        "reason": reason,
    }

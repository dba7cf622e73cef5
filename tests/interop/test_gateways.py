"""Envoy's ``jwt_authn`` and Node's jwks-rsa + jsonwebtoken check the signer's tokens across rotations and revocations.

One deployment per algorithm (the template's resources on the moto server, the local edge, the sign handler
reached through ``SignClient``; the rotator on a fake clock) and one Envoy for the module, with two providers
per algorithm: ``ALG-default`` (Envoy's default ``cache_duration``, 600 s) and ``ALG-short`` (``SHORT_CACHE``,
standing in for a cache sized by docs/verifiers.md). ``async_fetch`` and a ``retry_policy`` are on, as that page
recommends. Expected results, each asserted below and recorded for docs/compatibility.md:

* **bad tokens** (expired, tampered, ``alg: none``, HS256 with the public key, unknown kid, a published kid with a
  foreign key, wrong audience or issuer, not yet valid): Envoy answers 401 (403 for the audience) with the
  reason named in ``ENVOY_REFUSALS``; jwks-rsa/jsonwebtoken with the error in ``JWKS_RSA_REFUSALS``.
* **scheduled rotation**: the next key is published a lead ahead, so even the default-cache Envoy (which has
  not refetched since it started) and jwks-rsa accept the new key's tokens at once, and the old key's still.
* **rotate --now**: the new key was never pre-published and Envoy does not refetch for an unknown kid: the
  default-cache provider refuses its tokens for up to 600 s, the short one accepts them once
  ``SHORT_CACHE + jwks-max-age + FETCH_MARGIN`` has passed; jwks-rsa fetches for the unknown kid.
* **revocation**: ``SHORT_CACHE + jwks-max-age + FETCH_MARGIN`` after the revoke, Envoy (short), PyJWT, jwcrypto,
  jose and jwks-rsa with caches of ``SHORT_CACHE`` refuse the revoked key's tokens; the default-cache Envoy accepts
  those of a revoked key it had cached until its ``cache_duration`` (600 s). Only these bounds are waited for;
  outcomes are checked after the wait, never durations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from jwcrypto import jwt as jwcrypto_jwt

from jwks_rotator_testkit.deploy import create_test_resources
from jwks_rotator_testkit.envoy import EnvoyProvider, EnvoyVerifier
from jwks_rotator_testkit.verifiers import JwksRsaVerifier, NodeVerifier, jwcrypto_verify, pyjwt_verify

from . import compat
from .conftest import AUDIENCE, Deployment, InteropCaller, make_deployment
from .support import ALGORITHMS, NODE_DIR, fresh_private_key, private_key_from_jwk, sign_compact, split_token, thumbprint_kid
from .test_bad_tokens import BUILDERS, Forge

pytestmark = pytest.mark.interop

SHORT_CACHE = 1.0
"""Seconds: the scaled caches (Envoy's ``cache_duration``, PyJWT's lifespan, jose's and jwks-rsa's cacheMaxAge)."""
JWKS_MAX_AGE = timedelta(seconds=1)
FETCH_MARGIN = 2.0
"""Seconds allowed for a background fetch (one request to the loopback edge) after a cache runs out."""
DEFAULT_ENVOY_CACHE = 600.0
"""Envoy's own default ``cache_duration``."""
JWKS_RSA_DEFAULT_CACHE_MS = 36_000_000
"""jwks-rsa's default ``cacheMaxAge`` (10 h)."""

UNKNOWN_KID = "Jwks doesn't have key to match kid or alg from Jwt"
BAD_SIGNATURE = "Jwt verification fails"
ENVOY_REFUSALS: dict[str, tuple[int, str] | None] = {
    "control_hand_signed": None,
    "expired": (401, "Jwt is expired"),
    "not_yet_valid": (401, "Jwt not yet valid"),
    "wrong_audience": (403, "Audiences in Jwt are not allowed"),
    "wrong_issuer": (401, "Jwt issuer is not configured"),
    "tampered_payload": (401, BAD_SIGNATURE),
    "unknown_key_with_published_kid": (401, BAD_SIGNATURE),
    "alg_none": (401, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
    "hs256_public_key_pem": (401, UNKNOWN_KID),
    "hs256_public_jwk_json": (401, UNKNOWN_KID),
    "kid_not_in_jwks_unknown_key": (401, UNKNOWN_KID),
    "kid_not_in_jwks_real_key": (401, UNKNOWN_KID),
}
JWKS_RSA_NO_KEY = ("JsonWebTokenError", "error in secret or public key callback: Unable to find a signing key that matches")
"""jwks-rsa's SigningKeyNotFoundError for a kid not in the JWKS (fetched again first), as jsonwebtoken wraps it."""
JWKS_RSA_REFUSALS: dict[str, tuple[str, str] | None] = {
    "control_hand_signed": None,
    "expired": ("TokenExpiredError", "jwt expired"),
    "not_yet_valid": ("NotBeforeError", "jwt not active"),
    "wrong_audience": ("JsonWebTokenError", "jwt audience invalid"),
    "wrong_issuer": ("JsonWebTokenError", "jwt issuer invalid"),
    "tampered_payload": ("JsonWebTokenError", "invalid signature"),
    "unknown_key_with_published_kid": ("JsonWebTokenError", "invalid signature"),
    "alg_none": ("JsonWebTokenError", "jwt signature is required"),
    "hs256_public_key_pem": ("JsonWebTokenError", "invalid algorithm"),
    "hs256_public_jwk_json": ("JsonWebTokenError", "invalid algorithm"),
    "kid_not_in_jwks_unknown_key": JWKS_RSA_NO_KEY,
    "kid_not_in_jwks_real_key": JWKS_RSA_NO_KEY,
}
JWKS_RSA_UNSUPPORTED = ("Error", 'Unknown key type "ed25519".')
"""What jsonwebtoken 9 answers for a valid EdDSA token with its Ed25519 key: it verifies no EdDSA."""
assert ENVOY_REFUSALS.keys() == JWKS_RSA_REFUSALS.keys() == BUILDERS.keys()


@dataclass
class Gateways:
    """The module's deployments (by algorithm), its Envoy and its jwks-rsa process."""

    deployments: dict[str, Deployment]
    envoy: EnvoyVerifier
    jwks_rsa: JwksRsaVerifier

    def envoy_check(self, alg: str, cache: str, token: str) -> Any:
        return self.envoy.check(f"{alg.lower()}-{cache}", token)

    def jwks_rsa_check(self, alg: str, token: str, *, cache_ms: int, client: str) -> dict[str, Any]:
        d = self.deployments[alg]
        return self.jwks_rsa.verify(token, alg=alg, expect=d.expect, jwks_url=d.jwks_url, cache_max_age_ms=cache_ms, client=client)


def jwks_rsa_supports(alg: str) -> bool:
    return compat.expected("jwks-rsa", alg, "expired") != compat.UNSUPPORTED


@pytest.fixture(scope="module")
def gateways(moto_endpoint: str, interop_caller: InteropCaller, node_modules: Any) -> Iterator[Gateways]:
    deployments: dict[str, Deployment] = {}
    jwks_rsa = JwksRsaVerifier(NODE_DIR)
    try:
        for alg in ALGORITHMS:
            resources = create_test_resources(moto_endpoint, stack_prefix="jwks-rotator-gateways")
            deployments[alg] = make_deployment(
                moto_endpoint, alg, interop_caller,
                secret_id=resources.secret_id, bucket=resources.bucket, distribution_id=resources.distribution_id,
                extra_settings={"revocation_parameter": resources.revocation_parameter, "jwks_max_age": f"{int(JWKS_MAX_AGE.total_seconds())}s"},
            )  # fmt: skip
        providers = [
            EnvoyProvider(f"{alg.lower()}-{cache}", issuer=d.issuer, audience=AUDIENCE, jwks_url=d.jwks_url, cache_duration=seconds)
            for alg, d in deployments.items()
            for cache, seconds in (("default", DEFAULT_ENVOY_CACHE), ("short", SHORT_CACHE))
        ]
        with EnvoyVerifier(providers) as envoy:
            yield Gateways(deployments, envoy, jwks_rsa)
    finally:
        jwks_rsa.close()
        for d in deployments.values():
            d.edge.stop()


def forge_for(d: Deployment) -> Forge:
    active = d.active_key()
    published = {k["kid"]: k for k in d.jwks()["keys"]}
    unknown = fresh_private_key(d.alg)
    assert thumbprint_kid(unknown) not in published
    return Forge(d, active.kid, private_key_from_jwk(active.private_jwk), published[active.kid], d.issue(sub="real-user", ttl=600)["token"], unknown)


def retired_token(d: Deployment, key: Any) -> str:
    """A token the retired ``key`` signed (its private half from the keyring): such tokens are still live in production."""
    now = int(time.time())
    claims = {"iss": d.issuer, "sub": "signed-by-retired", "aud": AUDIENCE, "iat": now, "nbf": now - 60, "exp": now + 600, "jti": "gw-retired"}
    return sign_compact({"alg": d.alg, "typ": "JWT", "kid": key.kid}, claims, d.alg, private_key_from_jwk(key.private_jwk))


def record_case(verifier: str, alg: str, case: str, outcome: str) -> None:
    if any(case in checks for checks in compat.BEHAVIOURS.values()):
        compat.record(verifier, alg, case, outcome)


def wait_until(moment: float) -> None:
    while (remaining := moment - time.time()) > 0:
        time.sleep(remaining)


def signer_stale(d: Deployment, since: float) -> float:
    """When the sign handler's key cache, read no later than ``since``, has gone stale."""
    return since + d.settings.signer_cache_ttl.total_seconds() + 0.05


def cache_bound(since: float) -> float:
    """When every ``SHORT_CACHE`` verifier has refetched what the edge serves after ``since``."""
    return since + SHORT_CACHE + JWKS_MAX_AGE.total_seconds() + FETCH_MARGIN


# --- bad tokens ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forges(gateways: Gateways) -> dict[str, Forge]:
    return {alg: forge_for(d) for alg, d in gateways.deployments.items()}


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("case", list(BUILDERS))
def test_envoy_refuses_bad_tokens(case: str, alg: str, gateways: Gateways, forges: dict[str, Forge]) -> None:
    token = BUILDERS[case](forges[alg])
    want = ENVOY_REFUSALS[case]
    for cache in ("default", "short"):
        answer = gateways.envoy_check(alg, cache, token)
        if want is None:
            assert answer.ok and answer.claims["sub"] == "forged-user", f"{cache}: {answer}"
        else:
            assert (answer.status, answer.reason) == want, f"{case} ({cache}): {answer}"
    if want is not None:
        record_case("Envoy", alg, case, compat.REFUSED)


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("case", list(BUILDERS))
def test_jwks_rsa_refuses_bad_tokens(case: str, alg: str, gateways: Gateways, forges: dict[str, Forge]) -> None:
    token = BUILDERS[case](forges[alg])
    answer = gateways.jwks_rsa_check(alg, token, cache_ms=JWKS_RSA_DEFAULT_CACHE_MS, client="bad-tokens")
    if not jwks_rsa_supports(alg):  # every token refused, a valid one because the algorithm is not supported
        control = gateways.jwks_rsa_check(alg, BUILDERS["control_hand_signed"](forges[alg]), cache_ms=JWKS_RSA_DEFAULT_CACHE_MS, client="bad-tokens")
        assert not answer["ok"] and (control["name"], control["message"]) == JWKS_RSA_UNSUPPORTED, (answer, control)
        record_case("jwks-rsa", alg, case, compat.UNSUPPORTED)
        return
    want = JWKS_RSA_REFUSALS[case]
    if want is None:
        assert answer["ok"] and answer["claims"]["sub"] == "forged-user", answer
        return
    assert not answer["ok"] and answer["name"] == want[0] and want[1] in answer["message"], f"{case}: {answer}"
    record_case("jwks-rsa", alg, case, compat.REFUSED)


# --- rotations and revocation ---------------------------------------------------------------


def test_scheduled_rotation_needs_no_refetch(gateways: Gateways) -> None:
    """The next key is published a lead ahead: Envoy's default 600 s cache already holds it when it starts signing."""
    old: dict[str, dict[str, Any]] = {}
    for alg, d in gateways.deployments.items():
        keyring = d.keyring()
        old_kid = keyring.active.kid  # type: ignore[union-attr]
        (next_kid,) = [k.kid for k in keyring.keys if k.state.value == "pending"]
        old[alg] = {"token": d.issue(sub="before-rotation", ttl=600), "old_kid": old_kid, "next_kid": next_kid}
        for cache in ("default", "short"):
            assert gateways.envoy_check(alg, cache, old[alg]["token"]["token"]).ok
        if jwks_rsa_supports(alg):
            assert gateways.jwks_rsa_check(alg, old[alg]["token"]["token"], cache_ms=JWKS_RSA_DEFAULT_CACHE_MS, client="scheduled")["ok"]
    for d in gateways.deployments.values():
        d.clock.advance(d.settings.rotation_period)
        changes = {(c.kind, c.kid) for c in d.tick().changes}
        assert ("activated", old[d.alg]["next_kid"]) in changes
    rotated_at = time.time()
    wait_until(max(signer_stale(d, rotated_at) for d in gateways.deployments.values()))
    for alg, d in gateways.deployments.items():
        new = d.issue(sub="after-rotation", ttl=600)
        assert new["kid"] == old[alg]["next_kid"]
        for cache in ("default", "short"):
            for token, sub in ((new, "after-rotation"), (old[alg]["token"], "before-rotation")):
                answer = gateways.envoy_check(alg, cache, token["token"])
                assert answer.ok and answer.claims["sub"] == sub, f"{alg} {cache}: {answer}"
        compat.record("Envoy", alg, "scheduled_rotation", compat.ACCEPTED)
        if jwks_rsa_supports(alg):
            for token, sub in ((new, "after-rotation"), (old[alg]["token"], "before-rotation")):
                answer = gateways.jwks_rsa_check(alg, token["token"], cache_ms=JWKS_RSA_DEFAULT_CACHE_MS, client="scheduled")
                assert answer["ok"] and answer["claims"]["sub"] == sub, f"{alg}: {answer}"
            compat.record("jwks-rsa", alg, "scheduled_rotation", compat.ACCEPTED)
        else:
            compat.record("jwks-rsa", alg, "scheduled_rotation", compat.UNSUPPORTED)


def test_rotate_now_envoy_accepts_the_new_key_once_its_cache_expires(gateways: Gateways) -> None:
    before = {alg: d.issue(sub="before-rotate-now", ttl=600) for alg, d in gateways.deployments.items()}
    for alg, token in before.items():
        assert gateways.envoy_check(alg, "default", token["token"]).ok and gateways.envoy_check(alg, "short", token["token"]).ok
    for d in gateways.deployments.values():
        assert d.service.rotate_now().converged
    rotated_at = time.time()
    wait_until(max(signer_stale(d, rotated_at) for d in gateways.deployments.values()))
    new = {alg: d.issue(sub="after-rotate-now", ttl=600) for alg, d in gateways.deployments.items()}
    for alg, token in new.items():
        assert token["kid"] == gateways.deployments[alg].active_key().kid != before[alg]["kid"]
        # No refetch for an unknown kid: the default cache refuses the new key until its 600 s run out.
        assert (gateways.envoy_check(alg, "default", token["token"]).reason) == UNKNOWN_KID
        if jwks_rsa_supports(alg):  # jwks-rsa fetches the JWKS for a kid it does not hold
            answer = gateways.jwks_rsa_check(alg, token["token"], cache_ms=JWKS_RSA_DEFAULT_CACHE_MS, client="rotate-now")
            assert answer["ok"] and answer["claims"]["sub"] == "after-rotate-now", f"{alg}: {answer}"
            compat.record("jwks-rsa", alg, "rotate_now", compat.AFTER_REFETCH)
        else:
            compat.record("jwks-rsa", alg, "rotate_now", compat.UNSUPPORTED)
    wait_until(cache_bound(rotated_at))
    for alg, token in new.items():
        answer = gateways.envoy_check(alg, "short", token["token"])
        assert answer.ok and answer.claims["sub"] == "after-rotate-now", f"{alg}: {answer}"
        assert gateways.envoy_check(alg, "short", before[alg]["token"]).ok  # the retired key stays published
        assert gateways.envoy_check(alg, "default", before[alg]["token"]).ok
        assert gateways.envoy_check(alg, "default", token["token"]).reason == UNKNOWN_KID
        compat.record("Envoy", alg, "rotate_now", compat.AFTER_CACHE)


def test_revoked_key_refused_within_the_cache_bound(gateways: Gateways, node_verifier: NodeVerifier) -> None:
    """Every verifier with a cache of SHORT_CACHE refuses a revoked key's tokens once the bound has passed."""
    tokens: dict[str, dict[str, Any]] = {}
    retired_tokens: dict[str, str] = {}
    pyjwt_clients: dict[str, pyjwt.PyJWKClient] = {}

    def jose(alg: str, token: str) -> dict[str, Any]:
        d = gateways.deployments[alg]
        ms = int(SHORT_CACHE * 1000)
        return node_verifier.verify(token, alg=alg, expect=d.expect, jwks_url=d.jwks_url, cache_max_age_ms=ms, cooldown_ms=ms // 2, client="revocation")

    def jwks_rsa(alg: str, token: str) -> dict[str, Any]:
        return gateways.jwks_rsa_check(alg, token, cache_ms=int(SHORT_CACHE * 1000), client="revocation")

    for alg, d in gateways.deployments.items():
        tokens[alg] = d.issue(sub="signed-before-revoke", ttl=600)
        token = tokens[alg]["token"]
        pyjwt_clients[alg] = pyjwt.PyJWKClient(d.jwks_url, lifespan=SHORT_CACHE, cooldown_duration=SHORT_CACHE / 2)
        assert pyjwt_verify(pyjwt_clients[alg], token, alg, d.expect)["sub"] == "signed-before-revoke"
        assert jose(alg, token)["ok"]
        assert not jwks_rsa_supports(alg) or jwks_rsa(alg, token)["ok"]
        assert gateways.envoy_check(alg, "short", token).ok
        # A key the default-cache Envoy has held since it started: the one the scheduled rotation retired.
        retired = max((k for k in d.keyring().keys if k.state.value == "retired"), key=lambda k: k.retired_at or k.created_at)
        retired_tokens[alg] = retired_token(d, retired)
        assert gateways.envoy_check(alg, "default", retired_tokens[alg]).ok and gateways.envoy_check(alg, "short", retired_tokens[alg]).ok
    for alg, d in gateways.deployments.items():
        for kid in (tokens[alg]["kid"], split_token(retired_tokens[alg])[0]["kid"]):
            assert d.service.revoke(kid).converged and kid not in [k["kid"] for k in d.jwks()["keys"]]
    revoked_at = time.time()
    wait_until(max(cache_bound(revoked_at), *(signer_stale(d, revoked_at) for d in gateways.deployments.values())))
    for alg, d in gateways.deployments.items():
        token = tokens[alg]["token"]
        assert split_token(token)[0]["kid"] == tokens[alg]["kid"]
        assert gateways.envoy_check(alg, "short", token).reason == UNKNOWN_KID
        compat.record("Envoy", alg, "revocation", compat.REFUSED_AFTER_CACHE)
        # The default cache still holds the revoked retired key: its bound is its cache_duration (600 s).
        assert gateways.envoy_check(alg, "default", retired_tokens[alg]).ok
        assert gateways.envoy_check(alg, "short", retired_tokens[alg]).reason == UNKNOWN_KID
        with pytest.raises(pyjwt.PyJWKClientError, match="Unable to find a signing key"):
            pyjwt_verify(pyjwt_clients[alg], token, alg, d.expect)
        compat.record("PyJWT", alg, "revocation", compat.REFUSED_AFTER_CACHE)
        with pytest.raises(jwcrypto_jwt.JWTMissingKey):
            jwcrypto_verify(d.jwks_text(), token, alg, d.expect)
        compat.record("jwcrypto", alg, "revocation", compat.REFUSED_AFTER_CACHE)
        assert jose(alg, token).get("code") == "ERR_JWKS_NO_MATCHING_KEY"
        compat.record("jose", alg, "revocation", compat.REFUSED_AFTER_CACHE)
        if jwks_rsa_supports(alg):
            answer = jwks_rsa(alg, token)
            assert not answer["ok"] and answer["name"] == JWKS_RSA_NO_KEY[0] and JWKS_RSA_NO_KEY[1] in answer["message"], answer
            compat.record("jwks-rsa", alg, "revocation", compat.REFUSED_AFTER_CACHE)
        else:
            compat.record("jwks-rsa", alg, "revocation", compat.UNSUPPORTED)
        # The successor signs, and the short-cache Envoy accepts it.
        successor = d.issue(sub="signed-after-revoke", ttl=600)
        assert successor["kid"] != tokens[alg]["kid"]
        assert gateways.envoy_check(alg, "short", successor["token"]).ok

"""Bad tokens are refused by PyJWT, jwcrypto and jose, each with the error its case calls for.

Every bad token is made by hand here (base64url pieces, ``cryptography`` or
``hmac``), except the tampered one, which alters a token the sign handler
issued. The control case is made the same way with nothing wrong in it and
must verify everywhere, so each refusal is down to the one defect its case
names and not to the way the tokens are assembled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
import pytest
from jwcrypto import jwt as jwcrypto_jwt

from jwks_rotator_testkit.verifiers import NodeVerifier, jwcrypto_verify, pyjwt_verify

from . import compat
from .conftest import AUDIENCE, OTHER_AUDIENCE, Deployment
from .support import (
    b64url_json,
    fresh_private_key,
    hs256_compact,
    private_key_from_jwk,
    public_pem,
    sign_compact,
    split_token,
    thumbprint_kid,
    unsigned_compact,
)

pytestmark = pytest.mark.interop

HOUR = 3600


@dataclass
class Forge:
    """What a forger (or the test, holding the real key) needs to make tokens for one deployment."""

    deployment: Deployment
    kid: str
    private_key: Any
    public_jwk: dict[str, str]
    product_token: str
    unknown_key: Any

    @property
    def alg(self) -> str:
        return self.deployment.alg

    def header(self, **changes: Any) -> dict[str, Any]:
        return {"alg": self.alg, "typ": "JWT", "kid": self.kid, **changes}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.deployment.issuer,
            "sub": "forged-user",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now - 60,
            "exp": now + 600,
            "jti": "interop-forged",
        }
        claims.update(changes)
        return claims

    def signed(self, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None, key: Any = None) -> str:
        return sign_compact(header or self.header(), claims or self.claims(), self.alg, key or self.private_key)


@pytest.fixture(scope="module")
def forge(deployment: Deployment) -> Forge:
    active = deployment.active_key()
    published = {k["kid"]: k for k in deployment.jwks()["keys"]}
    unknown = fresh_private_key(deployment.alg)
    assert thumbprint_kid(unknown) not in published
    return Forge(
        deployment=deployment,
        kid=active.kid,
        private_key=private_key_from_jwk(active.private_jwk),
        public_jwk=published[active.kid],
        product_token=deployment.issue(sub="real-user", ttl=600)["token"],
        unknown_key=unknown,
    )


def _tampered(f: Forge) -> str:
    header, _claims, _ = f.product_token.split(".")
    decoded = split_token(f.product_token)[1]
    assert decoded["sub"] == "real-user"
    decoded["sub"] = "admin"
    return f"{header}.{b64url_json(decoded)}.{f.product_token.split('.')[2]}"


def _hs256_with_public_jwk(f: Forge) -> str:
    # The exact bytes a verifier would hold: the JWK as published.
    secret = json.dumps(f.public_jwk, separators=(",", ":"), sort_keys=True).encode("ascii")
    return hs256_compact(f.header(alg="HS256"), f.claims(), secret)


# name -> how to make the token from a Forge
BUILDERS: dict[str, Callable[[Forge], str]] = {
    "control_hand_signed": lambda f: f.signed(),
    "expired": lambda f: f.signed(claims=f.claims(iat=int(time.time()) - 2 * HOUR, nbf=int(time.time()) - 2 * HOUR, exp=int(time.time()) - HOUR)),
    "not_yet_valid": lambda f: f.signed(claims=f.claims(nbf=int(time.time()) + HOUR, exp=int(time.time()) + 2 * HOUR)),
    "wrong_audience": lambda f: f.signed(claims=f.claims(aud=OTHER_AUDIENCE)),
    "wrong_issuer": lambda f: f.signed(claims=f.claims(iss="https://issuer.invalid")),
    "tampered_payload": _tampered,
    "unknown_key_with_published_kid": lambda f: f.signed(key=f.unknown_key),
    "alg_none": lambda f: unsigned_compact(f.header(alg="none"), f.claims()),
    "hs256_public_key_pem": lambda f: hs256_compact(f.header(alg="HS256"), f.claims(), public_pem(f.public_jwk)),
    "hs256_public_jwk_json": _hs256_with_public_jwk,
    "kid_not_in_jwks_unknown_key": lambda f: f.signed(header=f.header(kid=thumbprint_kid(f.unknown_key)), key=f.unknown_key),
    "kid_not_in_jwks_real_key": lambda f: f.signed(header=f.header(kid=thumbprint_kid(f.unknown_key))),
}

BAD_SIGNATURE = "InvalidJWSSignature('Verification failed')"
ALG_REFUSED = "InvalidJWSOperation('Algorithm not allowed')"
KID_UNKNOWN = "not in key set"

# name -> (PyJWT error class,
#          (jwcrypto error class, text in its message or verify log),
#          (jose error code, jose claim or None));  None: must verify.
# jwcrypto with a key set raises JWTMissingKey for an unknown kid and also for a
# signature the kid's key rejects; its verify log says which.
EXPECTED: dict[str, tuple[type[Exception], tuple[type[Exception], str], tuple[str, str | None]] | None] = {
    "control_hand_signed": None,
    "expired": (pyjwt.ExpiredSignatureError, (jwcrypto_jwt.JWTExpired, "Expired at"), ("ERR_JWT_EXPIRED", "exp")),
    "not_yet_valid": (pyjwt.ImmatureSignatureError, (jwcrypto_jwt.JWTNotYetValid, "Valid from"), ("ERR_JWT_CLAIM_VALIDATION_FAILED", "nbf")),
    "wrong_audience": (pyjwt.InvalidAudienceError, (jwcrypto_jwt.JWTInvalidClaimValue, "Invalid 'aud' value"), ("ERR_JWT_CLAIM_VALIDATION_FAILED", "aud")),
    "wrong_issuer": (pyjwt.InvalidIssuerError, (jwcrypto_jwt.JWTInvalidClaimValue, "Invalid 'iss' value"), ("ERR_JWT_CLAIM_VALIDATION_FAILED", "iss")),
    "tampered_payload": (pyjwt.InvalidSignatureError, (jwcrypto_jwt.JWTMissingKey, BAD_SIGNATURE), ("ERR_JWS_SIGNATURE_VERIFICATION_FAILED", None)),
    "unknown_key_with_published_kid": (pyjwt.InvalidSignatureError, (jwcrypto_jwt.JWTMissingKey, BAD_SIGNATURE), ("ERR_JWS_SIGNATURE_VERIFICATION_FAILED", None)),
    "alg_none": (pyjwt.InvalidAlgorithmError, (jwcrypto_jwt.JWTMissingKey, ALG_REFUSED), ("ERR_JOSE_ALG_NOT_ALLOWED", None)),
    "hs256_public_key_pem": (pyjwt.InvalidAlgorithmError, (jwcrypto_jwt.JWTMissingKey, ALG_REFUSED), ("ERR_JOSE_ALG_NOT_ALLOWED", None)),
    "hs256_public_jwk_json": (pyjwt.InvalidAlgorithmError, (jwcrypto_jwt.JWTMissingKey, ALG_REFUSED), ("ERR_JOSE_ALG_NOT_ALLOWED", None)),
    "kid_not_in_jwks_unknown_key": (pyjwt.PyJWKClientError, (jwcrypto_jwt.JWTMissingKey, KID_UNKNOWN), ("ERR_JWKS_NO_MATCHING_KEY", None)),
    "kid_not_in_jwks_real_key": (pyjwt.PyJWKClientError, (jwcrypto_jwt.JWTMissingKey, KID_UNKNOWN), ("ERR_JWKS_NO_MATCHING_KEY", None)),
}
assert EXPECTED.keys() == BUILDERS.keys()
CASES = list(BUILDERS)


def record_refusal(verifier: str, alg: str, case: str) -> None:
    """For docs/compatibility.md: the cases its columns name (tests/interop/compat.py)."""
    if any(case in checks for checks in compat.BEHAVIOURS.values()):
        compat.record(verifier, alg, case, compat.REFUSED)


@pytest.fixture(scope="module")
def pyjwk_client(deployment: Deployment) -> pyjwt.PyJWKClient:
    """One long-lived PyJWT client per deployment, with its default cache and cooldown."""
    return pyjwt.PyJWKClient(deployment.jwks_url)


@pytest.fixture(scope="module")
def jwks_text(deployment: Deployment) -> str:
    return deployment.jwks_text()


@pytest.mark.parametrize("case", CASES)
def test_pyjwt(case: str, forge: Forge, pyjwk_client: pyjwt.PyJWKClient) -> None:
    token = BUILDERS[case](forge)
    expected = EXPECTED[case]
    verify = lambda: pyjwt_verify(pyjwk_client, token, forge.alg, forge.deployment.expect)  # noqa: E731
    if expected is None:
        assert verify()["sub"] == "forged-user"
        return
    with pytest.raises(expected[0]) as refused:
        verify()
    assert type(refused.value) is expected[0], f"{case}: {type(refused.value).__name__}: {refused.value}"
    record_refusal("PyJWT", forge.alg, case)


@pytest.mark.parametrize("case", CASES)
def test_jwcrypto(case: str, forge: Forge, jwks_text: str) -> None:
    token = BUILDERS[case](forge)
    expected = EXPECTED[case]
    if expected is None:
        assert jwcrypto_verify(jwks_text, token, forge.alg, forge.deployment.expect)["sub"] == "forged-user"
        return
    error_class, evidence = expected[1]
    with pytest.raises(error_class) as refused:
        jwcrypto_verify(jwks_text, token, forge.alg, forge.deployment.expect)
    log = getattr(refused.value, "verify_log", [])
    assert type(refused.value) is error_class, f"{case}: {type(refused.value).__name__}: {refused.value} {log}"
    assert any(evidence in entry for entry in [str(refused.value), *log]), f"{case}: {refused.value} {log}"
    record_refusal("jwcrypto", forge.alg, case)


@pytest.mark.parametrize("case", CASES)
def test_jose(case: str, forge: Forge, node_verifier: NodeVerifier) -> None:
    token = BUILDERS[case](forge)
    expected = EXPECTED[case]
    result = node_verifier.verify(
        token,
        alg=forge.alg,
        expect=forge.deployment.expect,
        jwks_url=forge.deployment.jwks_url,
        cache_max_age_ms=600_000,
        cooldown_ms=30_000,
    )
    if expected is None:
        assert result["ok"], f"jose refused the control token: {result.get('code')}: {result.get('message')}"
        assert result["claims"]["sub"] == "forged-user"
        return
    assert not result["ok"], f"jose accepted a {case} token"
    code, claim = expected[2]
    assert result["code"] == code, f"{case}: {result['code']}: {result['message']}"
    assert result.get("claim") == claim
    record_refusal("jose", forge.alg, case)

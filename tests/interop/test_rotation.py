"""Across a rotation, tokens keep verifying in PyJWT, jwcrypto and jose, for every algorithm.

The rotation service runs on a fake clock against the moto server; the sign
handler, the verifiers and token times use the real clock. Verifiers keep
their JWKS caches on: one set with each library's defaults (a long-lived
verifier that fetched before the switch) and one scaled down (1-2 s), whose
results must not depend on whether it refetched or not.

Waiting is done only where the product's contract says a cache lasts
``signer-cache-ttl`` (1 s here): the test sleeps until that bound has passed,
then checks outcomes, never durations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from jwcrypto import jwt as jwcrypto_jwt

from jwks_rotator_testkit.verifiers import NodeVerifier, jwcrypto_verify, pyjwt_verify

from . import compat
from .conftest import Deployment, InteropCaller, make_deployment
from .support import ALGORITHMS, split_token

pytestmark = pytest.mark.interop

SECOND = timedelta(seconds=1)


@dataclass
class VerifierSet:
    """A PyJWT client and a jose remote key set with one cache configuration, plus jwcrypto on a fresh fetch."""

    name: str
    deployment: Deployment
    node: NodeVerifier
    lifespan: float
    cooldown: float
    pyjwt_client: pyjwt.PyJWKClient = field(init=False)

    def __post_init__(self) -> None:
        self.pyjwt_client = pyjwt.PyJWKClient(self.deployment.jwks_url, lifespan=self.lifespan, cooldown_duration=self.cooldown)

    def jose(self, token: str) -> dict[str, Any]:
        return self.node.verify(
            token,
            alg=self.deployment.alg,
            expect=self.deployment.expect,
            jwks_url=self.deployment.jwks_url,
            cache_max_age_ms=int(self.lifespan * 1000),
            cooldown_ms=int(self.cooldown * 1000),
            client=self.name,
        )

    def accept(self, token: str, kid: str, sub: str) -> None:
        """All three verifiers accept ``token`` and see its kid and subject."""
        d = self.deployment
        assert split_token(token)[0]["kid"] == kid
        assert pyjwt_verify(self.pyjwt_client, token, d.alg, d.expect)["sub"] == sub, f"PyJWT ({self.name})"
        assert jwcrypto_verify(d.jwks_text(), token, d.alg, d.expect)["sub"] == sub, "jwcrypto"
        result = self.jose(token)
        assert result["ok"], f"jose ({self.name}) refused: {result.get('code')}: {result.get('message')}"
        assert result["header"]["kid"] == kid and result["claims"]["sub"] == sub


def fresh_verifiers(deployment: Deployment, node: NodeVerifier, name: str) -> VerifierSet:
    """Verifiers that have never fetched: they see what the edge serves now."""
    return VerifierSet(name, deployment, node, lifespan=300, cooldown=30)


@pytest.fixture
def rotating(request: pytest.FixtureRequest, aws_resources: Any, interop_caller: InteropCaller) -> Iterator[Deployment]:
    deployed = make_deployment(
        aws_resources.endpoint,
        request.param,
        interop_caller,
        secret_id=aws_resources.secret_id,
        bucket=aws_resources.bucket,
        distribution_id=aws_resources.distribution_id,
    )
    yield deployed
    deployed.edge.stop()


def wait_out_signer_cache(since: float, deployment: Deployment) -> None:
    """Sleep until the sign handler's key cache, read no later than ``since``, has gone stale."""
    deadline = since + deployment.settings.signer_cache_ttl.total_seconds() + 0.05
    while (remaining := deadline - time.time()) > 0:
        time.sleep(remaining)


def published_kids(deployment: Deployment) -> list[str]:
    return [key["kid"] for key in deployment.jwks()["keys"]]


@pytest.mark.parametrize("rotating", ALGORITHMS, indirect=True)
def test_scheduled_rotation_keeps_old_and_new_tokens_verifying(rotating: Deployment, node_verifier: NodeVerifier) -> None:
    d = rotating
    keyring = d.keyring()
    old_kid = keyring.active.kid  # type: ignore[union-attr]
    (next_kid,) = [k.kid for k in keyring.keys if k.state.value == "pending"]
    assert published_kids(d) == [old_kid, next_kid]

    long_lived = VerifierSet(f"defaults-{d.alg}", d, node_verifier, lifespan=300, cooldown=30)  # the libraries' defaults
    scaled = VerifierSet(f"scaled-{d.alg}", d, node_verifier, lifespan=2, cooldown=1)
    old = d.issue(sub="before-rotation", ttl=600)
    short = d.issue(sub="short-lived", ttl=1)
    assert old["kid"] == short["kid"] == old_kid
    for verifiers in (long_lived, scaled):
        verifiers.accept(old["token"], old_kid, "before-rotation")  # and their caches now hold {old, next}

    # The rotation is due: the pre-published key takes over, the old one retires but stays published.
    d.clock.advance(d.settings.rotation_period)
    report = d.tick()
    rotated_at = time.time()
    changes = {(c.kind, c.kid) for c in report.changes}
    assert {("activated", next_kid), ("retired", old_kid)} <= changes
    kids = published_kids(d)
    assert kids[0] == next_kid and old_kid in kids

    for verifiers in (long_lived, scaled):
        verifiers.accept(old["token"], old_kid, "before-rotation")

    # Once the signer's cache has gone stale it signs with the new key.
    wait_out_signer_cache(rotated_at, d)
    new = d.issue(sub="after-rotation", ttl=600)
    assert new["kid"] == next_kid
    for verifiers in (long_lived, scaled):  # long_lived has not refetched: the key was published ahead
        verifiers.accept(new["token"], next_kid, "after-rotation")
        verifiers.accept(old["token"], old_kid, "before-rotation")

    # A token of the old key verifies until it expires, and not after.
    assert short["expires_at"] < time.time()
    with pytest.raises(pyjwt.ExpiredSignatureError):
        pyjwt_verify(scaled.pyjwt_client, short["token"], d.alg, d.expect)
    with pytest.raises(jwcrypto_jwt.JWTExpired):
        jwcrypto_verify(d.jwks_text(), short["token"], d.alg, d.expect, leeway=0)
    refused = scaled.jose(short["token"])
    assert (refused["ok"], refused.get("code")) == (False, "ERR_JWT_EXPIRED")

    # The old key stays published for the whole retention, then leaves the JWKS.
    retired_at = d.keyring().get(old_kid).retired_at  # type: ignore[union-attr]
    retention = d.settings.effective_retention
    assert retention >= d.settings.max_token_ttl + d.settings.signer_cache_ttl + d.settings.clock_skew_leeway
    d.clock.move_to(retired_at + retention - SECOND)
    d.tick()
    assert old_kid in published_kids(d)
    fresh_verifiers(d, node_verifier, f"fresh-before-deletion-{d.alg}").accept(old["token"], old_kid, "before-rotation")
    scaled.accept(old["token"], old_kid, "before-rotation")

    d.clock.move_to(retired_at + retention + SECOND)
    report = d.tick()
    assert ("deleted", old_kid) in {(c.kind, c.kid) for c in report.changes}
    assert old_kid not in published_kids(d)
    after = fresh_verifiers(d, node_verifier, f"fresh-after-deletion-{d.alg}")
    after.accept(new["token"], next_kid, "after-rotation")
    with pytest.raises(pyjwt.PyJWKClientError):
        pyjwt_verify(after.pyjwt_client, old["token"], d.alg, d.expect)
    with pytest.raises(jwcrypto_jwt.JWTMissingKey) as missing:
        jwcrypto_verify(d.jwks_text(), old["token"], d.alg, d.expect)
    assert any("not in key set" in entry for entry in missing.value.verify_log)  # type: ignore[attr-defined]
    refused = after.jose(old["token"])
    assert (refused["ok"], refused.get("code")) == (False, "ERR_JWKS_NO_MATCHING_KEY")
    for verifier in ("PyJWT", "jwcrypto", "jose"):
        compat.record(verifier, d.alg, "scheduled_rotation", compat.ACCEPTED)


@pytest.mark.parametrize("rotating", ALGORITHMS, indirect=True)
def test_rotate_now_tokens_verify_once_scaled_caches_may_refetch(rotating: Deployment, node_verifier: NodeVerifier) -> None:
    """Emergency rotation skips the publish lead: a verifier finds the new kid by refetching after its cooldown."""
    d = rotating
    old_kid = d.active_key().kid
    scaled = VerifierSet(f"scaled-now-{d.alg}", d, node_verifier, lifespan=2, cooldown=1)
    # A cache far longer than this test with a short cooldown: accepting the new kid can only come from a refetch.
    refetching = VerifierSet(f"refetch-now-{d.alg}", d, node_verifier, lifespan=3600, cooldown=1)
    old = d.issue(sub="before-rotate-now", ttl=600)
    scaled.accept(old["token"], old_kid, "before-rotate-now")
    refetching.accept(old["token"], old_kid, "before-rotate-now")
    fetched_at = time.time()

    report = d.service.rotate_now()
    assert report.converged
    rotated_at = time.time()
    new_kid = d.active_key().kid
    assert new_kid not in (old_kid,) and d.keyring().get(old_kid).state.value == "retired"  # type: ignore[union-attr]
    assert published_kids(d)[0] == new_kid and old_kid in published_kids(d)

    # Past the signer's cache ttl (1 s), which here also outlasts the verifiers' 1 s cooldown since their fetch.
    assert fetched_at <= rotated_at
    wait_out_signer_cache(rotated_at, d)
    new = d.issue(sub="after-rotate-now", ttl=600)
    assert new["kid"] == new_kid
    scaled.accept(new["token"], new_kid, "after-rotate-now")
    scaled.accept(old["token"], old_kid, "before-rotate-now")
    # PyJWT and jose, whose hour-long caches hold only the old set, find the unknown kid by refetching (after the
    # cooldown, which the signer's cache ttl has outlasted); jwcrypto is handed the JWKS fetched for the check.
    refetching.accept(new["token"], new_kid, "after-rotate-now")
    compat.record("PyJWT", d.alg, "rotate_now", compat.AFTER_REFETCH)
    compat.record("jose", d.alg, "rotate_now", compat.AFTER_REFETCH)
    compat.record("jwcrypto", d.alg, "rotate_now", compat.ACCEPTED)

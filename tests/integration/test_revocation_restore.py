"""Revocation across a restore of the keyring secret, end to end on the moto server.

The rotation service revokes through the wiring (keyring + SSM revocation
parameter); the secret is then restored with ``update_secret_version_stage``
to the version from before the revoke; the signer, wired the same way and on
fake clocks, refuses the revoked kid within ``signer-cache-ttl``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.revocation_parameter import SsmRevocationList, SsmRevocationReader
from jwks_rotator.adapters.sdk.secrets_store import CURRENT, SecretsManagerKeyringStore
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import KeyringBehindPublicationError, StoreError
from jwks_rotator.core.issuance.signer import TokenSigner
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import VersionedKeyring
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.provision import create_resources
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.moto import client_factory

pytestmark = pytest.mark.integration
REQUEST = {"sub": "user-1", "aud": "orders-api"}
CACHE_TTL = timedelta(seconds=60)


def settings_for(aws_resources: Any) -> Settings:
    return Settings(
        issuer="https://issuer.example.com",
        algorithm="ES256",
        keyring_secret_id=aws_resources.secret_id,
        jwks_bucket=aws_resources.bucket,
        distribution_id=aws_resources.distribution_id,
        signer_cache_ttl=CACHE_TTL,
        revocation_parameter=f"/jwks-rotator-test/{uuid.uuid4().hex[:10]}/revoked-kids",
    )


def restore(aws_resources: Any, version_id: str) -> None:
    """What an operator's restore does: AWSCURRENT back on an older version of the secret."""
    sm = aws_resources.client("secretsmanager")
    current = SecretsManagerKeyringStore(sm, aws_resources.secret_id).load().version_id
    sm.update_secret_version_stage(
        SecretId=aws_resources.secret_id, VersionStage=CURRENT, MoveToVersionId=version_id, RemoveFromVersionId=current
    )


def signer_on(settings: Settings, aws_resources: Any, clock: FakeClock) -> TokenSigner:
    return build_token_signer(settings, aws_resources.client, clock=clock.unix, monotonic=clock.monotonic)


def first_tick(aws_resources: Any) -> tuple[Settings, FakeClock, RotationService, SecretsManagerKeyringStore, VersionedKeyring]:
    """A rotator that ticked once on a fake clock, the store, and the keyring version it wrote (to restore later)."""
    settings = settings_for(aws_resources)
    clock = FakeClock()
    rotator = build_rotation_service(settings, aws_resources.client, clock=clock.now)
    rotator.tick()
    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    return settings, clock, rotator, store, store.load()


def test_a_revoked_key_stops_signing_within_the_cache_ttl_even_after_the_secret_is_restored(aws_resources):
    settings, clock, rotator, store, before = first_tick(aws_resources)
    revoked = before.keyring.active
    assert revoked is not None
    signer = signer_on(settings, aws_resources, clock)
    assert signer.issue(REQUEST).kid == revoked.kid

    report = rotator.revoke(revoked.kid)
    assert any(c.kind == "revoked" and c.kid == revoked.kid for c in report.changes)
    assert revoked.kid in SsmRevocationReader(aws_resources.client("ssm"), settings.revocation_parameter).read()
    restore(aws_resources, before.version_id)
    assert store.load().keyring.active == revoked  # the restored secret holds the revoked key as its active key again

    clock.advance(CACHE_TTL - timedelta(seconds=1))
    assert signer.issue(REQUEST).kid == revoked.kid  # the cached key, inside the ttl: the documented bound
    clock.advance(timedelta(seconds=1))
    outcome = signer.handle(REQUEST)
    assert outcome.response == {"error": "signing_unavailable", "message": f"no signing key: the active key {revoked.kid} is revoked"}
    fresh = signer_on(settings, aws_resources, clock)  # a cold container, too
    assert fresh.handle(REQUEST).response["error"] == "signing_unavailable"


def test_after_a_restore_the_rotator_holds_the_signer_refuses_and_an_accepted_restore_resumes(aws_resources):
    settings, clock, rotator, store, before = first_tick(aws_resources)
    old_active = before.keyring.active
    assert old_active is not None
    rotator.revoke(old_active.kid)
    restore(aws_resources, before.version_id)

    with pytest.raises(KeyringBehindPublicationError):
        rotator.tick()
    held = store.load().keyring
    assert held.restore_hold and old_active.kid not in {k.kid for k in held.keys}  # dropped even while held
    signer = signer_on(settings, aws_resources, clock)
    message = signer.handle(REQUEST).response["message"]
    assert "accept-restore" in message

    rotator.publish(accept_restore=True)
    accepted = store.load().keyring
    assert not accepted.restore_hold and accepted.active is not None and accepted.active.kid != old_active.kid
    clock.advance(CACHE_TTL)
    assert signer.issue(REQUEST).kid == accepted.active.kid


def test_the_rotator_creates_the_parameter_and_the_signer_fails_closed_until_it_exists(aws_resources):
    settings = settings_for(aws_resources)
    clock = FakeClock()
    signer = signer_on(settings, aws_resources, clock)
    assert "ParameterNotFound" in signer.handle(REQUEST).response["message"]
    build_rotation_service(settings, aws_resources.client, clock=clock.now).tick()
    ssm = aws_resources.client("ssm")
    parameter = ssm.get_parameter(Name=settings.revocation_parameter)["Parameter"]
    assert (parameter["Type"], parameter["Value"]) == ("String", "[]")
    clock.advance(CACHE_TTL)
    assert "token" in signer.handle(REQUEST).response


def test_concurrent_adds_over_moto_keep_every_kid(aws_resources):
    name = f"/jwks-rotator-test/{uuid.uuid4().hex[:10]}/revoked-kids"
    ssm = aws_resources.client("ssm")
    first, second = SsmRevocationList(ssm, name), SsmRevocationList(aws_resources.client("ssm"), name)
    assert first.load() == frozenset()
    for index in range(60):  # past one page of parameter history
        (first if index % 2 else second).add(f"kid-{index}")
    assert SsmRevocationReader(ssm, name).read() == {f"kid-{index}" for index in range(60)}
    # a writer whose read went stale (another wrote in between) restores what it overwrote, from the history
    real_put = ssm.put_parameter

    def raced_put(**params: Any) -> Any:
        ssm.put_parameter = real_put
        second.add("kid-racer")
        return real_put(**params)

    ssm.put_parameter = raced_put
    first.add("kid-late")
    assert {"kid-racer", "kid-late"} <= SsmRevocationReader(ssm, name).read()


def test_the_provisioned_stack_has_the_revocation_parameter(moto_endpoint):
    suffix = uuid.uuid4().hex[:8]
    name = f"/jwks-rotator-test/{suffix}/revoked-kids"
    created = create_resources(client_factory(moto_endpoint), secret_name=f"keyring-{suffix}", bucket=f"bucket-{suffix}",
                               revocation_parameter=name)
    assert created.revocation_parameter == name
    assert SsmRevocationReader(client_factory(moto_endpoint)("ssm"), name).read() == frozenset()
    with pytest.raises(StoreError):
        SsmRevocationReader(client_factory(moto_endpoint)("ssm"), name + "-missing").read()

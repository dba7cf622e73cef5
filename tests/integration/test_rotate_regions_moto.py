"""The rotate wiring over two regions of one moto server: us-east-1 the primary, eu-west-1 the secondary.

The keyring and signing view secrets are replicated by moto's Secrets Manager (``AddReplicaRegions``); the second
origin is a bucket in eu-west-1; each region has its own revocation parameter (SSM does not replicate).

moto replicates a secret at once: a replica that lags is shown with a named test double, :class:`HeldBackReplica`,
which answers a region's ``GetSecretValue`` with the value it held when it was held back, as a replica behind its
primary does in AWS.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.core.errors import NotPrimaryRegionError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.moto import ClientFactory, aws_client, regional_client_factory

pytestmark = pytest.mark.integration

PRIMARY, SECONDARY = "us-east-1", "eu-west-1"
ISSUER = "https://issuer.example"


class HeldBackReplica:
    """A Secrets Manager client whose ``GetSecretValue`` answers what it held when :meth:`hold` was called (moto has no lag)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._held: dict[str, dict[str, Any]] | None = None

    def hold(self, *secret_ids: str) -> None:
        self._held = {secret: self._client.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT") for secret in secret_ids}

    def release(self) -> None:
        self._held = None

    def get_secret_value(self, **kwargs: Any) -> Any:
        if self._held is not None and kwargs.get("SecretId") in self._held:
            return self._held[kwargs["SecretId"]]
        return self._client.get_secret_value(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Deployment:
    """Two regions' resources for one test, and the clients the wiring gets."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        suffix = uuid.uuid4().hex[:10]
        self.regional = regional_client_factory(endpoint)
        self.held = HeldBackReplica(self.client(SECONDARY, "secretsmanager"))
        sm = self.client(PRIMARY, "secretsmanager")
        replica = [{"Region": SECONDARY}]
        self.keyring_arn = sm.create_secret(Name=f"keyring-{suffix}", SecretString=Keyring().to_json(), AddReplicaRegions=replica)["ARN"]
        self.signing_arn = sm.create_secret(Name=f"signing-{suffix}", SecretString=Keyring().to_json(), AddReplicaRegions=replica)["ARN"]
        self.bucket, self.second_bucket = f"jwks-{suffix}", f"jwks-{suffix}-eu"
        self.client(PRIMARY, "s3").create_bucket(Bucket=self.bucket)
        self.client(SECONDARY, "s3").create_bucket(Bucket=self.second_bucket, CreateBucketConfiguration={"LocationConstraint": SECONDARY})
        self.parameter = f"/jwks-rotator/regions-{suffix}/revoked-kids"
        self.settings = Settings.from_mapping({
            "issuer": ISSUER, "algorithm": "ES256", "keyring_secret_id": self.keyring_arn, "signing_secret_id": self.signing_arn,
            "jwks_bucket": self.bucket, "revocation_parameter": self.parameter, "rotation_period": "10m", "publish_lead": "4m",
            "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m", "signer_cache_ttl": "10s",
            "clock_skew_leeway": "5s", "primary_region": PRIMARY, "regions": f"{PRIMARY},{SECONDARY}",
            "second_origin_bucket": self.second_bucket, "second_origin_region": SECONDARY,
        })
        self.clock = FakeClock()

    def client(self, region: str, service: str) -> Any:
        return aws_client(service, self.endpoint, region=region)

    def clients_in(self, region: str) -> ClientFactory:
        if region != SECONDARY:
            return self.regional(region)
        return lambda service: self.held if service == "secretsmanager" else self.regional(SECONDARY)(service)

    def rotator(self, region: str = PRIMARY) -> RotationService:
        return build_rotation_service(self.settings, self.clients_in(region), clock=self.clock.now, region=region,
                                      regional_clients=self.clients_in, monotonic=self.clock.monotonic)

    def keyring(self, region: str = PRIMARY, secret: str | None = None) -> Keyring:
        secret_id = (secret or self.keyring_arn).replace(PRIMARY, region)
        return Keyring.from_json(self.client(region, "secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"])

    def jwks(self, region: str) -> bytes:
        bucket = self.bucket if region == PRIMARY else self.second_bucket
        body: bytes = self.client(region, "s3").get_object(Bucket=bucket, Key=JWKS_PATH)["Body"].read()
        return body

    def revoked(self, region: str) -> list[str]:
        kids: list[str] = json.loads(self.client(region, "ssm").get_parameter(Name=self.parameter)["Parameter"]["Value"])
        return kids


@pytest.fixture
def regions(moto_endpoint: str) -> Deployment:
    return Deployment(moto_endpoint)


def test_the_primary_writes_both_origins_every_regions_list_and_reads_every_replica_back(regions: Deployment) -> None:
    rotator = regions.rotator()
    first = rotator.tick()
    assert first.missing_origins == () and first.lagging_replicas == ()
    active, pending = first.keyring.active, first.keyring.in_state(KeyState.PENDING)
    assert active is not None and len(pending) == 1 and pending[0].published_at is not None  # moto: replicated at once
    eu, us = regions.jwks(SECONDARY), regions.jwks(PRIMARY)
    assert hashlib.sha256(eu).digest() == hashlib.sha256(us).digest()
    assert {k["kid"] for k in json.loads(eu)["keys"]} == {active.kid, pending[0].kid}
    assert set(first.replication_lag) == {SECONDARY} and first.replication_lag[SECONDARY] == 0  # read back in the run that wrote
    assert regions.revoked(PRIMARY) == [] and regions.revoked(SECONDARY) == []  # every region's list exists
    view = regions.keyring(SECONDARY, regions.signing_arn)  # eu-west-1's signer reads its replica of the view
    assert view.active is not None and view.active.kid == active.kid

    report = rotator.revoke(active.kid)
    assert regions.revoked(PRIMARY) == [active.kid] and regions.revoked(SECONDARY) == [active.kid]
    assert active.kid not in {k["kid"] for k in json.loads(regions.jwks(SECONDARY))["keys"]}
    assert report.keyring.active is not None and report.keyring.active.kid != active.kid
    view = regions.keyring(SECONDARY, regions.signing_arn)
    assert view.active is not None and view.active.kid == report.keyring.active.kid


def test_a_lagging_replica_holds_activation_and_its_lag_is_measured_when_it_catches_up(regions: Deployment) -> None:
    regions.held.hold(regions.keyring_arn.replace(PRIMARY, SECONDARY))  # eu-west-1's replica stays at the empty keyring
    rotator = regions.rotator()
    first = rotator.tick()
    (key,) = first.keyring.keys
    assert key.published_at is None and first.keyring.active is None and first.lagging_replicas == (SECONDARY,)
    assert json.loads(regions.jwks(SECONDARY))["keys"]  # at both origins, but not recorded: eu-west-1 could not sign with it
    regions.clock.advance(timedelta(minutes=5))
    held = rotator.tick()
    assert held.keyring.active is None and held.lagging_replicas == (SECONDARY,)
    assert held.replication_lag[SECONDARY] == 5 * 60  # still behind: the time so far, a lower bound the alarm sees

    regions.held.release()
    regions.clock.advance(timedelta(minutes=1))
    caught = rotator.tick()
    assert caught.lagging_replicas == ()
    assert caught.keyring.active is not None and caught.keyring.active.kid == key.kid  # the first key: active once published everywhere
    assert caught.replication_lag[SECONDARY] == 6 * 60  # its write was a run ago: measured from the ledger's write time


def test_a_rotate_function_outside_the_primary_region_writes_nothing(regions: Deployment) -> None:
    regions.rotator().tick()
    before = regions.client(PRIMARY, "secretsmanager").describe_secret(SecretId=regions.keyring_arn)["VersionIdsToStages"]
    secondary = regions.rotator(SECONDARY)
    quiet = secondary.tick(coalesce=True)  # the schedule's tick, or an unproven one
    assert quiet.skipped and quiet.not_primary and quiet.changes == []
    for operation in (secondary.tick, secondary.rotate_now, lambda: secondary.revoke("any-kid"), secondary.publish):
        with pytest.raises(NotPrimaryRegionError) as refused:
            operation()
        assert refused.value.code == "not_primary_region"
    after = regions.client(PRIMARY, "secretsmanager").describe_secret(SecretId=regions.keyring_arn)["VersionIdsToStages"]
    assert after == before  # no keyring write
    listed = regions.client(SECONDARY, "s3").list_objects_v2(Bucket=regions.second_bucket).get("Contents", [])
    assert {o["Key"] for o in listed} == {".well-known/jwks.json", ".well-known/openid-configuration"}  # the primary's documents only

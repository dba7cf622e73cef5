"""The rotate wiring over two regions of one moto server: us-east-1 the primary, eu-west-1 the secondary.

The keyring and signing view secrets are replicated by moto's Secrets Manager (``AddReplicaRegions``); the second
origin is a bucket in eu-west-1; each region has its own revocation parameter (SSM does not replicate).

moto replicates a secret at once: a replica that lags is shown with a named test double, :class:`HeldBackReplica`,
which answers a region's ``GetSecretValue`` with the value it held when it was held back, as a replica behind its
primary does in AWS. Under KMS custody, moto signs with a disabled key (:class:`AwsDisabledKeyRefusal` refuses as AWS
does), ignores ReplicateKey's tags and policy (the rotator puts both again, and the test reads them back), and has no
outage (:class:`ReplicationOutage` fails a ReplicateKey to a region as AWS would while it is down).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import NotPrimaryRegionError, SigningKeyDisabledError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.kms_custody import KID_TAG, STACK_TAG
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.moto import ClientFactory, aws_client, regional_client_factory
from tests.kms_doubles import ROTATE_ROLE, SIGN_ROLE, AwsDisabledKeyRefusal

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


class RegionOutage:
    """A client of a region in outage: every call fails as AWS answers then (HTTP 503); moto has no outage."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.down = False

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if not self.down or not callable(call):
            return call

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "region unavailable"},
                               "ResponseMetadata": {"HTTPStatusCode": 503}}, name)

        return unavailable


class Deployment:
    """Two regions' resources for one test, and the clients the wiring gets."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        suffix = uuid.uuid4().hex[:10]
        self.regional = regional_client_factory(endpoint)
        self.held = HeldBackReplica(self.client(SECONDARY, "secretsmanager"))
        self.eu_s3 = RegionOutage(self.client(SECONDARY, "s3"))
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
        self.pauses: list[float] = []  # the writer's waits for a replica behind its write (no real sleep in a test)

    def client(self, region: str, service: str) -> Any:
        return aws_client(service, self.endpoint, region=region)

    def clients_in(self, region: str) -> ClientFactory:
        if region != SECONDARY:
            return self.regional(region)
        return lambda service: {"secretsmanager": self.held, "s3": self.eu_s3}.get(service) or self.regional(SECONDARY)(service)

    def rotator(self, region: str = PRIMARY) -> RotationService:
        return build_rotation_service(self.settings, self.clients_in(region), clock=self.clock.now, region=region,
                                      regional_clients=self.clients_in, monotonic=self.clock.monotonic, sleep=self.pauses.append)

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
    assert regions.pauses == [1.0, 2.0, 4.0]  # re-read within the run that wrote, then left to the next tick
    regions.pauses.clear()
    regions.clock.advance(timedelta(minutes=5))
    held = rotator.tick()
    assert held.keyring.active is None and held.lagging_replicas == (SECONDARY,)
    assert held.replication_lag[SECONDARY] == 5 * 60  # still behind: the time so far, a lower bound the alarm sees
    assert regions.pauses == []  # a run that wrote nothing reads the replica once

    regions.held.release()
    regions.clock.advance(timedelta(minutes=1))
    caught = rotator.tick()
    assert caught.lagging_replicas == ()
    assert caught.keyring.active is not None and caught.keyring.active.kid == key.kid  # the first key: active once published everywhere
    assert caught.replication_lag[SECONDARY] == 6 * 60  # its write was a run ago: measured from the ledger's write time


def test_a_kid_written_to_a_secondarys_list_by_another_ssm_writer_is_junk_there_and_revokes_nothing(regions: Deployment) -> None:
    rotator = regions.rotator()
    active = rotator.tick().keyring.active
    assert active is not None
    regions.client(SECONDARY, "ssm").put_parameter(Name=regions.parameter, Value=json.dumps([active.kid]), Type="String", Overwrite=True)
    regions.clock.advance(timedelta(minutes=1))
    report = rotator.tick()
    assert report.keyring.active is not None and report.keyring.active.kid == active.kid  # not revoked anywhere
    assert regions.revoked(SECONDARY) == [] and regions.revoked(PRIMARY) == []  # rewritten from the primary's record


def test_a_second_origin_in_outage_holds_publication_back_and_is_written_when_its_region_returns(regions: Deployment) -> None:
    regions.eu_s3.down = True
    rotator = regions.rotator()
    first = rotator.tick()
    (key,) = first.keyring.keys
    assert first.missing_origins == (SECONDARY,) and key.published_at is None and first.keyring.active is None
    assert json.loads(regions.jwks(PRIMARY))["keys"]  # the healthy origin is current
    regions.eu_s3.down = False
    regions.clock.advance(timedelta(minutes=1))
    second = rotator.tick()
    assert second.missing_origins == () and second.keyring.active is not None and second.keyring.active.kid == key.kid
    assert regions.jwks(SECONDARY) == regions.jwks(PRIMARY)


def test_a_rotate_function_outside_the_primary_region_writes_nothing(regions: Deployment) -> None:
    regions.rotator().tick()
    before = regions.client(PRIMARY, "secretsmanager").describe_secret(SecretId=regions.keyring_arn)["VersionIdsToStages"]
    # The secondary's own settings: its replicas and its bucket (its quiet tick reads its keyring replica once).
    own = regions.settings.replace(keyring_secret_id=regions.keyring_arn.replace(PRIMARY, SECONDARY),
                                   signing_secret_id=regions.signing_arn.replace(PRIMARY, SECONDARY), jwks_bucket=regions.second_bucket,
                                   second_origin_bucket="", second_origin_region="")
    secondary = build_rotation_service(own, regions.clients_in(SECONDARY), clock=regions.clock.now, region=SECONDARY,
                                       regional_clients=regions.clients_in, monotonic=regions.clock.monotonic, sleep=regions.pauses.append)
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


class ReplicationOutage:
    """The primary's KMS client, whose ReplicateKey to a region in outage fails as AWS answers then (moto has no outage)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.down: set[str] = set()

    def replicate_key(self, **kwargs: Any) -> Any:
        if kwargs.get("ReplicaRegion") in self.down:
            raise ClientError({"Error": {"Code": "KMSInternalException", "Message": "region unavailable"}}, "ReplicateKey")
        return self._client.replicate_key(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class KmsRegions(Deployment):
    """The deployment under KMS custody: each key a multi-Region key, signed with in eu-west-1 through its replica."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        stack = f"stack-{uuid.uuid4().hex[:8]}"
        self.eu_sign_role = f"arn:aws:iam::123456789012:role/{stack}-SignFunctionRole-EU"  # the primary's SecondarySignRoleArns
        self.settings = self.settings.replace(key_custody="kms", kms_stack_tag=stack, kms_sign_role_arn=SIGN_ROLE,
                                              kms_rotate_role_arn=ROTATE_ROLE, kms_replica_sign_role_arns=self.eu_sign_role)
        self.primary_kms = ReplicationOutage(self.regional(PRIMARY)("kms"))
        self.eu_kms = AwsDisabledKeyRefusal(self.regional(SECONDARY)("kms"))

    def clients_in(self, region: str) -> ClientFactory:
        base = super().clients_in(region)
        kms = self.primary_kms if region == PRIMARY else self.eu_kms
        return lambda service: kms if service == "kms" else base(service)

    def rotator(self, region: str = PRIMARY) -> RotationService:
        return build_rotation_service(self.settings, self.clients_in(region), clock=self.clock.now, region=region,
                                      regional_clients=self.clients_in, monotonic=self.clock.monotonic, sleep=lambda _: None)

    def state(self, region: str, arn: str) -> str:
        state: str = self.client(region, "kms").describe_key(KeyId=arn.rsplit("/", 1)[-1])["KeyMetadata"]["KeyState"]
        return state


@pytest.fixture
def kms_regions(moto_endpoint: str) -> KmsRegions:
    return KmsRegions(moto_endpoint)


def test_kms_keys_are_multi_region_replicated_signed_with_in_the_secondary_and_revoked_everywhere(kms_regions: KmsRegions) -> None:
    world = kms_regions
    report = world.rotator().tick()
    active, (pending,) = report.keyring.active, report.keyring.in_state(KeyState.PENDING)
    assert active is not None and active.kms_key_arn is not None and pending.kms_key_arn is not None
    assert active.kms_key_arn.split("/")[-1].startswith("mrk-")
    assert (world.state(PRIMARY, active.kms_key_arn), world.state(SECONDARY, active.kms_key_arn)) == ("Enabled", "Enabled")
    assert (world.state(PRIMARY, pending.kms_key_arn), world.state(SECONDARY, pending.kms_key_arn)) == ("Disabled", "Disabled")
    eu = world.client(SECONDARY, "kms")
    key_id = active.kms_key_arn.rsplit("/", 1)[-1]
    tags = {t["TagKey"]: t["TagValue"] for t in eu.list_resource_tags(KeyId=key_id)["Tags"]}
    assert tags == {STACK_TAG: world.settings.kms_stack_tag, KID_TAG: active.kid}
    policy = json.loads(eu.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    (sign,) = [s for s in policy["Statement"] if s["Action"] == "kms:Sign"]
    assert sign["Principal"] == {"AWS": world.eu_sign_role} and "ArnLike" not in sign["Condition"]  # eu-west-1's own sign role

    signer_settings = world.settings.replace(signing_secret_id=world.signing_arn.replace(PRIMARY, SECONDARY),
                                             jwks_bucket=world.second_bucket)
    signer = build_token_signer(signer_settings, world.clients_in(SECONDARY))
    token = signer.issue({"sub": "user-1", "aud": "orders-api", "ttl": 60}).token
    jwks = jwt.PyJWKSet.from_dict(json.loads(world.jwks(SECONDARY)))
    claims = jwt.decode(token, jwks[active.kid].key, algorithms=["ES256"], audience="orders-api", issuer=ISSUER)
    assert claims["sub"] == "user-1" and world.eu_kms.sign_calls == 1  # signed by eu-west-1's replica

    world.rotator().revoke(active.kid)
    assert world.state(SECONDARY, active.kms_key_arn) in ("Disabled", "PendingDeletion")
    assert world.state(PRIMARY, active.kms_key_arn) in ("Disabled", "PendingDeletion", "PendingReplicaDeletion")
    with pytest.raises(SigningKeyDisabledError):
        KmsKeyVault(lambda: world.eu_kms).sign(active.kms_key_arn, b"x" * 32, "ECDSA_SHA_256")


def test_a_kms_key_without_its_replica_in_a_region_does_not_count_as_published_until_a_later_run_makes_it(kms_regions: KmsRegions) -> None:
    world = kms_regions
    world.primary_kms.down.add(SECONDARY)
    rotator = world.rotator()
    first = rotator.tick()
    (key,) = first.keyring.keys
    assert key.published_at is None and first.keyring.active is None and first.lagging_replicas == (SECONDARY,)
    world.primary_kms.down.clear()
    world.clock.advance(timedelta(minutes=1))
    second = rotator.tick()  # makes the missing replica; it counts from the next read
    assert second.keyring.active is None and second.lagging_replicas == (SECONDARY,)
    assert key.kms_key_arn is not None and world.state(SECONDARY, key.kms_key_arn) == "Disabled"
    world.clock.advance(timedelta(minutes=1))
    third = rotator.tick()
    assert third.keyring.active is not None and third.keyring.active.kid == key.kid
    assert world.state(SECONDARY, key.kms_key_arn) == "Enabled"


def test_a_second_origin_holding_documents_of_a_higher_generation_stops_no_region_signing(regions: Deployment) -> None:
    """Any principal that may write the second origin (a typo naming another deployment's bucket, a leftover bucket, the
    secondary's own rotate role) can mark it with any generation: that holds publication back, never signing."""
    first = regions.rotator().tick()
    known = {k.kid for k in first.keyring.keys}  # published at both origins before the stray write
    stray = b'{"keys":[]}'
    regions.client(SECONDARY, "s3").put_object(Bucket=regions.second_bucket, Key=JWKS_PATH, Body=stray,
                                               Metadata={"keyring-generation": "999999"})
    regions.clock.advance(timedelta(minutes=11))  # past the rotation period: the pending key would activate
    report = regions.rotator().tick()
    assert report.missing_origins == (SECONDARY,) and report.origins_ahead == (SECONDARY,)
    active = report.keyring.active
    assert active is not None and active.kid in known  # the key published before hands over; a new one is not recorded
    (new,) = [k for k in report.keyring.keys if k.kid not in known]
    assert new.published_at is None
    assert not regions.keyring(PRIMARY).restore_hold
    assert regions.jwks(SECONDARY) == stray  # not overwritten without an accepted restore
    for region, bucket in ((PRIMARY, regions.bucket), (SECONDARY, regions.second_bucket)):
        settings = regions.settings.replace(signing_secret_id=regions.signing_arn.replace(PRIMARY, region), jwks_bucket=bucket)
        token = build_token_signer(settings, regions.clients_in(region)).issue({"sub": "u", "aud": "orders-api", "ttl": 60}).token
        assert jwt.get_unverified_header(token)["kid"] == active.kid

    accepted = regions.rotator().publish(accept_restore=True)
    assert accepted.missing_origins == () and regions.jwks(SECONDARY) == regions.jwks(PRIMARY)
    assert {k.kid: k for k in accepted.keyring.keys}[new.kid].published_at is not None  # recorded once every origin holds it


def test_under_kms_custody_a_region_whose_signing_view_lags_keeps_signing_with_the_previous_key(kms_regions: KmsRegions) -> None:
    world = kms_regions
    first = world.rotator().tick()
    previous, (successor,) = first.keyring.active, first.keyring.in_state(KeyState.PENDING)
    assert previous is not None and previous.kms_key_arn is not None and successor.kms_key_arn is not None
    eu_settings = world.settings.replace(signing_secret_id=world.signing_arn.replace(PRIMARY, SECONDARY), jwks_bucket=world.second_bucket)
    world.held.hold(world.signing_arn.replace(PRIMARY, SECONDARY))  # eu-west-1's view replica stays at the previous key's
    world.clock.advance(timedelta(minutes=11))
    report = world.rotator().tick()
    assert report.keyring.active is not None and report.keyring.active.kid == successor.kid
    assert world.state(PRIMARY, previous.kms_key_arn) == "Disabled"  # the primary's own view left it: at once
    assert world.state(SECONDARY, previous.kms_key_arn) == "Enabled"  # eu-west-1's view still names it
    token = build_token_signer(eu_settings, world.clients_in(SECONDARY)).issue({"sub": "u", "aud": "orders-api", "ttl": 60}).token
    assert jwt.get_unverified_header(token)["kid"] == previous.kid  # AwsDisabledKeyRefusal would refuse a disabled key

    world.held.release()  # the replica catches up: the next run reads it back without the previous key
    world.clock.advance(timedelta(minutes=1))
    world.rotator().tick()
    assert world.state(SECONDARY, previous.kms_key_arn) == "Disabled"
    token = build_token_signer(eu_settings, world.clients_in(SECONDARY)).issue({"sub": "u", "aud": "orders-api", "ttl": 60}).token
    assert jwt.get_unverified_header(token)["kid"] == successor.kid


def test_a_region_the_writer_cannot_read_gets_a_growing_reach_figure_so_the_alarm_fires(regions: Deployment) -> None:
    first = regions.rotator().tick()
    active = first.keyring.active
    assert active is not None

    def denied(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetSecretValue")

    regions.held.get_secret_value = denied  # type: ignore[method-assign]
    regions.clock.advance(timedelta(minutes=1))
    revoked = regions.rotator().revoke(active.kid)
    assert revoked.lagging_replicas == (SECONDARY,) and revoked.unreadable_replicas == (SECONDARY,)
    assert SECONDARY in revoked.replication_lag  # in the run that wrote: a figure from the start
    regions.clock.advance(timedelta(minutes=30))
    later = regions.rotator().tick()
    assert later.unreadable_replicas == (SECONDARY,) and later.replication_lag[SECONDARY] >= 30 * 60  # a lower bound
    threshold = 300  # RevocationReachAlarmThreshold's default
    assert regions.settings.signer_cache_ttl.total_seconds() + later.replication_lag[SECONDARY] > threshold


def test_without_the_secondarys_sign_role_named_its_replica_names_no_signer(kms_regions: KmsRegions) -> None:
    """moto signs whatever the key policy says; AWS checks it, so the policy read back is what is asserted."""
    world = kms_regions
    world.settings = world.settings.replace(kms_replica_sign_role_arns=())
    active = world.rotator().tick().keyring.active
    assert active is not None and active.kms_key_arn is not None
    assert world.state(SECONDARY, active.kms_key_arn) == "Enabled"
    policy = json.loads(world.client(SECONDARY, "kms").get_key_policy(KeyId=active.kms_key_arn.rsplit("/", 1)[-1],
                                                                     PolicyName="default")["Policy"])
    assert [s for s in policy["Statement"] if s["Action"] in ("kms:Sign", "kms:GetPublicKey")] == []
    assert "role/" + world.settings.kms_stack_tag + "-*" not in json.dumps(policy)


def test_a_key_published_before_the_regions_were_configured_waits_for_them_and_a_full_lead(regions: Deployment) -> None:
    regions.held.hold(regions.keyring_arn.replace(PRIMARY, SECONDARY))  # eu-west-1's replica, configured later, lags
    alone = regions.settings.replace(primary_region="", regions=(), second_origin_bucket="", second_origin_region="")
    first = build_rotation_service(alone, regions.clients_in(PRIMARY), clock=regions.clock.now, region=PRIMARY).tick()
    active, (pending,) = first.keyring.active, first.keyring.in_state(KeyState.PENDING)
    assert active is not None and pending.published_at is not None  # one region: published at once
    regions.clock.advance(timedelta(minutes=5))
    for _ in range(7):  # past the rotation period of the first key
        report = regions.rotator().tick()
        assert report.keyring.active is not None and report.keyring.active.kid == active.kid
        assert {k.kid: k for k in report.keyring.keys}[pending.kid].published_at is None  # asked again, not held everywhere
        regions.clock.advance(timedelta(minutes=1))
    regions.held.release()
    caught = regions.rotator().tick()
    assert {k.kid: k for k in caught.keyring.keys}[pending.kid].published_at == regions.clock.now()
    assert caught.keyring.active is not None and caught.keyring.active.kid == active.kid  # the lead counts from now
    regions.clock.advance(timedelta(minutes=4))
    assert regions.rotator().tick().keyring.active.kid == pending.kid  # type: ignore[union-attr]

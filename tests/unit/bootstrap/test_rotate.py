"""The rotate function's composition root across regions: which clients it makes in which region, and its refusals (no AWS)."""

from __future__ import annotations

from typing import Any

import pytest

from jwks_rotator.adapters.sdk.clients import ClientFactory
from jwks_rotator.adapters.sdk.promotion import S3OriginMarks, SecretsManagerWriterMarks
from jwks_rotator.adapters.sdk.s3_publisher import WRITER_METADATA
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.lifecycle.origins import EveryOrigin, Origin
from jwks_rotator.core.lifecycle.replicas import EveryRegionRevocations
from jwks_rotator.core.lifecycle.writer import MergedMarks
from jwks_rotator.core.settings import Settings

BASE = {"issuer": "https://issuer.example.com", "keyring_secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbC123",
        "signing_secret_id": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbC123", "jwks_bucket": "bucket"}
REGIONS = {**BASE, "primary_region": "us-east-1", "regions": "us-east-1,eu-west-1,ap-south-1",
           "second_origin_bucket": "bucket-eu", "second_origin_region": "eu-west-1"}


class Made:
    """Client factories that make no client, only note which service was asked for in which region."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def own(self, service: str) -> Any:
        self.asked.append(("own", service))
        return object()

    def regional(self, region: str) -> ClientFactory:
        def make(service: str) -> Any:
            self.asked.append((region, service))
            return object()

        return make


def test_one_region_is_wired_as_before_and_asks_for_no_other_regions_client() -> None:
    made = Made()
    service = build_rotation_service(Settings.from_mapping(BASE), made.own, regional_clients=made.regional)
    assert {region for region, _ in made.asked} == {"own"} and service.writes_here
    assert not isinstance(service._publisher, EveryOrigin) and service._replicas is None and service._views is None


def test_the_primary_writes_both_origins_reads_every_replica_and_keeps_every_regions_list() -> None:
    made = Made()
    service = build_rotation_service(Settings.from_mapping(REGIONS), made.own, region="us-east-1", regional_clients=made.regional)
    other = {(region, service) for region, service in made.asked if region != "own"}
    assert other == {("eu-west-1", "s3"), ("eu-west-1", "ssm"), ("eu-west-1", "secretsmanager"),
                     ("ap-south-1", "ssm"), ("ap-south-1", "secretsmanager")}  # the second origin's bucket in eu-west-1 only
    assert isinstance(service._publisher, EveryOrigin) and service._publisher.names == ("eu-west-1", "us-east-1")  # invalidating origin last
    assert isinstance(service._revocations, EveryRegionRevocations)
    assert service._replicas is not None and service._replicas.regions == ("eu-west-1", "ap-south-1")


def test_without_a_second_origin_one_bucket_is_written() -> None:
    made = Made()
    settings = Settings.from_mapping({**REGIONS, "second_origin_bucket": "", "second_origin_region": ""})
    service = build_rotation_service(settings, made.own, region="us-east-1", regional_clients=made.regional)
    assert not isinstance(service._publisher, EveryOrigin) and ("eu-west-1", "s3") not in made.asked


SECONDARY = {**REGIONS, "jwks_bucket": "bucket-eu", "second_origin_bucket": "bucket", "second_origin_region": "us-east-1",
             "distribution_id": "E2DIST"}
"""eu-west-1's stack: its second origin is the other one, the primary's bucket; its distribution is the primary's."""


def test_a_secondary_is_wired_relative_to_its_own_region_and_writes_nothing() -> None:
    made = Made()
    service = build_rotation_service(Settings.from_mapping(SECONDARY), made.own, region="eu-west-1", regional_clients=made.regional)
    other = {(region, service) for region, service in made.asked if region != "own"}
    assert other == {("us-east-1", "s3"), ("us-east-1", "ssm"), ("us-east-1", "secretsmanager"), ("ap-south-1", "ssm"),
                     ("ap-south-1", "secretsmanager")}  # the other origin's bucket in us-east-1 only
    assert not service.writes_here
    assert service._replicas is not None and service._replicas.regions == ("us-east-1", "ap-south-1")


def test_a_promoted_writer_publishes_to_both_origins_and_invalidates_the_primarys_distribution_last() -> None:
    made = Made()
    service = build_rotation_service(Settings.from_mapping(SECONDARY), made.own, region="eu-west-1", regional_clients=made.regional)
    publisher = service._publisher
    assert isinstance(publisher, EveryOrigin) and publisher.names == ("us-east-1", "eu-west-1")
    primary_origin, own_origin = (o.publisher for o in publisher._origins)
    assert (primary_origin._bucket, primary_origin._distribution_id) == ("bucket", "")  # type: ignore[attr-defined]
    assert (own_origin._bucket, own_origin._distribution_id) == ("bucket-eu", "E2DIST")  # type: ignore[attr-defined]
    assert own_origin._cloudfront is not None  # type: ignore[attr-defined]
    _keyrings, documents = service._writer_marks._sources  # type: ignore[union-attr]
    assert [bucket for _, _, bucket in documents._origins] == ["bucket-eu", "bucket"]  # its fence reads both origins


@pytest.mark.parametrize(("values", "region"), [({**REGIONS, "second_origin_region": "us-east-1"}, "us-east-1"),
                                                ({**SECONDARY, "second_origin_region": "eu-west-1"}, "eu-west-1")])
def test_a_second_origin_in_the_functions_own_region_is_refused(values: dict[str, str], region: str) -> None:
    """The second origin is the other one: in the function's own region it is its own bucket or a stranger's."""
    made = Made()
    with pytest.raises(ConfigurationError, match="second-origin-region != this region") as refused:
        build_rotation_service(Settings.from_mapping(values), made.own, region=region, regional_clients=made.regional)
    assert refused.value.code == "invalid_configuration"


@pytest.mark.parametrize(("changes", "arguments", "says"), [
    ({}, {"regional_clients": None, "region": None}, "own region (AWS_REGION) is required"),
    ({}, {"regional_clients": None, "region": "us-east-1"}, "client factory per region"),
    ({"signing_secret_id": ""}, {"region": "us-east-1"}, "signing-secret-id"),
    ({"second_origin_bucket": "bucket"}, {"region": "us-east-1"}, "rule second-origin-bucket != jwks-bucket"),
])
def test_what_the_wiring_refuses(changes: dict[str, str], arguments: dict[str, Any], says: str) -> None:
    made = Made()
    arguments.setdefault("regional_clients", made.regional)
    with pytest.raises(ConfigurationError) as refused:
        build_rotation_service(Settings.from_mapping({**REGIONS, **changes}), made.own, **arguments)
    assert says in refused.value.message


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_every_regions_writer_marks_its_documents_and_its_fence_reads_the_other_regions_keyrings_and_every_origin(region: str) -> None:
    made = Made()
    values = REGIONS if region == "us-east-1" else SECONDARY
    service = build_rotation_service(Settings.from_mapping(values), made.own, region=region, regional_clients=made.regional)
    origins = service._publisher._origins if isinstance(service._publisher, EveryOrigin) else (Origin(region, service._publisher),)
    assert {o.publisher._writer.get(WRITER_METADATA) for o in origins} == {region}  # type: ignore[attr-defined]
    marks = service._writer_marks
    assert isinstance(marks, MergedMarks)
    keyrings, documents = marks._sources
    assert isinstance(keyrings, SecretsManagerWriterMarks) and isinstance(documents, S3OriginMarks)
    assert sorted(keyrings._clients) == sorted(r for r in ("us-east-1", "eu-west-1", "ap-south-1") if r != region)
    # Each reads both origins: its own bucket first, then the other origin its stack names.
    assert [bucket for _, _, bucket in documents._origins] == (["bucket", "bucket-eu"] if region == "us-east-1" else ["bucket-eu", "bucket"])


KMS = {"key_custody": "kms", "kms_stack_tag": "stack", "kms_sign_role_arn": "arn:aws:iam::123456789012:role/stack-SignFunctionRole-A",
       "kms_rotate_role_arn": "arn:aws:iam::123456789012:role/stack-RotateFunctionRole-A"}


def test_the_writer_under_kms_custody_warns_that_other_regions_cannot_sign_until_their_sign_roles_are_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made = Made()
    build_rotation_service(Settings.from_mapping({**REGIONS, **KMS}), made.own, region="us-east-1", regional_clients=made.regional)
    (warning,) = [r for r in caplog.records if getattr(r, "reason", "") == "replica_sign_roles_missing"]
    assert warning.levelname == "WARNING" and warning.regions == ["ap-south-1", "eu-west-1"]  # type: ignore[attr-defined]
    caplog.clear()
    named = {**REGIONS, **KMS, "kms_replica_sign_role_arns": "arn:aws:iam::123456789012:role/stack-SignFunctionRole-B"}
    build_rotation_service(Settings.from_mapping(named), made.own, region="us-east-1", regional_clients=made.regional)
    build_rotation_service(Settings.from_mapping({**REGIONS, **KMS}), made.own, region="ap-south-1", regional_clients=made.regional)
    assert not [r for r in caplog.records if getattr(r, "reason", "") == "replica_sign_roles_missing"]  # named, or not the writer


def test_the_second_origin_is_never_this_stacks_own_bucket() -> None:
    made = Made()
    same = Settings.from_mapping({**REGIONS, "jwks_bucket": "bucket-eu"})  # the other origin named as its own bucket: a typo
    with pytest.raises(ConfigurationError, match="second-origin-bucket != jwks-bucket"):
        build_rotation_service(same, made.own, region="ap-south-1", regional_clients=made.regional)

"""Secrets Manager compare-and-swap and S3/CloudFront publication against the moto server."""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import UTC, datetime

import pytest

from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import CURRENT, SecretsManagerKeyringStore
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.core.errors import KeyringBehindPublicationError, KeyringConflictError, StoreError
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyState
from jwks_rotator.core.lifecycle.documents import DISCOVERY_PATH, JWKS_PATH, build_documents
from jwks_rotator.core.lifecycle.keygen import generate_key
from jwks_rotator.core.settings import Settings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def settings_for(aws_resources, **changes) -> Settings:
    return Settings(
        issuer="https://issuer.example.com",
        algorithm="ES256",
        keyring_secret_id=aws_resources.secret_id,
        jwks_bucket=aws_resources.bucket,
        distribution_id=aws_resources.distribution_id,
    ).replace(**changes)


def test_cas_write_refuses_a_stale_version(aws_resources):
    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    first = store.load()
    key = generate_key("ES256", NOW)
    version = store.save(first.keyring.replace_keys([key]), first.version_id)
    with pytest.raises(KeyringConflictError):
        store.save(first.keyring, first.version_id)  # a writer that read before us
    loaded = store.load()
    assert loaded.version_id == version and [k.kid for k in loaded.keyring.keys] == [key.kid]
    versions = aws_resources.client("secretsmanager").list_secret_version_ids(SecretId=aws_resources.secret_id)["Versions"]
    assert sum(CURRENT in v.get("VersionStages", []) for v in versions) == 1


def test_a_secret_without_a_value_is_initialised_once(aws_resources):
    sm = aws_resources.client("secretsmanager")
    sm.create_secret(Name=aws_resources.secret_id.split(":")[-1] + "-bare")
    store = SecretsManagerKeyringStore(sm, aws_resources.secret_id.split(":")[-1] + "-bare")
    assert store.load().keyring == Keyring()
    assert store.load().version_id == store.load().version_id


def test_a_missing_secret_is_a_store_error(aws_resources):
    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), "no-such-secret")
    with pytest.raises(StoreError, match="no-such-secret"):
        store.load()


def test_two_rotators_racing_end_with_one_active_key_and_no_lost_key(aws_resources):
    settings = settings_for(aws_resources)
    services = [build_rotation_service(settings, aws_resources.client) for _ in range(4)]
    barrier = threading.Barrier(len(services))
    reports, errors = [], []

    def run(service):
        barrier.wait()
        try:
            reports.append(service.tick())
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    keyring = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id).load().keyring
    assert len(keyring.in_state(KeyState.ACTIVE)) == 1
    # every key any racer created and committed is still there or was never committed: the committed
    # history has no "created" key that vanished without a "deleted"/"revoked" change
    created = {c.kid for r in reports for c in r.changes if c.kind == "created"}
    committed = {k.kid for k in keyring.keys}
    assert committed <= created
    assert sum(r.conflicts for r in reports) >= 1 or len(created) == 2
    jwks = json.loads(aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read())
    assert [k["kid"] for k in jwks["keys"]] == [k.kid for k in keyring.publication_order()]


def test_documents_are_written_with_headers_and_invalidated_only_on_change(aws_resources):
    settings = settings_for(aws_resources, jwks_max_age="30m")
    s3, cloudfront = aws_resources.client("s3"), aws_resources.client("cloudfront")
    publisher = S3Publisher(s3, aws_resources.bucket, settings, cloudfront_client=cloudfront, distribution_id=aws_resources.distribution_id)
    keyring = Keyring((generate_key("ES256", NOW).with_changes(state=KeyState.ACTIVE),))
    documents = build_documents(settings, keyring)

    first = publisher.publish(documents, already_announced=False, generation=keyring.generation)
    assert set(first.uploaded) == {JWKS_PATH, DISCOVERY_PATH} and first.invalidation_id
    for path in (JWKS_PATH, DISCOVERY_PATH):
        stored = s3.get_object(Bucket=aws_resources.bucket, Key=path)
        assert stored["ContentType"] == "application/json"
        assert stored["CacheControl"] == "public, max-age=1800"
        assert stored["Body"].read() == documents.files[path]
    again = publisher.publish(documents, already_announced=True, generation=keyring.generation)
    assert again.uploaded == () and again.invalidation_id is None
    invalidations = cloudfront.list_invalidations(DistributionId=aws_resources.distribution_id)["InvalidationList"]
    assert invalidations["Quantity"] == 1
    # an upload that was never announced (invalidation failed last time) is invalidated again
    retry = publisher.publish(documents, already_announced=False, generation=keyring.generation)
    assert retry.uploaded == () and retry.invalidation_id
    batch = cloudfront.get_invalidation(DistributionId=aws_resources.distribution_id, Id=retry.invalidation_id)
    assert sorted(batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]) == sorted(["/" + DISCOVERY_PATH, "/" + JWKS_PATH])


def test_unchanged_documents_follow_the_keyring_generation_without_an_invalidation(aws_resources):
    """The bucket marks the newest keyring, so a restore to an older version is detected even when its documents
    equal the published ones (it may have undone a bound recorded on a key)."""
    settings = settings_for(aws_resources)
    s3, cloudfront = aws_resources.client("s3"), aws_resources.client("cloudfront")
    publisher = S3Publisher(s3, aws_resources.bucket, settings, cloudfront_client=cloudfront, distribution_id=aws_resources.distribution_id)
    keyring = Keyring((generate_key("ES256", NOW).with_changes(state=KeyState.ACTIVE),), generation=5)
    documents = build_documents(settings, keyring)
    publisher.publish(documents, already_announced=False, generation=5)
    invalidations = cloudfront.list_invalidations(DistributionId=aws_resources.distribution_id)["InvalidationList"]["Quantity"]

    later = publisher.publish(documents, already_announced=True, generation=7)  # a keyring write left them unchanged
    assert later.uploaded == () and later.invalidation_id is None
    assert set(later.refreshed) == {JWKS_PATH, DISCOVERY_PATH}
    for path in (JWKS_PATH, DISCOVERY_PATH):
        stored = s3.get_object(Bucket=aws_resources.bucket, Key=path)
        assert stored["Metadata"]["keyring-generation"] == "7" and stored["Body"].read() == documents.files[path]
    assert cloudfront.list_invalidations(DistributionId=aws_resources.distribution_id)["InvalidationList"]["Quantity"] == invalidations
    assert publisher.publish(documents, already_announced=True, generation=7).refreshed == ()
    with pytest.raises(KeyringConflictError, match="newer"):
        publisher.publish(documents, already_announced=True, generation=6)  # the same documents, an older keyring


def test_published_objects_are_private_over_plain_http(aws_resources):
    settings = settings_for(aws_resources)
    build_rotation_service(settings, aws_resources.client).tick()
    # moto answers .well-known paths with a dummy Cognito JWKS, so ask for the discovery object
    # through boto3 and for anonymous access to a non-.well-known key through plain HTTP
    s3 = aws_resources.client("s3")
    s3.put_object(Bucket=aws_resources.bucket, Key="probe.json", Body=b"{}")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{aws_resources.endpoint}/{aws_resources.bucket}/probe.json", timeout=5)
    assert denied.value.code == 403


def test_a_slow_rotator_cannot_put_an_older_key_set_back(aws_resources):
    """Rotator A read an older keyring; B published a newer one; A's late publication must not undo B's."""
    settings = settings_for(aws_resources)
    clients = aws_resources.client
    fast = build_rotation_service(settings, clients)
    fast.tick()
    store = SecretsManagerKeyringStore(clients("secretsmanager"), aws_resources.secret_id)
    older = store.load()
    fast.rotate_now()  # a newer keyring, with a fresh key, is committed and published
    newer_kids = {k.kid for k in store.load().keyring.keys}
    publisher = S3Publisher(clients("s3"), aws_resources.bucket, settings)
    with pytest.raises(KeyringConflictError, match="newer"):
        publisher.publish(build_documents(settings, older.keyring), already_announced=True, generation=older.keyring.generation)
    jwks = json.loads(clients("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read())
    assert {k["kid"] for k in jwks["keys"]} == newer_kids


def test_a_bucket_ahead_of_a_restored_keyring_is_overwritten_only_when_the_operator_accepts(aws_resources):
    """If the store holds nothing newer (the secret was restored), a tick refuses; publish with accept_restore overwrites."""
    settings = settings_for(aws_resources)
    clients = aws_resources.client
    service = build_rotation_service(settings, clients)
    service.tick()
    store = SecretsManagerKeyringStore(clients("secretsmanager"), aws_resources.secret_id)
    current = store.load()
    # publish a foreign document claiming a far newer generation
    publisher = S3Publisher(clients("s3"), aws_resources.bucket, settings)
    stray = Keyring((generate_key("ES256", NOW).with_changes(state=KeyState.ACTIVE),), generation=10_000)
    publisher.upload(build_documents(settings, stray), (JWKS_PATH,), stray.generation)
    with pytest.raises(KeyringBehindPublicationError):
        service.tick()
    jwks = json.loads(clients("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read())
    assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in stray.keys}, "nothing was overwritten without consent"
    report = service.publish(accept_restore=True)
    assert report.converged
    jwks = json.loads(clients("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read())
    assert {k["kid"] for k in jwks["keys"]} == {k.kid for k in current.keyring.keys}

"""KMS custody across regions: multi-Region keys, a replica per region, and every state change applied in every region.

KMS here is :class:`RegionalKms`, an in-memory vault per region over one set of multi-Region keys (a replica shares its
primary's key id), which refuses calls in a region in outage as AWS does then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault, replica_arn
from jwks_rotator.core.errors import KeyVaultError
from jwks_rotator.core.keys.keyring import Keyring, Revocation
from jwks_rotator.core.keys.records import KeyRecord, KeyState
from jwks_rotator.core.lifecycle.kms_custody import KID_TAG, STACK_TAG, KmsCustodian, key_policy
from jwks_rotator.core.ports import VaultKey
from tests.kms_doubles import ACCOUNT, SIGN_ROLE
from tests.kms_world import kms_settings
from tests.simulation import START

PRIMARY, EU, AP = "us-east-1", "eu-west-1", "ap-south-1"
SETTINGS = kms_settings(primary_region=PRIMARY, regions=f"{PRIMARY},{EU},{AP}")


@dataclass
class _Replica:
    state: str
    policy: str = "{}"
    tags: dict[str, str] = field(default_factory=dict)
    pending_days: int | None = None


class Kms:
    """Every region's keys, by key id; a region in ``down`` refuses every call."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, _Replica]] = {}
        self.public: dict[str, bytes] = {}
        self.down: set[str] = set()
        self.created: list[dict[str, object]] = []
        self.replicated_with: list[dict[str, str]] = []  # the tags each ReplicateKey was given

    def vault(self, region: str) -> RegionalKms:
        return RegionalKms(self, region)


class RegionalKms:
    """One region's KMS (a :class:`~jwks_rotator.core.ports.KeyVault`)."""

    def __init__(self, kms: Kms, region: str) -> None:
        self.kms = kms
        self.region = region

    def _replica(self, operation: str, arn: str) -> _Replica:
        if self.region in self.kms.down:
            raise KeyVaultError(f"KMS {operation} failed (KMSInternalException)", reason="KMSInternalException")
        replica = self.kms.keys.get(arn.rsplit("/", 1)[-1], {}).get(self.region)
        if replica is None:
            raise KeyVaultError(f"KMS {operation} failed (NotFoundException)", reason="NotFoundException")
        return replica

    def create_key(self, *, key_spec: str, tags: Mapping[str, str], policy: str, description: str, multi_region: bool = False) -> str:
        key_id = f"{'mrk-' if multi_region else ''}{len(self.kms.keys):032x}"
        self.kms.created.append({"multi_region": multi_region, "spec": key_spec})
        self.kms.keys[key_id] = {self.region: _Replica("Enabled", policy, dict(tags))}
        private = ec.generate_private_key({"ECC_NIST_P256": ec.SECP256R1(), "ECC_NIST_P384": ec.SECP384R1()}[key_spec])
        self.kms.public[key_id] = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key_id}"

    def replicate(self, key_arn: str, region: str, *, tags: Mapping[str, str], policy: str, description: str) -> str:
        self._replica("replicate_key", key_arn)
        if region in self.kms.down:
            raise KeyVaultError("KMS replicate_key failed (KMSInternalException)", reason="KMSInternalException")
        key_id = key_arn.rsplit("/", 1)[-1]
        self.kms.replicated_with.append(dict(tags))
        if not key_id.startswith("mrk-"):
            raise KeyVaultError("KMS replicate_key failed (UnsupportedOperationException)", reason="UnsupportedOperationException")
        self.kms.keys[key_id][region] = _Replica("Enabled", policy, dict(tags))  # a new replica is enabled when made
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"

    def public_key_der(self, key_arn: str) -> bytes:
        self._replica("get_public_key", key_arn)
        return self.kms.public[key_arn.rsplit("/", 1)[-1]]

    def tag(self, key_arn: str, tags: Mapping[str, str]) -> None:
        self._replica("tag_resource", key_arn).tags.update(tags)

    def describe(self, key_arn: str) -> VaultKey:
        replica = self._replica("describe_key", key_arn)
        return VaultKey(key_arn, dict(replica.tags), START, replica.state, "SIGN_VERIFY", "AWS_KMS", "ECC_NIST_P256", "CUSTOMER")

    def put_policy(self, key_arn: str, policy: str) -> None:
        self._replica("put_key_policy", key_arn).policy = policy

    def policy(self, key_arn: str) -> str:
        return self._replica("get_key_policy", key_arn).policy

    def enable(self, key_arn: str) -> None:
        self._replica("enable_key", key_arn).state = "Enabled"

    def disable(self, key_arn: str) -> None:
        self._replica("disable_key", key_arn).state = "Disabled"

    def schedule_deletion(self, key_arn: str, pending_days: int) -> None:
        replica = self._replica("schedule_key_deletion", key_arn)
        replica.state, replica.pending_days = "PendingDeletion", pending_days

    def list_tagged(self, tag_key: str, tag_value: str) -> list[VaultKey]:
        return [self.describe(f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key_id}") for key_id, replicas in self.kms.keys.items()
                if self.region in replicas and replicas[self.region].tags.get(tag_key) == tag_value]

    def server_time(self) -> datetime | None:
        return None

    def sign(self, key_arn: str, message: bytes, signing_algorithm: str) -> object:
        raise AssertionError("the rotator never signs")


def custodian(kms: Kms) -> KmsCustodian:
    return KmsCustodian(kms.vault(PRIMARY), SETTINGS, lambda _: None, propagation=0.0,
                        regions={EU: kms.vault(EU), AP: kms.vault(AP)})


def states(kms: Kms, arn: str) -> dict[str, str]:
    return {region: replica.state for region, replica in kms.keys[arn.rsplit("/", 1)[-1]].items()}


def signers(policy: str) -> list[dict[str, object]]:
    return [s for s in json.loads(policy)["Statement"] if s["Action"] == "kms:Sign"]


def keyring_with(*records: KeyRecord) -> Keyring:
    return Keyring(keys=records)


def test_a_new_key_is_a_multi_region_key_replicated_to_every_region_tagged_disabled_and_signable_by_no_one() -> None:
    kms = Kms()
    record = custodian(kms).new_key("ES256", START)
    assert record.kms_key_arn is not None and kms.created == [{"multi_region": True, "spec": "ECC_NIST_P256"}]
    assert states(kms, record.kms_key_arn) == {PRIMARY: "Disabled", EU: "Disabled", AP: "Disabled"}
    for region in (EU, AP):
        replica = kms.keys[record.kms_key_arn.rsplit("/", 1)[-1]][region]
        assert replica.tags == {STACK_TAG: "stack", KID_TAG: record.kid} and signers(replica.policy) == []
    assert kms.replicated_with == [{STACK_TAG: "stack"}] * 2  # the stack's tag only, as CreateKey may give; the kid after


def test_a_replica_missing_in_a_region_holds_the_key_back_until_a_later_run_makes_it() -> None:
    kms = Kms()
    kms.down.add(AP)
    custody = custodian(kms)
    record = custody.new_key("ES256", START)
    keyring = keyring_with(record)
    assert custody.replicas_ready(keyring, [record.kid]) == ((), (AP,))  # AP cannot be asked
    kms.down.clear()
    assert custody.replicas_ready(keyring, [record.kid]) == ((), (AP,))  # made now, counted from the next run
    assert record.kms_key_arn is not None and states(kms, record.kms_key_arn)[AP] == "Disabled"
    assert custody.replicas_ready(keyring, [record.kid, "secrets-manager-kid"]) == ((record.kid, "secrets-manager-kid"), ())


def test_a_single_region_key_is_never_counted_as_replicated(caplog: pytest.LogCaptureFixture) -> None:
    kms = Kms()
    arn = kms.vault(PRIMARY).create_key(key_spec="ECC_NIST_P256", tags={STACK_TAG: "stack"}, policy="{}", description="")
    record = KeyRecord(kid="old", alg="ES256", state=KeyState.PENDING, created_at=START, private_jwk={}, kms_key_arn=arn)
    assert custodian(kms).replicas_ready(keyring_with(record), ["old"]) == ((), (AP, EU))
    assert "single-Region KMS key cannot be replicated" in caplog.text


def test_the_hand_over_enables_the_active_key_in_every_region_with_that_regions_policy_and_disables_the_rest() -> None:
    kms = Kms()
    custody = custodian(kms)
    first, second = custody.new_key("ES256", START), custody.new_key("ES384", START)
    assert first.kms_key_arn is not None and second.kms_key_arn is not None
    now = START + timedelta(hours=1)
    active = first.with_changes(state=KeyState.ACTIVE, published_at=now, activated_at=now)
    for region in (PRIMARY, EU):
        kms.vault(region).enable(second.kms_key_arn)  # a key that must not sign, enabled (say, by hand) in two regions
    custody.settle(lambda: keyring_with(active, second))
    assert states(kms, first.kms_key_arn) == {PRIMARY: "Enabled", EU: "Enabled", AP: "Enabled"}
    assert states(kms, second.kms_key_arn) == {PRIMARY: "Disabled", EU: "Disabled", AP: "Disabled"}
    replicas = kms.keys[first.kms_key_arn.rsplit("/", 1)[-1]]
    assert [s["Principal"] for s in signers(replicas[PRIMARY].policy)] == [{"AWS": SIGN_ROLE}]
    (eu_signer,) = signers(replicas[EU].policy)
    assert eu_signer["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert eu_signer["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "RAW"},
                                      "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/stack-*"}}


def test_a_key_that_leaves_the_keyring_is_disabled_and_deleted_in_every_region_and_a_region_down_fails_no_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kms = Kms()
    custody = custodian(kms)
    record = custody.new_key("ES256", START)
    assert record.kms_key_arn is not None
    for region in (PRIMARY, EU, AP):
        kms.vault(region).enable(record.kms_key_arn)
    kms.down.add(AP)
    custody.settle(lambda: Keyring(), [record])  # revoked: the keyring no longer holds it
    assert states(kms, record.kms_key_arn) == {PRIMARY: "PendingDeletion", EU: "PendingDeletion", AP: "Enabled"}
    assert "KMS not yet in line in a region" in caplog.text
    kms.down.clear()
    kms.keys[record.kms_key_arn.rsplit("/", 1)[-1]][PRIMARY].state = "PendingReplicaDeletion"  # as AWS holds such a primary
    tombstone = Keyring(revoked=(Revocation(record.kid, START, record.kms_key_arn),))
    custody.settle(lambda: tombstone)  # the next run, through the revoked key's tombstone, reaches the region
    assert states(kms, record.kms_key_arn) == {PRIMARY: "PendingReplicaDeletion", EU: "PendingDeletion", AP: "PendingDeletion"}


def test_one_region_policies_are_as_before() -> None:
    one = kms_settings()
    assert key_policy(one, "ES256", signer=True, region=EU) == key_policy(one, "ES256", signer=True)
    assert key_policy(SETTINGS, "ES256", signer=True, region=PRIMARY) == key_policy(SETTINGS, "ES256", signer=True)


class _Client:
    class meta:
        region_name = EU

    def __init__(self) -> None:
        self.asked: list[str] = []

    def sign(self, **kwargs: object) -> dict[str, object]:
        self.asked.append(str(kwargs["KeyId"]))
        return {"KeyId": kwargs["KeyId"], "Signature": b"sig"}


def test_a_secondary_signs_a_multi_region_key_through_its_own_replica() -> None:
    client = _Client()
    primary_arn = f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/mrk-0123"
    answer = KmsKeyVault(lambda: client).sign(primary_arn, b"x", "ECDSA_SHA_256")
    assert client.asked == [f"arn:aws:kms:{EU}:{ACCOUNT}:key/mrk-0123"] and answer.key_id == primary_arn
    single = f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/0123"
    assert replica_arn(single, EU) == single and replica_arn(primary_arn, None) == primary_arn


def test_only_the_primary_keys_policy_lets_the_rotator_replicate_it_and_only_into_the_regions() -> None:
    def replicating(policy: str) -> list[dict[str, object]]:
        return [s for s in json.loads(policy)["Statement"] if "kms:ReplicateKey" in json.dumps(s["Action"])]

    (statement,) = replicating(key_policy(SETTINGS, None, signer=False))
    assert statement["Principal"] == {"AWS": SETTINGS.kms_rotate_role_arn}
    assert statement["Condition"] == {"StringEquals": {"kms:ReplicaRegion": [EU, AP]}}
    assert replicating(key_policy(SETTINGS, None, signer=False, region=EU)) == []
    assert replicating(key_policy(kms_settings(), None, signer=False)) == []


def test_a_replicas_policy_names_the_other_regions_sign_roles_when_the_stack_gives_them() -> None:
    eu_role, ap_role = f"arn:aws:iam::{ACCOUNT}:role/stack-SignFunctionRole-EU", f"arn:aws:iam::{ACCOUNT}:role/stack-SignFunctionRole-AP"
    named = SETTINGS.replace(kms_replica_sign_role_arns=f"{eu_role},{ap_role}")
    (signer,) = signers(key_policy(named, "ES256", signer=True, region=EU))
    assert signer["Principal"] == {"AWS": [eu_role, ap_role]} and "ArnLike" not in signer["Condition"]  # type: ignore[operator]
    (own,) = signers(key_policy(named, "ES256", signer=True))
    assert own["Principal"] == {"AWS": SIGN_ROLE}  # the primary's key names its own region's signer, as in one region

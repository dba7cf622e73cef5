"""KMS custody: key records, DER signatures, the signer's KMS branch and the rotator's custodian.

KMS is the eventually consistent test double of ``tests/kms_doubles.py``
(moto lets disabled keys sign and applies changes at once; AWS does neither).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jwks_rotator.core.errors import (
    ConfigurationError,
    KeyringError,
    KeyVaultError,
    PublishError,
    SigningUnavailableError,
    StoreError,
)
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.kms import der_to_jose, kms_key_spec, public_jwk_from_der
from jwks_rotator.core.keys.records import PRIVATE_MEMBERS, KeyRecord, KeyState
from jwks_rotator.core.lifecycle.kms_custody import KID_TAG, ORPHAN_GRACE, STACK_TAG, KmsCustodian
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.ports import VaultSignature
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.hypothesis_profiles import examples
from tests.kms_doubles import SIGN_ROLE, EventuallyConsistentKms
from tests.kms_world import ISSUER, KmsWorld, kms_settings
from tests.simulation import START, FakeClock

P521_ORDER = ec.SECP521R1().key_size  # bits
REQUEST = {"sub": "user-1", "aud": "orders-api", "ttl": 300}


# --------------------------------------------------------------------------- DER -> r || s
@given(r=st.integers(1, 2**521 - 1), s=st.integers(1, 2**521 - 1))
def test_p521_der_becomes_two_left_padded_66_byte_halves(r: int, s: int) -> None:
    raw = der_to_jose(encode_dss_signature(r, s), 66)
    assert len(raw) == 132
    assert (int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")) == (r, s)


@given(half=st.sampled_from([32, 48, 66]), r=st.integers(1, 2**64), s=st.integers(1, 2**64))
def test_short_integers_are_padded_on_the_left_at_every_width(half: int, r: int, s: int) -> None:
    raw = der_to_jose(encode_dss_signature(r, s), half)
    assert raw[: half - 9] == bytes(half - 9) and int.from_bytes(raw[half:], "big") == s


@pytest.mark.parametrize("der", [b"", b"\x30\x00", b"not der", encode_dss_signature(2**528, 1), encode_dss_signature(0, 1)])
def test_malformed_or_oversized_signatures_are_refused(der: bytes) -> None:
    with pytest.raises(SigningUnavailableError):
        der_to_jose(der, 66)


def test_real_es512_signatures_need_left_padding_about_three_times_in_four() -> None:
    vault = EventuallyConsistentKms(FakeClock(START).now)
    arn = vault.create_key(key_spec="ECC_NIST_P521", tags={}, policy=_policy_naming_signer(), description="")
    jwk = public_jwk_from_der(vault.public_key_der(arn), "ES512")
    key = jwt.PyJWK({**jwk, "alg": "ES512"}).key
    padded = 0
    for index in range(400):
        message = f"header.payload-{index}".encode()
        der = vault.sign(arn, message, "ECDSA_SHA_512").signature
        raw = der_to_jose(der, 66)
        padded += raw[0] == 0 or raw[66] == 0  # a DER integer of 65 bytes or less: padded
        jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA512).verify(message, key, raw) or pytest.fail("bad signature")
    assert 0.6 < padded / 400 < 0.9


def _policy_naming_signer() -> str:
    return json.dumps({"Statement": [{"Principal": {"AWS": SIGN_ROLE}, "Action": "kms:Sign"}]})


# --------------------------------------------------------------------------- records
def _kms_record(alg: str = "ES256") -> tuple[KeyRecord, EventuallyConsistentKms]:
    world = KmsWorld(kms_settings(algorithm=alg))
    return world.custodian.new_key(alg, START), world.vault


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_a_kms_record_holds_public_members_and_the_arn_only_and_round_trips(alg: str) -> None:
    record, _ = _kms_record(alg)
    stored = record.to_dict()
    assert "private_jwk" not in stored and stored["kms_key_arn"] == record.kms_key_arn
    assert not PRIVATE_MEMBERS & set(stored["public_jwk"])
    again = KeyRecord.from_dict(json.loads(json.dumps(stored)))
    assert again == record and again.kms_key_arn == record.kms_key_arn and again.custody == "kms"
    assert Keyring.from_json(Keyring((record,)).to_json()).keys[0].public_jwk() == record.public_jwk()


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(private_jwk=d["public_jwk"]), "private_jwk"),
    (lambda d: d.update(kms_key_arn="arn:aws:kms:us-east-1:123:key/x"), "kms_key_arn"),
    (lambda d: d["public_jwk"].update(d="AAAA"), "exactly"),
    (lambda d: d["public_jwk"].update(x=d["public_jwk"]["y"]), "form a key"),
    (lambda d: d.update(kid="A" * 43), "thumbprint"),
])
def test_a_malformed_kms_record_is_refused_naming_the_field(change: Any, field: str) -> None:
    record, _ = _kms_record()
    stored = json.loads(json.dumps(record.to_dict()))
    change(stored)
    with pytest.raises(KeyringError, match=field):
        KeyRecord.from_dict(stored)


def test_kms_custody_refuses_to_start_without_the_stack_tag_and_roles() -> None:
    settings = Settings(issuer=ISSUER, key_custody="kms")
    world = KmsWorld(kms_settings())
    with pytest.raises(ConfigurationError, match="kms-stack-tag, kms-sign-role-arn, kms-rotate-role-arn"):
        RotationService(world.store, world.service._publisher, settings, custodian=world.custodian)
    with pytest.raises(ConfigurationError, match="7d to 30d"):
        kms_settings(key_deletion_window="31d")
    with pytest.raises(ConfigurationError, match="key-custody"):
        kms_settings(key_custody="hsm")


# --------------------------------------------------------------------------- making keys
def test_a_new_key_is_tagged_disabled_and_its_policy_leaves_the_sign_role_out() -> None:
    world = KmsWorld(kms_settings())
    world.service.tick()  # bootstrap: the first key is published and activates, the next one is created
    keyring = world.store.load().keyring
    active, pending = keyring.active, keyring.in_state(KeyState.PENDING)[0]
    assert active is not None and active.kms_key_arn is not None and pending.kms_key_arn is not None
    assert world.vault.calls[:3] == ["create_key", "get_public_key", "disable_key"]  # GetPublicKey refuses disabled keys
    for record in (active, pending):
        key = world.vault.keys[record.kms_key_arn]
        assert key.spec == kms_key_spec("ES256", 2048) == "ECC_NIST_P256"
        assert key.tags == {STACK_TAG: "stack", KID_TAG: record.kid}
    key = world.vault.keys[pending.kms_key_arn]
    assert key.state == "Disabled" and not world.vault.signable(pending.kms_key_arn)
    assert not any(allowed for _, allowed in key.signer_allowed)  # the sign role never had it while pending
    assert world.vault.signable(active.kms_key_arn)
    jwks = world.published_jwks()
    assert {k["kid"] for k in jwks["keys"]} == {active.kid, pending.kid}
    assert all(not PRIVATE_MEMBERS & set(k) for k in jwks["keys"])


def test_tokens_cost_one_sign_call_each_and_verify_with_the_published_jwks() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    signer = world.signer()
    jwks = jwt.PyJWKSet.from_dict(world.published_jwks())
    before = world.vault.calls.count("sign")
    tokens = [signer.issue(REQUEST).token for _ in range(5)]
    assert world.vault.calls.count("sign") - before == 5
    for token in tokens:
        kid = jwt.get_unverified_header(token)["kid"]
        jwt.decode(token, jwks[kid].key, algorithms=["ES256"], audience="orders-api", issuer=ISSUER,
                   options={"verify_iat": False, "verify_nbf": False, "verify_exp": False})


def test_an_answer_for_another_key_is_refused() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    real_sign = world.vault.sign

    def other(key_arn: str, message: bytes, algorithm: str) -> VaultSignature:
        return VaultSignature(key_arn[:-4] + "ffff", real_sign(key_arn, message, algorithm).signature)

    world.vault.sign = other  # type: ignore[method-assign]
    outcome = world.signer().handle(REQUEST)
    assert outcome.response["error"] == "signing_unavailable" and "another key" in outcome.response["message"]


def test_a_signing_input_over_4096_bytes_is_refused_before_kms() -> None:
    world = KmsWorld(kms_settings(max_token_ttl="1h"))
    world.run_until_active()
    signer = world.signer()
    before = world.vault.calls.count("sign")
    outcome = signer.handle({**REQUEST, "claims": {"blob": "x" * 4000}})
    assert outcome.response["error"] == "payload_too_large" and world.vault.calls.count("sign") == before


# --------------------------------------------------------------------------- refusals and revocation
def test_a_disabled_key_makes_the_signer_read_the_keyring_once_then_fail_closed() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    signer = world.signer()
    assert "token" in signer.handle(REQUEST).response
    active = world.store.load().keyring.active
    assert active is not None and active.kms_key_arn is not None
    world.clock.advance(2)
    world.vault.disable(active.kms_key_arn)  # outside the rotator: the keyring still names it
    reads = world.reader.reads
    outcome = signer.handle(REQUEST)
    assert outcome.response["error"] == "signing_unavailable"
    assert world.reader.reads == reads + 1  # re-read once
    again = signer.handle(REQUEST)  # within the refresh interval: no further read
    assert again.response["error"] == "signing_unavailable" and world.reader.reads == reads + 1


def test_revoke_stops_the_key_through_kms_before_the_signer_cache_expires() -> None:
    world = KmsWorld(kms_settings(signer_cache_ttl="10m"), delay=3.0, seed=7)
    world.run_until_active()
    world.tick_for(timedelta(days=1, hours=1))  # the next key is published
    signer = world.signer()
    first = signer.issue(REQUEST)
    revoked = world.store.load().keyring.get(first.kid)
    assert revoked is not None and revoked.kms_key_arn is not None
    world.service.revoke(first.kid)
    assert world.vault.keys[revoked.kms_key_arn].state == "PendingDeletion"
    world.clock.advance(world.delay + 1)  # the disable has taken effect; the cache (10 min) has not expired
    assert not world.vault.signable(revoked.kms_key_arn)
    refused_before = world.vault.calls.count("sign")
    issued = signer.handle(REQUEST)
    assert world.vault.calls.count("sign") >= refused_before + 1
    assert issued.issued is None or issued.issued.kid != first.kid  # never the revoked key
    assert issued.issued is not None  # the successor, already enabled: the re-read found it


# --------------------------------------------------------------------------- hand-over under eventual consistency
def _signable_timeline(vault: EventuallyConsistentKms) -> list[tuple[Any, int]]:
    return [(moment, sum(vault.signable(arn, moment) for arn in vault.keys)) for moment in vault.change_times()]


@hypothesis_settings(max_examples=examples(15), deadline=None)
@given(delay=st.floats(0.5, 20.0), seed=st.integers(0, 2**16), revoke_at=st.sampled_from([None, 2, 4]))
def test_the_hand_over_never_leaves_two_signable_keys_and_none_only_briefly(delay: float, seed: int, revoke_at: int | None) -> None:
    world = KmsWorld(kms_settings(), delay=delay, seed=seed)
    world.run_until_active()
    for day in range(10):
        world.tick_for(timedelta(days=1))
        if revoke_at == day:
            active = world.store.load().keyring.active
            assert active is not None
            world.service.revoke(active.kid)
    timeline = _signable_timeline(world.vault)
    assert max(count for _, count in timeline) == 1
    bootstrapped = next(moment for moment, count in timeline if count == 1)
    gap_started = None
    for moment, count in timeline:
        if moment <= bootstrapped:
            continue
        if count == 0 and gap_started is None:
            gap_started = moment
        elif count == 1 and gap_started is not None:
            # Disable takes effect at the earliest when issued; enable at the latest propagation after the wait.
            assert (moment - gap_started).total_seconds() <= 2 * delay + 1, "no signable key for too long"
            gap_started = None
    assert gap_started is None


# --------------------------------------------------------------------------- deletion and the orphan sweep
def test_a_key_leaving_the_keyring_at_retention_is_scheduled_for_deletion_with_the_window() -> None:
    world = KmsWorld(kms_settings(key_deletion_window="9d"))
    world.run_until_active()
    first = world.store.load().keyring.active
    assert first is not None and first.kms_key_arn is not None
    world.tick_for(timedelta(days=5))
    assert world.store.load().keyring.get(first.kid) is None  # retired after 3 days, retention of about 1 h
    key = world.vault.keys[first.kms_key_arn]
    assert (key.state, key.pending_days) == ("PendingDeletion", 9)
    assert sum(k.state == "PendingDeletion" for k in world.vault.keys.values()) == 1  # nothing else was swept


class _FailingSaves:
    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures = inner, failures

    def load(self) -> Any:
        return self.inner.load()

    def save(self, keyring: Keyring, expected_version_id: str) -> str:
        if self.failures:
            self.failures -= 1
            raise StoreError("the keyring secret could not be written (InternalServiceError)", reason="InternalServiceError")
        return str(self.inner.save(keyring, expected_version_id))


def test_the_orphan_sweep_deletes_unrecorded_keys_only_after_the_grace() -> None:
    world = KmsWorld(kms_settings())
    publisher = world.service._publisher
    failing = RotationService(_FailingSaves(world.store, 1), publisher, world.settings, clock=world.clock.now,
                              custodian=KmsCustodian(world.vault, world.settings, world.clock.advance))
    with pytest.raises(StoreError):  # the failed write
        failing.tick()
    (orphan,) = world.vault.keys  # created, tagged, never recorded
    world.service.tick()  # another container: creates and records its own key, sweeps: the orphan is too young
    recorded = {k.kms_key_arn for k in world.store.load().keyring.keys}
    assert orphan not in recorded and world.vault.keys[orphan].state == "Disabled"
    world.clock.advance(ORPHAN_GRACE + timedelta(seconds=1))
    world.custodian.touched = True
    world.custodian.sweep(world.store.load().keyring, world.clock.now())
    assert world.vault.keys[orphan].state == "PendingDeletion" and world.vault.keys[orphan].pending_days == 7
    assert all(world.vault.keys[arn].state != "PendingDeletion" for arn in recorded if arn)


def test_a_concurrent_rotator_s_fresh_key_is_not_swept() -> None:
    world = KmsWorld(kms_settings())
    world.service.tick()
    other = KmsCustodian(world.vault, world.settings, world.clock.advance)
    fresh = other.new_key("ES256", world.clock.now())  # about to be recorded by another rotator
    assert fresh.kms_key_arn is not None
    world.custodian.sweep(world.store.load().keyring, world.clock.now() + ORPHAN_GRACE - timedelta(seconds=1))
    assert world.vault.keys[fresh.kms_key_arn].state == "Disabled"


def test_a_lost_compare_and_swap_reuses_the_key_it_created() -> None:
    world = KmsWorld(kms_settings())
    record = world.custodian.new_key("ES256", START)
    assert world.custodian.new_key("ES256", START) is record and len(world.vault.keys) == 1
    world.custodian.recorded(Keyring((record.with_changes(state=KeyState.PENDING),)))
    assert world.custodian.new_key("ES256", START).kid != record.kid


def test_a_revoke_whose_disable_failed_is_finished_by_a_later_sweep() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    world.tick_for(timedelta(days=1, hours=1))
    active = world.store.load().keyring.active
    assert active is not None and active.kms_key_arn is not None
    world.vault.fail = {"disable_key"}
    with pytest.raises(KeyVaultError):
        world.service.revoke(active.kid)  # the keyring no longer holds it; KMS refused to disable it
    assert world.store.load().keyring.get(active.kid) is None and world.vault.keys[active.kms_key_arn].state == "Enabled"
    world.vault.fail = set()
    world.custodian.sweep(world.store.load().keyring, world.clock.now() + timedelta(seconds=1))
    assert world.vault.keys[active.kms_key_arn].state == "PendingDeletion"  # older than the grace: disabled and deleted
    assert world.vault.calls[-2:] == ["disable_key", "schedule_key_deletion"]


@pytest.mark.parametrize(("alg", "signing_algorithm"), [("RS256", "RSASSA_PKCS1_V1_5_SHA_256"), ("ES512", "ECDSA_SHA_512"),
                                                         ("EdDSA", "ED25519_SHA_512")])
def test_the_key_policy_names_the_roles_and_gives_sign_to_the_sign_role_only_at_activation(alg: str, signing_algorithm: str) -> None:
    from jwks_rotator.core.lifecycle.kms_custody import key_policy, ownership_sid
    from tests.kms_doubles import ROTATE_ROLE

    settings = kms_settings(algorithm="ES256")  # the key's own algorithm decides, not today's setting
    pending = json.loads(key_policy(settings, alg, signer=False))["Statement"]
    active = json.loads(key_policy(settings, alg, signer=True))["Statement"]
    by_sid = {s["Sid"]: s for s in active}
    assert {s["Sid"] for s in pending} == {"AccountAdministersTheKey", "RotatorManagesTheKey", ownership_sid(settings.kms_stack_tag)}
    assert by_sid["AccountAdministersTheKey"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert by_sid["RotatorManagesTheKey"]["Principal"] == {"AWS": ROTATE_ROLE}
    sign = by_sid["SignerSignsWithTheStackAlgorithm"]
    assert sign["Principal"] == {"AWS": SIGN_ROLE} and sign["Action"] == "kms:Sign"
    assert sign["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": signing_algorithm, "kms:MessageType": "RAW"}}
    for statement in active:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if statement["Sid"] != "SignerSignsWithTheStackAlgorithm":
            assert not any(a in ("kms:Sign", "kms:*") for a in actions), statement["Sid"]


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_every_algorithm_signs_through_the_vault_as_aws_would_and_verifies(alg: str) -> None:
    """All six through the KMS double (which signs as AWS does: PSS salt = hash length, Ed25519 pure); moto signs four."""
    world = KmsWorld(kms_settings(algorithm=alg))
    world.run_until_active()
    jwks = jwt.PyJWKSet.from_dict(world.published_jwks())
    issued = world.signer().issue(REQUEST)
    claims = jwt.decode(issued.token, jwks[issued.kid].key, algorithms=[alg], audience="orders-api", issuer=ISSUER,
                        options={"verify_iat": False, "verify_nbf": False, "verify_exp": False})
    assert claims["sub"] == "user-1" and world.vault.calls.count("sign") == 1


def test_the_kms_adapter_loads_no_aws_sdk_until_its_first_call() -> None:
    """The sign path imports the adapter for every custody; botocore may come only with the first KMS signature."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault\n"
        "vault = KmsKeyVault(lambda: 1 / 0)\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "[]"


# --------------------------------------------------------------------------- failed runs and stale rotators
class _PublishFailsAfter:
    """A publisher whose publications fail (S3 or CloudFront down) once ``ok`` of them have gone through."""

    def __init__(self, inner: Any, ok: int) -> None:
        self.inner, self.ok = inner, ok

    def publish(self, documents: Any, **options: Any) -> Any:
        if self.ok <= 0:
            raise PublishError("the JWKS could not be uploaded (ServiceUnavailable)")
        self.ok -= 1
        return self.inner.publish(documents, **options)


def _revoke_failing_at_publish(world: KmsWorld, kid: str) -> None:
    """``revoke kid`` on a rotator whose publication fails after the keyring write (the first publication, the
    bucket check before any write, goes through)."""
    failing = RotationService(world.store, _PublishFailsAfter(world.service._publisher, ok=1), world.settings,
                              clock=world.clock.now, revocations=world.revocations, custodian=world.custodian)
    with pytest.raises(PublishError):
        failing.revoke(kid)
    assert world.store.load().keyring.get(kid) is None  # the keyring write happened


def _world_with_a_published_successor(delay: float = 3.0) -> tuple[KmsWorld, KeyRecord]:
    world = KmsWorld(kms_settings(), delay=delay, seed=3)
    world.run_until_active()
    world.tick_for(timedelta(days=1, hours=1))  # the next key is published
    active = world.store.load().keyring.active
    assert active is not None and active.kms_key_arn is not None
    return world, active


def test_a_revoke_that_fails_at_publish_still_disables_the_key_in_that_run() -> None:
    world, revoked = _world_with_a_published_successor()
    assert revoked.kms_key_arn is not None
    _revoke_failing_at_publish(world, revoked.kid)
    assert world.vault.keys[revoked.kms_key_arn].state != "Enabled"
    world.clock.advance(world.delay + 1)
    assert not world.vault.signable(revoked.kms_key_arn)
    successor = world.store.load().keyring.active
    assert successor is not None and successor.kms_key_arn is not None
    assert world.vault.signable(successor.kms_key_arn)  # the hand-over completed in the same finally
    assert max(count for _, count in _signable_timeline(world.vault)) == 1


def test_a_revoke_whose_run_failed_and_whose_disable_failed_is_finished_by_the_next_tick() -> None:
    world, revoked = _world_with_a_published_successor()
    assert revoked.kms_key_arn is not None
    real_disable = world.vault.disable

    def refuse_the_revoked_key(key_arn: str) -> None:  # KMS refuses DisableKey on that key only, for that run
        if key_arn == revoked.kms_key_arn:
            raise KeyVaultError("KMS disable_key failed (KMSInternalException)", reason="KMSInternalException")
        real_disable(key_arn)

    world.vault.disable = refuse_the_revoked_key  # type: ignore[method-assign]
    _revoke_failing_at_publish(world, revoked.kid)  # keeps its own error: the settle's failure is only logged
    assert world.vault.keys[revoked.kms_key_arn].state == "Enabled"
    world.vault.disable = real_disable  # type: ignore[method-assign]
    creates = world.vault.calls.count("create_key")
    world.service.tick()  # a plain tick: creates no key (no sweep), knows nothing of the revoked record
    assert world.vault.calls.count("create_key") == creates
    key = world.vault.keys[revoked.kms_key_arn]
    assert key.state == "Disabled"
    world.clock.advance(world.delay + 1)
    assert not world.vault.signable(revoked.kms_key_arn) and not _effective_signer(key)  # policy rewritten too
    successor = world.store.load().keyring.active
    assert successor is not None and successor.kms_key_arn is not None and world.vault.signable(successor.kms_key_arn)
    assert max(count for _, count in _signable_timeline(world.vault)) == 1


def _effective_signer(key: Any) -> bool:
    return bool(sorted(key.signer_allowed, key=lambda item: item[0])[-1][1])


def _hand_over(world: KmsWorld) -> tuple[Keyring, Keyring]:
    """Tick until the active key changes; the keyring just before the hand-over and the one just after."""
    before = world.store.load().keyring
    for _ in range(2000):
        world.clock.advance(world.settings.schedule)
        world.service.tick()
        after = world.store.load().keyring
        if after.active is not None and before.active is not None and after.active.kid != before.active.kid:
            return before, after
        before = after
    raise AssertionError("no hand-over")


def test_a_retired_key_is_disabled_and_its_policy_loses_the_sign_role() -> None:
    world = KmsWorld(kms_settings(), delay=2.0, seed=5)
    world.run_until_active()
    before, _ = _hand_over(world)
    assert before.active is not None and before.active.kms_key_arn is not None
    world.clock.advance(world.delay + 1)
    key = world.vault.keys[before.active.kms_key_arn]
    assert key.state == "Disabled" and not _effective_signer(key)


def _after_a_hand_over(seed: int) -> tuple[KmsWorld, Keyring, str, str]:
    """A world one hand-over later, settled: the keyring from before it, the retired key's ARN and the active one's."""
    world = KmsWorld(kms_settings(), delay=2.0, seed=seed)
    world.run_until_active()
    old, new = _hand_over(world)
    assert old.active is not None and new.active is not None
    retired, current = old.active.kms_key_arn, new.active.kms_key_arn
    assert retired is not None and current is not None
    world.clock.advance(world.delay + 1)
    return world, old, retired, current


def test_a_stale_rotator_s_settle_never_re_enables_the_retired_key() -> None:
    world, old, retired, current = _after_a_hand_over(11)
    assert world.vault.signable(current) and not world.vault.signable(retired)
    # A rotator that read the keyring before the hand-over settles now: its first read is the old keyring.
    reads = iter([old])
    stale = KmsCustodian(world.vault, world.settings, world.clock.advance, propagation=world.delay)
    stale.settle(lambda: next(reads, None) or world.store.load().keyring)
    world.clock.advance(world.delay + 1)
    assert not world.vault.signable(retired) and world.vault.keys[retired].state == "Disabled"
    assert world.vault.signable(current) and world.vault.keys[current].state == "Enabled"
    assert max(count for _, count in _signable_timeline(world.vault)) == 1


def test_a_key_superseded_while_it_is_being_enabled_is_disabled_again() -> None:
    world, old, retired, current = _after_a_hand_over(13)
    # The stale rotator reads the old keyring at the start and just before enabling; the store has moved on after.
    reads = iter([old, old])
    stale = KmsCustodian(world.vault, world.settings, world.clock.advance, propagation=world.delay)
    stale.settle(lambda: next(reads, None) or world.store.load().keyring)
    world.clock.advance(world.delay + 1)
    assert not world.vault.signable(retired) and world.vault.keys[retired].state == "Disabled"
    assert world.vault.signable(current)


def test_a_rotator_whose_clock_runs_fast_does_not_sweep_a_concurrent_rotator_s_fresh_key() -> None:
    world = KmsWorld(kms_settings())
    world.service.tick()
    other = KmsCustodian(world.vault, world.settings, world.clock.advance)
    fresh = other.new_key("ES256", world.clock.now())  # about to be recorded by another rotator
    assert fresh.kms_key_arn is not None
    fast = world.clock.now() + ORPHAN_GRACE + timedelta(minutes=5)  # this rotator's clock, 20 minutes ahead of KMS's
    assert world.custodian.sweep(world.store.load().keyring, fast) == []
    assert world.vault.keys[fresh.kms_key_arn].state == "Disabled"


def test_a_foreign_key_carrying_the_stacks_tag_is_left_alone_and_reported() -> None:
    """Anyone who may tag a key can give it the stack's tag; the rotator changes only keys whose policy it wrote."""
    from jwks_rotator.core.lifecycle.kms_custody import STACK_TAG

    world = KmsWorld(kms_settings())
    world.run_until_active()
    foreign_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"}]})
    foreign = world.vault.create_key(key_spec="ECC_NIST_P256", tags={"team": "payments"}, policy=foreign_policy, description="theirs")
    world.vault.tag(foreign, {STACK_TAG: world.settings.kms_stack_tag})  # the tagger's whole attack
    reported: list[str] = []
    world.custodian.on_foreign = reported.append
    world.clock.advance(ORPHAN_GRACE + timedelta(minutes=1))
    world.custodian.touched = True
    assert world.custodian.sweep(world.store.load().keyring, world.clock.now()) == []
    world.service.tick()
    key = world.vault.keys[foreign]
    assert key.state == "Enabled" and key.policy == foreign_policy and key.pending_days is None
    assert reported and set(reported) == {foreign}


def test_an_unrecorded_key_of_the_stack_is_still_swept_because_its_policy_says_so() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    orphan = KmsCustodian(world.vault, world.settings, world.clock.advance).new_key("ES256", world.clock.now())
    assert orphan.kms_key_arn is not None
    world.clock.advance(ORPHAN_GRACE + timedelta(minutes=1))
    assert world.custodian.sweep(world.store.load().keyring, world.clock.now()) == [orphan.kms_key_arn]


def test_a_tick_settles_kms_from_the_stacks_records_without_listing_the_accounts_keys() -> None:
    world = KmsWorld(kms_settings())
    world.run_until_active()
    world.tick_for(timedelta(days=4))  # past a hand-over
    world.vault.calls.clear()
    world.custodian.touched = False
    world.service.tick()
    assert "list_keys" not in world.vault.calls and "describe_key" in world.vault.calls


def test_no_principal_but_the_stacks_roles_can_change_a_key_policy_or_grant_and_the_creator_passes_the_lockout_check() -> None:
    from jwks_rotator.core.lifecycle.kms_custody import key_policy, ownership_sid
    from tests.kms_doubles import ROTATE_ROLE

    settings = kms_settings()
    for signer in (False, True):
        statements = json.loads(key_policy(settings, "ES256", signer=signer))["Statement"]
        for statement in statements:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            grants_policy = any(a in ("kms:PutKeyPolicy", "kms:Put*", "kms:*", "kms:CreateGrant", "kms:Create*") for a in actions)
            if statement["Effect"] == "Allow" and grants_policy:
                assert statement["Principal"] == {"AWS": ROTATE_ROLE}, statement["Sid"]
        by_sid = {s["Sid"]: s for s in statements}
        assert "kms:PutKeyPolicy" in by_sid["RotatorManagesTheKey"]["Action"]  # KMS's lockout check: the creator may re-policy
        deny = by_sid[ownership_sid(settings.kms_stack_tag)]
        assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", {"AWS": "*"}, "kms:CreateGrant")
        assert not any(a.startswith(("kms:Enable", "kms:Put")) for a in by_sid["AccountAdministersTheKey"]["Action"])


class _Ledger:
    def __init__(self) -> None:
        self.at: datetime | None = None

    def last_completed(self) -> datetime | None:
        return self.at

    def record(self, at: datetime) -> None:
        self.at = at


def test_unproven_ticks_within_half_the_schedule_of_a_completed_one_do_nothing_and_say_so_once(caplog: pytest.LogCaptureFixture) -> None:
    world = KmsWorld(kms_settings())
    ledger = _Ledger()
    world.service._ticks = ledger
    world.run_until_active()
    world.clock.advance(timedelta(minutes=1))  # schedule 15m: within half
    world.vault.calls.clear()
    caplog.clear()
    with caplog.at_level("INFO", logger="jwks_rotator"):
        burst = [world.service.tick(coalesce=True) for _ in range(50)]
    assert all(report.skipped for report in burst) and world.vault.calls == []
    assert all(report.keyring.active is not None for report in burst)  # the answer still names the keys
    assert [r.getMessage() for r in caplog.records].count("tick skipped: another completed within half the schedule") == 50
    assert len(caplog.records) == 50  # one line each, nothing else
    assert not world.service.tick().skipped  # an operator's (proven) tick always runs
    world.clock.advance(world.settings.schedule / 2)
    assert not world.service.tick(coalesce=True).skipped  # half the schedule later: a real tick

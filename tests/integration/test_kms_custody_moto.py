"""KMS custody against moto's KMS over HTTP: the adapter, the rotator's keys and the signer's one Sign per token.

moto signs RSA PKCS#1 v1.5 and ECDSA for real, so RS256 and ES256/384/512
tokens are checked by PyJWT against the JWKS the rotator put in S3. Where
moto does less than AWS the tests say so and use a named test double:
``AwsDisabledKeyRefusal`` (tests/kms_doubles.py) refuses Sign on a disabled
key or one pending deletion as AWS does (moto signs with them).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import jwt
import pytest

from jwks_rotator.adapters.sdk.kms_vault import KmsKeyVault
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.errors import KeyVaultError, SigningKeyDisabledError
from jwks_rotator.core.issuance.signer import REFRESH_INTERVAL
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.kms_custody import KID_TAG, ORPHAN_GRACE, STACK_TAG, key_policy
from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.deploy import AwsResources
from tests.kms_doubles import ROTATE_ROLE, SIGN_ROLE, AwsDisabledKeyRefusal

pytestmark = pytest.mark.integration

ISSUER = "https://issuer.example"
REQUEST = {"sub": "user-1", "aud": "orders-api", "ttl": 300}
MOTO_SIGNS_CORRECTLY = ["RS256", "ES256", "ES384", "ES512"]


def kms_settings(resources: AwsResources, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": ISSUER, "keyring_secret_id": resources.secret_id, "jwks_bucket": resources.bucket,
        "distribution_id": resources.distribution_id, "key_custody": "kms", "kms_stack_tag": f"test-{uuid.uuid4().hex[:8]}",
        "kms_sign_role_arn": SIGN_ROLE, "kms_rotate_role_arn": ROTATE_ROLE,
        "revocation_parameter": f"/jwks-rotator/test-{uuid.uuid4().hex[:8]}/revoked-kids",
    }
    values.update(changes)
    return Settings.from_mapping(values)


class Clients:
    """The wiring's client factory over moto; KMS through the AWS-refusal double, Sign calls counted."""

    def __init__(self, resources: AwsResources) -> None:
        self.resources = resources
        self.kms: Any = AwsDisabledKeyRefusal(resources.client("kms"))

    def __call__(self, service: str) -> Any:
        return self.kms if service == "kms" else self.resources.client(service)


def published_jwks(resources: AwsResources) -> jwt.PyJWKSet:
    body = resources.client("s3").get_object(Bucket=resources.bucket, Key=JWKS_PATH)["Body"].read()
    return jwt.PyJWKSet.from_dict(json.loads(body))


@pytest.mark.parametrize("alg", MOTO_SIGNS_CORRECTLY)
def test_kms_tokens_verify_with_pyjwt_and_cost_one_sign_call(aws_resources: AwsResources, alg: str) -> None:
    settings = kms_settings(aws_resources, algorithm=alg)
    clients = Clients(aws_resources)
    report = build_rotation_service(settings, clients, sleep=lambda _: None).tick()
    active = report.keyring.active
    assert active is not None and active.kms_key_arn is not None
    stored = aws_resources.client("secretsmanager").get_secret_value(SecretId=aws_resources.secret_id, VersionStage="AWSCURRENT")["SecretString"]
    assert '"d":' not in stored and active.kms_key_arn in stored  # public material and the ARN only
    kms = aws_resources.client("kms")
    assert kms.describe_key(KeyId=active.kms_key_arn)["KeyMetadata"]["KeyState"] == "Enabled"
    pending = [k for k in report.keyring.keys if k is not active]
    assert pending and all(kms.describe_key(KeyId=k.kms_key_arn)["KeyMetadata"]["KeyState"] == "Disabled" for k in pending)
    policy = json.loads(kms.get_key_policy(KeyId=active.kms_key_arn.rsplit("/", 1)[-1], PolicyName="default")["Policy"])
    assert {s["Principal"]["AWS"] for s in policy["Statement"] if s["Action"] == "kms:Sign"} == {SIGN_ROLE}  # put at activation
    pending_policy = json.loads(kms.get_key_policy(KeyId=pending[0].kms_key_arn.rsplit("/", 1)[-1], PolicyName="default")["Policy"])
    assert not [s for s in pending_policy["Statement"] if s["Action"] == "kms:Sign"]  # the sign role cannot use it yet
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=active.kms_key_arn)["Tags"]}
    assert tags == {STACK_TAG: settings.kms_stack_tag, KID_TAG: active.kid}

    signer = build_token_signer(settings, clients)
    jwks = published_jwks(aws_resources)
    for _ in range(3):
        before = clients.kms.sign_calls
        token = signer.issue(REQUEST).token
        assert clients.kms.sign_calls == before + 1
        claims = jwt.decode(token, jwks[active.kid].key, algorithms=[alg], audience="orders-api", issuer=ISSUER)
        assert claims["sub"] == "user-1"


def test_revoke_disables_the_key_and_the_next_sign_is_refused_through_kms(aws_resources: AwsResources) -> None:
    settings = kms_settings(aws_resources, algorithm="ES256", signer_cache_ttl="10m")
    clients = Clients(aws_resources)
    service = build_rotation_service(settings, clients, sleep=lambda _: None)
    service.tick()
    ticks = FakeClock()
    signer = build_token_signer(settings, clients, monotonic=ticks.monotonic)
    first = signer.issue(REQUEST)
    report = service.revoke(first.kid)
    successor = report.keyring.active
    assert successor is not None and successor.kid != first.kid
    refused_arn = next(k for k in aws_resources.client("kms").list_keys()["Keys"] if k["KeyArn"] not in
                       {r.kms_key_arn for r in report.keyring.keys} and _tag(aws_resources, k["KeyArn"], KID_TAG) == first.kid)
    state = aws_resources.client("kms").describe_key(KeyId=refused_arn["KeyArn"])["KeyMetadata"]["KeyState"]
    assert state == "PendingDeletion"  # disabled, then scheduled for deletion
    with pytest.raises(SigningKeyDisabledError):  # the adapter's error path for KMSInvalidStateException
        KmsKeyVault(lambda: clients.kms).sign(refused_arn["KeyArn"], b"x.y", "ECDSA_SHA_256")
    ticks.advance(REFRESH_INTERVAL)  # seconds later; far inside signer-cache-ttl (10 min)
    before = clients.kms.sign_calls
    second = signer.issue(REQUEST)  # cached key refused by KMS, keyring read once, successor signs
    assert second.kid == successor.kid and clients.kms.sign_calls == before + 2
    jwt.decode(second.token, published_jwks(aws_resources)[successor.kid].key, algorithms=["ES256"], audience="orders-api")


def _tag(resources: AwsResources, arn: str, key: str) -> str | None:
    tags = resources.client("kms").list_resource_tags(KeyId=arn)["Tags"]
    return next((t["TagValue"] for t in tags if t["TagKey"] == key), None)


class _KmsAnswersLater:
    """A boto3 KMS client (moto's) whose answers carry a ``Date`` ``ahead`` later than moto's: time passing on KMS's
    clock, which the orphan sweep measures key ages on (moto's clock cannot be moved)."""

    def __init__(self, client: Any, ahead: timedelta) -> None:
        self._client, self._ahead = client, ahead

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if not callable(call):
            return call

        def later(**kwargs: Any) -> Any:
            answer = call(**kwargs)
            headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            if "date" in headers:
                headers["date"] = format_datetime(parsedate_to_datetime(headers["date"]) + self._ahead, usegmt=True)
            return answer

        return later


def test_the_kms_adapter_reads_kms_s_clock_from_its_answers(aws_resources: AwsResources) -> None:
    vault = KmsKeyVault(lambda: aws_resources.client("kms"))
    assert vault.server_time() is None
    vault.list_tagged(STACK_TAG, "no-such-stack")
    sent = vault.server_time()
    assert sent is not None and sent.tzinfo is not None


def test_the_orphan_sweep_finds_unrecorded_keys_by_tag_on_moto(aws_resources: AwsResources) -> None:
    settings = kms_settings(aws_resources, key_deletion_window="8d")
    clients = Clients(aws_resources)
    vault = KmsKeyVault(lambda: clients.kms)
    orphan = vault.create_key(key_spec="RSA_2048", tags={STACK_TAG: settings.kms_stack_tag},
                              policy=key_policy(settings, None, signer=False), description="a write that failed")
    foreign = vault.create_key(key_spec="RSA_2048", tags={STACK_TAG: settings.kms_stack_tag}, policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": "kms:*", "Resource": "*"}]}), description="another team's key, tagged")
    other_stack = vault.create_key(key_spec="RSA_2048", tags={STACK_TAG: "another-stack"}, policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": "kms:*", "Resource": "*"}]}), description="not ours")
    later = datetime.now(UTC) + ORPHAN_GRACE + timedelta(minutes=1)
    clients.kms = _KmsAnswersLater(clients.kms, ORPHAN_GRACE + timedelta(minutes=1))  # time passes on KMS's clock too
    service = build_rotation_service(settings, clients, clock=lambda: later, sleep=lambda _: None)
    service.tick()  # creates (and so sweeps): the orphan is older than the grace by KMS's clock
    kms = aws_resources.client("kms")
    assert kms.describe_key(KeyId=orphan)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=other_stack)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.describe_key(KeyId=foreign)["KeyMetadata"]["KeyState"] == "Enabled"  # the stack's tag, not its policy: left alone
    recorded = {k.kms_key_arn for k in service._store.load().keyring.keys}
    assert all(kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] != "PendingDeletion" for arn in recorded if arn)


def test_the_adapter_refuses_a_deletion_window_kms_would_refuse(aws_resources: AwsResources) -> None:
    vault = KmsKeyVault(lambda: aws_resources.client("kms"))
    arn = vault.create_key(key_spec="ECC_NIST_P256", tags={}, policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                 "Action": "kms:*", "Resource": "*"}]}), description="window")
    with pytest.raises(KeyVaultError, match="ValidationException"):  # moto accepts 6 days; KMS does not
        vault.schedule_deletion(arn, 6)


def test_moto_pss_uses_the_maximum_salt_so_ps256_is_refused_locally(aws_resources: AwsResources) -> None:
    """The moto gap behind the local stack's PS256 refusal: a strict verifier rejects moto's PS256 signatures."""
    kms = aws_resources.client("kms")
    arn = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    message = b"eyJhbGciOiJQUzI1NiJ9.e30"
    signature = kms.sign(KeyId=arn, Message=message, MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public = load_der_public_key(kms.get_public_key(KeyId=arn)["PublicKey"])
    strict = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)  # RFC 7518 3.5
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        public.verify(signature, message, strict, hashes.SHA256())  # type: ignore[union-attr, call-arg]
    assert base64.b64encode(signature)

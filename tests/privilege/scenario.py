"""Record every AWS call the two functions' code makes, each under credentials of its own role.

A moto server runs in this process, behind the local AWS front (:class:`jwks_rotator_local.front.AwsFront`)
with a :class:`jwks_rotator_local.call_record.CallRecorder` attached. The resources the template
creates (both secrets under one KMS key, the bucket, the distribution) are created directly on moto,
named as a deployment of the template names them; the two function roles are created in moto's IAM
and assumed through its STS, so every call the recorder sees is signed by a session of one role and
attributed to that role by access key, as on AWS.

The rotate side (``wiring.build_rotation_service``) and the sign side (``wiring.build_token_signer``)
then run a lifecycle against the front with their role's credentials: bootstrap, signing, a scheduled
rotation, an emergency rotation, a revocation and signing again; then the same stack switches to KMS
custody (keys made in KMS under the stack's tag, each with the policy the rotator gives it, the signer
calling kms:Sign) and rotates and revokes there too. What is recorded is what the code really calls,
not a list written by hand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3

from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.bootstrap.sign import build_token_signer
from jwks_rotator.core.keys.keyring import EMPTY_KEYRING_JSON
from jwks_rotator.core.settings import Settings
from jwks_rotator_local.call_record import CallRecorder, MotoFacts, RecordedCall
from jwks_rotator_local.front import AwsFront
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.moto import aws_client, moto_server
from tests.privilege.policies import Deployment, Physical

ACCOUNT = "123456789012"
# A region no other test uses: moto keeps its state per process, and the KMS custody sweep lists every key of the
# account and region (ListKeys, then ListResourceTags per key). In the shared region, the keys hundreds of earlier
# tests in the same process made turned this lifecycle into minutes of tag reads of foreign keys.
REGION = "eu-central-1"
STACK = "jwks-rotator"
_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@dataclass(frozen=True)
class Recording:
    calls: list[RecordedCall]
    unparsed: list[str]
    deployment: Deployment


def _role_clients(front_url: str, credentials: dict[str, Any]) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], region_name=REGION,
    )

    def make(service: str) -> Any:
        return session.client(service, endpoint_url=front_url)

    return make


@contextmanager
def _front(moto_url: str, recorder: CallRecorder) -> Iterator[str]:
    front = AwsFront(moto_url, moto_url, recorder=recorder)
    try:
        yield front.start()
    finally:
        front.stop()


def record_lifecycle(template: dict[str, Any]) -> Recording:
    """Run the functions' code under their roles against the recording front; return what was called."""
    synthetic = Deployment.synthetic(template, stack=STACK, account=ACCOUNT, region=REGION)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs a line per request otherwise
    with moto_server() as moto_url:
        admin = lambda service: aws_client(service, moto_url, region=REGION)  # noqa: E731 - the deployer, straight to moto: not recorded
        iam, sts = admin("iam"), admin("sts")
        roles: dict[str, dict[str, Any]] = {}
        for logical in ("RotateFunctionRole", "SignFunctionRole"):
            name = synthetic.resources[logical].ref
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=_TRUST)["Role"]["Arn"]
            roles[logical] = sts.assume_role(RoleArn=arn, RoleSessionName=logical)["Credentials"]
        kms = admin("kms")
        key = kms.create_key(Description="keyring", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
        secrets = admin("secretsmanager")
        keyring = secrets.create_secret(Name=synthetic.resources["KeyringSecret"].ref.split(":secret:")[1].rsplit("-", 1)[0],
                                        KmsKeyId=key["KeyId"], SecretString=EMPTY_KEYRING_JSON)["ARN"]
        signing = secrets.create_secret(Name=f"{STACK}-signing-key", KmsKeyId=key["KeyId"], SecretString=EMPTY_KEYRING_JSON)["ARN"]
        bucket = synthetic.resources["JwksBucket"].ref
        admin("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        distribution = admin("cloudfront").create_distribution(DistributionConfig={
            "CallerReference": bucket, "Comment": "jwks", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "jwks", "DomainName": f"{bucket}.s3.amazonaws.com",
                                                  "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
            "DefaultCacheBehavior": {"TargetOriginId": "jwks", "ViewerProtocolPolicy": "https-only", "MinTTL": 0,
                                     "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                                     "TrustedSigners": {"Enabled": False, "Quantity": 0}},
        })["Distribution"]["Id"]
        deployment = Deployment.synthetic(template, stack=STACK, account=ACCOUNT, region=REGION, overrides={
            "KeyringSecret": Physical(keyring, {"Id": keyring}),
            "SigningKeySecret": Physical(signing, {"Id": signing}),
            "KeyringKey": Physical(key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]}),
            "Distribution": Physical(distribution, {"Id": distribution, "DomainName": "d1.cloudfront.net"}),
        })
        recorder = CallRecorder(MotoFacts(account=ACCOUNT, region=REGION))
        clock = FakeClock(1_900_000_000)
        settings = Settings.from_mapping({
            "issuer": "https://issuer.example.com", "algorithm": "ES256", "rotation_period": "10m", "publish_lead": "4m",
            "jwks_max_age": "1m", "schedule": "1m", "max_token_ttl": "2m", "default_token_ttl": "1m",
            "signer_cache_ttl": "10s", "clock_skew_leeway": "5s", "keyring_secret_id": keyring, "signing_secret_id": signing,
            "jwks_bucket": bucket, "distribution_id": distribution, "revocation_parameter": f"/jwks-rotator/{STACK}/revoked-kids",
            "kms_sign_role_arn": deployment.role_arn("SignFunctionRole"), "kms_rotate_role_arn": deployment.role_arn("RotateFunctionRole"),
        })
        with _front(moto_url, recorder) as front_url:
            rotator = build_rotation_service(settings, _role_clients(front_url, roles["RotateFunctionRole"]), clock=clock.now)
            signer = build_token_signer(settings, _role_clients(front_url, roles["SignFunctionRole"]), clock=clock.unix,
                                        monotonic=clock.monotonic)
            rotator.tick()
            signer.issue({"sub": "alice", "aud": "demo"})
            for _ in range(12):  # a scheduled rotation
                clock.advance(timedelta(minutes=1))
                rotator.tick()
                signer.issue({"sub": "alice", "aud": "demo"})
            rotator.rotate_now()
            clock.advance(timedelta(minutes=1))
            rotator.tick()
            pending = [k.kid for k in rotator.tick().keyring.keys if k.state.value == "pending"]
            if pending:
                rotator.revoke(pending[0])
            clock.advance(timedelta(seconds=30))
            signer.issue({"sub": "alice", "aud": "demo"})
            # KMS custody on the same stack (new keys only): the KMS calls both roles make, and the key policies.
            kms_settings = settings.replace(key_custody="kms", kms_stack_tag=STACK, kms_handover_wait="0s")
            rotator = build_rotation_service(kms_settings, _role_clients(front_url, roles["RotateFunctionRole"]), clock=clock.now,
                                             sleep=lambda _: None)
            signer = build_token_signer(kms_settings, _role_clients(front_url, roles["SignFunctionRole"]), clock=clock.unix,
                                        monotonic=clock.monotonic)
            rotator.rotate_now()
            for _ in range(3):
                clock.advance(timedelta(seconds=20))
                rotator.tick()
            signer.issue({"sub": "alice", "aud": "demo"})
            pending = [k.kid for k in rotator.tick().keyring.keys if k.state.value == "pending"]
            if pending:
                rotator.revoke(pending[0])
            for _ in range(15):  # the retired keys' retention ends: their KMS keys are scheduled for deletion
                clock.advance(timedelta(minutes=1))
                rotator.tick()
                signer.issue({"sub": "alice", "aud": "demo"})
        return Recording(recorder.calls, list(recorder.unparsed), deployment)

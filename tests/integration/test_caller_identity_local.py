"""End to end on loopback: a moto role session proves itself through the signature-checking STS stand-in; forgeries fail.

moto alone answers any GetCallerIdentity, signed or not; every refusal
asserted here comes from the stand-in or from the signer's own checks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from jwks_rotator.adapters.lean.sts_identity import StsEndpoint, StsIdentityReplayer
from jwks_rotator.core.callers.proof import parse_caller_proof
from jwks_rotator.core.callers.verifier import CallerVerifier
from jwks_rotator.core.errors import UnauthenticatedError
from jwks_rotator_client import build_caller_proof
from jwks_rotator_local.sts_verifier import LocalStsVerifier

pytestmark = pytest.mark.integration

REGION = "us-east-1"
SIGNER = "jwks-rotator-sign"


@dataclass
class Stack:
    moto: str
    sts: LocalStsVerifier
    endpoint: StsEndpoint

    def client(self, service: str, **credentials: Any) -> Any:
        creds = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(service, endpoint_url=self.moto, region_name=REGION, **creds)

    def role_session(self, role: str) -> Credentials:
        self.client("iam").create_role(RoleName=role, AssumeRolePolicyDocument="{}")
        answer = self.client("sts").assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName="session-1")["Credentials"]
        return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])

    def proof(self, credentials: Credentials, signer: str = SIGNER) -> dict[str, Any]:
        return build_caller_proof(credentials, sts_endpoint_url=self.sts.url, region=REGION, signer=signer)

    def verifier(self) -> CallerVerifier:
        return CallerVerifier(
            StsIdentityReplayer.for_endpoint(self.endpoint),
            wall_clock=time.time,
            monotonic_clock=time.monotonic,
            max_age=300,
            leeway=60,
            sts_host=self.endpoint.host,
            sts_region=REGION,
        )


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    sts = LocalStsVerifier(moto, region=REGION)
    url = sts.start()
    yield Stack(moto, sts, StsEndpoint.for_origin(url, REGION))
    sts.stop()
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def refusal_reason(stack: Stack, proof: dict[str, Any]) -> str:
    with pytest.raises(UnauthenticatedError) as caught:
        stack.verifier().verify(proof, {SIGNER})
    return caught.value.reason


def test_a_role_session_is_identified_as_its_role(stack: Stack) -> None:
    role = unique("orders")
    identity = stack.verifier().verify(stack.proof(stack.role_session(role)), {SIGNER})
    assert identity.role_arn == f"arn:aws:iam::123456789012:role/{role}"
    assert identity.sts_arn.endswith(f"assumed-role/{role}/session-1")


def test_an_iam_users_key_is_an_identity_without_a_role(stack: Stack) -> None:
    user = unique("alice")
    iam = stack.client("iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    identity = stack.verifier().verify(stack.proof(Credentials(key["AccessKeyId"], key["SecretAccessKey"])), {SIGNER})
    assert identity.sts_arn == f"arn:aws:iam::123456789012:user/{user}" and identity.role_arn is None


def test_a_bad_signature_is_refused(stack: Stack) -> None:
    proof = stack.proof(stack.role_session(unique("orders")))
    auth = proof["headers"]["Authorization"]
    proof["headers"]["Authorization"] = auth[:-64] + ("0" if auth[-64] != "0" else "1") + auth[-63:]
    assert refusal_reason(stack, proof) == "sts_refused:SignatureDoesNotMatch"


def test_role_a_cannot_pass_as_role_b(stack: Stack) -> None:
    a, b = stack.role_session(unique("role-a")), stack.role_session(unique("role-b"))
    proof = stack.proof(a)
    headers = proof["headers"]
    headers["Authorization"] = headers["Authorization"].replace(a.access_key, b.access_key)
    headers["X-Amz-Security-Token"] = b.token
    assert refusal_reason(stack, proof) == "sts_refused:SignatureDoesNotMatch"


def test_a_session_token_from_another_session_is_refused(stack: Stack) -> None:
    a, b = stack.role_session(unique("role-a")), stack.role_session(unique("role-b"))
    proof = stack.proof(Credentials(a.access_key, a.secret_key, b.token))
    assert refusal_reason(stack, proof) == "sts_refused:InvalidClientTokenId"


def test_a_proof_for_another_signer_is_refused(stack: Stack) -> None:
    assert refusal_reason(stack, stack.proof(stack.role_session(unique("orders")), signer="vault")) == "signer_mismatch"


def test_an_expired_proof_is_refused_by_the_signer_and_by_the_stand_in(stack: Stack) -> None:
    proof = stack.proof(stack.role_session(unique("orders")))
    signed_at = parse_caller_proof(proof, accepted_signers={SIGNER}, sts_host=stack.endpoint.host, sts_region=REGION, now=time.time()).signed_at
    with pytest.raises(UnauthenticatedError) as caught:
        parse_caller_proof(proof, accepted_signers={SIGNER}, sts_host=stack.endpoint.host, sts_region=REGION, now=signed_at + 301)
    assert caught.value.reason == "proof_expired"
    late = LocalStsVerifier(stack.moto, region=REGION, clock=lambda: signed_at + 16 * 60)
    refusal = late.check("POST", "/", proof["headers"], proof["body"].encode())
    assert refusal is not None and refusal.code == "SignatureDoesNotMatch"


def test_a_signed_request_that_is_not_get_caller_identity_is_refused(stack: Stack) -> None:
    proof = stack.proof(stack.role_session(unique("orders")))
    proof["body"] = "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/admin&RoleSessionName=x"
    assert refusal_reason(stack, proof) == "not_get_caller_identity"


def test_a_proof_signed_for_another_host_is_refused(stack: Stack) -> None:
    credentials = stack.role_session(unique("orders"))
    proof = build_caller_proof(credentials, sts_endpoint_url="https://sts.attacker.example", region=REGION, signer=SIGNER)
    assert refusal_reason(stack, proof) == "host_not_sts"


def test_an_unsigned_extra_header_is_refused(stack: Stack) -> None:
    proof = stack.proof(stack.role_session(unique("orders")))
    del proof["headers"]["Content-Type"]
    proof["headers"]["content-type"] = "application/x-www-form-urlencoded"
    assert refusal_reason(stack, proof) == "sts_refused:SignatureDoesNotMatch"
    unsigned = stack.proof(stack.role_session(unique("orders")))
    signed_list = unsigned["headers"]["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    unsigned["headers"]["Authorization"] = unsigned["headers"]["Authorization"].replace(signed_list, signed_list.replace("content-type;", ""))
    assert refusal_reason(stack, unsigned) == "signed_headers_mismatch"


def test_the_default_testing_keys_are_no_identity(stack: Stack) -> None:
    assert refusal_reason(stack, stack.proof(Credentials("testing", "testing"))) in ("authorization_malformed", "sts_refused:InvalidClientTokenId")
    refusal = stack.sts.check("POST", "/", *_signed_raw(stack, Credentials("testing", "testing")))
    assert refusal is not None and refusal.code == "InvalidClientTokenId"


def test_moto_alone_would_have_accepted_the_forgery(stack: Stack) -> None:
    """Guard: the refusals above come from the stand-in, not from moto."""
    proof = stack.proof(stack.role_session(unique("orders")))
    proof["headers"]["Authorization"] = proof["headers"]["Authorization"][:-64] + "0" * 64
    forged = StsIdentityReplayer.for_endpoint(StsEndpoint.for_origin(stack.moto, REGION)).replay(
        parse_caller_proof({**proof, "headers": {**proof["headers"], "Host": stack.endpoint.host}}, accepted_signers={SIGNER}, sts_host=stack.endpoint.host, sts_region=REGION, now=time.time())
    )
    assert forged.status == 200 and forged.arn is not None


def _signed_raw(stack: Stack, credentials: Credentials) -> tuple[dict[str, str], bytes]:
    proof = stack.proof(credentials)
    return proof["headers"], proof["body"].encode()

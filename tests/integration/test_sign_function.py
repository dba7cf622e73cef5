"""The sign handler over HTTP against the moto server and the signature-checking STS stand-in.

Callers are moto role sessions; the handler replays their proofs to
``LocalStsVerifier`` (in this process, beside moto, reading moto's issued
credentials), reads the keyring from moto's Secrets Manager, and decides with
an issuance policy file. Tokens are verified against the JWKS in S3; refusals
are checked by their code and by the reason in the audit line, so each test
knows which check refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from jwks_rotator.adapters.lean.audit_log import AUDIT_TYPE
from jwks_rotator.adapters.sdk.s3_publisher import S3Publisher
from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.lifecycle.documents import JWKS_PATH
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_client import SIGNER_HEADER, build_caller_proof
from jwks_rotator_local.functions import load_function_module
from jwks_rotator_testkit.callers import (
    DEMO_ACCOUNT,
    SIGN_FUNCTION_NAME,
    Caller,
    CountingStsVerifier,
    LambdaContext,
    moto_role_session,
    policy_yaml,
)
from jwks_rotator_testkit.deploy import AwsResources, create_test_resources
from jwks_rotator_testkit.moto import REGION

pytestmark = pytest.mark.integration

ISSUER = "https://issuer.example"
ROLES = ("orders-service", "billing-service", "ops-service", "stranger")
POLICY = policy_yaml(
    {"name": "orders", "callers": [f"arn:aws:iam::{DEMO_ACCOUNT}:role/{role}" for role in ("orders-service", "ops-service")],
     "audiences": ["orders-api", "billing-api"], "subjects": ["user-[0-9]+"], "claims": ["roles", "email_verified"], "max_ttl": "5m"},
    {"name": "billing", "callers": [f"arn:aws:iam::{DEMO_ACCOUNT}:role/{role}" for role in ("billing-service", "ops-service")],
     "audiences": ["billing-api"], "subjects": ["acct-[0-9]+"], "max_ttl": "10m"},
)


def role_arn(role: str) -> str:
    return f"arn:aws:iam::{DEMO_ACCOUNT}:role/{role}"


@dataclass
class Callers:
    """Role sessions on moto, the STS stand-in they prove themselves to, and the policy file naming them."""

    moto: str
    sts: CountingStsVerifier
    sessions: dict[str, Caller]
    policy_file: Path

    def proof(self, role: str, *, signer: str = SIGN_FUNCTION_NAME) -> dict[str, Any]:
        return self.sessions[role].proof(sts_endpoint_url=self.sts.url, signer=signer)

    def env(self) -> dict[str, str]:
        return {"STS_ENDPOINT_URL": self.sts.url, "ISSUANCE_POLICY_FILE": str(self.policy_file), "AWS_REGION": REGION}


@pytest.fixture(scope="module")
def callers(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callers]:
    sts = CountingStsVerifier(moto_endpoint, region=REGION)
    sts.start()
    policy_file = tmp_path_factory.mktemp("policy") / "issuance-policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    sessions = {role: moto_role_session(moto_endpoint, role, session=f"{role}-1") for role in ROLES}
    yield Callers(moto_endpoint, sts, sessions, policy_file)
    sts.stop()


def load_sign_app() -> Any:
    return load_function_module("sign")


def bootstrap(aws_resources: AwsResources, algorithm: str, now: datetime) -> Settings:
    """Create, publish and activate a key the way the rotate function does."""
    settings = Settings(
        issuer=ISSUER, algorithm=algorithm, keyring_secret_id=aws_resources.secret_id, jwks_bucket=aws_resources.bucket,
        distribution_id=aws_resources.distribution_id,
    )
    store = SecretsManagerKeyringStore(aws_resources.client("secretsmanager"), aws_resources.secret_id)
    publisher = S3Publisher(
        aws_resources.client("s3"), aws_resources.bucket, settings, aws_resources.client("cloudfront"), aws_resources.distribution_id
    )
    report = RotationService(store, publisher, settings, clock=lambda: now).tick()
    assert report.converged and report.keyring.active is not None
    return settings


def published_jwks(aws_resources: AwsResources) -> dict[str, Any]:
    body = aws_resources.client("s3").get_object(Bucket=aws_resources.bucket, Key=JWKS_PATH)["Body"].read()
    return json.loads(body)


def function_env(aws_resources: AwsResources, callers: Callers) -> dict[str, str]:
    """The function's environment as the template sets it, pointed at the moto server and the STS stand-in."""
    return {
        "AWS_ENDPOINT_URL": aws_resources.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "KEYRING_SECRET_ID": aws_resources.secret_id, "ISSUER": ISSUER,
        "REVOCATION_PARAMETER": aws_resources.revocation_parameter,
        "ALLOWED_AUDIENCES": "orders-api,billing-api,reports-api", **callers.env(),
    }


@pytest.fixture
def sign_env(aws_resources: AwsResources, callers: Callers, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in function_env(aws_resources, callers).items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def audit_lines(captured: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in captured.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("type") == AUDIT_TYPE]


def verify(token: str, aws_resources: AwsResources, algorithm: str, audience: str) -> dict[str, Any]:
    [jwk] = [k for k in published_jwks(aws_resources)["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"]]
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[algorithm], audience=audience, issuer=ISSUER)


# --- issuing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_token_from_the_handler_verifies_against_the_jwks_in_s3(
    aws_resources: AwsResources, sign_env: Any, callers: Callers, algorithm: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap(aws_resources, algorithm, datetime.now(UTC) - timedelta(minutes=1))
    sign_env.setenv("ALGORITHM", algorithm)
    app = load_sign_app()
    request = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}
    response = app.handler({"proof": callers.proof("orders-service"), **request}, LambdaContext())
    assert response["token_type"] == "Bearer" and response["alg"] == algorithm
    jwks = published_jwks(aws_resources)
    [jwk] = [k for k in jwks["keys"] if k["kid"] == response["kid"]]
    claims = verify(response["token"], aws_resources, algorithm, "orders-api")
    assert claims["sub"] == "user-123" and claims["roles"] == ["admin"] and claims["exp"] == response["expires_at"]
    assert claims["azp"] == "orders"
    assert jwt.get_unverified_header(response["token"]) == {"alg": algorithm, "typ": "JWT", "kid": jwk["kid"]}
    [line] = audit_lines(capsys.readouterr().out)
    assert line["decision"] == "issued" and line["role"] == role_arn("orders-service") and line["jti"] == claims["jti"]


def test_warm_invocations_make_no_aws_call_and_replay_a_reused_proof_once(
    aws_resources: AwsResources, sign_env: Any, callers: Callers
) -> None:
    bootstrap(aws_resources, "ES256", datetime.now(UTC) - timedelta(minutes=1))
    calls: list[str] = []
    real_client = boto3.client

    def counting_client(*args: Any, **kwargs: Any) -> Any:
        client = real_client(*args, **kwargs)
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return client

    sign_env.setattr(boto3, "client", counting_client)
    app = load_sign_app()
    proof = callers.proof("orders-service")
    replays_before = callers.sts.replays
    assert "token" in app.handler({"proof": proof, "sub": "user-1", "aud": "orders-api"}, LambdaContext())
    first = ["GetSecretValue", "GetParameter"]  # the keyring and the revocation list, read together once
    assert calls == first
    for _ in range(200):
        assert "token" in app.handler({"proof": proof, "sub": "user-1", "aud": "billing-api"}, LambdaContext())
    assert calls == first
    assert callers.sts.replays - replays_before == 1


def test_an_empty_keyring_answers_signing_unavailable(aws_resources: AwsResources, sign_env: Any, callers: Callers) -> None:
    app = load_sign_app()
    response = app.handler({"proof": callers.proof("orders-service"), "sub": "user-1", "aud": "orders-api"}, LambdaContext())
    assert response == {"error": "signing_unavailable", "message": "no signing key: the keyring has no active key"}


def test_a_missing_secret_answers_signing_unavailable_with_the_error_code_only(
    aws_resources: AwsResources, sign_env: Any, callers: Callers
) -> None:
    sign_env.setenv("KEYRING_SECRET_ID", "no-such-secret")
    app = load_sign_app()
    response = app.handler({"proof": callers.proof("orders-service"), "sub": "user-1", "aud": "orders-api"}, LambdaContext())
    assert response["error"] == "signing_unavailable" and "ResourceNotFoundException" in response["message"]


# --- forgeries: each refused unauthenticated, by the check its audit reason names ----------------


@dataclass
class Warm:
    """One warm sign function (keyring bootstrapped, handler loaded) shared by a module's tests."""

    app: Any
    resources: AwsResources
    callers: Callers

    def ask(self, event: Any, context: Any = None) -> dict[str, Any]:
        answer: dict[str, Any] = self.app.handler(event, context or LambdaContext())
        return answer


@pytest.fixture(scope="module")
def warm(moto_endpoint: str, callers: Callers) -> Iterator[Warm]:
    resources = create_test_resources(moto_endpoint)
    bootstrap(resources, "ES256", datetime.now(UTC) - timedelta(minutes=1))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in function_env(resources, callers).items():
            patch.setenv(name, value)
        yield Warm(load_sign_app(), resources, callers)


def signed_sts_request(caller: Caller, url: str, body: str, *, signer: str = SIGN_FUNCTION_NAME) -> dict[str, Any]:
    """Any STS request signed by ``caller`` in the proof's shape (``build_caller_proof`` signs only GetCallerIdentity)."""
    headers = {"Host": url.split("://")[1], "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", SIGNER_HEADER: signer}
    request = AWSRequest(method="POST", url=url + "/", data=body.encode(), headers=headers)
    SigV4Auth(caller.credentials, "sts", REGION).add_auth(request)
    return {"headers": dict(request.headers.items()), "body": body}


@dataclass(frozen=True)
class ContextWithIdentity(LambdaContext):
    """A context carrying identity claims a client may put in ClientContext: the function must not read them."""

    client_context: Any = None
    identity: Any = None


def refused(warm: Warm, event: Any, capsys: pytest.CaptureFixture[str], context: Any = None) -> tuple[str, str | None, int]:
    """The error code, the audit line's reason, and how many STS replays the refusal cost."""
    capsys.readouterr()
    before = warm.callers.sts.replays
    answer = warm.ask(event, context)
    assert "token" not in answer and set(answer) == {"error", "message"}, answer
    [line] = audit_lines(capsys.readouterr().out)
    assert line["decision"] == "refused" and line["error"] == answer["error"]
    return answer["error"], line["reason"], warm.callers.sts.replays - before


REQUEST = {"sub": "user-1", "aud": "orders-api"}


def test_a_hand_written_identity_without_proof_is_refused(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    arn = warm.callers.sessions["orders-service"].sts_arn
    event = {**REQUEST, "requestContext": {"identity": {"userArn": arn, "caller": arn}}, "identity": {"arn": arn}}
    context = ContextWithIdentity(client_context={"custom": {"caller": arn, "role": role_arn("orders-service")}}, identity={"arn": arn})
    assert refused(warm, event, capsys, context) == ("unauthenticated", "proof_missing", 0)


def test_a_bad_signature_is_refused_by_sts(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    proof = warm.callers.proof("orders-service")
    auth = proof["headers"]["Authorization"]
    proof["headers"]["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "sts_refused:SignatureDoesNotMatch", 1)


def test_role_a_signature_under_role_b_session_is_refused(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    """A stranger's signature presented with the orders role's access key and session token."""
    a, b = warm.callers.sessions["stranger"], warm.callers.sessions["orders-service"]
    proof = warm.callers.proof("stranger")
    proof["headers"]["Authorization"] = proof["headers"]["Authorization"].replace(a.access_key, b.access_key)
    proof["headers"]["X-Amz-Security-Token"] = b.session_token
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "sts_refused:SignatureDoesNotMatch", 1)


def test_a_session_named_after_another_role_gets_nothing(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    """The session name is the caller's choice: the policy matches the role, so naming a session 'orders-service' gains nothing."""
    impostor = moto_role_session(warm.callers.moto, "stranger", session="orders-service")
    proof = impostor.proof(sts_endpoint_url=warm.callers.sts.url, signer=SIGN_FUNCTION_NAME)
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("caller_not_allowed", "no_profile", 1)


def test_a_proof_for_another_signer_is_refused(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    proof = warm.callers.proof("orders-service", signer="another-sign-function")
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "signer_mismatch", 0)


def test_an_expired_proof_is_refused(warm: Warm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed six minutes ago: STS would still take it (15 minutes), the function's window (5 minutes) does not."""
    six_minutes_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=6)
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *args, **kwargs: six_minutes_ago)
    proof = warm.callers.proof("orders-service")
    monkeypatch.undo()
    assert proof["headers"]["X-Amz-Date"] == six_minutes_ago.strftime("%Y%m%dT%H%M%SZ")
    assert warm.callers.sts.check("POST", "/", proof["headers"], proof["body"].encode()) is None  # STS's own window
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "proof_expired", 0)


def test_a_signed_request_that_is_not_get_caller_identity_is_refused(warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    body = f"Action=AssumeRole&Version=2011-06-15&RoleArn={role_arn('ops-service')}&RoleSessionName=x"
    proof = signed_sts_request(warm.callers.sessions["orders-service"], warm.callers.sts.url, body)
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "not_get_caller_identity", 0)


@pytest.mark.parametrize("where", ["aws", "moto"])
def test_a_proof_for_a_host_other_than_the_sts_endpoint_is_refused(where: str, warm: Warm, capsys: pytest.CaptureFixture[str]) -> None:
    """Signed for AWS's STS, or for moto's own STS (which checks no signature): the function replays only to its endpoint."""
    url = {"aws": f"https://sts.{REGION}.amazonaws.com", "moto": warm.callers.moto}[where]
    caller = warm.callers.sessions["orders-service"]
    proof = build_caller_proof(caller.credentials, sts_endpoint_url=url, region=REGION, signer=SIGN_FUNCTION_NAME)
    assert refused(warm, {"proof": proof, **REQUEST}, capsys) == ("unauthenticated", "host_not_sts", 0)


# --- the policy: roles x requests through the handler ---------------------------------------------

REQUESTS: dict[str, dict[str, Any]] = {
    "orders": {"sub": "user-1", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["reader"]}},
    "other-audience": {"sub": "user-1", "aud": "reports-api"},
    "account-subject": {"sub": "acct-1", "aud": "orders-api"},
    "unlisted-claim": {"sub": "user-1", "aud": "orders-api", "claims": {"email": "a@example.com"}},
    "orders-long-ttl": {"sub": "user-1", "aud": "orders-api", "ttl": 600},
    "billing": {"sub": "acct-7", "aud": "billing-api"},
    "billing-claim": {"profile": "billing", "sub": "acct-7", "aud": "billing-api", "claims": {"roles": ["x"]}},
    "billing-long-ttl": {"profile": "billing", "sub": "acct-7", "aud": "billing-api", "ttl": 1800},
    "billing-named": {"profile": "billing", "sub": "acct-7", "aud": "billing-api"},
}
# Expected answer per role, in REQUESTS order: a profile name (issued, azp) or an error code.
EXPECTED = {
    "orders-service": ["orders", "audience_not_allowed", "subject_not_allowed", "claims_not_allowed", "ttl_too_long",
                       "subject_not_allowed", "caller_not_allowed", "caller_not_allowed", "caller_not_allowed"],
    "billing-service": ["audience_not_allowed"] * 5 + ["billing", "claims_not_allowed", "ttl_too_long", "billing"],
    "ops-service": ["invalid_request"] * 6 + ["claims_not_allowed", "ttl_too_long", "billing"],  # two profiles: name one
    "stranger": ["caller_not_allowed"] * 9,
}
CASES = [
    pytest.param(role, name, expected, id=f"{role}-{name}")
    for role, answers in EXPECTED.items()
    for name, expected in zip(REQUESTS, answers, strict=True)
]


@pytest.mark.parametrize(("role", "request_name", "expected"), CASES)
def test_each_role_gets_what_its_profile_allows(
    warm: Warm, role: str, request_name: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    answer = warm.ask({"proof": warm.callers.proof(role), **REQUESTS[request_name]})
    [line] = audit_lines(capsys.readouterr().out)
    assert line["role"] == role_arn(role) and line["caller"] == warm.callers.sessions[role].sts_arn
    if expected in ("orders", "billing"):
        assert "token" in answer, answer
        request = REQUESTS[request_name]
        claims = verify(answer["token"], warm.resources, "ES256", request["aud"])
        assert claims["azp"] == expected and claims["sub"] == request["sub"]
        assert line["decision"] == "issued" and line["profile"] == expected
    else:
        assert answer["error"] == expected, answer
        assert line["decision"] == "refused" and line["error"] == expected

"""The regional client against the local stack: a region that is down (HTTP 503, nothing listening) is failed over
to the stack's region, whose signer accepts only the proof scoped to it; a refusal there is not failed over."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import jwt
import pytest
from botocore.config import Config

from jwks_rotator_client import RegionalSignClient, RegionalSigner
from jwks_rotator_local.local_stack import SIGN_FUNCTION, LocalStack
from jwks_rotator_local.loopback_server import LoopbackServer

pytestmark = pytest.mark.integration

SETTINGS = {"rotation-period": "60s", "publish-lead": "2s", "schedule": "1s", "jwks-max-age": "1s", "signer-cache-ttl": "1s"}
DOWN_REGION = "eu-west-1"


class OutageHandler(BaseHTTPRequestHandler):
    """Every request is answered as Lambda answers in an outage: HTTP 503, ServiceException."""

    owner: Any

    def do_POST(self) -> None:
        self.owner.requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"Type": "Service", "message": "regional outage"}).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", "ServiceException")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Outage:
    def __init__(self) -> None:
        self.requests = 0
        self.server = LoopbackServer(OutageHandler, self, name="regional-outage")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(SETTINGS) as stack:
        yield stack


@pytest.fixture
def outage() -> Iterator[Outage]:
    down = Outage()
    down.server.start()
    yield down
    down.server.stop()


def free_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def regional_client(stack: LocalStack, down_endpoint: str, *, role: str | None = None, down_first: bool = True) -> RegionalSignClient:
    session = stack.caller_session(role) if role else stack.caller_session()
    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1})
    down = RegionalSigner(
        DOWN_REGION,
        "SignFunction",
        lambda_client=session.client("lambda", endpoint_url=down_endpoint, region_name=DOWN_REGION, config=config),
    )
    up = RegionalSigner(
        stack.region,
        stack.function_name(SIGN_FUNCTION),
        lambda_client=session.client("lambda", endpoint_url=stack.lambda_endpoint, region_name=stack.region, config=config),
        sts_endpoint_url=stack.sts_endpoint,
    )
    return RegionalSignClient([down, up] if down_first else [up, down], session, deadline=20, attempt_timeout=10)


def test_a_region_answering_503_is_failed_over_and_the_token_verifies(stack: LocalStack, outage: Outage) -> None:
    result = regional_client(stack, outage.server.url).sign_detailed({"sub": "alice", "aud": "demo"})
    assert result.region == stack.region and "token" in result.answer, result.answer
    assert [(f.region, f.kind, f.code) for f in result.failures] == [(DOWN_REGION, "aws_error", "ServiceException")]
    assert outage.requests == 1  # no retry of the region that is down: the next region is the retry
    key = jwt.PyJWKClient(stack.jwks_url, cache_jwk_set=False).get_signing_key_from_jwt(result.answer["token"])
    claims = jwt.decode(result.answer["token"], key, algorithms=[result.answer["alg"]], audience="demo", issuer=stack.issuer)
    assert claims["sub"] == "alice"


def test_a_region_with_nothing_listening_is_failed_over(stack: LocalStack) -> None:
    result = regional_client(stack, f"http://127.0.0.1:{free_closed_port()}").sign_detailed({"sub": "alice", "aud": "demo"})
    assert result.region == stack.region and "token" in result.answer, result.answer
    assert [(f.region, f.kind) for f in result.failures] == [(DOWN_REGION, "connection")]


def test_the_stack_refuses_a_proof_scoped_to_another_region(stack: LocalStack) -> None:
    session = stack.caller_session()
    lam = boto3.client(
        "lambda", endpoint_url=stack.lambda_endpoint, region_name=stack.region, aws_access_key_id="x", aws_secret_access_key="x"
    )
    client = RegionalSignClient(
        [RegionalSigner(stack.region, stack.function_name(SIGN_FUNCTION), lambda_client=lam, sts_endpoint_url=stack.sts_endpoint)], session
    )
    proof = client.client(stack.region).proof()[0]
    assert f"/{stack.region}/sts/aws4_request" in proof["headers"]["Authorization"]
    other = "ap-south-1" if stack.region != "ap-south-1" else "eu-west-1"
    misplaced = RegionalSignClient(
        [
            RegionalSigner(
                other, stack.function_name(SIGN_FUNCTION), lambda_client=_relabelled(lam, other), sts_endpoint_url=stack.sts_endpoint
            )
        ],
        session,
    )
    assert misplaced.sign({"sub": "alice", "aud": "demo"})["error"] == "unauthenticated"


def _relabelled(lam: Any, region: str) -> Any:
    """A Lambda client that reaches the stack but presents itself as one of ``region``: the proof is scoped to ``region``."""

    class Relabelled:
        meta = type("Meta", (), {"region_name": region})()

        def invoke(self, **kwargs: Any) -> Any:
            return lam.invoke(**kwargs)

    return Relabelled()


def test_a_refusal_in_the_preferred_region_is_the_answer(stack: LocalStack, outage: Outage) -> None:
    role = stack.client("iam").create_role(RoleName=f"not-in-the-policy-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    answer = regional_client(stack, outage.server.url, role=role, down_first=False).sign({"sub": "alice", "aud": "demo"})
    assert answer["error"] == "caller_not_allowed", answer
    assert outage.requests == 0

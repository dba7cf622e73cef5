"""The Node.js client example (examples/node-sign-client) builds proofs the Python signer accepts.

node runs the example with the AWS SDK v3 packages installed in tests/interop/node
(from the committed lockfile), given a moto role session's credentials in its
environment, as a Node service would have them. The proof it prints goes through
the in-process sign handler, which replays it to the signature-checking STS
stand-in: a token comes back, and a tampered or misdirected proof is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from jwks_rotator_client import build_caller_proof
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME
from jwks_rotator_testkit.moto import REGION
from jwks_rotator_testkit.verifiers import pyjwt_verify

from .conftest import AUDIENCE, INTEROP_PROFILE, Deployment, InteropCaller, make_deployment
from .support import NODE_DIR, split_token

pytestmark = pytest.mark.interop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node-sign-client" / "sign.mjs"


def node_proof(caller: InteropCaller, *, signer: str = SIGN_FUNCTION_NAME) -> dict[str, Any]:
    """The proof the example prints (``--proof-only``) for the caller's credentials, passed to node in its environment."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=caller.caller.access_key,
        AWS_SECRET_ACCESS_KEY=caller.caller.secret_key,
        AWS_SESSION_TOKEN=caller.caller.session_token or "",
        AWS_REGION=REGION,
        STS_ENDPOINT_URL=caller.sts_endpoint_url,
    )
    result = subprocess.run(
        ["node", "--import", str(NODE_DIR / "resolve-here.mjs"), str(EXAMPLE), "--function", signer, "--proof-only"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    proof: dict[str, Any] = json.loads(result.stdout)["proof"]
    return proof


@pytest.fixture(scope="module")
def es256(moto_endpoint: str, interop_caller: InteropCaller, node_modules: Path) -> Iterator[Deployment]:
    deployed = make_deployment(moto_endpoint, "ES256", interop_caller)
    yield deployed
    deployed.edge.stop()


def test_the_node_proof_is_accepted_and_a_token_comes_back(es256: Deployment, interop_caller: InteropCaller) -> None:
    answer = es256.invoke_handler({"proof": node_proof(interop_caller), "sub": "node-user", "aud": AUDIENCE, "ttl": 120})
    assert "token" in answer, answer
    claims = pyjwt_verify(pyjwt.PyJWKClient(es256.jwks_url), answer["token"], "ES256", es256.expect)
    assert claims["sub"] == "node-user" and claims["azp"] == INTEROP_PROFILE and claims["exp"] - claims["iat"] == 120


def test_the_node_proof_has_the_wire_format_of_the_python_client(interop_caller: InteropCaller, node_modules: Path) -> None:
    from_node = node_proof(interop_caller)
    from_python = build_caller_proof(
        interop_caller.caller.credentials, sts_endpoint_url=interop_caller.sts_endpoint_url, region=REGION, signer=SIGN_FUNCTION_NAME
    )
    assert sorted(from_node["headers"]) == sorted(from_python["headers"])
    assert from_node["body"] == from_python["body"] == "Action=GetCallerIdentity&Version=2011-06-15"
    for name in ("Host", "Content-Type", "X-Jwks-Rotator-Signer", "X-Amz-Security-Token"):
        assert from_node["headers"][name] == from_python["headers"][name], name

    def signed_headers(proof: dict[str, Any]) -> str:
        return str(proof["headers"]["Authorization"].split("SignedHeaders=")[1].split(",")[0])

    assert signed_headers(from_node) == signed_headers(from_python) == "content-type;host;x-amz-date;x-amz-security-token;x-jwks-rotator-signer"


def test_a_tampered_node_proof_is_refused_by_the_stand_in(es256: Deployment, interop_caller: InteropCaller) -> None:
    """Guard: acceptance above means the signature was checked, not merely parsed."""
    proof = node_proof(interop_caller)
    auth = proof["headers"]["Authorization"]
    proof["headers"]["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    answer = es256.invoke_handler({"proof": proof, "sub": "node-user", "aud": AUDIENCE})
    assert answer["error"] == "unauthenticated", answer


def test_a_node_proof_for_another_function_is_refused(es256: Deployment, interop_caller: InteropCaller) -> None:
    answer = es256.invoke_handler({"proof": node_proof(interop_caller, signer="some-other-signer"), "sub": "node-user", "aud": AUDIENCE})
    assert answer["error"] == "unauthenticated", answer
    assert "token" not in answer


def test_a_token_from_a_node_proof_carries_the_active_kid(es256: Deployment, interop_caller: InteropCaller) -> None:
    answer = es256.invoke_handler({"proof": node_proof(interop_caller), "sub": "node-user-2", "aud": AUDIENCE})
    assert "token" in answer, answer
    assert split_token(answer["token"])[0]["kid"] == es256.active_key().kid == answer["kid"]


def test_the_node_example_has_help_naming_its_environment(node_modules: Path) -> None:
    result = subprocess.run(["node", "--import", str(NODE_DIR / "resolve-here.mjs"), str(EXAMPLE), "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("--function", "--sub", "--proof-only", "SIGN_FUNCTION_NAME", "STS_ENDPOINT_URL", "AWS_REGION", "AWS_ENDPOINT_URL", "local env"):
        assert name in result.stdout
    wrong = subprocess.run(["node", "--import", str(NODE_DIR / "resolve-here.mjs"), str(EXAMPLE), "--bogus"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2 and "Unknown option '--bogus' (node sign.mjs --help)" in wrong.stderr

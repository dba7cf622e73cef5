"""The Node example's regional client fails over as the Python one does: in order, on outages only, within its
deadline, with one proof per region that the Python signer's checks accept for that region alone."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator.core.callers.proof import parse_caller_proof
from jwks_rotator.core.errors import UnauthenticatedError

from .support import NODE_DIR

pytestmark = pytest.mark.interop

FUNCTION = "jwks-rotator-sign"
TOKEN = {"token": "t", "kid": "k1"}


def scenario(name: str, node_modules: Path) -> Any:
    result = subprocess.run(
        ["node", "--import", str(NODE_DIR / "resolve-here.mjs"), str(NODE_DIR / "regional-scenarios.mjs"), name],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def check_proof(proof: dict[str, Any], region: str) -> None:
    parse_caller_proof(proof, accepted_signers={FUNCTION}, sts_host=f"sts.{region}.amazonaws.com", sts_region=region, now=time.time())


def failures(outcome: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["region"], f["kind"], f["code"]) for f in outcome["failures"]]


def test_outages_fail_over_in_order_and_each_region_gets_a_proof_of_its_own(node_modules: Path) -> None:
    outcome = scenario("failover", node_modules)
    assert outcome["region"] == "ap-south-1" and outcome["answer"] == TOKEN
    assert failures(outcome) == [("eu-west-1", "aws_error", "ServiceException"), ("us-east-1", "aws_error", "TooManyRequestsException")]
    for region in ("eu-west-1", "us-east-1", "ap-south-1"):
        check_proof(outcome["sent"][region]["proofs"][0]["proof"], region)
    with pytest.raises(UnauthenticatedError):
        check_proof(outcome["sent"]["ap-south-1"]["proofs"][0]["proof"], "eu-west-1")


def test_each_kind_of_regional_failure_moves_on(node_modules: Path) -> None:
    outcomes = scenario("kinds", node_modules)
    expected = {"5xx": "aws_error", "connection": "connection", "crash": "function_error", "signing_unavailable": "answer"}
    for name, kind in expected.items():
        assert outcomes[name]["region"] == "us-east-1", name
        assert [(f["region"], f["kind"]) for f in outcomes[name]["failures"]] == [("eu-west-1", kind)], name


def test_a_refusal_is_the_answer_and_a_callers_fault_is_thrown(node_modules: Path) -> None:
    refusal = scenario("refusal", node_modules)
    assert refusal["answer"] == {"error": "caller_not_allowed", "message": "no"} and refusal["sent"]["us-east-1"]["proofs"] == []
    fault = scenario("callersFault", node_modules)
    assert fault["thrown"] == "AccessDeniedException" and fault["sent"]["us-east-1"]["proofs"] == []


def test_a_silent_region_is_left_behind_and_the_deadline_bounds_every_attempt(node_modules: Path) -> None:
    hang = scenario("hang", node_modules)
    assert hang["region"] == "us-east-1" and failures(hang) == [("eu-west-1", "timeout", "")]
    assert hang["failures"][0]["detail"] == "no answer within 200 ms" and hang["sent"]["eu-west-1"]["aborted"] == 1
    late = scenario("deadline", node_modules)
    assert late["unavailable"] == "no region's sign function answered (eu-west-1: timeout, us-east-1: deadline)"
    assert late["failures"][0]["detail"] in {"no answer within 250 ms", "no answer within 249 ms"}
    assert late["sent"]["us-east-1"]["proofs"] == []


def test_a_failed_region_is_tried_last_until_its_demotion_ends(node_modules: Path) -> None:
    assert scenario("demotion", node_modules) == {
        "first": "us-east-1", "whileDemoted": ["us-east-1", "eu-west-1"], "second": "us-east-1", "after": "eu-west-1", "euCalls": 2,
    }


def test_each_region_reuses_its_own_proof(node_modules: Path) -> None:
    reuse = scenario("proofReuse", node_modules)
    first, second, third = reuse["euProofs"]
    assert first == second == third and reuse["usProof"] != first
    check_proof(reuse["usProof"], "us-east-1")


def test_a_wrong_list_of_regions_is_refused(node_modules: Path) -> None:
    assert scenario("validation", node_modules) == [
        "at least one regional sign function is required", "each region may be listed once", "the function ARN is in us-east-1, not in eu-west-1",
    ]

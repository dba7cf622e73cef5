"""On the local stack: a flood of forged proofs naming a verified caller's real access key id cannot stop it renewing."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jwks_rotator_local.local_stack import LocalStack

pytestmark = pytest.mark.integration
REQUEST = {"sub": "alice", "aud": "orders"}
FLOODERS = 4
RENEWALS = 6


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack({"algorithm": "ES256"}, tick=False, state_file=tmp_path / ".jwks-rotator-local.json") as stack:
        yield stack


def forged_from(proof: dict[str, Any]) -> dict[str, Any]:
    """The proof's shape with the real access key id, a made-up signature and a made-up session token (what a forger has)."""
    headers = dict(proof["headers"])
    headers["Authorization"] = re.sub(r"Signature=[0-9a-f]{64}", f"Signature={secrets.token_hex(32)}", headers["Authorization"])
    token_name = next(name for name in headers if name.lower() == "x-amz-security-token")
    headers[token_name] = "FORGED" + secrets.token_hex(64)
    return {"headers": headers, "body": proof["body"]}


def test_forged_proofs_naming_the_callers_key_id_cannot_stop_it_renewing(stack: LocalStack) -> None:
    stack.tick()  # the first tick makes the active key
    client = stack.sign_client()
    assert "token" in client.sign(REQUEST)  # STS verified this session once: its credential now has its own budget
    real, _ = client.proof()
    reasons: Counter[str] = Counter()
    stop = threading.Event()

    def flood() -> None:
        lam = stack.caller_session(session_name="forger").client("lambda", endpoint_url=stack.lambda_endpoint, region_name=stack.region)
        while not stop.is_set():
            payload = json.dumps({"proof": forged_from(real), **REQUEST}).encode()
            answer = json.loads(lam.invoke(FunctionName=client.function_name, Payload=payload)["Payload"].read())
            reasons[answer.get("error", "issued")] += 1

    threads = [threading.Thread(target=flood) for _ in range(FLOODERS)]
    for thread in threads:
        thread.start()
    renewals: list[dict[str, Any]] = []
    try:
        time.sleep(2.0)  # the shared budget's burst is long spent
        for _ in range(RENEWALS):  # the caller renews while the flood goes on: a new proof each time, never seen
            client.proof(fresh=True)
            renewals.append(client.sign(REQUEST))
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert reasons["issued"] == 0 and sum(reasons.values()) > 200, reasons
    assert all("token" in answer for answer in renewals), [answer.get("error") for answer in renewals]

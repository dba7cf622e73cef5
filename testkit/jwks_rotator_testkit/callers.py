"""Callers of the sign function for tests: signed proofs, sign events, and an STS test double.

Two ways to stand in for STS:

* :class:`FakeSts` (a test double, named as such) answers a replayed
  ``GetCallerIdentity`` with the ARN registered for the access key in the
  proof's ``Authorization`` header. It checks no signature: unit tests of the
  handler use it, and the proof checks themselves are tested in the core and,
  against real signatures, through ``jwks_rotator_local.sts_verifier``.
* :func:`moto_role_session` makes a real role session on a moto server, for
  the signature-checking local STS front end.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.credentials import Credentials

from jwks_rotator_client import build_caller_proof
from jwks_rotator_client.operator_client import operation_digest
from jwks_rotator_client.sign_client import REQUEST_HEADER
from jwks_rotator_local.sts_verifier import IssuedCredential, LocalStsVerifier

from .moto import REGION, aws_client

DEMO_ACCOUNT = "123456789012"
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


@dataclass(frozen=True)
class Caller:
    """Credentials that sign proofs, and the STS ARN they belong to."""

    access_key: str
    secret_key: str
    session_token: str | None
    sts_arn: str

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.access_key, self.secret_key, self.session_token)

    def proof(self, *, sts_endpoint_url: str, signer: str, region: str = REGION) -> dict[str, Any]:
        """A fresh signed GetCallerIdentity proof bound to ``signer``."""
        return build_caller_proof(self.credentials, sts_endpoint_url=sts_endpoint_url, region=region, signer=signer)

    def operator_event(self, event: dict[str, Any], *, sts_endpoint_url: str, signer: str, region: str = REGION) -> dict[str, Any]:
        """``event`` with an operator's proof bound to it (its digest signed in ``X-Jwks-Rotator-Request``), as OperatorClient sends."""
        proof = build_caller_proof(
            self.credentials, sts_endpoint_url=sts_endpoint_url, region=region, signer=signer,
            extra_headers={REQUEST_HEADER: operation_digest(event)},
        )
        return {**event, "proof": proof}


def role_caller(role: str, *, session: str = "test-session", account: str = DEMO_ACCOUNT, index: int = 0) -> Caller:
    """A made-up session of ``role`` for :class:`FakeSts` (distinct access key per role, session and index)."""
    key = f"ASIA{abs(hash((role, session, index))) % 10**16:016d}"
    return Caller(key, "fake-secret-" + key, "fake-token-" + key, f"arn:aws:sts::{account}:assumed-role/{role}/{session}")


class FakeSts:
    """STS on loopback for handler tests (a test double): checks the replayed proof's signature against the
    registered callers, as :class:`ArnReplayer` does, and answers GetCallerIdentity with the caller's ARN."""

    def __init__(self, region: str = REGION) -> None:
        self._replayer = ArnReplayer(region=region)
        self.replays = 0
        self._server: ThreadingHTTPServer | None = None

    def register(self, caller: Caller) -> Caller:
        return self._replayer.register(caller)

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeSts is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeSts:
        sts = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body_in = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sts.replays += 1
                headers = {name: value for name, value in self.headers.items() if name.lower() != "content-length"}
                answer = sts._replayer.replay(_Replayed(tuple(headers.items()), body_in.decode("utf-8", "replace")))
                arn = answer.arn
                if arn is None:
                    status, body = answer.status, f"<ErrorResponse><Error><Code>{answer.error_code}</Code></Error></ErrorResponse>".encode()
                else:
                    status = 200
                    body = (
                        "<GetCallerIdentityResponse><GetCallerIdentityResult>"
                        f"<Arn>{arn}</Arn><UserId>AROAFAKE:session</UserId><Account>{DEMO_ACCOUNT}</Account>"
                        "</GetCallerIdentityResult></GetCallerIdentityResponse>"
                    ).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="fake-sts", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@dataclass(frozen=True)
class _Replayed:
    """A replayed request in the shape :class:`ArnReplayer` reads (the core's ``CallerProof`` has these two fields)."""

    headers: tuple[tuple[str, str], ...]
    body: str

    def header_map(self) -> dict[str, str]:
        return dict(self.headers)


@contextmanager
def fake_sts() -> Iterator[FakeSts]:
    """A started :class:`FakeSts`, stopped on exit."""
    sts = FakeSts().start()
    try:
        yield sts
    finally:
        sts.stop()


def moto_role_session(endpoint: str, role: str, *, session: str = "test-session", account: str = DEMO_ACCOUNT) -> Caller:
    """Create (or reuse) IAM role ``role`` on the moto server and assume it: real moto-issued session credentials."""
    iam = aws_client("iam", endpoint)
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::' + account + ':root"},"Action":"sts:AssumeRole"}]}'
    try:
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
    answer = aws_client("sts", endpoint).assume_role(RoleArn=arn, RoleSessionName=session)
    creds = answer["Credentials"]
    return Caller(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], answer["AssumedRoleUser"]["Arn"])


def sign_event(caller: Caller, *, sts_endpoint_url: str, signer: str, **request: Any) -> dict[str, Any]:
    """A sign request carrying a fresh proof of ``caller`` bound to ``signer``."""
    return {"proof": caller.proof(sts_endpoint_url=sts_endpoint_url, signer=signer), **request}


def policy_yaml(*profiles: dict[str, Any]) -> str:
    """An issuance policy document (JSON is valid YAML) from profile dicts that each carry a ``name``."""
    import json

    return json.dumps({"profiles": {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in profiles}})


SIGN_FUNCTION_NAME = "jwks-rotator-sign"
SIGN_FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{DEMO_ACCOUNT}:function:{SIGN_FUNCTION_NAME}"


@dataclass(frozen=True)
class LambdaContext:
    """The parts of Lambda's context object the handlers read."""

    function_name: str = SIGN_FUNCTION_NAME
    invoked_function_arn: str = SIGN_FUNCTION_ARN
    function_version: str = "$LATEST"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    memory_limit_in_mb: int = 512

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class ArnReplayer:
    """An in-memory STS for the core's ``IdentityReplayer`` port (a test double).

    It checks the proof's SigV4 signature as STS would, with the local STS
    front end's checker against the registered callers' secrets, then answers
    with the caller's ARN; anything else is STS's error.
    """

    def __init__(self, *callers: Caller, region: str = REGION) -> None:
        self._callers = {caller.access_key: caller for caller in callers}
        self._checker = LocalStsVerifier("http://127.0.0.1:1", region=region, lookup=self._lookup)
        self.replays = 0

    def register(self, caller: Caller) -> Caller:
        self._callers[caller.access_key] = caller
        return caller

    def _lookup(self, access_key: str) -> IssuedCredential | None:
        caller = self._callers.get(access_key)
        return None if caller is None else IssuedCredential(caller.secret_key, caller.session_token, None)

    def replay(self, proof: Any) -> Any:
        from jwks_rotator.core.callers.verifier import ReplayAnswer

        self.replays += 1
        headers = proof.header_map()
        refusal = self._checker.check("POST", "/", headers, proof.body.encode())
        if refusal is not None:
            return ReplayAnswer(refusal.status, error_code=refusal.code)
        found = _CREDENTIAL.search(next(value for name, value in headers.items() if name.lower() == "authorization"))
        assert found is not None
        return ReplayAnswer(200, arn=self._callers[found.group(1)].sts_arn)


class CountingStsVerifier(LocalStsVerifier):
    """The signature-checking local STS front end, counting the GetCallerIdentity replays it answers."""

    replays = 0

    def answer(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
        if b"GetCallerIdentity" in body:
            self.replays += 1
        return super().answer(method, path, headers, body)

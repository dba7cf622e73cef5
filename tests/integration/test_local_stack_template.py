"""The local stack is the template: its functions' names, environment and credentials come from the deployed stack.

The functions reach AWS through :class:`RecordingForwarder` (``aws_endpoint``),
a test double that notes the SigV4 access key and service of every request
before passing it to moto, so each call is attributed to the credentials that
signed it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from jwks_rotator_cli.local_state import LOCAL_ACCOUNT
from jwks_rotator_local.function_env import FunctionEnvironment
from jwks_rotator_local.local_stack import LocalStack
from jwks_rotator_local.loopback_server import LoopbackServer
from jwks_rotator_testkit.fast import WATCHABLE_PACE, fast_settings

FAST = fast_settings(WATCHABLE_PACE)
STACK = "template-stack-local"
_CREDENTIAL = re.compile(r"Credential=(?P<key>[A-Z0-9]+)/\d{8}/[^/]+/(?P<service>[a-z0-9-]+)/aws4_request")


class RecordingForwarder:
    """Forwards every request to ``upstream`` unchanged and records (access key id, service, X-Amz-Target or path)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self.upstream = ""
        self._http = LoopbackServer(_ForwardHandler, self, name="RecordingForwarder")

    @property
    def url(self) -> str:
        return self._http.url

    def bind(self) -> str:
        return self._http.bind()

    def start(self, upstream: str) -> None:
        self.upstream = upstream
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def record(self, key: str, service: str, action: str) -> None:
        with self._lock:
            self.calls.append((key, service, action))


class _ForwardHandler(BaseHTTPRequestHandler):
    owner: RecordingForwarder
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = _CREDENTIAL.search(self.headers.get("Authorization", ""))
        action = self.headers.get("X-Amz-Target") or f"{self.command} {urlsplit(self.path).path}"
        self.owner.record(match["key"] if match else "", match["service"] if match else "", action)
        target = urlsplit(self.owner.upstream)
        connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length", "transfer-encoding")}
        headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[LocalStack, RecordingForwarder]]:
    forwarder = RecordingForwarder()
    url = forwarder.bind()
    stack = LocalStack(FAST, aws_endpoint=url, stack_name=STACK, tick=False)
    try:
        stack.start()
        forwarder.start(stack.moto_endpoint)
        stack.tick()
        stack.sign_client().sign({"sub": "alice", "aud": "demo"})
        yield stack, forwarder
    finally:
        stack.stop()
        forwarder.stop()


def test_each_function_signs_its_aws_calls_with_its_own_template_roles_credentials(recorded: tuple[LocalStack, RecordingForwarder]) -> None:
    stack, forwarder = recorded
    deployed = stack.deployed_template()
    rotate, sign = deployed.functions["RotateFunction"], deployed.functions["SignFunction"]
    assert rotate.role_arn == deployed.resources["RotateFunctionRole"].arn
    assert sign.role_arn == deployed.resources["SignFunctionRole"].arn
    assert set(rotate.access_key_ids).isdisjoint(sign.access_key_ids)
    keys = {key for key, _, _ in forwarder.calls}
    assert keys and all(deployed.role_of_access_key(key) for key in keys), forwarder.calls  # no dummy or shared key
    by_role: dict[str, set[str]] = {}
    for key, service, action in forwarder.calls:
        by_role.setdefault(str(deployed.role_of_access_key(key)), set()).add(f"{service} {action}")
    assert "secretsmanager secretsmanager.PutSecretValue" in by_role[rotate.role_arn]
    assert "secretsmanager secretsmanager.GetSecretValue" in by_role[sign.role_arn]
    # The sign role reads (only) the revocation record in the bucket; it writes nothing.
    s3_calls = {call for call in by_role[sign.role_arn] if call.startswith("s3 ")}
    assert s3_calls <= {"s3 s3.GetObject"} | {c for c in s3_calls if c.startswith("s3 GET /") and c.endswith("/revocations/revoked-kids.json")}
    assert not any("PutSecretValue" in call for call in by_role[sign.role_arn]), by_role[sign.role_arn]


def test_the_credentials_are_sessions_of_the_roles_cloudformation_created(recorded: tuple[LocalStack, RecordingForwarder]) -> None:
    stack, _ = recorded
    for logical, function in stack.deployed_template().functions.items():
        env = stack.function_environment(logical)
        assert env["AWS_ACCESS_KEY_ID"] in function.access_key_ids and "AWS_SECRET_ACCESS_KEY" not in env
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == function.function_name == stack.function_name(logical)
        assert function.function_name.startswith(f"{STACK}-{logical}-")
        sandbox = stack.lambda_api.resolve(logical).sandbox  # type: ignore[union-attr]
        assert sandbox is not None
        with sandbox.active():
            identity = boto3.client("sts", endpoint_url=stack.moto_endpoint).get_caller_identity()
        role_name = function.role_arn.rsplit("/", 1)[1]
        assert identity["Arn"] == f"arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/{role_name}/{function.function_name}"


def test_the_lambda_api_answers_to_physical_names_and_logical_ids_with_the_deployed_configuration(recorded: tuple[LocalStack, RecordingForwarder]) -> None:
    stack, _ = recorded
    lam = boto3.client("lambda", endpoint_url=stack.endpoint, region_name=stack.region, aws_access_key_id="testing", aws_secret_access_key="testing")
    deployed = stack.deployed_template()
    for logical in ("SignFunction", "RotateFunction"):
        by_logical = lam.get_function_configuration(FunctionName=logical)
        by_name = lam.get_function_configuration(FunctionName=stack.function_name(logical))
        assert by_logical == {**by_name, "ResponseMetadata": by_logical["ResponseMetadata"]}
        assert by_name["FunctionName"] == stack.function_name(logical) and by_name["Role"] == deployed.functions[logical].role_arn
        variables = by_name["Environment"]["Variables"]
        assert variables["KEYRING_SECRET_ID"] == deployed.physical_id("KeyringSecret")
        assert variables["REVOCATION_PARAMETER"] == f"/jwks-rotator/{STACK}/revoked-kids"
        assert variables["ISSUER"] == stack.edge_url  # the Issuer parameter
        assert not any(name.startswith("AWS_SECRET") or name == "AWS_SESSION_TOKEN" for name in variables)
    answer = lam.invoke(FunctionName="RotateFunction", Payload=json.dumps({"operation": "tick"}))
    assert "FunctionError" not in answer and json.loads(answer["Payload"].read())["active_kid"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}
    assert outputs["SignFunctionName"] == stack.function_name("SignFunction") and outputs["JwksUrl"] == stack.jwks_url


def test_concurrent_functions_each_see_only_their_own_environment() -> None:
    first, second = FunctionEnvironment("first", {"WHO": "first"}), FunctionEnvironment("second", {"WHO": "second"})
    barrier = threading.Barrier(2)
    seen: dict[str, list[str | None]] = {"first": [], "second": []}

    def run(environment: FunctionEnvironment) -> None:
        with environment.active():
            for _ in range(50):
                barrier.wait(timeout=10)
                seen[environment.name].append(os.environ.get("WHO"))

    threads = [threading.Thread(target=run, args=(e,)) for e in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"first": ["first"] * 50, "second": ["second"] * 50}
    assert "WHO" not in os.environ  # the process environment is untouched
    with first.active():
        assert os.environ["AWS_CONFIG_FILE"] == os.devnull and "AWS_PROFILE" not in os.environ

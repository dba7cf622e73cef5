"""A stand-in for the AWS Parameters and Secrets Lambda Extension, backed by the moto server.

Lambda runs the extension beside the sign function on ``localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT``; locally
the functions run in-process, so the local stack serves the same two endpoints on a free loopback port (parallel tests
and stacks never collide) and passes that port to the functions' environment:

* ``GET /secretsmanager/get?secretId=ID[&versionStage=S|&versionId=V]``: ``GetSecretValue`` on moto, answered as the
  extension answers (the API's JSON: ``ARN``, ``Name``, ``VersionId``, ``SecretString``, ``VersionStages``,
  ``CreatedDate``);
* ``GET /systemsmanager/parameters/get?name=NAME[&withDecryption=true]``: ``GetParameter`` on moto, answered as
  ``{"Parameter": {...}}``.

As the extension does, it refuses a request whose ``X-Aws-Parameters-Secrets-Token`` header is missing or (when the
function has a session token, ``AWS_SESSION_TOKEN`` in the environment the functions see) is not that token: ``401``.
An AWS error is passed on with its status and ``{"__type": CODE}`` (never the service's message). It caches nothing:
the template sets the extension's TTLs to 0, so every request is one AWS call, and :attr:`SecretsExtension.requests`
counts them (the benchmark's AWS calls per 1,000 warm tokens).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .loopback_server import LoopbackServer

TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def function_session_token() -> str | None:
    """The session token the in-process functions see (``AWS_SESSION_TOKEN``), if any."""
    return os.environ.get("AWS_SESSION_TOKEN") or None


class SecretsExtension:
    """The extension's two GET endpoints on loopback, answered from the moto server at ``moto_endpoint``."""

    def __init__(
        self,
        endpoint: str,
        *,
        region: str = "us-east-1",
        host: str = "127.0.0.1",
        port: int = 0,
        session_token: Callable[[], str | None] = function_session_token,
        credentials: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        """``endpoint``: moto, or the local cloud's AWS front; ``credentials``: the calling function's keys
        (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), read at the first request, as the
        extension calls AWS with the function's role (default: moto's dummy keys)."""
        self._endpoint = endpoint
        self._region = region
        self._credentials = credentials
        self._clients: tuple[Any, Any] | None = None
        self._session_token = session_token
        self._lock = threading.Lock()
        self.requests = 0
        """Requests answered from moto (each one AWS call: the extension caches nothing here, as with TTL 0)."""
        self.refused = 0
        """Requests refused for their token."""
        self._http = LoopbackServer(_Handler, self, host=host, port=port, name="SecretsExtension")

    @property
    def port(self) -> int:
        return int(self._http.url.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> SecretsExtension:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> SecretsExtension:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the answers, without HTTP ---------------------------------------------
    def authorised(self, presented: str | None) -> bool:
        """The token header is present and, when the functions have a session token, equal to it."""
        if presented is None:
            return False
        expected = self._session_token()
        return expected is None or hmac.compare_digest(presented.encode(), expected.encode())

    def answer(self, path: str, query: dict[str, str], token: str | None) -> tuple[int, dict[str, Any]]:
        """Status and JSON body for one GET."""
        if not self.authorised(token):
            with self._lock:
                self.refused += 1
            return 401, {}  # no AWS error code: the reader names it by its status (HTTP401)
        if path == "/secretsmanager/get" and query.get("secretId"):
            params = {"SecretId": query["secretId"]}
            if "versionId" in query:
                params["VersionId"] = query["versionId"]
            if "versionStage" in query:
                params["VersionStage"] = query["versionStage"]
            return self._call("secretsmanager.get_secret_value", params, _secret_answer)
        if path == "/systemsmanager/parameters/get" and query.get("name"):
            decrypt = query.get("withDecryption", "false").lower() == "true"
            return self._call("ssm.get_parameter", {"Name": query["name"], "WithDecryption": decrypt}, _parameter_answer)
        return 400, {"__type": "InvalidRequest"}

    def _client(self, service: str) -> Any:
        with self._lock:
            if self._clients is None:
                keys: dict[str, Any] = dict(DUMMY_CREDENTIALS)
                if self._credentials is not None:
                    given = self._credentials()
                    keys = {"aws_access_key_id": given["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": given["AWS_SECRET_ACCESS_KEY"],
                            "aws_session_token": given.get("AWS_SESSION_TOKEN")}
                # As the extension does (an AWS SDK inside): standard retries, so a throttled or failed read is retried.
                config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2)
                options: dict[str, Any] = {"endpoint_url": self._endpoint, "region_name": self._region, "config": config, **keys}
                self._clients = (boto3.client("secretsmanager", **options), boto3.client("ssm", **options))
            return self._clients[0] if service == "secretsmanager" else self._clients[1]

    def _call(self, operation: str, params: dict[str, Any], shape: Callable[[dict[str, Any]], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
        service, name = operation.split(".")
        try:
            return 200, shape(getattr(self._client(service), name)(**params))
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400)
            return status, {"__type": str(exc.response.get("Error", {}).get("Code") or "ClientError")}
        except BotoCoreError:
            return 502, {"__type": "ServiceUnavailable"}


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value.isoformat() if isinstance(value, datetime) else value


def _secret_answer(response: dict[str, Any]) -> dict[str, Any]:
    keys = ("ARN", "Name", "VersionId", "SecretString", "SecretBinary", "VersionStages", "CreatedDate")
    return {key: _json_safe(response[key]) for key in keys if key in response}


def _parameter_answer(response: dict[str, Any]) -> dict[str, Any]:
    parameter = {key: _json_safe(value) for key, value in response.get("Parameter", {}).items()}
    return {"Parameter": parameter, "ResultMetadata": {}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as written: no 40 ms delayed-ACK stall on a kept-alive connection
    owner: SecretsExtension

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        status, body = self.owner.answer(parts.path, query, self.headers.get(TOKEN_HEADER))
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the answers hold secret values."""

"""The Lambda Invoke API on loopback, as ``sam local start-lambda`` offers it, running handlers in-process.

``POST /2015-03-31/functions/{FunctionName}/invocations`` where FunctionName is
a name (``SignFunction``), ``NAME:QUALIFIER`` or a function ARN. Unchanged
client code works against it::

    boto3.client("lambda", endpoint_url=api.url, region_name="us-east-1").invoke(
        FunctionName="SignFunction", Payload=json.dumps({...}))

Responses follow Lambda: 200 with the JSON result; an exception in the handler
gives 200 with ``X-Amz-Function-Error: Unhandled`` and ``{"errorMessage",
"errorType"}`` (no stack trace); an unknown function gives 404 with
``x-amzn-ErrorType: ResourceNotFoundException``. ``X-Amz-Invocation-Type``
``Event`` answers 202 and runs the handler in a background thread, ``DryRun``
answers 204. The timeout only drives ``get_remaining_time_in_millis``: a
handler that overruns is not stopped.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from .loopback_server import LoopbackServer

Handler = Callable[[Any, Any], Any]
ACCOUNT_ID = "123456789012"
_ROUTE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$")
_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalFunction:
    """One function the API can run: its handler and the settings its context reports."""

    name: str
    handler: Handler
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0


class LambdaContext:
    """The context object a Python handler receives (the attributes powertools and handlers read)."""

    def __init__(self, function: LocalFunction, region: str) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function.name}"
        self.memory_limit_in_mb = function.memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation returned: the JSON payload and, on failure, ``Unhandled``."""

    payload: Any
    function_error: str | None = None

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def describe_failure(self) -> str:
        """The error payload (``errorType``, ``errorMessage``) as one line."""
        if isinstance(self.payload, dict) and "errorMessage" in self.payload:
            return f"{self.payload.get('errorType', 'Error')}: {self.payload['errorMessage']}"
        return str(self.payload)


class LambdaApi:
    """A threaded HTTP server speaking the Invoke API for a fixed set of in-process functions."""

    def __init__(
        self,
        functions: Mapping[str, LocalFunction] | list[LocalFunction],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
    ) -> None:
        items = functions.values() if isinstance(functions, Mapping) else functions
        self._functions = {f.name: f for f in items}
        self._host = host
        self._port = port
        self.region = region
        self._http = LoopbackServer(_InvokeHandler, self, host=host, port=port, name="LambdaApi")
        self._async: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The endpoint URL for boto3 (``http://127.0.0.1:PORT``); valid after :meth:`start`."""
        return self._http.url

    def start(self) -> str:
        """Serve in a background thread; returns the endpoint URL."""
        return self._http.start()

    def stop(self) -> None:
        """Stop serving; waits for asynchronous (``Event``) invocations still running."""
        self._http.stop()
        for thread in list(self._async):
            thread.join()

    # --- invocation ------------------------------------------------------
    def resolve(self, function_name: str) -> LocalFunction | None:
        """The function a FunctionName (name, ``name:qualifier`` or ARN) refers to."""
        name = unquote(function_name)
        match = _ARN.match(name) or _NAME.match(name)
        if match is None:
            return None
        return self._functions.get(match.group("name"))

    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        """Run a function's handler in this thread, with a fresh context, as Lambda would."""
        function = self.resolve(function_name)
        if function is None:
            raise KeyError(function_name)
        context = LambdaContext(function, self.region)
        try:
            result = function.handler(event, context)
        except Exception as exc:
            log.info("function %s raised %s", function.name, type(exc).__name__)
            return InvocationResult({"errorMessage": str(exc), "errorType": type(exc).__name__}, "Unhandled")
        try:
            return InvocationResult(json.loads(json.dumps(result)))
        except (TypeError, ValueError) as exc:
            return InvocationResult({"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}, "Unhandled")

    def invoke_async(self, function_name: str, event: Any) -> None:
        """Run a handler in a background thread (``InvocationType=Event``)."""
        thread = threading.Thread(target=self.invoke, args=(function_name, event), name=f"lambda-event-{function_name}", daemon=True)
        self._async = [t for t in self._async if t.is_alive()]
        self._async.append(thread)
        thread.start()


class _InvokeHandler(BaseHTTPRequestHandler):
    owner: LambdaApi
    server_version = "jwks-rotator-local-lambda"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        match = _ROUTE.match(urlsplit(self.path).path)
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no such operation: POST {urlsplit(self.path).path}")
            return
        function_name = unquote(match.group("name"))
        if self.owner.resolve(function_name) is None:
            arn = function_name if function_name.startswith("arn:") else (
                f"arn:aws:lambda:{self.owner.region}:{ACCOUNT_ID}:function:{function_name}"
            )
            self._error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"Function not found: {arn}")
            return
        try:
            event = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "InvalidRequestContentException", "Could not parse request body into json")
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            self._send(HTTPStatus.NO_CONTENT, b"", {})
            return
        if invocation_type == "Event":
            self.owner.invoke_async(function_name, event)
            self._send(HTTPStatus.ACCEPTED, b"", {})
            return
        if invocation_type != "RequestResponse":
            self._error(HTTPStatus.BAD_REQUEST, "InvalidParameterValueException", f"unsupported InvocationType {invocation_type!r}")
            return
        result = self.owner.invoke(function_name, event)
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        self._send(HTTPStatus.OK, result.body, headers)

    def do_GET(self) -> None:
        self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", "only function invocation is offered")

    def _error(self, status: HTTPStatus, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type})

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not worth a line each."""

"""The Lambda Invoke API on loopback, as ``sam local start-lambda`` offers it, running handlers in-process.

``POST /2015-03-31/functions/{FunctionName}/invocations`` and ``GET .../configuration``; unchanged boto3 client code
works against it. Responses follow Lambda (200 with the result; ``X-Amz-Function-Error: Unhandled`` without a stack
trace; 404 ``ResourceNotFoundException``; ``Event`` 202, ``DryRun`` 204). A function answers to its physical name
and its template logical id; its context always carries the real name and ARN, as on Lambda.

What a handler writes to stdout during an invocation is delivered, line by line, to the function's CloudWatch log
group between ``START``/``END``/``REPORT`` lines, in a background thread that never fails an invocation
(:meth:`LambdaApi.flush_logs` waits for it).

Names, timeouts, log capture per invoking thread and delivery: Design: docs/design/local-cloud.md.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, TextIO, cast
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from .faults import RegionFaults
from .function_env import FunctionEnvironment
from .loopback_server import LoopbackServer

Handler = Callable[[Any, Any], Any]
ACCOUNT_ID = "123456789012"
_ROUTE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_CONFIGURATION_ROUTE = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/configuration/?$")
RUNTIME = "python3.12"
_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$")
_NAME = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$")
log = logging.getLogger(__name__)
LogLine = tuple[int, str]  # (milliseconds since the epoch, text without its newline)
_EVENT_MAX_BYTES = 256 * 1024 - 26  # CloudWatch Logs: one event's message, less the per-event overhead
_BATCH_MAX_EVENTS = 10_000
_BATCH_MAX_BYTES = 1_048_576 - 64 * 1024  # PutLogEvents' limit, with room for the request's own overhead


@dataclass(frozen=True)
class LocalFunction:
    """One function the API can run: its handler, the settings its context reports and its configured environment."""

    name: str
    handler: Handler
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 30.0
    environment: Mapping[str, str] = field(default_factory=dict)
    """What GetFunctionConfiguration reports as ``Environment.Variables`` (never credentials)."""
    aliases: tuple[str, ...] = ()
    """Other names the API routes to this function (the template's logical id)."""
    role: str = ""
    """The execution role's ARN (GetFunctionConfiguration's ``Role``)."""
    sandbox: FunctionEnvironment | None = None
    """The environment and credentials its invocations run with (None: the process's)."""


class LambdaContext:
    """The context object a Python handler receives (the attributes powertools and handlers read)."""

    def __init__(self, function: LocalFunction, region: str, *, log_group: str | None = None, log_stream: str | None = None) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function.name}"
        self.memory_limit_in_mb = function.memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = log_group or f"/aws/lambda/{function.name}"
        self.log_stream_name = log_stream or new_log_stream_name()
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


def new_log_stream_name() -> str:
    """A log stream name as Lambda gives each execution environment: ``YYYY/MM/DD/[$LATEST]HEX`` (UTC date)."""
    return time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + uuid.uuid4().hex


def _now_ms() -> int:
    return int(time.time() * 1000)


class InvocationOutput:
    """What one invocation wrote to stdout, as timestamped lines, between Lambda's own START/END/REPORT lines."""

    def __init__(self, *, echo: bool) -> None:
        self.echo = echo
        self.lines: list[LogLine] = []
        self._partial = ""

    def write(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        if complete:
            now = _now_ms()
            self.lines.extend((now, line) for line in complete if line.strip())

    def add(self, line: str) -> None:
        """A line of the runtime's own (START, END, REPORT): delivered, never echoed."""
        self.lines.append((_now_ms(), line))

    def finish(self, request_id: str, started: float, memory_mb: int) -> None:
        """End the output: an unterminated last line, then END and REPORT."""
        if self._partial.strip():
            self.lines.append((_now_ms(), self._partial))
        self._partial = ""
        duration = (time.monotonic() - started) * 1000
        self.add(f"END RequestId: {request_id}")
        self.add(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {math.ceil(duration)} ms\tMemory Size: {memory_mb} MB")


_current_output: ContextVar[InvocationOutput | None] = ContextVar("jwks_rotator_local_invocation_output", default=None)
_router_lock = threading.Lock()


class _StdoutRouter:
    """Stands in for ``sys.stdout``: an invocation's writes go to its output (and on when echoing); all others pass through."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        output = _current_output.get()
        if output is None:
            return self.stream.write(text)
        output.write(text)
        if output.echo:
            token = _current_output.set(None)  # the stream below may itself be routed: capture once
            try:
                self.stream.write(text)
            except (OSError, ValueError):
                pass  # a closed stdout must not fail the invocation: the line is captured already
            finally:
                _current_output.reset(token)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _route_stdout() -> None:
    """Put a router in front of ``sys.stdout`` (once per stdout object) and point stdout's logging handlers at it.

    Loggers keep the stream they were created with (powertools' Logger does), so
    handlers writing to the current stdout are moved to the router too.
    """
    if isinstance(sys.stdout, _StdoutRouter):
        return
    with _router_lock:
        stream = sys.stdout
        if isinstance(stream, _StdoutRouter) or stream is None:
            return
        router = cast(TextIO, _StdoutRouter(stream))
        loggers = [logging.getLogger(), *(o for o in logging.root.manager.loggerDict.values() if isinstance(o, logging.Logger))]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                    handler.setStream(router)
        sys.stdout = router


class _Environments:
    """Idle execution environments per function, one log stream each: a concurrent invocation gets its own, as in Lambda."""

    def __init__(self) -> None:
        self._idle: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def acquire(self, function: str) -> str:
        with self._lock:
            idle = self._idle.get(function)
            if idle:
                return idle.pop()
        return new_log_stream_name()

    def release(self, function: str, stream: str) -> None:
        with self._lock:
            self._idle.setdefault(function, []).append(stream)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _batches(lines: list[LogLine]) -> Iterator[list[dict[str, Any]]]:
    """PutLogEvents batches: messages cut to the event limit, timestamps never going back, within the request limits."""
    batch: list[dict[str, Any]] = []
    size = 0
    last = 0
    for timestamp, text in lines:
        data = text.encode("utf-8")
        if len(data) > _EVENT_MAX_BYTES:
            text = data[:_EVENT_MAX_BYTES].decode("utf-8", "ignore")
            data = text.encode("utf-8")
        last = max(last, timestamp)
        if batch and (len(batch) >= _BATCH_MAX_EVENTS or size + len(data) + 26 > _BATCH_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append({"timestamp": last, "message": text})
        size += len(data) + 26
    if batch:
        yield batch


class _LogDelivery:
    """Sends invocations' lines to CloudWatch Logs from one background thread, in order; failures are counted and dropped."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queue: queue.Queue[tuple[str, str, list[LogLine]] | None] = queue.Queue()
        self._known: set[tuple[str, str]] = set()  # (group, "") and (group, stream) known to exist
        self._pending = 0
        self._state = threading.Condition()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def submit(self, group: str, stream: str, lines: list[LogLine]) -> None:
        with self._state:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
                self._thread.start()
        self._queue.put((group, stream, lines))

    def flush(self, timeout: float) -> bool:
        with self._state:
            return self._state.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float) -> None:
        self.flush(timeout)
        with self._state:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            group, stream, lines = item
            try:
                self._deliver(group, stream, lines)
            except Exception as exc:  # delivery never fails an invocation: count and drop
                self.dropped += len(lines)
                log.log(logging.WARNING if self.dropped == len(lines) else logging.DEBUG, "dropped %d log line(s) for %s: %s", len(lines), group, exc)
            finally:
                with self._state:
                    self._pending -= 1
                    self._state.notify_all()

    def _deliver(self, group: str, stream: str, lines: list[LogLine]) -> None:
        self._ensure(group, stream)
        for batch in _batches(lines):
            try:
                self._client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            except ClientError as exc:  # the group or stream went away (a reset): create them again, once
                if _error_code(exc) != "ResourceNotFoundException":
                    raise
                self._known.difference_update({(group, ""), (group, stream)})
                self._ensure(group, stream)
                self._client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)

    def _ensure(self, group: str, stream: str) -> None:
        for key, create, kwargs in (
            ((group, ""), self._client.create_log_group, {"logGroupName": group}),
            ((group, stream), self._client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            if key in self._known:
                continue
            try:
                create(**kwargs)
            except ClientError as exc:
                if _error_code(exc) != "ResourceAlreadyExistsException":
                    raise
            self._known.add(key)


class LambdaApi:
    """A threaded HTTP server speaking the Invoke API for a fixed set of in-process functions."""

    def __init__(
        self,
        functions: Mapping[str, LocalFunction] | list[LocalFunction],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        logs_client: Any = None,
        logs_endpoint: str | None = None,
        log_groups: Mapping[str, str] | None = None,
        echo: bool = True,
    ) -> None:
        """``logs_client`` (or a client made for ``logs_endpoint`` with dummy credentials) turns log delivery on.

        ``log_groups`` maps a function name to its log group (default ``/aws/lambda/NAME``);
        ``echo`` keeps writing what functions print to the real stdout.
        """
        items = list(functions.values() if isinstance(functions, Mapping) else functions)
        self._functions = {f.name: f for f in items}
        self._aliases = {alias: f for f in items for alias in f.aliases if alias not in self._functions}
        self._host = host
        self._port = port
        self.region = region
        self._http = LoopbackServer(_InvokeHandler, self, host=host, port=port, name="LambdaApi")
        self._async: list[threading.Thread] = []
        if logs_client is None and logs_endpoint:
            logs_client = _logs_client(logs_endpoint, region)
        self._delivery = _LogDelivery(logs_client) if logs_client is not None else None
        self._log_groups = dict(log_groups or {})
        self._echo = echo
        self._environments = _Environments()
        self.faults: RegionFaults | None = None
        """The local cloud's regional faults: a call signed for a region in outage gets ServiceException (:mod:`.faults`)."""

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
        if self._delivery is not None:
            self._delivery.close(timeout=10.0)

    # --- logs ------------------------------------------------------------
    def log_group(self, function_name: str) -> str:
        """The log group a function's lines go to."""
        return self._log_groups.get(function_name) or f"/aws/lambda/{function_name}"

    def flush_logs(self, timeout: float = 10.0) -> bool:
        """Wait until every line written so far is delivered (or dropped); False on timeout."""
        return self._delivery.flush(timeout) if self._delivery is not None else True

    @property
    def dropped_log_lines(self) -> int:
        """Lines that could not be delivered."""
        return self._delivery.dropped if self._delivery is not None else 0

    # --- invocation ------------------------------------------------------
    def resolve(self, function_name: str) -> LocalFunction | None:
        """The function a FunctionName (name, ``name:qualifier`` or ARN) refers to."""
        name = unquote(function_name)
        match = _ARN.match(name) or _NAME.match(name)
        if match is None:
            return None
        return self._functions.get(match.group("name")) or self._aliases.get(match.group("name"))

    def configuration(self, function: LocalFunction) -> dict[str, Any]:
        """GetFunctionConfiguration's answer for ``function``."""
        return {
            "FunctionName": function.name,
            "FunctionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function.name}",
            "Runtime": RUNTIME,
            "Handler": "app.handler",
            "MemorySize": function.memory_limit_in_mb,
            "Timeout": int(function.timeout_seconds),
            "Version": "$LATEST",
            "State": "Active",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "Environment": {"Variables": dict(function.environment)},
            **({"Role": function.role} if function.role else {}),
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": self.log_group(function.name)},
        }

    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        """Run a function's handler in this thread, with a fresh context, as Lambda would."""
        function = self.resolve(function_name)
        if function is None:
            raise KeyError(function_name)
        stream = self._environments.acquire(function.name)
        context = LambdaContext(function, self.region, log_group=self.log_group(function.name), log_stream=stream)
        try:
            if self._delivery is None:
                return self._run(function, event, context)
            return self._run_captured(function, event, context, self._delivery)
        finally:
            self._environments.release(function.name, stream)

    def _run_captured(self, function: LocalFunction, event: Any, context: LambdaContext, delivery: _LogDelivery) -> InvocationResult:
        """Run the handler with this thread's stdout captured; hand its lines to delivery before the environment is free again."""
        output = InvocationOutput(echo=self._echo)
        started = time.monotonic()
        output.add(f"START RequestId: {context.aws_request_id} Version: $LATEST")
        _route_stdout()
        token = _current_output.set(output)
        try:
            return self._run(function, event, context)
        finally:
            _current_output.reset(token)
            output.finish(context.aws_request_id, started, function.memory_limit_in_mb)
            delivery.submit(context.log_group_name, context.log_stream_name, output.lines)

    @staticmethod
    def _run(function: LocalFunction, event: Any, context: LambdaContext) -> InvocationResult:
        try:
            if function.sandbox is None:
                result = function.handler(event, context)
            else:
                with function.sandbox.active():
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


def _logs_client(endpoint: str, region: str) -> Any:
    """A CloudWatch Logs client for a local endpoint: dummy credentials, short timeouts, few retries."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(  # a session of its own: the default one is not thread-safe
        "logs",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 2}),
    )


class _InvokeHandler(BaseHTTPRequestHandler):
    owner: LambdaApi
    server_version = "jwks-rotator-local-lambda"
    protocol_version = "HTTP/1.1"

    def _outage(self) -> bool:
        """Answer for a region in outage; True when answered."""
        faults = self.owner.faults
        outage = faults.answer_for(self.command, self.path, dict(self.headers.items())) if faults is not None else None
        if outage is None:
            return False
        status, headers, body = outage
        self._send(HTTPStatus(status), body, headers)
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self._outage():
            return
        match = _ROUTE.match(urlsplit(self.path).path)
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no such operation: POST {urlsplit(self.path).path}")
            return
        function_name = unquote(match.group("name"))
        if self.owner.resolve(function_name) is None:
            self._not_found(function_name)
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
        if self._outage():
            return
        match = _CONFIGURATION_ROUTE.match(urlsplit(self.path).path)
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", "only Invoke and GetFunctionConfiguration are offered")
            return
        function_name = unquote(match.group("name"))
        function = self.owner.resolve(function_name)
        if function is None:
            self._not_found(function_name)
            return
        body = json.dumps(self.owner.configuration(function)).encode()
        self._send(HTTPStatus.OK, body, {"Content-Type": "application/json"})

    def _not_found(self, function_name: str) -> None:
        arn = function_name if function_name.startswith("arn:") else f"arn:aws:lambda:{self.owner.region}:{ACCOUNT_ID}:function:{function_name}"
        self._error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"Function not found: {arn}")

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

"""The whole system on loopback in one process: moto, a checking STS, the resources, the functions, an edge and a schedule.

Usable as a library (tests, the soak) and by ``jwks-rotator local`` (:mod:`.command`)::

    with LocalStack({"rotation-period": "20s", "publish-lead": "5s", "schedule": "1s", ...}) as stack:
        stack.jwks_url        # served by the LocalEdge (never by moto: see edge.py)
        stack.endpoint        # the one AWS endpoint: Lambda API paths to the functions, the rest to moto
        stack.lambda_endpoint # Invoke API: SignFunction, RotateFunction
        stack.sign_client().sign({"sub": "alice", "aud": "demo"})  # as the demo caller role
        stack.tick()          # one scheduled run of the rotate function, now

Start order: moto (``ThreadedMotoServer``) and, in its process, the
:class:`~.sts_verifier.LocalStsVerifier` (the sign function's
``STS_ENDPOINT_URL``: it checks the proofs moto's STS would not), the
template's resources (fixed names, :data:`SECRET_NAME` and :data:`BUCKET`) and
the roles the issuance policy names (``policy``, a file validated before
anything starts, by default :data:`~.caller_roles.DEMO_POLICY_FILE`), the edge
(its URL is the issuer unless one is given), the function environment, the
Lambda API, the one AWS endpoint (:class:`~.front.AwsFront`) and a
CloudFormation stack named ``stack_name`` whose Outputs name all of this
(:mod:`.stack_outputs`: ``jwks-rotator --endpoint-url ENDPOINT --stack NAME``
works with no state file), one synchronous tick (so the JWKS serves before :meth:`start`
returns), then a tick every ``schedule`` in a background thread
(``tick=False``: none at all).

moto keeps its state per process: a second stack in the same process gets
suffixed resource names. The functions read their settings from the process
environment, as in Lambda, so only one LocalStack may run in a process at a
time; :meth:`stop` restores the variables it set. ``aws_endpoint`` lets the functions reach AWS through
another URL (a fault-injecting proxy in front of moto) while setup and the
edge talk to moto directly.

Longer than this project's usual module: it is the one place that starts,
wires and stops every local server, and the order matters.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator.core.settings import SETTINGS, Settings
from jwks_rotator_cli.context import session_for_role
from jwks_rotator_cli.local_state import (
    DEFAULT_REGION,
    DEMO_CALLER_ROLE,
    LOCAL_ACCOUNT,
    OPERATOR_ROLE,
    ROTATE_FUNCTION,
    SIGN_FUNCTION,
    STATE_FORMAT,
    write_state_file,
)
from jwks_rotator_client import SignClient

from .caller_roles import DEMO_POLICY_FILE, caller_roles, create_roles, load_local_policy
from .edge import LocalEdge
from .front import AwsFront
from .functions import FUNCTIONS_DIR, load_handler, scheduled_event
from .lambda_api import InvocationResult, LambdaApi, LocalFunction
from .provision import CreatedResources, create_resources
from .stack_env import DUMMY_CREDENTIALS, ProcessEnvironment, normalise_overrides
from .stack_outputs import DEFAULT_STACK_NAME, publish_stack, remove_stack
from .sts_verifier import LocalStsVerifier

SECRET_NAME = "jwks-rotator-keyring"
BUCKET = "jwks-rotator-local"
REGION = DEFAULT_REGION
_FUNCTION_DIRS = {SIGN_FUNCTION: "sign", ROTATE_FUNCTION: "rotate"}
_running_lock = threading.Lock()
_running: list[LocalStack] = []

ReportCallback = Callable[[dict[str, Any]], None]
ErrorCallback = Callable[[str], None]


class LocalStackError(JwksRotatorError):
    """The local stack could not start or a step of it failed."""

    code = "local_stack_failed"


class LocalStack:
    """moto + the template's resources + the functions behind a Lambda API + a caching edge + a schedule."""

    def __init__(
        self,
        settings_overrides: Mapping[str, Any] | None = None,
        *,
        port: int = 0,
        moto_port: int = 0,
        lambda_port: int = 0,
        sts_port: int = 0,
        aws_port: int = 0,
        host: str = "127.0.0.1",
        aws_endpoint: str | None = None,
        tick: bool = True,
        edge_cache: bool = True,
        region: str = REGION,
        secret_name: str = SECRET_NAME,
        bucket: str = BUCKET,
        stack_name: str = DEFAULT_STACK_NAME,
        state_file: str | os.PathLike[str] | None = None,
        policy: str | os.PathLike[str] | None = None,
        function_log_level: str = "WARNING",
        function_metrics: bool = False,
        on_report: ReportCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._settings_env = normalise_overrides(settings_overrides or {})
        # Validate now (with a placeholder issuer if none is given) so bad settings or policies fail before anything starts.
        validated = self._validate({**self._settings_env, "ISSUER": self._settings_env.get("ISSUER") or "http://127.0.0.1:1"})
        self.policy_file, self.policy = load_local_policy(policy if policy is not None else DEMO_POLICY_FILE, validated)
        self._port, self._moto_port, self._lambda_port, self._sts_port, self._host = port, moto_port, lambda_port, sts_port, host
        self._aws_port = aws_port
        self.stack_name = stack_name
        self._aws_endpoint_override = aws_endpoint
        self._tick_enabled = tick
        self._edge_cache = edge_cache
        self.region = region
        self._secret_name, self._bucket = secret_name, bucket
        self._state_file = Path(state_file) if state_file is not None else None
        self._log_level = function_log_level
        self._metrics = function_metrics
        self._on_report = on_report
        self._on_error = on_error
        self._moto: Any = None
        self._moto_endpoint = ""
        self._sts: LocalStsVerifier | None = None
        self.resources: CreatedResources | None = None
        self._edge: LocalEdge | None = None
        self._lambda: LambdaApi | None = None
        self._front: AwsFront | None = None
        self._stack_published = False
        self._settings: Settings | None = None
        self._env: dict[str, str] = {}
        self._environment = ProcessEnvironment()
        self._modules: list[str] = []
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = False

    # --- properties ------------------------------------------------------
    @property
    def moto_endpoint(self) -> str:
        """moto's URL: setup, the edge and operator tools talk to it."""
        return self._require(self._moto_endpoint)

    @property
    def endpoint(self) -> str:
        """The one AWS endpoint operators use: the Lambda API for the functions, moto for every other service."""
        return self._require(self._front.url if self._front is not None else "")

    @property
    def sts_endpoint(self) -> str:
        """The signature-checking STS in front of moto: the sign function replays proofs to it; callers sign proofs for it."""
        return self._require(self._sts.url if self._sts is not None else "")

    @property
    def aws_endpoint(self) -> str:
        """The URL the functions use for AWS (``aws_endpoint`` if given, else moto)."""
        return self._aws_endpoint_override or self.moto_endpoint

    @property
    def edge(self) -> LocalEdge:
        if self._edge is None:
            raise RuntimeError("LocalStack is not started")
        return self._edge

    @property
    def lambda_api(self) -> LambdaApi:
        if self._lambda is None:
            raise RuntimeError("LocalStack is not started")
        return self._lambda

    @property
    def edge_url(self) -> str:
        return self.edge.url

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    @property
    def jwks_url(self) -> str:
        """The JWKS as clients fetch it: through the edge."""
        return self.edge_url + "/.well-known/jwks.json"

    @property
    def discovery_url(self) -> str:
        return self.edge_url + "/.well-known/openid-configuration"

    @property
    def lambda_endpoint(self) -> str:
        return self.lambda_api.url

    @property
    def settings(self) -> Settings:
        """The validated settings the functions run with."""
        if self._settings is None:
            raise RuntimeError("LocalStack is not started")
        return self._settings

    @property
    def function_env(self) -> dict[str, str]:
        """The environment the functions get, as the template would set it (dummy credentials)."""
        return dict(self._env)

    @property
    def functions(self) -> tuple[str, ...]:
        """The function names the Lambda API serves (SignFunction only once functions/sign/app.py exists)."""
        return tuple(name for name in _FUNCTION_DIRS if (FUNCTIONS_DIR / _FUNCTION_DIRS[name] / "app.py").exists())

    def client(self, service: str) -> Any:
        """A boto3 client for moto (not through ``aws_endpoint``)."""
        return boto3.client(
            service,
            endpoint_url=self.moto_endpoint,
            region_name=self.region,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def caller_session(self, role_arn: str = DEMO_CALLER_ROLE, *, session_name: str = "local-caller") -> Any:
        """A boto3 session of ``role_arn`` (assumed on moto's STS): credentials the local STS accepts in a proof."""
        return session_for_role(self.client("sts"), role_arn, region=self.region, session_name=session_name)

    def sign_client(self, role_arn: str = DEMO_CALLER_ROLE, *, session_name: str = "local-caller", config: Any = None) -> SignClient:
        """A :class:`~jwks_rotator_client.SignClient` for SignFunction, calling as a session of ``role_arn``."""
        session = self.caller_session(role_arn, session_name=session_name)
        lambda_client = session.client("lambda", endpoint_url=self.lambda_endpoint, region_name=self.region, config=config)
        return SignClient(SIGN_FUNCTION, lambda_client, session, sts_endpoint_url=self.sts_endpoint)

    # --- lifecycle -------------------------------------------------------
    def start(self) -> LocalStack:
        """Start everything; returns once the JWKS serves (after the first tick, when ticking)."""
        with _running_lock:
            if _running:
                raise LocalStackError("another LocalStack is running in this process; stop it first")
            _running.append(self)
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines are noise here
        self._moto = ThreadedMotoServer(ip_address=self._host, port=self._moto_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._moto_endpoint = f"http://{host}:{port}"
        self._sts = LocalStsVerifier(self._moto_endpoint, region=self.region)
        self._sts.start(self._host, self._sts_port)
        self.resources = self._create_resources()
        create_roles(self.client("iam"), caller_roles(self.policy))
        self._edge = LocalEdge(
            self.client("s3"),
            self.resources.bucket,
            cloudfront_client=self.client("cloudfront"),
            distribution_id=self.resources.distribution_id,
            host=self._host,
            port=self._port,
            cache=self._edge_cache,
        )
        edge_url = self._edge.bind()
        settings_env = {
            **self._settings_env,
            "ISSUER": self._settings_env.get("ISSUER") or edge_url,
            "KEYRING_SECRET_ID": self.resources.secret_id,
            "SIGNING_SECRET_ID": self.resources.signing_secret_id,
            "JWKS_BUCKET": self.resources.bucket,
            "DISTRIBUTION_ID": self.resources.distribution_id,
            "ISSUANCE_POLICY_FILE": str(self.policy_file),
        }
        self._settings = self._validate(settings_env)
        self._env = {
            **settings_env,
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "STS_ENDPOINT_URL": self.sts_endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "POWERTOOLS_LOG_LEVEL": self._log_level,
            "POWERTOOLS_METRICS_DISABLED": "false" if self._metrics else "true",
        }
        self._environment.apply(self._env)
        functions = []
        for name in self.functions:
            module_name = f"jwks_rotator_local_{_FUNCTION_DIRS[name]}_{uuid.uuid4().hex[:8]}"
            try:
                handler = load_handler(_FUNCTION_DIRS[name], module_name, keep_metrics=self._metrics)
            except ImportError as exc:
                raise LocalStackError(str(exc)) from None
            self._modules.append(module_name)
            configured = {**settings_env, "STS_ENDPOINT_URL": self.sts_endpoint}  # what GetFunctionConfiguration shows
            functions.append(LocalFunction(name, handler, memory_limit_in_mb=256 if name == SIGN_FUNCTION else 512, environment=configured))
        # What the functions print (logs, EMF, audit lines) goes to moto's CloudWatch Logs as on Lambda;
        # the console shows it only when the functions log verbosely.
        self._lambda = LambdaApi(
            functions, host=self._host, port=self._lambda_port, region=self.region,
            logs_endpoint=self.moto_endpoint, echo=self._log_level in ("DEBUG", "INFO"),
        )
        self._lambda.start()
        self._front = AwsFront(self.moto_endpoint, self._lambda.url, host=self._host, port=self._aws_port)
        self._front.start()
        publish_stack(self.client("cloudformation"), self.stack_name, self.stack_outputs())
        self._stack_published = True
        self._edge.start()
        if self._tick_enabled:
            try:
                self.tick()
            except LocalStackError as exc:
                raise LocalStackError(f"first {exc.message}") from None
            self._ticker = threading.Thread(target=self._tick_loop, name="local-schedule", daemon=True)
            self._ticker.start()
        if self._state_file is not None:
            write_state_file(self._state_file, self.state())

    def _create_resources(self) -> CreatedResources:
        """The template's resources under the fixed names; with a suffix when they exist already.

        moto keeps its state per process, not per server: a second stack in one
        process (tests) finds the first one's secret and bucket.
        """
        try:
            return create_resources(self.client, secret_name=self._secret_name, bucket=self._bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ResourceExistsException", "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        suffix = uuid.uuid4().hex[:8]
        return create_resources(self.client, secret_name=f"{self._secret_name}-{suffix}", bucket=f"{self._bucket}-{suffix}")

    def stop(self) -> None:
        """Stop the schedule and every server, remove the state file, restore the environment."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._stack_published and self._moto is not None:
            remove_stack(self.client("cloudformation"), self.stack_name)  # moto keeps its state per process
            self._stack_published = False
        if self._front is not None:
            self._front.stop()
        if self._lambda is not None:
            self._lambda.stop()
        if self._edge is not None:
            self._edge.stop()
        if self._sts is not None:
            self._sts.stop()
            self._sts = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._state_file is not None and self._started:
            self._state_file.unlink(missing_ok=True)
        for module_name in self._modules:
            sys.modules.pop(module_name, None)
        self._modules.clear()
        self._environment.restore()
        with _running_lock:
            if self in _running:
                _running.remove(self)
        self._started = False

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operations ------------------------------------------------------
    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        """Run a function in this thread through the Lambda API's invoke path (same context, same error shape)."""
        return self.lambda_api.invoke(function_name, event)

    def tick(self) -> dict[str, Any]:
        """One scheduled run of the rotate function, as the schedule runs it.

        Passes its summary to ``on_report`` and returns it; a failed run raises
        :class:`LocalStackError` ("rotate tick failed: TYPE: MESSAGE").
        """
        result = self.invoke(ROTATE_FUNCTION, scheduled_event(self.region))
        if result.function_error:
            raise LocalStackError(f"rotate tick failed: {result.describe_failure()}")
        if self._on_report is not None and isinstance(result.payload, dict):
            self._on_report(result.payload)
        return dict(result.payload)

    def _tick_loop(self) -> None:
        """The schedule: a tick every ``schedule`` until stopped; a failed tick goes to ``on_error`` and the next one runs."""
        interval = self.settings.schedule.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.tick()
            except LocalStackError as exc:
                if self._on_error is not None:
                    self._on_error(exc.message)

    # --- helpers ---------------------------------------------------------
    @staticmethod
    def _validate(env: Mapping[str, str]) -> Settings:
        return Settings.from_mapping(dict(env))

    def _require(self, value: str) -> str:
        if not value:
            raise RuntimeError("LocalStack is not started")
        return value

    def stack_outputs(self) -> dict[str, str]:
        """The stack's Outputs as template.yaml names them, for the local resources (and the local-only DemoCallerRoleArn)."""
        resources = self.resources
        if resources is None:
            raise RuntimeError("LocalStack is not started")
        function_arn = f"arn:aws:lambda:{self.region}:{LOCAL_ACCOUNT}:function:"
        outputs = {
            "Issuer": self.issuer,
            "IssuerUrl": self.discovery_url,
            "JwksUrl": self.jwks_url,
            "RotateFunctionName": ROTATE_FUNCTION,
            "KeyringSecretArn": resources.secret_id,
            "SigningSecretArn": resources.signing_secret_id,
            "JwksBucketName": resources.bucket,
            "DistributionId": resources.distribution_id,
            "DistributionDomainName": resources.distribution_domain,
            "DemoCallerRoleArn": DEMO_CALLER_ROLE,
            "OperatorRoleArn": OPERATOR_ROLE,
        }
        if SIGN_FUNCTION in self.functions:
            outputs |= {
                "SignFunctionName": SIGN_FUNCTION,
                "SignFunctionArn": function_arn + SIGN_FUNCTION,
                "AuditLogGroupName": self.lambda_api.log_group(SIGN_FUNCTION),
                "OperationsLogGroupName": self.lambda_api.log_group(ROTATE_FUNCTION),
            }
        return outputs

    def state(self) -> dict[str, Any]:
        """Endpoints and names for operator commands (no secrets: dummy credentials only)."""
        return {
            "format": STATE_FORMAT,
            "pid": os.getpid(),
            "region": self.region,
            "endpoint": self.endpoint,
            "stack_name": self.stack_name,
            "moto_endpoint": self.moto_endpoint,
            "aws_endpoint": self.aws_endpoint,
            "lambda_endpoint": self.lambda_endpoint,
            "sts_endpoint": self.sts_endpoint,
            "demo_caller_role": DEMO_CALLER_ROLE,
            "operator_role": OPERATOR_ROLE,
            "issuance_policy_file": str(self.policy_file),
            "edge_url": self.edge_url,
            "jwks_url": self.jwks_url,
            "discovery_url": self.discovery_url,
            "issuer": self.issuer,
            "functions": list(self.functions),
            "settings": {k: v for k, v in self._env.items() if k in {s.env for s in SETTINGS}},
        }

"""The whole system on loopback in one process: moto, a checking STS, the resources, the functions, an edge and a schedule.

Usable as a library (tests, the soak) and by ``jwks-rotator local`` (:mod:`.command`)::

    with LocalStack({"rotation-period": "20s", "publish-lead": "5s", "schedule": "1s", ...}) as stack:
        stack.jwks_url        # served by the LocalEdge (never by moto: see edge.py)
        stack.endpoint        # the one AWS endpoint: Lambda API paths to the functions, the rest to moto
        stack.sign_client().sign({"sub": "alice", "aud": "demo"})  # as the demo caller role
        stack.tick()          # one scheduled run of the rotate function, now

It deploys **template.yaml itself** into moto (:mod:`.template_stack`), runs each function in this process with its
deployed environment and credentials of its own template role (:mod:`.function_env`), and puts every AWS call behind
one front (:class:`~.front.AwsFront`), optionally recorded for the least-privilege check (``record_calls``).
One LocalStack per process at a time; stopping it deletes everything, ``Retain`` resources included. The parts a
cloud has once (moto, the STS, the front, the edge, the faults) are its :class:`~.cloud.LocalCloud`; a stack given one
(``cloud=``) is one region of several (:mod:`.regions`).

The start order and why it matters, the local-only additions, call recording: Design: docs/design/local-cloud.md.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

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
    read_state_file,
    write_state_file,
)
from jwks_rotator_client import SignClient

from .call_record import MotoFacts
from .call_recording import FunctionCallRecording, recording_directory
from .caller_roles import DEMO_POLICY_FILE, caller_roles, load_local_policy
from .cloud import LocalCloud
from .cloud import LocalStackError as LocalStackError
from .cloud import start_moto as start_moto
from .edge import LocalEdge
from .faults import RegionFaults
from .function_env import FunctionEnvironment
from .functions import FUNCTIONS_DIR, load_handler, scheduled_event
from .lambda_api import InvocationResult, LambdaApi, LocalFunction
from .provision import CreatedResources
from .sam_template import translated_template
from .secrets_extension import PORT_ENV as EXTENSION_PORT_ENV
from .secrets_extension import SecretsExtension
from .stack_env import DUMMY_CREDENTIALS, normalise_overrides
from .stack_outputs import DEFAULT_STACK_NAME
from .template_stack import DeployedTemplate, FunctionIdentity, TemplateDeployError, deploy_template, teardown

REGION = DEFAULT_REGION
_FUNCTION_DIRS = {SIGN_FUNCTION: "sign", ROTATE_FUNCTION: "rotate"}
"""The template's functions (logical ids) and their code directories under functions/."""
CREDENTIAL_SECONDS = 43_200
"""How long the functions' role credentials last (moto's STS ignores a role's MaxSessionDuration)."""
_running_lock = threading.Lock()
_running: list[object] = []

ReportCallback = Callable[[dict[str, Any]], None]
ErrorCallback = Callable[[str], None]


class RegionOutageError(LocalStackError):
    """The region is in outage (``fault region-outage``): its functions cannot be invoked, as Lambda's ServiceException."""

    code = "region_outage"


def claim_process(owner: object) -> None:
    """One local cloud per process (moto's backends and the functions' environments are the process's)."""
    with _running_lock:
        if _running:
            raise LocalStackError("another LocalStack is running in this process; stop it first")
        _running.append(owner)


def release_process(owner: object) -> None:
    with _running_lock:
        if owner in _running:
            _running.remove(owner)


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
        stack_name: str = DEFAULT_STACK_NAME,
        state_file: str | os.PathLike[str] | None = None,
        policy: str | os.PathLike[str] | None = None,
        function_log_level: str = "WARNING",
        function_metrics: bool = False,
        on_report: ReportCallback | None = None,
        on_error: ErrorCallback | None = None,
        extra_parameters: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        function_extra_env: Mapping[str, Mapping[str, str]] | None = None,
        record_calls: str | os.PathLike[str] | None = None,
        cloud: LocalCloud | None = None,
    ) -> None:
        """``extra_parameters``: more template parameters; ``extra_env``: variables every function also gets,
        ``function_extra_env``: per logical id (local stand-ins' endpoints; never settings the template passes).
        ``record_calls``: a directory; the functions' AWS calls are recorded at the front and written there on
        :meth:`stop` (:mod:`.call_recording`); None: the ``JWKS_ROTATOR_RECORD_CALLS`` directory, if set.
        ``cloud``: a started (bound) :class:`~.cloud.LocalCloud` to deploy into, as one region of several
        (:class:`~.regions.LocalRegions` drives it); None: this stack makes and owns a cloud of its region."""
        self._settings_env = normalise_overrides(settings_overrides or {})
        # Validate now (with a placeholder issuer if none is given) so bad settings or policies fail before anything starts.
        validated = self._validate({**self._settings_env, "ISSUER": self._settings_env.get("ISSUER") or "http://127.0.0.1:1"})
        self.policy_file, self.policy = load_local_policy(policy if policy is not None else DEMO_POLICY_FILE, validated)
        self._lambda_port, self._host = lambda_port, host  # the other ports are the cloud's
        self.stack_name = stack_name
        self._aws_endpoint_override = aws_endpoint
        self._tick_enabled = tick
        self.region = region
        self._extra_parameters = dict(extra_parameters or {})
        self._extra_env = dict(extra_env or {})
        self._function_extra_env = {k: dict(v) for k, v in (function_extra_env or {}).items()}
        self._record_dir = recording_directory(record_calls)
        self._recording: FunctionCallRecording | None = None
        self.recorded_calls_file: Path | None = None
        self._deployed: DeployedTemplate | None = None
        self._function_envs: dict[str, dict[str, str]] = {}
        self._function_names: dict[str, str] = {}
        self._state_file = Path(state_file) if state_file is not None else None
        self._log_level = function_log_level
        self._metrics = function_metrics
        self._on_report = on_report
        self._on_error = on_error
        self._owns_cloud = cloud is None
        self._cloud = cloud if cloud is not None else LocalCloud(
            (region,), host=host, moto_port=moto_port, sts_port=sts_port, aws_port=aws_port, edge_port=port, edge_cache=edge_cache
        )
        self._extension: SecretsExtension | None = None  # the Parameters and Secrets extension the sign function reads through
        self.resources: CreatedResources | None = None
        self._lambda: LambdaApi | None = None
        self.faults: RegionFaults = self._cloud.faults
        """Regional faults of this local cloud (``jwks-rotator fault``); every server of it consults them."""
        self._settings: Settings | None = None
        self._modules: list[str] = []
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._started = False

    # --- properties ------------------------------------------------------
    @property
    def cloud(self) -> LocalCloud:
        """The local cloud this stack is deployed in (its own, or the one it shares with other regions)."""
        return self._cloud

    @property
    def moto_endpoint(self) -> str:
        """moto's URL: setup, the edge and operator tools talk to it."""
        return self._require(self._cloud.moto_endpoint if self._started else "")

    @property
    def endpoint(self) -> str:
        """The one AWS endpoint operators use: the Lambda API for the functions, moto for every other service."""
        return self._require(self._cloud.front.url if self._started else "")

    @property
    def sts_endpoint(self) -> str:
        """The signature-checking STS in front of moto: the sign function replays proofs to it; callers sign proofs for it."""
        return self._require(self._cloud.sts.url if self._started else "")

    @property
    def aws_endpoint(self) -> str:
        """The URL the functions use for AWS (``aws_endpoint`` if given, else the one AWS endpoint in front of moto)."""
        return self._aws_endpoint_override or self.endpoint

    @property
    def edge(self) -> LocalEdge:
        if not self._started:
            raise RuntimeError("LocalStack is not started")
        return self._cloud.edge

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
        """The rotate function's environment as it runs (the template's variables and the local ones; no secret key)."""
        return self.function_environment(ROTATE_FUNCTION)

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment as it runs, by logical id, without its secret key and session token."""
        env = self._function_envs.get(logical_id)
        if env is None:
            raise RuntimeError("LocalStack is not started")
        return {k: v for k, v in env.items() if k not in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}

    @property
    def functions(self) -> tuple[str, ...]:
        """The template's functions (logical ids) the Lambda API serves (SignFunction only once functions/sign/app.py exists)."""
        return tuple(name for name in _FUNCTION_DIRS if (FUNCTIONS_DIR / _FUNCTION_DIRS[name] / "app.py").exists())

    def function_name(self, logical_id: str) -> str:
        """The physical name CloudFormation gave a function (``STACK-SignFunction-ABC123``)."""
        name = self._function_names.get(logical_id)
        if name is None:
            raise RuntimeError(f"LocalStack is not started or has no function {logical_id}")
        return name

    def deployed_template(self) -> DeployedTemplate:
        """What was deployed, for the IAM evaluator: see :class:`~.template_stack.DeployedTemplate`.

        Its ``functions`` map each logical id to the function's name, ARN, role ARN and the access key ids
        it was issued (so a recorded call's access key names its role); ``resources`` map every logical id
        to its physical id and ARN; ``template`` is the translated template and ``parameters`` the values
        it was created with; ``resource_policies`` holds the bucket policy kept out of moto.
        """
        if self._deployed is None:
            raise RuntimeError("LocalStack is not started")
        return self._deployed

    @property
    def call_recording(self) -> FunctionCallRecording | None:
        """The functions' calls recorded so far (None: not recording)."""
        return self._recording

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
        return SignClient(self.function_name(SIGN_FUNCTION), lambda_client, session, sts_endpoint_url=self.sts_endpoint)

    # --- lifecycle -------------------------------------------------------
    def start(self) -> LocalStack:
        """Start everything; returns once the JWKS serves (after the first tick, when ticking).

        With a shared ``cloud`` this deploys the region only (:meth:`deploy`, :meth:`begin_schedule` are then the
        caller's to order); the cloud is bound, served and stopped by its owner.
        """
        if self._owns_cloud:
            claim_process(self)
        self._started = True
        try:
            if self._owns_cloud:
                self._start()
            else:
                self.deploy()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._cloud.bind(caller_roles(self.policy))
        self.deploy()
        self.edge.serve_from(self.resources_or_fail().bucket, self.resources_or_fail().distribution_id,
                             origins=[self._cloud.edge_origin(self.resources_or_fail().bucket, self.region)])
        self._cloud.serve()
        self.begin_schedule()
        if self._state_file is not None:
            write_state_file(self._state_file, self.state())

    def resources_or_fail(self) -> CreatedResources:
        if self.resources is None:
            raise RuntimeError("LocalStack is not started")
        return self.resources

    def deploy(self, parameters: Mapping[str, str] | None = None) -> None:
        """Deploy the template into this stack's region of the (bound) cloud and serve its functions' Lambda API.

        ``parameters``: more template parameters for this deployment (a region's part of several); a stack of
        this name in this region is replaced (its functions, extension and Lambda API too).
        """
        self._started = True
        self._stop_region_servers()
        if parameters is not None:
            self._extra_parameters.update(parameters)
        if self._record_dir is not None and self._recording is None:  # the functions' calls only: their keys are added as they get them
            self._recording = FunctionCallRecording(self._record_dir, MotoFacts(account=LOCAL_ACCOUNT, region=self.region))
            self._cloud.add_recorder(self._recording)
        edge_url = self.edge.url
        # The Parameters and Secrets extension's stand-in, on a free port: it calls AWS through the front with the sign
        # function's role, and takes only that function's session token (both known once the function is created).
        def sign_env() -> Mapping[str, str]:
            return self._function_envs.get(SIGN_FUNCTION, {})

        self._extension = SecretsExtension(
            self.aws_endpoint, region=self.region, host=self._host,
            session_token=lambda: sign_env().get("AWS_SESSION_TOKEN"), credentials=sign_env,
        ).start()
        self._deployed = self._deploy(edge_url)
        self.resources = self._created_resources(self._deployed)
        functions = [self._function(logical_id) for logical_id in self.functions]
        self._settings = Settings.from_env(self._function_envs[ROTATE_FUNCTION])
        # What the functions print (logs, EMF, audit lines) goes to moto's CloudWatch Logs as on Lambda, to the
        # log group each one's LoggingConfig names; the console shows it only when the functions log verbosely.
        self._lambda = LambdaApi(
            functions, host=self._host, port=self._lambda_port, region=self.region,
            logs_endpoint=self.moto_endpoint, echo=self._log_level in ("DEBUG", "INFO"),
            log_groups={f.name: self._log_group(logical) for f, logical in zip(functions, self.functions, strict=True)},
        )
        self._lambda.faults = self.faults
        self._lambda.start()
        self._cloud.add_lambda_api(self.region, self._lambda.url)  # one endpoint, routed by the request's region

    def begin_schedule(self) -> None:
        """Run the first tick now and then one every ``schedule``, when ticking and the stack's schedule is enabled."""
        if not self._tick_enabled or not self.schedule_enabled():
            return
        try:
            self.tick()
        except LocalStackError as exc:
            raise LocalStackError(f"first {exc.message}") from None
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick_loop, name=f"local-schedule-{self.region}", daemon=True)
        self._ticker.start()

    def schedule_enabled(self) -> bool:
        """Whether the stack's tick schedule (EventBridge Scheduler) is enabled (a secondary region's is not)."""
        deployed = self.deployed_template()
        scheduler = self.client("scheduler")
        for resource in deployed.resources.values():
            if resource.type == "AWS::Scheduler::Schedule" and resource.physical_id:
                state = scheduler.get_schedule(Name=resource.physical_id.rsplit("/", 1)[-1]).get("State", "ENABLED")
                return bool(state == "ENABLED")
        return True

    def template_parameters(self, edge_url: str) -> dict[str, str]:
        """The stack's parameters: each given setting under its template name, the issuer, the policy file, extras."""
        declared = translated_template()["Parameters"]
        by_env = {spec.env: spec for spec in SETTINGS}
        parameters = {by_env[env].pascal: value for env, value in self._settings_env.items() if by_env[env].pascal in declared}
        parameters.setdefault("Issuer", edge_url)
        parameters["IssuancePolicyFile"] = str(self.policy_file)
        return {**parameters, **self._extra_parameters}

    def _settings_without_parameter(self) -> dict[str, str]:
        """Given settings the template has no parameter for (revocation-parameter): passed as environment."""
        declared = translated_template()["Parameters"]
        by_env = {spec.env: spec for spec in SETTINGS}
        return {env: value for env, value in self._settings_env.items() if by_env[env].pascal not in declared}

    def _deploy(self, edge_url: str) -> DeployedTemplate:
        try:
            return deploy_template(
                self.client, self.stack_name, self.template_parameters(edge_url), region=self.region, account_id=LOCAL_ACCOUNT,
                extra_outputs={"DemoCallerRoleArn": DEMO_CALLER_ROLE, "OperatorRoleArn": OPERATOR_ROLE},
            )
        except TemplateDeployError as exc:
            raise LocalStackError(str(exc)) from None

    @staticmethod
    def _created_resources(deployed: DeployedTemplate) -> CreatedResources:
        def physical(logical_id: str) -> str:  # a secondary region's stack has no keyring secret or distribution of its own
            return deployed.physical_id(logical_id) if logical_id in deployed.resources else ""

        return CreatedResources(
            secret_id=physical("KeyringSecret") or deployed.outputs.get("KeyringSecretArn", ""),
            bucket=deployed.physical_id("JwksBucket"),
            distribution_id=physical("Distribution"),
            distribution_domain=deployed.outputs.get("DistributionDomainName", ""),
            revocation_parameter=f"/jwks-rotator/{deployed.stack_name}/revoked-kids",
        )

    def _log_group(self, logical_id: str) -> str:
        """The log group the function's LoggingConfig names (a Ref to a log group of the stack), else Lambda's default."""
        deployed = self.deployed_template()
        config = deployed.template["Resources"][logical_id]["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if isinstance(config, dict) and "Ref" in config:
            return deployed.physical_id(config["Ref"])
        return f"/aws/lambda/{self.function_name(logical_id)}"

    def _function(self, logical_id: str) -> LocalFunction:
        """One deployed function, as the Lambda API runs it: its configuration, its role's credentials, its handler."""
        deployed = self.deployed_template()
        name = deployed.physical_id(logical_id)
        self._function_names[logical_id] = name
        configuration = self.client("lambda").get_function_configuration(FunctionName=name)
        role = configuration["Role"]
        credentials = self.client("sts").assume_role(RoleArn=role, RoleSessionName=name[:64], DurationSeconds=CREDENTIAL_SECONDS)["Credentials"]
        configured = dict(configuration.get("Environment", {}).get("Variables", {}))
        if EXTENSION_PORT_ENV in configured and self._extension is not None:
            configured[EXTENSION_PORT_ENV] = str(self._extension.port)  # the stand-in's free port, not the extension's 2773
        runtime = {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_GROUP_NAME": self._log_group(logical_id),
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
        local = {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "STS_ENDPOINT_URL": self.sts_endpoint,
            "POWERTOOLS_LOG_LEVEL": self._log_level,
            "POWERTOOLS_METRICS_DISABLED": "false" if self._metrics else "true",
        }
        # What GetFunctionConfiguration shows: the deployed variables and the local additions (never credentials).
        shown = {**configured, **self._settings_without_parameter(), **local, **self._extra_env, **self._function_extra_env.get(logical_id, {})}
        env = {**shown, **runtime}
        self._function_envs[logical_id] = env
        sandbox = FunctionEnvironment(name, env)
        module_name = f"jwks_rotator_local_{_FUNCTION_DIRS[logical_id]}_{uuid.uuid4().hex[:8]}"
        try:
            with sandbox.active():  # the cold start (module import) reads the function's own environment
                handler = load_handler(_FUNCTION_DIRS[logical_id], module_name, keep_metrics=self._metrics)
        except ImportError as exc:
            raise LocalStackError(str(exc)) from None
        self._modules.append(module_name)
        if self._recording is not None:
            self._recording.add_function(role, credentials["AccessKeyId"])
        self._deployed = _with_function(deployed, FunctionIdentity(logical_id, name, configuration["FunctionArn"], role, (credentials["AccessKeyId"],)))
        return LocalFunction(
            name, handler, memory_limit_in_mb=int(configuration.get("MemorySize", 128)),
            timeout_seconds=float(configuration.get("Timeout", 3)), environment=shown,
            aliases=(logical_id,), role=role, sandbox=sandbox,
        )

    def stop_schedule(self) -> None:
        """Stop ticking (the stack stays deployed)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def _stop_region_servers(self) -> None:
        self.stop_schedule()
        if self._lambda is not None:
            self._lambda.stop()
            self._lambda = None
        if self._extension is not None:
            self._extension.stop()
            self._extension = None

    def stop(self) -> None:
        """Stop the schedule and every server, delete the stack (moto keeps state per process), remove the state file."""
        self.stop_schedule()
        if self._owns_cloud:
            self._cloud.stop()
        self._stop_region_servers()
        if self._cloud.moto_endpoint and self._deployed is not None:
            try:
                if self._recording is not None and self._deployed.functions:
                    self.recorded_calls_file = self._recording.write(self._deployed)
            finally:
                teardown(self.client, self.stack_name, region=self.region, account_id=LOCAL_ACCOUNT)
                self._deployed = None
        if self._owns_cloud:
            self._cloud.stop_moto()
        if self._state_file is not None and self._started and (read_state_file(self._state_file) or {}).get("pid") == os.getpid():
            self._state_file.unlink(missing_ok=True)  # only this stack's own file: another stack's is never touched
        for module_name in self._modules:
            sys.modules.pop(module_name, None)
        self._modules.clear()
        if self._owns_cloud:
            release_process(self)
        self._started = False

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operations ------------------------------------------------------
    def invoke(self, function_name: str, event: Any) -> InvocationResult:
        """Run a function in this thread through the Lambda API's invoke path (same context, same error shape).

        In a region outage it raises :class:`RegionOutageError` at once, as Lambda's ServiceException.
        """
        if self.faults.in_outage(self.region):
            raise RegionOutageError(f"lambda in {self.region} is unavailable (local fault: region-outage)")
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
            if self.faults.in_outage(self.region):
                continue  # the region's scheduler is out too: no tick, nothing to report
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
        """The deployed stack's Outputs (template.yaml's, resolved by CloudFormation, and DemoCallerRoleArn/OperatorRoleArn)."""
        return dict(self.deployed_template().outputs)

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
            "sign_function": self.function_name(SIGN_FUNCTION) if SIGN_FUNCTION in self.functions else "",
            "rotate_function": self.function_name(ROTATE_FUNCTION),
            "log_groups": {
                name: self.lambda_api.log_group(self.function_name(logical))
                for logical in self.functions for name in (logical, self.function_name(logical))
            },
            "settings": {k: v for k, v in self._function_envs[ROTATE_FUNCTION].items() if k in {s.env for s in SETTINGS}},
        }


def _with_function(deployed: DeployedTemplate, function: FunctionIdentity) -> DeployedTemplate:
    """``deployed`` with one more function identity."""
    return dataclasses.replace(deployed, functions={**deployed.functions, function.logical_id: function})

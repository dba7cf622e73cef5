"""The local stack in several regions: one local cloud, the template deployed into each region under one stack name.

Usable as a library (tests, the soak) and by ``jwks-rotator local --regions`` (:mod:`.command`)::

    with LocalRegions(["us-east-1", "eu-west-1"], fast_settings()) as cloud:
        cloud.primary                      # "us-east-1": the first region listed, the one writer
        cloud.stack("eu-west-1")           # that region's LocalStack: outputs, function names, client(), invoke, tick
        cloud.sign_client("eu-west-1").sign({"sub": "alice", "aud": "demo"})
        cloud.region_outage("us-east-1")   # every call and invoke there fails at once; clear_outage ends it
        cloud.set_replica_lag("eu-west-1", 30)   # its replica secrets show the primary's state of 30 s ago

One moto, one AWS endpoint, one STS endpoint and one edge serve every region (:class:`~.cloud.LocalCloud`); each
region has its own stack, functions, Lambda API and Parameters and Secrets extension stand-in. Deploy order:
the secondaries, then the primary (its second origin is the second region's bucket), then the secondaries again with
the primary's keyring secret and distribution (when the template takes them), the second region's with the primary's
bucket as its other origin (so that, promoted, it writes both origins). The edge serves the primary's bucket
and fails over to the second region's, as the primary's distribution's origin group does. :meth:`LocalRegions.start`
returns once every region's signer issued a token that verifies with the JWKS the edge serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.cloudformation import parsing as cfn_parsing

from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.settings import Settings
from jwks_rotator_cli.doctor import doctor_request
from jwks_rotator_cli.doctor_checks import token_against_jwks
from jwks_rotator_cli.local_state import DEMO_CALLER_ROLE, SIGN_FUNCTION, read_state_file, write_state_file
from jwks_rotator_client import SignClient, SignInvokeError

from .caller_roles import caller_roles
from .cloud import LocalCloud
from .local_stack import ErrorCallback, LocalStack, LocalStackError, ReportCallback, claim_process, release_process
from .sam_template import translated_template
from .stack_env import normalise_overrides
from .stack_outputs import DEFAULT_STACK_NAME

REGION_NAME = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
READY_TIMEOUT_SECONDS = 60.0
"""How long :meth:`LocalRegions.start` waits for every region to sign before it gives up (never a hang)."""
_MANAGED = {"PRIMARY_REGION": "primary-region", "REGIONS": "regions", "SECOND_ORIGIN_BUCKET": "second-origin-bucket",
            "SECOND_ORIGIN_REGION": "second-origin-region"}
"""Settings ``--regions`` sets for each region's stack (given ones are refused)."""
_READY_CONFIG = Config(connect_timeout=2, read_timeout=20, retries={"mode": "standard", "total_max_attempts": 1})


GeneratedNames = dict[tuple[str, str], str]
"""(resource type, logical id) -> the physical name CloudFormation generated for it in a stack."""
KEPT_TYPES = ("AWS::S3::Bucket", "AWS::IAM::Role")
"""What the primary's stack names of a secondary's (its bucket, its roles): kept by the secondary's second deployment."""


@contextlib.contextmanager
def generated_names(names: GeneratedNames, *, again: bool = False) -> Iterator[None]:
    """Record the names a deployment generates into ``names``; ``again``: give a deployment of the same stack those names
    for the types in :data:`KEPT_TYPES`.

    The local deployer creates stacks only (moto's ``update_stack`` fails on this template's layers), so a secondary
    deployed again with the primary's names is a new stack. As an update keeps what it does not replace, the new stack
    keeps the old one's names: its bucket (the primary's second origin) and its roles (named in the primary's replicated
    resource policies) are the ones the primary's stack already names.
    """
    original = cfn_parsing.generate_resource_name

    def generated(resource_type: str, stack_name: str, logical_id: str) -> str:
        key = (resource_type, logical_id)
        if again and key in names and resource_type in KEPT_TYPES:
            return names[key]
        names[key] = original(resource_type, stack_name, logical_id)
        return names[key]

    cfn_parsing.generate_resource_name = generated
    try:
        yield
    finally:
        cfn_parsing.generate_resource_name = original


def _declared(parameters: Mapping[str, str], declared: set[str]) -> dict[str, str]:
    """The non-empty ``parameters`` the template declares (a template without them deploys every region alike)."""
    return {key: value for key, value in parameters.items() if key in declared and value}


def _report_of(region: str, on_report: ReportCallback | None) -> ReportCallback | None:
    """``on_report`` told which region's rotate function ran (``"region"`` in the summary)."""
    if on_report is None:
        return None
    return lambda summary: on_report({**summary, "region": region})


def _error_of(region: str, on_error: ErrorCallback | None) -> ErrorCallback | None:
    """``on_error`` with the region's name before the message."""
    if on_error is None:
        return None
    return lambda message: on_error(f"{region}: {message}")


def parse_regions(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"us-east-1,eu-west-1"`` or a list: distinct region names, the primary first (ConfigurationError if not)."""
    regions = tuple(r.strip() for r in (value.split(",") if isinstance(value, str) else value))
    bad = [r for r in regions if not REGION_NAME.fullmatch(r)]
    if not regions or bad:
        raise ConfigurationError(f"regions: {', '.join(bad) or '(none)'}: give region names like us-east-1,eu-west-1, primary first")
    if len(set(regions)) != len(regions):
        raise ConfigurationError("regions: a region is listed twice")
    return regions


class LocalRegions:
    """A local cloud with the template deployed into each of ``regions`` (the first is the primary), as a context manager."""

    def __init__(
        self,
        regions: str | Sequence[str],
        settings_overrides: Mapping[str, Any] | None = None,
        *,
        port: int = 0,
        moto_port: int = 0,
        lambda_port: int = 0,
        sts_port: int = 0,
        aws_port: int = 0,
        host: str = "127.0.0.1",
        stack_name: str = DEFAULT_STACK_NAME,
        state_file: str | os.PathLike[str] | None = None,
        edge_cache: bool = True,
        tick: bool = True,
        ready_timeout: float = READY_TIMEOUT_SECONDS,
        wait_for_signing: bool = True,
        **options: Any,
    ) -> None:
        """``options``: as :class:`~.local_stack.LocalStack` takes them (``policy``, ``aws_endpoint``, ``on_report``, ...),
        applied to each region's stack (``record_calls``: each region's functions, a file per region). ``lambda_port`` is the
        primary's Lambda API (the others take free ports); every region is also reached through the one AWS endpoint.
        ``wait_for_signing=False`` (or ``tick=False``): :meth:`start` returns once every region is deployed and served,
        without waiting for each to sign (:meth:`wait_until_every_region_signs` and :meth:`can_sign` are the caller's)."""
        if "region" in options:
            raise ConfigurationError("region: give every region in regions (the first is the primary)")
        self.regions = parse_regions(regions)
        self.primary = self.regions[0]
        given = normalise_overrides(settings_overrides or {})
        managed = sorted(_MANAGED[env] for env in given if env in _MANAGED)
        if managed:
            raise ConfigurationError(f"{', '.join(managed)}: set by the regions given (the first is the primary); do not set it")
        self.stack_name = stack_name
        self._state_file = Path(state_file) if state_file is not None else None
        self._tick = tick
        self._ready_timeout = ready_timeout
        self._wait_for_signing = wait_for_signing
        self.cloud = LocalCloud(self.regions, host=host, moto_port=moto_port, sts_port=sts_port, aws_port=aws_port, edge_port=port,
                                edge_cache=edge_cache)
        overrides = {**dict(settings_overrides or {}), "primary-region": self.primary, "regions": ",".join(self.regions)}
        on_report, on_error = options.pop("on_report", None), options.pop("on_error", None)
        self._stacks: dict[str, LocalStack] = {}
        for region in self.regions:  # the primary's second origin is a parameter of its deployment (a bucket made then)
            primary = region == self.primary
            self._stacks[region] = LocalStack(
                overrides, region=region, stack_name=stack_name, host=host, tick=tick, edge_cache=edge_cache,
                lambda_port=lambda_port if primary else 0, cloud=self.cloud,
                on_report=_report_of(region, on_report), on_error=_error_of(region, on_error), **options,
            )
        self._started = False

    # --- views -----------------------------------------------------------------
    def stack(self, region: str) -> LocalStack:
        """The region's stack (outputs, function names, ``client(service)``, ``invoke``, ``tick``, ``sign_client()``)."""
        try:
            return self._stacks[region]
        except KeyError:
            raise LocalStackError(f"{region} is not one of this local cloud's regions ({', '.join(self.regions)})") from None

    @property
    def secondaries(self) -> tuple[str, ...]:
        return self.regions[1:]

    @property
    def aws_endpoint(self) -> str:
        """The one AWS endpoint: every region's services, each region's functions by the request's signature."""
        return self.stack(self.primary).endpoint

    @property
    def endpoint(self) -> str:
        return self.aws_endpoint

    @property
    def moto_endpoint(self) -> str:
        return self.stack(self.primary).moto_endpoint

    @property
    def sts_endpoint(self) -> str:
        """The one STS endpoint: a proof's credential scope picks its region; each region's signer takes only its own."""
        return self.stack(self.primary).sts_endpoint

    @property
    def edge_url(self) -> str:
        return self.stack(self.primary).edge_url

    @property
    def jwks_url(self) -> str:
        return self.stack(self.primary).jwks_url

    @property
    def discovery_url(self) -> str:
        return self.stack(self.primary).discovery_url

    @property
    def issuer(self) -> str:
        return self.stack(self.primary).issuer

    @property
    def edge(self) -> Any:
        return self.cloud.edge

    @property
    def faults(self) -> Any:
        return self.cloud.faults

    def outputs(self, region: str) -> dict[str, str]:
        """The region's stack's Outputs."""
        return self.stack(region).stack_outputs()

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client of ``region`` (default: the primary) for moto, with moto's dummy keys."""
        return self.stack(region or self.primary).client(service)

    def sign_client(self, region: str | None = None, role_arn: str = DEMO_CALLER_ROLE, *, config: Any = None) -> SignClient:
        """A :class:`~jwks_rotator_client.SignClient` for ``region``'s sign function (through the one AWS endpoint)."""
        stack = self.stack(region or self.primary)
        session = stack.caller_session(role_arn)
        lambda_client = session.client("lambda", endpoint_url=self.aws_endpoint, region_name=stack.region, config=config)
        return SignClient(stack.function_name(SIGN_FUNCTION), lambda_client, session, sts_endpoint_url=self.sts_endpoint)

    # --- faults ----------------------------------------------------------------
    def region_outage(self, region: str) -> None:
        """Every AWS call and Lambda invoke in ``region`` fails at once (503; ServiceException) until :meth:`clear_outage`."""
        self.cloud.faults.start_outage(self.stack(region).region)

    def clear_outage(self, region: str) -> None:
        self.cloud.faults.clear(self.stack(region).region)

    def set_replica_lag(self, region: str, seconds: float) -> None:
        """``region``'s replica secrets show what their primary held ``seconds`` ago (0 ends it): :mod:`.replica_lag`."""
        self.cloud.replica_lag.set_lag(self.stack(region).region, seconds)

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> LocalRegions:
        """Deploy every region, serve, tick; returns once every region signs (LocalStackError after ``ready_timeout``)."""
        claim_process(self)
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        primary = self.stack(self.primary)
        self.cloud.bind(caller_roles(primary.policy))
        declared = set(translated_template()["Parameters"])
        names: dict[str, GeneratedNames] = {region: {} for region in self.secondaries}
        for region in self.secondaries:  # first: the primary replicates into them and names their bucket and roles
            with generated_names(names[region]):
                self.stack(region).deploy()
        second = self.stack(self.regions[1]) if len(self.regions) > 1 else None
        secondaries = [self.stack(region).stack_outputs() for region in self.secondaries]
        for_primary = {
            "SecondOriginBucket": second.resources_or_fail().bucket if second is not None else "",
            "SecondOriginRegion": second.region if second is not None else "",
            "SecondarySignRoleArns": ",".join(out.get("SignFunctionRoleArn", "") for out in secondaries),
            "SecondaryRotateRoleArns": ",".join(out.get("RotateFunctionRoleArn", "") for out in secondaries),
        }
        primary.deploy(_declared({k: v for k, v in for_primary.items() if v}, declared))
        outputs = primary.stack_outputs()
        for_secondaries = _declared({
            "PrimaryKeyringSecretArn": outputs.get("KeyringSecretArn", ""), "PrimaryRotateRoleArn": outputs.get("RotateFunctionRoleArn", ""),
            "PrimaryDistributionId": outputs.get("DistributionId", ""),
        }, declared)
        # The second origin's region names the other origin, the primary's bucket: once promoted it writes both origins.
        other_origin = _declared({"SecondOriginBucket": primary.resources_or_fail().bucket, "SecondOriginRegion": self.primary}, declared)
        if for_secondaries:  # the template takes the primary's names: the secondaries again, with them
            for region, before in zip(self.secondaries, secondaries, strict=True):
                with generated_names(names[region], again=True):
                    self.stack(region).deploy({**for_secondaries, **(other_origin if second is not None and region == second.region else {})})
                self._kept_what_the_primary_names(region, before)
        bucket = primary.resources_or_fail()
        origins = [self.cloud.edge_origin(bucket.bucket, self.primary)]
        if second is not None:
            origins.append(self.cloud.edge_origin(second.resources_or_fail().bucket, second.region))
        self.cloud.edge.serve_from(bucket.bucket, bucket.distribution_id, origins=origins)
        self.cloud.serve()
        for region in self.regions:  # the primary first: it writes what the others read
            self.stack(region).begin_schedule()
        if self._wait_for_signing and self._tick:  # without the schedule no key exists until the caller ticks
            self.wait_until_every_region_signs()
        if self._state_file is not None:
            write_state_file(self._state_file, self.state())

    def _kept_what_the_primary_names(self, region: str, before: Mapping[str, str]) -> None:
        """The secondary's second deployment kept the bucket and roles the primary's stack names (its second origin, its
        replicated resource policies)."""
        after = self.stack(region).stack_outputs()
        changed = [key for key in ("JwksBucketName", "SignFunctionRoleArn", "RotateFunctionRoleArn") if before.get(key) != after.get(key)]
        if changed:
            raise LocalStackError(
                f"{region}'s second deployment changed {', '.join(changed)}: the primary's stack would name what no longer exists"
            )

    def wait_until_every_region_signs(self, timeout: float | None = None) -> None:
        """Until each region's signer issues a token that verifies with the JWKS the edge serves; LocalStackError after ``timeout``."""
        deadline = time.monotonic() + (self._ready_timeout if timeout is None else timeout)
        own = [region for region in self.secondaries if "KeyringSecret" in self.stack(region).deployed_template().resources]
        if own:  # the template ignored PrimaryRegion: such a region signs with keys of its own, which the edge never serves
            raise LocalStackError(
                f"{', '.join(own)}: the deployed template gave the region a keyring of its own instead of the primary's replica, "
                "so its tokens cannot verify with the JWKS the edge serves (template.yaml does not deploy secondary regions yet)"
            )
        waiting = list(self.regions)
        last: dict[str, str] = {}
        while waiting:
            for region in list(waiting):
                why = self.can_sign(region)
                if not why:
                    waiting.remove(region)
                else:
                    last[region] = why
            if not waiting:
                return
            if time.monotonic() >= deadline:
                detail = "; ".join(f"{region}: {last.get(region, 'no answer')}" for region in waiting)
                raise LocalStackError(f"not every region can sign: {detail}")
            time.sleep(0.25)

    def can_sign(self, region: str) -> str:
        """Empty when ``region``'s signer issues a token (a request the policy grants a local role) that verifies with the
        JWKS the edge serves after it; else why not. A policy granting no local role anything: an authenticated refusal."""
        stack = self.stack(region)
        settings: Settings = stack.settings
        for role in caller_roles(stack.policy):
            request = doctor_request(stack.policy, settings, role)
            if "profile" in request:
                break
        else:
            role, request = DEMO_CALLER_ROLE, doctor_request(None, settings, DEMO_CALLER_ROLE)
        try:
            answer = self.sign_client(region, role, config=_READY_CONFIG).sign(request)
        except (SignInvokeError, ClientError, BotoCoreError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if not answer.get("token"):
            refused_after_proof = "profile" not in request and answer.get("error") in ("caller_not_allowed", "audience_not_allowed")
            return "" if refused_after_proof else f"{answer.get('error', 'no token')}: {answer.get('message', '')}"
        try:
            with urllib.request.urlopen(self.jwks_url, timeout=5) as response:
                jwks = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"the JWKS at {self.jwks_url}: {exc}"
        return token_against_jwks(str(answer["token"]), jwks)

    def stop(self) -> None:
        """Stop every schedule and server, delete every region's stack, then moto; remove the state file."""
        for stack in self._stacks.values():
            stack.stop_schedule()
        self.cloud.stop()
        errors: list[BaseException] = []
        for region in reversed(self.regions):  # the secondaries first, as they were deployed
            try:
                self.stack(region).stop()
            except Exception as exc:  # every region is torn down even when one fails
                errors.append(exc)
        self.cloud.stop_moto()
        if self._state_file is not None and self._started and (read_state_file(self._state_file) or {}).get("pid") == os.getpid():
            self._state_file.unlink(missing_ok=True)
        if self._started:
            release_process(self)
        self._started = False
        if errors:
            raise errors[0]

    def __enter__(self) -> LocalRegions:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        """The primary's state (endpoints, names; what operator commands read) with the regions and each one's functions;
        its Lambda endpoint is the one AWS endpoint, which routes each call to its region's functions."""
        state = self.stack(self.primary).state()
        state["lambda_endpoint"] = self.aws_endpoint  # routed by the request's region: `--region R` reaches R's functions
        state["primary_region"] = self.primary
        state["regions"] = {
            region: {"sign_function": stack.function_name(SIGN_FUNCTION), "rotate_function": stack.state()["rotate_function"],
                     "lambda_endpoint": stack.lambda_endpoint}
            for region, stack in self._stacks.items()
        }
        return state

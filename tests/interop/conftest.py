"""Fixtures for the interop suite: one deployment per algorithm, the local edge, the node verifier, a real caller.

A deployment is the real thing on the moto server: the keyring secret, the
bucket and distribution, the rotation service (with a fake clock) that
bootstraps and publishes, the sign Lambda handler loaded from
``functions/sign/app.py`` with its environment, and ``LocalEdge`` serving the
published documents over HTTP on loopback as CloudFront would.

The handler is called as a caller would call it: a moto role session signs a
``GetCallerIdentity`` proof (``jwks_rotator_client.SignClient``, one proof
reused per deployment as a long-lived client does), the handler replays it to
``LocalStsVerifier`` (which checks the signature against moto's in-process
backends), and an issuance policy file lets that role get what these tests ask for.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from jwks_rotator.adapters.sdk.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.bootstrap.rotate import build_rotation_service
from jwks_rotator.core.callers.principals import identity_from_arn
from jwks_rotator.core.keys.keyring import Keyring
from jwks_rotator.core.keys.records import KeyRecord
from jwks_rotator.core.lifecycle.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator_client import SignClient
from jwks_rotator_local.functions import load_function_module
from jwks_rotator_local.sts_verifier import LocalStsVerifier
from jwks_rotator_testkit.callers import SIGN_FUNCTION_NAME, Caller, LambdaContext, moto_role_session, policy_yaml
from jwks_rotator_testkit.clock import FakeClock
from jwks_rotator_testkit.deploy import create_test_resources
from jwks_rotator_testkit.moto import DUMMY_CREDENTIALS, REGION, client_factory
from jwks_rotator_testkit.verifiers import Expectation, NodeVerifier

from .support import ALGORITHMS, NODE_DIR

AUDIENCE = "orders-api"
OTHER_AUDIENCE = "billing-api"

# Small but valid lifetimes: the rotation clock is fake, token times are real.
BASE_SETTINGS = {
    "rotation_period": "7d",
    "publish_lead": "2d",
    "jwks_max_age": "1h",
    "schedule": "15m",
    "max_token_ttl": "10m",
    "default_token_ttl": "5m",
    "signer_cache_ttl": "1s",
    "clock_skew_leeway": "60s",
    "allowed_audiences": f"{AUDIENCE},{OTHER_AUDIENCE}",
    "default_audience": AUDIENCE,
}


# --- the caller ------------------------------------------------------------------

INTEROP_ROLE = "jwks-rotator-interop-issuer"
INTEROP_PROFILE = "interop"


def interop_policy(role_arn: str) -> str:
    """What the interop tests ask for: both audiences, their subjects, two custom claims, up to the stack's max ttl."""
    return policy_yaml(
        {
            "name": INTEROP_PROFILE,
            "callers": [role_arn],
            "audiences": [AUDIENCE, OTHER_AUDIENCE],
            "subjects": ["[a-z0-9-]{1,64}"],
            "claims": ["roles", "tenant"],
            "max_ttl": BASE_SETTINGS["max_token_ttl"],
        }
    )


@dataclass(frozen=True)
class InteropCaller:
    """A moto role session, the signature-checking STS stand-in it proves itself to, and the policy that lets it sign."""

    caller: Caller
    sts_endpoint_url: str
    policy_file: Path

    @property
    def role_arn(self) -> str:
        role_arn = identity_from_arn(self.caller.sts_arn).role_arn
        assert role_arn is not None
        return role_arn

    def env(self) -> dict[str, str]:
        """The sign function's settings that point it at the stand-in and the policy."""
        return {"STS_ENDPOINT_URL": self.sts_endpoint_url, "ISSUANCE_POLICY_FILE": str(self.policy_file)}

    def session(self) -> Any:
        """A boto3 session holding the role's credentials, as a calling service would have."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.caller.access_key,
            aws_secret_access_key=self.caller.secret_key,
            aws_session_token=self.caller.session_token,
            region_name=REGION,
        )


class InProcessLambda:
    """The slice of a boto3 Lambda client ``SignClient`` calls, invoking a deployment's handler in this process.

    The payload goes through JSON both ways, as Lambda's runtime does.
    """

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self.meta = SimpleNamespace(region_name=REGION)

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert FunctionName == SIGN_FUNCTION_NAME and InvocationType == "RequestResponse"
        answer = self._deployment.invoke_handler(json.loads(Payload))
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


# --- a deployment ------------------------------------------------------------------


@dataclass
class Deployment:
    """One algorithm's whole system on the moto server, reachable over HTTP through the edge."""

    alg: str
    endpoint: str
    secret_id: str
    bucket: str
    distribution_id: str
    edge: Any
    settings: Settings
    clock: FakeClock
    service: RotationService
    env: dict[str, str]
    caller: InteropCaller
    sign_module: ModuleType | None = None
    _clients: Callable[[str], Any] = field(default=None, repr=False)  # type: ignore[assignment]
    _sign_client: SignClient | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    @property
    def jwks_url(self) -> str:
        return self.settings.jwks_uri

    @property
    def expect(self) -> Expectation:
        return Expectation(issuer=self.issuer, audience=AUDIENCE)

    def client(self, service: str) -> Any:
        return self._clients(service)

    # --- the sign Lambda -----------------------------------------------------
    def load_signer(self) -> ModuleType:
        """Load ``functions/sign/app.py`` as a fresh module under this deployment's environment."""
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                patch.setenv(name, value)
            name = f"interop_sign_app_{self.alg.lower()}_{uuid.uuid4().hex[:8]}"
            module = load_function_module("sign", name)
        self.sign_module = module
        return module

    def invoke_handler(self, payload: Any) -> dict[str, Any]:
        """Invoke the sign handler as Lambda would, with this deployment's environment and a context naming the function."""
        module = self.sign_module or self.load_signer()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                patch.setenv(name, value)
            answer: dict[str, Any] = module.handler(payload, LambdaContext(function_name=SIGN_FUNCTION_NAME))
            return answer

    @property
    def sign_client(self) -> SignClient:
        """The caller's client for this function: it signs one proof and reuses it, as a long-lived service does."""
        if self._sign_client is None:
            self._sign_client = SignClient(
                SIGN_FUNCTION_NAME,
                lambda_client=InProcessLambda(self),
                session=self.caller.session(),
                sts_endpoint_url=self.caller.sts_endpoint_url,
            )
        return self._sign_client

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Ask for a token as the interop caller: ``payload`` plus the caller's proof, through ``SignClient``."""
        return self.sign_client.sign(payload)

    def issue(self, **payload: Any) -> dict[str, Any]:
        """A token the handler grants; fails the test with the handler's error otherwise."""
        payload.setdefault("sub", "interop-user")
        payload.setdefault("aud", AUDIENCE)
        response = self.sign(payload)
        assert "token" in response, f"sign handler refused: {response.get('error')}: {response.get('message')}"
        return response

    # --- the rotator and the keyring --------------------------------------------
    def tick(self) -> Any:
        report = self.service.tick()
        assert report.converged
        return report

    def keyring(self) -> Keyring:
        return SecretsManagerKeyringStore(self.client("secretsmanager"), self.secret_id).load().keyring

    def active_key(self) -> KeyRecord:
        active = self.keyring().active
        assert active is not None
        return active

    # --- the published documents over HTTP ------------------------------------------
    def fetch(self, url: str) -> tuple[bytes, dict[str, str]]:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read(), {k.lower(): v for k, v in response.headers.items()}

    def jwks_text(self) -> str:
        body, _ = self.fetch(self.jwks_url)
        return body.decode("utf-8")

    def jwks(self) -> dict[str, Any]:
        return json.loads(self.jwks_text())


def make_deployment(
    endpoint: str, alg: str, caller: InteropCaller, *, secret_id: str = "", bucket: str = "", distribution_id: str = "",
    extra_settings: dict[str, str] | None = None,
) -> Deployment:
    """Create (or take) the resources, start the edge, bootstrap and publish the first key of ``alg``; ``caller`` may sign.

    ``extra_settings`` (by attribute name) go to the rotator and the sign function alike (key custody, for instance).
    """
    from jwks_rotator_local.edge import LocalEdge

    clients = client_factory(endpoint)
    if not secret_id:
        created = create_test_resources(endpoint, stack_prefix="jwks-rotator-interop")
        secret_id, bucket, distribution_id = created.secret_id, created.bucket, created.distribution_id
    edge = LocalEdge(
        clients("s3"),
        bucket,
        cloudfront_client=clients("cloudfront"),
        distribution_id=distribution_id,
        invalidation_poll_seconds=0,  # see every invalidation at once: no timing in the tests
    )
    base_url = edge.start()
    try:
        values = {
            **BASE_SETTINGS,
            "algorithm": alg,
            "issuer": base_url,
            "keyring_secret_id": secret_id,
            "jwks_bucket": bucket,
            "distribution_id": distribution_id,
            **(extra_settings or {}),
        }
        settings = Settings.from_mapping(values)
        clock = FakeClock()
        service = build_rotation_service(settings, clients, clock=clock.now)
        env = {spec_env: str(value) for spec_env, value in _env_of(values).items()}
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,  # the STS region proofs are scoped to
            **DUMMY_CREDENTIALS,
            POWERTOOLS_METRICS_NAMESPACE="JwksRotator",
            POWERTOOLS_SERVICE_NAME="jwks-rotator",
            POWERTOOLS_LOG_LEVEL="WARNING",
            **caller.env(),
        )
        deployment = Deployment(
            alg, endpoint, secret_id, bucket, distribution_id, edge, settings, clock, service, env, caller, _clients=clients
        )
        deployment.tick()  # bootstrap: the first key is created, published and activated
        assert deployment.active_key().alg == alg
    except BaseException:
        edge.stop()
        raise
    return deployment


def _env_of(values: dict[str, str]) -> dict[str, str]:
    return {name.upper(): value for name, value in values.items()}


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def interop_caller(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteropCaller]:
    """A moto role session, the signature-checking STS stand-in (in this process, beside moto) and its policy file."""
    sts = LocalStsVerifier(moto_endpoint, region=REGION)
    sts_url = sts.start()
    caller = moto_role_session(moto_endpoint, INTEROP_ROLE, session="interop")
    policy_file = tmp_path_factory.mktemp("issuance-policy") / "issuance-policy.yaml"
    interop = InteropCaller(caller, sts_url, policy_file)
    policy_file.write_text(interop_policy(interop.role_arn), encoding="utf-8")
    yield interop
    sts.stop()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """jose installed from the committed lockfile (``npm ci``) when missing or older than the lockfile."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the jose interop tests")
    lock = NODE_DIR / "package-lock.json"
    stamp = NODE_DIR / "node_modules" / ".interop-installed"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True, text=True)
        stamp.touch()
    return NODE_DIR / "node_modules"


@pytest.fixture(scope="module")
def node_verifier(node_modules: Path) -> Iterator[NodeVerifier]:
    """One node process per test module."""
    verifier = NodeVerifier(NODE_DIR)
    yield verifier
    verifier.close()


@pytest.fixture(scope="module", params=[pytest.param(alg, id=alg) for alg in ALGORITHMS])
def deployment(request: pytest.FixtureRequest, moto_endpoint: str, interop_caller: InteropCaller) -> Iterator[Deployment]:
    """A bootstrapped deployment per algorithm, shared by the read-only tests of a module."""
    deployed = make_deployment(moto_endpoint, request.param, interop_caller)
    yield deployed
    deployed.edge.stop()

"""Fixtures for the interop suite: one deployment per algorithm, the local edge, the node verifier.

A deployment is the real thing on the moto server: the keyring secret, the
bucket and distribution, the rotation service (with a fake clock) that
bootstraps and publishes, the sign Lambda handler loaded from
``functions/sign/app.py`` with its environment, and ``LocalEdge`` serving the
published documents over HTTP on loopback as CloudFront would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jwks_rotator.adapters.secrets_store import SecretsManagerKeyringStore
from jwks_rotator.core.keyring import Keyring
from jwks_rotator.core.keys import KeyRecord
from jwks_rotator.core.rotation import RotationService
from jwks_rotator.core.settings import Settings
from jwks_rotator.wiring import build_rotation_service
from jwks_rotator_local.functions import load_function_module
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


# --- the Lambda context ---------------------------------------------------------


class LambdaContext:
    """The attributes powertools reads from a Lambda context."""

    function_name = "jwks-rotator-sign"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:jwks-rotator-sign"
    log_group_name = "/aws/lambda/jwks-rotator-sign"
    log_stream_name = "interop"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


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
    sign_module: ModuleType | None = None
    _clients: Callable[[str], Any] = field(default=None, repr=False)  # type: ignore[assignment]

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

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Invoke the sign handler as Lambda would, with this deployment's environment."""
        module = self.sign_module or self.load_signer()
        with pytest.MonkeyPatch.context() as patch:
            for name, value in self.env.items():
                patch.setenv(name, value)
            return module.handler(payload, LambdaContext())

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


def make_deployment(endpoint: str, alg: str, *, secret_id: str = "", bucket: str = "", distribution_id: str = "") -> Deployment:
    """Create (or take) the resources, start the edge, bootstrap and publish the first key of ``alg``."""
    from jwks_rotator_local.edge import LocalEdge

    clients = client_factory(endpoint)
    if not secret_id:
        created = create_test_resources(endpoint, secret_prefix="jwks-rotator-interop", bucket_prefix="jwks-rotator-interop")
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
        }
        settings = Settings.from_mapping(values)
        clock = FakeClock()
        service = build_rotation_service(settings, clients, clock=clock.now)
        env = {spec_env: str(value) for spec_env, value in _env_of(values).items()}
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            **DUMMY_CREDENTIALS,
            POWERTOOLS_METRICS_NAMESPACE="JwksRotator",
            POWERTOOLS_SERVICE_NAME="jwks-rotator",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        deployment = Deployment(alg, endpoint, secret_id, bucket, distribution_id, edge, settings, clock, service, env, _clients=clients)
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
def deployment(request: pytest.FixtureRequest, moto_endpoint: str) -> Iterator[Deployment]:
    """A bootstrapped deployment per algorithm, shared by the read-only tests of a module."""
    deployed = make_deployment(moto_endpoint, request.param)
    yield deployed
    deployed.edge.stop()

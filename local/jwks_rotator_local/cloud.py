"""The parts a local cloud has once, whatever its regions: moto, the checking STS, the one AWS endpoint, the edge, the faults.

AWS serves each region from its own endpoints; the local cloud serves them all from one of each, as moto does (it keys
its backends by the request's credential scope). A :class:`~.local_stack.LocalStack` makes one of these for itself;
:class:`~.regions.LocalRegions` makes one and deploys a stack per region into it. Start order: :meth:`LocalCloud.bind`
(moto, STS, the callers' roles, the front's and the edge's sockets, so the issuer URL is known before any deploy), the
regions' deployments, then :meth:`LocalCloud.serve`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import boto3
from botocore.config import Config

from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator_cli.local_state import DEFAULT_REGION

from .caller_roles import create_roles
from .edge import EdgeOrigin, LocalEdge
from .faults import RegionFaults
from .front import AwsFront, RequestHook
from .replica_lag import ReplicaLag
from .stack_env import DUMMY_CREDENTIALS
from .sts_verifier import LocalStsVerifier

EDGE_ORIGIN_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1})
"""The edge's reads of a bucket: one attempt, short timeouts; a failed origin is CloudFront's cue to try the next one."""


class LocalStackError(JwksRotatorError):
    """The local stack could not start or a step of it failed."""

    code = "local_stack_failed"


class LocalCloud:
    """moto, the checking STS, the one AWS endpoint (front), the edge and the regional faults, on loopback ports."""

    def __init__(
        self,
        regions: Iterable[str] = (DEFAULT_REGION,),
        *,
        host: str = "127.0.0.1",
        moto_port: int = 0,
        sts_port: int = 0,
        aws_port: int = 0,
        edge_port: int = 0,
        edge_cache: bool = True,
    ) -> None:
        self.regions = tuple(regions)
        if not self.regions:
            raise ValueError("a local cloud serves at least one region")
        self._host, self._moto_port, self._sts_port, self._aws_port, self._edge_port = host, moto_port, sts_port, aws_port, edge_port
        self._edge_cache = edge_cache
        self.faults = RegionFaults()
        """Regional faults (``jwks-rotator fault``); every server of the cloud consults them."""
        self.replica_lag = ReplicaLag()
        """Replica lag per region (``jwks-rotator fault replica-lag``): see :mod:`.replica_lag`."""
        self.faults.replica_lag = self.replica_lag
        self._moto: Any = None
        self.moto_endpoint = ""
        self._sts: LocalStsVerifier | None = None
        self._front: AwsFront | None = None
        self._edge: LocalEdge | None = None
        self._recorders: list[RequestHook] = []

    # --- parts ---------------------------------------------------------------
    @property
    def sts(self) -> LocalStsVerifier:
        if self._sts is None:
            raise RuntimeError("the local cloud is not started")
        return self._sts

    @property
    def front(self) -> AwsFront:
        if self._front is None:
            raise RuntimeError("the local cloud is not started")
        return self._front

    @property
    def edge(self) -> LocalEdge:
        if self._edge is None:
            raise RuntimeError("the local cloud is not started")
        return self._edge

    def client(self, service: str, region: str | None = None, *, endpoint: str | None = None, config: Any = None) -> Any:
        """A boto3 client of ``region`` (default: the first) with moto's dummy keys, for moto unless ``endpoint`` is given."""
        return boto3.session.Session().client(  # a session of its own: the default one is not thread-safe
            service,
            endpoint_url=endpoint or self.moto_endpoint,
            region_name=region or self.regions[0],
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=config,
        )

    # --- lifecycle -----------------------------------------------------------
    def bind(self, roles: list[str]) -> None:
        """Start moto and the STS, create the callers' ``roles``, open the front's and the edge's sockets."""
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines are noise here
        self._moto = start_moto(self._host, self._moto_port)
        host, port = self._moto.get_host_and_port()
        self.moto_endpoint = f"http://{host}:{port}"
        self.replica_lag.install(self.regions)
        self._sts = LocalStsVerifier(self.moto_endpoint, region=self.regions[0], regions=self.regions[1:])
        self._sts.faults = self.faults
        self._sts.start(self._host, self._sts_port)
        create_roles(self.client("iam"), roles)
        self._front = AwsFront(self.moto_endpoint, "", host=self._host, port=self._aws_port, faults=self.faults)
        self._front.bind()
        self._edge = LocalEdge(
            self.client("s3"), "", cloudfront_client=self.client("cloudfront"), host=self._host, port=self._edge_port, cache=self._edge_cache
        )
        self._edge.bind()

    def add_recorder(self, recorder: RequestHook) -> None:
        """Tell ``recorder`` of every request at the one AWS endpoint (each region's stack keeps its own functions' calls)."""
        if recorder not in self._recorders:
            self._recorders.append(recorder)
        self.front.recorder = self._record

    def _record(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        for recorder in list(self._recorders):
            recorder(method, path, headers, body)

    def edge_origin(self, bucket: str, region: str) -> EdgeOrigin:
        """An origin of the edge: ``bucket`` read through the one AWS endpoint as ``region``, so that region's outage reaches it."""
        return EdgeOrigin(self.client("s3", region, endpoint=self.front.url, config=EDGE_ORIGIN_CONFIG), bucket, region)

    def add_lambda_api(self, region: str, url: str) -> None:
        """Route the region's Lambda API calls at the one AWS endpoint to ``url``."""
        front = self.front
        front.lambda_urls[region] = url
        if region == self.regions[0] or not front.lambda_url:  # the first region's, for a request no region routes
            front.lambda_url = url

    def serve(self) -> None:
        """Serve the front and the edge (once every region's functions are known)."""
        self.front.start()
        self.edge.start()

    def stop(self) -> None:
        """Stop every server; moto last (the stacks' teardown needs it: call :meth:`stop_moto` after it)."""
        if self._front is not None:
            self._front.stop()
        if self._edge is not None:
            self._edge.stop()
        if self._sts is not None:
            self._sts.stop()
            self._sts = None

    def stop_moto(self) -> None:
        self.replica_lag.uninstall()
        if self._moto is not None:
            self._moto.stop()
            self._moto = None


def start_moto(host: str, port: int) -> Any:
    """A started ``ThreadedMotoServer``; a port it cannot bind raises :class:`LocalStackError` naming it.

    moto's own ``start()`` waits forever when werkzeug cannot bind (it exits the server thread instead of raising).
    """
    from moto.server import ThreadedMotoServer

    from .moto_gaps import add_missing_calls

    add_missing_calls()  # StopReplicationToReplica, for promote
    failure: list[str] = []

    class _Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except (SystemExit, OSError) as exc:
                failure.append(f"moto cannot listen on {host}:{port} ({type(exc).__name__}); pass --moto-port 0 for any free port")
                self._server_ready_event.set()

    server = _Server(ip_address=host, port=port, verbose=False)
    server.start()
    if failure:
        raise LocalStackError(failure[0])
    return server

"""A moto server in server mode on loopback, and boto3 clients for it.

Tests, the soak and the benchmark reach moto over HTTP through boto3's
``endpoint_url``, as they would reach AWS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config

from jwks_rotator_local.moto_gaps import add_missing_calls

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

ClientFactory = Callable[[str], Any]
RegionalClientFactory = Callable[[str], ClientFactory]


@contextmanager
def moto_server(host: str = "127.0.0.1") -> Iterator[str]:
    """Start ``ThreadedMotoServer`` on ``host`` and a free port, with the calls moto lacks added
    (:mod:`jwks_rotator_local.moto_gaps`); yields its endpoint URL; stops it on exit."""
    from moto.server import ThreadedMotoServer

    add_missing_calls()

    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    try:
        bound_host, port = server.get_host_and_port()
        yield f"http://{bound_host}:{port}"
    finally:
        server.stop()


def set_default_credentials(region: str = REGION) -> None:
    """Dummy credentials and a region in the environment, unless some are set already (for code that builds its own clients)."""
    for name, value in {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": region}.items():
        os.environ.setdefault(name, value)


def aws_client(
    service: str, endpoint: str, *, region: str = REGION, config: Config | None = None, session: boto3.session.Session | None = None
) -> Any:
    """A boto3 client for ``service`` at ``endpoint`` with dummy credentials.

    Pass a fresh ``session`` when clients are made from several threads (boto3's default session is not thread-safe).
    """
    return (session or boto3).client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def client_factory(endpoint: str, *, region: str = REGION, config: Config | None = None, fresh_sessions: bool = False) -> ClientFactory:
    """``service -> client`` for ``endpoint``, the shape the product's wiring takes (a new boto3 session per client if told)."""

    def make(service: str) -> Any:
        session = boto3.session.Session() if fresh_sessions else None
        return aws_client(service, endpoint, region=region, config=config, session=session)

    return make


def regional_client_factory(endpoint: str, *, config: Config | None = None, fresh_sessions: bool = False) -> RegionalClientFactory:
    """``region -> ClientFactory`` for ``endpoint``: one moto server serves every region, by the request's signature."""

    def in_region(region: str) -> ClientFactory:
        return client_factory(endpoint, region=region, config=config, fresh_sessions=fresh_sessions)

    return in_region

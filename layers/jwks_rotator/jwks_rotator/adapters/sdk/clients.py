"""Every boto3 client the product makes, and the one way an AWS failure is named.

:func:`make_client` builds clients with explicit connect/read timeouts and
boto3's ``standard`` retry mode (the defaults are 60 s timeouts and the
``legacy`` mode), so a slow endpoint costs a bounded time inside a Lambda
timeout. The endpoint is left to boto3, which honours ``AWS_ENDPOINT_URL``
and ``AWS_ENDPOINT_URL_<SERVICE>`` (how the tests and the local stack point
the functions at moto) unless a caller passes ``endpoint_url``.

:func:`error_code` names a failed call by its AWS error code, never by the
service's message (which can quote a request) and never by a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)
"""What a boto3 call raises when AWS refuses it or the transport fails."""

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ClientPolicy:
    """How patient a client is: seconds to connect, seconds per read, and attempts per call, the first included.

    ``attempts`` is botocore's ``total_max_attempts`` (its ``max_attempts``
    counts retries only: ``max_attempts=2`` is three attempts).
    """

    connect_timeout: float
    read_timeout: float
    attempts: int


SIGNING = ClientPolicy(connect_timeout=2, read_timeout=3, attempts=3)
"""The sign function (5 s Lambda timeout): a read that cannot finish quickly answers ``signing_unavailable``."""

ROTATION = ClientPolicy(connect_timeout=3, read_timeout=10, attempts=4)
"""The rotate function and the CLI (60 s Lambda timeout, a handful of calls per tick)."""

PROBE = ClientPolicy(connect_timeout=2, read_timeout=3, attempts=1)
"""One look at another region that may be down (promote's probe of the old primary): no retry, a few seconds at most."""

ClientFactory = Callable[[str], Any]
"""``service name -> boto3 client``; what the wiring takes, so tests can hand in their own."""

RegionalClientFactory = Callable[[str], ClientFactory]
"""``region name -> that region's ClientFactory``: the writer's clients for the other regions (replicas, origins, lists)."""


def make_client(service: str, policy: ClientPolicy = ROTATION, **options: Any) -> Any:
    """A boto3 client for ``service`` with ``policy``'s timeouts and standard retries.

    ``options`` go to ``boto3.client`` as they are (``endpoint_url``,
    ``region_name``, credentials).
    """
    config = Config(
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        retries={"mode": "standard", "total_max_attempts": policy.attempts},
    )
    return boto3.client(service, config=config, **options)


def client_factory(policy: ClientPolicy = ROTATION, **options: Any) -> ClientFactory:
    """A :data:`ClientFactory` whose clients share ``policy`` and ``options``."""

    def build(service: str) -> Any:
        return make_client(service, policy, **options)

    return build


def regional_client_factory(policy: ClientPolicy = ROTATION, **options: Any) -> RegionalClientFactory:
    """A :data:`RegionalClientFactory`: each region's clients share ``policy`` and ``options`` (its ``region_name`` set).

    The endpoint stays boto3's (``AWS_ENDPOINT_URL`` included): one endpoint serving every region by the request's
    signature (the local cloud) is reached in region R by a client whose ``region_name`` is R.
    """

    def in_region(region: str) -> ClientFactory:
        return client_factory(policy, **{**options, "region_name": region})

    return in_region


def error_code(exc: BaseException) -> str:
    """The AWS error code of a failed call (``ThrottlingException``, ``404``), else the exception's type name.

    Only a code-shaped string is returned, so nothing a service echoed back
    (a message, a request value) reaches an error message or a log.
    """
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        code = error.get("Code") if isinstance(error, Mapping) else None
        if isinstance(code, str) and _CODE.fullmatch(code):
            return code
    return type(exc).__name__

"""Structured logs and EMF metrics through aws-lambda-powertools, shared by every function.

Log kid, iss, aud, jti, state changes and reasons. Never a token, a claim
value, a secret value or key material.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from jwks_rotator.core.keyring import Keyring
from jwks_rotator.core.keys import KeyState

SERVICE = "jwks-rotator"
NAMESPACE = "JwksRotator"


def make_logger(function: str) -> Logger:
    """A JSON logger for one function (service ``jwks-rotator``, ``function`` key)."""
    logger = Logger(service=SERVICE)
    logger.append_keys(function=function)
    return logger


def make_metrics() -> Metrics:
    """The EMF metrics sink for the product's namespace."""
    return Metrics(namespace=NAMESPACE, service=SERVICE)


def add_keyring_metrics(metrics: Metrics, keyring: Keyring, now: datetime) -> None:
    """Keys per state and the age of the active key."""
    for state in KeyState:
        metrics.add_metric(name=f"Keys{state.value.capitalize()}", unit=MetricUnit.Count, value=len(keyring.in_state(state)))
    active = keyring.active
    if active is not None and active.activated_at is not None:
        metrics.add_metric(name="ActiveKeyAgeSeconds", unit=MetricUnit.Seconds, value=(now - active.activated_at).total_seconds())

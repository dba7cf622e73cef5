"""Structured logs and EMF metrics through aws-lambda-powertools, shared by every function.

Log kid, iss, aud, jti, state changes and reasons. Never a token, a claim
value, a secret value or key material. The rotate function's own metrics are in
:mod:`.rotation_metrics` (the sign function never loads them).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

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

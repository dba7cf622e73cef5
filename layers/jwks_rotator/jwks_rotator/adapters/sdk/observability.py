"""Structured logs and EMF metrics through aws-lambda-powertools, for the rotate function.

Log kid, iss, aud, jti, state changes and reasons. Never a token, a claim
value, a secret value or key material. The rotate function's own metrics are in
:mod:`.rotation_metrics`. The sign function loads neither: it writes the same
shapes directly (:mod:`jwks_rotator.adapters.lean.telemetry`), without powertools' import cost.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from jwks_rotator.adapters.lean.telemetry import NAMESPACE, SERVICE

__all__ = ["NAMESPACE", "SERVICE", "make_logger", "make_metrics"]


def make_logger(function: str) -> Logger:
    """A JSON logger for one function (service ``jwks-rotator``, ``function`` key)."""
    logger = Logger(service=SERVICE)
    logger.append_keys(function=function)
    return logger


def make_metrics() -> Metrics:
    """The EMF metrics sink for the product's namespace."""
    return Metrics(namespace=NAMESPACE, service=SERVICE)

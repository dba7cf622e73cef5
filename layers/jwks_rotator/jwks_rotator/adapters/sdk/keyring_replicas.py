"""The keyring's and the signing view's replica secrets in other regions, read back by the writer (Secrets Manager).

:class:`SecretsManagerKeyringReplicas` implements ``KeyringReplicas`` (the kids each keyring replica holds);
:class:`SecretsManagerSigningViewReplicas` implements ``SigningViewReplicas`` (the kids each region's signer may
sign with: every key its view holds, which is at most the active one).

Each region's replica is read with that region's client, by the secret's name (a replica keeps its primary's name).
A replica that cannot be read, or holds no valid keyring, is reported as None with a warning naming the region and
the AWS error code only: a lagging or unreachable region holds up activation, never the rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from jwks_rotator.adapters.sdk.clients import AWS_ERRORS, error_code
from jwks_rotator.core.errors import JwksRotatorError
from jwks_rotator.core.keys.keyring import Keyring


class SecretsManagerKeyringReplicas:
    """``kids_by_region`` from one Secrets Manager client per replica region."""

    def __init__(self, clients: Mapping[str, Any], secret_id: str, *, logger: Any = None) -> None:
        self._clients = dict(clients)
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    def kids_by_region(self) -> Mapping[str, frozenset[str] | None]:
        return _kids_by_region(self._clients, self._secret_id, self._log, "keyring replica")


class SecretsManagerSigningViewReplicas:
    """``signing_kids_by_region`` from one Secrets Manager client per replica region of the signing view secret."""

    def __init__(self, clients: Mapping[str, Any], secret_id: str, *, logger: Any = None) -> None:
        self._clients = dict(clients)
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    def signing_kids_by_region(self) -> Mapping[str, frozenset[str] | None]:
        return _kids_by_region(self._clients, self._secret_id, self._log, "signing view replica")


def _kids_by_region(clients: Mapping[str, Any], secret_id: str, log: Any, what: str) -> dict[str, frozenset[str] | None]:
    held: dict[str, frozenset[str] | None] = {}
    for region, client in clients.items():
        try:
            response = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
            keyring = Keyring.from_json(response["SecretString"])
        except AWS_ERRORS as exc:
            log.warning("replica unreadable", extra={"replica": what, "region": region, "reason": error_code(exc)})
            held[region] = None
            continue
        except JwksRotatorError as exc:
            log.warning("replica holds no valid keyring", extra={"replica": what, "region": region, "reason": exc.code})
            held[region] = None
            continue
        held[region] = frozenset(key.kid for key in keyring.keys)
    return held

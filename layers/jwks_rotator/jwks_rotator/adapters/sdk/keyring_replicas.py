"""The keyring's and the signing view's replica secrets in other regions, read back by the writer (Secrets Manager).

:class:`SecretsManagerKeyringReplicas` implements ``KeyringReplicas`` (each keyring replica's generation and kids);
:class:`SecretsManagerSigningViewReplicas` implements ``SigningViewReplicas`` (the kids each region's signer may
sign with: every key its view holds, which is at most the active one).

Each region's replica is read with that region's client, by the secret's name (a replica keeps its primary's name), or
by its ARN with the region replaced (a replica's ARN differs from its primary's in the region only).
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
from jwks_rotator.core.ports import ReplicaReading


class SecretsManagerKeyringReplicas:
    """``read_back`` from one Secrets Manager client per replica region."""

    def __init__(self, clients: Mapping[str, Any], secret_id: str, *, logger: Any = None) -> None:
        self._clients = dict(clients)
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self._clients)

    def read_back(self) -> Mapping[str, ReplicaReading | None]:
        return {
            region: None if keyring is None else ReplicaReading(keyring.generation, frozenset(key.kid for key in keyring.keys))
            for region, keyring in _keyrings(self._clients, self._secret_id, self._log, "keyring replica").items()
        }

    def kids_by_region(self) -> Mapping[str, frozenset[str] | None]:
        """The kids each replica holds (None: unreadable)."""
        return {region: None if reading is None else reading.kids for region, reading in self.read_back().items()}


class SecretsManagerSigningViewReplicas:
    """``signing_kids_by_region`` from one Secrets Manager client per replica region of the signing view secret."""

    def __init__(self, clients: Mapping[str, Any], secret_id: str, *, logger: Any = None) -> None:
        self._clients = dict(clients)
        self._secret_id = secret_id
        self._log = logger or logging.getLogger("jwks_rotator")

    def signing_kids_by_region(self) -> Mapping[str, frozenset[str] | None]:
        return {
            region: None if keyring is None else frozenset(key.kid for key in keyring.keys)
            for region, keyring in _keyrings(self._clients, self._secret_id, self._log, "signing view replica").items()
        }


def secret_in_region(secret_id: str, region: str) -> str:
    """The id of ``secret_id``'s replica in ``region``: a name as it is, an ARN with its region replaced.

    A replica keeps its primary's name and ARN but for the region; an ARN names one region, so another
    region's client needs the replica's own.
    """
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager":
        parts[3] = region
        return ":".join(parts)
    return secret_id


def _keyrings(clients: Mapping[str, Any], secret_id: str, log: Any, what: str) -> dict[str, Keyring | None]:
    held: dict[str, Keyring | None] = {}
    for region, client in clients.items():
        try:
            response = client.get_secret_value(SecretId=secret_in_region(secret_id, region), VersionStage="AWSCURRENT")
            keyring = Keyring.from_json(response["SecretString"])
        except AWS_ERRORS as exc:
            log.warning("replica unreadable", extra={"replica": what, "region": region, "reason": error_code(exc)})
            held[region] = None
            continue
        except JwksRotatorError as exc:
            log.warning("replica holds no valid keyring", extra={"replica": what, "region": region, "reason": exc.code})
            held[region] = None
            continue
        except (KeyError, TypeError):
            log.warning("replica holds no valid keyring", extra={"replica": what, "region": region, "reason": "MalformedResponse"})
            held[region] = None
            continue
        held[region] = keyring
    return held

"""AWS calls moto lacks that the product makes, added to the moto running in this process (the local cloud's, the tests').

``StopReplicationToReplica`` (Secrets Manager): ``promote`` calls it in the replica's region to make the replica a
standalone secret. moto 5 answers it with HTTP 500 (not implemented). The emulation does what AWS documents: called
in the replica's region on a replica secret, it unlinks the replica from its primary (the primary no longer lists the
region) and leaves in its place a standalone secret of the same ARN and name holding the same versions, writable from
then on; called on a secret that is not a replica it answers ``InvalidRequestException``. It works while the
primary's region is in an outage, as on AWS (the call goes to the replica's region only). What it cannot show:
AWS's own timing of the unlinking (moto replicates at once, so there is no in-flight replication to lose).
"""

from __future__ import annotations

import copy
import json
import threading

_LOCK = threading.Lock()
_INSTALLED = False


def add_missing_calls() -> None:
    """Add the emulated calls to moto's responses (idempotent; moto must be importable)."""
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.secretsmanager.responses import SecretsManagerResponse

        SecretsManagerResponse.stop_replication_to_replica = _stop_replication_to_replica  # type: ignore[attr-defined]
        _INSTALLED = True


def _stop_replication_to_replica(self: object) -> str:
    """moto's dispatch calls this for ``secretsmanager.StopReplicationToReplica`` (``self``: a SecretsManagerResponse)."""
    from moto.secretsmanager.exceptions import InvalidRequestException, SecretNotFoundException
    from moto.secretsmanager.models import ReplicaSecret

    secret_id = self._get_param("SecretId")  # type: ignore[attr-defined]
    backend = self.backend  # type: ignore[attr-defined]
    if secret_id not in backend.secrets:
        raise SecretNotFoundException()
    replica = backend.secrets[secret_id]
    if not isinstance(replica, ReplicaSecret):
        raise InvalidRequestException("The secret is not a replica secret; call StopReplicationToReplica in a replica's region.")
    source = replica.source
    standalone = copy.copy(source)
    standalone.region = replica.region
    standalone.arn = replica.arn
    standalone.replicas = []
    standalone.versions = copy.deepcopy(replica.versions)  # what the replica held (a lagged replica: its lagged state)
    standalone.default_version_id = replica.default_version_id
    dict.pop(backend.secrets, replica.arn, None)
    dict.pop(backend.secrets, source.name, None)
    backend.secrets[source.name] = standalone
    if replica in source.replicas:
        source.replicas.remove(replica)
    return json.dumps({"ARN": replica.arn})

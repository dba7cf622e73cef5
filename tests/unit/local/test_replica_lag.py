"""Replica lag on moto's in-process Secrets Manager: a replica shows its primary as it stood ``lag`` seconds ago."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.secretsmanager.exceptions import ResourceNotFoundException
from moto.secretsmanager.models import secretsmanager_backends

from jwks_rotator_cli.local_state import LOCAL_ACCOUNT
from jwks_rotator_local.replica_lag import ReplicaLag

PRIMARY, REPLICA = "us-east-1", "eu-west-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lagging() -> Iterator[tuple[ReplicaLag, Clock]]:
    clock = Clock()
    lag = ReplicaLag(clock)
    with mock_aws():
        lag.install((PRIMARY, REPLICA))
        try:
            yield lag, clock
        finally:
            lag.uninstall()


def create(name: str, value: str) -> str:
    return secretsmanager_backends[LOCAL_ACCOUNT][PRIMARY].create_secret(
        name, value, None, None, None, None, None, [{"Region": REPLICA}], False
    )


def put(name: str, value: str) -> str:
    return str(secretsmanager_backends[LOCAL_ACCOUNT][PRIMARY].put_secret_value(name, value, "", "", ["AWSCURRENT"]))


def read(name: str, **version: str) -> str:
    answer = secretsmanager_backends[LOCAL_ACCOUNT][REPLICA].get_secret_value(name, version.get("version_id"), version.get("stage"))
    return str(answer["SecretString"])


def test_without_a_lag_the_replica_is_live(lagging: tuple[ReplicaLag, Clock]) -> None:
    create("keyring", "one")
    put("keyring", "two")
    assert read("keyring") == "two"


def test_a_replica_shows_the_state_of_lag_seconds_ago_and_catches_up(lagging: tuple[ReplicaLag, Clock]) -> None:
    lag, clock = lagging
    create("keyring", "one")
    lag.set_lag(REPLICA, 30)
    clock.now += 100
    put("keyring", "two")
    assert read("keyring") == "one"
    assert read("keyring", stage="AWSCURRENT") == "one"
    described = secretsmanager_backends[LOCAL_ACCOUNT][REPLICA].describe_secret("keyring").to_dict()
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
    clock.now += 29.9
    assert read("keyring") == "one"
    clock.now += 0.2
    assert read("keyring") == "two"  # 30 s after the write
    clock.now += 1
    put("keyring", "three")
    assert read("keyring") == "two"
    lag.set_lag(REPLICA, 0)
    assert read("keyring") == "three"  # caught up at once
    assert lag.lag(PRIMARY) == 0


def test_a_replica_never_goes_back_when_a_lag_is_set_or_raised(lagging: tuple[ReplicaLag, Clock]) -> None:
    lag, clock = lagging
    create("keyring", "one")
    clock.now += 100
    put("keyring", "two")
    lag.set_lag(REPLICA, 60)
    assert read("keyring") == "two"  # it showed "two" already: the lag delays what comes next
    clock.now += 1
    put("keyring", "three")
    clock.now += 30
    lag.set_lag(REPLICA, 120)
    assert read("keyring") == "two"
    clock.now += 50
    assert read("keyring") == "two"  # "three" is 80 s old, under the raised lag
    clock.now += 41
    assert read("keyring") == "three"  # 121 s old
    put("keyring", "four")
    lag.set_lag(REPLICA, 10)
    assert read("keyring") == "three"  # a lower lag: "four" arrives 10 s after it was written, "three" stays
    clock.now += 10
    assert read("keyring") == "four"


def test_a_secret_younger_than_the_lag_shows_its_oldest_recorded_state(lagging: tuple[ReplicaLag, Clock]) -> None:
    lag, clock = lagging
    lag.set_lag(REPLICA, 60)
    create("young", "first")
    clock.now += 1
    put("young", "second")
    assert read("young") == "first"  # never more than the lag behind, and never before the secret existed


def test_a_version_is_stored_once_and_an_unlabelled_one_shows_once_the_lag_passed(lagging: tuple[ReplicaLag, Clock]) -> None:
    lag, clock = lagging
    create("keyring", "one")
    lag.set_lag(REPLICA, 30)
    clock.now += 1
    backend = secretsmanager_backends[LOCAL_ACCOUNT][PRIMARY]
    staged = json.loads(backend.put_secret_value("keyring", "staged", "", "", ["AWSPENDING"]))["VersionId"]
    unlabelled = json.loads(backend.put_secret_value("keyring", "bare", "", "", []))["VersionId"]
    assert read("keyring") == "one"
    with pytest.raises(ResourceNotFoundException):
        read("keyring", version_id=unlabelled)
    clock.now += 31
    assert read("keyring", version_id=unlabelled) == "bare" and read("keyring", stage="AWSPENDING") == "staged"
    assert read("keyring", version_id=staged) == "staged"
    record = next(iter(lag._records.values()))
    assert len(record.versions) == 3 and len(record.history) == 2  # values once; a state per change of labels only


def test_a_lag_out_of_range_is_refused() -> None:
    lag = ReplicaLag()
    for seconds in (-1.0, 3600.5):
        with pytest.raises(ValueError, match="replica lag"):
            lag.set_lag(REPLICA, seconds)
    assert lag.lags() == {}

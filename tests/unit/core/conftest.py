"""A generated key of every supported algorithm, shared by the keys and lifecycle unit tests."""

from datetime import UTC, datetime

import pytest

from jwks_rotator.core.keys.algorithms import algorithm_names
from jwks_rotator.core.keys.records import KeyRecord
from jwks_rotator.core.lifecycle.keygen import generate_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=algorithm_names())
def key(request) -> KeyRecord:
    return generate_key(request.param, NOW)

import pytest

from jwks_rotator.core.errors import UnsupportedAlgorithmError
from jwks_rotator.core.keys.algorithms import get_algorithm


def test_unknown_algorithms_are_refused():
    for name in ("HS256", "none", "RS1", None):
        with pytest.raises(UnsupportedAlgorithmError):
            get_algorithm(name)

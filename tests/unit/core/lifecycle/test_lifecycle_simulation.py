"""Property test: the rotation service over months of random schedule, with faults.

Each example replays at least 180 simulated days of ticks that come late,
early, twice, not at all for days, from two rotators interleaved, with
keyring-store and publication failures at random points, and checks the
lifecycle invariants after every step (see ``tests/simulation.py``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from jwks_rotator.core.settings import Settings
from jwks_rotator_testkit.hypothesis_profiles import examples
from tests.simulation import Scenario, run_scenario

# slow: every example replays 180+ simulated days of ticks (10-40 s each); make test runs it, make check leaves it out.
pytestmark = pytest.mark.slow

SETTINGS = Settings(
    issuer="https://issuer.example.com",
    algorithm="EdDSA",
    rotation_period=timedelta(days=7),
    publish_lead=timedelta(days=2),
    max_token_ttl=timedelta(hours=1),
    jwks_max_age=timedelta(hours=1),
    schedule=timedelta(minutes=15),
)

FAULT_KINDS = ("store_read", "store_write_lost", "store_write_unacknowledged", "s3_read", "s3_write", "invalidation")

# A tight profile (rotation period == publish lead) makes the lead the binding constraint.
TIGHT = SETTINGS.replace(rotation_period=timedelta(days=2))

scenarios = st.builds(
    Scenario,
    seed=st.integers(0, 2**32 - 1),
    days=st.integers(180, 200),
    mean_gap_minutes=st.sampled_from([15.0, 60.0, 240.0]),
    skip_rate=st.floats(0.0, 0.05),
    duplicate_rate=st.floats(0.0, 0.2),
    concurrent_rate=st.floats(0.0, 0.2),
    rotate_now_rate=st.floats(0.0, 0.002),
    fault_rates=st.fixed_dictionaries({kind: st.floats(0.0, 0.3) for kind in FAULT_KINDS}),
)


@hypothesis_settings(max_examples=examples(8), deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False)
@given(st.sampled_from([SETTINGS, TIGHT]), scenarios)
def test_invariants_hold_over_months_of_faulty_schedule(settings: Settings, scenario: Scenario) -> None:
    outcome = run_scenario(settings, scenario)
    assert outcome.simulated_days >= 180
    # the schedule really rotated keys (skipped days and faults delay rotations, never stop them)
    assert outcome.activations >= 180 // 7 // 3


def test_a_calm_schedule_rotates_every_period() -> None:
    outcome = run_scenario(
        SETTINGS,
        Scenario(seed=7, days=180, mean_gap_minutes=15.0, skip_rate=0, duplicate_rate=0, concurrent_rate=0,
                 rotate_now_rate=0, fault_rates={}),
    )
    # bootstrap + one activation per 7 days (+ the tick granularity): 25 or 26 in 180 days
    assert 25 <= outcome.activations <= 27
    assert outcome.failed_ticks == 0
    assert outcome.most_keys <= 3


def test_faulty_concurrent_schedule_still_converges() -> None:
    outcome = run_scenario(
        SETTINGS,
        Scenario(seed=11, days=180, mean_gap_minutes=60.0, skip_rate=0.02, duplicate_rate=0.1, concurrent_rate=0.2,
                 rotate_now_rate=0.001, fault_rates=dict.fromkeys(FAULT_KINDS, 0.05)),
    )
    assert outcome.failed_ticks > 0 and outcome.conflicts > 0
    assert all(outcome.faults[kind] > 0 for kind in FAULT_KINDS)

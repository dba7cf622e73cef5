"""The short soak (about 30 s per algorithm): the local stack under signing, caching verifiers and faults.

Every token from ``SignFunction`` is verified by PyJWT, jose (caches on,
scaled to the lead) and Envoy (``cache_duration`` as ``jwks-rotator verifiers``
recommends) at a random moment of its life while the functions' AWS
calls go through a fault-injecting proxy and rotators are doubled, crashed,
killed and paused. ``make soak`` runs the same for minutes and writes
benchmarks/SOAK.md.
"""

from __future__ import annotations

import shutil

import pytest

from soak.config import NODE_DIR, SoakConfig
from soak.harness import run_soak
from soak.records import Sample, TokenRecord, Verification
from soak.report import as_text
from soak.summary import lost_keys

pytestmark = [pytest.mark.integration, pytest.mark.interop]

SHORT = {"duration": 22.0, "episode_seconds": 3.5, "quiet_seconds": 1.0, "episodes": ("pause", "crash", "double", "kill", "faults")}


@pytest.fixture(scope="module")
def node_ready() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is needed for the jose verifier")
    if not (NODE_DIR / "node_modules" / ".interop-installed").exists():
        pytest.fail("jose is not installed: run `make interop-node`")


# RS256 here, ES256 in the two-region short soak (tests/soak/test_soak_regions_short.py): each algorithm once inside
# `make test`'s budget; `make soak` runs both algorithms for minutes.
@pytest.mark.parametrize("algorithm", ["RS256"])
def test_short_soak_refuses_no_unexpired_token_and_loses_no_key(algorithm: str, node_ready: None) -> None:
    summary = run_soak(SoakConfig(algorithm=algorithm, seed=7, **SHORT), log=lambda _: None)
    report = as_text([summary])
    print(report)
    assert summary["tokens_issued"] > 100, report
    assert summary["unexpired_refusals"] == 0, report  # every verifier's, Envoy's included
    assert not summary["lost_keys"], report
    conv = summary["convergence"]
    assert conv["fault_episodes_ended"] >= 3 and conv["within_one_tick"] == conv["fault_episodes_ended"], report
    assert not summary["retired_keys"]["late"], report
    assert 0 < summary["max_keys_in_jwks"] <= summary["key_bound"] == 3, report
    assert summary["rotations"] >= 1, report
    assert sum(v for k, v in summary["faults"].items() if not k.startswith("episode")) > 0, report
    assert summary["signing_unavailable_rate"] < 0.05, report
    assert all(summary["checks"].values()), report
    probe = summary["envoy_revocation"]
    assert probe["accepted_before"] and probe["refused_at_bound"] and probe["token_unexpired_at_bound"], report
    for library in ("pyjwt", "jose", "envoy"):
        by_moment = summary["verifications"][library]["by_moment"]
        assert set(by_moment) == {"after issue", "random", "before expiry"}, report
        assert summary["verifications"][library]["verified_in_last_second"] > 0, report


# --- the analysis itself: it must see a lost key and an unexpired refusal when there is one ---------


def test_lost_key_analysis_flags_a_kid_missing_during_a_tokens_life() -> None:
    token = TokenRecord(0, "kid-new", issued_start=100.0, issued_end=100.1, exp=105, token="x")
    samples = [
        Sample(99.9, 99.95, frozenset({"kid-old", "kid-new"}), "a"),
        Sample(102.0, 102.05, frozenset({"kid-old"}), "b"),  # a stale document without the signing kid
        Sample(104.0, 104.05, frozenset({"kid-old", "kid-new"}), "a"),
        Sample(106.0, 106.05, frozenset({"kid-old"}), "b"),  # after exp: allowed
    ]
    lost = lost_keys([token], samples, [s.start for s in samples])
    assert [entry["tokens"] for entry in lost] == [1]
    samples[1] = Sample(102.0, 102.05, frozenset({"kid-old", "kid-new"}), "a")
    assert lost_keys([token], samples, [s.start for s in samples]) == []


def test_only_refusals_before_expiry_count_as_failures() -> None:
    def check(start: float, end: float, ok: bool, reason: str = "") -> bool:
        return Verification("pyjwt", "random", start, start, end, 105, ok, reason).unexpired_refusal

    assert check(104.7, 104.8, False, "kid not in JWKS")
    assert check(104.7, 104.8, False, "expired")  # refused as expired although it was not
    assert not check(104.9, 105.1, False, "expired")  # the check ran at or after exp
    assert not check(105.0, 105.1, False, "kid not in JWKS")
    assert not check(104.0, 104.1, True)


"""The short soak in two regions (about 45 s): callers of both regions through outages, rotate-now, a revocation, replica lag.

``LocalRegions(["us-east-1", "eu-west-1"])`` with the soak's fast settings; in each region a ``SignClient`` caller
and a ``RegionalSignClient`` caller (own region first); every token verified by PyJWT and jose through the edge's
JWKS URL. Each episode runs once. The invariants are asserted, not the times (they are the report's figures);
``make soak`` runs the same for minutes and writes benchmarks/SOAK-REGIONS.md.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from soak.config import NODE_DIR
from soak.records import Sample, TokenRecord, Verification
from soak.region_episodes import (
    PRIMARY_OUTAGE,
    REGION_EPISODES,
    REPLICA_LAG,
    REVOCATION,
    SECONDARY_OUTAGE,
    ProbeAnswer,
    reach_figures,
    stopped_at,
)
from soak.region_state import RegionState
from soak.region_summary import as_markdown, as_text, in_rotate_now_window, served_before_issue, set_aside, view_dropped
from soak.regions import RegionsConfig, regions_soak_defaults, run_regions_soak

pytestmark = [pytest.mark.integration, pytest.mark.interop]


@pytest.fixture(scope="module")
def node_ready() -> None:
    if shutil.which("node") is None:
        pytest.fail("node is needed for the jose verifier")
    if not (NODE_DIR / "node_modules" / ".interop-installed").exists():
        pytest.fail("jose is not installed: run `make interop-node`")


def test_two_regions_sign_through_outages_and_converge_after_each(node_ready: None) -> None:
    soak = replace(regions_soak_defaults(), envoy=False, duration=5.0, seed=11)  # the episodes' one pass sets the length
    summary = run_regions_soak(RegionsConfig(soak=soak), log=lambda _: None)
    report = as_text([summary])
    print(report)
    assert all(n > 50 for n in summary["tokens_by_region"].values()), report
    assert summary["unexpired_refusals"] == 0, report
    assert not summary["lost_keys"] and not summary["signed_before_served"], report
    episodes = {e["kind"]: e for e in summary["episodes"]}
    assert set(episodes) == set(REGION_EPISODES), report
    for kind in (SECONDARY_OUTAGE, PRIMARY_OUTAGE):
        outage = episodes[kind]
        down, (up,) = outage["region"], outage["surviving_regions"]
        assert outage["signclient_by_region"][down]["tokens"] == 0, report  # the outage is real: nothing signs there
        assert outage["signclient_by_region"][up]["calls"] > 0 and outage["regional"]["calls"] > 0, report
        assert set(outage["regional"]["answered_by"]) == {up}, report
    revocation = episodes[REVOCATION]
    assert not revocation["error"] and revocation["edge_jwks_dropped_kid_s"] is not None, report
    assert all(r["reach_s"] is not None for r in revocation["reach_by_region"].values()), report
    assert episodes[REPLICA_LAG]["generation_gap"] > 0, report  # the secondary's replica did show an older keyring
    for episode in summary["episodes"]:
        assert episode["origins_converged_s"] is not None and episode["replicas_converged_s"] is not None, report
    assert all(summary["checks"].values()), report
    markdown = as_markdown([summary], "python -m soak --regions us-east-1,eu-west-1", "?")
    assert "Result: **PASS**" in markdown and "revocation (x1): reach in eu-west-1" in markdown, markdown


# --- the analysis itself ---------------------------------------------------------------------------


def test_a_token_whose_kid_the_edge_served_only_after_its_issue_is_flagged() -> None:
    samples = [Sample(99.0, 99.05, frozenset({"old"}), "a"), Sample(101.0, 101.05, frozenset({"old", "new"}), "b")]
    early = TokenRecord(0, "new", issued_start=100.0, issued_end=100.1, exp=105, token="x")
    later = TokenRecord(1, "new", issued_start=102.0, issued_end=102.1, exp=107, token="x")
    assert served_before_issue([early, later], samples) == [{"kid": "new", "tokens": 1}]
    assert served_before_issue([later], samples) == []


def test_a_revoked_key_s_tokens_are_set_aside_only_from_its_revocation_on() -> None:
    revoked = {"gone": 100.0}
    assert set_aside("gone", 100.0, revoked) and set_aside("gone", 103.0, revoked)
    assert not set_aside("gone", 99.9, revoked)
    assert not set_aside("kept", 103.0, revoked)


def test_the_revocation_reaches_a_region_after_its_last_answer_with_the_kid() -> None:
    answers = [
        ProbeAnswer(99.0, 99.1, "k", "token"),  # before the revoke: not counted
        ProbeAnswer(100.0, 100.1, "k", "token"),
        ProbeAnswer(100.2, 100.3, "", "signing_unavailable"),
        ProbeAnswer(100.4, 100.5, "k", "token"),  # another signer instance still on its cached view
        ProbeAnswer(100.6, 100.7, "", "signing_unavailable"),
        ProbeAnswer(100.8, 100.9, "n", "token"),
    ]
    figures = reach_figures(answers, "k", revoked_at=100.0)
    assert figures["reach_s"] == pytest.approx(0.7)
    assert figures["signed_with_revoked_kid_after_revoke"] == 2
    assert figures["outcomes_after_stop"] == {"signing_unavailable": 1, "token (another kid)": 1}
    assert stopped_at([*answers, ProbeAnswer(101.0, 101.1, "k", "token")], "k", 100.0) is None  # still signing with it


def test_origins_and_replicas_agree_only_when_every_region_is_read_and_equal() -> None:
    def state(digests: dict[str, str | None], generations: dict[str, int | None]) -> RegionState:
        return RegionState(0.0, digests, generations, {})

    assert state({"a": "d1", "b": "d1"}, {"a": 4, "b": 4}).origins_agree
    assert state({"a": "d1", "b": "d1"}, {"a": 4, "b": 4}).replicas_agree
    assert not state({"a": "d1", "b": "d2"}, {"a": 4, "b": 3}).origins_agree
    assert not state({"a": "d1", "b": "d2"}, {"a": 4, "b": 3}).replicas_agree
    assert not state({"a": None, "b": None}, {"a": None, "b": None}).origins_agree
    assert not state({"a": None, "b": None}, {"a": None, "b": None}).replicas_agree


def test_a_rotate_now_key_s_token_refused_for_an_unknown_kid_is_set_aside_only_within_the_verifier_s_window() -> None:
    rotated = {"new": {"answered": 100.0, "windows": {"envoy": 3.0, "pyjwt": 2.5}}}

    def refused(library: str, start: float, kid: str = "new", reason: str = "kid not in JWKS") -> bool:
        return in_rotate_now_window(Verification(library, "random", start, start, start + 0.01, 110, False, reason, kid), rotated)

    assert refused("envoy", 102.9) and refused("pyjwt", 102.4)
    assert not refused("envoy", 103.1)  # past the window: a fault
    assert not refused("pyjwt", 102.6)
    assert not refused("envoy", 101.0, kid="old")  # not the rotate-now key
    assert not refused("envoy", 101.0, reason="InvalidSignatureError")  # refused for another reason
    assert not in_rotate_now_window(Verification("envoy", "random", 101.0, 101.0, 101.01, 110, True, "", "new"), rotated)


def test_a_region_s_view_drops_the_kid_at_the_first_readable_sample_without_it() -> None:
    def state(at: float, a: tuple[str, ...] | None, b: tuple[str, ...] | None) -> RegionState:
        return RegionState(at, {}, {}, {"a": a, "b": b})

    states = [state(99.9, (), ()), state(100.2, (), ("k",)), state(100.4, None, ("k",)), state(100.6, ("n",), ())]
    assert view_dropped(states, ["a", "b"], "k", 100.0) == {"a": pytest.approx(0.2), "b": pytest.approx(0.6)}
    assert view_dropped([state(100.2, None, None)], ["a"], "k", 100.0) == {"a": None}  # unreadable is not dropped

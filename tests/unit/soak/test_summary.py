"""The soak's retention check: a retired key must leave the served JWKS by the end of the first tick after its
retention that did work (a skipped tick, which does nothing, does not count)."""

from __future__ import annotations

from soak.records import Sample, TickRecord
from soak.summary import retired_removal

KID = "kid-retired-000"


def samples_serving_until(last: float) -> list[Sample]:
    return [Sample(t, t + 0.05, frozenset({KID}), "d") for t in (10.0, 11.0, 12.0, last)]


def late(ticks: list[TickRecord], last_seen: float) -> list[dict[str, object]]:
    history: dict[str, dict[str, float | None]] = {KID: {"retired": 0.0}}
    result = retired_removal(history, ticks, samples_serving_until(last_seen), retention=10.0, sample_interval=0.1)
    assert result["checked"] == 1
    late_keys: list[dict[str, object]] = result["late"]
    return late_keys


def test_a_key_served_after_the_first_working_tick_past_its_retention_is_late() -> None:
    assert late([TickRecord("main", 10.5, 10.6, True)], last_seen=12.0)


def test_a_skipped_tick_is_not_the_tick_that_had_to_remove_the_key() -> None:
    ticks = [TickRecord("main", 10.5, 10.6, True, skipped=True), TickRecord("main", 12.5, 12.6, True)]
    assert not late(ticks, last_seen=12.55)  # removed by the first tick that did work
    assert late(ticks, last_seen=13.5)  # still served after that one: late

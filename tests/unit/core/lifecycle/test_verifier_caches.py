"""The verifier cache rule: every recommended cache, plus jwks-max-age and the margin, stays within publish-lead."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwks_rotator.core.durations import parse_duration
from jwks_rotator.core.errors import ConfigurationError
from jwks_rotator.core.lifecycle.verifier_caches import (
    VERIFIERS,
    CacheGuidance,
    Recommendation,
    VerifierCache,
    cache_margin,
    fits,
    max_verifier_cache,
    minimum_publish_lead,
    recommend,
)

S = timedelta(seconds=1)
H = timedelta(hours=1)


def by_name(guidance: CacheGuidance, prefix: str) -> Recommendation:
    return next(r for r in guidance.recommendations if r.verifier.name.startswith(prefix))


def test_template_defaults_keep_every_library_default_and_fit_api_gateway() -> None:
    guidance = recommend(timedelta(days=2), H, timedelta(seconds=60))
    assert guidance.margin == timedelta(hours=4.8)
    assert guidance.max_cache == timedelta(days=2) - H - timedelta(hours=4.8)
    for rec in guidance.recommendations:
        assert rec.fits and rec.cache == rec.verifier.default and rec.minimum_publish_lead is None
    envoy = by_name(guidance, "Envoy")
    assert envoy.revocation_bound == timedelta(minutes=10) + H
    assert envoy.rotate_now_window == timedelta(minutes=10) + H  # no refetch for an unknown kid
    pyjwt = by_name(guidance, "PyJWT")
    assert pyjwt.cooldown == timedelta(seconds=30) and pyjwt.rotate_now_window == timedelta(seconds=30) + H


def test_make_run_settings_shrink_the_caches_and_rule_out_api_gateway() -> None:
    # mk/local.mk: --publish-lead 5s --jwks-max-age 2s --clock-skew-leeway 1s
    guidance = recommend(5 * S, 2 * S, S)
    assert guidance.margin == S and guidance.max_cache == 2 * S
    envoy = by_name(guidance, "Envoy")
    assert envoy.cache == 2 * S and envoy.fits and envoy.revocation_bound == 4 * S
    jose = by_name(guidance, "Node jose")
    assert jose.cache == 2 * S and jose.cooldown == 2 * S
    api = by_name(guidance, "AWS API Gateway")
    assert not api.fits and api.cache == 2 * H
    assert api.minimum_publish_lead == timedelta(seconds=8003)  # (2 h + 2 s) / 0.9 = 8002.2, rounded up
    assert fits(2 * H, timedelta(seconds=8003), 2 * S, S) and not fits(2 * H, timedelta(seconds=8002), 2 * S, S)


def test_a_lead_too_short_for_any_cache_recommends_none() -> None:
    guidance = recommend(2 * S, S, S)
    assert guidance.max_cache == timedelta(0)
    for rec in guidance.recommendations:
        assert not rec.fits and rec.minimum_publish_lead is not None
        assert rec.cache is None or not rec.verifier.configurable


durations = st.integers(min_value=1, max_value=30 * 86_400).map(lambda s: timedelta(seconds=s))


@given(lead=durations, max_age_fraction=st.floats(min_value=0.0, max_value=0.5), leeway=st.integers(0, 3600).map(lambda s: timedelta(seconds=s)))
def test_property_every_recommendation_that_fits_keeps_the_rule(lead: timedelta, max_age_fraction: float, leeway: timedelta) -> None:
    max_age = timedelta(seconds=int(lead.total_seconds() * max_age_fraction))  # the settings' rule: jwks-max-age <= lead / 2
    guidance = recommend(lead, max_age, leeway)
    margin = cache_margin(lead, leeway)
    assert margin >= max(leeway, S) and margin >= lead * 0.1
    assert guidance.max_cache == max_verifier_cache(lead, max_age, leeway) >= timedelta(0)
    for rec in guidance.recommendations:
        if rec.fits:
            assert rec.cache is not None and rec.cache + max_age + margin <= lead
            assert rec.revocation_bound == rec.cache + max_age
            assert rec.cache <= rec.verifier.default
        else:
            needed = rec.minimum_publish_lead
            assert needed is not None and needed > lead
            assert fits(rec.verifier.default, needed, max_age, leeway) and not fits(rec.verifier.default, needed - S, max_age, leeway)
        if rec.verifier.configurable and guidance.max_cache > timedelta(0):
            assert rec.fits  # a configurable cache always gets a value that fits, when any does


@given(cache=durations, max_age=durations, leeway=st.integers(0, 3600).map(lambda s: timedelta(seconds=s)))
def test_property_the_minimum_lead_is_the_shortest_that_fits(cache: timedelta, max_age: timedelta, leeway: timedelta) -> None:
    lead = minimum_publish_lead(cache, max_age, leeway)
    assert fits(cache, lead, max_age, leeway) and lead >= 2 * max_age
    assert lead - S < 2 * max_age or not fits(cache, lead - S, max_age, leeway)


def test_a_verifier_with_a_small_default_keeps_it() -> None:
    small = VerifierCache("small", "ttl", 3 * S, refetches_unknown_kid=True, cooldown_setting="cd", cooldown_default=10 * S)
    (rec,) = recommend(timedelta(days=2), H, S, (small,)).recommendations
    assert rec.cache == 3 * S and rec.cooldown == 3 * S  # a cooldown never outlasts the cache it guards
    assert {v.name for v in VERIFIERS} >= {"Envoy jwt_authn", "PyJWT PyJWKClient", "AWS API Gateway JWT authorizer"}


@pytest.mark.parametrize(
    ("lead", "max_age", "leeway", "named"),
    [
        (timedelta(0), H, S, "publish-lead"),
        (-H, S, S, "publish-lead"),
        (2 * H, -H, S, "jwks-max-age"),  # a negative max-age would allow a cache longer than the lead itself
        (2 * H, H, -S, "clock-skew-leeway"),
    ],
)
def test_settings_no_stack_can_have_are_refused_with_a_typed_error(lead: timedelta, max_age: timedelta, leeway: timedelta, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named) as refused:
        recommend(lead, max_age, leeway)
    assert refused.value.code == "invalid_configuration"


def test_a_negative_cache_has_no_minimum_lead() -> None:
    with pytest.raises(ConfigurationError, match="verifier cache must be zero or more"):
        minimum_publish_lead(-S, H, S)


# --------------------------------------------------------------------------- docs/verifiers.md states what recommend() says
PAGE = Path(__file__).resolve().parents[4] / "docs" / "verifiers.md"
PAGE_NAMES = {"Envoy": "Envoy", "PyJWT": "PyJWT", "jose": "Node jose", "jwks-rsa": "Node jwks-rsa", "API Gateway": "AWS API Gateway"}
UNITS = {"d": 86_400, "h": 3_600, "min": 60, "s": 1}


def page_seconds(text: str) -> float:
    """``1 h 10 min`` -> 4200; every duration the page writes is whole units."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(d|h|min|s)\b", text)
    assert parts, text
    return sum(float(number) * UNITS[unit] for number, unit in parts)


def stated_sections() -> list[tuple[dict[str, timedelta], str, list[list[str]]]]:
    """Each "Recommended settings" paragraph: the settings it names, its sentence, and its table's rows."""
    text = PAGE.read_text(encoding="utf-8").split("## Recommended settings", 1)[1]
    sections = []
    for block in re.split(r"\n(?=For )", text)[1:]:
        named = dict(re.findall(r"`(publish-lead|jwks-max-age|clock-skew-leeway)` (\w+)", block.split("):", 1)[0]))
        settings = {name: parse_duration(value) for name, value in named.items()}
        rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines() if line.startswith("| ") and "Verifier" not in line]
        sections.append((settings, block, rows))
    return sections


def test_the_page_states_the_rules_numbers() -> None:
    sections = stated_sections()
    assert len(sections) == 2
    for settings, block, rows in sections:
        guidance = recommend(settings["publish-lead"], settings["jwks-max-age"], settings["clock-skew-leeway"])
        margin, largest = re.search(r"margin is ([^,]+), and the largest cache is ([^.]+)\.", block.replace("\n", " ")).groups()  # type: ignore[union-attr]
        assert (page_seconds(margin), page_seconds(largest)) == (guidance.margin.total_seconds(), guidance.max_cache.total_seconds()), block[:80]
        assert {row[0] for row in rows} == set(PAGE_NAMES)
        for name, set_to, revocation, window in rows:
            rec = by_name(guidance, PAGE_NAMES[name])
            if not rec.fits:
                assert "does not fit" in set_to and rec.minimum_publish_lead is not None
                assert page_seconds(set_to.split(">=", 1)[1]) == rec.minimum_publish_lead.total_seconds(), name
                continue
            assert rec.cache is not None and rec.revocation_bound is not None and rec.rotate_now_window is not None
            assert page_seconds(revocation) == rec.revocation_bound.total_seconds(), name
            assert page_seconds(window) == rec.rotate_now_window.total_seconds(), name
            if rec.verifier.configurable:
                value = float(re.search(r"[:=]\s*(\d+)", set_to).group(1))  # type: ignore[union-attr]
                assert value / (1000 if "cacheMaxAge" in set_to else 1) == rec.cache.total_seconds(), name

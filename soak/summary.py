"""A run's summary and its checks: no unexpired token refused, no lost key, convergence within one tick, bounded JWKS."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from typing import Any

from jwks_rotator.core.settings import Settings

from .config import CacheSettings, SoakConfig
from .proxy import FaultProxy
from .records import Observations, Sample, TickRecord, TokenRecord


def summarise(
    config: SoakConfig,
    settings: Settings,
    caches: dict[str, CacheSettings],
    seen: Observations,
    proxy: FaultProxy,
    *,
    crashes: int,
    edge_stats: dict[str, Any],
    wall: float,
    envoy_revocation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's numbers, with ``checks``: each named check and whether it passed."""
    retention = settings.effective_retention.total_seconds()
    samples = sorted(seen.samples, key=lambda s: s.start)
    starts = [s.start for s in samples]
    lost = lost_keys(seen.tokens, samples, starts)
    retired = retired_removal(seen.key_history, seen.ticks, samples, retention=retention, sample_interval=config.sample_interval)
    bound = 2 + math.ceil(retention / settings.rotation_period.total_seconds())
    max_keys = max((len(s.kids) for s in samples), default=0)
    by_library: dict[str, Any] = {}
    for library in config.libraries:
        results = [v for v in seen.verifications if v.library == library]
        refusals = Counter(v.reason for v in results if v.unexpired_refusal)
        by_library[library] = {
            "verified": sum(1 for v in results if v.ok),
            "refused_after_expiry": sum(1 for v in results if not v.ok and not v.unexpired_refusal),
            "unexpired_refusals": sum(refusals.values()),
            "unexpired_refusal_reasons": dict(refusals),
            "by_moment": dict(Counter(v.moment for v in results if v.ok)),
            "verified_in_last_second": sum(1 for v in results if v.ok and v.exp - v.end < 1.0),
            "max_start_after_due_s": round(max((v.start - v.due for v in results), default=0.0), 3),
        }
    activated = sorted(h["activated"] for h in seen.key_history.values() if h["activated"] is not None)
    converges = [c for c in seen.converges if c.faults_stopped]
    longest = max((c.seconds for c in converges if c.seconds is not None), default=None)
    edge_lags = [c.edge_caught_up - c.faults_stopped for c in converges if c.edge_caught_up is not None]
    ticks = Counter(f"{t.rotator} {'ok' if t.ok else 'failed'}" for t in seen.ticks)
    tick_errors = Counter(f"{t.rotator}: {t.error}" for t in seen.ticks if not t.ok)
    faults = Counter(proxy.faults)
    faults.update(seen.scenarios)
    faults["rotator crashed between keyring write and publication"] = crashes
    issued = len(seen.tokens)
    unavailable = seen.sign_refusals.get("signing_unavailable", 0)
    summary: dict[str, Any] = {
        "algorithm": config.algorithm,
        "traffic_seconds": config.duration,
        "wall_seconds": round(wall, 1),
        "settings": settings.describe() | {"issuer": "(local edge)"},
        "verifier_caches": {name: asdict(c) for name, c in caches.items()},
        "tokens_issued": issued,
        "sign_requests": issued + sum(seen.sign_refusals.values()) + sum(seen.invoke_errors.values()),
        "sign_refusals": dict(seen.sign_refusals),
        "signing_unavailable_rate": round(unavailable / max(1, issued + unavailable), 4),
        "signing_unavailable_reasons": dict(seen.unavailable_reasons),
        "invoke_errors": dict(seen.invoke_errors),
        "verifications": by_library,
        "unexpired_refusals": sum(v["unexpired_refusals"] for v in by_library.values()),
        "rotations": max(0, len(activated) - 1),
        "ticks": dict(ticks),
        "tick_errors": dict(tick_errors),
        "faults": {k: v for k, v in sorted(faults.items()) if v},
        "proxy_requests": dict(proxy.requests),
        "jwks_samples": len(samples),
        "jwks_sample_errors": dict(seen.sample_errors),
        "max_keys_in_jwks": max_keys,
        "key_bound": bound,
        "tokens_checked_for_lost_keys": issued,
        "lost_keys": lost,
        "retired_keys": retired,
        "convergence": {
            "fault_episodes_ended": len(converges),
            "within_one_tick": sum(1 for c in converges if c.within_one_tick),
            "not_within_one_tick": [
                {"episode": c.episode, "ticks": c.ticks, "seconds": None if c.seconds is None else round(c.seconds, 2)}
                for c in converges if not c.within_one_tick
            ],
            "longest_seconds": None if longest is None else round(longest, 2),
            "longest_edge_seconds": round(max(edge_lags), 2) if edge_lags else None,
        },
        "edge": edge_stats,
        "envoy_revocation": envoy_revocation,
    }
    summary["checks"] = checks(summary)
    return summary


def lost_keys(tokens: list[TokenRecord], samples: list[Sample], starts: list[float]) -> list[dict[str, Any]]:
    """Tokens whose kid was missing from a JWKS served between just before issue and exp (``samples`` sorted by start)."""
    lost: dict[str, dict[str, Any]] = {}
    for token in tokens:
        first = bisect.bisect_left(starts, token.issued_start)
        window = samples[max(0, first - 1) : bisect.bisect_left(starts, token.exp)]
        window = [s for s in window if s.end <= token.exp and s.end >= token.issued_start - 0.5]
        missing = [s for s in window if token.kid not in s.kids]
        if missing:
            entry = lost.setdefault(token.kid, {"kid": token.kid[:12], "tokens": 0, "first_missing_at": None})
            entry["tokens"] += 1
            moment = min(s.start for s in missing)
            entry["first_missing_at"] = moment if entry["first_missing_at"] is None else min(entry["first_missing_at"], moment)
    for entry in lost.values():
        entry["first_missing_at"] = datetime.fromtimestamp(entry["first_missing_at"]).strftime("%H:%M:%S.%f")[:-3]
    return list(lost.values())


def retired_removal(
    key_history: dict[str, dict[str, float | None]],
    ticks: list[TickRecord],
    samples: list[Sample],
    *,
    retention: float,
    sample_interval: float,
) -> dict[str, Any]:
    """Every retired key whose retention ended leaves the served JWKS by the end of the first good tick after.

    A skipped tick (a proof-less tick right after a completed one does nothing) is not a good tick: it did no work.
    """
    good_ticks = sorted((t for t in ticks if t.ok and not t.skipped), key=lambda t: t.start)
    slack = 0.25 + 2 * sample_interval + 0.25  # edge invalidation poll + sampling
    checked, late, lags = 0, [], []
    for kid, history in key_history.items():
        retired = history["retired"]
        if retired is None:
            continue
        due = retired + retention
        tick = next((t for t in good_ticks if t.start >= due), None)
        if tick is None:
            continue  # the run ended first
        checked += 1
        deadline = tick.end + slack
        seen_after = [s.start for s in samples if kid in s.kids and s.start > deadline]
        last_seen = max((s.end for s in samples if kid in s.kids), default=retired)
        lags.append(last_seen - due)
        if seen_after:
            late.append({"kid": kid[:12], "seen_until_after_due_s": round(max(seen_after) - due, 2)})
    return {
        "retention_seconds": retention,
        "checked": checked,
        "late": late,
        "longest_served_after_retention_s": round(max(lags), 2) if lags else None,
    }


def checks(s: dict[str, Any]) -> dict[str, bool]:
    """Each of the soak's checks, by name, and whether the summary passes it."""
    conv = s["convergence"]
    result = {
        "zero unexpired tokens refused": s["unexpired_refusals"] == 0,
        "no lost key": not s["lost_keys"],
        "published documents match the keyring within one tick after faults stop": (
            conv["fault_episodes_ended"] > 0 and conv["within_one_tick"] == conv["fault_episodes_ended"]
        ),
        "retired keys leave the JWKS after retention": not s["retired_keys"]["late"],
        "JWKS size within bound": 0 < s["max_keys_in_jwks"] <= s["key_bound"],
        "tokens were issued and verified": s["tokens_issued"] > 0
        and all(v["verified"] > 0 for v in s["verifications"].values()),
    }
    probe = s.get("envoy_revocation")
    if probe is not None:
        result["Envoy accepts a key's token, then refuses it once the revocation bound has passed"] = bool(
            probe["accepted_before"] and probe["refused_at_bound"]
        )
    return result

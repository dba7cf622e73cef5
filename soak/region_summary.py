"""The two-region soak's summary, its checks and its report (terminal text, ``benchmarks/SOAK-REGIONS.md``).

Figures: tokens per region, verifier refusals, signing availability per region and of the regional client during each
episode, how long the revocation took to reach each region, how long origins and replicas took to agree after each
episode. Tokens of the revoked key are set aside once it is revoked (refusing them is the revocation working), and so are
a rotate-now key's tokens within the documented rotate-now window (docs/verifiers.md): both are counted apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from jwks_rotator.core.settings import Settings

from .config import CacheSettings
from .records import Sample, TokenRecord, Verification
from .region_episodes import PRIMARY_OUTAGE, REPLICA_LAG, REVOCATION, ROTATE_NOW, SECONDARY_OUTAGE, Episode
from .region_state import RegionState
from .region_traffic import PLAIN, REGIONAL, Call, RegionsObservations
from .report import environment, format_value
from .revocation import FETCH_MARGIN
from .summary import lost_keys

MIN_AVAILABILITY = 0.95
"""A surviving region's plain callers, and the regional client, get a token for at least this share of calls in an outage."""
OUTAGES = (SECONDARY_OUTAGE, PRIMARY_OUTAGE)
DEPLOYMENT_NAMES = frozenset({
    "algorithm", "keyring-secret-id", "signing-secret-id", "jwks-bucket", "distribution-id", "revocation-parameter",
    "issuance-policy-file", "kms-stack-tag", "kms-sign-role-arn", "kms-rotate-role-arn", "second-origin-bucket", "operator-roles",
})  # fmt: skip
"""Settings that name one deployment's resources (left out of the result file: they change with every run)."""


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _share(calls: list[Call]) -> dict[str, Any]:
    ok = sum(1 for c in calls if c.ok)
    return {"calls": len(calls), "tokens": ok, "availability": round(ok / len(calls), 4) if calls else None}


def revoked_windows(episodes: Sequence[Episode]) -> dict[str, float]:
    """kid -> when it was revoked."""
    return {e.detail["kid"]: e.detail["revoked_at"] for e in episodes if e.kind == REVOCATION and "revoked_at" in e.detail}


def set_aside(kid: str, moment: float, revoked: Mapping[str, float]) -> bool:
    """Whether a token of ``kid`` checked (or alive) at ``moment`` is the revocation's to refuse: its key was revoked by then."""
    return kid in revoked and moment >= revoked[kid]


def rotate_now_windows(episodes: Sequence[Episode], caches: Mapping[str, CacheSettings], max_age: float) -> dict[str, dict[str, Any]]:
    """kid -> (when its rotate-now answered, each library's rotate-now window after it).

    docs/verifiers.md: ``rotate --now`` skips the lead, so for cooldown + ``jwks-max-age`` (a verifier that refetches for
    an unknown kid) or cache + ``jwks-max-age`` (Envoy, which does not) a verifier may refuse the new key's tokens
    with "kid not in JWKS"; one fetch (:data:`~soak.revocation.FETCH_MARGIN`) more.
    """
    windows = {
        library: (cache.lifespan if library == "envoy" else cache.cooldown) + max_age + FETCH_MARGIN for library, cache in caches.items()
    }
    return {
        str(e.detail["active_kid"]): {"answered": e.end, "windows": windows}
        for e in episodes if e.kind == ROTATE_NOW and not e.error and e.detail.get("active_kid")
    }


def in_rotate_now_window(v: Verification, rotated: Mapping[str, Mapping[str, Any]]) -> bool:
    """A refusal of a rotate-now key's token for an unknown kid, checked within that verifier's rotate-now window."""
    entry = rotated.get(v.kid)
    if entry is None or v.ok or v.reason != "kid not in JWKS":
        return False
    return bool(v.start <= entry["answered"] + entry["windows"].get(v.library, 0.0))


def rotate_now_token(token: TokenRecord, rotated: Mapping[str, Mapping[str, Any]]) -> bool:
    """A token of a rotate-now key issued before the longest rotate-now window after the operation had passed.

    ``rotate --now`` waives the lead: its key may sign before the edge serves it (the edge drops its cached set on the
    invalidation, which it polls), which is what the rotate-now window is.
    """
    entry = rotated.get(token.kid)
    return entry is not None and token.issued_start <= entry["answered"] + max(entry["windows"].values(), default=0.0)


def refusal_details(refused: list[Verification], episodes: Sequence[Episode], limit: int = 10) -> list[dict[str, Any]]:
    """The first unexpired refusals: library, kid, reason, how long before exp, the episode last begun when it was checked."""
    details = []
    for v in sorted(refused, key=lambda v: v.start)[:limit]:
        last = max((e for e in episodes if e.start <= v.start), key=lambda e: e.start, default=None)
        details.append({
            "library": v.library, "kid": v.kid[:12], "reason": v.reason, "before_exp_s": round(v.exp - v.start, 2),
            "episode": "none" if last is None else f"{last.kind} +{v.start - last.start:.1f} s",
        })  # fmt: skip
    return details


def served_before_issue(tokens: list[TokenRecord], samples: list[Sample]) -> list[dict[str, Any]]:
    """Tokens whose kid no JWKS served by the edge held before the token was issued (a key signing before it was published)."""
    first_served: dict[str, float] = {}
    for sample in samples:
        for kid in sample.kids:
            first_served[kid] = min(first_served.get(kid, sample.end), sample.end)
    early: Counter[str] = Counter()
    for token in tokens:
        if first_served.get(token.kid, float("inf")) > token.issued_start:
            early[token.kid[:12]] += 1
    return [{"kid": kid, "tokens": n} for kid, n in early.items()]


def episode_figures(
    episode: Episode,
    seen: RegionsObservations,
    regions: Sequence[str],
    samples: list[Sample],
    settings: Settings,
    states: Sequence[RegionState] = (),
) -> dict[str, Any]:
    """One episode's availability (plain callers per region, regional callers overall) and convergence after it."""
    last = episode.fault_end or episode.end  # a call counts if it began and ended within the fault (a call across its end does not)
    window = [c for c in seen.calls if c.start >= episode.start and c.end <= last]
    plain = {region: _share([c for c in window if c.client == PLAIN and c.home == region]) for region in regions}
    regional = [c for c in window if c.client == REGIONAL]
    figures: dict[str, Any] = {
        "kind": episode.kind,
        "region": episode.region,
        "seconds": round(episode.end - episode.start, 2),
        "signclient_by_region": plain,
        "regional": _share(regional) | {"answered_by": dict(Counter(c.region for c in regional if c.ok)),
                                        "failed_over": sum(1 for c in regional if c.ok and c.failovers)},
        "origins_converged_s": _round(None if episode.origins_converged is None else episode.origins_converged - episode.end),
        "replicas_converged_s": _round(None if episode.replicas_converged is None else episode.replicas_converged - episode.end),
        "diverged_during": episode.diverged,
        "error": episode.error,
    }
    if episode.kind in OUTAGES:
        figures["surviving_regions"] = [r for r in regions if r != episode.region]
    if episode.kind == ROTATE_NOW and episode.detail.get("active_kid"):
        kid = str(episode.detail["active_kid"])
        figures["new_kid"] = kid[:12]
        first = {
            region: min((c.end for c in seen.calls if c.region == region and c.kid == kid and c.start >= episode.start), default=None)
            for region in regions
        }
        figures["new_kid_signed_after_s"] = {r: _round(None if t is None else t - episode.start) for r, t in first.items()}
    if episode.kind == REVOCATION and "kid" in episode.detail:
        kid, at = str(episode.detail["kid"]), float(episode.detail["revoked_at"])
        figures["kid"] = kid[:12]
        figures["revoke_call_s"] = episode.detail.get("revoke_call_s")
        figures["reach_by_region"] = episode.detail.get("regions", {})
        lags = episode.detail.get("replication_lag", {})
        cache = settings.signer_cache_ttl.total_seconds()
        figures["reach_bound_s"] = {r: round(cache + float(lags.get(r, 0.0)), 3) for r in regions}  # the primary's own list: no lag
        figures["measured_lag_s"] = lags
        figures["view_dropped_kid_s"] = view_dropped(states, regions, kid, at)
        gone = next((s.end for s in samples if s.start >= at and kid not in s.kids), None)
        figures["edge_jwks_dropped_kid_s"] = _round(None if gone is None else gone - at)
        figures["caller_tokens_with_revoked_kid_after_revoke"] = {
            region: sum(1 for c in seen.calls if c.region == region and c.kid == kid and c.start >= at) for region in regions
        }
    if episode.kind == REPLICA_LAG:
        figures["lag_s"] = episode.detail.get("lag_s")
        figures["generation_gap"] = episode.detail.get("generation_gap")
        figures["kids_signed_by_region"] = {
            region: dict(Counter(c.kid[:12] for c in window if c.ok and c.region == region)) for region in regions
        }
    return figures


def _lacks(view: tuple[str, ...] | None, kid: str) -> bool:
    """A view read (None: unreadable, which tells nothing) that does not hold ``kid`` (an empty view holds nothing)."""
    return view is not None and kid not in view


def view_dropped(states: Sequence[RegionState], regions: Sequence[str], kid: str, moment: float) -> dict[str, float | None]:
    """Per region, seconds from ``moment`` to the first sampled signing view without ``kid`` (what its signer reads, cached)."""
    dropped: dict[str, float | None] = {}
    for region in regions:
        at = next((st.at for st in states if st.at >= moment and _lacks(st.signing_kids.get(region), kid)), None)
        dropped[region] = _round(None if at is None else at - moment)
    return dropped


def summarise_regions(
    *,
    regions: Sequence[str],
    algorithm: str,
    traffic_seconds: float,
    libraries: Sequence[str],
    settings: Settings,
    caches: dict[str, CacheSettings],
    seen: RegionsObservations,
    episodes: Sequence[Episode],
    configured_episodes: Sequence[str],
    final_convergence: tuple[float | None, float | None, float],
    edge_stats: dict[str, Any],
    states: Sequence[RegionState],
    wall: float,
) -> dict[str, Any]:
    """The run's figures with ``checks``: each named check and whether it passed."""
    revoked = revoked_windows(episodes)
    samples = sorted(seen.samples, key=lambda s: s.start)
    starts = [s.start for s in samples]

    def after_revocation(kid: str, moment: float) -> bool:
        return set_aside(kid, moment, revoked)

    kept = [t for t in seen.tokens if not after_revocation(t.kid, t.exp)]  # tokens alive at or issued after their key's revocation aside
    rotated = rotate_now_windows(episodes, caches, settings.jwks_max_age.total_seconds())
    by_library: dict[str, Any] = {}
    refused: list[Verification] = []
    for library in libraries:
        results = [v for v in seen.verifications if v.library == library]
        revoked_refusals = [v for v in results if v.unexpired_refusal and after_revocation(v.kid, v.start)]
        window_refusals = [v for v in results if v.unexpired_refusal and in_rotate_now_window(v, rotated)]
        faults = [v for v in results if v.unexpired_refusal and v not in revoked_refusals and v not in window_refusals]
        refused += faults
        refusals = Counter(v.reason for v in faults)
        by_library[library] = {
            "verified": sum(1 for v in results if v.ok),
            "refused_after_expiry": sum(1 for v in results if not v.ok and not v.unexpired_refusal),
            "refused_revoked": len(revoked_refusals),
            "refused_in_rotate_now_window": len(window_refusals),
            "unexpired_refusals": sum(refusals.values()),
            "unexpired_refusal_reasons": dict(refusals),
        }
    regions_tokens = Counter(seen.token_regions.values())
    calls_by_region = {
        region: {
            kind: {
                "calls": sum(1 for c in seen.calls if c.client == kind and c.home == region),
                "tokens": sum(1 for c in seen.calls if c.client == kind and c.home == region and c.ok),
                "not_tokens": dict(Counter(c.outcome for c in seen.calls if c.client == kind and c.home == region and not c.ok)),
            }
            for kind in (PLAIN, REGIONAL)
        }
        for region in regions
    }
    origins_at, replicas_at, final_moment = final_convergence
    summary: dict[str, Any] = {
        "regions": list(regions),
        "primary": regions[0],
        "algorithm": algorithm,
        "traffic_seconds": traffic_seconds,
        "wall_seconds": round(wall, 1),
        "settings": settings.describe() | {"issuer": "(local edge)"},
        "verifier_caches": {name: asdict(c) for name, c in caches.items()},
        "tokens_issued": len(seen.tokens),
        "tokens_by_region": {region: regions_tokens.get(region, 0) for region in regions},
        "calls_by_region": calls_by_region,
        "failovers": dict(seen.failover_reasons),
        "verifications": by_library,
        "unexpired_refusals": sum(v["unexpired_refusals"] for v in by_library.values()),
        "unexpired_refusal_details": refusal_details(refused, episodes),
        "rotate_now_windows_s": {lib: round(w, 2) for lib, w in next(iter(rotated.values()), {"windows": {}})["windows"].items()},
        "lost_keys": lost_keys(kept, samples, starts),
        "signed_before_served": served_before_issue([t for t in seen.tokens if not rotate_now_token(t, rotated)], samples),
        "rotate_now_signed_before_served": served_before_issue([t for t in seen.tokens if rotate_now_token(t, rotated)], samples),
        "jwks_samples": len(samples),
        "jwks_sample_errors": dict(seen.sample_errors),
        "region_state_samples": len(states),
        "episodes": [episode_figures(e, seen, regions, samples, settings, states) for e in episodes],
        "configured_episodes": list(configured_episodes),
        "final_convergence": {
            "origins_s": _round(None if origins_at is None else origins_at - final_moment),
            "replicas_s": _round(None if replicas_at is None else replicas_at - final_moment),
        },
        "edge": edge_stats,
    }
    summary["checks"] = checks(summary)
    return summary


def checks(s: Mapping[str, Any]) -> dict[str, bool]:
    """Each check by name and whether the summary passes it (figures such as times are reported, not checked)."""
    episodes = s["episodes"]
    outages = [e for e in episodes if e["kind"] in OUTAGES]
    operations = [e for e in episodes if e["kind"] in (ROTATE_NOW, REVOCATION)]
    revocations = [e for e in episodes if e["kind"] == REVOCATION]
    result = {
        "zero unexpired tokens refused (a revoked key's tokens once revoked, and a rotate-now key's within its window, aside)": (
            s["unexpired_refusals"] == 0
        ),
        "no lost key": not s["lost_keys"],
        "no token signed with a kid the edge had not served before": not s["signed_before_served"],
        "tokens issued in every region and verified by every library": all(n > 0 for n in s["tokens_by_region"].values())
        and all(v["verified"] > 0 for v in s["verifications"].values()),
        "every configured episode ran": set(s["configured_episodes"]) <= {e["kind"] for e in episodes},
        f"surviving regions' SignClient calls got a token (>= {MIN_AVAILABILITY:.0%}) during each outage": bool(outages) and all(
            (e["signclient_by_region"][r]["availability"] or 0) >= MIN_AVAILABILITY for e in outages for r in e["surviving_regions"]
        ),
        f"RegionalSignClient calls got a token (>= {MIN_AVAILABILITY:.0%}) during each outage": bool(outages)
        and all((e["regional"]["availability"] or 0) >= MIN_AVAILABILITY for e in outages),
        "rotate-now and revoke answered without error": all(not e["error"] for e in operations),
        "the revocation reached every region (its signer stopped signing with the kid)": bool(revocations) and all(
            "reach_by_region" in e and all(r["reach_s"] is not None for r in e["reach_by_region"].values()) for e in revocations
        ),
        "origins converged (same JWKS digest in every bucket) after each episode": all(
            e["origins_converged_s"] is not None for e in episodes
        ) and s["final_convergence"]["origins_s"] is not None,
        "replicas converged (same keyring generation in every region) after each episode": all(
            e["replicas_converged_s"] is not None for e in episodes
        ) and s["final_convergence"]["replicas_s"] is not None,
    }
    return result


def _availability(share: Mapping[str, Any]) -> str:
    if not share["calls"]:
        return "no calls"
    return f"{share['availability']:.1%} ({share['tokens']}/{share['calls']})"


def _spread(values: Sequence[float | None]) -> str:
    """min / median / max of the known values (and how many are unknown)."""
    known = sorted(v for v in values if v is not None)
    missing = len(values) - len(known)
    if not known:
        return "none" if not values else f"not reached ({missing})"
    text = f"{known[0]:g} / {known[len(known) // 2]:g} / {known[-1]:g}"
    return text + (f" ({missing} not reached)" if missing else "")


def total_rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Per kind of episode, over every one of that kind: availability at its worst, times as min / median / max."""
    out: list[tuple[str, str]] = []
    regions = s["regions"]
    for kind in dict.fromkeys(e["kind"] for e in s["episodes"]):
        group = [e for e in s["episodes"] if e["kind"] == kind]
        label = f"{kind}{' of ' + group[0]['region'] if group[0]['region'] else ''} (x{len(group)})"
        worst = {r: min((e["signclient_by_region"][r]["availability"] for e in group if e["signclient_by_region"][r]["calls"]), default=None)
                 for r in regions}
        out.append((f"{label}: SignClient availability by region, lowest", format_value({r: "no calls" if v is None else f"{v:.1%}" for r, v in worst.items()})))
        regional = min((e["regional"]["availability"] for e in group if e["regional"]["calls"]), default=None)
        out.append((f"{label}: RegionalSignClient availability, lowest", "no calls" if regional is None else f"{regional:.1%}"))
        out.append((f"{label}: origins agree again after (s, min / median / max)", _spread([e["origins_converged_s"] for e in group])))
        out.append((f"{label}: replicas agree again after (s, min / median / max)", _spread([e["replicas_converged_s"] for e in group])))
        if kind == REVOCATION:
            for r in regions:
                reach = [e.get("reach_by_region", {}).get(r, {}).get("reach_s") for e in group]
                bound = [e.get("reach_bound_s", {}).get(r) for e in group]
                view = [e.get("view_dropped_kid_s", {}).get(r) for e in group]
                out.append((f"{label}: reach in {r} (s from the revoke call's start, min / median / max)",
                            f"{_spread(reach)}; bound signer-cache-ttl + lag: {_spread(bound)}"))
                out.append((f"{label}: {r}'s view dropped the kid after (s); its signer stopped after that (s)",
                            f"{_spread(view)}; {_spread([_minus(a, b) for a, b in zip(reach, view, strict=True)])}"))
            out.append((f"{label}: revoke call (s)", _spread([e.get("revoke_call_s") for e in group])))
        if kind == ROTATE_NOW:
            out += [
                (f"{label}: new kid first signed in {r} after (s)", _spread([e.get("new_kid_signed_after_s", {}).get(r) for e in group]))
                for r in regions
            ]
        if kind == REPLICA_LAG:
            out.append((f"{label}: largest keyring generation gap", _spread([e.get("generation_gap") for e in group])))
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs of one run: the run, each kind of episode in total, then each episode."""
    return run_rows(s) + total_rows(s) + episode_rows(s)


def run_rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs of the run as a whole."""
    final = s["final_convergence"]
    out = [
        ("traffic / wall time (s)", f"{s['traffic_seconds']:.0f} / {s['wall_seconds']:.0f}"),
        ("tokens issued, by the region that signed", f"{s['tokens_issued']}: " + format_value(s["tokens_by_region"])),
    ]
    for region, kinds in s["calls_by_region"].items():
        for kind, c in kinds.items():
            out.append((f"{region} callers, {kind}: calls / tokens / other answers", f"{c['calls']} / {c['tokens']} / {format_value(c['not_tokens'])}"))
    out.append(("RegionalSignClient failovers (region: kind code)", format_value(s["failovers"])))
    for library, v in s["verifications"].items():
        out.append((
            f"{library}: verified / refused after expiry / after revocation / in a rotate-now window / unexpired refused",
            f"{v['verified']} / {v['refused_after_expiry']} / {v['refused_revoked']} / {v['refused_in_rotate_now_window']} / "
            f"{v['unexpired_refusals']}" + (f" ({format_value(v['unexpired_refusal_reasons'])})" if v["unexpired_refusals"] else ""),
        ))
    out += [
        ("unexpired tokens refused (all verifiers)", str(s["unexpired_refusals"])
         + (f": {format_value(s['unexpired_refusal_details'])}" if s["unexpired_refusals"] else "")),
        ("rotate-now window by verifier (s, docs/verifiers.md, + one fetch)", format_value(s["rotate_now_windows_s"])),
        ("lost keys / tokens signed before their kid was served", f"{format_value(s['lost_keys'])} / {format_value(s['signed_before_served'])}"),
        ("a rotate-now key's tokens signed before the edge served it (its window)", format_value(s["rotate_now_signed_before_served"])),
        ("JWKS samples through the edge (errors); region state samples", f"{s['jwks_samples']} ({format_value(s['jwks_sample_errors'])}); {s['region_state_samples']}"),
        ("after the drain: origins / replicas agree (s)", f"{final['origins_s']} / {final['replicas_s']}"),
        ("edge", format_value(s["edge"])),
    ]
    return out


def episode_rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs of each episode in turn."""
    out: list[tuple[str, str]] = []
    for e in s["episodes"]:
        name = f"{e['kind']}{' of ' + e['region'] if e['kind'] in OUTAGES or e['kind'] == REPLICA_LAG else ''} ({e['seconds']} s)"
        out.append((f"{name}: SignClient availability by region", ", ".join(f"{r}: {_availability(v)}" for r, v in e["signclient_by_region"].items())))
        regional = e["regional"]
        answered = f"{_availability(regional)}, answered by {format_value(regional['answered_by'])}, after a failover {regional['failed_over']}"
        out.append((f"{name}: RegionalSignClient", answered))
        converged = f"{e['origins_converged_s']} / {e['replicas_converged_s']} (diverged during: {format_value(e['diverged_during'])})"
        out.append((f"{name}: origins / replicas agree again after (s)", converged))
        if e["error"]:
            out.append((f"{name}: error", e["error"]))
        if "new_kid_signed_after_s" in e:
            out.append((f"{name}: new kid first signed after (s), by region", format_value(e["new_kid_signed_after_s"])))
        if "reach_by_region" in e:
            reach = ", ".join(f"{r}: {v['reach_s']} (bound {e['reach_bound_s'].get(r)})" for r, v in e["reach_by_region"].items())
            label = f"{name}: reach (s from the revoke call's start until the region's signer stopped signing with the kid; bound: signer-cache-ttl + the writer's measured lag)"
            out.append((label, f"{reach}; revoke call {e['revoke_call_s']} s"))
            out.append((f"{name}: the region's signing view dropped the kid after (s, sampled every few hundred ms)", format_value(e["view_dropped_kid_s"])))
            out.append((f"{name}: what each signer answered once stopped", "; ".join(f"{r}: {format_value(v['outcomes_after_stop'])}" for r, v in e["reach_by_region"].items())))
            out.append((f"{name}: edge JWKS dropped the kid after (s); callers' tokens with it after the revoke",
                        f"{e['edge_jwks_dropped_kid_s']}; {format_value(e['caller_tokens_with_revoked_kid_after_revoke'])}"))
        if e["kind"] == REPLICA_LAG:
            out.append((f"{name}: kids signed by region (largest generation gap)", f"{format_value(e['kids_signed_by_region'])} ({e['generation_gap']})"))
    return out


def as_text(summaries: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for s in summaries:
        lines.append(f"== soak in {len(s['regions'])} regions ({', '.join(s['regions'])}; primary {s['primary']}) {s['algorithm']}")
        table = rows(s)
        width = max(len(name) for name, _ in table)
        lines += [f"  {name.ljust(width)}  {value}" for name, value in table]
        lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in s["checks"].items()]
    return "\n".join(lines)


def passed(summaries: Sequence[Mapping[str, Any]]) -> bool:
    return all(all(s["checks"].values()) for s in summaries)


def as_markdown(summaries: Sequence[Mapping[str, Any]], command: str, load: str) -> str:
    """The committed result of a long run (one table per algorithm: the episodes make the rows differ)."""
    env = environment()
    first = summaries[0]
    settings = {k: v for k, v in first["settings"].items() if k not in DEPLOYMENT_NAMES}
    out = [
        "# Soak in two regions: signing through outages, rotate-now, a revocation and replica lag",
        "",
        (f"Last long run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, `{command}`. "
         f"Result: **{'PASS' if passed(summaries) else 'FAIL'}**. Load average before / after: {load}."),
        "",
        f"- Machine: {env['machine']}",
        f"- Python {env['python']}, node {env['node']}; {env['versions']}",
        f"- Regions: {', '.join(first['regions'])} (primary {first['primary']}), one local cloud (`LocalRegions`).",
        "- Settings: " + ", ".join(f"`{k}={v}`" for k, v in settings.items()),
        ("- Callers in each region: `SignClient` of that region's signer, and `RegionalSignClient` (that region first). "
         "Every token is verified through the edge's JWKS URL by caching verifiers (" + ", ".join(first["verifications"]) + "), "
         "caches as in the one-region soak (benchmarks/SOAK.md)."),
        ("- Episodes in turn: an outage of the secondary, then of the primary (every AWS call and invoke of the region fails; "
         "longer than a rotation period), `rotate-now` and `revoke` of the active kid (the rotate function's operator operations), "
         "and replica lag in the secondary. Availability counts the calls begun and ended within the episode (within the fault, "
         "for an outage or lag). Convergence is read from moto directly (the outage is at the AWS endpoint, so moto's replication "
         "goes on during it; real lag is only measured in AWS)."),
        "",
    ]
    for s in summaries:
        out += [f"## {s['algorithm']}", "", "| metric | value |", "|---|---|"]
        out += [f"| {name} | {value.replace('|', '/')} |" for name, value in run_rows(s) + total_rows(s)]
        out += ["", "Checks: " + "; ".join(f"{'PASS' if ok else 'FAIL'} {name}" for name, ok in s["checks"].items()), ""]
        out += [f"### {s['algorithm']}: each episode", "", "| episode | value |", "|---|---|"]
        out += [f"| {name} | {value.replace('|', '/')} |" for name, value in episode_rows(s)]
        out.append("")
    return "\n".join(out)


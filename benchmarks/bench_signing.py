"""Signing benchmark: ratios to a hand-rolled compact JWS, measured interleaved in one process.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_signing.py [--write]``).
Sections: the signing path beside PyJWT and jwcrypto, the whole warm handler,
cold start in a fresh process against a moto server, and AWS calls per 1,000
warm tokens. ``--write`` replaces the ``## Signing`` section of
``benchmarks/RESULTS.md`` and leaves other sections alone. Not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jwks_rotator_testkit.moto import DUMMY_CREDENTIALS, REGION, aws_client, moto_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SIGN_APP = ROOT / "functions" / "sign" / "app.py"
ISSUER = "https://issuer.example"
REQUEST = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}
ALGS = ("RS256", "ES256")


# --- fixtures ---------------------------------------------------------------
def make_keyring_json(alg: str) -> tuple[str, Any]:
    """A keyring document with one active, published key of ``alg`` and that key's record."""
    from jwks_rotator.core.keygen import generate_key
    from jwks_rotator.core.keyring import Keyring
    from jwks_rotator.core.keys import KeyState

    now = datetime.now(UTC)
    record = generate_key(alg, now - timedelta(hours=1)).with_changes(
        state=KeyState.ACTIVE, published_at=now - timedelta(hours=1), activated_at=now - timedelta(minutes=5)
    )
    return Keyring(keys=(record,)).to_json(), record


class CountingSecrets:
    """A Secrets Manager stand-in that serves one version and counts reads."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def get_secret_value(self, **_: Any) -> dict[str, str]:
        self.calls += 1
        return {"VersionId": "v1", "SecretString": self.text}


def settings_for(alg: str) -> Any:
    from jwks_rotator.core.settings import Settings

    return Settings(issuer=ISSUER, algorithm=alg, keyring_secret_id="keyring")


def load_sign_app() -> Any:
    from jwks_rotator_local.functions import load_function_module

    return load_function_module("sign", "sign_app_bench")


# --- timing -----------------------------------------------------------------
BASELINE = "hand-rolled compact JWS"


def interleaved(variants: dict[str, Callable[[], Any]], *, rounds: int, batch: int) -> dict[str, tuple[float, float]]:
    """(median µs per call, median of per-round ratios to :data:`BASELINE`) for each variant.

    Batches run interleaved round by round; a ratio is taken within each round
    so that load from other processes, which drifts over seconds, cancels out.
    """
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm up
        for _ in range(max(3, batch // 10)):
            fn()
    perf = time.perf_counter
    for _ in range(rounds):
        for name, fn in variants.items():
            around = getattr(fn, "around", contextlib.nullcontext)
            with around():
                start = perf()
                for _ in range(batch):
                    fn()
                samples[name].append((perf() - start) / batch * 1e6)
    base = samples[BASELINE]
    return {
        name: (statistics.median(values), statistics.median(v / b for v, b in zip(values, base, strict=True)))
        for name, values in samples.items()
    }


def hand_rolled(record: Any) -> Callable[[dict[str, Any]], str]:
    """The reference: two compact json.dumps, base64url, cryptography sign (r||s for ECDSA)."""
    import base64

    from jwks_rotator.core.algorithms import get_algorithm
    from jwks_rotator.core.keys import load_private_key

    key = load_private_key(record.private_jwk)
    sign = get_algorithm(record.alg).sign
    header = {"alg": record.alg, "typ": "JWT", "kid": record.kid}

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    def encode(claims: dict[str, Any]) -> str:
        signing_input = (
            b64(json.dumps(header, separators=(",", ":")).encode())
            + b"."
            + b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        return (signing_input + b"." + b64(sign(key, signing_input))).decode()

    return encode


def reference_claims(signer: Any) -> Callable[[], dict[str, Any]]:
    """The same claims our signer would set, built per call (time and jti included)."""
    import secrets

    def build() -> dict[str, Any]:
        iat = int(time.time())
        return {
            "iss": ISSUER, "sub": "user-123", "aud": "orders-api", "iat": iat, "nbf": iat - 60, "exp": iat + 300,
            "jti": secrets.token_urlsafe(16), "roles": ["admin"], "email_verified": True,
        }

    return build


def signing_variants(alg: str) -> dict[str, Callable[[], Any]]:
    """The signing path, PyJWT and jwcrypto beside the reference, for one key of ``alg``."""
    import jwt
    from jwcrypto import jwk as jwcrypto_jwk
    from jwcrypto import jwt as jwcrypto_jwt

    from jwks_rotator.core.keys import load_private_key
    from jwks_rotator.core.signer import TokenSigner

    text, record = make_keyring_json(alg)
    signer = TokenSigner(settings_for(alg), CountingSecrets(text))
    signer.issue(REQUEST)
    claims_of = reference_claims(signer)
    reference = hand_rolled(record)
    key_obj = load_private_key(record.private_jwk)
    pyjwt_headers = {"kid": record.kid}
    jwk = jwcrypto_jwk.JWK(**record.private_jwk)
    jwc_header = {"alg": alg, "typ": "JWT", "kid": record.kid}

    def jwcrypto_sign() -> str:
        token = jwcrypto_jwt.JWT(header=jwc_header, claims=claims_of())
        token.make_signed_token(jwk)
        return token.serialize()

    return {
        BASELINE: lambda: reference(claims_of()),
        "jwks-rotator signing path": lambda: signer.issue(REQUEST),
        "PyJWT, key object": lambda: jwt.encode(claims_of(), key_obj, algorithm=alg, headers=pyjwt_headers),
        "jwcrypto make_signed_token": jwcrypto_sign,
    }


def bench_signing_path(rounds: int, batch: int) -> dict[str, dict[str, tuple[float, float]]]:
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for alg in ALGS:
        variants = signing_variants(alg)
        per_alg_batch = batch if alg != "RS256" else max(5, batch // 8)
        results[alg] = interleaved(variants, rounds=rounds, batch=per_alg_batch)
    return results


@contextlib.contextmanager
def discarded_output() -> Any:
    """Send stdout (EMF metrics) and the log handlers' streams to /dev/null."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield sink


def silence_logger(app: Any, sink: Any) -> None:
    """Point powertools' stream handler (shared by every Logger of the service) at ``sink``."""
    for handler in app.logger._logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sink


@contextlib.contextmanager
def log_level(app: Any, level: str) -> Any:
    """Run with the function's logger at ``level`` (restored afterwards)."""
    before = app.logger.log_level
    app.logger.setLevel(level)
    try:
        yield
    finally:
        app.logger.setLevel(before)


def handler_variants(app: Any, alg: str) -> dict[str, Callable[[], Any]]:
    """The whole warm handler (INFO and DEBUG) beside the bare signing path and the reference, for one key of ``alg``."""
    from jwks_rotator.core.signer import TokenSigner

    text, record = make_keyring_json(alg)
    client = CountingSecrets(text)
    app._signer = TokenSigner(settings_for(alg), client, listener=app._on_refresh)
    app._config_error = None
    app.handler(dict(REQUEST), None)
    signer = TokenSigner(settings_for(alg), CountingSecrets(text))
    signer.issue(REQUEST)
    claims_of = reference_claims(signer)
    reference = hand_rolled(record)

    def debug_handler() -> Any:
        return app.handler(REQUEST, None)

    debug_handler.around = lambda: log_level(app, "DEBUG")  # type: ignore[attr-defined]
    return {
        BASELINE: lambda: reference(claims_of()),
        "signing path (no logging)": lambda: signer.issue(REQUEST),
        "whole warm handler, default INFO level (metrics on)": lambda: app.handler(REQUEST, None),
        "whole warm handler, DEBUG level (per-token log line)": debug_handler,
    }


def bench_handler(rounds: int, batch: int) -> dict[str, dict[str, tuple[float, float]]]:
    app = load_sign_app()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with discarded_output() as sink:
        silence_logger(app, sink)
        for alg in ALGS:
            variants = handler_variants(app, alg)
            per_alg_batch = batch if alg != "RS256" else max(5, batch // 8)
            results[alg] = interleaved(variants, rounds=rounds, batch=per_alg_batch)
    return results


# --- cold start and AWS calls against a moto server ---------------------------
_COLD_CHILD = textwrap.dedent(
    """
    import importlib.util, json, sys, os
    sys.stdout = open(os.devnull, "w")
    spec = importlib.util.spec_from_file_location("app", {app!r})
    app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
    response = app.handler({request!r}, None)
    sys.stderr.write(json.dumps({{"ok": "token" in response, "jwcrypto": "jwcrypto" in sys.modules}}))
    """
)


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return (time.perf_counter() - start) * 1e3, done.stderr


def bench_cold_and_calls(runs: int) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    creds = {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    out: dict[str, Any] = {"cold": {}, "calls": {}}
    with moto_server() as endpoint:
        sm = aws_client("secretsmanager", endpoint)
        for alg in ALGS:
            text, _ = make_keyring_json(alg)
            secret_id = sm.create_secret(Name=f"bench-keyring-{alg}-{os.getpid()}", SecretString=text)["ARN"]
            env = {**os.environ, **creds, "AWS_ENDPOINT_URL": endpoint, "KEYRING_SECRET_ID": secret_id, "ISSUER": ISSUER,
                   "ALGORITHM": alg, "POWERTOOLS_LOG_LEVEL": "INFO"}
            child = [sys.executable, "-c", _COLD_CHILD.format(app=str(SIGN_APP), request=REQUEST)]
            bare = [sys.executable, "-c", "import boto3, cryptography"]
            handler_ms, bare_ms = [], []
            info = ""
            for _ in range(runs):
                elapsed, info = _run(child, env)
                handler_ms.append(elapsed)
                bare_ms.append(_run(bare, env)[0])
            out["cold"][alg] = {"handler_ms": statistics.median(handler_ms), "bare_ms": statistics.median(bare_ms),
                                "child": json.loads(info)}
            out["calls"][alg] = count_warm_calls(endpoint, secret_id, alg)
    return out


def count_warm_calls(endpoint: str, secret_id: str, alg: str, tokens: int = 1000) -> dict[str, int]:
    """AWS API calls made by the whole handler over ``tokens`` warm invocations, counted by a botocore hook."""
    from jwks_rotator.core.settings import Settings
    from jwks_rotator.core.signer import TokenSigner

    app = load_sign_app()
    client = aws_client("secretsmanager", endpoint)
    calls = {"n": 0}
    client.meta.events.register("before-call.*.*", lambda **_: calls.__setitem__("n", calls["n"] + 1))
    app._signer = TokenSigner(Settings(issuer=ISSUER, algorithm=alg, keyring_secret_id=secret_id), client, listener=app._on_refresh)
    app._config_error = None
    with discarded_output() as sink:
        silence_logger(app, sink)
        first = app.handler(dict(REQUEST), None)
        cold_calls = calls["n"]
        ok = 0
        for _ in range(tokens):
            ok += "token" in app.handler(dict(REQUEST), None)
    return {"first_token_calls": cold_calls, "warm_calls": calls["n"] - cold_calls, "warm_tokens": ok, "first_ok": int("token" in first)}


# --- report -------------------------------------------------------------------
def machine() -> str:
    model = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("cryptography", "PyJWT", "jwcrypto", "aws-lambda-powertools", "boto3", "moto")
    )
    return (f"Machine: {model}, {os.cpu_count()} CPUs; Python {platform.python_version()}; {versions}; "
            f"date {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
            f"load average at the end {os.getloadavg()[0]:.1f} (shared machine: absolute numbers move, "
            "same-round ratios much less; cold start, timed in separate processes, moves most).")


Table = dict[str, dict[str, tuple[float, float]]]


def _header(first: str) -> list[str]:
    return [f"|{' ' + first if first else ''} | " + " | ".join(ALGS) + " |", "|---|" + "---|" * len(ALGS)]


def _row(label: str, cells: Callable[[str], str]) -> str:
    return f"| {label} | " + " | ".join(cells(a) for a in ALGS) + " |"


def _ratio_rows(table: Table) -> list[str]:
    """One row per variant: median µs and, in brackets, the median ratio to the baseline."""
    return [_row(name, lambda a, name=name: f"{table[a][name][0]:.1f} ({table[a][name][1]:.2f}x)") for name in next(iter(table.values()))]


def render(signing: Table, handler: Table, cold: dict[str, Any]) -> str:
    lines = ["## Signing", "", machine(), "",
             ("Medians in µs per token; in brackets the median over rounds of the ratio to the hand-rolled compact JWS "
              "(two compact `json.dumps`, base64url, `cryptography` sign, r||s) measured in the same round; "
              "batches interleaved in one process. "
              "Request: sub, aud, ttl and two custom claims (9 claims in the token)."), "",
             "### Signing path (request in, token out, no logging)", "", *_header("variant")]
    lines += _ratio_rows(signing)
    lines += ["", "### Whole warm handler (event in, response out; powertools Logger and Metrics on, output to /dev/null)", "",
              *_header("variant")]
    lines += _ratio_rows(handler)
    lines += ["", "### Cold start (fresh process: interpreter, imports, boto3 client, secret read from moto over HTTP, key load, first token)", "",
              *_header("")]
    per_alg = cold["cold"]
    lines += [
        _row("handler import + first token (ms, median)", lambda a: f"{per_alg[a]['handler_ms']:.0f}"),
        _row("bare `python -c \"import boto3, cryptography\"` (ms)", lambda a: f"{per_alg[a]['bare_ms']:.0f}"),
        _row("ratio", lambda a: f"{per_alg[a]['handler_ms'] / per_alg[a]['bare_ms']:.2f}x"),
        _row("first token issued / jwcrypto imported", lambda a: f"{per_alg[a]['child']['ok']} / {per_alg[a]['child']['jwcrypto']}"),
    ]
    lines += ["", "### AWS calls (whole handler, real boto3 client against moto, counted by a botocore `before-call` hook)", "",
              *_header("")]
    calls = cold["calls"]
    lines += [
        _row("calls for the first token", lambda a: str(calls[a]["first_token_calls"])),
        _row("calls per 1,000 warm tokens", lambda a: str(calls[a]["warm_calls"])),
        _row("tokens issued of 1,000", lambda a: str(calls[a]["warm_tokens"])),
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    """Replace (or add) the ``## Signing`` section of RESULTS.md, keeping every other section."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start = text.find("## Signing")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end != -1 else "")
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100, help="calls per batch for ES256 (RS256: an eighth)")
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="update the ## Signing section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    signing = bench_signing_path(args.rounds, args.batch)
    handler = bench_handler(args.rounds, args.batch)
    cold = bench_cold_and_calls(args.cold_runs)
    section = render(signing, handler, cold)
    print(section)
    if args.write:
        write_section(section)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

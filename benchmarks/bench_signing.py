"""Signing benchmark: ratios to a hand-rolled compact JWS, measured interleaved in one process.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_signing.py [--write]``).
Sections: the signing path beside PyJWT and jwcrypto; the whole warm handler as
callers use it (one warm caller whose proof was verified once, the issuance
policy on, the audit line written); what verifying a first proof costs; cold
start (in ``bench_cold_start.py``); AWS and STS calls per 1,000 warm tokens. Callers are
moto role sessions; proofs are replayed to ``LocalStsVerifier`` (signature
check in this process, then moto's STS). ``--write`` replaces the
``## Signing`` section of ``benchmarks/RESULTS.md`` and leaves other sections
alone. Not a test: nothing here asserts a time.

Over 400 lines: the variants, the moto-backed measurements and the report are
one script so that ``make bench`` stays a single file to read.
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
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from results_file import write_section

from jwks_rotator_testkit.callers import (
    DEMO_ACCOUNT,
    SIGN_FUNCTION_NAME,
    Caller,
    CountingStsVerifier,
    LambdaContext,
    fake_sts,
    moto_role_session,
    policy_yaml,
)
from jwks_rotator_testkit.moto import REGION, aws_client, moto_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
ISSUER = "https://issuer.example"
REQUEST = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}
ALGS = ("RS256", "ES256")
CALLER_ROLE = "bench-orders-service"
POLICY = policy_yaml(
    {"name": "orders", "callers": [f"arn:aws:iam::{DEMO_ACCOUNT}:role/{CALLER_ROLE}"], "audiences": ["orders-api"],
     "subjects": ["user-[0-9]+"], "claims": ["roles", "email_verified"], "max_ttl": "15m"},
)
CONTEXT = LambdaContext()


class LocalCloud:
    """A moto server, the signature-checking STS stand-in in front of it, one caller (a moto role session), the policy file."""

    def __init__(self, endpoint: str, policy_file: Path) -> None:
        self.endpoint = endpoint
        self.sts = CountingStsVerifier(endpoint, region=REGION)
        self.sts_url = self.sts.start()
        self.caller: Caller = moto_role_session(endpoint, CALLER_ROLE, session="bench")
        self.policy_file = policy_file
        policy_file.write_text(POLICY, encoding="utf-8")
        # The revocation list the signer reads beside the keyring (the rotator creates it in a stack).
        from jwks_rotator.core.settings import SETTINGS_BY_ATTRIBUTE

        aws_client("ssm", endpoint).put_parameter(
            Name=SETTINGS_BY_ATTRIBUTE["revocation_parameter"].default, Value="[]", Type="String", Overwrite=True
        )

    def env(self) -> dict[str, str]:
        return {"AWS_REGION": REGION, "STS_ENDPOINT_URL": self.sts_url, "ISSUANCE_POLICY_FILE": str(self.policy_file)}

    def event(self) -> dict[str, Any]:
        """The request with a fresh proof of the caller, as a client sends it (and then reuses the proof)."""
        return {**REQUEST, "proof": self.caller.proof(sts_endpoint_url=self.sts_url, signer=SIGN_FUNCTION_NAME)}


# --- fixtures ---------------------------------------------------------------
def make_keyring_json(alg: str) -> tuple[str, Any]:
    """A keyring document with one active, published key of ``alg`` and that key's record."""
    from jwks_rotator.core.keys.keyring import Keyring
    from jwks_rotator.core.keys.records import KeyState
    from jwks_rotator.core.lifecycle.keygen import generate_key

    now = datetime.now(UTC)
    record = generate_key(alg, now - timedelta(hours=1)).with_changes(
        state=KeyState.ACTIVE, published_at=now - timedelta(hours=1), activated_at=now - timedelta(minutes=5)
    )
    return Keyring(keys=(record,)).to_json(), record


class CountingSecrets:
    """A Secrets Manager and SSM stand-in: one keyring version and an empty revocation list; counts reads of both."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    def get_secret_value(self, **_: Any) -> dict[str, str]:
        self.calls += 1
        return {"VersionId": "v1", "SecretString": self.text}

    def get_parameter(self, *, Name: str) -> dict[str, Any]:
        self.calls += 1
        return {"Parameter": {"Name": Name, "Type": "String", "Value": "[]", "Version": 1}}


def counting_reader(text: str) -> Any:
    """The function's keyring reader over a :class:`CountingSecrets` client."""
    from jwks_rotator.adapters.sdk.secret_reader import SecretsManagerKeyringReader

    return SecretsManagerKeyringReader(CountingSecrets(text), "keyring")


def settings_for(alg: str, secret_id: str = "keyring") -> Any:
    from jwks_rotator.core.settings import Settings

    return Settings(issuer=ISSUER, algorithm=alg, keyring_secret_id=secret_id)


def load_sign_app() -> Any:
    from jwks_rotator_local.functions import load_function_module

    return load_function_module("sign", "sign_app_bench")


# --- timing -----------------------------------------------------------------
BASELINE = "hand-rolled compact JWS"
Table = dict[str, dict[str, tuple[float, float]]]


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

    from jwks_rotator.core.keys.algorithms import get_algorithm
    from jwks_rotator.core.keys.records import load_private_key

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

    from jwks_rotator.core.issuance.signer import TokenSigner
    from jwks_rotator.core.keys.records import load_private_key

    text, record = make_keyring_json(alg)
    signer = TokenSigner(settings_for(alg), counting_reader(text))
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


def bench_signing_path(rounds: int, batch: int) -> Table:
    results: Table = {}
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
    """Point the sign function's log lines and EMF records (written directly, no powertools) at ``sink``."""
    app.logger.stream = sink
    app.metrics.stream = sink


def wire_handler(app: Any, alg: str, clients: Callable[[str], Any], cloud: LocalCloud, secret_id: str = "keyring") -> None:
    """The handler's service as the function builds it (``build_issuance_service``), on ``clients`` (by service) and the local STS."""
    from jwks_rotator.bootstrap.sign import build_issuance_service

    app._service = build_issuance_service(
        settings_for(alg, secret_id), POLICY, cloud.env(), clients,
        listener=app._on_refresh, on_decision=app._on_decision, on_proof_event=app._on_proof_event,
        local=True,  # the local STS stand-in (STS_ENDPOINT_URL), as the local stack's marker allows
    )
    app._init_error = None


def handler_variants(app: Any, alg: str, cloud: LocalCloud) -> dict[str, Callable[[], Any]]:
    """The whole warm handler beside the bare signing path and the reference, for one key of ``alg`` and one warm caller."""
    from jwks_rotator.core.issuance.signer import TokenSigner

    text, record = make_keyring_json(alg)
    counting = CountingSecrets(text)
    wire_handler(app, alg, lambda _service: counting, cloud)
    event = cloud.event()
    first = app.handler(event, CONTEXT)  # the proof is replayed once, here; the variant below reuses it
    assert "token" in first, first
    signer = TokenSigner(settings_for(alg), counting_reader(text))
    signer.issue(REQUEST)
    claims_of = reference_claims(signer)
    reference = hand_rolled(record)
    return {
        BASELINE: lambda: reference(claims_of()),
        "signing path (no proof, policy or logging)": lambda: signer.issue(REQUEST),
        "whole warm handler: cached proof, policy, audit line, INFO, metrics": lambda: app.handler(event, CONTEXT),
    }


def bench_handler(rounds: int, batch: int, cloud: LocalCloud) -> tuple[Table, dict[str, int]]:
    """The table, and the STS replays made during it (one per algorithm: each one's first call)."""
    app = load_sign_app()
    results: Table = {}
    replays = {}
    with discarded_output() as sink:
        silence_logger(app, sink)
        for alg in ALGS:
            before = cloud.sts.replays
            variants = handler_variants(app, alg, cloud)
            per_alg_batch = batch if alg != "RS256" else max(5, batch // 8)
            results[alg] = interleaved(variants, rounds=rounds, batch=per_alg_batch)
            last = variants["whole warm handler: cached proof, policy, audit line, INFO, metrics"]()
            assert "token" in last, f"the cached proof stopped working during the run: {last}"
            replays[alg] = cloud.sts.replays - before
    return results, replays


# --- the first proof ------------------------------------------------------------
def bench_first_proof(cloud: LocalCloud, runs: int) -> dict[str, float]:
    """Milliseconds (medians) to verify a proof a container has not seen: parse, then one replay, per stand-in; and a cache hit."""
    from jwks_rotator.adapters.lean.sts_identity import StsEndpoint, StsIdentityReplayer
    from jwks_rotator.core.callers.proof import DEFAULT_MAX_AGE, parse_caller_proof
    from jwks_rotator.core.callers.verifier import CallerVerifier

    signers = {SIGN_FUNCTION_NAME}

    def verifier_for(endpoint: StsEndpoint) -> CallerVerifier:
        return CallerVerifier(
            StsIdentityReplayer.for_endpoint(endpoint), wall_clock=time.time, monotonic_clock=time.monotonic,
            max_age=DEFAULT_MAX_AGE, leeway=60, sts_host=endpoint.host, sts_region=REGION,
        )

    samples: dict[str, list[float]] = {"parse": [], "local_sts": [], "fake_sts": [], "cache_hit": []}
    perf = time.perf_counter
    with fake_sts() as fake:
        fake.register(cloud.caller)
        for _ in range(runs):
            for name, url in (("local_sts", cloud.sts_url), ("fake_sts", fake.url)):
                endpoint = StsEndpoint.for_origin(url, REGION)
                proof = cloud.caller.proof(sts_endpoint_url=url, signer=SIGN_FUNCTION_NAME)
                verifier = verifier_for(endpoint)  # a new container: empty cache, no connection yet
                start = perf()
                parse_caller_proof(proof, accepted_signers=signers, sts_host=endpoint.host, sts_region=REGION, now=time.time())
                parsed = perf()
                verifier.verify(proof, signers)
                samples[name].append((perf() - parsed) * 1e3 + (parsed - start) * 1e3)
                samples["parse"].append((parsed - start) * 1e3)
                start = perf()
                verifier.verify(proof, signers)
                samples["cache_hit"].append((perf() - start) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- cold start and AWS calls against a moto server ---------------------------
def bench_calls(cloud: LocalCloud) -> dict[str, Any]:
    """The calls of a first token and of 1,000 warm ones, per algorithm (cold start: ``bench_cold_start.py``)."""
    out: dict[str, Any] = {"calls": {}}
    sm = aws_client("secretsmanager", cloud.endpoint)
    for alg in ALGS:
        text, _ = make_keyring_json(alg)
        secret_id = sm.create_secret(Name=f"bench-keyring-{alg}-{os.getpid()}", SecretString=text)["ARN"]
        out["calls"][alg] = count_warm_calls(cloud, secret_id, alg)
    return out


def count_warm_calls(cloud: LocalCloud, secret_id: str, alg: str, tokens: int = 1000) -> dict[str, int]:
    """AWS calls and STS replays of the whole handler as deployed: reads through the Parameters and Secrets extension
    stand-in (moto behind it, no cache: each request it answers is one AWS call), a first token, then ``tokens`` warm
    ones for the same caller reusing its proof, as ``SignClient`` does within its reuse window."""
    from jwks_rotator.bootstrap.sign import build_issuance_service
    from jwks_rotator_local.secrets_extension import SecretsExtension

    app = load_sign_app()
    with SecretsExtension(cloud.endpoint, region=REGION, session_token=lambda: "bench-token") as extension:
        environ = {**cloud.env(), "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.port), "AWS_SESSION_TOKEN": "bench-token"}
        app._service = build_issuance_service(
            settings_for(alg, secret_id), POLICY, environ,
            listener=app._on_refresh, on_decision=app._on_decision, on_proof_event=app._on_proof_event,
            local=True,  # the local STS stand-in (STS_ENDPOINT_URL), as the local stack's marker allows
        )
        app._init_error = None
        event = cloud.event()
        replays_before = cloud.sts.replays
        with discarded_output() as sink:
            silence_logger(app, sink)
            first = app.handler(event, CONTEXT)
            cold_calls, cold_replays = extension.requests, cloud.sts.replays - replays_before
            ok = 0
            for _ in range(tokens):
                ok += "token" in app.handler(event, CONTEXT)
        warm_calls = extension.requests - cold_calls
    return {
        "first_token_calls": cold_calls, "first_token_replays": cold_replays, "warm_calls": warm_calls,
        "warm_replays": cloud.sts.replays - replays_before - cold_replays, "warm_tokens": ok, "first_ok": int("token" in first),
    }


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



def _header(first: str) -> list[str]:
    return [f"|{' ' + first if first else ''} | " + " | ".join(ALGS) + " |", "|---|" + "---|" * len(ALGS)]


def _row(label: str, cells: Callable[[str], str]) -> str:
    return f"| {label} | " + " | ".join(cells(a) for a in ALGS) + " |"


def _ratio_rows(table: Table) -> list[str]:
    """One row per variant: median µs and, in brackets, the median ratio to the baseline."""
    return [_row(name, lambda a, name=name: f"{table[a][name][0]:.1f} ({table[a][name][1]:.2f}x)") for name in next(iter(table.values()))]


def render(signing: Table, handler: Table, handler_replays: dict[str, int], first_proof: dict[str, float], cold: dict[str, Any]) -> str:
    lines = ["## Signing", "", machine(), "",
             ("Medians in µs per token; in brackets the median over rounds of the ratio to the hand-rolled compact JWS "
              "(two compact `json.dumps`, base64url, `cryptography` sign, r||s) measured in the same round; "
              "batches interleaved in one process. "
              "Request: sub, aud, ttl and two custom claims (9 claims in the token, 10 with the handler's `azp`)."), "",
             "### Signing path (request in, token out, no logging)", "", *_header("variant")]
    lines += _ratio_rows(signing)
    lines += ["", ("### Whole warm handler (event in, response out: one warm caller whose proof was verified once and is "
                   "reused, issuance policy on, one audit line per token written to stdout, JSON logs at INFO and EMF "
                   "metrics written directly; stdout and logs to /dev/null)"), "", *_header("variant")]
    lines += _ratio_rows(handler)
    lines += [_row("STS replays during the run (each algorithm's first call only)", lambda a: str(handler_replays[a]))]
    lines += [
        "", ("The former row \"whole warm handler, DEBUG level (per-token log line)\" is gone: the handler no longer logs per "
             "token at DEBUG; the per-token record is the audit line, written at every level and included above."),
    ]
    lines += ["", ("### Verifying a first proof (a container that has not seen it; proof verification is the same for every "
                   "algorithm; medians, ms)"), "", "| step | ms |", "|---|---|",
              f"| parse and local checks (`parse_caller_proof`) | {first_proof['parse']:.3f} |",
              (f"| parse + replay to `LocalStsVerifier` (SigV4 recomputed by botocore, then forwarded to moto's STS; "
               f"new connection) | {first_proof['local_sts']:.2f} |"),
              (f"| parse + replay to the testkit's `FakeSts` (SigV4 recomputed, answered without moto; new connection) "
               f"| {first_proof['fake_sts']:.2f} |"),
              f"| the same proof again (cache hit, no replay) | {first_proof['cache_hit']:.3f} |",
              "",
              ("Both stand-ins are Python HTTP servers in the benchmark's own process (they share its GIL); AWS STS is a "
               "network round trip instead, typically a few to tens of ms in-region.")]
    lines += ["", "Cold start is measured in fresh processes by `benchmarks/bench_cold_start.py` (its own section, Cold start)."]
    lines += ["", ("### AWS and STS calls (whole handler as deployed: reads through the Parameters and Secrets extension "
                   "stand-in, moto behind it, no cache, so each request it answers is one AWS call; STS replays counted by "
                   "the stand-in; one caller reusing one proof)"), "", *_header("")]
    calls = cold["calls"]
    lines += [
        _row("AWS calls for the first token", lambda a: str(calls[a]["first_token_calls"])),
        _row("STS replays for the first token", lambda a: str(calls[a]["first_token_replays"])),
        _row("AWS calls per 1,000 warm tokens", lambda a: str(calls[a]["warm_calls"])),
        _row("STS replays per 1,000 warm tokens", lambda a: str(calls[a]["warm_replays"])),
        _row("tokens issued of 1,000", lambda a: str(calls[a]["warm_tokens"])),
    ]
    lines += ["", ("A proof is replayed once per container and proof lifetime (5 minutes; `SignClient` re-signs after 4): "
                   "a caller that reuses its proof costs at most one STS call per container per 4 minutes, whatever its rate."), ""]
    return "\n".join(lines) + "\n"



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=100, help="calls per batch for ES256 (RS256: an eighth)")
    parser.add_argument("--proof-runs", type=int, default=30, help="first proofs verified per stand-in")
    parser.add_argument("--write", action="store_true", help="update the ## Signing section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    signing = bench_signing_path(args.rounds, args.batch)
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        cloud = LocalCloud(endpoint, Path(scratch) / "issuance-policy.yaml")
        try:
            handler, handler_replays = bench_handler(args.rounds, args.batch, cloud)
            first_proof = bench_first_proof(cloud, args.proof_runs)
            cold = bench_calls(cloud)
        finally:
            cloud.sts.stop()
    section = render(signing, handler, handler_replays, first_proof, cold)
    print(section)
    if args.write:
        write_section("Signing", section)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Cold-start benchmark as Lambda sees it: a fresh process runs the sign function's INIT, its first invocation and warm ones.

Run with ``make bench`` (``make build`` first, for the python3.12 artifact). One run measures side by side,
interleaved round by round, in fresh processes: **after** (this tree; under python3.12 the ``make build`` artifact,
under the machine's python3 the same sources compiled the same way) and **before** (``--before REF``, default
``main``: that revision's sign function and layer package compiled the same way, under python3.12, with the build's
third-party packages). Both read through the Parameters and Secrets extension stand-in (moto behind it, TTL 0) and
replay the caller's proof over HTTPS to the signature-checking STS stand-in (a test CA through ``STS_CA_BUNDLE``).

Per process: INIT (``import app``) CPU and wall, the first invocation's CPU and wall (the wait is wall minus CPU: the
network), the median warm invocation, and the time from spawn to the first token; "above bare" subtracts a bare
interpreter's spawn to first statement in the same rounds. First-token latency at 512, 1,024 and 1,769 MB is an
estimate (INIT at a full core, the invoke phase's CPU at memory / 1,769 MB of a vCPU). ``--write`` replaces the
``## Cold start`` section of ``benchmarks/RESULTS.md``. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from results_file import write_section

from jwks_rotator_local.local_tls import LocalCertificateAuthority
from jwks_rotator_local.secrets_extension import SecretsExtension
from jwks_rotator_testkit.callers import DEMO_ACCOUNT, SIGN_FUNCTION_NAME, CountingStsVerifier, moto_role_session, policy_yaml
from jwks_rotator_testkit.moto import DUMMY_CREDENTIALS, REGION, aws_client, moto_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BUILD = ROOT / ".aws-sam" / "build"
ISSUER = "https://issuer.example"
ALGS = ("ES256", "RS256")
SESSION_TOKEN = "bench-function-session-token"
REQUEST = {"sub": "user-123", "aud": "orders-api", "ttl": 300, "claims": {"roles": ["admin"], "email_verified": True}}
CALLER_ROLE = "bench-cold-orders-service"
POLICY = policy_yaml(
    {"name": "orders", "callers": [f"arn:aws:iam::{DEMO_ACCOUNT}:role/{CALLER_ROLE}"], "audiences": ["orders-api"],
     "subjects": ["user-[0-9]+"], "claims": ["roles", "email_verified"], "max_ttl": "15m"},
)
CONTEXT = {"function_name": SIGN_FUNCTION_NAME, "invoked_function_arn": f"arn:aws:lambda:{REGION}:{DEMO_ACCOUNT}:function:{SIGN_FUNCTION_NAME}",
           "function_version": "$LATEST"}

CHILD = textwrap.dedent(
    """
    import time
    _w0, _c0 = time.perf_counter(), time.process_time()
    import app
    _w1, _c1 = time.perf_counter(), time.process_time()
    import json, os, sys, types
    event, context = json.loads(os.environ["BENCH_EVENT"]), types.SimpleNamespace(**json.loads(os.environ["BENCH_CONTEXT"]))
    _w2, _c2 = time.perf_counter(), time.process_time()
    response = app.handler(event, context)
    _w3, _c3 = time.perf_counter(), time.process_time()
    first_token_at = time.time()
    ok = "token" in response
    warm = []
    for _ in range(int(os.environ.get("BENCH_WARM_CALLS", "30"))):
        w, c = time.perf_counter(), time.process_time()
        ok = ok and "token" in app.handler(event, context)
        warm.append(((time.perf_counter() - w) * 1e3, (time.process_time() - c) * 1e3))
    warm.sort()
    sdk = sorted(m for m in ("boto3", "botocore", "aws_lambda_powertools", "jwcrypto", "moto") if m in sys.modules)
    os.write(2, json.dumps({"init_wall": (_w1 - _w0) * 1e3, "init_cpu": (_c1 - _c0) * 1e3, "first_wall": (_w3 - _w2) * 1e3,
                            "first_cpu": (_c3 - _c2) * 1e3, "first_token_at": first_token_at,
                            "warm_wall": warm[len(warm) // 2][0] if warm else 0.0,
                            "warm_cpu": sorted(c for _, c in warm)[len(warm) // 2] if warm else 0.0, "ok": ok,
                            "error": response.get("error"), "message": response.get("message"), "sdk": sdk}).encode() + b"\\n")
    """
)
BARE_CHILD = "import os, time; os.write(2, b'{\"at\": %r, \"ok\": true}\\n' % time.time())"
"""A bare interpreter reporting when it runs its first line: the "above bare" baseline (spawn to a first statement)."""
LAMBDA_FULL_CPU_MB = 1769
"""Lambda gives an invocation CPU in proportion to memory: 1,769 MB is one vCPU."""
MEMORY_SIZES = (512, 1024, 1769)
TUNING_SIZES = (128, 256, 512, 768, 1024, 1536, 1769, 2048)
PRICE_PER_GB_SECOND = 0.0000166667
PRICE_PER_REQUEST = 0.20 / 1e6
PRICE_SOURCE = ("AWS Lambda pricing, US East (N. Virginia), x86, first duration tier: $0.0000166667 per GB-second and "
                "$0.20 per million requests (aws.amazon.com/lambda/pricing; the whitepaper \"How AWS Pricing Works\", "
                "Lambda); duration billed per 1 ms, rounded up; INIT billed like an invocation since 2025-08-01")

# The first invocation's parts, timed in the child by wrapping the functions that do them (after: this tree only).
PARTS_CHILD = textwrap.dedent(
    """
    import time
    _t0 = time.perf_counter()
    import app
    _t1 = time.perf_counter()
    import json, os, types
    _t_core = time.perf_counter()
    # INIT imported and built these already; wrapped here, they time the first invocation's parts
    from jwks_rotator.bootstrap import sign as sign_root
    from jwks_rotator.core.issuance import service as issuance, signer as signer_module
    from jwks_rotator.adapters.lean import secrets_extension, sts_identity, http
    parts = {}
    def timed(owner, name, label):
        original = getattr(owner, name)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + (time.perf_counter() - start) * 1e3
        setattr(owner, name, wrapper)
    timed(issuance.IssuanceService, "handle", "the service's whole answer (proof, policy, key, signature)")
    timed(sts_identity.StsIdentityReplayer, "replay", "proof replayed to STS over HTTPS (connect, handshake, answer)")
    timed(secrets_extension.ExtensionKeyringReader, "read_current", "keyring read through the extension")
    timed(secrets_extension.ExtensionRevocationReader, "read", "revocation list read through the extension")
    timed(signer_module, "load_private_key", "private key loaded (checks, no validation)")
    timed(signer_module, "make_signing_key", "key ready: load + first signature + its verification")
    response = app.handler(json.loads(os.environ["BENCH_EVENT"]), types.SimpleNamespace(**json.loads(os.environ["BENCH_CONTEXT"])))
    _t2 = time.perf_counter()
    parts["INIT: import of the handler (issuance core, settings, policy, TLS context)"] = (_t1 - _t0) * 1e3
    parts["first invocation, whole"] = (_t2 - _t1) * 1e3
    os.write(2, json.dumps({"ok": "token" in response, "parts": parts}).encode() + b"\\n")
    """
)


@dataclass
class Variant:
    """One way of running the sign function in a fresh process."""

    name: str  # e.g. "after, python3.12"
    interpreter: str
    cwd: Path  # the function's code directory (LAMBDA_TASK_ROOT): ``import app`` finds app.py here
    pythonpath: list[str]
    env: dict[str, str] = field(default_factory=dict)
    after: bool = True  # deployed as the template deploys it (the extension, Amazon's roots): both sides here
    breakdown: bool = True  # its imports and first-invocation parts are broken down (this tree's variants)


def python312() -> str | None:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip() if shutil.which("pyenv") else ""
    for candidate in [shutil.which("python3.12") or "", *sorted(Path(root or "/nonexistent").glob("versions/3.12*/bin/python3.12"))]:
        if candidate and subprocess.run([str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                        capture_output=True, check=False).returncode == 0:
            return str(candidate)
    return None


def version_of(interpreter: str) -> str:
    return subprocess.run([interpreter, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True,
                          check=True).stdout.strip()


def marked_copy(code_dir: Path, target: Path) -> Path:
    """A copy of a built function's code directory with the local stack's marker added: the benchmark's STS and policy
    file are local stand-ins, which a function honours only with the marker (``make build`` leaves it out)."""
    from jwks_rotator_local.functions import mark_local

    shutil.copytree(code_dir, target)
    mark_local(target)
    return target


def compiled_copy(interpreter: str, target: Path) -> tuple[Path, Path]:
    """This tree's sign function and layer package copied to ``target`` and compiled as ``make build`` compiles them."""
    task, layer = target / "task", target / "layer"
    shutil.copytree(ROOT / "functions" / "sign", task)
    from jwks_rotator_local.functions import mark_local

    mark_local(task)
    shutil.copytree(ROOT / "layers" / "jwks_rotator" / "jwks_rotator", layer / "jwks_rotator", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([interpreter, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(task), str(layer)], check=True)
    return task, layer


def archived(ref: str, target: Path) -> tuple[Path, Path]:
    """``ref``'s sign function and layer package, as files (``git archive``), with no .pyc."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "functions/sign", "layers/jwks_rotator/jwks_rotator"],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(target, filter="data")
    return target / "functions" / "sign", target / "layers" / "jwks_rotator"


# --- the local cloud ------------------------------------------------------------------------------------------------------
class Cloud:
    """moto, the extension stand-in, an HTTPS STS stand-in with a test CA, one caller, the policy and a keyring per algorithm."""

    def __init__(self, endpoint: str, scratch: Path, stack: contextlib.ExitStack) -> None:
        self.endpoint = endpoint
        self.ca = stack.enter_context(LocalCertificateAuthority())
        self.sts = CountingStsVerifier(endpoint, region=REGION)
        self.sts_url = self.sts.start(tls=self.ca.server_context())
        stack.callback(self.sts.stop)
        self.extension = stack.enter_context(SecretsExtension(endpoint, region=REGION, session_token=lambda: SESSION_TOKEN))
        self.caller = moto_role_session(endpoint, CALLER_ROLE, session="bench-cold")
        self.policy_file = scratch / "issuance-policy.yaml"
        import yaml  # type: ignore[import-untyped]

        # "before" reads the policy as shipped on main, YAML (PyYAML imported on the first call); "after" reads what
        # `make build` ships, the same document as JSON (mk/policy_as_json.py), and never imports PyYAML.
        document = json.loads(POLICY)
        self.policy_file.write_text(yaml.safe_dump(document), encoding="utf-8")
        self.built_policy_file = scratch / "issuance-policy.built.yaml"
        self.built_policy_file.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        system_bundle = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
        self.system_plus_ca = scratch / "system-plus-test-ca.pem"
        self.system_plus_ca.write_bytes((system_bundle.read_bytes() if system_bundle.exists() else b"") + self.ca.ca_file.read_bytes())
        from jwks_rotator.core.settings import SETTINGS_BY_ATTRIBUTE

        self.revocation_parameter = SETTINGS_BY_ATTRIBUTE["revocation_parameter"].default
        aws_client("ssm", endpoint).put_parameter(Name=self.revocation_parameter, Value="[]", Type="String", Overwrite=True)
        sm = aws_client("secretsmanager", endpoint)
        self.secrets = {alg: sm.create_secret(Name=f"bench-cold-{alg}-{os.getpid()}", SecretString=keyring_json(alg))["ARN"] for alg in ALGS}

    def env(self, variant: Variant, alg: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHONPATH", "SSL_CERT"))}
        env = {**base, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "ISSUER": ISSUER, "ALGORITHM": alg,
               "KEYRING_SECRET_ID": self.secrets[alg], "ISSUANCE_POLICY_FILE": str(self.policy_file), "STS_ENDPOINT_URL": self.sts_url,
               "POWERTOOLS_LOG_LEVEL": "INFO", "BENCH_CONTEXT": json.dumps(CONTEXT),
               "BENCH_EVENT": json.dumps({**REQUEST, "proof": self.caller.proof(sts_endpoint_url=self.sts_url, signer=SIGN_FUNCTION_NAME)}),
               "PYTHONPATH": os.pathsep.join(variant.pythonpath)}
        if variant.after:  # as the template configures the function: the extension, its token, TTL 0; Amazon's roots
            env.update({"ISSUANCE_POLICY_FILE": str(self.built_policy_file),"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(self.extension.port), "AWS_SESSION_TOKEN": SESSION_TOKEN,
                        "SECRETS_MANAGER_TTL": "0", "SSM_PARAMETER_STORE_TTL": "0", "STS_CA_BUNDLE": str(self.ca.ca_file)})
        else:  # as main deploys it: boto3 against the service endpoint; the default TLS context (the system bundle)
            env.update({**DUMMY_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "SSL_CERT_FILE": str(self.system_plus_ca)})
        env.update(variant.env)
        return env


def keyring_json(alg: str) -> str:
    from jwks_rotator.core.keys.keyring import Keyring
    from jwks_rotator.core.keys.records import KeyState
    from jwks_rotator.core.lifecycle.keygen import generate_key

    now = datetime.now(UTC)
    record = generate_key(alg, now - timedelta(hours=1)).with_changes(
        state=KeyState.ACTIVE, published_at=now - timedelta(hours=1), activated_at=now - timedelta(minutes=5)
    )
    return Keyring(keys=(record,)).to_json()


# --- measuring -----------------------------------------------------------------------------------------------------------
def run_child(variant: Variant, env: dict[str, str], script: str = CHILD, *flags: str) -> tuple[float, dict[str, Any], str]:
    """Run ``script`` in a fresh process; (ms from the spawn to the child's ``first_token_at`` or ``at``, its report, stderr)."""
    start = time.time()
    done = subprocess.run([variant.interpreter, *flags, "-c", script], cwd=variant.cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    report: dict[str, Any] = {}
    for line in reversed(done.stderr.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                report = json.loads(line)
            break
    if done.returncode != 0 or not report.get("ok", False):
        raise RuntimeError(f"{variant.name}: the child failed ({done.returncode}): {done.stderr[-1500:]}")
    reached = report.get("first_token_at", report.get("at", start))
    return (reached - start) * 1e3, report, done.stderr


def bare_ms(variant: Variant, env: dict[str, str]) -> float:
    """Spawn to a bare interpreter's first statement, same interpreter, environment and working directory."""
    return run_child(variant, env, BARE_CHILD)[0]


@dataclass
class Samples:
    whole: list[float] = field(default_factory=list)  # spawn to the first token
    bare: list[float] = field(default_factory=list)  # spawn to a bare interpreter's first statement
    init_wall: list[float] = field(default_factory=list)
    init_cpu: list[float] = field(default_factory=list)
    first_wall: list[float] = field(default_factory=list)
    first_cpu: list[float] = field(default_factory=list)
    warm_wall: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # the 1-minute load average after each run
    sdk: set[str] = field(default_factory=set)

    def med(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values)

    def first_wait(self) -> float:
        """The first invocation's time off this process's CPU: network waits (the replay, the reads), median."""
        return statistics.median(max(0.0, w - c) for w, c in zip(self.first_wall, self.first_cpu, strict=True))

    def estimate(self, memory_mb: int) -> tuple[float, float]:
        """(first token, warm token) ms at ``memory_mb``, estimated: INIT at a full core; the invoke phase's CPU at
        Lambda's share (memory / 1,769 MB of a vCPU, at most one); network waits as measured."""
        slow = max(1.0, LAMBDA_FULL_CPU_MB / memory_mb)
        first = self.med("init_wall") + self.med("first_cpu") * slow + self.first_wait()
        return first, self.med("warm_cpu") * slow + max(0.0, self.med("warm_wall") - self.med("warm_cpu"))

    def estimate_throttled_init(self, memory_mb: int) -> float:
        """The first token if INIT gets only the invoke phase's share too (the pessimistic case)."""
        slow = max(1.0, LAMBDA_FULL_CPU_MB / memory_mb)
        return (self.med("init_cpu") * slow + max(0.0, self.med("init_wall") - self.med("init_cpu"))
                + self.med("first_cpu") * slow + self.first_wait())


def cost_per_million(memory_mb: int, billed_ms: float) -> float:
    """Dollars for a million invocations of ``billed_ms`` each (rounded up to 1 ms) at ``memory_mb``."""
    return 1e6 * (PRICE_PER_REQUEST + math.ceil(max(billed_ms, 1e-9)) / 1e3 * memory_mb / 1024 * PRICE_PER_GB_SECOND)


def power_tuning(samples: Samples) -> list[str]:
    """Memory against estimated latencies and cost per million tokens, from one variant's medians."""
    lines = [("| memory MB | vCPU share | first token ms (INIT at a full core / INIT at the share) | warm token ms | "
             "$ per million warm tokens | $ per million tokens, 1 in 100 a cold start |"), "|---|---|---|---|---|---|"]
    for memory in TUNING_SIZES:
        first, warm = samples.estimate(memory)
        pessimistic = samples.estimate_throttled_init(memory)
        warm_cost = cost_per_million(memory, warm)
        # a cold start bills its INIT and its first invocation (the pessimistic INIT: what a throttled INIT would bill)
        cold_cost = cost_per_million(memory, pessimistic)
        mixed = 0.99 * warm_cost + 0.01 * cold_cost
        lines.append(f"| {memory:,} | {min(1.0, memory / LAMBDA_FULL_CPU_MB):.2f} | {first:.0f} / {pessimistic:.0f} | {warm:.2f} | "
                     f"{warm_cost:.4f} | {mixed:.4f} |")
    return lines


def measure(cloud: Cloud, variants: list[Variant], runs: int) -> dict[tuple[str, str], Samples]:
    """``runs`` rounds; in each, every variant and algorithm once, in a rotating order, each beside a bare interpreter."""
    results: dict[tuple[str, str], Samples] = defaultdict(Samples)
    jobs = [(variant, alg) for variant in variants for alg in ALGS]
    for _ in range(2):  # warm the page cache and the stand-ins; not recorded
        for variant, alg in jobs:
            run_child(variant, cloud.env(variant, alg))
    for round_no in range(runs):
        shift = round_no % len(jobs)
        for variant, alg in jobs[shift:] + jobs[:shift]:
            env = cloud.env(variant, alg)
            elapsed, report, _ = run_child(variant, env)
            samples = results[(variant.name, alg)]
            samples.whole.append(elapsed)
            for name in ("init_wall", "init_cpu", "first_wall", "first_cpu", "warm_wall", "warm_cpu"):
                getattr(samples, name).append(report[name])
            samples.sdk.update(report["sdk"])
            samples.bare.append(bare_ms(variant, env))
            samples.loads.append(os.getloadavg()[0])
    return results


def import_breakdown(cloud: Cloud, variant: Variant, alg: str, runs: int) -> dict[str, float]:
    """Median cumulative import time (ms) per top-level package imported by ``import app`` (``-X importtime``)."""
    per_package: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        _, _, stderr = run_child(variant, cloud.env(variant, alg), CHILD, "-X", "importtime")
        lines = [ln for ln in stderr.splitlines() if ln.startswith("import time:") and "|" in ln]
        totals = _app_children(lines)
        for name, value in totals.items():
            per_package[name].append(value)
    return {name: statistics.median(values) for name, values in per_package.items()}


def _app_children(lines: list[str]) -> dict[str, float]:
    """Self import time (ms) of everything imported from ``import app`` to the first token, grouped: our modules one by
    one, other packages by top-level name; plus totals. Self times add up (cumulative ones nest)."""
    rows = []
    for line in lines:
        _, self_us, _cumulative, name = ["", *list(line[len("import time:"):].split("|"))]
        if not self_us.strip().isdigit():
            continue
        rows.append((len(name) - len(name.lstrip()), name.strip(), int(self_us.strip())))
    app_index = next((i for i, row in enumerate(rows) if row[1] == "app"), None)
    if app_index is None:
        return {}
    # -X importtime prints a module after everything it imported: app's subtree is the run of deeper rows before it.
    first = app_index
    while first > 0 and rows[first - 1][0] > rows[app_index][0]:
        first -= 1
    groups: dict[str, float] = defaultdict(float)
    totals = {"ours": 0.0, "others": 0.0}
    for _indent, name, self_us in rows[first:]:
        ms = self_us / 1e3
        ours = name == "app" or name.startswith("jwks_rotator")
        groups[name if ours else name.split(".")[0]] += ms
        totals["ours" if ours else "others"] += ms
    groups["(total: our modules)"] = totals["ours"]
    groups["(total: everything else)"] = totals["others"]
    groups["(total)"] = totals["ours"] + totals["others"]
    return dict(groups)


def first_call_parts(cloud: Cloud, variant: Variant, alg: str, runs: int) -> dict[str, float]:
    per_part: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        _, report, _ = run_child(variant, cloud.env(variant, alg), PARTS_CHILD)
        for name, value in report["parts"].items():
            per_part[name].append(value)
    return {name: statistics.median(values) for name, values in per_part.items()}


# --- report --------------------------------------------------------------------------------------------------------------
def render(results: dict[tuple[str, str], Samples], variants: list[Variant], versions: dict[str, str], runs: int,
           imports: dict[str, dict[str, float]], parts: dict[str, dict[str, float]], before: str,
           calls: dict[str, int]) -> str:
    loads = [load for samples in results.values() for load in samples.loads]
    lines = ["## Cold start", "",
             (f"Date {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} CPUs shared with other work; "
              f"interpreters: " + ", ".join(f"{name} {version}" for name, version in versions.items())
              + f"; load average (1 min) during the runs {min(loads):.1f} to {max(loads):.1f}. {runs} fresh processes per "
              "variant and algorithm, interleaved round by round (2 warm-up rounds not counted). A process runs the sign "
              "function's INIT (`import app`) and its first invocation: the caller's proof replayed over HTTPS to the "
              "signature-checking STS stand-in (a test CA), the keyring and revocation list read through the Parameters and "
              f"Secrets extension stand-in (TTL 0: each read an AWS call to moto), the key loaded, the token signed, the audit "
              "line written at INFO; then 30 warm invocations (the same proof, cached)."), "",
             ("\"after\" is this tree: `make build`'s unchecked-hash .pyc (python3.12: the built artifact itself; python3: "
              "the same sources compiled the same way), its policy as JSON, Amazon's roots (here the test CA through "
              "`STS_CA_BUNDLE`)." + (f" \"before\" is `{before}`'s sign function and layer package compiled exactly so "
              "and run beside it with the same third-party packages, extension, roots and rounds: only our code differs."
              if before else "")), "",
             ("| variant | alg | spawn to first token ms (min / median) | bare interpreter ms (min / median) | "
             "**above bare, ms (min / median)** | INIT CPU / wall ms | first invocation CPU / wall / network wait ms | "
             "warm invocation CPU / wall ms | SDK modules loaded |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        for alg in ALGS:
            s = results.get((variant.name, alg))
            if s is None:
                continue
            above_min = min(s.whole) - min(s.bare)
            above_median = statistics.median(s.whole) - statistics.median(s.bare)
            lines.append(
                f"| {variant.name} | {alg} | {min(s.whole):.0f} / {s.med('whole'):.0f} | {min(s.bare):.0f} / {s.med('bare'):.0f} | "
                f"**{above_min:.0f} / {above_median:.0f}** | {s.med('init_cpu'):.1f} / {s.med('init_wall'):.1f} | "
                f"{s.med('first_cpu'):.1f} / {s.med('first_wall'):.1f} / {s.first_wait():.1f} | "
                f"{s.med('warm_cpu'):.2f} / {s.med('warm_wall'):.2f} | {', '.join(sorted(s.sdk)) or 'none'} |"
            )
    lines += ["", ("Above bare = INIT plus the first token: the time from spawning the process to the first token, minus the "
              "time from spawning a bare interpreter (same interpreter, environment and directory) to its first statement, "
              "in the same rounds: min − min and median − median. CPU is the process's own (`time.process_time`, every "
              "thread: the background key read's client side included; the stand-ins run in another process); the network "
              "wait is the first invocation's wall time minus its CPU. Other columns are medians."), "",
             ("A deployed function honours `STS_ENDPOINT_URL`, `STS_CA_BUNDLE` and a policy file outside its directory only "
              "with the local stack's marker file, which `make build` leaves out; the benchmark therefore measures a copy of "
              "the built artifact with that one file added (the code and its .pyc are the artifact's)."), "",
              "### Estimated first token and warm token on Lambda (estimate, not measured on Lambda)", "",
              ("From the medians above: INIT at a full core (Lambda is reported to give INIT more CPU than the invoke phase: "
               "not checked here), the invoke phase's CPU stretched by 1,769 MB / memory (Lambda's CPU share; at most one "
               "vCPU), network waits unchanged (the stand-ins answer on loopback: AWS's own round trips come on top)."), "",
              "| variant | alg | " + " | ".join(f"first token at {m:,} MB, ms" for m in MEMORY_SIZES)
              + " | " + " | ".join(f"warm at {m:,} MB, ms" for m in MEMORY_SIZES) + " |",
              "|---|---|" + "---|" * (2 * len(MEMORY_SIZES))]
    for variant in variants:
        for alg in ALGS:
            s = results.get((variant.name, alg))
            if s is None:
                continue
            estimates = [s.estimate(m) for m in MEMORY_SIZES]
            lines.append(f"| {variant.name} | {alg} | " + " | ".join(f"{first:.0f}" for first, _ in estimates) + " | "
                         + " | ".join(f"{warm:.2f}" for _, warm in estimates) + " |")
    for alg in ALGS:
        key = next((k for k in results if k[0].startswith("after, python3.12") and k[1] == alg), None)
        if key is None:
            continue
        lines += ["", f"### Power tuning (estimate): {key[0]}, {alg}", "",
                  ("Memory against the estimated first-token and warm-token latency and the cost per million tokens "
                   "(requests plus duration; a warm token bills its handler time, a cold start its INIT and first "
                   f"invocation). Price source: {PRICE_SOURCE}."), "", *power_tuning(results[key])]
    lines += ["", "### Goals", ""]
    for variant in variants:
        if not variant.name.startswith("after, python3.12"):
            continue
        for alg in ALGS:
            s = results.get((variant.name, alg))
            if s is None:
                continue
            above = statistics.median(s.whole) - statistics.median(s.bare)
            extra_cpu = s.med("first_cpu") - s.med("warm_cpu")
            lines.append(f"- {alg}: INIT + first token {above:.0f} ms above bare (median; goal at most 100, aim 60); the first "
                         f"invocation's own CPU {extra_cpu:.1f} ms beyond a warm one's (goal at most 15, network excluded).")
    lines.append("")
    for title, table in imports.items():
        lines += [f"### Import-time breakdown: {title}", "",
                  ("Self time (`-X importtime`, medians) of every module loaded from `import app` to the first token "
                   "(INIT's imports and any the first invocation adds): our modules one by one, other packages by top-level "
                   "name; 0.5 ms and more, and the totals."), "",
                  "| module | ms |", "|---|---|"]
        for name, value in sorted(table.items(), key=lambda item: (not item[0].startswith("("), -item[1])):
            if value >= 0.5:
                lines.append(f"| {name} | {value:.1f} |")
        lines.append("")
    for title, table in parts.items():
        lines += [f"### First invocation breakdown: {title}", "",
                  ("In-process medians, by wrapping the functions that do each part (nested parts are inside their "
                  "parent's time; the key reads run in the background during the replay)."), "", "| part | ms |", "|---|---|"]
        for name, value in table.items():
            lines.append(f"| {name} | {value:.2f} |")
        lines.append("")
    lines += ["### Extension reads during the cold runs", "",
              (f"Requests the extension stand-in answered (each one AWS call, TTL 0): {calls['extension']} for "
              f"{calls['after_runs']} cold starts reading through it (2 per start: keyring, revocation list); refused for a wrong "
              f"token: {calls['refused']}. STS replays: {calls['sts']} for {calls['all_runs']} cold starts in all."), ""]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="jwks-rotator-cold-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per variant and algorithm")
    parser.add_argument("--breakdown-runs", type=int, default=7)
    parser.add_argument("--before", default="main", help="the revision measured as 'before', compiled as make build does (empty: none)")
    parser.add_argument("--write", action="store_true", help="update the ## Cold start section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    py312 = python312()
    py3 = sys.executable  # the machine's python3, in the project's venv (its dependencies)
    versions = {"python3": version_of(py3)}
    if py312:
        versions["python3.12"] = version_of(py312)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with scratch_dir() as scratch, moto_server() as endpoint, contextlib.ExitStack() as stack:
        cloud = Cloud(endpoint, scratch, stack)
        variants: list[Variant] = []
        if py312 and not (BUILD / "SignFunction" / "__pycache__").is_dir():
            raise SystemExit("no compiled build: run `make build` first")
        built_packages = str(BUILD / "SharedLayer" / "python")  # the layer's third-party packages, as make build installs them
        if py312 and args.before:
            before_task, before_layer = archived(args.before, scratch / "before")
            subprocess.run([py312, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(before_task), str(before_layer)],
                           check=True)
            # its own jwks_rotator package first, then the built layer's third-party packages (cryptography)
            variants.append(Variant(f"before ({args.before}), python3.12", py312, before_task, [str(before_layer), built_packages],
                                    breakdown=False))
        if py312:
            variants.append(Variant("after, python3.12 (make build artifact)", py312, marked_copy(BUILD / "SignFunction", scratch / "after-build"),
                                    [built_packages]))
        after_task, after_layer = compiled_copy(py3, scratch / "after-py3")
        variants.append(Variant("after, python3 (compiled as make build does)", py3, after_task, [str(after_layer)]))
        extension_before, refused_before, sts_before = cloud.extension.requests, cloud.extension.refused, cloud.sts.replays
        results = measure(cloud, variants, args.runs)
        by_name = {v.name: v for v in variants}
        after_runs = sum(len(s.whole) for (name, _), s in results.items() if by_name[name].after) + 2 * len(ALGS) * sum(v.after for v in variants)
        all_runs = sum(len(s.whole) for s in results.values()) + 2 * len(ALGS) * len(variants)
        calls = {"extension": cloud.extension.requests - extension_before, "refused": cloud.extension.refused - refused_before,
                 "sts": cloud.sts.replays - sts_before, "after_runs": after_runs, "all_runs": all_runs}
        imports: dict[str, dict[str, float]] = {}
        parts: dict[str, dict[str, float]] = {}
        for variant in variants:
            if variant.breakdown and variant.interpreter == py312:
                for alg in ALGS:
                    imports[f"{variant.name}, {alg}"] = import_breakdown(cloud, variant, alg, args.breakdown_runs)
                    parts[f"{variant.name}, {alg}"] = first_call_parts(cloud, variant, alg, args.breakdown_runs)
    section = render(results, variants, versions, args.runs, imports, parts, args.before if py312 else "", calls)
    print(section)
    if args.write:
        write_section("Cold start", section)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

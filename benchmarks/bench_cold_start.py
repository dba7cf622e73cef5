"""Cold-start benchmark: a fresh process imports the sign function and issues its first token, as a new Lambda container does.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_cold_start.py [--write]``; ``make build`` first, for
the python3.12 artifact). One run measures side by side, interleaved round by round, in fresh processes:

* **after** (this tree): under python3.12 the ``make build`` artifact (``.aws-sam/build``: the layer and the sign
  function with their unchecked-hash .pyc), under the machine's python3 (the project's venv) the same sources
  compiled the same way into a scratch directory; the keyring and the revocation list are read through the
  Parameters and Secrets extension stand-in (moto behind it, TTL 0: every read is an AWS call), no boto3;
* **before** (``--before REF``, default ``main``): that revision's layer and sign function from ``git archive``, run
  as it ships (from source: no .pyc, and ``PYTHONDONTWRITEBYTECODE=1`` as on these machines), reading with boto3 from
  the moto server; under python3.12 with a boto3 installed for it (``--boto3-312 DIR``, as the Lambda runtime
  provides one), skipped when none is given.

Every first token also verifies a caller proof: the proof is replayed over HTTPS to the signature-checking STS
stand-in, whose certificate comes from a throwaway CA (``STS_CA_BUNDLE`` for "after"; for "before", whose TLS context
is the system default, ``SSL_CERT_FILE`` = the system bundle plus that CA, so it loads what it would load on
Lambda). The audit line is written at INFO (stdout to /dev/null). "Above bare" subtracts a bare interpreter of the
same kind (``python -c pass``) measured in the same rounds. Also: the import-time breakdown of the "after" import
(``-X importtime``, by top-level package) and the first invocation's parts (in-process, by wrapping the functions that
do them). ``--write`` replaces the ``## Cold start`` section of ``benchmarks/RESULTS.md``. Not a test: nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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
    _t0 = time.perf_counter()
    import app
    _t1 = time.perf_counter()
    import json, os, sys, types
    response = app.handler(json.loads(os.environ["BENCH_EVENT"]), types.SimpleNamespace(**json.loads(os.environ["BENCH_CONTEXT"])))
    _t2 = time.perf_counter()
    sdk = sorted(m for m in ("boto3", "botocore", "aws_lambda_powertools", "jwcrypto", "moto") if m in sys.modules)
    os.write(2, json.dumps({"import_ms": (_t1 - _t0) * 1e3, "first_ms": (_t2 - _t1) * 1e3, "ok": "token" in response,
                            "error": response.get("error"), "message": response.get("message"), "sdk": sdk}).encode() + b"\\n")
    """
)

# The first invocation's parts, timed in the child by wrapping the functions that do them (after: this tree only).
PARTS_CHILD = textwrap.dedent(
    """
    import time
    _t0 = time.perf_counter()
    import app
    _t1 = time.perf_counter()
    import json, os, types
    _t_core = time.perf_counter()
    # the handler imports these on its first call; imported here first (to wrap them), timed as a part of that call
    from jwks_rotator.bootstrap import sign as sign_root
    from jwks_rotator.core.issuance import service as issuance, signer as signer_module
    from jwks_rotator.adapters.lean import secrets_extension, sts_identity, http
    parts = {"issuance core imported (bootstrap, settings, policy, verifier, signer, cryptography)": (time.perf_counter() - _t_core) * 1e3}
    def timed(owner, name, label):
        original = getattr(owner, name)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                parts[label] = parts.get(label, 0.0) + (time.perf_counter() - start) * 1e3
        setattr(owner, name, wrapper)
    timed(sign_root, "build_issuance_service", "service built: settings, policy, readers, verifier")
    timed(http, "ca_file_context", "TLS context (import ssl, Amazon's roots or the test CA)")
    sts_identity.ca_file_context = http.ca_file_context  # the endpoint calls the name it imported
    timed(sts_identity.StsIdentityReplayer, "replay", "proof replayed to STS over HTTPS (connect, handshake, answer)")
    timed(secrets_extension.ExtensionKeyringReader, "read_current", "keyring read through the extension")
    timed(secrets_extension.ExtensionRevocationReader, "read", "revocation list read through the extension")
    timed(signer_module, "load_private_key", "private key loaded (checks, no validation)")
    timed(signer_module, "make_signing_key", "key ready: load + first signature + its verification")
    response = app.handler(json.loads(os.environ["BENCH_EVENT"]), types.SimpleNamespace(**json.loads(os.environ["BENCH_CONTEXT"])))
    _t2 = time.perf_counter()
    parts["import of the handler"] = (_t1 - _t0) * 1e3
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
    after: bool = True


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


def compiled_copy(interpreter: str, target: Path) -> tuple[Path, Path]:
    """This tree's sign function and layer package copied to ``target`` and compiled as ``make build`` compiles them."""
    task, layer = target / "task", target / "layer"
    shutil.copytree(ROOT / "functions" / "sign", task)
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
    start = time.perf_counter()
    done = subprocess.run([variant.interpreter, *flags, "-c", script], cwd=variant.cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    elapsed = (time.perf_counter() - start) * 1e3
    report: dict[str, Any] = {}
    for line in reversed(done.stderr.splitlines()):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                report = json.loads(line)
            break
    if done.returncode != 0 or not report.get("ok", False):
        raise RuntimeError(f"{variant.name}: the child failed ({done.returncode}): {done.stderr[-1500:]}")
    return elapsed, report, done.stderr


def bare_ms(interpreter: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([interpreter, "-c", "pass"], env=env, check=True)
    return (time.perf_counter() - start) * 1e3


@dataclass
class Samples:
    whole: list[float] = field(default_factory=list)
    import_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    sdk: set[str] = field(default_factory=set)


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
            samples.import_ms.append(report["import_ms"])
            samples.first_ms.append(report["first_ms"])
            samples.sdk.update(report["sdk"])
            samples.bare.append(bare_ms(variant.interpreter, env))
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
           imports: dict[str, dict[str, float]], parts: dict[str, dict[str, float]], before_ref: str,
           calls: dict[str, int], before_build: str = "") -> str:
    load = os.getloadavg()[0]
    lines = ["## Cold start", "",
             (f"Date {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {os.cpu_count()} CPUs; interpreters: "
              + ", ".join(f"{name} {version}" for name, version in versions.items())
              + f"; load average at the end {load:.1f}. {runs} fresh processes per variant and algorithm, interleaved "
              "round by round (2 warm-up rounds not counted). A process imports the sign function and issues its first "
              "token: the caller's proof replayed over HTTPS to the signature-checking STS stand-in (a test CA), the "
              "keyring and revocation list read, the key loaded, the token signed, the audit line written at INFO."), "",
             ((f"\"before\" is `{before_ref}` as it ships: from source (no .pyc; `PYTHONDONTWRITEBYTECODE=1` here, as on "
              "Lambda's read-only code directory, where nothing can be written), boto3 to the moto server, powertools, the "
              "system CA bundle, the policy file in YAML. " if before_ref else "") + "\"after\" is this tree: `make build`'s unchecked-hash .pyc "
              "(python3.12: the built artifact itself) and its policy file as JSON (the same document), reads through the Parameters and Secrets extension stand-in, Amazon's roots "
              "(here the test CA through `STS_CA_BUNDLE`)."
              + (f" \"before ({before_build} build)\" is {before_build}'s own `make build` artifact, run exactly as \"after\" "
                 "under python3.12 (the same extension, roots and rounds): only the code differs." if before_build else "")), "",
             "| variant | alg | process ms (min / median) | bare interpreter ms (min / median) | **above bare, ms (min / median)** | import ms (median) | first invocation ms (median) | SDK modules loaded |",
             "|---|---|---|---|---|---|---|---|"]
    for variant in variants:
        for alg in ALGS:
            s = results.get((variant.name, alg))
            if s is None:
                continue
            above_min = min(s.whole) - min(s.bare)
            above_median = statistics.median(s.whole) - statistics.median(s.bare)
            lines.append(
                f"| {variant.name} | {alg} | {min(s.whole):.0f} / {statistics.median(s.whole):.0f} | {min(s.bare):.0f} / "
                f"{statistics.median(s.bare):.0f} | **{above_min:.0f} / {above_median:.0f}** | {statistics.median(s.import_ms):.1f} | "
                f"{statistics.median(s.first_ms):.1f} | {', '.join(sorted(s.sdk)) or 'none'} |"
            )
    lines += ["", ("Above bare = the process's time minus a bare interpreter's (`python -c pass`, same interpreter and "
              "environment) in the same rounds: min − min and median − median."), ""]
    for title, table in imports.items():
        lines += [f"### Import-time breakdown: {title}", "",
                  ("Self time (`-X importtime`, medians) of every module loaded from `import app` to the first token "
                   "(the first invocation's imports included): our modules one by one, other packages by top-level "
                   "name; 0.5 ms and more, and the totals."), "",
                  "| module | ms |", "|---|---|"]
        for name, value in sorted(table.items(), key=lambda item: (not item[0].startswith("("), -item[1])):
            if value >= 0.5:
                lines.append(f"| {name} | {value:.1f} |")
        lines.append("")
    for title, table in parts.items():
        lines += [f"### First invocation breakdown: {title}", "",
                  ("In-process medians, by wrapping the functions that do each part (nested parts are inside their "
                  "parent's time)."), "", "| part | ms |", "|---|---|"]
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
    parser.add_argument("--before", default="main", help="the revision measured as 'before' (empty: none)")
    parser.add_argument("--boto3-312", default="", help="a directory holding boto3 for python3.12 (the runtime's), for 'before' under 3.12")
    parser.add_argument("--before-build", default="", metavar="DIR",
                        help="another tree's `make build` output (its .aws-sam/build), measured under python3.12 as this tree's is")
    parser.add_argument("--before-build-name", default="main", help="what --before-build is, for the tables")
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
        if args.before:
            before_task, before_layer = archived(args.before, scratch / "before")
            before_env = {"PYTHONDONTWRITEBYTECODE": "1"}
            if py312 and args.boto3_312 and (BUILD / "SharedLayer" / "python").is_dir():
                variants.append(Variant(f"before ({args.before}), python3.12", py312, before_task,
                                        [str(before_layer), str(BUILD / "SharedLayer" / "python"), str(Path(args.boto3_312).resolve())],
                                        before_env, after=False))
            variants.append(Variant(f"before ({args.before}), python3", py3, before_task, [str(before_layer)], before_env, after=False))
        if py312 and args.before_build:
            other = Path(args.before_build).resolve()
            if not (other / "SignFunction" / "__pycache__").is_dir():
                raise SystemExit(f"no compiled build in {other}")
            # the same set-up as "after" (extension, Amazon's roots, compiled): only the code differs
            variants.append(Variant(f"before ({args.before_build_name} build), python3.12", py312, other / "SignFunction",
                                    [str(other / "SharedLayer" / "python")]))
        if py312:
            if not (BUILD / "SignFunction" / "__pycache__").is_dir():
                raise SystemExit("no compiled build: run `make build` first")
            variants.append(Variant("after, python3.12 (make build artifact)", py312, BUILD / "SignFunction", [str(BUILD / "SharedLayer" / "python")]))
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
            if variant.after:
                for alg in ALGS:
                    imports[f"{variant.name}, {alg}"] = import_breakdown(cloud, variant, alg, args.breakdown_runs)
                    if variant.name.startswith("after"):  # the parts child wraps this tree's functions
                        parts[f"{variant.name}, {alg}"] = first_call_parts(cloud, variant, alg, args.breakdown_runs)
            elif variant.interpreter == py3:
                imports[f"{variant.name}, ES256"] = import_breakdown(cloud, variant, "ES256", args.breakdown_runs)
    section = render(results, variants, versions, args.runs, imports, parts, args.before, calls,
                     args.before_build_name if args.before_build else "")
    print(section)
    if args.write:
        write_section("Cold start", section)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The built artifact (`make build`: sam build + unchecked-hash .pyc) runs on python3.12 without compiling a module.

Lambda's code directory is read-only and the deployment zip does not keep
timestamps, so a build that ships no .pyc, or timestamp-checked ones, pays
for compiling every module at every cold start. These tests read the
``.aws-sam/build`` output of ``make build`` (``make test`` builds it first,
in ``check-template``): every module of the layer and the functions has an
unchecked-hash ``cpython-312`` .pyc of its current source, and a python3.12
importing the sign function from a read-only copy, with fresh source mtimes
and bytecode writing allowed, compiles nothing of ours.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "SharedLayer" / "python"
SIGN = BUILD / "SignFunction"
ROTATE = BUILD / "RotateFunction"
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked


def python312() -> str | None:
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip() if shutil.which("pyenv") else ""
    candidates = [shutil.which("python3.12") or "", *sorted(glob.glob(f"{root}/versions/3.12*/bin/python3.12")),
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                        capture_output=True, check=False).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def built() -> Path:
    if not (SIGN / "app.py").exists() or not (LAYER / "jwks_rotator").is_dir():
        pytest.skip("no sam build output: run `make build` (make test runs it in check-template)")
    return BUILD


def our_sources() -> list[Path]:
    return [*sorted((LAYER / "jwks_rotator").rglob("*.py")), SIGN / "app.py", ROTATE / "app.py"]


HASHES = "import importlib.util, json, sys; print(json.dumps([importlib.util.source_hash(open(p, 'rb').read()).hex() for p in sys.argv[1:]]))"


def test_every_module_of_ours_ships_an_unchecked_hash_pyc_of_its_current_source(built: Path) -> None:
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no python3.12 (the Lambda runtime): the source hash is keyed by the interpreter's magic number")
    sources = our_sources()
    assert len(sources) > 40
    expected = json.loads(subprocess.run([interpreter, "-c", HASHES, *map(str, sources)], capture_output=True, text=True, check=True).stdout)
    for source, digest in zip(sources, expected, strict=True):
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert pyc.is_file(), f"{source.relative_to(BUILD)} has no python3.12 .pyc"
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH, f"{pyc.name}: not an unchecked-hash .pyc"
        assert header[8:16].hex() == digest, f"{source.relative_to(BUILD)}: its .pyc was compiled from another source"


def test_the_dependencies_ship_their_pyc_too(built: Path) -> None:
    for package in ("cryptography", "yaml"):
        modules = sorted((LAYER / package).rglob("*.py"))
        assert modules
        missing = [m for m in modules if not (m.parent / "__pycache__" / f"{m.stem}.cpython-312.pyc").is_file()]
        assert not missing, missing[:5]


CHILD = r"""
import importlib._bootstrap_external as external, json, sys, types
compiled = []
original = external.SourceLoader.source_to_code
def recording(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return original(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = recording
import app
context = types.SimpleNamespace(function_name="SignFunction", invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:SignFunction", function_version="$LATEST")
response = app.handler({"sub": "user-1", "aud": "orders-api"}, context)  # builds the whole service: every sign-path module
print(json.dumps({"compiled": compiled, "response": response, "dont_write_bytecode": sys.flags.dont_write_bytecode,
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("jwks_rotator", "boto3", "botocore", "aws_lambda_powertools", "yaml"))}))
"""


def _read_only(tree: Path) -> None:
    for path in [tree, *tree.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_python312_imports_the_built_sign_function_read_only_without_compiling_anything_of_ours(built: Path, tmp_path: Path) -> None:
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no python3.12 (the Lambda runtime) on PATH or under the pyenv root")
    task, opt = tmp_path / "task", tmp_path / "opt" / "python"
    shutil.copytree(SIGN, task)
    shutil.copytree(LAYER, opt)
    later = time.time() + 3600
    for source in [*task.rglob("*.py"), *opt.rglob("*.py")]:
        os.utime(source, (later, later))  # the zip's timestamps are not the build's: a timestamp .pyc would be stale
    _read_only(task)
    _read_only(opt.parent)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(PYTHONPATH=str(opt), AWS_REGION="us-east-1", ISSUER="https://issuer.example", KEYRING_SECRET_ID="keyring",
               PARAMETERS_SECRETS_EXTENSION_HTTP_PORT="2773", AWS_SESSION_TOKEN="token")
    try:
        done = subprocess.run([interpreter, "-c", CHILD], cwd=task, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        for path in [tmp_path, *tmp_path.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dont_write_bytecode"] == 0  # writing .pyc was allowed: nothing was compiled, so nothing to write
    assert report["response"]["error"] == "unauthenticated"  # the service was built (settings, policy, readers, verifier)
    assert "jwks_rotator.bootstrap.sign" in report["modules"] and "jwks_rotator.adapters.lean.secrets_extension" in report["modules"]
    assert not [m for m in report["modules"] if m.split(".")[0] in ("boto3", "botocore", "aws_lambda_powertools", "yaml")]  # the policy ships as JSON
    ours = [path for path in report["compiled"] if path.startswith((str(task), str(opt)))]
    assert ours == [], ours
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # no file written anywhere


def test_the_built_policy_file_is_the_same_document_in_json(built: Path) -> None:
    from jwks_rotator.core.issuance.profiles import load_issuance_policy, policy_document

    source = (ROOT / "functions" / "sign" / "issuance-policy.yaml").read_text(encoding="utf-8")
    shipped = (SIGN / "issuance-policy.yaml").read_text(encoding="utf-8")
    assert shipped.lstrip().startswith("{") and not source.lstrip().startswith("{")
    assert policy_document(shipped) == policy_document(source)
    digests = {load_issuance_policy(text, max_token_ttl=3600, default_token_ttl=900).digest for text in (source, shipped)}
    assert len(digests) == 1  # audit lines name the same policy


def test_the_built_functions_carry_no_local_marker(built: Path) -> None:
    """Without it a deployed function refuses STS_ENDPOINT_URL, STS_CA_BUNDLE and a policy file outside its directory."""
    from jwks_rotator.adapters.lean.sts_identity import LOCAL_MARKER

    for function in ("SignFunction", "RotateFunction"):
        assert not (built / function / LOCAL_MARKER).exists()

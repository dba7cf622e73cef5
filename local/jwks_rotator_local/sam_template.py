"""template.yaml translated to plain CloudFormation, offline, once for the tests, checkov and the local stack.

aws-sam-translator turns the SAM resources (functions, their roles, the
schedule, the layer) into what CloudFormation creates; it needs a region
(``AWS_DEFAULT_REGION``, set here if missing) and no credentials. Local
``CodeUri``/``ContentUri`` paths become what ``sam package`` would upload them
to (``s3://ARTIFACT_BUCKET/<path>``), and the managed policies SAM attaches by
name are given their ARNs (translation would otherwise look them up in IAM).

    python -m jwks_rotator_local.sam_template template.yaml OUT.json   # what checkov scans

It imports nothing of this package, so ``make check-template`` runs it as a
plain script with the .venv-sam interpreter (which has aws-sam-translator).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
"""The source checkout's template.yaml (this package is installed editable from it)."""
ARTIFACT_BUCKET = "jwks-rotator-artifacts"
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}
LOCAL_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _ManagedPolicies:
    """The managed-policy loader SAM's translator takes: fixed names, no IAM call."""

    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def artifact_key(local_path: str) -> str:
    """The S3 key a local code path is "uploaded" to: the path itself, without surrounding slashes."""
    return local_path.strip("/")


def translate(source: Any, *, artifact_bucket: str = ARTIFACT_BUCKET) -> dict[str, Any]:
    """A SAM template (as parsed YAML) translated to CloudFormation; local code paths become ``s3://`` URIs."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = copy.deepcopy(source)
    for resource in template["Resources"].values():
        prop = LOCAL_CODE.get(resource["Type"])
        if prop and isinstance(resource["Properties"].get(prop), str):
            resource["Properties"][prop] = f"s3://{artifact_bucket}/{artifact_key(resource['Properties'][prop])}"
    translated: dict[str, Any] = transform(template, {}, _ManagedPolicies())
    return translated


@lru_cache(maxsize=4)
def _translated_text(path: str, mtime_ns: int, artifact_bucket: str) -> str:
    from samtranslator.yaml_helper import yaml_parse

    return json.dumps(translate(yaml_parse(Path(path).read_text()), artifact_bucket=artifact_bucket))


def translated_template(path: str | os.PathLike[str] = TEMPLATE_PATH, *, artifact_bucket: str = ARTIFACT_BUCKET) -> dict[str, Any]:
    """``path`` translated (cached per file version: a fresh copy each call)."""
    resolved = Path(path).resolve()
    loaded: dict[str, Any] = json.loads(_translated_text(str(resolved), resolved.stat().st_mtime_ns, artifact_bucket))
    return loaded


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m jwks_rotator_local.sam_template TEMPLATE OUT.json", file=sys.stderr)
        return 2
    source, target = argv
    Path(target).write_text(json.dumps(translated_template(source), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

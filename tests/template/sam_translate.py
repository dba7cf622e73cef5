"""Translate template.yaml into plain CloudFormation JSON, offline, for checkov.

checkov reads AWS::Serverless::Function but not the IAM roles, the scheduler role
and the permissions SAM generates from it; scanning the translated template too
puts those under its IAM checks. Run with the .venv-sam interpreter (it has
aws-sam-translator); needs AWS_DEFAULT_REGION, no credentials:

    AWS_DEFAULT_REGION=us-east-1 .venv-sam/bin/python tests/template/sam_translate.py template.yaml OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The managed policies SAM attaches by name (translation normally looks them up in IAM).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}
LOCAL_CODE = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _Policies:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def main(source: str, target: str) -> None:
    template = yaml_parse(Path(source).read_text())
    for resource in template["Resources"].values():
        prop = LOCAL_CODE.get(resource["Type"])
        if prop and isinstance(resource["Properties"].get(prop), str):
            # Local paths become what `sam package` would upload them to.
            resource["Properties"][prop] = "s3://jwks-rotator-artifacts/" + resource["Properties"][prop].strip("/")
    translated = transform(template, {}, _Policies())
    Path(target).write_text(json.dumps(translated, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
